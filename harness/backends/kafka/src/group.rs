//! The consumer's rdkafka context: what it has handed over but not committed, and the
//! assignment changes of a group member. On a revocation it commits what was processed of the
//! partitions it gives up before they go, so that the next owner starts after them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use mq_core::assignment::{AssignEvent, AssignmentChange};
use mq_core::clock::now_ns;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance};
use rdkafka::error::KafkaResult;
use rdkafka::{Offset, TopicPartitionList};

/// Shared by the poll loop and the rebalance callbacks (which run inside `poll`, on the same
/// thread: the locks are never contended).
pub struct MemberContext {
    topic: String,
    /// Partition → next offset to commit (last handed over + 1), not yet committed.
    pending: Mutex<BTreeMap<i32, i64>>,
    changes: Mutex<Vec<AssignmentChange>>,
    /// The group has assigned this member its share at least once (possibly nothing).
    joined: AtomicBool,
    /// An asynchronous commit was sent and its result has not come back yet.
    committing: AtomicBool,
}

impl MemberContext {
    pub fn new(topic: &str) -> MemberContext {
        MemberContext {
            topic: topic.to_owned(),
            pending: Mutex::new(BTreeMap::new()),
            changes: Mutex::new(Vec::new()),
            joined: AtomicBool::new(false),
            committing: AtomicBool::new(false),
        }
    }

    /// Notes that an asynchronous commit was sent; [`ConsumerContext::commit_callback`] clears
    /// it when its result is served by `poll`.
    pub fn commit_sent(&self) {
        self.committing.store(true, Ordering::Relaxed);
    }

    /// Whether an asynchronous commit's result is still to come.
    pub fn committing(&self) -> bool {
        self.committing.load(Ordering::Relaxed)
    }

    /// The offsets handed over and not yet committed.
    pub fn pending(&self) -> MutexGuard<'_, BTreeMap<i32, i64>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the group has assigned this member its share yet.
    pub fn joined(&self) -> bool {
        self.joined.load(Ordering::Relaxed)
    }

    /// The changes since the last call.
    pub fn take_changes(&self) -> Vec<AssignmentChange> {
        std::mem::take(&mut *self.changes.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn record(&self, event: AssignEvent, tpl: &TopicPartitionList) {
        let partitions = tpl
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition() as u32)
            .collect::<Vec<u32>>();
        if partitions.is_empty() {
            // An idle member's empty share (or an incremental step that moved nothing).
            return;
        }
        let change = AssignmentChange {
            at_ns: now_ns(),
            event,
            partitions,
        };
        (self.changes.lock().unwrap_or_else(|p| p.into_inner())).push(change);
    }

    /// Commits, synchronously, what was processed of the partitions in `tpl`.
    fn commit_revoked(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let mut commit = TopicPartitionList::new();
        {
            let mut pending = self.pending();
            for e in tpl.elements_for_topic(&self.topic) {
                if let Some(next) = pending.remove(&e.partition()) {
                    let _ = commit.add_partition_offset(
                        &self.topic,
                        e.partition(),
                        Offset::Offset(next),
                    );
                }
            }
        }
        if commit.count() == 0 {
            return;
        }
        if let Err(e) = consumer.commit(&commit, CommitMode::Sync) {
            // The next owner reads them again: duplicates, which the checker counts.
            tracing::warn!(
                "kafka: commit before giving up {} partitions: {e}",
                commit.count()
            );
        }
    }
}

impl ClientContext for MemberContext {}

impl ConsumerContext for MemberContext {
    fn commit_callback(&self, _result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        self.committing.store(false, Ordering::Relaxed);
    }

    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            // The member stops reading them now; the commit is part of the pause.
            self.record(AssignEvent::Revoked, tpl);
            self.commit_revoked(consumer, tpl);
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                self.joined.store(true, Ordering::Relaxed);
                self.record(AssignEvent::Assigned, tpl);
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => tracing::warn!("kafka: rebalance of {}: {e}", self.topic),
        }
    }
}
