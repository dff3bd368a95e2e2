//! Transactions: messages (and consumer offsets) that become visible together, or not at all.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::Offset;
use serde::Serialize;

use crate::client::{
    offset_list, producer_config, ConsumerBuilder, DroppedByCreator, IsolationLevel, KafkaConsumer,
};
use crate::config::KafkaSettings;
use crate::consume::{fresh_group_id, PollLimits};
use crate::display::{AsTable, Table};
use crate::error::{Error, Result, Setting};
use crate::produce::flush_promptly;
use crate::topics;
use crate::weather::Reading;

/// A producer whose sends are grouped in transactions (`transactional.id`).
pub struct TransactionalProducer {
    producer: DroppedByCreator<BaseProducer>,
    settings: KafkaSettings,
}

impl TransactionalProducer {
    /// Creates the producer and registers its transactional id with the broker
    /// (InitProducerId), which also aborts any transaction an earlier producer
    /// with the same id left open, and fences that producer off.
    pub fn new(settings: &KafkaSettings, transactional_id: &str) -> Result<Self> {
        let producer: BaseProducer = producer_config(settings, &[])
            .set("transactional.id", transactional_id)
            .create()
            .map_err(|e| settings.client_error("creating a transactional producer", e))?;
        let producer = DroppedByCreator::new(producer);
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
                self.settings
                    .client_error(format!("sending to '{topic}'"), e)
            })
    }

    /// Waits until every queued message is written (still uncommitted).
    pub fn flush(&self) -> Result<()> {
        flush_promptly(&self.producer, self.settings.timeout())
            .map_err(|e| self.settings.client_error("flushing", e))
    }

    /// Adds a consumer's next offsets to the open transaction (TxnOffsetCommit):
    /// they are committed for its group if, and only if, the transaction is.
    pub fn send_offsets(
        &self,
        consumer: &KafkaConsumer,
        next_offsets: &BTreeMap<i32, i64>,
    ) -> Result<()> {
        use rdkafka::consumer::Consumer;
        let metadata = consumer.inner().group_metadata().ok_or_else(|| {
            Error::config(
                Setting::Group,
                "the consumer has no group: offsets need a group",
            )
        })?;
        let tpl = offset_list(consumer.topic(), next_offsets)?;
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
    match settings.client_error(step, error) {
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
    topics::topic_partitions(settings, topic)?;
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
    let count = |isolation: IsolationLevel| -> Result<(usize, usize)> {
        let seen = read_all(settings, topic, isolation)?;
        Ok((
            committed.iter().filter(|r| seen.contains(r)).count(),
            aborted.iter().filter(|r| seen.contains(r)).count(),
        ))
    };
    demo.read_committed_saw = count(IsolationLevel::ReadCommitted)?;
    demo.read_uncommitted_saw = count(IsolationLevel::ReadUncommitted)?;
    if demo.read_committed_saw.1 > 0 {
        demo.isolation = Isolation::NotIsolated;
    }
    Ok(demo)
}

/// Every reading in `topic`, read from the beginning to the end (the last
/// stable offset for `read_committed`) without a group commit.
pub fn read_all(
    settings: &KafkaSettings,
    topic: &str,
    isolation: IsolationLevel,
) -> Result<Vec<Reading>> {
    Ok(read_values(settings, topic, isolation)?
        .iter()
        .filter_map(|value| Reading::from_json(value).ok())
        .collect())
}

/// Every message value in `topic`, partition by partition in offset order,
/// read to the end within the settings' timeout.
pub(crate) fn read_values(
    settings: &KafkaSettings,
    topic: &str,
    isolation: IsolationLevel,
) -> Result<Vec<Vec<u8>>> {
    let partitions: Vec<(i32, Offset)> = topics::topic_partitions(settings, topic)?
        .partitions
        .iter()
        .map(|p| (p.partition, Offset::Beginning))
        .collect();
    let mut consumer = ConsumerBuilder::new(settings)
        .group(fresh_group_id("isolation"))
        .isolation(isolation)
        .build()?;
    consumer.assign(topic, &partitions)?;
    let mut values = Vec::new();
    let limits = PollLimits {
        max: usize::MAX,
        timeout: settings.timeout(),
        stop_at_end: true,
    };
    let started = Instant::now();
    let polled = consumer.poll_messages(limits, &mut |message| {
        values.push(message.payload().unwrap_or_default().to_vec())
    })?;
    if !polled.reached_end {
        return Err(Error::Timeout {
            what: format!("reading '{topic}' to its end"),
            waited: started.elapsed().max(Duration::from_millis(1)),
            hint: None,
        });
    }
    Ok(values)
}

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
