//! Consuming: reading readings back, from a chosen start, as a group member or alone.
//!
//! A consumer reads a partition from a **position** (an offset) forwards. Where it
//! starts is the lab's central question:
//! - As a member of a **consumer group** (`group.id`), it starts at the group's
//!   **committed offset** for each partition, if the group has one. Only when it
//!   has none does `auto.offset.reset` decide: `earliest` starts at the low
//!   watermark (everything still stored), `latest` at the high watermark (only
//!   what arrives from now on). A group that has committed ignores the setting,
//!   so every comparison in the lab uses a fresh group id.
//! - With an explicit offset or time (`--from 5`, `--from @1732500000000`), the
//!   consumer is assigned the partitions directly and seeks there; the group's
//!   committed offsets are left alone unless asked to commit.
//!
//! This consumer never commits on a timer (`enable.auto.commit=false`): it
//! commits the next offset to read only after the batch it read has been handled
//! (printed, written and flushed to `kafka_log.csv`). A crash between writing and
//! committing re-reads that batch, and the CSV log drops the rows it already has.
//!
//! Every read is bounded: by a maximum number of messages, by a timeout, and, by
//! default, by reaching the end of every assigned partition (kcat's `-e`). A value
//! that is not a reading (a "poison pill") is reported and skipped, never a panic;
//! with a dead-letter topic its original bytes are kept there, with headers naming
//! the error and its source offset, before the offset is committed.
//!
//! Note on `latest` with librdkafka (kcat, confluent-kafka, this crate): a member
//! that read nothing commits nothing, so the group still has no committed offset
//! when it leaves, and its next run again starts at the then-latest offset. Keep a
//! [`WeatherConsumer`] open to see what arrives after it joined.
//!
//! kcat equivalents: `kcat -C -b HOST -t weather -o beginning -e` (no group),
//! `kcat -G GROUP -b HOST weather -X auto.offset.reset=earliest` (group).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;
use serde::Serialize;

use crate::config::KafkaSettings;
use crate::csv_log::{CsvLog, CsvRow, CSV_HEADER};
use crate::display::{AsTable, Table};
use crate::error::{Error, Result};
use crate::produce::RawProducer;
use crate::shutdown::Shutdown;
use crate::topics;
use crate::weather::Reading;

/// Where a consumer starts reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum StartFrom {
    /// The oldest stored offset, when the group has no committed offset.
    Earliest,
    /// The next offset to be written, when the group has no committed offset.
    Latest,
    /// This offset in every partition read.
    Offset(i64),
    /// The first offset whose timestamp is at or after this time (ms since the epoch).
    Timestamp(i64),
}

impl StartFrom {
    /// Whether this start is decided by `auto.offset.reset` (group subscription)
    /// rather than by seeking.
    pub fn is_reset_policy(self) -> bool {
        matches!(self, StartFrom::Earliest | StartFrom::Latest)
    }
}

impl FromStr for StartFrom {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let bad = || {
            Error::Config(format!(
                "bad --from value '{text}': expected earliest, latest, an offset (e.g. 5) \
                 or @TIMESTAMP_MS (e.g. @1732500000000)"
            ))
        };
        match text.trim().to_ascii_lowercase().as_str() {
            "earliest" | "beginning" | "smallest" => Ok(StartFrom::Earliest),
            "latest" | "end" | "largest" => Ok(StartFrom::Latest),
            other => match other.strip_prefix('@') {
                Some(ms) => ms
                    .parse::<i64>()
                    .ok()
                    .filter(|ms| *ms >= 0)
                    .map(StartFrom::Timestamp)
                    .ok_or_else(bad),
                None => other
                    .parse::<i64>()
                    .ok()
                    .filter(|offset| *offset >= 0)
                    .map(StartFrom::Offset)
                    .ok_or_else(bad),
            },
        }
    }
}

