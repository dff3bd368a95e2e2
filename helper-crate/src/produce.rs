//! Producing: sending readings to a topic and learning where they landed.
//!
//! `send` only puts a message in the client's queue; librdkafka batches queued
//! messages per partition (`linger.ms`, `batch.size`) and sends them in the
//! background. The broker appends each batch to the partition's log and answers
//! with the offsets it assigned. librdkafka then hands every message back in a
//! **delivery report**: partition, offset and timestamp on success, an error on
//! failure. A producer that never waits for its reports does not know whether its
//! messages were written, so this one collects them all, and [`WeatherProducer::flush`]
//! waits (with a timeout) until every queued message has its report.
//!
//! Settings that matter, with librdkafka's names:
//! - `acks=all`: the leader answers only once every in-sync replica has the batch.
//! - `enable.idempotence=true`: the broker drops duplicates caused by retries, so
//!   a retry after a lost answer cannot write a reading twice (on by default here,
//!   as in Kafka's Java client since 3.0).
//! - `message.timeout.ms`: how long a message may wait for delivery before it fails;
//!   set to the settings' timeout (10 s) so a missing broker is reported, not waited on.
//! - `allow.auto.create.topics=false`: producing to a missing topic is an error,
//!   not a silent creation with the broker's defaults.
//!
//! The message key is the city (so a city's readings keep their order in one
//! partition) and the message timestamp is the reading's own time.
//!
//! kcat equivalent: `kcat -P -b HOST -t weather -K: -D'\n'` (kcat prints no
//! delivery reports unless run with `-v`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Header, Message, OwnedHeaders, Timestamp, ToBytes};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use serde::Serialize;

use crate::config::KafkaSettings;
use crate::display::{AsTable, Table};
use crate::error::{Error, Result};
use crate::topics;
use crate::weather::{Reading, WeatherGenerator};

/// Where one reading was written.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Delivery {
    /// Topic written to.
    pub topic: String,
    /// Partition chosen (by hashing the key).
    pub partition: i32,
    /// Offset the broker assigned.
    pub offset: i64,
    /// The message timestamp in milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
    /// `CreateTime` (set by the producer) or `LogAppendTime` (set by the broker).
    pub timestamp_type: String,
    /// The reading that was sent.
    pub reading: Reading,
}

/// The delivery reports of one batch of sends, in send order.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Deliveries(pub Vec<Delivery>);

impl Deliveries {
    /// The offsets, in send order.
    pub fn offsets(&self) -> Vec<i64> {
        self.0.iter().map(|d| d.offset).collect()
    }

    /// How many were delivered.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nothing was delivered.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What the delivery callback learned about one message.
type Outcome = std::result::Result<(i32, i64, Timestamp), String>;

/// The producer context: librdkafka calls `delivery` once per message, from
/// `poll`/`flush`, and we file each report under the message's sequence number.
#[derive(Default)]
struct DeliveryCollector {
    outcomes: Mutex<Vec<Option<Outcome>>>,
}

impl ClientContext for DeliveryCollector {}

impl ProducerContext for DeliveryCollector {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sequence: usize) {
        let outcome = match result {
            Ok(message) => Ok((message.partition(), message.offset(), message.timestamp())),
            Err((error, _message)) => Err(error.to_string()),
        };
        if let Ok(mut outcomes) = self.outcomes.lock() {
            if let Some(slot) = outcomes.get_mut(sequence) {
                *slot = Some(outcome);
            }
        }
    }
}

/// A producer of weather readings to one topic.
pub struct WeatherProducer {
    producer: BaseProducer<DeliveryCollector>,
    settings: KafkaSettings,
    topic: String,
    pending: Vec<Reading>,
    context: Arc<DeliveryCollector>,
}

impl WeatherProducer {
    /// Connects a producer for `topic`, which must exist.
    pub fn new(settings: &KafkaSettings, topic: &str) -> Result<Self> {
        let timeout_ms = settings.timeout().as_millis().to_string();
        let producer: BaseProducer<DeliveryCollector> = settings
            .client_config_with_defaults(&[
                ("enable.idempotence", "true"),
                ("acks", "all"),
                ("message.timeout.ms", &timeout_ms),
                ("allow.auto.create.topics", "false"),
            ])
            .create_with_context(DeliveryCollector::default())
            .map_err(|e| Error::from_client(settings, "creating a producer", e))?;
        // Ask first, so a missing topic is a clear error and not ten seconds of
        // failed deliveries.
        topics::describe_topic(settings, topic)?;
        let context = producer.context().clone();
        Ok(WeatherProducer {
            producer,
            settings: settings.clone(),
            topic: topic.to_string(),
            pending: Vec::new(),
            context,
        })
    }

