//! Offsets: where each partition's log begins and ends, and where each group is.
//!
//! Three numbers describe a partition for a consumer group:
//! - the **low watermark**: the oldest offset still stored (retention deletes older ones);
//! - the **high watermark**: the offset the next message will get;
//! - the group's **committed offset**: the next offset the group will read, stored
//!   by the broker (in `__consumer_offsets`) each time a member commits.
//!
//! **Lag** is how far the group is behind: `high − committed`, or `high − low`
//! when the group has committed nothing yet (it has everything still to read).
//! A group that committed `high` is caught up.
//!
//! A group's committed offsets can be **moved** ([`reset_offsets`]): to the low
//! or high watermark, to an offset, or to the first offset at or after a time
//! (the broker looks it up with a ListOffsets request by timestamp). Its members
//! would overwrite a move with their next commit, so a move is refused while the
//! group has members; a dry run shows the move without making it.
//!
//! Kafka CLI equivalents: `kafka-consumer-groups.sh --describe --group G`
//! (CURRENT-OFFSET, LOG-END-OFFSET, LAG), `kafka-consumer-groups.sh
//! --reset-offsets --to-earliest|--to-latest|--to-offset N|--to-datetime T
//! [--execute]`; kcat: `kcat -Q` for offsets by time.

use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::client::{ConsumerBuilder, KafkaConsumer};
use crate::config::KafkaSettings;
use crate::consume::{PollLimits, StartFrom};
use crate::display::{or_dash, AsTable, Table};
use crate::error::{is_membership_refusal, Error, Result};
use crate::topics;

/// One partition's offsets, as a group sees them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartitionOffsets {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Oldest stored offset.
    pub low: i64,
    /// Next offset to be written.
    pub high: i64,
    /// The group's next offset to read, if it has committed one.
    pub committed: Option<i64>,
    /// Messages the group has yet to read.
    pub lag: i64,
}

/// Offsets of every partition of a topic, for one group or none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OffsetsReport {
    /// The topic.
    pub topic: String,
    /// The group whose committed offsets are shown, if any.
    pub group: Option<String>,
    /// One entry per partition.
    pub partitions: Vec<PartitionOffsets>,
}

impl OffsetsReport {
    /// Total lag over all partitions.
    pub fn total_lag(&self) -> i64 {
        self.partitions.iter().map(|p| p.lag).sum()
    }

    /// The committed offset of one partition.
    pub fn committed(&self, partition: i32) -> Option<i64> {
        self.partitions
            .iter()
            .find(|p| p.partition == partition)
            .and_then(|p| p.committed)
    }

    /// The high watermark of one partition.
    pub fn high(&self, partition: i32) -> Option<i64> {
        self.partitions
            .iter()
            .find(|p| p.partition == partition)
            .map(|p| p.high)
    }
}

/// Lag from the watermarks and the committed offset.
pub fn lag(low: i64, high: i64, committed: Option<i64>) -> i64 {
    match committed {
        Some(committed) => (high - committed.max(low)).max(0),
        None => high - low,
    }
}

/// Low and high watermark of every partition of `topic`: `(partition, low, high)`.
pub fn watermarks(settings: &KafkaSettings, topic: &str) -> Result<Vec<(i32, i64, i64)>> {
    let info = topics::describe_topic(settings, topic)?;
    Ok(info
        .partitions
        .iter()
        .map(|p| (p.partition, p.low.unwrap_or(0), p.high.unwrap_or(0)))
        .collect())
}

/// The group's committed offset for every partition of `topic` (`None` where it
/// has committed nothing). This only reads the offsets (an OffsetFetch request);
/// it does not join the group.
pub fn committed_offsets(
    settings: &KafkaSettings,
    group: &str,
    topic: &str,
) -> Result<Vec<(i32, Option<i64>)>> {
    let info = topics::topic_partitions(settings, topic)?;
    let consumer = group_reader(settings, group)?;
    let mut tpl = TopicPartitionList::new();
    for p in &info.partitions {
        tpl.add_partition(topic, p.partition);
    }
    let committed = consumer
        .inner()
        .committed_offsets(tpl, settings.timeout())
        .map_err(|e| settings.client_error(format!("committed offsets of group {group}"), e))?;
    let mut offsets: Vec<(i32, Option<i64>)> = committed
        .elements_for_topic(topic)
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            };
            (e.partition(), offset)
        })
        .collect();
    offsets.sort_by_key(|(p, _)| *p);
    Ok(offsets)
}