impl fmt::Display for StartFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartFrom::Earliest => write!(f, "earliest"),
            StartFrom::Latest => write!(f, "latest"),
            StartFrom::Offset(offset) => write!(f, "{offset}"),
            StartFrom::Timestamp(ms) => write!(f, "@{ms}"),
        }
    }
}

/// What to read and when to stop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumeOptions {
    /// The topic to read.
    pub topic: String,
    /// The consumer group, or `None` to read without one (nothing is committed).
    pub group: Option<String>,
    /// Where to start.
    pub from: StartFrom,
    /// Only this partition (all partitions when `None`).
    pub partition: Option<i32>,
    /// Stop after this many messages (poison pills included).
    pub max_messages: usize,
    /// Stop after this long, whatever else happens.
    pub timeout: Duration,
    /// Stop once every assigned partition has been read to its end (kcat `-e`).
    pub stop_at_end: bool,
    /// Commit offsets after each handled batch. On by default for group
    /// subscriptions (`earliest`/`latest`), off for seeks to an offset or time.
    pub commit: bool,
    /// A topic for poison pills: their original bytes go there, with headers
    /// naming the error and where they came from, before their offsets are committed.
    pub dead_letter: Option<String>,
    /// Keep every reading in the [`ConsumeReport`] (to show or check them). A
    /// long-running reader that only streams rows (the CLI) turns this off, so its
    /// memory stays bounded by one batch.
    pub keep_records: bool,
}

impl ConsumeOptions {
    /// Reads `topic` from the earliest offset without a group: at most 1000
    /// messages, at most 10 s, stopping at the end of the partitions.
    pub fn new(topic: impl Into<String>) -> Self {
        ConsumeOptions {
            topic: topic.into(),
            group: None,
            from: StartFrom::Earliest,
            partition: None,
            max_messages: 1000,
            timeout: Duration::from_secs(10),
            stop_at_end: true,
            commit: false,
            dead_letter: None,
            keep_records: true,
        }
    }

    /// Sets the group (and, for `earliest`/`latest`, turns commits on).
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self.commit = self.from.is_reset_policy();
        self
    }

    /// Sets where to start (and, with a group, whether to commit by default).
    pub fn from(mut self, from: StartFrom) -> Self {
        self.from = from;
        self.commit = self.group.is_some() && from.is_reset_policy();
        self
    }

    /// Reads only one partition.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Sets the maximum number of messages.
    pub fn max(mut self, max_messages: usize) -> Self {
        self.max_messages = max_messages;
        self
    }

    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Keeps waiting for new messages at the end of the partitions (until the
    /// maximum or the timeout), instead of stopping there.
    pub fn follow(mut self) -> Self {
        self.stop_at_end = false;
        self
    }

    /// Whether to commit after each batch.
    pub fn commit(mut self, commit: bool) -> Self {
        self.commit = commit;
        self
    }

    /// Sends poison pills to `topic` (a dead-letter topic) instead of only skipping them.
    pub fn dead_letter(mut self, topic: impl Into<String>) -> Self {
        self.dead_letter = Some(topic.into());
        self
    }
}

/// A new group id that no consumer has used: `kafka-lab-<label>-<time>-<pid>`.
pub fn fresh_group_id(label: &str) -> String {
    let now = chrono::Utc::now();
    format!(
        "kafka-lab-{label}-{}-{}",
        now.format("%Y%m%d%H%M%S%3f"),
        std::process::id()
    )
}

/// One reading as it was read: where it was in the log, and what it said.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConsumedRecord {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// The message key, if it is text.
    pub key: Option<String>,
    /// The message timestamp (ms since the epoch).
    pub timestamp_ms: Option<i64>,
    /// The reading in the value.
    pub reading: Reading,
}

