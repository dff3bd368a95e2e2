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
//!   partition reads nothing, however many messages wait. If those members
//!   read (the group's committed offsets move), all is well: this one is a
//!   spare. If nothing moves, they are dead ones the broker has not removed
//!   yet (Kafka removes a member that sends no heartbeat for
//!   `session.timeout.ms`; a broker that never removes it freezes the group),
//!   or live ones that stopped polling (a notebook's consumer between cells).
//!
//! [`StallWatch`] keeps, for each partition a consumer holds, since when it has
//! had messages waiting without giving any, and whether the consumer ever held
//! a partition; the consumer asks it when a read ends by timeout.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a partition with messages waiting may yield nothing before it
/// counts as stuck: several fetch rounds (librdkafka fetches again at once
/// while it has no messages, and a broker answers a fetch within
/// `fetch.wait.max.ms`, at most 1 s here; nisshi and tansu take about a second
/// for a full response of about 5 MiB).
pub const STALL_AFTER: Duration = Duration::from_secs(5);

/// What a consumer's poll rounds showed of its partitions.
#[derive(Debug, Default)]
pub struct StallWatch {
    /// Held partitions with messages waiting, since when none came.
    waiting_since: BTreeMap<i32, Instant>,
    /// Whether any partition was held in any round.
    ever_held: bool,
    /// When the last round ended.
    last_round: Option<Instant>,
}

impl StallWatch {
    /// Records a poll round that ended at `now`: the partitions `held`, those
    /// that returned messages (`read`), and whether a partition has messages
    /// past the consumer's position (`behind`). A partition that gave messages,
    /// has none waiting, or is no longer held starts afresh.
    pub fn record(
        &mut self,
        now: Instant,
        held: &[i32],
        read: &[i32],
        behind: impl Fn(i32) -> bool,
    ) {
        self.last_round = Some(now);
        self.ever_held |= !held.is_empty();
        self.waiting_since.retain(|partition, _| {
            held.contains(partition) && !read.contains(partition) && behind(*partition)
        });
        for partition in held {
            if !read.contains(partition) && behind(*partition) {
                self.waiting_since.entry(*partition).or_insert(now);
            }
        }
    }

    /// The partitions whose messages waited, none given, for at least
    /// [`STALL_AFTER`] by the end of the last round; each with how long.
    pub fn stuck(&self) -> Vec<(i32, Duration)> {
        let Some(end) = self.last_round else {
            return Vec::new();
        };
        self.waiting_since
            .iter()
            .map(|(partition, since)| (*partition, end.saturating_duration_since(*since)))
            .filter(|(_, waited)| *waited >= STALL_AFTER)
            .collect()
    }

    /// Whether any round found a partition held.
    pub fn ever_held(&self) -> bool {
        self.ever_held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_is_stuck_after_stall_after_with_messages_waiting_and_none_given() {
        let start = Instant::now();
        let later = start + STALL_AFTER;
        let mut watch = StallWatch::default();
        assert!(!watch.ever_held());
        // 0 and 1 have messages waiting; 2 is at its end.
        watch.record(start, &[0, 1, 2], &[], |p| p != 2);
        watch.record(later, &[0, 1, 2], &[1], |p| p != 2);
        // 0: waiting all along; 1: just gave some; 2: nothing to give.
        assert_eq!(watch.stuck(), vec![(0, STALL_AFTER)]);
        assert!(watch.ever_held());
        // New messages on 2 in the last round: not yet stuck.
        watch.record(later, &[0, 1, 2], &[], |_| true);
        assert_eq!(watch.stuck(), vec![(0, STALL_AFTER)]);
        // Given back and given again: its clock starts afresh.
        watch.record(later, &[1, 2], &[], |_| true);
        watch.record(later + STALL_AFTER, &[0, 1, 2], &[], |_| true);
        let stuck: Vec<i32> = watch.stuck().into_iter().map(|(p, _)| p).collect();
        assert_eq!(stuck, vec![1, 2]);
    }
}
