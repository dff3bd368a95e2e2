//! [`WeatherConsumer`]: reads readings in batches, writes each batch, then commits.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::options::{ConsumeOptions, StartFrom};
use super::poll::PollLimits;
use super::report::{ConsumeReport, PartitionPosition, StopReason};
use super::stall::{StallWatch, STALL_AFTER};
use crate::client::{ConsumerBuilder, GroupEvent, KafkaConsumer};
use crate::config::KafkaSettings;
use crate::csv_log::CsvLog;
use crate::error::{Error, Result, Setting};
use crate::produce::RawProducer;
use crate::record::{decode, next_offsets, ConsumedRecord, Decoded, PoisonPill};
use crate::{shutdown, topics};

/// What one poll round returned.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    /// Readings, in the order read.
    pub records: Vec<ConsumedRecord>,
    /// Messages that were skipped as poison pills.
    pub poison: Vec<PoisonPill>,
    /// For each partition read, the next offset to read (what a commit stores).
    pub next_offsets: BTreeMap<i32, i64>,
    /// Whether every assigned partition was read to its end.
    pub reached_end: bool,
}

impl Batch {
    /// Messages read, readings and poison pills together.
    pub fn message_count(&self) -> usize {
        self.records.len() + self.poison.len()
    }

    /// (partition, offset) of every message read, readings and poison pills.
    pub fn positions(&self) -> impl Iterator<Item = (i32, i64)> + '_ {
        self.records
            .iter()
            .map(|r| (r.partition, r.offset))
            .chain(self.poison.iter().map(|p| (p.partition, p.offset)))
    }

    /// The partitions this batch has messages of.
    pub fn partitions_read(&self) -> Vec<i32> {
        self.next_offsets.keys().copied().collect()
    }

    /// The offsets of the readings, in the order read.
    pub fn offsets(&self) -> Vec<i64> {
        self.records.iter().map(|r| r.offset).collect()
    }
}

impl crate::display::AsTable for Batch {
    fn as_table(&self) -> crate::display::Table {
        super::record_table(&self.records).with_title(format!(
            "{} reading(s), {} poison pill(s); next offsets {:?}",
            self.records.len(),
            self.poison.len(),
            self.next_offsets
        ))
    }
}

crate::shown_as_table!(Batch);

/// A consumer of weather readings from one topic.
pub struct WeatherConsumer {
    pub(super) client: KafkaConsumer,
    pub(super) options: ConsumeOptions,
    pub(super) partitions: Vec<i32>,
    dead_letters: Option<RawProducer>,
    /// What the last run that failed had done before it failed.
    unfinished: Option<ConsumeReport>,
    /// A client outside the group that reads the group's committed offsets
    /// (see [`WeatherConsumer::committed_offsets`]), built on first use.
    pub(super) offsets_reader: std::cell::OnceCell<KafkaConsumer>,
}

impl WeatherConsumer {
    /// Connects, checks the topic exists, then subscribes (group with
    /// `earliest`/`latest`) or assigns and seeks (no group, offset or time).
    pub fn new(settings: &KafkaSettings, options: ConsumeOptions) -> Result<Self> {
        options.validate()?;
        let (topic, cluster_id) =
            topics::topic_partitions_and_cluster_id(settings, &options.topic)?;
        let partitions: Vec<i32> = topic
            .partitions
            .iter()
            .map(|p| p.partition)
            .filter(|p| options.partition.is_none_or(|only| only == *p))
            .collect();
        if partitions.is_empty() {
            return Err(Error::config(
                Setting::Partitions,
                format!(
                    "topic '{}' has no partition {:?} (it has {})",
                    options.topic,
                    options.partition,
                    topic.partitions.len()
                ),
            ));
        }
        let mut builder = ConsumerBuilder::new(settings).cluster_id(cluster_id.as_deref());
        if let Some(group) = &options.group {
            builder = builder.group(group);
        }
        if let Some(reset) = options.from.reset_policy() {
            builder = builder.auto_offset_reset(reset);
        }
        for (key, value) in &options.properties {
            builder = builder.set(key, value.as_str());
        }
        let mut client = builder.build()?;
        if options.subscribes() {
            client.subscribe(&options.topic)?;
        } else {
            let starts = start_positions(&mut client, &options, &partitions)?;
            client.assign_list(&options.topic, &starts)?;
        }
        let dead_letters = match &options.dead_letter {
            Some(topic) => {
                topics::topic_partitions(settings, topic)?;
                Some(RawProducer::new(settings)?)
            }
            None => None,
        };
        Ok(WeatherConsumer {
            client,
            options,
            partitions,
            dead_letters,
            unfinished: None,
            offsets_reader: std::cell::OnceCell::new(),
        })
    }

