//! Producing: sending readings to a topic and learning where they landed.
//!
//! `send` only puts a message in the client's queue; librdkafka batches queued
//! messages per partition (`linger.ms`, `batch.size`) and sends them in the
//! background. The broker appends each batch to the partition's log and answers
//! with the offsets it assigned. librdkafka then hands every message back in a
//! **delivery report**: partition, offset and timestamp on success, an error on
//! failure. A producer that never waits for its reports does not know whether its
//! messages were written, so this one keeps every report: [`WeatherProducer::flush`]
//! waits (with a timeout) until every queued message has its report, and
//! [`WeatherProducer::take_reports`] hands over those already in, so that a long
//! run streams them instead of holding them all.
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

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Header, Message, OwnedHeaders, Timestamp, ToBytes};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use serde::Serialize;

use crate::client::producer_config;
use crate::config::KafkaSettings;
use crate::display::{AsTable, Column, Table};
use crate::error::{Error, Result};
use crate::topics;
use crate::weather::{Reading, WeatherGenerator};

/// Who set a message's timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum TimestampType {
    /// The producer (here: the reading's own time).
    CreateTime,
    /// The broker, when it appended the message (a topic setting).
    LogAppendTime,
    /// No timestamp.
    NotAvailable,
}

impl From<Timestamp> for TimestampType {
    fn from(timestamp: Timestamp) -> Self {
        match timestamp {
            Timestamp::CreateTime(_) => TimestampType::CreateTime,
            Timestamp::LogAppendTime(_) => TimestampType::LogAppendTime,
            Timestamp::NotAvailable => TimestampType::NotAvailable,
        }
    }
}

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
    /// Who set the timestamp.
    pub timestamp_type: TimestampType,
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

/// A delivery report: where the message was written, or why it was not.
pub type Report<T> = std::result::Result<Written<T>, NotWritten<T>>;

/// A message the broker wrote: what was sent, and where it landed.
#[derive(Clone, Debug, PartialEq)]
pub struct Written<T> {
    /// Its place in the order of sends.
    pub sequence: usize,
    /// What the caller sent with it (a reading, or nothing).
    pub sent: T,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp.
    pub timestamp: Timestamp,
}

/// A message that was not written, and the client's reason.
#[derive(Clone, Debug, PartialEq)]
pub struct NotWritten<T> {
    /// Its place in the order of sends.
    pub sequence: usize,
    /// What the caller sent with it.
    pub sent: T,
    /// Why it failed.
    pub error: String,
}

/// The producer context: librdkafka calls `delivery` once per message, from
/// `poll`/`flush`, with what was sent alongside it; the report waits here until
/// the producer takes it.
pub struct DeliveryReports<T> {
    reports: Mutex<Vec<Report<T>>>,
}

impl<T> Default for DeliveryReports<T> {
    fn default() -> Self {
        DeliveryReports {
            reports: Mutex::new(Vec::new()),
        }
    }
}

impl<T: Send + Sync> ClientContext for DeliveryReports<T> {}

impl<T: Send + Sync + 'static> ProducerContext for DeliveryReports<T> {
    type DeliveryOpaque = Box<(usize, T)>;

    fn delivery(&self, result: &DeliveryResult<'_>, sent: Self::DeliveryOpaque) {
        let (sequence, sent) = *sent;
        let report = match result {
            Ok(message) => Ok(Written {
                sequence,
                sent,
                partition: message.partition(),
                offset: message.offset(),
                timestamp: message.timestamp(),
            }),
            Err((error, _message)) => Err(NotWritten {
                sequence,
                sent,
                error: error.to_string(),
            }),
        };
        if let Ok(mut reports) = self.reports.lock() {
            reports.push(report);
        }
    }
}

/// A producer that sends messages, each with a `T` that comes back in its
/// delivery report. [`WeatherProducer`] and [`RawProducer`] are made of it.
pub struct ReportingProducer<T: Send + Sync + 'static> {
    producer: BaseProducer<DeliveryReports<T>>,
    settings: KafkaSettings,
    sent: usize,
    reported: usize,
}

