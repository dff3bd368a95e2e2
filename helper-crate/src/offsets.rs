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
//! Kafka CLI equivalent: `kafka-consumer-groups.sh --describe --group G`
//! (CURRENT-OFFSET, LOG-END-OFFSET, LAG); kcat: `kcat -Q` for offsets by time.

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::config::KafkaSettings;
use crate::display::{or_dash, AsTable, Table};
use crate::error::{Error, Result};
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
    let info = topics::describe_topic(settings, topic)?;
    let consumer = group_reader(settings, group)?;
    let mut tpl = TopicPartitionList::new();
    for p in &info.partitions {
        tpl.add_partition(topic, p.partition);
    }
    let committed = consumer
        .committed_offsets(tpl, settings.timeout())
        .map_err(|e| {
            Error::from_client(settings, format!("committed offsets of group {group}"), e)
        })?;
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
    let info = topics::describe_topic(settings, topic)?;
    let consumer = topics::metadata_client(settings)?;
    let mut tpl = TopicPartitionList::new();
    for p in &info.partitions {
        tpl.add_partition_offset(topic, p.partition, Offset::Offset(timestamp_ms))
            .map_err(|e| Error::kafka("building the request", e))?;
    }
    let found = consumer
        .offsets_for_times(tpl, settings.timeout())
        .map_err(|e| Error::from_client(settings, "looking up offsets for a time", e))?;
    let mut offsets: Vec<(i32, Option<i64>)> = found
        .elements_for_topic(topic)
        .iter()
        .map(|e| (e.partition(), e.offset().to_raw().filter(|o| *o >= 0)))
        .collect();
    offsets.sort_by_key(|(p, _)| *p);
    Ok(offsets)
}

/// A consumer with the group's id that never subscribes: enough to read the
/// group's committed offsets without joining it (no rebalance for its members).
fn group_reader(settings: &KafkaSettings, group: &str) -> Result<BaseConsumer> {
    settings
        .client_config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("allow.auto.create.topics", "false")
        .create()
        .map_err(|e| Error::from_client(settings, "creating a consumer", e))
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
