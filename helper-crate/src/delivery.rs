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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;
use serde::{Deserialize, Serialize};

use crate::config::KafkaSettings;
use crate::consume::{decode, fresh_group_id, ConsumedRecord, Decoded};
use crate::display::{AsTable, Table};
use crate::error::{Error, Result};
use crate::weather::Reading;
use crate::{offsets, topics};

/// When a consumer commits, relative to processing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum CommitStrategy {
    /// Commit each batch as soon as it is read, then process it.
    CommitBeforeProcessing,
    /// Process each batch, then commit it.
    CommitAfterProcessing,
    /// Store each offset after processing its message; auto-commit stores.
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
        f.write_str(match self {
            CommitStrategy::CommitBeforeProcessing => "commit-before",
            CommitStrategy::CommitAfterProcessing => "commit-after",
            CommitStrategy::StoreAfterProcessing => "store-after",
        })
    }
}

impl FromStr for CommitStrategy {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "commit-before" | "at-most-once" => Ok(CommitStrategy::CommitBeforeProcessing),
            "commit-after" | "at-least-once" => Ok(CommitStrategy::CommitAfterProcessing),
            "store-after" => Ok(CommitStrategy::StoreAfterProcessing),
            other => Err(Error::Config(format!(
                "bad --strategy '{other}': expected commit-before, commit-after or store-after"
            ))),
        }
    }
}

/// How [`process`] reads.
#[derive(Clone, Debug)]
pub struct ProcessOptions {
    /// The topic.
    pub topic: String,
    /// The group (its committed offsets decide where a restart resumes).
    pub group: String,
    /// When to commit.
    pub strategy: CommitStrategy,
    /// Messages per batch.
    pub batch: usize,
    /// Time spent "processing" each reading (a slow consumer).
    pub work: Duration,
    /// Background commit period for [`CommitStrategy::StoreAfterProcessing`].
    pub auto_commit_interval: Duration,
    /// Stop after this long, even if the partitions are not read to their end.
    pub timeout: Duration,
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
        }
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
/// shows what the strategy guarantees; [`crash_demo`] does exactly that.
pub fn process(
    settings: &KafkaSettings,
    options: &ProcessOptions,
    on_processed: &mut dyn FnMut(&ConsumedRecord),
) -> Result<ProcessReport> {
    topics::validate_topic_name(&options.topic)?;
    let properties = options.strategy.properties(options.auto_commit_interval);
    let properties: Vec<(&str, &str)> = properties.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let consumer = group_member(settings, &options.group, &options.topic, &properties)?;

    let deadline = Instant::now() + options.timeout;
    let mut report = ProcessReport::default();
    let mut at_end: BTreeSet<i32> = BTreeSet::new();
    loop {
        let (batch, next_offsets) = read_batch(&consumer, options.batch, &mut at_end, settings)?;
        let assigned = consumer
            .assignment()
            .map(|tpl| tpl.count())
            .unwrap_or_default();
        if batch.is_empty() && assigned > 0 && at_end.len() >= assigned {
            break;
        }
        if Instant::now() >= deadline {
            break;
        }
        let commit = |report: &mut ProcessReport| -> Result<()> {
            commit_sync(&consumer, settings, &options.topic, &next_offsets)?;
            report
                .committed
                .extend(next_offsets.iter().map(|(p, o)| (*p, *o)));
            Ok(())
        };
        if options.strategy == CommitStrategy::CommitBeforeProcessing {
            commit(&mut report)?;
        }
        for decoded in &batch {
            let (topic, partition, offset) = match decoded {
                Decoded::Reading(record) => {
                    if !options.work.is_zero() {
                        std::thread::sleep(options.work);
                    }
                    on_processed(record);
                    report.processed += 1;
                    (&record.topic, record.partition, record.offset)
                }
                Decoded::Poison(pill) => {
                    report.skipped += 1;
                    (&pill.topic, pill.partition, pill.offset)
                }
            };
            if options.strategy == CommitStrategy::StoreAfterProcessing {
                // Handled: only now may the background auto-commit store it.
                consumer
                    .store_offset(topic, partition, offset + 1)
                    .map_err(|e| Error::kafka("storing an offset", e))?;
            }
        }
        if options.strategy == CommitStrategy::CommitAfterProcessing {
            commit(&mut report)?;
        }
    }
    if options.strategy == CommitStrategy::StoreAfterProcessing {
        // A clean stop commits what was stored (closing would too).
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => {}
            // Nothing stored since the last auto-commit.
            Err(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::NoOffset) => {}
            Err(e) => return Err(Error::from_client(settings, "committing stored offsets", e)),
        }
    }
    Ok(report)
}