/// Delivery reports are served (their callbacks run) once every this many
/// sends: often enough to keep memory flat, rarely enough to cost nothing.
const SERVE_REPORTS_EVERY: usize = 1000;

impl<T: Send + Sync + 'static> ReportingProducer<T> {
    /// A producer with [`producer_config`]'s settings plus `defaults`.
    pub fn new(settings: &KafkaSettings, defaults: &[(&str, &str)]) -> Result<Self> {
        let producer = producer_config(settings, defaults)
            .create_with_context(DeliveryReports::default())
            .map_err(|e| settings.client_error("creating a producer", e))?;
        Ok(ReportingProducer {
            producer,
            settings: settings.clone(),
            sent: 0,
            reported: 0,
        })
    }

    /// Queues one message with `sent` riding along. Returns at once; the report
    /// comes later ([`ReportingProducer::take_reports`], [`ReportingProducer::flush`]).
    pub fn send<K, P>(&mut self, record: BaseRecord<'_, K, P, Box<(usize, T)>>) -> Result<()>
    where
        K: ToBytes + ?Sized,
        P: ToBytes + ?Sized,
    {
        let topic = record.topic.to_string();
        let deadline = Instant::now() + self.settings.timeout();
        send_making_room(&self.producer, record, Some(deadline)).map_err(|e| {
            self.settings
                .client_error(format!("sending to '{topic}'"), e)
        })?;
        self.sent += 1;
        if self.sent.is_multiple_of(SERVE_REPORTS_EVERY) {
            self.producer.poll(Duration::ZERO);
        }
        Ok(())
    }

    /// The box a record carries: the next sequence number and `sent`.
    pub fn opaque(&self, sent: T) -> Box<(usize, T)> {
        Box::new((self.sent, sent))
    }

    /// The reports that are in, without waiting.
    pub fn take_reports(&mut self) -> Vec<Report<T>> {
        self.producer.poll(Duration::ZERO);
        let reports = match self.producer.context().reports.lock() {
            Ok(mut reports) => std::mem::take(&mut *reports),
            Err(_) => Vec::new(),
        };
        self.reported += reports.len();
        reports
    }

    /// Waits until every message sent has its report (at most the settings'
    /// timeout plus a second) and returns the reports not yet taken, and how many
    /// messages still have none.
    pub fn flush(&mut self) -> (Vec<Report<T>>, usize) {
        // A flush timeout still leaves the reports we have; the count of missing
        // ones says how many messages were not reported.
        let _ = self
            .producer
            .flush(self.settings.timeout() + Duration::from_secs(1));
        let reports = self.take_reports();
        (reports, self.sent - self.reported)
    }

    /// Messages sent so far.
    pub fn sent(&self) -> usize {
        self.sent
    }

    /// The settings it was built with.
    pub fn settings(&self) -> &KafkaSettings {
        &self.settings
    }
}

impl<T: Send + Sync + 'static> Drop for ReportingProducer<T> {
    fn drop(&mut self) {
        // Never drop queued messages silently: give them the usual time to go out.
        if self.producer.in_flight_count() > 0 {
            let _ = self.producer.flush(self.settings.timeout());
        }
    }
}

/// A producer of weather readings to one topic: key = city, value = the reading
/// as JSON, timestamp = the reading's own time.
pub struct WeatherProducer {
    producer: ReportingProducer<Reading>,
    topic: String,
}

impl WeatherProducer {
    /// Connects a producer for `topic`, which must exist.
    pub fn new(settings: &KafkaSettings, topic: &str) -> Result<Self> {
        // Ask first, so a missing topic is a clear error and not ten seconds of
        // failed deliveries.
        topics::describe_topic(settings, topic)?;
        Ok(WeatherProducer {
            producer: ReportingProducer::new(settings, &[])?,
            topic: topic.to_string(),
        })
    }

    /// The topic this producer writes to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Queues one reading. Returns at once; call [`WeatherProducer::flush`] to
    /// wait for its delivery report.
    pub fn send(&mut self, reading: &Reading) -> Result<()> {
        let value = reading.to_json();
        let record = BaseRecord::with_opaque_to(&self.topic, self.producer.opaque(reading.clone()))
            .key(reading.key())
            .payload(&value)
            .timestamp(reading.timestamp.timestamp_millis());
        self.producer.send(record)
    }

