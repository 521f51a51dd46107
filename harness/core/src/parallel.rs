//! Parallel processing inside one consumer (`processing_threads`, `dispatch`): how deliveries
//! are spread over the threads, the token a backend hands with each delivery so it can be
//! acknowledged once its processing has finished, and the commit rule of the offset-based
//! backends when processing finishes out of order.
//!
//! The commit rule: a partition's committable offset is its **lowest unfinished** offset (or, when
//! nothing is unfinished, one past the highest delivered). [`InFlight`] keeps, per partition, the
//! delivered offsets in delivery order (increasing) with a done flag each: finishing one marks it
//! (binary search), and the finished prefix is popped. The front of that queue is the lowest
//! unfinished offset. Nothing is allocated per message once the queues have grown to the number in
//! flight.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::ids::Partition;

/// Most processing threads one consumer may run.
pub const MAX_PROCESSING_THREADS: u32 = 256;

/// Most deliveries a backend hands over in one `poll` when the sink processes them later: the
/// worker gives finished ones back (to be acked or committed) between polls, so a long batch
/// would leave processed messages unacknowledged for as long as it takes.
pub const LATER_BATCH: usize = 64;

/// Which processing thread a delivered message goes to (with `processing_threads` > 1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dispatch {
    /// Thread `hash(key) % processing_threads`: each key is processed by one thread, so per-key
    /// order holds. The default: the harness expects order to hold unless asked otherwise.
    #[default]
    ByKey,
    /// Any free thread (one shared queue): fastest, but a partition's messages finish out of
    /// order, and so do a key's.
    Any,
}

impl Dispatch {
    pub fn name(self) -> &'static str {
        match self {
            Dispatch::ByKey => "by-key",
            Dispatch::Any => "any",
        }
    }

    /// The thread of `key` among `threads` (by-key dispatch): a multiplicative (Fibonacci)
    /// hash whose top bits pick the thread, so that keys which are multiples of `threads` (the
    /// keys of one partition) do not all land on one thread.
    pub fn thread_of(key: u32, threads: usize) -> usize {
        let h = (key as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (((h >> 32) * threads as u64) >> 32) as usize
    }
}

/// Identifies one delivery to its consumer: the partition and the offset (Kafka, the log) or
/// the delivery tag (RabbitMQ; `partition` is then the queue's index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token {
    pub partition: Partition,
    pub offset: u64,
}

/// What a [`crate::DeliverySink`] did with a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processed {
    /// Processing has finished: the consumer may acknowledge it now.
    Now,
    /// It is being processed; the worker calls [`crate::Consumer::processed`] with its token
    /// once it has finished. Until then it must not be acknowledged or committed past.
    Later,
}

/// One partition's delivered offsets in delivery order, each with whether it has finished.
#[derive(Debug, Default)]
struct Partial {
    partition: u32,
    queue: VecDeque<(u64, bool)>,
    /// One past the highest offset delivered.
    next: u64,
    /// Whether the committable offset moved since [`InFlight::committable`] last said it.
    moved: bool,
}

/// Per partition, the offsets delivered but not yet processed: the commit rule of the module
/// doc.
#[derive(Debug, Default)]
pub struct InFlight {
    parts: Vec<Partial>,
}

impl InFlight {
    fn part(&mut self, partition: u32) -> &mut Partial {
        let i = match self.parts.iter().position(|p| p.partition == partition) {
            Some(i) => i,
            None => {
                self.parts.push(Partial {
                    partition,
                    ..Partial::default()
                });
                self.parts.len() - 1
            }
        };
        &mut self.parts[i]
    }

    /// `offset` of `partition` was handed over for processing. An offset at or below one
    /// already delivered means the consumer went back (a reconnect resuming from the committed
    /// offset): what was delivered from there on is forgotten, as it is being delivered again.
    pub fn delivered(&mut self, partition: u32, offset: u64) {
        let p = self.part(partition);
        if offset < p.next {
            let keep = p.queue.partition_point(|&(o, _)| o < offset);
            p.queue.truncate(keep);
        }
        p.queue.push_back((offset, false));
        p.next = offset + 1;
    }

