//! Partitions, keys and consumer groups: how Kafka spreads work.
//!
//! A topic is split into **partitions**, each its own ordered log. A producer
//! picks the partition of a keyed message by hashing the key: librdkafka's
//! default partitioner (`consistent_random`) takes the CRC32 of the key modulo the
//! partition count, so a city always lands on the same partition (as long as the
//! partition count stays the same), and its readings keep their order there.
//! There is no order *across* partitions: a consumer interleaves them as their
//! batches arrive. Few keys on few partitions can also collide: Toronto, Guangzhou
//! and Fuzhou all hash to partition 2 of 3, a hot partition.
//!
//! The members of a **consumer group** share a topic's partitions: each partition
//! is read by exactly one member. When a member joins or leaves, the group
//! **rebalances**: the partitions are revoked and assigned again. The
//! `partition.assignment.strategy` decides how:
//! - `range` (librdkafka's default with `roundrobin`) is *eager*: every member
//!   gives up all its partitions, then receives a new set;
//! - `cooperative-sticky` is *incremental*: only the partitions that move are
//!   revoked, and the others keep being read during the rebalance.
//!
//! Committing after each handled batch means a partition that moves is picked up
//! by its new owner exactly where the old one stopped: nothing lost, nothing twice.
//!
//! Kafka CLI equivalents: `kafka-consumer-groups.sh --describe --members`;
//! kcat: `kcat -G GROUP topic` in two terminals.

use std::collections::BTreeSet;

use serde::Serialize;

mod members;
pub use members::{two_members, Assignor, GroupRun, GroupRunOptions, MemberEvent, MemberRead};

use crate::consume::ConsumedRecord;
use crate::display::{AsTable, Table};
use crate::produce::Deliveries;

/// The lab's cities plus three that hash to the other partitions of a
/// 3-partition topic (Vancouver and Shanghai to 0, Montreal to 1), so that every
/// partition gets readings.
pub const SPREAD_CITIES: [&str; 6] = [
    "Toronto",
    "Guangzhou",
    "Fuzhou",
    "Vancouver",
    "Montreal",
    "Shanghai",
];

/// The partition librdkafka's default partitioner picks for a non-empty `key`:
/// CRC32 (IEEE) of the key, modulo the partition count.
pub fn partition_for_key(key: &str, partitions: i32) -> i32 {
    let partitions = partitions.max(1) as u32;
    (crc32(key.as_bytes()) % partitions) as i32
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), bit by bit: the
/// checksum librdkafka hashes keys with (`rd_crc32`).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// Where one city's readings landed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyPlacement {
    /// The key.
    pub city: String,
    /// The partition its readings were written to (from the delivery reports).
    pub partition: i32,
    /// The partition the CRC32 rule predicts.
    pub predicted: i32,
    /// How many readings.
    pub readings: usize,
    /// Their offsets in the partition.
    pub offsets: Vec<i64>,
}

/// Where each key's readings landed, from delivery reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Placements {
    /// Partition count of the topic.
    pub partitions: i32,
    /// One row per city, in order of first appearance.
    pub rows: Vec<KeyPlacement>,
}

impl Placements {
    /// Groups `deliveries` by key (city) for a topic of `partitions` partitions.
    pub fn from_deliveries(deliveries: &Deliveries, partitions: i32) -> Placements {
        let mut rows: Vec<KeyPlacement> = Vec::new();
        for d in &deliveries.0 {
            let city = d.reading.key();
            let index = match rows.iter().position(|r| r.city == city) {
                Some(index) => index,
                None => {
                    rows.push(KeyPlacement {
                        city: city.to_string(),
                        partition: d.partition,
                        predicted: partition_for_key(city, partitions),
                        readings: 0,
                        offsets: Vec::new(),
                    });
                    rows.len() - 1
                }
            };
            rows[index].readings += 1;
            rows[index].offsets.push(d.offset);
        }
        Placements { partitions, rows }
    }

    /// Whether every city's readings all went to one partition, the predicted one.
    pub fn stable_and_predicted(&self, deliveries: &Deliveries) -> bool {
        deliveries.0.iter().all(|d| {
            self.partition_of(d.reading.key()) == Some(d.partition)
                && partition_for_key(d.reading.key(), self.partitions) == d.partition
        })
    }

    /// The partition a city's readings went to.
    pub fn partition_of(&self, city: &str) -> Option<i32> {
        self.rows
            .iter()
            .find(|r| r.city == city)
            .map(|r| r.partition)
    }