    /// The topic this producer writes to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Queues one reading (key = city, timestamp = the reading's time). Returns
    /// at once; call [`WeatherProducer::flush`] to wait for its delivery report.
    pub fn send(&mut self, reading: &Reading) -> Result<()> {
        let sequence = self.pending.len();
        if let Ok(mut outcomes) = self.context.outcomes.lock() {
            outcomes.push(None);
        }
        let value = reading.to_json();
        let record = BaseRecord::with_opaque_to(&self.topic, sequence)
            .key(reading.key())
            .payload(&value)
            .timestamp(reading.timestamp.timestamp_millis());
        let deadline = Instant::now() + self.settings.timeout();
        send_making_room(&self.producer, record, Some(deadline)).map_err(|e| {
            Error::from_client(&self.settings, format!("sending to '{}'", self.topic), e)
        })?;
        self.pending.push(reading.clone());
        // Serve reports that are already in, without waiting.
        self.producer.poll(Duration::ZERO);
        Ok(())
    }

    /// Waits until every queued reading has a delivery report (at most the
    /// settings' timeout plus a second), then returns the reports in send order.
    /// Fails with [`Error::Delivery`] if any reading was not written.
    pub fn flush(&mut self) -> Result<Deliveries> {
        let wait = self.settings.timeout() + Duration::from_secs(1);
        // A flush timeout still leaves the reports we have; the check below says
        // which readings are missing.
        let _ = self.producer.flush(wait);
        let outcomes = match self.context.outcomes.lock() {
            Ok(mut outcomes) => std::mem::take(&mut *outcomes),
            Err(_) => Vec::new(),
        };
        let readings = std::mem::take(&mut self.pending);
        let total = readings.len();
        let mut delivered = Vec::with_capacity(total);
        let mut errors = Vec::new();
        for (index, reading) in readings.into_iter().enumerate() {
            match outcomes.get(index).cloned().flatten() {
                Some(Ok((partition, offset, timestamp))) => delivered.push(Delivery {
                    topic: self.topic.clone(),
                    partition,
                    offset,
                    timestamp_ms: timestamp.to_millis(),
                    timestamp_type: timestamp_type(timestamp).to_string(),
                    reading,
                }),
                Some(Err(error)) => errors.push(format!("{} ({error})", reading)),
                None => errors.push(format!("{} (no delivery report within {wait:?})", reading)),
            }
        }
        if !errors.is_empty() {
            return Err(Error::Delivery {
                total,
                undelivered: errors,
            });
        }
        Ok(Deliveries(delivered))
    }

    /// Sends every reading and waits for all delivery reports.
    pub fn send_all(&mut self, readings: &[Reading]) -> Result<Deliveries> {
        for reading in readings {
            self.send(reading)?;
        }
        self.flush()
    }
}

impl Drop for WeatherProducer {
    fn drop(&mut self) {
        // Never drop queued messages silently: give them the usual time to go out.
        if self.producer.in_flight_count() > 0 {
            let _ = self.producer.flush(self.settings.timeout());
        }
    }
}