/// Watermarks, committed offsets (when a group is given) and lag for `topic`.
pub fn describe_offsets(
    settings: &KafkaSettings,
    topic: &str,
    group: Option<&str>,
) -> Result<OffsetsReport> {
    let marks = watermarks(settings, topic)?;
    let committed = match group {
        Some(group) => committed_offsets(settings, group, topic)?,
        None => Vec::new(),
    };
    let partitions = marks
        .into_iter()
        .map(|(partition, low, high)| {
            let committed = committed
                .iter()
                .find(|(p, _)| *p == partition)
                .and_then(|(_, c)| *c);
            PartitionOffsets {
                topic: topic.to_string(),
                partition,
                low,
                high,
                committed,
                lag: lag(low, high, committed),
            }
        })
        .collect();
    Ok(OffsetsReport {
        topic: topic.to_string(),
        group: group.map(str::to_string),
        partitions,
    })
}

/// The first offset at or after `timestamp_ms` in each partition (`None` when
/// every message is older), via a ListOffsets request by time.
pub fn offsets_for_time(
    settings: &KafkaSettings,
    topic: &str,
    timestamp_ms: i64,
) -> Result<Vec<(i32, Option<i64>)>> {
    let info = topics::topic_partitions(settings, topic)?;
    let partitions: Vec<i32> = info.partitions.iter().map(|p| p.partition).collect();
    // A consumer without a group (a throwaway group.id): the check reads one
    // message per partition by assignment.
    let mut consumer = ConsumerBuilder::new(settings).build()?;
    checked_offsets_for_time(&mut consumer, topic, &partitions, timestamp_ms)
}

/// [`offsets_for_time`] with `consumer` (one that has read nothing yet),
/// checked: Kafka answers a time after the newest message with "none" (the
/// end), but tansu 0.6 answers offset 0, which would send a reader, or a
/// group's reset, back to the beginning. So each answer is read back: a
/// message older than the time asked for means the engine had none, and the
/// answer becomes `None`.
pub(crate) fn checked_offsets_for_time(
    consumer: &mut KafkaConsumer,
    topic: &str,
    partitions: &[i32],
    timestamp_ms: i64,
) -> Result<Vec<(i32, Option<i64>)>> {
    let settings = consumer.settings().clone();
    let mut tpl = TopicPartitionList::new();
    for partition in partitions {
        tpl.add_partition_offset(topic, *partition, Offset::Offset(timestamp_ms))
            .map_err(|e| Error::kafka("building the request", e))?;
    }
    let found = consumer
        .inner()
        .offsets_for_times(tpl, settings.timeout())
        .map_err(|e| settings.client_error("looking up offsets for a time", e))?;
    let mut offsets = Vec::new();
    for element in found.elements_for_topic(topic) {
        let partition = element.partition();
        let answer = element.offset().to_raw().filter(|o| *o >= 0);
        let checked = match answer {
            Some(offset) => match timestamp_at(consumer, &settings, topic, partition, offset)? {
                Some(found_ms) if found_ms < timestamp_ms => None,
                _ => Some(offset),
            },
            None => None,
        };
        offsets.push((partition, checked));
    }
    offsets.sort_by_key(|(p, _)| *p);
    Ok(offsets)
}

/// The timestamp of the first message at or after `offset` (or after the log
/// start, when `offset` is below it), read with `consumer` (built with
/// `settings`) through the poll loop, assigned to that one position and then
/// given its assignment back; `None` when there is none (the end of the
/// partition) or it has no timestamp. "At or after": the message at `offset` itself may be gone
/// (compaction, a transaction marker).
fn timestamp_at(
    consumer: &mut KafkaConsumer,
    settings: &KafkaSettings,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<Option<i64>> {
    let (low, high) = consumer
        .inner()
        .fetch_watermarks(topic, partition, settings.timeout())
        .map_err(|e| settings.client_error(format!("watermarks of {topic}[{partition}]"), e))?;
    if offset >= high {
        return Ok(None);
    }
    let offset = offset.max(low);
    let previous_topic = consumer.topic().to_string();
    let previous = consumer.inner().assignment().unwrap_or_default();
    consumer.assign(topic, &[(partition, Offset::Offset(offset))])?;
    let limits = PollLimits {
        max: 1,
        timeout: settings.timeout(),
        stop_at_end: true,
    };
    let mut timestamp = None;
    let read = consumer.poll_messages(limits, &mut |message| {
        if message.partition() == partition && message.offset() >= offset {
            timestamp = message.timestamp().to_millis();
        }
    });
    consumer.assign_list(&previous_topic, &previous)?;
    read?;
    Ok(timestamp)
}

/// A group as the broker describes it (a DescribeGroups request).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GroupDescription {
    /// The group id.
    pub group: String,
    /// `Empty`, `Stable`, `PreparingRebalance`, `CompletingRebalance` or `Dead`.
    pub state: String,
    /// The assignor the members agreed on, e.g. `range` or `cooperative-sticky`.
    pub protocol: String,
    /// Its members: (member id, client id, host).
    pub members: Vec<(String, String, String)>,
}

