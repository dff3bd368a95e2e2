//! Raw messages: bytes that are not readings (poison pills, dead letters).

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::BaseRecord;

use super::ReportingProducer;
use crate::config::KafkaSettings;
use crate::error::{Error, Result};
use crate::topics;

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
                delivered: delivered.len(),
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
    topics::topic_partitions(settings, topic)?;
    let mut producer = RawProducer::new(settings)?;
    producer.send(topic, key.map(str::as_bytes), value, &[])?;
    let delivered = producer.flush()?;
    delivered.first().copied().ok_or_else(|| Error::Delivery {
        total: 1,
        delivered: 0,
        undelivered: vec!["no delivery report".to_string()],
    })
}