/// A member of `group` subscribed to `topic`, starting at the earliest offset
/// where the group has none, reporting the end of each partition, with
/// `properties` (the commit settings) on top.
fn group_member(
    settings: &KafkaSettings,
    group: &str,
    topic: &str,
    properties: &[(&str, &str)],
) -> Result<BaseConsumer> {
    let mut config = settings.client_config_with_defaults(&[("session.timeout.ms", "10000")]);
    for (key, value) in properties {
        config.set(*key, *value);
    }
    let consumer: BaseConsumer = config
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "true")
        .set("allow.auto.create.topics", "false")
        .create()
        .map_err(|e| Error::from_client(settings, "creating a consumer", e))?;
    topics::describe_topic(settings, topic)?;
    consumer
        .subscribe(&[topic])
        .map_err(|e| Error::from_client(settings, "subscribing", e))?;
    Ok(consumer)
}

/// Polls up to `max` messages: waits up to a second for the first, then takes
/// what is already there. Returns them with the next offset of each partition.
fn read_batch(
    consumer: &BaseConsumer,
    max: usize,
    at_end: &mut BTreeSet<i32>,
    settings: &KafkaSettings,
) -> Result<(Vec<Decoded>, BTreeMap<i32, i64>)> {
    let mut batch = Vec::new();
    let mut next_offsets = BTreeMap::new();
    let first_deadline = Instant::now() + Duration::from_secs(1);
    while batch.len() < max {
        let wait = if batch.is_empty() {
            first_deadline.saturating_duration_since(Instant::now())
        } else {
            Duration::from_millis(50)
        };
        match consumer.poll(wait) {
            None => break,
            Some(Ok(message)) => {
                use rdkafka::message::Message;
                at_end.remove(&message.partition());
                next_offsets.insert(message.partition(), message.offset() + 1);
                batch.push(decode(&message));
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                at_end.insert(partition);
                if batch.is_empty() {
                    // Let the caller see the end without waiting out the second.
                    break;
                }
            }
            Some(Err(e)) if matches!(e, KafkaError::MessageConsumptionFatal(_)) => {
                return Err(Error::from_client(settings, "consuming", e))
            }
            Some(Err(_)) => {}
        }
    }
    Ok((batch, next_offsets))
}

fn commit_sync(
    consumer: &BaseConsumer,
    settings: &KafkaSettings,
    topic: &str,
    next_offsets: &BTreeMap<i32, i64>,
) -> Result<()> {
    if next_offsets.is_empty() {
        return Ok(());
    }
    let tpl = offsets_list(topic, next_offsets)?;
    consumer
        .commit(&tpl, CommitMode::Sync)
        .map_err(|e| Error::from_client(settings, "committing offsets", e))
}

fn offsets_list(topic: &str, next_offsets: &BTreeMap<i32, i64>) -> Result<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for (partition, offset) in next_offsets {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .map_err(|e| Error::kafka("building an offset list", e))?;
    }
    Ok(tpl)
}

/// The exit status of a `kafka-lab process --crash-after N` run that "crashed".
pub const CRASH_EXIT_CODE: i32 = 86;

/// One line of `kafka-lab process` output: a reading that was processed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Processed {
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
}

