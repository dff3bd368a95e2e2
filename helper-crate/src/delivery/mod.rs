//! Delivery guarantees: at-most-once, at-least-once, exactly-once.
//!
//! A consumer **processes** a message (prints it, saves it, acts on it) and
//! **commits** its offset (tells the group where to resume). A crash between the
//! two decides what the next member sees:
//! - commit *before* processing: the crash loses the messages committed but not
//!   yet processed — **at most once**;
//! - commit *after* processing: the crash repeats the messages processed but not
//!   yet committed — **at least once**, with duplicates;
//! - librdkafka's at-least-once pattern: `enable.auto.offset.store=false`, and
//!   each offset is *stored* only once its message is processed, while
//!   `enable.auto.commit=true` commits the stored offsets in the background. A
//!   crash never loses a message and repeats at most what was processed since
//!   the last auto-commit (`auto.commit.interval.ms`).
//!
//! On the producing side, `enable.idempotence=true` (with `acks=all`) stops
//! retries from writing a message twice. A **transactional producer**
//! (`transactional.id`) goes further: the messages of one transaction, on any
//! partitions, and the consumer offsets sent with them, become visible together
//! on commit or not at all on abort. Consumers with `isolation.level=read_committed`
//! skip aborted messages; `read_uncommitted` ones see them. Reading, transforming
//! and writing inside one transaction, offsets included, is **exactly once**.
//!
//! Transactions need a broker that implements them (Apache Kafka does). The
//! embedded engines do not: [`transactions_demo`] reports what the broker did
//! rather than assuming it.
//!
//! Kafka CLI equivalents: `kafka-console-consumer.sh --isolation-level
//! read_committed`; `kafka-transactions.sh`; kcat: `-X isolation.level=...`.
//!
//! The module's parts: [`strategies`] (when a consumer commits, and a consumer
//! that processes with each strategy), [`crash`] (a real process crashing mid-batch,
//! then a restart), [`transactions`] (a transactional producer, committed and
//! aborted transactions, isolation levels) and [`exactly_once`]
//! (consume-transform-produce inside transactions).

pub mod crash;
pub mod exactly_once;
pub mod strategies;
pub mod transactions;

pub use crash::{crash_demo, CrashDemo, CrashDemos, Processed, CRASH_EXIT_CODE};
pub use exactly_once::{
    check_averages, exactly_once_averages, AveragesCheck, CityAverage, EosOptions, EosRun,
};
pub use strategies::{process, CommitStrategy, ProcessOptions, ProcessReport};
pub use transactions::{
    read_all, transactions_demo, Isolation, TransactionDemo, TransactionalProducer,
};

use crate::client::{ConsumerBuilder, KafkaConsumer};
use crate::config::KafkaSettings;
use crate::consume::PollLimits;
use crate::error::Result;
use crate::record::{decode, Decoded};
use crate::topics;

/// A member of `group` subscribed to `topic`, starting at the earliest offset
/// where the group has none: `builder` carries the commit settings.
fn group_member(builder: ConsumerBuilder, topic: &str) -> Result<KafkaConsumer> {
    let mut consumer = builder.build()?;
    topics::topic_partitions(consumer.settings(), topic)?;
    consumer.subscribe(topic)?;
    Ok(consumer)
}

/// The consumer settings of the demos' group members.
fn member_builder(settings: &KafkaSettings, group: &str) -> ConsumerBuilder {
    ConsumerBuilder::new(settings).group(group)
}

/// Reads up to `max` messages (at most a second, less once the partitions are at
/// their end), decoded, without those of partitions a rebalance took away.
/// Returns them and whether every partition is read to its end.
fn read_batch(consumer: &mut KafkaConsumer, max: usize) -> Result<(Vec<Decoded>, bool)> {
    let mut batch = Vec::new();
    let limits = PollLimits {
        max,
        timeout: std::time::Duration::from_secs(1),
        stop_at_end: true,
    };
    let polled = consumer.poll_messages(limits, &mut |message| batch.push(decode(message)))?;
    batch.retain(|decoded| !polled.revoked.contains(&decoded.position().0));
    Ok((batch, polled.reached_end))
}

/// For each partition of `batch`, the next offset to read.
fn next_offsets(batch: &[Decoded]) -> std::collections::BTreeMap<i32, i64> {
    crate::record::next_offsets(batch.iter().map(Decoded::position))
}
