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

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::KafkaSettings;
use crate::consume::{ConsumeOptions, ConsumedRecord, GroupEvent, StartFrom, WeatherConsumer};
use crate::display::{AsTable, Table};
use crate::error::{is_membership_refusal, Error, Result, Setting};
use crate::produce::Deliveries;
use crate::{offsets, topics};

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

/// The partition assignment strategy of a group (`partition.assignment.strategy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Assignor {
    /// Eager: contiguous ranges of partitions per member (librdkafka's default).
    Range,
    /// Eager: partitions dealt out one by one.
    RoundRobin,
    /// Incremental: only the partitions that move are revoked.
    CooperativeSticky,
}

impl Assignor {
    /// The librdkafka name.
    pub fn name(self) -> &'static str {
        match self {
            Assignor::Range => "range",
            Assignor::RoundRobin => "roundrobin",
            Assignor::CooperativeSticky => "cooperative-sticky",
        }
    }
}

/// One group event, as one member saw it, with when it saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemberEvent {
    /// Milliseconds since the run started.
    pub at_ms: u64,
    /// `A` or `B`.
    pub member: String,
    /// What happened.
    pub event: String,
}

/// One reading read by one member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemberRead {
    /// `A` or `B`.
    pub member: String,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
}

/// How to run [`two_members`].
#[derive(Clone, Debug)]
pub struct GroupRunOptions {
    /// A topic with at least two partitions, already holding the readings to share.
    pub topic: String,
    /// The group (use a fresh id: a group with commits starts where it left off).
    pub group: String,
    /// The assignment strategy both members use.
    pub assignor: Assignor,
    /// Member B leaves after it has read this many readings.
    pub b_leaves_after: usize,
    /// Messages per poll; each batch is committed before the next poll.
    pub batch: usize,
    /// The whole run must finish within this time.
    pub timeout: Duration,
}

impl GroupRunOptions {
    /// Defaults: a range assignor, B leaves after 10 readings, batches of 5, 60 s.
    pub fn new(topic: impl Into<String>, group: impl Into<String>) -> Self {
        GroupRunOptions {
            topic: topic.into(),
            group: group.into(),
            assignor: Assignor::Range,
            b_leaves_after: 10,
            batch: 5,
            timeout: Duration::from_secs(60),
        }
    }

    /// Sets the assignor.
    pub fn assignor(mut self, assignor: Assignor) -> Self {
        self.assignor = assignor;
        self
    }
}

/// What two members of one group did with a topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GroupRun {
    /// The strategy used.
    pub assignor: Assignor,
    /// The partitions each member held once both were in: (member, partitions).
    pub shared: Vec<(String, Vec<i32>)>,
    /// A's partitions after B left.
    pub after_b_left: Vec<i32>,
    /// Rebalances, commits and the departure, in order.
    pub timeline: Vec<MemberEvent>,
    /// Every reading read, by whom.
    pub reads: Vec<MemberRead>,
    /// Messages in the topic when the run started.
    pub expected: usize,
    /// Readings read more than once.
    pub duplicates: usize,
    /// Readings never read.
    pub missing: usize,
}

impl GroupRun {
    /// Readings read by one member.
    pub fn read_by(&self, member: &str) -> usize {
        self.reads.iter().filter(|r| r.member == member).count()
    }
}