/// A process crashed in the middle of a batch, and a second one finished.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CrashDemo {
    /// The strategy both processes used.
    pub strategy: CommitStrategy,
    /// Readings in the topic.
    pub expected: usize,
    /// Readings per batch.
    pub batch: usize,
    /// The first process died after processing this many.
    pub crashed_after: usize,
    /// Readings the second process processed.
    pub processed_after_restart: usize,
    /// Readings never processed.
    pub lost: usize,
    /// Readings processed twice.
    pub duplicated: usize,
}

/// Runs `kafka-lab process` twice on `topic` with a fresh group: the first run
/// exits abruptly (no commit, no goodbye to the group) after processing
/// `crash_after` readings, the second runs to the end. Counts what was lost and
/// what was processed twice.
///
/// Both runs use the same `group.instance.id` (static membership), so the
/// restarted process takes the crashed one's place at once instead of waiting
/// for its session to time out.
pub fn crash_demo(
    settings: &KafkaSettings,
    kafka_lab: &Path,
    topic: &str,
    strategy: CommitStrategy,
    crash_after: usize,
    batch: usize,
) -> Result<CrashDemo> {
    let expected: usize = offsets::watermarks(settings, topic)?
        .iter()
        .map(|(_, low, high)| (high - low) as usize)
        .sum();
    let group = fresh_group_id(&format!("crash-{strategy}"));
    let run = |crash: Option<usize>| -> Result<Vec<Processed>> {
        let mut command = Command::new(kafka_lab);
        command.arg("-b").arg(settings.bootstrap());
        for (key, value) in settings.properties() {
            command.arg("-X").arg(format!("{key}={value}"));
        }
        command
            .arg("-X")
            .arg(format!("group.instance.id={group}-member"))
            .args(["process", "--topic", topic, "--group", &group])
            .args(["--strategy", &strategy.to_string()])
            .args(["--batch", &batch.to_string()])
            // 20 ms of work per reading and an auto-commit every 100 ms: the
            // store-after strategy commits every few readings.
            .args(["--work-ms", "20", "--auto-commit-ms", "100"]);
        if let Some(n) = crash {
            command.args(["--crash-after", &n.to_string()]);
        }
        let output = command
            .output()
            .map_err(|e| Error::io(kafka_lab.to_path_buf(), e))?;
        let expected_status = crash.map_or(0, |_| CRASH_EXIT_CODE);
        if output.status.code() != Some(expected_status) {
            return Err(Error::Broker(format!(
                "kafka-lab process exited with {:?}, expected {expected_status}: {}",
                output.status.code(),
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect())
    };
    let first = run(Some(crash_after))?;
    let second = run(None)?;
    let mut times: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for p in first.iter().chain(&second) {
        *times.entry((p.partition, p.offset)).or_default() += 1;
    }
    Ok(CrashDemo {
        strategy,
        expected,
        batch,
        crashed_after: first.len(),
        processed_after_restart: second.len(),
        lost: expected.saturating_sub(times.len()),
        duplicated: times.values().filter(|n| **n > 1).count(),
    })
}

/// Several crash demos side by side.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CrashDemos(pub Vec<CrashDemo>);

impl AsTable for CrashDemos {
    fn as_table(&self) -> Table {
        let mut table = Table::new(&[
            "strategy",
            "guarantee",
            "readings",
            "batch",
            "crashed after",
            "processed after restart",
            "lost",
            "processed twice",
        ])
        .with_title("A crash in the middle of a batch, then a restart");
        for d in &self.0 {
            table.push_row(vec![
                d.strategy.to_string(),
                d.strategy.guarantee().to_string(),
                d.expected.to_string(),
                d.batch.to_string(),
                d.crashed_after.to_string(),
                d.processed_after_restart.to_string(),
                d.lost.to_string(),
                d.duplicated.to_string(),
            ]);
        }
        table
    }
}

crate::shown_as_table!(CrashDemos);

/// A producer whose sends are grouped in transactions (`transactional.id`).
pub struct TransactionalProducer {
    producer: BaseProducer,
    settings: KafkaSettings,
}

impl TransactionalProducer {
    /// Creates the producer and registers its transactional id with the broker
    /// (InitProducerId), which also aborts any transaction an earlier producer
    /// with the same id left open, and fences that producer off.
    pub fn new(settings: &KafkaSettings, transactional_id: &str) -> Result<Self> {
        let timeout_ms = settings.timeout().as_millis().to_string();
        let producer: BaseProducer = settings
            .client_config_with_defaults(&[("message.timeout.ms", &timeout_ms)])
            .set("transactional.id", transactional_id)
            .set("allow.auto.create.topics", "false")
            .create()
            .map_err(|e| Error::from_client(settings, "creating a transactional producer", e))?;
        producer
            .init_transactions(settings.timeout())
            .map_err(|e| transaction_error(settings, "InitProducerId (init_transactions)", e))?;
        Ok(TransactionalProducer {
            producer,
            settings: settings.clone(),
        })
    }

    /// Starts a transaction.
    pub fn begin(&self) -> Result<()> {
        self.producer
            .begin_transaction()
            .map_err(|e| transaction_error(&self.settings, "begin_transaction", e))
    }

    /// Queues one message in the open transaction.
    pub fn send(&self, topic: &str, key: &str, value: &[u8]) -> Result<()> {
        self.producer
            .send(BaseRecord::to(topic).key(key).payload(value))
            .map_err(|(e, _)| {
                Error::from_client(&self.settings, format!("sending to '{topic}'"), e)
            })
    }

    /// Waits until every queued message is written (still uncommitted).
    pub fn flush(&self) -> Result<()> {
        self.producer
            .flush(self.settings.timeout())
            .map_err(|e| Error::from_client(&self.settings, "flushing", e))
    }

    /// Adds a consumer's next offsets to the open transaction (TxnOffsetCommit):
    /// they are committed for its group if, and only if, the transaction is.
    pub fn send_offsets(
        &self,
        consumer: &BaseConsumer,
        topic: &str,
        next_offsets: &BTreeMap<i32, i64>,
    ) -> Result<()> {
        let metadata = consumer.group_metadata().ok_or_else(|| {
            Error::Config("the consumer has no group: offsets need a group".to_string())
        })?;
        let tpl = offsets_list(topic, next_offsets)?;
        self.producer
            .send_offsets_to_transaction(&tpl, &metadata, self.settings.timeout())
            .map_err(|e| transaction_error(&self.settings, "send_offsets_to_transaction", e))
    }

    /// Commits the open transaction (EndTxn commit): its messages become visible
    /// to `read_committed` consumers.
    pub fn commit(&self) -> Result<()> {
        self.producer
            .commit_transaction(self.settings.timeout())
            .map_err(|e| transaction_error(&self.settings, "EndTxn (commit_transaction)", e))
    }

    /// Aborts the open transaction (EndTxn abort): `read_committed` consumers
    /// skip its messages.
    pub fn abort(&self) -> Result<()> {
        self.producer
            .abort_transaction(self.settings.timeout())
            .map_err(|e| transaction_error(&self.settings, "EndTxn (abort_transaction)", e))
    }
}

/// A transaction call that failed: the broker being away is reported as such;
/// anything else means the broker refused or does not implement the request.
fn transaction_error(settings: &KafkaSettings, step: &str, error: KafkaError) -> Error {
    match Error::from_client(settings, step, error) {
        unreachable @ Error::BrokerUnreachable { .. } => unreachable,
        Error::Kafka { error, .. } => Error::Unsupported {
            what: format!("transactions ({step})"),
            broker: settings.bootstrap().to_string(),
            hint: format!(
                "The client said: {error}. Transactions need Apache Kafka (`docker compose up -d`)."
            ),
        },
        other => other,
    }
}

/// How a broker treated a committed and an aborted transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Isolation {
    /// `read_committed` skipped the aborted readings; `read_uncommitted` saw them.
    Isolated,
    /// `read_committed` saw aborted readings: the broker accepted the
    /// transaction calls but did not mark the aborted messages.
    NotIsolated,
    /// A transaction call failed: the step and the client's error.
    Unsupported(String),
}

/// What [`transactions_demo`] saw.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TransactionDemo {
    /// The topic written and read.
    pub topic: String,
    /// Readings sent in the committed transaction.
    pub committed: Vec<Reading>,
    /// Readings sent in the aborted transaction.
    pub aborted: Vec<Reading>,
    /// (committed, aborted) readings a `read_committed` consumer saw.
    pub read_committed_saw: (usize, usize),
    /// (committed, aborted) readings a `read_uncommitted` consumer saw.
    pub read_uncommitted_saw: (usize, usize),
    /// What the broker did.
    pub isolation: Isolation,
}

/// Sends `committed` readings in one transaction and commits it, then `aborted`
/// readings in another and aborts it; reads `topic` back with each isolation
/// level and counts what each saw. Use a topic that only this demo writes.
pub fn transactions_demo(
    settings: &KafkaSettings,
    topic: &str,
    committed: &[Reading],
    aborted: &[Reading],
) -> Result<TransactionDemo> {
    topics::describe_topic(settings, topic)?;
    let mut demo = TransactionDemo {
        topic: topic.to_string(),
        committed: committed.to_vec(),
        aborted: aborted.to_vec(),
        read_committed_saw: (0, 0),
        read_uncommitted_saw: (0, 0),
        isolation: Isolation::Isolated,
    };
    let transactional_id = fresh_group_id("txn");
    let outcome = (|| -> Result<()> {
        let producer = TransactionalProducer::new(settings, &transactional_id)?;
        for (readings, commit) in [(committed, true), (aborted, false)] {
            producer.begin()?;
            for reading in readings {
                producer.send(topic, reading.key(), reading.to_json().as_bytes())?;
            }
            // Written to the log, but not yet committed or aborted.
            producer.flush()?;
            if commit {
                producer.commit()?;
            } else {
                producer.abort()?;
            }
        }
        Ok(())
    })();
    if let Err(error) = outcome {
        return match error {
            Error::Unsupported { what, hint, .. } => {
                demo.isolation = Isolation::Unsupported(format!("{what}: {hint}"));
                Ok(demo)
            }
            other => Err(other),
        };
    }
    let count = |isolation: &str| -> Result<(usize, usize)> {
        let seen = read_all(settings, topic, isolation)?;
        Ok((
            committed.iter().filter(|r| seen.contains(r)).count(),
            aborted.iter().filter(|r| seen.contains(r)).count(),
        ))
    };
    demo.read_committed_saw = count("read_committed")?;
    demo.read_uncommitted_saw = count("read_uncommitted")?;
    if demo.read_committed_saw.1 > 0 {
        demo.isolation = Isolation::NotIsolated;
    }
    Ok(demo)
}

/// Every reading in `topic`, read from the beginning to the end (the last
/// stable offset for `read_committed`) without a group commit.
pub fn read_all(settings: &KafkaSettings, topic: &str, isolation: &str) -> Result<Vec<Reading>> {
    Ok(read_values(settings, topic, isolation)?
        .iter()
        .filter_map(|value| Reading::from_json(value).ok())
        .collect())
}

/// Every message value in `topic`, partition by partition in offset order.
fn read_values(settings: &KafkaSettings, topic: &str, isolation: &str) -> Result<Vec<Vec<u8>>> {
    use rdkafka::message::Message;
    let consumer: BaseConsumer = settings
        .client_config()
        .set("group.id", fresh_group_id("isolation"))
        .set("isolation.level", isolation)
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .map_err(|e| Error::from_client(settings, "creating a consumer", e))?;
    let partitions: Vec<i32> = topics::describe_topic(settings, topic)?
        .partitions
        .iter()
        .map(|p| p.partition)
        .collect();
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .map_err(|e| Error::kafka("building the assignment", e))?;
    }
    consumer
        .assign(&tpl)
        .map_err(|e| Error::from_client(settings, "assigning partitions", e))?;
    let mut at_end = BTreeSet::new();
    let mut values = Vec::new();
    let deadline = Instant::now() + settings.timeout();
    while at_end.len() < partitions.len() {
        if Instant::now() >= deadline {
            return Err(Error::Broker(format!(
                "reading '{topic}' to its end took longer than {:?}",
                settings.timeout()
            )));
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => values.push(message.payload().unwrap_or_default().to_vec()),
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
            }
            _ => {}
        }
    }
    Ok(values)
}

