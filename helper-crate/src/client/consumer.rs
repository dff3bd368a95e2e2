//! The consumer the crate builds ([`KafkaConsumer`]), and what its poll loop
//! keeps track of between polls: the topic, the partitions assigned, which of
//! them it has read to the end, and whether the brokers answer. Also how it
//! closes: a group member leaves its group when dropped, within a bounded wait.
//!
//! It is made by [`ConsumerBuilder::build`](super::ConsumerBuilder::build);
//! its poll loop is in [`crate::consume::poll`].

use std::collections::{BTreeMap, BTreeSet};
use std::mem::ManuallyDrop;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;

use crate::config::KafkaSettings;
use crate::error::{Error, Result};

use super::commit::commit_within;
use super::{dropped, offset_list, DroppedByCreator, GroupEvent, GroupEvents};

/// A consumer built by [`ConsumerBuilder`](super::ConsumerBuilder), and what
/// its poll loop keeps track of: the topic it reads, its partitions, and which
/// of them it has read to the end. It reads one topic. The poll loop is
/// [`KafkaConsumer::poll_messages`].
pub struct KafkaConsumer {
    pub(crate) consumer: DroppedByCreator<BaseConsumer<GroupEvents>>,
    pub(crate) settings: KafkaSettings,
    pub(crate) group: Option<String>,
    pub(crate) topic: String,
    pub(crate) at_end: BTreeSet<i32>,
    /// For each partition read to its end: the high watermark then.
    pub(crate) end_marks: BTreeMap<i32, i64>,
    /// The high watermark last looked up for each partition read: until a
    /// message reaches it, the poll loop need not look again.
    pub(crate) known_highs: BTreeMap<i32, i64>,
    /// Partitions marked at their end by their last message, whose
    /// end-of-partition event has not come yet (and is then passed over).
    pub(crate) ended_early: BTreeSet<i32>,
    pub(crate) assigned: Vec<i32>,
    /// When the client last said it had lost every broker, until it reads again.
    pub(crate) brokers_down_since: Option<std::time::Instant>,
    /// Its group's `session.timeout.ms`.
    pub(crate) session_timeout: Duration,
}

/// Closes a group consumer (it commits nothing more, and leaves its group),
/// then drops it. rust-rdkafka's drop closes it too, but looks whether the
/// close has finished only after each 100 ms of polling: measured on nisshi,
/// a `consume` of 200,000 readings spent 0.40 s in it, where the Python
/// client's close took 0.24 s. Here the close's events are served in slices
/// of [`CLOSE_SLICE`] for the first second, then of 100 ms. A close that
/// never finishes (see `Drop for KafkaConsumer`) keeps this thread in the
/// loop, as rust-rdkafka's would.
///
/// rust-rdkafka's drop then asks for the close again; librdkafka answers
/// "Consumer already closed", and rust-rdkafka logs that as an error through
/// the `log` crate (target `rdkafka::consumer::base_consumer`). Nothing is
/// printed unless a program installs a logger for that target; kafka-lab's
/// (`-X debug=...`) shows librdkafka's own lines only.
fn close_then_drop(consumer: &mut ManuallyDrop<BaseConsumer<GroupEvents>>) {
    // Every consumer the crate builds has a group id (a throwaway one when
    // assigned); the close is refused only when it was closed already, or
    // after a fatal error: then there is nothing to wait for.
    if consumer.close_queue().is_ok() {
        let started = std::time::Instant::now();
        while !consumer.closed() {
            let slice = if started.elapsed() < Duration::from_secs(1) {
                CLOSE_SLICE
            } else {
                Duration::from_millis(100)
            };
            // Whatever a poll hands back now (a message fetched before the
            // close) is dropped: nothing reads it any more.
            let _ = consumer.poll(slice);
        }
    }
    dropped::destroy_here(consumer);
}

/// How long a closing consumer waits in one poll for the close's next event.
const CLOSE_SLICE: Duration = Duration::from_millis(5);

impl Drop for KafkaConsumer {
    /// Closes the consumer (it leaves its group, unless it is a static member),
    /// waiting at most the settings' timeout. librdkafka 2.12 can wait forever
    /// in a close: a rebalance callback that runs during the close calls
    /// `rd_kafka_assign`, whose request the group's thread, terminating, drops
    /// without an answer (librdkafka issue #4884; seen with static members on
    /// tansu: a `consume` that had finished sat in its close for 20 minutes).
    fn drop(&mut self) {
        let limit = self.settings.timeout();
        // SAFETY: the consumer is not used after this, its holder's drop.
        if !unsafe { self.consumer.destroy_within(limit) } {
            eprintln!(
                "warning: closing the consumer did not finish within {limit:?} (librdkafka \
                 can wait forever there); it is left to close, or to end with the process"
            );
        }
    }
}

