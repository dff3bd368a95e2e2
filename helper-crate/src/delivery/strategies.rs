//! Commit strategies: when a consumer commits, relative to processing.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use serde::Serialize;

use super::{group_member, member_builder, next_offsets, read_batch};
use crate::config::KafkaSettings;
use crate::error::{Error, Result};
use crate::record::{ConsumedRecord, Decoded};
use crate::topics;

/// When a consumer commits, relative to processing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
pub enum CommitStrategy {
    /// Commit each batch as soon as it is read, then process it (at most once).
    #[value(name = "commit-before", alias = "at-most-once")]
    CommitBeforeProcessing,
    /// Process each batch, then commit it (at least once).
    #[value(name = "commit-after", alias = "at-least-once")]
    CommitAfterProcessing,
    /// Store each offset after processing its message; auto-commit stores.
    #[value(name = "store-after")]
    StoreAfterProcessing,
}

impl CommitStrategy {
    /// All three, in the order the chapter shows them.
    pub const ALL: [CommitStrategy; 3] = [
        CommitStrategy::CommitBeforeProcessing,
        CommitStrategy::CommitAfterProcessing,
        CommitStrategy::StoreAfterProcessing,
    ];

    /// The guarantee it gives.
    pub fn guarantee(self) -> &'static str {
        match self {
            CommitStrategy::CommitBeforeProcessing => "at most once",
            CommitStrategy::CommitAfterProcessing => "at least once",
            CommitStrategy::StoreAfterProcessing => "at least once (stored offsets)",
        }
    }

    /// The librdkafka consumer properties that make it.
    pub fn properties(self, auto_commit_interval: Duration) -> Vec<(&'static str, String)> {
        match self {
            CommitStrategy::CommitBeforeProcessing | CommitStrategy::CommitAfterProcessing => vec![
                ("enable.auto.commit", "false".to_string()),
                ("enable.auto.offset.store", "false".to_string()),
            ],
            CommitStrategy::StoreAfterProcessing => vec![
                ("enable.auto.commit", "true".to_string()),
                ("enable.auto.offset.store", "false".to_string()),
                (
                    "auto.commit.interval.ms",
                    auto_commit_interval.as_millis().to_string(),
                ),
            ],
        }
    }
}

impl fmt::Display for CommitStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use clap::ValueEnum;
        match self.to_possible_value() {
            Some(value) => f.write_str(value.get_name()),
            None => write!(f, "{self:?}"),
        }
    }
}

/// How [`process`] reads. It is also the argument list of the `process`
/// command, which the crash demos run as a child process: [`ProcessOptions::to_args`]
/// renders it and clap parses it back, from this one definition.
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
pub struct ProcessOptions {
    /// The topic
    #[arg(long, default_value = "weather")]
    pub topic: String,
    /// The group (its committed offsets decide where a restart resumes)
    #[arg(long)]
    pub group: String,
    /// When to commit, relative to processing
    #[arg(long, value_enum, default_value_t = CommitStrategy::CommitAfterProcessing)]
    pub strategy: CommitStrategy,
    /// Messages per batch
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch: u64,
    /// Time spent "processing" each reading (a slow consumer), in milliseconds
    #[arg(long = "work-ms", value_name = "MS", default_value = "0", value_parser = parse_millis)]
    pub work: Duration,
    /// Background commit period for store-after, in milliseconds
    #[arg(long = "auto-commit-ms", value_name = "MS", default_value = "1000", value_parser = parse_millis)]
    pub auto_commit_interval: Duration,
    /// Stop after this long, in milliseconds, even if the partitions are not read to their end
    #[arg(long = "timeout-ms", value_name = "MS", default_value = "30000", value_parser = parse_millis)]
    pub timeout: Duration,
    /// Exit at once (no commit, no LeaveGroup) after processing this many readings
    #[arg(long, value_name = "N")]
    pub crash_after: Option<usize>,
}

fn parse_millis(text: &str) -> std::result::Result<Duration, String> {
    text.parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|e| format!("'{text}' is not a number of milliseconds: {e}"))
}

impl ProcessOptions {
    /// Batches of 10, no work time, auto-commit every second, 30 s at most.
    pub fn new(
        topic: impl Into<String>,
        group: impl Into<String>,
        strategy: CommitStrategy,
    ) -> Self {
        ProcessOptions {
            topic: topic.into(),
            group: group.into(),
            strategy,
            batch: 10,
            work: Duration::ZERO,
            auto_commit_interval: Duration::from_secs(1),
            timeout: Duration::from_secs(30),
            crash_after: None,
        }
    }