/// One message of the averages topic: a city's running average so far.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CityAverage {
    /// The city (also the message key).
    pub city: String,
    /// Readings averaged so far: 1, 2, 3, ... once each when exactly once holds.
    pub readings: u64,
    /// Their sum (°C), to carry on after a restart.
    pub sum: f64,
    /// Their average (°C).
    pub average: f64,
}

/// How [`exactly_once_averages`] runs.
#[derive(Clone, Debug)]
pub struct EosOptions {
    /// Readings are read from here.
    pub input: String,
    /// Running averages are written here.
    pub output: String,
    /// The consumer group (its offsets are committed inside the transactions).
    pub group: String,
    /// The producer's transactional id: the same id after a restart fences the
    /// crashed producer and aborts its open transaction.
    pub transactional_id: String,
    /// Readings per transaction.
    pub batch: usize,
    /// Abandon the run (an open transaction, nothing committed) after this many readings.
    pub crash_after: Option<usize>,
    /// Stop after this long.
    pub timeout: Duration,
}

/// What one [`exactly_once_averages`] run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EosRun {
    /// Readings turned into averages (including those of an abandoned transaction).
    pub processed: usize,
    /// Transactions committed.
    pub transactions: usize,
    /// Whether the run was abandoned mid-transaction.
    pub crashed: bool,
}

