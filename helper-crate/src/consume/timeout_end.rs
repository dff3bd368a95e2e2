//! How a read that ended by timeout is judged: a held partition that gave
//! nothing though messages wait (stuck), or a group member that was given no
//! partition while its group's messages wait unread (not assigned). Either is
//! an error, so a read never ends quietly with an empty table.

use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::topic_partition_list::TopicPartitionList;

use super::consumer::{offset_in, WeatherConsumer};
use super::options::StartFrom;
use super::stall::StallWatch;
use crate::client::ConsumerBuilder;
use crate::error::{Error, Result};

impl WeatherConsumer {
    /// The group's committed offsets now, when this group member holds no
    /// partition yet (asked with a 0.5 s limit; `None` if no answer): to tell, at
    /// the end, whether the members that hold them make progress.
    pub(super) fn committed_if_unassigned(&self) -> Option<Vec<(i32, Option<i64>)>> {
        if self.options.group.is_none() || !self.options.subscribes() {
            return None;
        }
        if !self.assignment().is_empty() {
            return None;
        }
        // A group waiting for a frozen member may not answer: then the end
        // of the read cannot tell whether the offsets moved.
        self.committed_offsets(Duration::from_millis(500)).ok()
    }

    /// The group's committed offset of every partition read (next to read),
    /// asked of the broker by a client of its own, outside the group. This
    /// member's own requests to the group's coordinator wait behind its
    /// JoinGroup (a broker answers one connection's requests in order), and
    /// nisshi holds every join for half the session timeout.
    pub(super) fn committed_offsets(&self, timeout: Duration) -> Result<Vec<(i32, Option<i64>)>> {
        let settings = self.client.settings();
        let Some(group) = &self.options.group else {
            return Ok(self.partitions.iter().map(|&p| (p, None)).collect());
        };
        let outsider = match self.offsets_reader.get() {
            Some(reader) => reader,
            None => {
                let reader = ConsumerBuilder::new(settings).group(group).build()?;
                self.offsets_reader.get_or_init(|| reader)
            }
        };
        let mut tpl = TopicPartitionList::new();
        for partition in &self.partitions {
            tpl.add_partition(&self.options.topic, *partition);
        }
        let committed = outsider
            .inner()
            .committed_offsets(tpl, timeout)
            .map_err(|e| settings.client_error("reading committed offsets", e))?;
        Ok(self
            .partitions
            .iter()
            .map(|&partition| {
                let offset = offset_in(&committed, &self.options.topic, partition);
                (partition, offset)
            })
            .collect())
    }

    /// After a read that ended by timeout: fails if a held partition had
    /// messages waiting past this consumer's position but gave none for
    /// [`STALL_AFTER`] ([`Error::StuckPartition`]), or if this group member
    /// waited at least `unassigned_after`, never held a partition, and its
    /// group has unread messages that nobody reads: the group's committed
    /// offsets did not move since `committed_at_start` ([`Error::NotAssigned`]).
    pub(super) fn check_timeout_end(
        &self,
        stall: &StallWatch,
        waited: Duration,
        unassigned_after: Duration,
        committed_at_start: Option<Vec<(i32, Option<i64>)>>,
    ) -> Result<()> {
        if let Some(&(partition, idle)) = stall.stuck().first() {
            let settings = self.client.settings();
            let positions = self
                .client
                .inner()
                .position()
                .map_err(|e| settings.client_error("reading the consumer's position", e))?;
            if let Some(offset) = offset_in(&positions, &self.options.topic, partition) {
                let high = self
                    .client
                    .cached_high_watermark(partition)
                    .unwrap_or(offset);
                return Err(Error::StuckPartition {
                    topic: self.options.topic.clone(),
                    partition,
                    offset,
                    high,
                    idle,
                });
            }
        }
        let Some(group) = &self.options.group else {
            return Ok(());
        };
        if stall.ever_held()
            || !self.assignment().is_empty()
            || !self.options.subscribes()
            || waited < unassigned_after
        {
            return Ok(());
        }
        // Members that read commit: then this one is a spare, not a victim.
        let committed_now = self.committed_offsets(self.client.settings().timeout())?;
        if committed_at_start.is_some_and(|start| start != committed_now) {
            return Ok(());
        }
        let unread = self.unread_for_group()?;
        if unread == 0 {
            return Ok(());
        }
        Err(Error::NotAssigned {
            topic: self.options.topic.clone(),
            group: group.clone(),
            partitions: self.partitions.len(),
            unread,
            waited,
        })
    }

    /// Messages past the group's committed offsets in every partition of the
    /// topic; a partition without a commit counts whole when the group starts
    /// at the earliest, and not at all when it starts at the latest.
    fn unread_for_group(&self) -> Result<i64> {
        let mut unread = 0;
        for at in self.positions()? {
            let start = match at.committed {
                Some(committed) => committed,
                None if self.options.from == StartFrom::Earliest => {
                    self.low_watermark(at.partition)?
                }
                None => at.high,
            };
            unread += (at.high - start).max(0);
        }
        Ok(unread)
    }

    /// The partition's low watermark (the oldest offset still stored), asked of the broker.
    fn low_watermark(&self, partition: i32) -> Result<i64> {
        let settings = self.client.settings();
        self.client
            .inner()
            .fetch_watermarks(&self.options.topic, partition, settings.timeout())
            .map(|(low, _)| low)
            .map_err(|e| settings.client_error("reading watermarks", e))
    }
}
