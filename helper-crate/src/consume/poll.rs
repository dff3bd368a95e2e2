//! The poll loop: the one place where messages are taken from librdkafka.
//!
//! `poll` hands back one thing at a time from the client's queue: a message,
//! an event ("partition 0 is at its end"), or an error. Rebalance and commit
//! callbacks run inside `poll` too. Every reader in the crate (the lab's
//! consumer, the commit-strategy and exactly-once demos, the group demo, the
//! benchmark, the check of offsets looked up by time, the tests) reads through
//! [`KafkaConsumer::poll_messages`], which:
//!
//! - waits at most until its deadline, and returns after `max` messages;
//! - tracks the end of each assigned partition and, when asked, returns as soon
//!   as every one is read to its end (kcat's `-e`): a partition is at its end
//!   when its last message (by the high watermark of the latest fetch) has been
//!   handed over, or when librdkafka says so after an empty fetch;
//! - returns early when a rebalance revoked partitions, naming them: their
//!   messages in the caller's batch must be dropped, unhandled and uncommitted,
//!   because their next owner reads them from the group's committed offset;
//! - treats a missing topic and a fatal consumer error as errors, and anything
//!   else librdkafka reports (a dropped connection it will retry) as transient.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;

use crate::client::{partitions_of, KafkaConsumer};
use crate::error::{Error, Result};

/// How one call of the poll loop ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Polled {
    /// Messages handed to the caller.
    pub messages: usize,
    /// Every assigned partition has been read to its end.
    pub reached_end: bool,
    /// Partitions a rebalance took away during this call.
    pub revoked: BTreeSet<i32>,
}

/// When the poll loop returns.
#[derive(Clone, Copy, Debug)]
pub struct PollLimits {
    /// After this many messages.
    pub max: usize,
    /// After this long.
    pub timeout: Duration,
    /// As soon as every assigned partition is read to its end.
    pub stop_at_end: bool,
}

/// A client `poll` waits at most this long, so the loop notices its deadline,
/// a Ctrl-C and a rebalance soon after they happen.
const POLL_SLICE: Duration = Duration::from_millis(100);