/// Consume-transform-produce, exactly once: reads readings from `input` with
/// `read_committed`, and for each batch, in one transaction, writes each city's
/// new running average to `output` and commits the consumer's offsets. The
/// running state is rebuilt at start from the committed averages in `output`.
pub fn exactly_once_averages(settings: &KafkaSettings, options: &EosOptions) -> Result<EosRun> {
    let consumer = group_member(
        settings,
        &options.group,
        &options.input,
        &[
            ("isolation.level", "read_committed"),
            ("enable.auto.commit", "false"),
        ],
    )?;
    let producer = TransactionalProducer::new(settings, &options.transactional_id)?;
    let mut state: BTreeMap<String, CityAverage> = BTreeMap::new();
    for value in read_values(settings, &options.output, "read_committed")? {
        if let Ok(average) = serde_json::from_slice::<CityAverage>(&value) {
            state.insert(average.city.clone(), average);
        }
    }
    let deadline = Instant::now() + options.timeout;
    let mut run = EosRun::default();
    let mut at_end = BTreeSet::new();
    while Instant::now() < deadline {
        let (batch, next_offsets) = read_batch(&consumer, options.batch, &mut at_end, settings)?;
        let assigned = consumer
            .assignment()
            .map(|tpl| tpl.count())
            .unwrap_or_default();
        if batch.is_empty() {
            if assigned > 0 && at_end.len() >= assigned {
                break;
            }
            continue;
        }
        producer.begin()?;
        for decoded in &batch {
            let Decoded::Reading(record) = decoded else {
                continue;
            };
            let city = record.reading.city.clone();
            let entry = state.entry(city.clone()).or_insert(CityAverage {
                city: city.clone(),
                readings: 0,
                sum: 0.0,
                average: 0.0,
            });
            entry.readings += 1;
            entry.sum += record.reading.temperature;
            entry.average = entry.sum / entry.readings as f64;
            let value = serde_json::to_vec(entry)
                .map_err(|e| Error::Config(format!("encoding an average: {e}")))?;
            producer.send(&options.output, &city, &value)?;
            run.processed += 1;
            if options.crash_after == Some(run.processed) {
                // The "crash": the transaction stays open, nothing is committed.
                producer.flush()?;
                run.crashed = true;
                return Ok(run);
            }
        }
        producer.send_offsets(&consumer, &options.input, &next_offsets)?;
        producer.commit()?;
        run.transactions += 1;
    }
    Ok(run)
}