impl KafkaConsumer {
    /// A consumer as [`ConsumerBuilder::build`](super::ConsumerBuilder::build) made it: it reads nothing
    /// until it subscribes or is assigned partitions.
    pub(crate) fn new(
        consumer: BaseConsumer<GroupEvents>,
        settings: KafkaSettings,
        group: Option<String>,
        session_timeout: Duration,
    ) -> Self {
        KafkaConsumer {
            consumer: DroppedByCreator::with_destroy(consumer, close_then_drop),
            settings,
            group,
            topic: String::new(),
            at_end: BTreeSet::new(),
            end_marks: BTreeMap::new(),
            known_highs: BTreeMap::new(),
            ended_early: BTreeSet::new(),
            assigned: Vec::new(),
            brokers_down_since: None,
            session_timeout,
        }
    }

    /// Joins the group and asks for `topic`'s partitions: the group assigns them
    /// during the next polls, starting at the committed offsets (or
    /// `auto.offset.reset`).
    pub fn subscribe(&mut self, topic: &str) -> Result<()> {
        self.topic = topic.to_string();
        // librdkafka drops the events of an old assignment.
        self.ended_early.clear();
        self.consumer
            .subscribe(&[topic])
            .map_err(|e| self.settings.client_error("subscribing", e))
    }

    /// Reads these partitions of `topic` from these offsets, outside any group
    /// assignment: `(partition, start)`.
    pub fn assign(&mut self, topic: &str, starts: &[(i32, Offset)]) -> Result<()> {
        let mut tpl = TopicPartitionList::new();
        for (partition, start) in starts {
            tpl.add_partition_offset(topic, *partition, *start)
                .map_err(|e| Error::kafka("building the assignment", e))?;
        }
        self.assign_list(topic, &tpl)
    }

    /// [`KafkaConsumer::assign`] with a ready list (e.g. offsets looked up by time).
    pub fn assign_list(&mut self, topic: &str, tpl: &TopicPartitionList) -> Result<()> {
        self.topic = topic.to_string();
        // librdkafka drops the events of an old assignment.
        self.ended_early.clear();
        self.consumer
            .assign(tpl)
            .map_err(|e| self.settings.client_error("assigning partitions", e))?;
        self.assigned = tpl.elements().iter().map(|e| e.partition()).collect();
        // Each partition is read anew from where the list says: what this
        // consumer knew of its end belongs to an earlier read.
        for partition in &self.assigned {
            self.at_end.remove(partition);
            self.end_marks.remove(partition);
        }
        Ok(())
    }

    /// The topic read.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The group, if any.
    pub fn group_id(&self) -> Option<&str> {
        self.group.as_deref()
    }

    /// The settings it was built with.
    pub fn settings(&self) -> &KafkaSettings {
        &self.settings
    }

    /// The rust-rdkafka consumer, for any call this type does not wrap.
    pub fn inner(&self) -> &BaseConsumer<GroupEvents> {
        &self.consumer
    }

    /// The partitions this consumer reads now.
    pub fn assignment(&self) -> Vec<i32> {
        self.assigned.clone()
    }

    /// How long its group waits for a silent member (`session.timeout.ms`).
    pub fn session_timeout(&self) -> Duration {
        self.session_timeout
    }

    /// Group events (assignments, revocations, commits) since the last call.
    pub fn take_events(&self) -> Vec<GroupEvent> {
        self.consumer.context().take_events()
    }