/// A message whose value is not a reading.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PoisonPill {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// What is wrong with it.
    pub reason: String,
    /// Its first bytes, escaped, for the report.
    pub first_bytes: String,
    /// The message key, kept until the pill is dead-lettered.
    #[serde(skip)]
    pub key: Option<Vec<u8>>,
    /// The message value, kept until the pill is dead-lettered.
    #[serde(skip)]
    pub value: Option<Vec<u8>>,
}

/// What one poll returned.
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
}

/// A change of group membership or a commit, as the consumer saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum GroupEvent {
    /// Partitions given to this member.
    Assigned(Vec<i32>),
    /// Partitions taken from this member.
    Revoked(Vec<i32>),
    /// Offsets committed: (partition, next offset).
    Committed(Vec<(i32, i64)>),
    /// A rebalance or commit failed.
    Failed(String),
}

impl fmt::Display for GroupEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupEvent::Assigned(p) => write!(f, "assigned partitions {p:?}"),
            GroupEvent::Revoked(p) => write!(f, "revoked partitions {p:?}"),
            GroupEvent::Committed(o) => write!(f, "committed (partition, next offset) {o:?}"),
            GroupEvent::Failed(e) => write!(f, "failed: {e}"),
        }
    }
}

/// The consumer context: librdkafka calls it on rebalances and commits, and it
/// records them so the caller can show what the group did.
#[derive(Default)]
pub struct GroupEvents {
    events: Mutex<Vec<GroupEvent>>,
    /// Partitions revoked since [`WeatherConsumer::poll_batch`] last looked.
    revoked: Mutex<BTreeSet<i32>>,
}

impl GroupEvents {
    fn record(&self, event: GroupEvent) {
        if let Ok(mut events) = self.events.lock() {
            events.push(event);
        }
    }
}

impl ClientContext for GroupEvents {}

impl ConsumerContext for GroupEvents {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let (Rebalance::Revoke(tpl), Ok(mut revoked)) = (rebalance, self.revoked.lock()) {
            revoked.extend(partitions_of(tpl));
        }
        self.record(match rebalance {
            Rebalance::Assign(tpl) => GroupEvent::Assigned(partitions_of(tpl)),
            Rebalance::Revoke(tpl) => GroupEvent::Revoked(partitions_of(tpl)),
            Rebalance::Error(e) => GroupEvent::Failed(format!("rebalance: {e}")),
        });
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        self.record(match result {
            Ok(()) => GroupEvent::Committed(
                offsets
                    .elements()
                    .iter()
                    .filter_map(|e| e.offset().to_raw().map(|o| (e.partition(), o)))
                    .collect(),
            ),
            Err(e) => GroupEvent::Failed(format!("commit: {e}")),
        });
    }
}

fn partitions_of(tpl: &TopicPartitionList) -> Vec<i32> {
    tpl.elements().iter().map(|e| e.partition()).collect()
}

/// A consumer of weather readings from one topic.
pub struct WeatherConsumer {
    consumer: BaseConsumer<GroupEvents>,
    settings: KafkaSettings,
    options: ConsumeOptions,
    partitions: Vec<i32>,
    at_end: BTreeSet<i32>,
    dead_letters: Option<RawProducer>,
}