/// Whether every reading was averaged exactly once.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AveragesCheck {
    /// Per city: the last average and how many readings it covers.
    pub cities: Vec<CityAverage>,
    /// Readings in the input topic.
    pub input_readings: usize,
    /// Average messages read (with the given isolation level): one per reading
    /// when exactly once holds.
    pub messages: usize,
    /// Averages written more than once for the same reading count.
    pub duplicates: usize,
}

impl AveragesCheck {
    /// Whether each input reading produced exactly one average.
    pub fn exactly_once(&self) -> bool {
        self.messages == self.input_readings
            && self.duplicates == 0
            && self.cities.iter().map(|c| c.readings).sum::<u64>() == self.input_readings as u64
    }
}

/// Reads the averages topic `output` with `isolation`, and the readings of
/// `input`, and checks that there is one average per reading: each city's
/// `readings` field runs 1, 2, 3, ... with no number twice, and the counts add
/// up to the readings in the input.
pub fn check_averages(
    settings: &KafkaSettings,
    input: &str,
    output: &str,
    isolation: &str,
) -> Result<AveragesCheck> {
    let mut seen: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    let mut last: BTreeMap<String, CityAverage> = BTreeMap::new();
    let mut check = AveragesCheck {
        input_readings: read_all(settings, input, "read_committed")?.len(),
        ..AveragesCheck::default()
    };
    for value in read_values(settings, output, isolation)? {
        let Ok(average) = serde_json::from_slice::<CityAverage>(&value) else {
            continue;
        };
        check.messages += 1;
        if !seen
            .entry(average.city.clone())
            .or_default()
            .insert(average.readings)
        {
            check.duplicates += 1;
        }
        last.insert(average.city.clone(), average);
    }
    check.cities = last.into_values().collect();
    Ok(check)
}