    /// Commits `next_offsets` (partition → next offset to read) for the group.
    /// `Sync` waits for the broker's answer; `Async` returns at once and the
    /// answer arrives as a [`GroupEvent`] during a later poll.
    pub fn commit(&self, next_offsets: &BTreeMap<i32, i64>, mode: CommitMode) -> Result<()> {
        if next_offsets.is_empty() {
            return Ok(());
        }
        let tpl = offset_list(&self.topic, next_offsets)?;
        // The poll loop already saw every broker go: ask once (2 s) before a
        // synchronous commit waits its rounds for an answer that cannot come.
        if matches!(mode, CommitMode::Sync)
            && self.brokers_down_since.is_some()
            && !self.broker_answers()
        {
            self.consumer.abandon();
            let timed_out = KafkaError::ConsumerCommit(RDKafkaErrorCode::OperationTimedOut);
            return Err(self.settings.client_error("committing offsets", timed_out));
        }
        // What the last broker check during the commit's wait found.
        let broker_silent = std::cell::Cell::new(false);
        let result = match mode {
            CommitMode::Sync => {
                commit_within(&self.consumer, &tpl, self.settings.timeout(), &|| {
                    let answers = self.broker_answers();
                    broker_silent.set(!answers);
                    answers
                })
            }
            CommitMode::Async => self.consumer.commit(&tpl, mode),
        };
        if let Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::OperationTimedOut)) = &result {
            // No answer, and the broker is gone: a close would wait for one
            // too, so leave the client as it is.
            if broker_silent.get() {
                self.consumer.abandon();
            }
        }
        result.map_err(|e| self.settings.client_error("committing offsets", e))
    }

    /// The high watermark the client last saw in a fetch response for this
    /// partition of its topic (`rd_kafka_get_watermark_offsets`: no request),
    /// if it has one.
    pub fn cached_high_watermark(&self, partition: i32) -> Option<i64> {
        let topic = std::ffi::CString::new(self.topic.as_str()).ok()?;
        let (mut low, mut high) = (-1i64, -1i64);
        // SAFETY: the client pointer is live for the call, the topic is a valid C
        // string, and librdkafka only writes the two integers.
        let error = unsafe {
            rdkafka::bindings::rd_kafka_get_watermark_offsets(
                self.consumer.client().native_ptr(),
                topic.as_ptr(),
                partition,
                &mut low,
                &mut high,
            )
        };
        (error == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
            .then_some(high)
    }

    /// Whether a broker answers a metadata request for this consumer's topic
    /// within 2 s: the check before giving a client up for lost.
    pub(crate) fn broker_answers(&self) -> bool {
        let topic = (!self.topic.is_empty()).then_some(self.topic.as_str());
        self.consumer
            .fetch_metadata(topic, Duration::from_secs(2))
            .is_ok()
    }

    /// Moves the read position of one held partition.
    pub fn seek(&self, partition: i32, offset: i64) -> Result<()> {
        self.consumer
            .seek(
                &self.topic,
                partition,
                Offset::Offset(offset),
                self.settings.timeout(),
            )
            .map_err(|e| self.settings.client_error("seeking", e))
    }

    /// Forgets which partitions were at their end, so that the next read waits
    /// for new messages instead of stopping at once.
    pub fn forget_ends(&mut self) {
        self.at_end.clear();
    }

    /// Forgets the end of each partition that has grown since it was reached
    /// (its high watermark, asked of the broker, is past this consumer's
    /// position), so that the next read returns the new messages, while a read
    /// of partitions that are still at their end returns at once.
    pub fn forget_passed_ends(&mut self) -> Result<()> {
        if self.at_end.is_empty() {
            return Ok(());
        }
        let positions = self.consumer.position().map_err(|e| {
            self.settings
                .client_error("reading the consumer's position", e)
        })?;
        for element in positions.elements() {
            let partition = element.partition();
            if !self.at_end.contains(&partition) {
                continue;
            }
            let (_, high) = self
                .consumer
                .fetch_watermarks(element.topic(), partition, self.settings.timeout())
                .map_err(|e| {
                    self.settings
                        .client_error(format!("watermarks of {}[{partition}]", element.topic()), e)
                })?;
            // Behind: the partition grew since this consumer read to its end
            // (a consumer that has read nothing yet has no position, only the
            // mark taken at the end).
            let behind = match (element.offset(), self.end_marks.get(&partition)) {
                (Offset::Offset(position), _) => position < high,
                (_, Some(mark)) => *mark < high,
                (_, None) => true,
            };
            if behind {
                self.at_end.remove(&partition);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ConsumerBuilder;

    #[test]
    fn a_partition_assigned_anew_is_not_at_its_old_end() {
        // No broker needed: building and assigning are local to the client
        // (the fetch wait is given, so no engine is asked for it).
        let settings = KafkaSettings::new("127.0.0.1:1").with("fetch.wait.max.ms", "100");
        let mut consumer = ConsumerBuilder::new(&settings).build().unwrap();
        consumer.at_end.extend([0, 1]);
        consumer.end_marks.extend([(0, 5), (1, 7)]);
        consumer
            .assign("weather", &[(0, Offset::Offset(2))])
            .unwrap();
        assert!(!consumer.read_to_end(), "partition 0 is read anew");
        assert_eq!(consumer.at_end, BTreeSet::from([1]));
        assert_eq!(consumer.end_marks, BTreeMap::from([(1, 7)]));
    }
}