    /// The consumer group, if any.
    pub fn group_id(&self) -> Option<&str> {
        self.options.group.as_deref()
    }

    /// The options this consumer was made with.
    pub fn options(&self) -> &ConsumeOptions {
        &self.options
    }

    /// The partitions this consumer reads now.
    pub fn assignment(&self) -> Vec<i32> {
        self.client.assignment()
    }

    /// Group events (assignments, revocations, commits) since the last call.
    pub fn take_events(&self) -> Vec<GroupEvent> {
        self.client.take_events()
    }

    /// Reads up to `max` messages, waiting at most `timeout`; returns as soon as
    /// every assigned partition is read to its end (unless following). Messages
    /// of partitions a rebalance revoked meanwhile are dropped. Nothing is
    /// committed here: see [`WeatherConsumer::commit`].
    ///
    /// Polling again at the end returns at once when nothing new has come, and
    /// the new messages when some have (as re-running a notebook's poll cell
    /// after producing more expects).
    ///
    /// A poll that waits the whole timeout and finds nothing, while messages
    /// wait that this consumer cannot get, fails: [`Error::StuckPartition`] or
    /// [`Error::NotAssigned`] (see [`super::stall`]).
    pub fn poll_batch(&mut self, max: usize, timeout: Duration) -> Result<Batch> {
        self.client.forget_passed_ends()?;
        let started = Instant::now();
        let committed_at_start = self.committed_if_unassigned();
        let mut stall = StallWatch::default();
        self.watch_round(&mut stall, &[]);
        let batch = self.poll_round(max, timeout)?;
        self.watch_round(&mut stall, &batch.partitions_read());
        // One poll of a loop: a member still joining (up to its session
        // timeout on some engines) is not yet an error.
        if batch.message_count() == 0 && !batch.reached_end {
            let waited = started.elapsed();
            let unassigned_after = self.client.session_timeout().max(STALL_AFTER);
            self.check_timeout_end(&stall, waited, unassigned_after, committed_at_start)?;
        }
        Ok(batch)
    }

    /// Records a poll round that returned messages of `read` in `stall`.
    fn watch_round(&self, stall: &mut StallWatch, read: &[i32]) {
        let held = self.assignment();
        let behind = self.partitions_behind(&held);
        stall.record(Instant::now(), &held, read, |p| behind.contains(&p));
    }

    /// The held partitions with messages past this consumer's position (as
    /// far as the client knows: its last fetch's high watermark; no request).
    /// A partition it has read nothing of yet has no position, and counts as
    /// not behind: where it starts is not known here.
    fn partitions_behind(&self, held: &[i32]) -> Vec<i32> {
        let Ok(positions) = self.client.inner().position() else {
            return Vec::new();
        };
        held.iter()
            .copied()
            .filter(|&partition| {
                let position = offset_in(&positions, &self.options.topic, partition);
                match (position, self.client.cached_high_watermark(partition)) {
                    (Some(position), Some(high)) => position < high,
                    _ => false,
                }
            })
            .collect()
    }

    /// One poll round, trusting what the client knows of the partitions' ends.
    pub(crate) fn poll_round(&mut self, max: usize, timeout: Duration) -> Result<Batch> {
        let mut batch = Batch::default();
        let limits = PollLimits {
            max,
            timeout,
            stop_at_end: self.options.stop_at_end,
        };
        let polled = self
            .client
            .poll_messages(limits, &mut |message| match decode(message) {
                Decoded::Reading(record) => batch.records.push(record),
                Decoded::Poison(pill) => batch.poison.push(pill),
            })?;
        batch.reached_end = polled.reached_end;
        if !polled.revoked.is_empty() {
            let revoked = &polled.revoked;
            batch.records.retain(|r| !revoked.contains(&r.partition));
            batch.poison.retain(|p| !revoked.contains(&p.partition));
        }
        batch.next_offsets = next_offsets(batch.positions());
        Ok(batch)
    }

    /// Goes back to the start of `batch` in each partition this consumer still
    /// holds, so that its messages are read again: for a batch whose commit the
    /// group refused (during a rebalance).
    pub fn rewind(&self, batch: &Batch) -> Result<()> {
        let mut first: BTreeMap<i32, i64> = BTreeMap::new();
        for (partition, offset) in batch.positions() {
            let entry = first.entry(partition).or_insert(offset);
            *entry = (*entry).min(offset);
        }
        let held = self.assignment();
        for (partition, offset) in first {
            if held.contains(&partition) {
                self.client.seek(partition, offset)?;
            }
        }
        Ok(())
    }