    /// Readings per partition (0 for partitions no city hashed to).
    pub fn readings_per_partition(&self) -> Vec<(i32, usize)> {
        (0..self.partitions)
            .map(|p| {
                let count = self
                    .rows
                    .iter()
                    .filter(|r| r.partition == p)
                    .map(|r| r.readings)
                    .sum();
                (p, count)
            })
            .collect()
    }
}

impl AsTable for Placements {
    fn as_table(&self) -> Table {
        let mut table = Table::new(&[
            "city (key)",
            "partition",
            "CRC32 rule",
            "readings",
            "offsets",
        ])
        .with_title(format!(
            "Where each key landed ({} partitions)",
            self.partitions
        ));
        for r in &self.rows {
            table.push_row(vec![
                r.city.clone(),
                r.partition.to_string(),
                r.predicted.to_string(),
                r.readings.to_string(),
                compact_offsets(&r.offsets),
            ]);
        }
        let per_partition: Vec<String> = self
            .readings_per_partition()
            .iter()
            .map(|(p, n)| format!("p{p}: {n}"))
            .collect();
        table.footer = Some(format!(
            "readings per partition: {}",
            per_partition.join(", ")
        ));
        table
    }
}

crate::shown_as_table!(Placements);

/// Offsets as short text: `0-4, 9` style runs.
fn compact_offsets(offsets: &[i64]) -> String {
    let mut runs: Vec<String> = Vec::new();
    let mut i = 0;
    while i < offsets.len() {
        let start = offsets[i];
        let mut end = start;
        while i + 1 < offsets.len() && offsets[i + 1] == end + 1 {
            end += 1;
            i += 1;
        }
        runs.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    runs.join(", ")
}

/// Whether the order in which readings were read matches the order they were
/// sent: within each partition, and across the whole topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OrderCheck {
    /// For each partition: were its readings read in the order they were sent?
    pub per_partition: Vec<(i32, bool)>,
    /// Was the whole sequence read in send order?
    pub across_partitions: bool,
}

impl OrderCheck {
    /// Compares what was sent (delivery reports, in send order) with what was
    /// read (other messages of the topic are ignored).
    pub fn compare(sent: &Deliveries, read: &[ConsumedRecord]) -> OrderCheck {
        let id = |partition: i32, offset: i64| (partition, offset);
        let sent_ids: Vec<(i32, i64)> = sent.0.iter().map(|d| id(d.partition, d.offset)).collect();
        // Only the sent readings count: the topic may hold others from earlier runs.
        let sent_set: BTreeSet<(i32, i64)> = sent_ids.iter().copied().collect();
        let read_ids: Vec<(i32, i64)> = read
            .iter()
            .map(|r| id(r.partition, r.offset))
            .filter(|i| sent_set.contains(i))
            .collect();
        let partitions: BTreeSet<i32> = sent_ids.iter().map(|(p, _)| *p).collect();
        let per_partition = partitions
            .into_iter()
            .map(|p| {
                let only = |ids: &[(i32, i64)]| -> Vec<(i32, i64)> {
                    ids.iter().filter(|(q, _)| *q == p).copied().collect()
                };
                (p, only(&sent_ids) == only(&read_ids))
            })
            .collect();
        OrderCheck {
            per_partition,
            across_partitions: sent_ids == read_ids,
        }
    }

    /// Whether every partition was read in send order.
    pub fn every_partition_in_order(&self) -> bool {
        self.per_partition.iter().all(|(_, ok)| *ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        // The CRC-32/ISO-HDLC check value of "123456789".
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn the_default_cities_collide_on_three_partitions() {
        for city in ["Toronto", "Guangzhou", "Fuzhou"] {
            assert_eq!(partition_for_key(city, 3), 2, "{city}");
        }
    }

    #[test]
    fn the_spread_cities_cover_three_partitions() {
        let used: BTreeSet<i32> = SPREAD_CITIES
            .iter()
            .map(|c| partition_for_key(c, 3))
            .collect();
        assert_eq!(used, BTreeSet::from([0, 1, 2]));
    }

    #[test]
    fn offsets_are_shown_as_runs() {
        assert_eq!(compact_offsets(&[0, 1, 2, 5, 7, 8]), "0-2, 5, 7-8");
        assert_eq!(compact_offsets(&[]), "");
    }
}