impl KafkaConsumer {
    /// Polls until `limits` say stop, handing each message to `on_message`.
    pub fn poll_messages(
        &mut self,
        limits: PollLimits,
        on_message: &mut dyn FnMut(&BorrowedMessage<'_>),
    ) -> Result<Polled> {
        let deadline = Instant::now() + limits.timeout;
        let mut polled = Polled::default();
        while polled.messages < limits.max {
            if limits.stop_at_end && self.read_to_end() {
                polled.reached_end = true;
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let result = self.consumer.poll((deadline - now).min(POLL_SLICE));
            let revoked = match self.consumer.context().take_rebalance() {
                Some(revoked) => {
                    for partition in &revoked {
                        self.at_end.remove(partition);
                        self.ended_early.remove(partition);
                    }
                    self.assigned = self
                        .consumer
                        .assignment()
                        .map(|tpl| partitions_of(&tpl))
                        .unwrap_or_default();
                    revoked
                }
                None => BTreeSet::new(),
            };
            match result {
                None => {}
                // A message of a partition just taken away is left to its next
                // owner, who reads it from the group's committed offset.
                Some(Ok(message)) if revoked.contains(&message.partition()) => {}
                Some(Ok(message)) => {
                    self.brokers_down_since = None;
                    if !self.at_end.is_empty() {
                        self.at_end.remove(&message.partition());
                    }
                    if !self.ended_early.is_empty() {
                        // An event of the empty fetch after an early end would
                        // have come before this message: none is left over.
                        self.ended_early.remove(&message.partition());
                    }
                    on_message(&message);
                    polled.messages += 1;
                    if limits.stop_at_end {
                        self.note_end_if_last(message.partition(), message.offset());
                    }
                }
                // The event of the empty fetch after an early end (below) says
                // nothing new, and by the time it comes, maybe in a later read,
                // the partition may have grown: it is passed over.
                Some(Err(KafkaError::PartitionEOF(partition)))
                    if self.ended_early.remove(&partition) => {}
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    self.at_end.insert(partition);
                    if let Some(high) = self.cached_high_watermark(partition) {
                        self.end_marks.insert(partition, high);
                    }
                }
                Some(Err(error)) => self.poll_error(error)?,
            }
            self.check_brokers_are_back()?;
            if !revoked.is_empty() {
                // The caller drops what it holds of these partitions, unhandled
                // and uncommitted, before it commits the rest.
                polled.revoked = revoked;
                break;
            }
        }
        Ok(polled)
    }

    /// Marks `partition` read to its end when the message at `offset` is the
    /// last one its high watermark counts (as of the client's latest fetch
    /// response; no request). librdkafka's end-of-partition event says the
    /// same, but only once a fetch has come back empty, and a broker holds an
    /// empty fetch for up to `fetch.wait.max.ms` (1 s on nisshi, 0.1 s on
    /// tansu, 0.5 s on Kafka, 0.3 s on the mock): measured on the mock, that wait was
    /// most of the gap between `consume` and `kcat -G -e`.
    /// The event still marks partitions this cannot: empty ones, and ones whose
    /// last offset is a transaction marker rather than a message.
    ///
    /// A watermark remembered from another topic or an older assignment can
    /// only be too high: then the early end is missed and the event ends the
    /// read, as before.
    fn note_end_if_last(&mut self, partition: i32, offset: i64) {
        let next = offset + 1;
        if self
            .known_highs
            .get(&partition)
            .is_some_and(|&high| next < high)
        {
            return;
        }
        let Some(high) = self.cached_high_watermark(partition) else {
            return;
        };
        self.known_highs.insert(partition, high);
        if next >= high {
            self.at_end.insert(partition);
            self.end_marks.insert(partition, high);
            // librdkafka's next fetch of it may come back empty, and raise an
            // end-of-partition event that no longer means anything.
            self.ended_early.insert(partition);
        }
    }

    /// Whether every assigned partition has been read to its end.
    pub fn read_to_end(&self) -> bool {
        !self.assigned.is_empty() && self.assigned.iter().all(|p| self.at_end.contains(p))
    }

    /// Errors from `poll` are mostly transient (a broker connection dropped and
    /// librdkafka reconnects); a missing topic or a fatal error ends the read.
    fn poll_error(&mut self, error: KafkaError) -> Result<()> {
        match error.rdkafka_error_code() {
            // A lost connection: maybe the broker is gone, maybe it is a blip;
            // check_brokers_are_back decides after the broker timeout.
            Some(RDKafkaErrorCode::AllBrokersDown | RDKafkaErrorCode::BrokerTransportFailure) => {
                self.brokers_down_since.get_or_insert_with(Instant::now);
                Ok(())
            }
            Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
                Err(Error::UnknownTopic {
                    topic: self.topic.clone(),
                    bootstrap: self.settings.bootstrap().to_string(),
                })
            }
            _ if matches!(error, KafkaError::MessageConsumptionFatal(_)) => {
                self.consumer.abandon();
                Err(self.settings.client_error("consuming", error))
            }
            _ => Ok(()),
        }
    }

    /// Ends the read when the client has lost every broker for longer than the
    /// broker timeout and a metadata request (2 s) confirms nobody answers:
    /// librdkafka would otherwise retry forever, and a `--follow` read would
    /// wait out its whole timeout with no broker behind it.
    fn check_brokers_are_back(&mut self) -> Result<()> {
        let Some(since) = self.brokers_down_since else {
            return Ok(());
        };
        if since.elapsed() < self.settings.timeout() {
            return Ok(());
        }
        match self.broker_answers() {
            true => {
                self.brokers_down_since = None;
                Ok(())
            }
            false => {
                self.consumer.abandon();
                Err(Error::Timeout {
                what: format!(
                    "an answer from the broker at {} (every connection lost {:.0} s ago)",
                    self.settings.bootstrap(),
                    since.elapsed().as_secs_f32()
                ),
                waited: self.settings.timeout(),
                hint: Some("start the broker again (kafka-lab broker); the CSV keeps what was written, and the group resumes from its last commit".to_string()),
            })
            }
        }
    }
}