impl WeatherConsumer {
    /// Connects, checks the topic exists, then subscribes (group with
    /// `earliest`/`latest`) or assigns and seeks (no group, offset or time).
    pub fn new(settings: &KafkaSettings, options: ConsumeOptions) -> Result<Self> {
        topics::validate_topic_name(&options.topic)?;
        if options.max_messages == 0 {
            return Err(Error::Config("--max must be at least 1".to_string()));
        }
        if options.commit && options.group.is_none() {
            return Err(Error::Config(
                "committing offsets needs a consumer group: give --group".to_string(),
            ));
        }
        // A member that dies is noticed when its session times out; until then
        // its partitions wait. 10 s (Kafka's default before 3.0, librdkafka's is
        // 45 s) keeps a restarted consumer quick, and matters on the mock engine,
        // which ignores LeaveGroup and always waits out the departed member.
        let mut config = settings.client_config_with_defaults(&[("session.timeout.ms", "10000")]);
        let reset = match options.from {
            StartFrom::Latest => "latest",
            _ => "earliest",
        };
        for (key, value) in [
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", reset),
            ("enable.partition.eof", "true"),
            ("allow.auto.create.topics", "false"),
        ] {
            config.set(key, value);
        }
        // librdkafka needs a group.id even to assign partitions by hand; a
        // consumer without a group gets a throwaway id, and never commits.
        let group_id = options
            .group
            .clone()
            .unwrap_or_else(|| fresh_group_id("no-group"));
        config.set("group.id", &group_id);
        let consumer: BaseConsumer<GroupEvents> = config
            .create_with_context(GroupEvents::default())
            .map_err(|e| Error::from_client(settings, "creating a consumer", e))?;

        let topic = topics::describe_topic(settings, &options.topic)?;
        let partitions: Vec<i32> = topic
            .partitions
            .iter()
            .map(|p| p.partition)
            .filter(|p| options.partition.is_none_or(|only| only == *p))
            .collect();
        if partitions.is_empty() {
            return Err(Error::Config(format!(
                "topic '{}' has no partition {:?} (it has {})",
                options.topic,
                options.partition,
                topic.partitions.len()
            )));
        }

        let subscribe = options.group.is_some()
            && options.from.is_reset_policy()
            && options.partition.is_none();
        if subscribe {
            consumer
                .subscribe(&[&options.topic])
                .map_err(|e| Error::from_client(settings, "subscribing", e))?;
        } else {
            let assignment = start_positions(&consumer, settings, &options, &partitions)?;
            consumer
                .assign(&assignment)
                .map_err(|e| Error::from_client(settings, "assigning partitions", e))?;
        }
        let dead_letters = match &options.dead_letter {
            Some(topic) => {
                topics::describe_topic(settings, topic)?;
                Some(RawProducer::new(settings)?)
            }
            None => None,
        };
        Ok(WeatherConsumer {
            consumer,
            settings: settings.clone(),
            options,
            partitions,
            at_end: BTreeSet::new(),
            dead_letters,
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
        self.consumer
            .assignment()
            .map(|tpl| partitions_of(&tpl))
            .unwrap_or_default()
    }

    /// Group events (assignments, revocations, commits) since the last call.
    pub fn take_events(&self) -> Vec<GroupEvent> {
        self.consumer
            .context()
            .events
            .lock()
            .map(|mut events| std::mem::take(&mut *events))
            .unwrap_or_default()
    }

    /// Reads up to `max` messages, waiting at most `timeout`; with
    /// `stop_at_end`, returns as soon as every assigned partition is read to
    /// its end. Nothing is committed here: see [`WeatherConsumer::commit`].
    ///
    /// librdkafka reports a partition's end once each time it is reached;
    /// [`WeatherConsumer::run`] forgets earlier reports when it starts, so a
    /// consumer kept open waits for new messages rather than stopping at once.
    pub fn poll_batch(&mut self, max: usize, timeout: Duration) -> Result<Batch> {
        let deadline = Instant::now() + timeout;
        let mut batch = Batch::default();
        while batch.message_count() < max {
            if self.options.stop_at_end && self.read_to_end() {
                batch.reached_end = true;
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let wait = (deadline - now).min(Duration::from_millis(100));
            let polled = self.consumer.poll(wait);
            for partition in forget_revoked(self.consumer.context(), &mut batch) {
                self.at_end.remove(&partition);
            }
            match polled {
                None => {}
                Some(Ok(message)) => {
                    self.at_end.remove(&message.partition());
                    batch
                        .next_offsets
                        .insert(message.partition(), message.offset() + 1);
                    match decode(&message) {
                        Decoded::Reading(record) => batch.records.push(record),
                        Decoded::Poison(pill) => batch.poison.push(pill),
                    }
                }
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    self.at_end.insert(partition);
                }
                Some(Err(e)) => self.handle_poll_error(e)?,
            }
        }
        Ok(batch)
    }

    /// Goes back to the start of `batch` in each partition this consumer still
    /// holds, so that its messages are read again: for a batch whose commit the
    /// group refused (during a rebalance).
    pub fn rewind(&self, batch: &Batch) -> Result<()> {
        let mut first: BTreeMap<i32, i64> = BTreeMap::new();
        let offsets = batch
            .records
            .iter()
            .map(|r| (r.partition, r.offset))
            .chain(batch.poison.iter().map(|p| (p.partition, p.offset)));
        for (partition, offset) in offsets {
            let entry = first.entry(partition).or_insert(offset);
            *entry = (*entry).min(offset);
        }
        let held = self.assignment();
        for (partition, offset) in first {
            if held.contains(&partition) {
                self.consumer
                    .seek(
                        &self.options.topic,
                        partition,
                        Offset::Offset(offset),
                        self.settings.timeout(),
                    )
                    .map_err(|e| Error::from_client(&self.settings, "seeking back", e))?;
            }
        }
        Ok(())
    }

    /// Commits the batch's next offsets for the group (synchronously), if this
    /// consumer commits. Returns what was committed.
    pub fn commit(&self, batch: &Batch) -> Result<Vec<(i32, i64)>> {
        if !self.options.commit || batch.next_offsets.is_empty() {
            return Ok(Vec::new());
        }
        let mut tpl = TopicPartitionList::new();
        for (partition, offset) in &batch.next_offsets {
            tpl.add_partition_offset(&self.options.topic, *partition, Offset::Offset(*offset))
                .map_err(|e| Error::kafka("building the commit", e))?;
        }
        self.consumer
            .commit(&tpl, CommitMode::Sync)
            .map_err(|e| Error::from_client(&self.settings, "committing offsets", e))?;
        Ok(batch.next_offsets.iter().map(|(p, o)| (*p, *o)).collect())
    }

    /// Reads until the options' maximum, timeout or end of partitions, in
    /// batches of at most `batch_size`: each batch is handed to `on_record`,
    /// appended to `csv` (if given, flushed to disk), and only then committed.
    pub fn run(
        &mut self,
        mut csv: Option<&mut CsvLog>,
        batch_size: usize,
        on_record: &mut dyn FnMut(&ConsumedRecord),
    ) -> Result<ConsumeReport> {
        let deadline = Instant::now() + self.options.timeout;
        self.at_end.clear();
        let shutdown = Shutdown;
        let mut report = ConsumeReport {
            topic: self.options.topic.clone(),
            group: self.options.group.clone(),
            from: Some(self.options.from),
            ..ConsumeReport::default()
        };
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
            if shutdown.requested() {
                report.stopped = StopReason::Interrupted;
                break;
            }
            let want = (self.options.max_messages - read).min(batch_size.max(1));
            // Short batches, so a Ctrl-C is noticed within a second.
            let mut batch = self.poll_batch(want, remaining_time.min(Duration::from_secs(1)))?;
            report.dead_lettered += self.dead_letter(&mut batch.poison)?;
            batch.records.iter().for_each(&mut *on_record);
            if let Some(csv) = csv.as_deref_mut() {
                let appended = csv.append(&batch.records)?;
                report.csv_written += appended.written;
                report.csv_already_present += appended.already_present;
            }
            for (partition, offset) in self.commit(&batch)? {
                report.committed.insert(partition, offset);
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
        report.events = self.take_events();
        report.positions = self.positions()?;
        Ok(report)
    }

    /// Sends the pills' original bytes to the dead-letter topic (if there is one)
    /// and waits until the broker has them; then forgets the bytes. Returns how
    /// many were sent.
    fn dead_letter(&self, pills: &mut [PoisonPill]) -> Result<usize> {
        let (Some(producer), Some(topic)) = (&self.dead_letters, &self.options.dead_letter) else {
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
        let committed = match self.options.group {
            Some(_) => {
                let mut tpl = TopicPartitionList::new();
                for partition in &self.partitions {
                    tpl.add_partition(topic, *partition);
                }
                self.consumer
                    .committed_offsets(tpl, self.settings.timeout())
                    .map_err(|e| {
                        Error::from_client(&self.settings, "reading committed offsets", e)
                    })?
                    .to_topic_map()
            }
            None => Default::default(),
        };
        self.partitions
            .iter()
            .map(|&partition| {
                let (_, high) = self
                    .consumer
                    .fetch_watermarks(topic, partition, self.settings.timeout())
                    .map_err(|e| Error::from_client(&self.settings, "reading watermarks", e))?;
                let committed = match committed.get(&(topic.to_string(), partition)) {
                    Some(Offset::Offset(offset)) => Some(*offset),
                    _ => None,
                };
                Ok(PartitionPosition {
                    partition,
                    high,
                    committed,
                })
            })
            .collect()
    }

    /// Errors from `poll` are mostly transient (a broker connection dropped and
    /// librdkafka reconnects); a missing topic or a fatal error ends the read.
    fn handle_poll_error(&self, error: KafkaError) -> Result<()> {
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
                Err(Error::UnknownTopic {
                    topic: self.options.topic.clone(),
                    bootstrap: self.settings.bootstrap().to_string(),
                })
            }
            _ if matches!(error, KafkaError::MessageConsumptionFatal(_)) => {
                Err(Error::from_client(&self.settings, "consuming", error))
            }
            _ => Ok(()),
        }
    }

    fn read_to_end(&self) -> bool {
        let assigned = self.assignment();
        !assigned.is_empty() && assigned.iter().all(|p| self.at_end.contains(p))
    }
}

/// A rebalance took partitions away while `batch` was being read: drop their
/// messages, unhandled and uncommitted, and return the partitions. Their next
/// owner reads them from the group's committed offset, so they are neither lost
/// nor handled twice.
fn forget_revoked(events: &GroupEvents, batch: &mut Batch) -> BTreeSet<i32> {
    let revoked = match events.revoked.lock() {
        Ok(mut revoked) => std::mem::take(&mut *revoked),
        Err(_) => return BTreeSet::new(),
    };
    if !revoked.is_empty() {
        batch.records.retain(|r| !revoked.contains(&r.partition));
        batch.poison.retain(|p| !revoked.contains(&p.partition));
        batch.next_offsets.retain(|p, _| !revoked.contains(p));
    }
    revoked
}

/// The offsets to assign when not subscribing: the start in every partition.
fn start_positions(
    consumer: &BaseConsumer<GroupEvents>,
    settings: &KafkaSettings,
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
    if let StartFrom::Timestamp(_) = options.from {
        // ListOffsets by time: the earliest offset whose timestamp is >= the time,
        // or the end of the partition when there is none.
        tpl = consumer
            .offsets_for_times(tpl, settings.timeout())
            .map_err(|e| Error::from_client(settings, "looking up offsets for a time", e))?;
    }
    Ok(tpl)
}

/// A message, read: a reading, or a poison pill.
pub(crate) enum Decoded {
    Reading(ConsumedRecord),
    Poison(PoisonPill),
}

pub(crate) fn decode(message: &BorrowedMessage<'_>) -> Decoded {
    let pill = |reason: String, bytes: &[u8]| PoisonPill {
        topic: message.topic().to_string(),
        partition: message.partition(),
        offset: message.offset(),
        reason,
        first_bytes: preview(bytes),
        key: message.key().map(<[u8]>::to_vec),
        value: message.payload().map(<[u8]>::to_vec),
    };
    let Some(value) = message.payload() else {
        return Decoded::Poison(pill("null value".to_string(), &[]));
    };
    match Reading::from_json(value) {
        Ok(reading) => Decoded::Reading(ConsumedRecord {
            topic: message.topic().to_string(),
            partition: message.partition(),
            offset: message.offset(),
            key: message
                .key()
                .and_then(|k| std::str::from_utf8(k).ok())
                .map(str::to_string),
            timestamp_ms: message.timestamp().to_millis(),
            reading,
        }),
        Err(reason) => Decoded::Poison(pill(format!("{reason} ({} bytes)", value.len()), value)),
    }
}

/// The first 32 bytes, escaped so that binary data prints safely.
fn preview(bytes: &[u8]) -> String {
    let shown: String = bytes[..bytes.len().min(32)]
        .escape_ascii()
        .map(char::from)
        .collect();
    if bytes.len() > 32 {
        format!("{shown}...")
    } else {
        shown
    }
}

/// Why a read stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum StopReason {
    /// It read the maximum number of messages.
    MaxMessages,
    /// Every assigned partition was read to its end.
    EndOfPartitions,
    /// The timeout passed first.
    #[default]
    Timeout,
    /// Ctrl-C or SIGTERM: the current batch was finished and committed first.
    Interrupted,
}

/// Where a partition stood when a read ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PartitionPosition {
    /// The partition.
    pub partition: i32,
    /// Its high watermark.
    pub high: i64,
    /// The group's committed offset (next to read), if any.
    pub committed: Option<i64>,
}

