//! Records: a message as a consumer receives it, decoded into a reading or not.
//!
//! A consumer gets more than the value it asked for: every message arrives with
//! its **topic, partition and offset** (its identity in the cluster: offsets are
//! unique within a partition and never reused), its key and its timestamp. The
//! value is only bytes; this module decodes them as a weather reading. A value
//! that is not one (not JSON, the wrong shape, empty, null) is a **poison pill**:
//! it is kept with its identity and the reason, so it can be reported, skipped
//! and, if wanted, copied to a dead-letter topic, never a panic.
//!
//! kcat equivalent: `kcat -C -f '%t [%p] @%o: key %k, %s\n'` prints the same fields.

use rdkafka::message::{BorrowedMessage, Message};
use serde::Serialize;

use crate::display::Cell;
use crate::weather::Reading;

/// One reading as it was read: where it was in the log, and what it said.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConsumedRecord {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// The message key, if it is text.
    pub key: Option<String>,
    /// The message timestamp (ms since the epoch).
    pub timestamp_ms: Option<i64>,
    /// The reading in the value.
    pub reading: Reading,
}

impl crate::display::StreamedRow for ConsumedRecord {
    /// The record's cells, the columns of `kafka_log.csv`.
    fn with_cells<R>(&self, f: impl FnOnce(&[Cell<'_>]) -> R) -> R {
        f(&[
            Cell::Text(&self.topic),
            Cell::Number(self.partition.into()),
            Cell::Number(self.offset),
            Cell::Time(self.reading.timestamp),
            Cell::Text(&self.reading.city),
            Cell::OneDecimal(self.reading.temperature),
        ])
    }
}

/// A message whose value is not a reading.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PoisonPill {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// What is wrong with it.
    pub reason: String,
    /// Its first bytes, escaped, for the report.
    pub first_bytes: String,
    /// The message key, kept until the pill is dead-lettered.
    #[serde(skip)]
    pub key: Option<Vec<u8>>,
    /// The message value, kept until the pill is dead-lettered.
    #[serde(skip)]
    pub value: Option<Vec<u8>>,
}

/// A message, read: a reading, or a poison pill.
#[derive(Clone, Debug, PartialEq)]
pub enum Decoded {
    /// The value is a reading.
    Reading(ConsumedRecord),
    /// The value is not a reading.
    Poison(PoisonPill),
}

impl Decoded {
    /// The message's partition and offset, whatever it held.
    pub fn position(&self) -> (i32, i64) {
        match self {
            Decoded::Reading(record) => (record.partition, record.offset),
            Decoded::Poison(pill) => (pill.partition, pill.offset),
        }
    }
}

/// For each partition among `positions` (partition, offset), the next offset to
/// read after them: what a commit stores.
pub fn next_offsets(
    positions: impl IntoIterator<Item = (i32, i64)>,
) -> std::collections::BTreeMap<i32, i64> {
    let mut next = std::collections::BTreeMap::new();
    for (partition, offset) in positions {
        let entry = next.entry(partition).or_insert(offset + 1);
        *entry = (*entry).max(offset + 1);
    }
    next
}

/// Decodes a received message: its value as a reading, or as a poison pill
/// that says why it is not one.
pub fn decode(message: &BorrowedMessage<'_>) -> Decoded {
    decode_parts(
        message.topic(),
        message.partition(),
        message.offset(),
        message.key(),
        message.payload(),
        message.timestamp().to_millis(),
    )
}

/// [`decode`] from a message's parts (what a test or another client has).
pub fn decode_parts(
    topic: &str,
    partition: i32,
    offset: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    timestamp_ms: Option<i64>,
) -> Decoded {
    let pill = |reason: String, bytes: &[u8]| PoisonPill {
        topic: topic.to_string(),
        partition,
        offset,
        reason,
        first_bytes: preview(bytes),
        key: key.map(<[u8]>::to_vec),
        value: value.map(<[u8]>::to_vec),
    };
    let Some(value) = value else {
        return Decoded::Poison(pill("null value".to_string(), &[]));
    };
    match Reading::from_json(value) {
        Ok(reading) => Decoded::Reading(ConsumedRecord {
            topic: topic.to_string(),
            partition,
            offset,
            key: key
                .and_then(|k| std::str::from_utf8(k).ok())
                .map(str::to_string),
            timestamp_ms,
            reading,
        }),
        Err(reason) => Decoded::Poison(pill(format!("{reason} ({} bytes)", value.len()), value)),
    }
}

/// The first 32 bytes, escaped so that binary data prints safely.
pub fn preview(bytes: &[u8]) -> String {
    let shown: String = bytes[..bytes.len().min(32)]
        .escape_ascii()
        .map(char::from)
        .collect();
    if bytes.len() > 32 {
        format!("{shown}...")
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_offset_follows_the_highest_one_read() {
        let next = next_offsets([(0, 4), (1, 9), (0, 6), (0, 5)]);
        assert_eq!(next.into_iter().collect::<Vec<_>>(), [(0, 7), (1, 10)]);
    }

    #[test]
    fn preview_escapes_and_truncates() {
        assert_eq!(preview(b"ab\x00\xff"), "ab\\x00\\xff");
        assert_eq!(preview(&[b'a'; 40]), format!("{}...", "a".repeat(32)));
    }

    #[test]
    fn readings_and_pills_keep_their_identity() {
        let value =
            br#"{"timestamp":"2026-11-26T05:00:00.000Z","city":"Toronto","temperature":1.5}"#;
        let Decoded::Reading(record) =
            decode_parts("weather", 2, 7, Some(b"Toronto"), Some(value), Some(5))
        else {
            panic!("a reading");
        };
        assert_eq!(
            (record.partition, record.offset, record.key.as_deref()),
            (2, 7, Some("Toronto"))
        );
        assert_eq!(record.reading.temperature, 1.5);
        let pill = decode_parts("weather", 0, 3, None, Some(b"not json"), None);
        assert_eq!(pill.position(), (0, 3));
        let Decoded::Poison(pill) = pill else {
            panic!("a pill");
        };
        assert!(pill.reason.starts_with("not JSON"), "{}", pill.reason);
        assert_eq!(pill.value.as_deref(), Some(&b"not json"[..]));
        let Decoded::Poison(null) = decode_parts("weather", 0, 4, None, None, None) else {
            panic!("a pill");
        };
        assert_eq!(null.reason, "null value");
    }
}
