//! The intended send times of the sends still waiting for an outcome, by seq.
//!
//! Seqs are sent in increasing order and mostly confirmed in order, so a ring starting at the
//! oldest unconfirmed seq does what a hash map would, in O(1) without hashing (the map was the
//! producer worker's largest cost of its own). A send that never gets an outcome (in flight when
//! a connection was lost) would hold the ring's front while everything after it is confirmed:
//! once the ring holds [`MAX_RING`] slots, its oldest entries move to a map, so memory stays
//! bounded by what is really pending.

use std::collections::{HashMap, VecDeque};

/// A slot whose send has its outcome (or was never pending).
const DONE: u64 = u64::MAX;
/// Slots the ring may hold (8 MiB) before its oldest entries move to the map.
const MAX_RING: usize = 1 << 20;

#[derive(Default)]
pub(super) struct Pending {
    /// The seq of `ring[0]`.
    base: u64,
    /// Intended send time per seq from `base` on, [`DONE`] when not pending.
    ring: VecDeque<u64>,
    /// How many slots of the ring are pending.
    in_ring: usize,
    /// Pending sends pushed out of the ring (or inserted out of order).
    stragglers: HashMap<u64, u64>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.in_ring == 0 && self.stragglers.is_empty()
    }

    /// `seq` was sent at `intended_ns` and waits for its outcome.
    pub fn insert(&mut self, seq: u64, intended_ns: u64) {
        if self.ring.is_empty() {
            self.base = seq;
        }
        let end = self.base + self.ring.len() as u64;
        if seq < end || intended_ns == DONE {
            self.stragglers.insert(seq, intended_ns);
            return;
        }
        for _ in end..seq {
            self.ring.push_back(DONE);
        }
        self.ring.push_back(intended_ns);
        self.in_ring += 1;
        if self.ring.len() > MAX_RING {
            self.spill(MAX_RING / 2);
        }
    }

    /// The intended time of `seq`, which is no longer pending; None for a seq that was not
    /// (a second outcome for one send).
    pub fn remove(&mut self, seq: u64) -> Option<u64> {
        let slot = seq
            .checked_sub(self.base)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.ring.get_mut(i));
        match slot {
            Some(t) if *t != DONE => {
                let t = std::mem::replace(t, DONE);
                self.in_ring -= 1;
                self.trim();
                Some(t)
            }
            _ if self.stragglers.is_empty() => None,
            _ => self.stragglers.remove(&seq),
        }
    }

    /// Drops the done slots at the ring's front.
    fn trim(&mut self) {
        while self.ring.front() == Some(&DONE) {
            self.ring.pop_front();
            self.base += 1;
        }
    }

    /// Moves the oldest slots to the map until the ring holds at most `keep`.
    fn spill(&mut self, keep: usize) {
        while self.ring.len() > keep {
            let Some(t) = self.ring.pop_front() else {
                break;
            };
            if t != DONE {
                self.in_ring -= 1;
                self.stragglers.insert(self.base, t);
            }
            self.base += 1;
        }
        self.trim();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_outcomes_gaps_and_second_outcomes() {
        let mut p = Pending::default();
        for seq in [0, 1, 2, 5, 6] {
            p.insert(seq, 100 + seq);
        }
        assert_eq!(p.remove(2), Some(102));
        assert_eq!(p.remove(2), None, "a second outcome");
        assert_eq!(
            p.remove(3),
            None,
            "never pending (its outcome came during its send)"
        );
        assert_eq!(p.remove(0), Some(100));
        assert_eq!(p.remove(1), Some(101));
        assert_eq!(p.remove(6), Some(106));
        assert!(!p.is_empty());
        assert_eq!(p.remove(5), Some(105));
        assert!(p.is_empty());
        assert_eq!(p.remove(99), None);
        p.insert(7, 107);
        assert_eq!(p.remove(7), Some(107));
        assert!(p.is_empty());
    }

    #[test]
    fn a_send_that_never_gets_an_outcome_does_not_make_the_ring_grow_without_bound() {
        let mut p = Pending::default();
        p.insert(0, 1); // stuck forever
        for seq in 1..(3 * MAX_RING as u64) {
            p.insert(seq, seq);
            assert_eq!(p.remove(seq), Some(seq));
        }
        assert!(p.ring.len() <= MAX_RING, "{}", p.ring.len());
        assert_eq!(p.remove(0), Some(1));
        assert!(p.is_empty());
    }

    #[test]
    fn many_pending_spill_to_the_map_and_all_come_back() {
        let mut p = Pending::default();
        let n = MAX_RING as u64 + 10;
        for seq in 0..n {
            p.insert(seq, seq + 1);
        }
        for seq in (0..n).rev() {
            assert_eq!(p.remove(seq), Some(seq + 1), "seq {seq}");
        }
        assert!(p.is_empty());
    }
}