/// Queues `record`. When librdkafka's local queue is full (the producer is
/// faster than the broker), serves delivery reports to make room and tries again,
/// until `deadline` if one is given.
pub(crate) fn send_making_room<C, K, P>(
    producer: &BaseProducer<C>,
    mut record: BaseRecord<'_, K, P, C::DeliveryOpaque>,
    deadline: Option<Instant>,
) -> std::result::Result<(), KafkaError>
where
    C: ProducerContext,
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((e, returned))
                if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull)
                    && deadline.is_none_or(|d| Instant::now() < d) =>
            {
                producer.poll(Duration::from_millis(10));
                record = returned;
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Sends `readings` to `topic` and returns their delivery reports.
pub fn produce_readings(
    settings: &KafkaSettings,
    topic: &str,
    readings: &[Reading],
) -> Result<Deliveries> {
    WeatherProducer::new(settings, topic)?.send_all(readings)
}

/// Makes `count` readings with `generator` and sends them, at most `rate` per
/// second when a rate is given; each reading is stamped when it is made.
pub fn produce_weather(
    settings: &KafkaSettings,
    topic: &str,
    generator: &mut WeatherGenerator,
    count: usize,
    rate: Option<f64>,
) -> Result<Deliveries> {
    let mut producer = WeatherProducer::new(settings, topic)?;
    let interval = rate
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64(1.0 / r));
    let started = Instant::now();
    for index in 0..count {
        if let Some(interval) = interval {
            let due = started + interval.mul_f64(index as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        producer.send(&generator.next_reading())?;
    }
    producer.flush()
}

/// A producer of raw bytes with headers: for messages that are not readings
/// (poison pills in a demo, the original bytes of a dead letter).
pub struct RawProducer {
    producer: BaseProducer<DeliveryCollector>,
    settings: KafkaSettings,
}

impl RawProducer {
    /// A producer with the settings' timeout as `message.timeout.ms`, and room
    /// for a message the broker accepted plus headers (librdkafka's own limit,
    /// 1,000,000 bytes, is below Kafka's default of 1,048,588).
    pub fn new(settings: &KafkaSettings) -> Result<Self> {
        let timeout_ms = settings.timeout().as_millis().to_string();
        let producer = settings
            .client_config_with_defaults(&[
                ("message.timeout.ms", &timeout_ms),
                ("allow.auto.create.topics", "false"),
                ("message.max.bytes", "2000000"),
            ])
            .create_with_context(DeliveryCollector::default())
            .map_err(|e| Error::from_client(settings, "creating a producer", e))?;
        Ok(RawProducer {
            producer,
            settings: settings.clone(),
        })
    }

    /// Queues one message; [`RawProducer::flush`] waits for its delivery.
    pub fn send(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Result<()> {
        let sequence = match self.producer.context().outcomes.lock() {
            Ok(mut outcomes) => {
                outcomes.push(None);
                outcomes.len() - 1
            }
            Err(_) => 0,
        };
        let mut record: BaseRecord<'_, [u8], [u8], usize> =
            BaseRecord::with_opaque_to(topic, sequence);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(value) = value {
            record = record.payload(value);
        }
        if !headers.is_empty() {
            let mut owned = OwnedHeaders::new();
            for (name, value) in headers {
                owned = owned.insert(Header {
                    key: name,
                    value: Some(value.as_bytes()),
                });
            }
            record = record.headers(owned);
        }
        self.producer.send(record).map_err(|(e, _)| {
            Error::from_client(&self.settings, format!("sending to '{topic}'"), e)
        })
    }

    /// Waits for every queued message's delivery report; returns their
    /// (partition, offset) in send order, or the first failure.
    pub fn flush(&self) -> Result<Vec<(i32, i64)>> {
        let _ = self
            .producer
            .flush(self.settings.timeout() + Duration::from_secs(1));
        let outcomes = match self.producer.context().outcomes.lock() {
            Ok(mut outcomes) => std::mem::take(&mut *outcomes),
            Err(_) => Vec::new(),
        };
        let total = outcomes.len();
        let mut delivered = Vec::with_capacity(total);
        let mut errors = Vec::new();
        for outcome in outcomes {
            match outcome {
                Some(Ok((partition, offset, _))) => delivered.push((partition, offset)),
                Some(Err(error)) => errors.push(error),
                None => errors.push("no delivery report before the timeout".to_string()),
            }
        }
        if errors.is_empty() {
            Ok(delivered)
        } else {
            Err(Error::Delivery {
                total,
                undelivered: errors,
            })
        }
    }
}

/// Sends one message with any key and value bytes (or none: a null value), and
/// returns its (partition, offset). This is how the lab makes a poison pill: a
/// message that is not a reading.
pub fn produce_raw(
    settings: &KafkaSettings,
    topic: &str,
    key: Option<&str>,
    value: Option<&[u8]>,
) -> Result<(i32, i64)> {
    topics::describe_topic(settings, topic)?;
    let producer = RawProducer::new(settings)?;
    producer.send(topic, key.map(str::as_bytes), value, &[])?;
    let delivered = producer.flush()?;
    delivered.first().copied().ok_or_else(|| Error::Delivery {
        total: 1,
        undelivered: vec!["no delivery report".to_string()],
    })
}

fn timestamp_type(timestamp: Timestamp) -> &'static str {
    match timestamp {
        Timestamp::CreateTime(_) => "CreateTime",
        Timestamp::LogAppendTime(_) => "LogAppendTime",
        Timestamp::NotAvailable => "-",
    }
}

impl AsTable for Deliveries {
    fn as_table(&self) -> Table {
        let mut table = Table::new(&[
            "topic",
            "partition",
            "offset",
            "key",
            "timestamp",
            "city",
            "temperature",
        ])
        .with_title(format!("Delivery reports ({} delivered)", self.0.len()));
        for d in &self.0 {
            table.push_row(vec![
                d.topic.clone(),
                d.partition.to_string(),
                d.offset.to_string(),
                d.reading.key().to_string(),
                d.reading.timestamp_rfc3339(),
                d.reading.city.clone(),
                format!("{:.1}", d.reading.temperature),
            ]);
        }
        table
    }
}

crate::shown_as_table!(Deliveries);