/// Two members, A and B, of one group read a topic: A joins and gets every
/// partition, then B joins and they share them; each commits after every batch; B leaves after
/// `b_leaves_after` readings and A takes over B's partitions from B's last
/// commit. Returns who held what, every group event, and the count of readings
/// lost or read twice (both 0 when commits follow processing).
///
/// Both members live inside this call (a notebook cell cannot keep clients
/// between cells), polled in turn from one thread.
pub fn two_members(settings: &KafkaSettings, options: &GroupRunOptions) -> Result<GroupRun> {
    let info = topics::describe_topic(settings, &options.topic)?;
    if info.partitions.len() < 2 {
        return Err(Error::config(
            Setting::Partitions,
            format!(
                "topic '{}' has {} partition(s): two members need at least two to share",
                options.topic,
                info.partitions.len()
            ),
        ));
    }
    let expected: usize = offsets::watermarks(settings, &options.topic)?
        .iter()
        .map(|(_, low, high)| (high - low) as usize)
        .sum();
    let member_settings = settings
        .clone()
        .with("partition.assignment.strategy", options.assignor.name());
    let member = || {
        WeatherConsumer::new(
            &member_settings,
            ConsumeOptions::new(&options.topic)
                .group(&options.group)
                .from(StartFrom::Earliest)
                .follow()
                .max(usize::MAX),
        )
    };
    let started = Instant::now();
    let deadline = started + options.timeout;
    let mut run = GroupRun {
        assignor: options.assignor,
        shared: Vec::new(),
        after_b_left: Vec::new(),
        timeline: Vec::new(),
        reads: Vec::new(),
        expected,
        duplicates: 0,
        missing: 0,
    };
    let all: BTreeSet<i32> = info.partitions.iter().map(|p| p.partition).collect();
    let unique = |run: &GroupRun| {
        run.reads
            .iter()
            .map(|r| (r.partition, r.offset))
            .collect::<BTreeSet<_>>()
            .len()
    };
    let too_late = |what: &str| Error::Timeout {
        what: what.to_string(),
        waited: options.timeout,
        hint: Some("is the broker's group coordinator working?".to_string()),
    };

    // A joins alone and gets every partition.
    let mut a = member()?;
    while a.assignment().len() < all.len() {
        poll_member(&mut a, "A", options.batch, started, &mut run)?;
        if Instant::now() >= deadline {
            return Err(too_late("member A's assignment of every partition"));
        }
    }
    let mut b = member()?;

    // Both members in: poll in turn until they split every partition between them.
    loop {
        // While B joins, A reads one message at a time, so that some are left
        // for the two of them to share.
        let a_batch = if run.shared.is_empty() {
            1
        } else {
            options.batch
        };
        poll_member(&mut a, "A", a_batch, started, &mut run)?;
        poll_member(&mut b, "B", options.batch, started, &mut run)?;
        let (held_a, held_b) = (a.assignment(), b.assignment());
        let both_in = !held_a.is_empty() && !held_b.is_empty();
        let union: BTreeSet<i32> = held_a.iter().chain(&held_b).copied().collect();
        if both_in && union == all && run.shared.is_empty() {
            run.shared = vec![("A".to_string(), held_a), ("B".to_string(), held_b)];
        }
        let b_done = run.read_by("B") >= options.b_leaves_after
            || (!run.shared.is_empty() && unique(&run) >= expected);
        if !run.shared.is_empty() && b_done {
            break;
        }
        if Instant::now() >= deadline {
            return Err(too_late(&format!(
                "the two members sharing the partitions (A holds {:?}, B holds {:?})",
                a.assignment(),
                b.assignment()
            )));
        }
    }

    // B leaves: closing sends LeaveGroup, and the group rebalances at once (a
    // crashed member would hold its partitions until its session timed out).
    drop(b);
    run.timeline.push(MemberEvent {
        at_ms: started.elapsed().as_millis() as u64,
        member: "B".to_string(),
        event: "left the group (closed)".to_string(),
    });
    while unique(&run) < expected || a.assignment().len() < all.len() {
        poll_member(&mut a, "A", options.batch, started, &mut run)?;
        if Instant::now() >= deadline {
            break;
        }
    }
    run.after_b_left = a.assignment();
    let read_ids = unique(&run);
    run.duplicates = run.reads.len() - read_ids;
    run.missing = expected.saturating_sub(read_ids);
    Ok(run)
}

/// One poll of one member: read up to `batch` messages, commit them, and file
/// the reads and group events under the member's name.
fn poll_member(
    consumer: &mut WeatherConsumer,
    name: &str,
    batch: usize,
    started: Instant,
    run: &mut GroupRun,
) -> Result<()> {
    let polled = consumer.poll_batch(batch, Duration::from_millis(200))?;
    // A batch counts as read once its offsets are committed. While the group
    // rebalances, a broker may refuse the commit (the mock does; Kafka accepts
    // it until the new generation starts): the batch is then read again, by
    // whichever member holds its partition next.
    let committed = match consumer.commit(&polled) {
        Ok(_) => true,
        Err(Error::Kafka { error, .. }) if is_membership_refusal(&error) => {
            consumer.rewind(&polled)?;
            false
        }
        Err(other) => return Err(other),
    };
    let at_ms = started.elapsed().as_millis() as u64;
    for event in consumer.take_events() {
        // Commits are many and alike; the rebalances are the story.
        if matches!(event, GroupEvent::Committed(_)) {
            continue;
        }
        run.timeline.push(MemberEvent {
            at_ms,
            member: name.to_string(),
            event: event.to_string(),
        });
    }
    if !committed {
        run.timeline.push(MemberEvent {
            at_ms,
            member: name.to_string(),
            event: format!(
                "commit refused during the rebalance: {} reading(s) to read again",
                polled.records.len()
            ),
        });
        return Ok(());
    }
    for record in &polled.records {
        run.reads.push(MemberRead {
            member: name.to_string(),
            partition: record.partition,
            offset: record.offset,
        });
    }
    Ok(())
}

impl AsTable for GroupRun {
    fn as_table(&self) -> Table {
        let mut table = Table::new(&["at (ms)", "member", "event"]).with_title(format!(
            "Two members of one group, assignor {}",
            self.assignor.name()
        ));
        for e in &self.timeline {
            table.push_row(vec![e.at_ms.to_string(), e.member.clone(), e.event.clone()]);
        }
        let mut per_member: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &self.reads {
            *per_member.entry(r.member.as_str()).or_default() += 1;
        }
        table.footer = Some(format!(
            "shared: {}; after B left, A holds {:?}; read by A {}, by B {}; \
             expected {}, duplicates {}, missing {}",
            self.shared
                .iter()
                .map(|(m, p)| format!("{m} {p:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            self.after_b_left,
            per_member.get("A").copied().unwrap_or(0),
            per_member.get("B").copied().unwrap_or(0),
            self.expected,
            self.duplicates,
            self.missing
        ));
        table
    }
}

crate::shown_as_table!(GroupRun);

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