/// Everything one consume run did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ConsumeReport {
    /// The topic read.
    pub topic: String,
    /// The group, if any.
    pub group: Option<String>,
    /// Where it started.
    pub from: Option<StartFrom>,
    /// Readings read.
    pub read: usize,
    /// Readings, in the order read (empty unless the options keep them).
    pub records: Vec<ConsumedRecord>,
    /// Poison pills skipped.
    pub poison: Vec<PoisonPill>,
    /// Poison pills sent to the dead-letter topic.
    pub dead_lettered: usize,
    /// Rows added to the CSV log.
    pub csv_written: usize,
    /// Rows the CSV log already had (a re-read after a crash or re-run).
    pub csv_already_present: usize,
    /// The last commit per partition: the next offset to read.
    pub committed: BTreeMap<i32, i64>,
    /// Why it stopped.
    pub stopped: StopReason,
    /// Rebalances and commits seen.
    pub events: Vec<GroupEvent>,
    /// Watermark and committed offset of each partition when the read ended.
    pub positions: Vec<PartitionPosition>,
}

impl ConsumeReport {
    /// How many readings were read.
    pub fn count(&self) -> usize {
        self.read
    }

    /// The offsets read, in order.
    pub fn offsets(&self) -> Vec<i64> {
        self.records.iter().map(|r| r.offset).collect()
    }