    /// `offset` of `partition` has been processed. An offset not in flight (forgotten by a
    /// going back) is ignored.
    pub fn finished(&mut self, partition: u32, offset: u64) {
        let p = self.part(partition);
        let i = p.queue.partition_point(|&(o, _)| o < offset);
        if let Some(e) = p.queue.get_mut(i).filter(|e| e.0 == offset) {
            e.1 = true;
        }
        let mut popped = false;
        while p.queue.front().is_some_and(|e| e.1) {
            p.queue.pop_front();
            popped = true;
        }
        p.moved |= popped;
    }

    /// The offset a commit of `partition` may name (the next one to read after a restart): its
    /// lowest unfinished offset, or one past the highest delivered when all have finished.
    /// `None` when nothing was delivered.
    pub fn committable_of(&self, partition: u32) -> Option<u64> {
        let p = self.parts.iter().find(|p| p.partition == partition)?;
        Some(p.queue.front().map_or(p.next, |e| e.0))
    }

    /// The partitions whose committable offset moved since the last call, with that offset.
    pub fn committable(&mut self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.parts.iter_mut().filter(|p| p.moved).map(|p| {
            p.moved = false;
            (p.partition, p.queue.front().map_or(p.next, |e| e.0))
        })
    }

    /// Offsets delivered and not yet processed, over all partitions.
    pub fn unfinished(&self) -> usize {
        self.parts
            .iter()
            .map(|p| p.queue.iter().filter(|e| !e.1).count())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committable_offset_is_the_lowest_unfinished_one() {
        let mut f = InFlight::default();
        assert_eq!(f.committable_of(0), None);
        for o in 10..15 {
            f.delivered(0, o);
        }
        assert_eq!(f.committable_of(0), Some(10));
        // 12, 14 and 11 finish before 10: nothing may be committed past 10
        for o in [12, 14, 11] {
            f.finished(0, o);
            assert_eq!(f.committable_of(0), Some(10), "after {o}");
        }
        assert_eq!(f.committable().count(), 0, "nothing moved");
        f.finished(0, 10);
        // 10, 11, 12 done; 13 is the lowest unfinished
        assert_eq!(f.committable_of(0), Some(13));
        assert_eq!(f.committable().collect::<Vec<_>>(), vec![(0, 13)]);
        f.finished(0, 13);
        assert_eq!(f.committable_of(0), Some(15), "all done: one past the last");
        assert_eq!(f.unfinished(), 0);
    }

    #[test]
    fn partitions_are_committed_independently() {
        let mut f = InFlight::default();
        f.delivered(0, 0);
        f.delivered(1, 100);
        f.delivered(0, 1);
        f.delivered(1, 101);
        f.finished(1, 100);
        f.finished(0, 1);
        assert_eq!(f.committable_of(0), Some(0));
        assert_eq!(f.committable_of(1), Some(101));
        assert_eq!(f.committable().collect::<Vec<_>>(), vec![(1, 101)]);
        assert_eq!(f.unfinished(), 2);
    }

    #[test]
    fn going_back_forgets_what_is_delivered_again() {
        let mut f = InFlight::default();
        for o in 0..5 {
            f.delivered(0, o);
        }
        f.finished(0, 0);
        // a reconnect resumes from the committed offset 1
        f.delivered(0, 1);
        assert_eq!(f.committable_of(0), Some(1));
        // the old 3 finishing is ignored (not in flight any more), the new 1 counts
        f.finished(0, 3);
        assert_eq!(f.committable_of(0), Some(1));
        f.finished(0, 1);
        assert_eq!(f.committable_of(0), Some(2));
    }

    #[test]
    fn keys_spread_over_threads() {
        let mut hits = [0u32; 4];
        for k in 0..16 {
            hits[Dispatch::thread_of(k * 4, 4)] += 1;
        }
        assert!(hits.iter().all(|&h| h >= 2), "{hits:?}");
        for k in 0..1000 {
            assert!(Dispatch::thread_of(k, 3) < 3);
        }
        assert_eq!(Dispatch::thread_of(7, 1), 0);
    }
}