    /// Commits the batch's next offsets for the group and waits for the answer,
    /// if this consumer commits. Returns what was committed.
    pub fn commit(&self, batch: &Batch) -> Result<Vec<(i32, i64)>> {
        if !self.options.commits() {
            return Ok(Vec::new());
        }
        self.client.commit(&batch.next_offsets, CommitMode::Sync)?;
        Ok(batch.next_offsets.iter().map(|(p, o)| (*p, *o)).collect())
    }

    /// Reads until the options' maximum, timeout or end of partitions, in
    /// batches: each batch is handed to `on_batch`, appended to `csv` (if given,
    /// flushed to disk), and only then committed.
    ///
    /// Commits are asynchronous between batches (the next batch is read while
    /// the broker stores the offsets) and synchronous at the end, so a read that
    /// returns has its last offsets stored. A crash in between re-reads at most
    /// the batches since the last stored commit, and the CSV log skips the rows
    /// it already has.
    ///
    /// A read that ends by timeout while messages wait that it cannot get fails
    /// ([`Error::StuckPartition`], [`Error::NotAssigned`]), after its commit.
    /// A read that fails keeps what it had done for
    /// [`WeatherConsumer::take_unfinished`].
    pub fn run(
        &mut self,
        csv: Option<&mut CsvLog>,
        on_batch: &mut dyn FnMut(&[ConsumedRecord]),
    ) -> Result<ConsumeReport> {
        let mut report = ConsumeReport {
            topic: self.options.topic.clone(),
            group: self.options.group.clone(),
            from: Some(self.options.from),
            ..ConsumeReport::default()
        };
        self.unfinished = None;
        match self.run_into(&mut report, csv, on_batch) {
            Ok(()) => Ok(report),
            Err(error) => {
                // A read that ended by timeout and then found messages it could
                // not get did commit; any other error cut the read short.
                if !matches!(
                    error,
                    Error::StuckPartition { .. } | Error::NotAssigned { .. }
                ) {
                    report.stopped = StopReason::Failed;
                }
                self.unfinished = Some(report);
                Err(error)
            }
        }
    }

    /// What the last run that failed had read, written and committed before
    /// it failed: the summary its user is still owed.
    pub fn take_unfinished(&mut self) -> Option<ConsumeReport> {
        self.unfinished.take()
    }

    fn run_into(
        &mut self,
        report: &mut ConsumeReport,
        mut csv: Option<&mut CsvLog>,
        on_batch: &mut dyn FnMut(&[ConsumedRecord]),
    ) -> Result<()> {
        let started = Instant::now();
        let deadline = started + self.options.timeout;
        self.client.forget_ends();
        let committed_at_start = self.committed_if_unassigned();
        let mut stall = StallWatch::default();
        loop {
            let read = report.read + report.poison.len();
            let remaining_time = deadline.saturating_duration_since(Instant::now());
            if read >= self.options.max_messages {
                report.stopped = StopReason::MaxMessages;
                break;
            }
            if remaining_time.is_zero() {
                report.stopped = StopReason::Timeout;
                break;
            }
            if shutdown::requested() {
                report.stopped = StopReason::Interrupted;
                break;
            }
            let want = (self.options.max_messages - read).min(self.options.batch_size);
            // Rounds of at most a second, so a Ctrl-C is noticed soon.
            let mut batch = self.poll_round(want, remaining_time.min(Duration::from_secs(1)))?;
            self.watch_round(&mut stall, &batch.partitions_read());
            report.dead_lettered += self.dead_letter(&mut batch.poison)?;
            on_batch(&batch.records);
            if let Some(csv) = csv.as_deref_mut() {
                let appended = csv.append(&batch.records)?;
                report.csv_written += appended.written;
                report.csv_already_present += appended.already_present;
            }
            if self.options.commits() {
                self.client.commit(&batch.next_offsets, CommitMode::Async)?;
                report.committed.extend(&batch.next_offsets);
            }
            report.read += batch.records.len();
            if self.options.keep_records {
                report.records.extend(batch.records);
            }
            report.poison.extend(batch.poison);
            if batch.reached_end {
                report.stopped = StopReason::EndOfPartitions;
                break;
            }
        }
        self.commit_held(&report.committed)?;
        report.events = self.take_events();
        if self.options.positions_at_end {
            report.positions = self.positions()?;
        }
        // A whole read: ending without a partition while messages wait is an
        // error however short it was (the error says a join may need longer).
        if report.stopped == StopReason::Timeout {
            let waited = started.elapsed();
            self.check_timeout_end(&stall, waited, Duration::ZERO, committed_at_start)?;
        }
        Ok(())
    }