    /// One line: what was read, skipped, written and committed, and why it stopped.
    pub fn summary(&self) -> String {
        let committed: Vec<String> = self
            .committed
            .iter()
            .map(|(p, o)| format!("{}[{p}]={o}", self.topic))
            .collect();
        format!(
            "read {} reading(s), skipped {} poison pill(s) ({} dead-lettered), wrote {} new CSV row(s) \
             ({} already there), committed {}, stopped: {}",
            self.read,
            self.poison.len(),
            self.dead_lettered,
            self.csv_written,
            self.csv_already_present,
            if committed.is_empty() {
                "nothing".to_string()
            } else {
                committed.join(" ")
            },
            match self.stopped {
                StopReason::MaxMessages => "maximum reached",
                StopReason::EndOfPartitions => "end of partitions",
                StopReason::Timeout => "timeout",
                StopReason::Interrupted => "interrupted",
            }
        )
    }
}

/// One row per reading, as the CLI prints them while reading.
/// The columns are those of `kafka_log.csv`.
pub fn record_table(records: &[ConsumedRecord]) -> Table {
    let mut table = Table::new(&CSV_HEADER);
    for r in records {
        table.push_row(record_row(r));
    }
    table
}

/// The cells of one reading's row, as in `kafka_log.csv`.
pub fn record_row(r: &ConsumedRecord) -> Vec<String> {
    CsvRow::from(r).cells()
}