/// Who is in `group` now (ListGroups, then DescribeGroups for the group).
/// A group the broker does not list has no members (state `not listed`). Not
/// every broker describes groups: tansu 0.6 drops the connection, and the
/// error says so after `settings`' timeout.
pub fn describe_group(settings: &KafkaSettings, group: &str) -> Result<GroupDescription> {
    let consumer = topics::metadata_client(settings)?;
    let list = consumer
        .fetch_group_list(Some(group), settings.timeout())
        .map_err(|e| settings.client_error(format!("describing group {group}"), e))?;
    let Some(info) = list.groups().iter().find(|g| g.name() == group) else {
        return Ok(GroupDescription {
            group: group.to_string(),
            state: "not listed".to_string(),
            protocol: String::new(),
            members: Vec::new(),
        });
    };
    Ok(GroupDescription {
        group: group.to_string(),
        state: info.state().to_string(),
        protocol: info.protocol().to_string(),
        members: info
            .members()
            .iter()
            .map(|m| {
                (
                    m.id().to_string(),
                    m.client_id().to_string(),
                    m.client_host().to_string(),
                )
            })
            .collect(),
    })
}

/// One partition's committed offset before and after a reset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OffsetMove {
    /// The partition.
    pub partition: i32,
    /// Oldest stored offset.
    pub low: i64,
    /// Next offset to be written.
    pub high: i64,
    /// The group's committed offset before the reset.
    pub before: Option<i64>,
    /// The committed offset the reset sets.
    pub after: i64,
}

/// What [`reset_offsets`] did (or, in a dry run, would do).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OffsetReset {
    /// The group.
    pub group: String,
    /// The topic.
    pub topic: String,
    /// Where the offsets were moved to.
    pub to: StartFrom,
    /// Whether the new offsets were committed (false for a dry run).
    pub executed: bool,
    /// What the broker said about the group's members before the move.
    pub membership: String,
    /// One entry per partition.
    pub moves: Vec<OffsetMove>,
}

impl OffsetReset {
    /// The new committed offset of one partition.
    pub fn after(&self, partition: i32) -> Option<i64> {
        self.moves
            .iter()
            .find(|m| m.partition == partition)
            .map(|m| m.after)
    }
}

/// Moves `group`'s committed offsets on every partition of `topic` to `to`:
/// `earliest` (low watermark), `latest` (high watermark), an offset (kept within
/// the watermarks, as `kafka-consumer-groups.sh` does) or `@TIMESTAMP_MS` (the
/// first offset at or after that time; the high watermark where every message
/// is older). With `execute` false nothing is committed (a dry run).
///
/// Refused with [`Error::GroupActive`] while the group has members: where the
/// broker describes groups (DescribeGroups), because it lists them; elsewhere
/// where the broker rejects a commit from outside an active group. tansu 0.6
/// does neither: there the move is made, and [`OffsetReset::membership`] says
/// that it could not be verified.
pub fn reset_offsets(
    settings: &KafkaSettings,
    group: &str,
    topic: &str,
    to: StartFrom,
    execute: bool,
) -> Result<OffsetReset> {
    let membership = check_no_members(settings, group)?;
    let marks = watermarks(settings, topic)?;
    let before = committed_offsets(settings, group, topic)?;
    let by_time = match to {
        StartFrom::Timestamp(ms) => offsets_for_time(settings, topic, ms)?,
        _ => Vec::new(),
    };
    let moves: Vec<OffsetMove> = marks
        .into_iter()
        .map(|(partition, low, high)| {
            let after = match to {
                StartFrom::Earliest => low,
                StartFrom::Latest => high,
                StartFrom::Offset(offset) => offset.clamp(low, high),
                StartFrom::Timestamp(_) => by_time
                    .iter()
                    .find(|(p, _)| *p == partition)
                    .and_then(|(_, o)| *o)
                    .unwrap_or(high),
            };
            OffsetMove {
                partition,
                low,
                high,
                before: before
                    .iter()
                    .find(|(p, _)| *p == partition)
                    .and_then(|(_, c)| *c),
                after,
            }
        })
        .collect();
    if execute {
        let mut tpl = TopicPartitionList::new();
        for m in &moves {
            tpl.add_partition_offset(topic, m.partition, Offset::Offset(m.after))
                .map_err(|e| Error::kafka("building the commit", e))?;
        }
        // Committing from outside the group (no join): what the Kafka tool does.
        let consumer = group_reader(settings, group)?;
        consumer
            .inner()
            .commit(&tpl, CommitMode::Sync)
            .map_err(|e| {
                if is_membership_refusal(&e) {
                    Error::GroupActive {
                        group: group.to_string(),
                        detail: format!("the broker refused the commit: {e}"),
                    }
                } else {
                    settings.client_error(format!("committing offsets for {group}"), e)
                }
            })?;
    }
    Ok(OffsetReset {
        group: group.to_string(),
        topic: topic.to_string(),
        to,
        executed: execute,
        membership,
        moves,
    })
}