    /// Commits, and waits for, the offsets of the partitions still held: the
    /// asynchronous commits before it may still be on their way.
    fn commit_held(&self, committed: &BTreeMap<i32, i64>) -> Result<()> {
        if !self.options.commits() {
            return Ok(());
        }
        let held = self.assignment();
        let mut last = committed.clone();
        last.retain(|partition, _| held.contains(partition));
        self.client.commit(&last, CommitMode::Sync)
    }

    /// Sends the pills' original bytes to the dead-letter topic (if there is one)
    /// and waits until the broker has them; then forgets the bytes. Returns how
    /// many were sent.
    fn dead_letter(&mut self, pills: &mut [PoisonPill]) -> Result<usize> {
        let (Some(producer), Some(topic)) = (&mut self.dead_letters, &self.options.dead_letter)
        else {
            return Ok(0);
        };
        if pills.is_empty() {
            return Ok(0);
        }
        for pill in pills.iter() {
            let (partition, offset) = (pill.partition.to_string(), pill.offset.to_string());
            producer.send(
                topic,
                pill.key.as_deref(),
                pill.value.as_deref(),
                &[
                    ("kafka-lab.error", pill.reason.as_str()),
                    ("kafka-lab.source.topic", pill.topic.as_str()),
                    ("kafka-lab.source.partition", partition.as_str()),
                    ("kafka-lab.source.offset", offset.as_str()),
                ],
            )?;
        }
        producer.flush()?;
        for pill in pills.iter_mut() {
            pill.key = None;
            pill.value = None;
        }
        Ok(pills.len())
    }

    /// For each partition read: the high watermark now and the group's committed
    /// offset now (`None` without a group, or when it has committed nothing).
    pub fn positions(&self) -> Result<Vec<PartitionPosition>> {
        let topic = self.options.topic.as_str();
        let settings = self.client.settings();
        let consumer = self.client.inner();
        let committed: BTreeMap<i32, Option<i64>> = match self.options.group {
            Some(_) => self
                .committed_offsets(settings.timeout())?
                .into_iter()
                .collect(),
            None => BTreeMap::new(),
        };
        self.partitions
            .iter()
            .map(|&partition| {
                // The high watermark comes with every fetch response, and the
                // client keeps the last one; ask the broker only when it has none.
                let high = match self.client.cached_high_watermark(partition) {
                    Some(high) => high,
                    None => {
                        consumer
                            .fetch_watermarks(topic, partition, settings.timeout())
                            .map_err(|e| settings.client_error("reading watermarks", e))?
                            .1
                    }
                };
                let committed = committed.get(&partition).copied().flatten();
                Ok(PartitionPosition {
                    partition,
                    high,
                    committed,
                })
            })
            .collect()
    }
}

/// The offset `list` holds for one partition, when it is a real offset (not
/// "beginning", "end" or "none yet").
pub(super) fn offset_in(list: &TopicPartitionList, topic: &str, partition: i32) -> Option<i64> {
    match list.find_partition(topic, partition)?.offset() {
        Offset::Offset(offset) => Some(offset),
        _ => None,
    }
}

/// The offsets to assign when not subscribing: the start in every partition.
fn start_positions(
    client: &mut KafkaConsumer,
    options: &ConsumeOptions,
    partitions: &[i32],
) -> Result<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    let offset = match options.from {
        StartFrom::Earliest => Offset::Beginning,
        StartFrom::Latest => Offset::End,
        StartFrom::Offset(offset) => Offset::Offset(offset),
        StartFrom::Timestamp(ms) => Offset::Offset(ms),
    };
    for partition in partitions {
        tpl.add_partition_offset(&options.topic, *partition, offset)
            .map_err(|e| Error::kafka("building the assignment", e))?;
    }
    if let StartFrom::Timestamp(ms) = options.from {
        // ListOffsets by time: the earliest offset whose timestamp is >= the time,
        // or the end of the partition when there is none.
        let found =
            crate::offsets::checked_offsets_for_time(client, &options.topic, partitions, ms)?;
        tpl = TopicPartitionList::new();
        for (partition, offset) in found {
            tpl.add_partition_offset(
                &options.topic,
                partition,
                offset.map_or(Offset::End, Offset::Offset),
            )
            .map_err(|e| Error::kafka("building the assignment", e))?;
        }
    }
    Ok(tpl)
}
