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
//! - `linger.ms=1`: a batch waits at most 1 ms for more messages (librdkafka's
//!   default is 5 ms); see `client::producer_config` for what was measured.
//!
//! The message key is the city (so a city's readings keep their order in one
//! partition) and the message timestamp is the reading's own time.
//!
//! kcat equivalent: `kcat -P -b HOST -t weather -K: -D'\n'` (kcat prints no
//! delivery reports unless run with `-v`).

use std::time::Duration;

use rdkafka::message::Timestamp;
use serde::Serialize;

mod burst;
mod raw;
mod reports;
mod stream;
// Public for `benches/produce_layers.rs`; not part of the lab's API.
#[doc(hidden)]
pub mod topic_handle;
use crate::config::KafkaSettings;
use crate::display::{AsTable, Cell, Column, StreamedRow, Table};
use crate::error::{Error, Result};
use crate::weather::Reading;
pub use raw::{produce_raw, RawProducer};
pub(crate) use reports::flush_promptly;
pub use reports::{DeliveryReports, NotWritten, Report, ReportingProducer, Written};
pub use stream::{check_rate, produce_weather, stream_weather, RATE_RANGE};

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
    /// Offset the broker assigned, or [`OFFSET_NOT_REPORTED`] when its answer
    /// gave none (see [`Delivery::reported_offset`]).
    pub offset: i64,
    /// The message timestamp in milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
    /// Who set the timestamp.
    pub timestamp_type: TimestampType,
    /// The reading that was sent.
    pub reading: Reading,
}

/// What [`Delivery::offset`] holds when the broker's answer gave no offset for
/// the message: -1, the offset field of such an answer.
pub const OFFSET_NOT_REPORTED: i64 = -1;

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

/// A producer of weather readings to one topic: key = city, value = the reading
/// as JSON, timestamp = the reading's own time.
pub struct WeatherProducer {
    producer: ReportingProducer<Reading>,
    topic: String,
    encoder: RecordEncoder,
}

/// The key and JSON value of the reading being sent: librdkafka copies both on
/// send, so one buffer each serves every send.
struct RecordEncoder {
    key: String,
    value: Vec<u8>,
}

impl RecordEncoder {
    fn new() -> Self {
        RecordEncoder {
            key: String::new(),
            value: Vec::with_capacity(128),
        }
    }

    /// Queues `reading` on `producer`: key = city, value = JSON, timestamp =
    /// the reading's time; the reading rides along to its delivery report.
    fn send(
        &mut self,
        producer: &ReportingProducer<Reading>,
        topic: &str,
        reading: Reading,
    ) -> Result<()> {
        self.value.clear();
        reading.write_json(&mut self.value);
        let timestamp = reading.timestamp.timestamp_millis();
        // The key is copied out: the reading itself goes with the message.
        self.key.clear();
        self.key.push_str(reading.key());
        producer.send_keyed(topic, self.key.as_bytes(), &self.value, timestamp, reading)
    }
}

/// A producer for `topic`, which must exist, connected to it.
fn connected<T: Send + Sync + 'static>(
    settings: &KafkaSettings,
    topic: &str,
) -> Result<ReportingProducer<T>> {
    crate::topics::validate_topic_name(topic)?;
    let producer = ReportingProducer::new(settings, &[])?;
    producer.connect_to(topic)?;
    Ok(producer)
}

impl WeatherProducer {
    /// Connects a producer for `topic`, which must exist.
    pub fn new(settings: &KafkaSettings, topic: &str) -> Result<Self> {
        Ok(WeatherProducer {
            producer: connected(settings, topic)?,
            topic: topic.to_string(),
            encoder: RecordEncoder::new(),
        })
    }

    /// The topic this producer writes to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Queues one reading. Returns at once; call [`WeatherProducer::flush`] to
    /// wait for its delivery report.
    pub fn send(&mut self, reading: &Reading) -> Result<()> {
        self.send_owned(reading.clone())
    }

