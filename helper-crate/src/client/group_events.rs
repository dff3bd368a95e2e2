//! What a consumer's group did, as the consumer saw it.
//!
//! librdkafka calls a consumer's **context** from inside `poll` when the group
//! rebalances (partitions assigned or revoked) and when a commit is answered.
//! [`GroupEvents`] records each call as a [`GroupEvent`], so that a reader (the
//! CLI, a notebook cell) can show what the group did, and so that the poll loop
//! learns which partitions a rebalance took away.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaResult;
use rdkafka::TopicPartitionList;
use serde::Serialize;

use super::partitions_of;

/// A change of group membership or a commit, as the consumer saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum GroupEvent {
    /// Partitions given to this member.
    Assigned(Vec<i32>),
    /// Partitions taken from this member.
    Revoked(Vec<i32>),
    /// Offsets committed: (partition, next offset).
    Committed(Vec<(i32, i64)>),
    /// A rebalance or commit failed.
    Failed(String),
}

impl fmt::Display for GroupEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupEvent::Assigned(p) => write!(f, "assigned partitions {p:?}"),
            GroupEvent::Revoked(p) => write!(f, "revoked partitions {p:?}"),
            GroupEvent::Committed(o) => write!(f, "committed (partition, next offset) {o:?}"),
            GroupEvent::Failed(e) => write!(f, "failed: {e}"),
        }
    }
}

/// The consumer context: librdkafka calls it on rebalances and commits (from
/// inside `poll`), and it records them so the caller can show what the group did.
#[derive(Default)]
pub struct GroupEvents {
    events: Mutex<Vec<GroupEvent>>,
    /// Set on every rebalance, so the poll loop looks at the assignment only
    /// when it changed (not once per message).
    rebalanced: AtomicBool,
    /// Partitions revoked since the poll loop last looked.
    revoked: Mutex<BTreeSet<i32>>,
}

impl GroupEvents {
    fn record(&self, event: GroupEvent) {
        if let Ok(mut events) = self.events.lock() {
            events.push(event);
        }
    }

    pub(crate) fn take_events(&self) -> Vec<GroupEvent> {
        self.events
            .lock()
            .map(|mut events| std::mem::take(&mut *events))
            .unwrap_or_default()
    }

    /// Whether a rebalance happened since the last call, and the partitions it
    /// revoked.
    pub(crate) fn take_rebalance(&self) -> Option<BTreeSet<i32>> {
        if !self.rebalanced.swap(false, Ordering::AcqRel) {
            return None;
        }
        Some(
            self.revoked
                .lock()
                .map(|mut revoked| std::mem::take(&mut *revoked))
                .unwrap_or_default(),
        )
    }
}

impl ClientContext for GroupEvents {}

impl ConsumerContext for GroupEvents {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let (Rebalance::Revoke(tpl), Ok(mut revoked)) = (rebalance, self.revoked.lock()) {
            revoked.extend(partitions_of(tpl));
        }
        self.rebalanced.store(true, Ordering::Release);
        self.record(match rebalance {
            Rebalance::Assign(tpl) => GroupEvent::Assigned(partitions_of(tpl)),
            Rebalance::Revoke(tpl) => GroupEvent::Revoked(partitions_of(tpl)),
            Rebalance::Error(e) => GroupEvent::Failed(format!("rebalance: {e}")),
        });
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        self.record(match result {
            Ok(()) => GroupEvent::Committed(
                offsets
                    .elements()
                    .iter()
                    .filter_map(|e| e.offset().to_raw().map(|o| (e.partition(), o)))
                    .collect(),
            ),
            Err(e) => GroupEvent::Failed(format!("commit: {e}")),
        });
    }
}