impl AsTable for AveragesCheck {
    fn as_table(&self) -> Table {
        let mut table = Table::new(&["city", "readings", "average (°C)"])
            .with_title("Running averages, as read_committed sees them");
        for c in &self.cities {
            table.push_row(vec![
                c.city.clone(),
                c.readings.to_string(),
                format!("{:.2}", c.average),
            ]);
        }
        table.footer = Some(format!(
            "{} average messages for {} readings, {} written twice for the same count: {}",
            self.messages,
            self.input_readings,
            self.duplicates,
            if self.exactly_once() {
                "exactly once"
            } else {
                "NOT exactly once"
            }
        ));
        table
    }
}

crate::shown_as_table!(AveragesCheck);

impl AsTable for TransactionDemo {
    fn as_table(&self) -> Table {
        let mut table = Table::new(&[
            "consumer",
            "committed readings seen",
            "aborted readings seen",
        ])
        .with_title(format!(
            "A committed transaction ({} readings) and an aborted one ({}) on '{}'",
            self.committed.len(),
            self.aborted.len(),
            self.topic
        ));
        let ran = !matches!(self.isolation, Isolation::Unsupported(_));
        let seen = |n: usize| if ran { n.to_string() } else { "-".to_string() };
        for (name, (c, a)) in [
            ("isolation.level=read_committed", self.read_committed_saw),
            (
                "isolation.level=read_uncommitted",
                self.read_uncommitted_saw,
            ),
        ] {
            table.push_row(vec![name.to_string(), seen(c), seen(a)]);
        }
        table.footer = Some(match &self.isolation {
            Isolation::Isolated => {
                "the broker isolates transactions: read_committed skipped the aborted readings"
                    .to_string()
            }
            Isolation::NotIsolated => "this broker accepted the transaction calls but read_committed \
                still saw the aborted readings: it does not isolate transactions (Apache Kafka does)"
                .to_string(),
            Isolation::Unsupported(why) => format!("not run: {why}"),
        });
        table
    }
}

crate::shown_as_table!(TransactionDemo);
