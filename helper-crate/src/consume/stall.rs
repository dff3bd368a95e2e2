//! Reads that end by timeout with messages left: a stuck partition, or a
//! member the group gave nothing.
//!
//! A timeout is a normal end for a consumer that has read everything: nothing
//! more came. It is not normal when messages are waiting that this consumer
//! cannot get, and a read that says only "stopped: timeout" hides two faults:
//!
//! - **A stuck partition.** The consumer holds the partition, the partition has
//!   messages past the consumer's position, and none came for seconds. The
//!   message at that position is one the client cannot fetch: usually larger
//!   than what the client asks for (`fetch.max.bytes`,
//!   `max.partition.fetch.bytes`, `receive.message.max.bytes`) on a broker that
//!   will not send it whole anyway, or larger than the broker serves
//!   (`message.max.bytes`). Every later run stops at the same offset.
//! - **A member with no partitions.** A group gives each partition to one
//!   member. A consumer that joined a group whose other members hold every
//!   partition reads nothing, however many messages wait. Those members may be
//!   alive, or dead ones the broker has not removed yet: Kafka removes a member
//!   that sends no heartbeat for `session.timeout.ms` (45 s by default); a
//!   broker that never removes it freezes the group.
//!
//! [`StallWatch`] keeps, for each partition a consumer holds, when it last made
//! progress; the consumer asks it which partitions stalled when a read ends by
//! timeout.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a partition with messages left may yield nothing before it counts
/// as stuck: many fetch rounds (librdkafka fetches every few milliseconds
/// while it has no messages, and waits at most `fetch.wait.max.ms`, 500 ms).
/// Also the shortest read after which a member without partitions is an
/// error: a first join takes 2-3 s on tansu.
pub const STALL_AFTER: Duration = Duration::from_secs(5);

/// When each held partition last made progress (or was first seen held).
#[derive(Debug, Default)]
pub struct StallWatch {
    progress: BTreeMap<i32, Instant>,
}

impl StallWatch {
    /// Records a poll round at `now`: partitions `held` now, and those that
    /// returned messages (`read`). A partition no longer held is forgotten, so
    /// one given back later starts afresh.
    pub fn record(&mut self, now: Instant, held: &[i32], read: impl Iterator<Item = i32>) {
        self.progress
            .retain(|partition, _| held.contains(partition));
        for partition in held {
            self.progress.entry(*partition).or_insert(now);
        }
        for partition in read {
            if held.contains(&partition) {
                self.progress.insert(partition, now);
            }
        }
    }

    /// The held partitions without progress for at least [`STALL_AFTER`] at
    /// `now`, each with how long.
    pub fn idle(&self, now: Instant) -> Vec<(i32, Duration)> {
        self.progress
            .iter()
            .map(|(partition, since)| (*partition, now.saturating_duration_since(*since)))
            .filter(|(_, idle)| *idle >= STALL_AFTER)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_is_idle_after_stall_after_without_messages_while_held() {
        let start = Instant::now();
        let mut watch = StallWatch::default();
        watch.record(start, &[0, 1], [0].into_iter());
        let later = start + STALL_AFTER;
        watch.record(later, &[0, 1, 2], [1].into_iter());
        // 0: nothing since the start; 1: just read; 2: just given.
        assert_eq!(watch.idle(later), vec![(0, STALL_AFTER)]);
        let partitions = |idle: Vec<(i32, Duration)>| -> Vec<i32> {
            idle.into_iter().map(|(partition, _)| partition).collect()
        };
        assert_eq!(partitions(watch.idle(later + STALL_AFTER)), vec![0, 1, 2]);
        // Given back and given again: its clock starts afresh.
        watch.record(later + STALL_AFTER, &[1, 2], std::iter::empty());
        watch.record(later + STALL_AFTER, &[0, 1, 2], std::iter::empty());
        assert_eq!(partitions(watch.idle(later + STALL_AFTER)), vec![1, 2]);
        // Messages of a partition not held (revoked meanwhile) are no progress.
        watch.record(later + STALL_AFTER, &[1], [2].into_iter());
        assert_eq!(partitions(watch.idle(later + STALL_AFTER)), vec![1]);
    }
}