    /// [`WeatherProducer::send`] for a reading the caller no longer needs: it
    /// rides along to its delivery report without a copy.
    pub fn send_owned(&mut self, reading: Reading) -> Result<()> {
        self.encoder.send(&self.producer, &self.topic, reading)
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
        let since = self.producer.reported();
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
                delivered: delivered.len(),
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

impl Delivery {
    /// The offset, if the broker reported one.
    ///
    /// It does not when a connection drops after the broker wrote a batch but
    /// before its answer arrived: the idempotent producer sends the batch again
    /// with the same sequence numbers, the broker recognises them and refuses
    /// the copy (`DUPLICATE_SEQUENCE_NUMBER`), and librdkafka reports the
    /// messages as delivered, once, without their offsets (its own numbering,
    /// counted up from -1, is dropped: see `CountedFromNothing` in
    /// `produce/reports.rs`). Apache Kafka keeps the last five batches of each
    /// producer and answers their retries with the first offsets instead; a
    /// broker that restarted without that state cannot. With `acks=0` the
    /// broker never answers, and no delivery has an offset.
    pub fn reported_offset(&self) -> Option<i64> {
        (self.offset >= 0).then_some(self.offset)
    }

    /// Where `written` landed in `topic`.
    fn of(topic: String, written: Written<Reading>) -> Self {
        Delivery {
            topic,
            partition: written.partition,
            offset: written.offset,
            timestamp_ms: written.timestamp.to_millis(),
            timestamp_type: written.timestamp.into(),
            reading: written.sent,
        }
    }
}

/// A reading that was not written, and why, for reports and errors.
fn not_written(reading: &Reading, error: &str) -> String {
    format!("{reading} ({error})")
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
            Ok(Delivery::of(topic.to_string(), written)),
        ),
        Err(failed) => (
            failed.sequence,
            Err(not_written(&failed.sent, &failed.error)),
        ),
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

impl StreamedRow for Delivery {
    /// The report's cells, in the order of [`DELIVERY_COLUMNS`]: `?` for an
    /// offset the broker did not report.
    fn with_cells<R>(&self, f: impl FnOnce(&[Cell<'_>]) -> R) -> R {
        f(&[
            Cell::Text(&self.topic),
            Cell::Number(self.partition.into()),
            self.reported_offset().map_or(Cell::Text("?"), Cell::Number),
            Cell::Text(self.reading.key()),
            Cell::Time(self.reading.timestamp),
            Cell::Text(&self.reading.city),
            Cell::OneDecimal(self.reading.temperature),
        ])
    }
}

impl Delivery {
    /// The report's cells as text, in the order of [`DELIVERY_COLUMNS`].
    pub fn cells(&self) -> Vec<String> {
        self.with_cells(|cells| cells.iter().map(|c| c.to_string()).collect())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weather::WeatherGenerator;

    #[test]
    fn a_duplicate_acknowledged_without_an_offset_shows_a_question_mark() {
        // What librdkafka reports for a retry the broker refused as a
        // duplicate: delivered, with no offset (the message keeps its own
        // create time: the refusal carries none).
        let written = Written {
            sequence: 0,
            sent: WeatherGenerator::default_cities(3).next_reading(),
            partition: 0,
            offset: OFFSET_NOT_REPORTED,
            timestamp: Timestamp::CreateTime(1_000),
        };
        let delivered = delivery("weather", Ok(written)).1.expect("a delivery");
        assert_eq!(delivered.reported_offset(), None);
        assert_eq!(delivered.cells()[2], "?");
        let mut known = delivered.clone();
        known.offset = 0;
        assert_eq!(known.reported_offset(), Some(0));
        assert_eq!(known.cells()[2], "0");
    }

    #[test]
    fn a_streamed_row_is_the_tables_row_of_the_same_cells() {
        // `StreamedTable::write_row` (the command's rows) and `row` of the
        // cells as text (tables) pad, escape and count widths alike.
        use crate::display::StreamedTable;
        let mut generator = WeatherGenerator::default_cities(5);
        let mut table = StreamedTable::new(&DELIVERY_COLUMNS);
        let cities = ["Zürich", "北京", "tab\there", "\u{1b}[2J", "", "Toronto"];
        for (i, city) in cities.iter().enumerate() {
            let mut reading = generator.next_reading();
            reading.city = city.to_string();
            reading.temperature = [-0.0, 12.25, -40.0, 1e21, f64::NAN, 3.0][i];
            let delivery = Delivery {
                topic: "weather".to_string(),
                partition: i as i32,
                offset: [OFFSET_NOT_REPORTED, 0, 7, i64::MAX, 123_456, 9][i],
                timestamp_ms: Some(1_000),
                timestamp_type: TimestampType::CreateTime,
                reading,
            };
            let mut streamed = Vec::new();
            delivery
                .with_cells(|cells| table.write_row(&mut streamed, cells))
                .unwrap();
            let streamed = String::from_utf8(streamed).unwrap();
            assert_eq!(
                streamed.trim_end(),
                table.row(&delivery.cells()),
                "{city:?}"
            );
        }
    }

    #[test]
    fn reports_become_deliveries_or_name_the_reading_that_failed() {
        let reading = WeatherGenerator::default_cities(3).next_reading();
        let written = Written {
            sequence: 4,
            sent: reading.clone(),
            partition: 2,
            offset: 17,
            timestamp: Timestamp::CreateTime(1_000),
        };
        let (sequence, delivered) = delivery("weather", Ok(written));
        let delivered = delivered.expect("a delivery");
        assert_eq!(sequence, 4);
        assert_eq!((delivered.partition, delivered.offset), (2, 17));
        assert_eq!(delivered.timestamp_type, TimestampType::CreateTime);
        assert_eq!(delivered.timestamp_ms, Some(1_000));
        assert_eq!(delivered.cells()[3], reading.city);
        assert_eq!(delivered.cells().len(), DELIVERY_COLUMNS.len());
        let failed = NotWritten {
            sequence: 5,
            sent: reading.clone(),
            error: "Message timed out".into(),
        };
        let (sequence, error) = delivery("weather", Err(failed));
        assert_eq!(sequence, 5);
        let error = error.expect_err("not delivered");
        assert!(
            error.contains(&reading.city) && error.ends_with("(Message timed out)"),
            "{error}"
        );
        assert_eq!(
            TimestampType::from(Timestamp::LogAppendTime(1)),
            TimestampType::LogAppendTime
        );
    }
}
