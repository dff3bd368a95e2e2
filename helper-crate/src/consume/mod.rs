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
//! - With an explicit offset or time ([`StartFrom::Offset`],
//!   [`StartFrom::Timestamp`]), the consumer is assigned the partitions directly
//!   and seeks there; the group's committed offsets are left alone unless asked
//!   to commit.
//!
//! This consumer never commits on a timer (`enable.auto.commit=false`): it
//! commits the next offset to read only after the batch it read has been handled
//! (printed, written and flushed to `kafka_log.csv`). Between batches the commit
//! is asynchronous (the next batch is read while the broker stores it); the last
//! one is synchronous. A crash between writing and committing re-reads that
//! batch, and the CSV log skips the rows it already has.
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
//!
//! The module's parts: [`options`] (what to read), [`poll`] (the one poll loop,
//! shared by every reader in the crate), [`consumer`] (batches written, then
//! committed), [`report`] (what a read did) and [`stall`] (a read that ends by
//! timeout with messages it could not get: a stuck partition, or a member the
//! group gave nothing).

pub mod consumer;
pub mod options;
pub mod poll;
pub mod report;
pub mod stall;
mod timeout_end;

use std::path::Path;

pub use crate::client::GroupEvent;
pub use crate::record::{ConsumedRecord, PoisonPill};
pub use consumer::{Batch, WeatherConsumer};
pub use options::{fresh_group_id, ConsumeOptions, StartFrom, DEFAULT_BATCH_SIZE};
pub use poll::{PollLimits, Polled};
pub use report::{record_table, ConsumeReport, PartitionPosition, StopReason, RECORD_COLUMNS};

use crate::config::KafkaSettings;
use crate::csv_log::CsvLog;
use crate::error::Result;

/// Reads with `options` and returns what was read, committing as it goes.
pub fn consume(settings: &KafkaSettings, options: ConsumeOptions) -> Result<ConsumeReport> {
    WeatherConsumer::new(settings, options)?.run(None, &mut |_| {})
}

/// Reads with `options` into the CSV log at `csv_path`: each batch is written and
/// flushed before its offsets are committed, so a crash never loses a row and a
/// re-run never duplicates one.
pub fn consume_to_csv(
    settings: &KafkaSettings,
    options: ConsumeOptions,
    csv_path: &Path,
) -> Result<ConsumeReport> {
    // The consumer first: a bad setting must fail before the file is touched.
    let mut consumer = WeatherConsumer::new(settings, options)?;
    let mut csv = CsvLog::open(csv_path)?;
    consumer.run(Some(&mut csv), &mut |_| {})
}