impl AsTable for ConsumeReport {
    fn as_table(&self) -> Table {
        let mut table = record_table(&self.records).with_title(format!(
            "Consumed from '{}' (group {}, from {})",
            self.topic,
            self.group.as_deref().unwrap_or("none"),
            self.from.map_or("-".to_string(), |f| f.to_string())
        ));
        let mut footer = self.summary();
        for pill in &self.poison {
            footer.push_str(&format!(
                "\npoison pill at {}[{}]@{}: {} [{}]",
                pill.topic, pill.partition, pill.offset, pill.reason, pill.first_bytes
            ));
        }
        table.footer = Some(footer);
        table
    }
}

crate::shown_as_table!(ConsumeReport);

/// Reads with `options` and returns what was read, committing as it goes.
pub fn consume(settings: &KafkaSettings, options: ConsumeOptions) -> Result<ConsumeReport> {
    WeatherConsumer::new(settings, options)?.run(None, 500, &mut |_| {})
}

/// Reads with `options` into the CSV log at `csv_path`: each batch is written and
/// flushed before its offsets are committed, so a crash never loses a row and a
/// re-run never duplicates one.
pub fn consume_to_csv(
    settings: &KafkaSettings,
    options: ConsumeOptions,
    csv_path: &std::path::Path,
) -> Result<ConsumeReport> {
    // The consumer first: a bad setting must fail before the file is touched.
    let mut consumer = WeatherConsumer::new(settings, options)?;
    let mut csv = CsvLog::open(csv_path)?;
    consumer.run(Some(&mut csv), 500, &mut |_| {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_from_parses_the_cli_forms() {
        assert_eq!(
            "earliest".parse::<StartFrom>().unwrap(),
            StartFrom::Earliest
        );
        assert_eq!(
            "beginning".parse::<StartFrom>().unwrap(),
            StartFrom::Earliest
        );
        assert_eq!("LATEST".parse::<StartFrom>().unwrap(), StartFrom::Latest);
        assert_eq!("42".parse::<StartFrom>().unwrap(), StartFrom::Offset(42));
        assert_eq!(
            "@1732500000000".parse::<StartFrom>().unwrap(),
            StartFrom::Timestamp(1_732_500_000_000)
        );
        for bad in ["", "soon", "-3", "@", "@x", "1.5"] {
            let error = bad.parse::<StartFrom>().unwrap_err();
            assert_eq!(error.exit_code(), 2, "{bad}");
            assert!(error.to_string().contains("expected earliest"), "{error}");
        }
        assert_eq!(StartFrom::Timestamp(5).to_string(), "@5");
    }

    #[test]
    fn options_commit_only_for_group_subscriptions() {
        let options = ConsumeOptions::new("weather");
        assert!(!options.commit);
        assert!(options.clone().group("g").commit);
        assert!(!options.clone().group("g").from(StartFrom::Offset(3)).commit);
        assert!(options.from(StartFrom::Latest).group("g").commit);
    }

    #[test]
    fn fresh_group_ids_differ() {
        let a = fresh_group_id("x");
        std::thread::sleep(Duration::from_millis(2));
        assert_ne!(a, fresh_group_id("x"));
        assert!(a.starts_with("kafka-lab-x-"));
    }

    #[test]
    fn preview_escapes_and_truncates() {
        assert_eq!(preview(b"ab\x00\xff"), "ab\\x00\\xff");
        assert_eq!(preview(&[b'a'; 40]), format!("{}...", "a".repeat(32)));
    }
}