    /// The arguments that make the `process` command read with these options.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "--topic".to_string(),
            self.topic.clone(),
            "--group".to_string(),
            self.group.clone(),
            "--strategy".to_string(),
            self.strategy.to_string(),
            "--batch".to_string(),
            self.batch.to_string(),
            "--work-ms".to_string(),
            self.work.as_millis().to_string(),
            "--auto-commit-ms".to_string(),
            self.auto_commit_interval.as_millis().to_string(),
            "--timeout-ms".to_string(),
            self.timeout.as_millis().to_string(),
        ];
        if let Some(n) = self.crash_after {
            args.extend(["--crash-after".to_string(), n.to_string()]);
        }
        args
    }
}

/// What [`process`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProcessReport {
    /// Readings processed.
    pub processed: usize,
    /// Poison pills skipped (their offsets are committed like any other).
    pub skipped: usize,
    /// The last synchronous commit per partition (next offset to read).
    pub committed: BTreeMap<i32, i64>,
}

/// Reads `options.topic` as a member of `options.group` to the end of its
/// partitions, in batches, calling `on_processed` for each reading and
/// committing as the strategy says. A process that dies inside `on_processed`
/// shows what the strategy guarantees; [`super::crash_demo`] does exactly that.
pub fn process(
    settings: &KafkaSettings,
    options: &ProcessOptions,
    on_processed: &mut dyn FnMut(&ConsumedRecord),
) -> Result<ProcessReport> {
    topics::validate_topic_name(&options.topic)?;
    let mut builder = member_builder(settings, &options.group);
    for (key, value) in options.strategy.properties(options.auto_commit_interval) {
        builder = builder.set(key, value);
    }
    let mut consumer = group_member(builder, &options.topic)?;

    let deadline = Instant::now() + options.timeout;
    let mut report = ProcessReport::default();
    while Instant::now() < deadline {
        let (batch, reached_end) = read_batch(&mut consumer, options.batch as usize)?;
        if batch.is_empty() && reached_end {
            break;
        }
        let next = next_offsets(&batch);
        let commit = |report: &mut ProcessReport| -> Result<()> {
            consumer.commit(&next, CommitMode::Sync)?;
            report.committed.extend(&next);
            Ok(())
        };
        if options.strategy == CommitStrategy::CommitBeforeProcessing {
            commit(&mut report)?;
        }
        for decoded in &batch {
            match decoded {
                Decoded::Reading(record) => {
                    if !options.work.is_zero() {
                        std::thread::sleep(options.work);
                    }
                    on_processed(record);
                    report.processed += 1;
                }
                Decoded::Poison(_) => report.skipped += 1,
            }
            if options.strategy == CommitStrategy::StoreAfterProcessing {
                // Handled: only now may the background auto-commit store it.
                let (partition, offset) = decoded.position();
                consumer
                    .inner()
                    .store_offset(&options.topic, partition, offset + 1)
                    .map_err(|e| Error::kafka("storing an offset", e))?;
            }
        }
        if options.strategy == CommitStrategy::CommitAfterProcessing {
            commit(&mut report)?;
        }
    }
    if options.strategy == CommitStrategy::StoreAfterProcessing {
        // A clean stop commits what was stored (closing would too).
        match consumer.inner().commit_consumer_state(CommitMode::Sync) {
            Ok(()) => {}
            // Nothing stored since the last auto-commit.
            Err(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::NoOffset) => {}
            Err(e) => return Err(settings.client_error("committing stored offsets", e)),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct ProcessCommand {
        #[command(flatten)]
        options: ProcessOptions,
    }

    #[test]
    fn process_options_survive_their_own_arguments() {
        let options = ProcessOptions {
            batch: 7,
            work: Duration::from_millis(20),
            auto_commit_interval: Duration::from_millis(100),
            crash_after: Some(15),
            ..ProcessOptions::new("t", "g", CommitStrategy::StoreAfterProcessing)
        };
        let args = std::iter::once("process".to_string()).chain(options.to_args());
        let parsed = ProcessCommand::try_parse_from(args).map(|c| c.options);
        assert_eq!(parsed.ok(), Some(options));
    }

    #[test]
    fn strategies_name_their_guarantee_and_their_properties() {
        let names: Vec<String> = CommitStrategy::ALL.iter().map(|s| s.to_string()).collect();
        assert_eq!(names, ["commit-before", "commit-after", "store-after"]);
        let store = CommitStrategy::StoreAfterProcessing.properties(Duration::from_millis(250));
        assert!(store.contains(&("enable.auto.commit", "true".to_string())));
        assert!(store.contains(&("auto.commit.interval.ms", "250".to_string())));
        let after = CommitStrategy::CommitAfterProcessing.properties(Duration::from_secs(1));
        assert!(after.contains(&("enable.auto.commit", "false".to_string())));
        assert_eq!(
            CommitStrategy::CommitBeforeProcessing.guarantee(),
            "at most once"
        );
        use clap::ValueEnum;
        assert_eq!(
            CommitStrategy::from_str("at-least-once", false),
            Ok(CommitStrategy::CommitAfterProcessing)
        );
    }
}