/// Refuses with [`Error::GroupActive`] when the broker lists members of
/// `group`; otherwise says what it learned: no members, or that it could not tell.
fn check_no_members(settings: &KafkaSettings, group: &str) -> Result<String> {
    // A broker that does not describe groups makes us wait: ask briefly.
    let brief = settings
        .clone()
        .with_timeout(settings.timeout().min(Duration::from_secs(2)));
    let membership = match describe_group(&brief, group) {
        Ok(description) if !description.members.is_empty() => {
            return Err(Error::GroupActive {
                group: group.to_string(),
                detail: format!(
                    "{} member(s), state {}: {}",
                    description.members.len(),
                    description.state,
                    description
                        .members
                        .iter()
                        .map(|(id, client, host)| format!("{client} {id} at {host}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
        }
        Ok(description) => format!("none (group state: {})", description.state),
        // A broker that cannot describe groups may still refuse the commit below
        // (the mock does); and a broker that is away fails the next request with
        // the usual message.
        Err(error) => format!(
            "not verified: the broker did not describe the group within {:?} ({}); \
             Kafka also refuses a commit from outside an active group, tansu 0.6 does not",
            brief.timeout(),
            match error {
                Error::BrokerUnreachable { .. } => "no answer".to_string(),
                other => other.to_string(),
            }
        ),
    };
    Ok(membership)
}

/// A consumer with the group's id that never subscribes: enough to read the
/// group's committed offsets without joining it (no rebalance for its members).
fn group_reader(settings: &KafkaSettings, group: &str) -> Result<KafkaConsumer> {
    ConsumerBuilder::new(settings).group(group).build()
}

impl AsTable for OffsetsReport {
    fn as_table(&self) -> Table {
        let mut table = Table::new(&[
            "group",
            "topic",
            "partition",
            "low",
            "high",
            "committed",
            "lag",
        ])
        .with_title(format!(
            "Offsets of '{}'{}",
            self.topic,
            self.group
                .as_deref()
                .map_or(String::new(), |g| format!(" for group {g}"))
        ));
        for p in &self.partitions {
            table.push_row(vec![
                self.group.clone().unwrap_or_else(|| "-".to_string()),
                p.topic.clone(),
                p.partition.to_string(),
                p.low.to_string(),
                p.high.to_string(),
                or_dash(p.committed),
                p.lag.to_string(),
            ]);
        }
        table.footer = Some(format!("total lag {}", self.total_lag()));
        table
    }
}

crate::shown_as_table!(OffsetsReport);

impl AsTable for OffsetReset {
    fn as_table(&self) -> Table {
        let mut table = Table::new(&[
            "partition",
            "low",
            "high",
            "committed before",
            "committed after",
            "lag after",
        ])
        .with_title(format!(
            "Reset of group {} on '{}' to {}{}",
            self.group,
            self.topic,
            self.to,
            if self.executed { "" } else { " (dry run)" }
        ));
        for m in &self.moves {
            table.push_row(vec![
                m.partition.to_string(),
                m.low.to_string(),
                m.high.to_string(),
                or_dash(m.before),
                m.after.to_string(),
                lag(m.low, m.high, Some(m.after)).to_string(),
            ]);
        }
        table.footer = Some(format!(
            "{}\nactive members: {}",
            if self.executed {
                "committed: the group's next consumer starts at 'committed after'"
            } else {
                "dry run: nothing committed"
            },
            self.membership
        ));
        table
    }
}

crate::shown_as_table!(OffsetReset);

#[cfg(test)]
mod tests {
    use super::lag;

    #[test]
    fn lag_counts_what_the_group_has_left() {
        assert_eq!(lag(0, 10, None), 10);
        assert_eq!(lag(4, 10, None), 6);
        assert_eq!(lag(0, 10, Some(10)), 0);
        assert_eq!(lag(0, 13, Some(10)), 3);
        // A commit below the low watermark (data deleted) still lags only by what exists.
        assert_eq!(lag(5, 13, Some(2)), 8);
    }
}