    /// The delivery reports that are in, without waiting, in arrival order:
    /// each with its place in the order of sends.
    pub fn take_reports(&mut self) -> Vec<(usize, std::result::Result<Delivery, String>)> {
        let topic = self.topic.clone();
        self.producer
            .take_reports()
            .into_iter()
            .map(|report| delivery(&topic, report))
            .collect()
    }

    /// Waits until every queued reading has a delivery report (at most the
    /// settings' timeout plus a second), then returns the reports not yet taken,
    /// in send order. Fails with [`Error::Delivery`] if any reading was not written.
    pub fn flush(&mut self) -> Result<Deliveries> {
        let since = self.producer.reported;
        let (mut reports, missing) = self.producer.flush();
        reports.sort_by_key(|report| match report {
            Ok(written) => written.sequence,
            Err(failed) => failed.sequence,
        });
        let total = self.producer.sent() - since;
        let mut delivered = Vec::with_capacity(reports.len());
        let mut errors = Vec::new();
        for report in reports {
            match delivery(&self.topic, report).1 {
                Ok(d) => delivered.push(d),
                Err(error) => errors.push(error),
            }
        }
        if missing > 0 {
            errors.push(format!(
                "{missing} reading(s) without a delivery report within {:?}",
                self.producer.settings().timeout() + Duration::from_secs(1)
            ));
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

/// A report of a reading, as a [`Delivery`] or the reading and its error, with
/// its place in the order of sends.
fn delivery(
    topic: &str,
    report: Report<Reading>,
) -> (usize, std::result::Result<Delivery, String>) {
    match report {
        Ok(written) => (
            written.sequence,
            Ok(Delivery {
                topic: topic.to_string(),
                partition: written.partition,
                offset: written.offset,
                timestamp_ms: written.timestamp.to_millis(),
                timestamp_type: written.timestamp.into(),
                reading: written.sent,
            }),
        ),
        Err(failed) => (
            failed.sequence,
            Err(format!("{} ({})", failed.sent, failed.error)),
        ),
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
/// second when a rate is given; each report is handed to `on_report` as it
/// arrives, so a long run holds none of them. Returns how many were delivered,
/// or [`Error::Delivery`] naming those that were not.
pub fn stream_weather(
    settings: &KafkaSettings,
    topic: &str,
    generator: &mut WeatherGenerator,
    count: usize,
    rate: Option<f64>,
    on_report: &mut dyn FnMut(usize, &std::result::Result<Delivery, String>),
) -> Result<usize> {
    let mut producer = WeatherProducer::new(settings, topic)?;
    let interval = rate
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64(1.0 / r));
    let started = Instant::now();
    let mut delivered = 0;
    let mut undelivered = Vec::new();
    let mut file = |(sequence, report): (usize, std::result::Result<Delivery, String>)| {
        on_report(sequence, &report);
        match report {
            Ok(_) => delivered += 1,
            Err(error) => undelivered.push(error),
        }
    };
    for index in 0..count {
        if let Some(interval) = interval {
            let due = started + interval.mul_f64(index as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        producer.send(&generator.next_reading())?;
        if (index + 1).is_multiple_of(SERVE_REPORTS_EVERY) || interval.is_some() {
            producer.take_reports().into_iter().for_each(&mut file);
        }
    }
    let (reports, missing) = producer.producer.flush();
    for report in reports {
        file(delivery(topic, report));
    }
    if missing > 0 {
        undelivered.push(format!(
            "{missing} reading(s) without a delivery report within {:?}",
            settings.timeout() + Duration::from_secs(1)
        ));
    }
    if undelivered.is_empty() {
        Ok(delivered)
    } else {
        Err(Error::Delivery {
            total: count,
            undelivered,
        })
    }
}

/// Makes `count` readings with `generator` and sends them, at most `rate` per
/// second when a rate is given; returns their delivery reports in send order.
pub fn produce_weather(
    settings: &KafkaSettings,
    topic: &str,
    generator: &mut WeatherGenerator,
    count: usize,
    rate: Option<f64>,
) -> Result<Deliveries> {
    let mut deliveries = Vec::with_capacity(count);
    stream_weather(
        settings,
        topic,
        generator,
        count,
        rate,
        &mut |sequence, report| {
            if let Ok(delivery) = report {
                deliveries.push((sequence, delivery.clone()));
            }
        },
    )?;
    // Reports arrive partition by partition; sends have one order.
    deliveries.sort_by_key(|(sequence, _)| *sequence);
    Ok(Deliveries(deliveries.into_iter().map(|(_, d)| d).collect()))
}

/// A producer of raw bytes with headers: for messages that are not readings
/// (poison pills in a demo, the original bytes of a dead letter).
pub struct RawProducer {
    producer: ReportingProducer<()>,
}

impl RawProducer {
    /// A producer with room for a message the broker accepted plus headers
    /// (librdkafka's own limit, 1,000,000 bytes, is below Kafka's default of
    /// 1,048,588).
    pub fn new(settings: &KafkaSettings) -> Result<Self> {
        Ok(RawProducer {
            producer: ReportingProducer::new(settings, &[("message.max.bytes", "2000000")])?,
        })
    }

    /// Queues one message; [`RawProducer::flush`] waits for its delivery.
    pub fn send(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Result<()> {
        let mut record: BaseRecord<'_, [u8], [u8], Box<(usize, ())>> =
            BaseRecord::with_opaque_to(topic, self.producer.opaque(()));
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
        self.producer.send(record)
    }

    /// Waits for every queued message's delivery report; returns their
    /// (partition, offset) in send order, or the failures.
    pub fn flush(&mut self) -> Result<Vec<(i32, i64)>> {
        let (mut reports, missing) = self.producer.flush();
        reports.sort_by_key(|report| match report {
            Ok(written) => written.sequence,
            Err(failed) => failed.sequence,
        });
        let total = reports.len() + missing;
        let mut delivered = Vec::with_capacity(total);
        let mut errors = Vec::new();
        for report in reports {
            match report {
                Ok(written) => delivered.push((written.partition, written.offset)),
                Err(failed) => errors.push(failed.error),
            }
        }
        if missing > 0 {
            errors.push(format!(
                "{missing} message(s) without a delivery report before the timeout"
            ));
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
    let mut producer = RawProducer::new(settings)?;
    producer.send(topic, key.map(str::as_bytes), value, &[])?;
    let delivered = producer.flush()?;
    delivered.first().copied().ok_or_else(|| Error::Delivery {
        total: 1,
        undelivered: vec!["no delivery report".to_string()],
    })
}

/// The columns of a delivery report, sized for reports printed as they arrive.
pub const DELIVERY_COLUMNS: [Column; 7] = [
    Column {
        name: "topic",
        width: 12,
        right: false,
    },
    Column {
        name: "partition",
        width: 9,
        right: true,
    },
    Column {
        name: "offset",
        width: 8,
        right: true,
    },
    Column {
        name: "key",
        width: 12,
        right: false,
    },
    Column {
        name: "timestamp",
        width: 24,
        right: false,
    },
    Column {
        name: "city",
        width: 12,
        right: false,
    },
    Column {
        name: "temperature",
        width: 11,
        right: true,
    },
];

impl Delivery {
    /// The report's cells, in the order of [`DELIVERY_COLUMNS`].
    pub fn cells(&self) -> Vec<String> {
        vec![
            self.topic.clone(),
            self.partition.to_string(),
            self.offset.to_string(),
            self.reading.key().to_string(),
            self.reading.timestamp_rfc3339(),
            self.reading.city.clone(),
            format!("{:.1}", self.reading.temperature),
        ]
    }
}

impl AsTable for Deliveries {
    fn as_table(&self) -> Table {
        let headers: Vec<&str> = DELIVERY_COLUMNS.iter().map(|c| c.name).collect();
        let mut table = Table::new(&headers)
            .with_title(format!("Delivery reports ({} delivered)", self.0.len()));
        for d in &self.0 {
            table.push_row(d.cells());
        }
        table
    }
}

crate::shown_as_table!(Deliveries);
