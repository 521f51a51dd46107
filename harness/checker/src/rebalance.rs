//! Rebalance pauses: from the assignment changes group members recorded
//! (`<history>.assign.jsonl`) and the times consumers were killed, how long each partition had
//! no consumer — from a revocation or its member's death to its next assignment.

use std::collections::BTreeMap;

use mq_core::assignment::{AssignEvent, AssignLine};
use serde::{Deserialize, Serialize};

/// Pauses listed at most (the figures cover them all).
pub const MAX_PAUSES: usize = 256;

/// What left a partition without a consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PauseCause {
    /// Its member gave it up in a rebalance.
    Revoked,
    /// Its member was killed (`kill-consumer`); it stays in the group until its session ends.
    Killed,
}

/// One stretch of time a partition had no consumer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pause {
    pub partition: u32,
    /// The consumer (index) that had it.
    pub consumer: u16,
    pub cause: PauseCause,
    /// Seconds since the variant's start (clipped to the load: from its start to the last
    /// delivery).
    pub from_s: f64,
    pub to_s: f64,
}

/// A variant's rebalance pauses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rebalance {
    /// Assignment changes recorded by the members.
    pub changes: usize,
    /// The longest time one partition had no consumer, in ms (0 when none had a pause).
    pub max_pause_ms: f64,
    /// The sum over partitions of the time each had no consumer, in ms.
    pub total_pause_ms: f64,
    /// The pauses in time order, the first [`MAX_PAUSES`].
    pub pauses: Vec<Pause>,
    /// Partitions left without a consumer until the end (a member died and none took over).
    pub unassigned_at_end: Vec<u32>,
}

enum Event {
    Kill,
    Change(AssignEvent, Vec<u32>),
}

/// The pauses of a variant: `lines` from every member's file, `kills` as (time, consumer
/// index), the load's start and the end of its last delivery (`end_ns`), all on the shared
/// clock. None when no member recorded a change (consumers assigned by hand).
pub fn measure(
    lines: Vec<AssignLine>,
    kills: &[(u64, u16)],
    start_ns: u64,
    end_ns: u64,
) -> Option<Rebalance> {
    if lines.is_empty() {
        return None;
    }
    let changes = lines.len();
    let mut events: Vec<(u64, u16, Event)> =
        kills.iter().map(|&(t, c)| (t, c, Event::Kill)).collect();
    events.extend(
        (lines.into_iter()).map(|l| (l.at_ns, l.consumer, Event::Change(l.event, l.partitions))),
    );
    // At one instant, what is taken goes before what is given.
    events.sort_by_key(|(t, _, e)| (*t, matches!(e, Event::Change(AssignEvent::Assigned, _))));
    let mut owner: BTreeMap<u32, u16> = BTreeMap::new();
    let mut gaps: BTreeMap<u32, (u64, u16, PauseCause)> = BTreeMap::new();
    let mut r = Rebalance {
        changes,
        ..Rebalance::default()
    };
    let s = |ns: u64| {
        ns.clamp(start_ns, end_ns.max(start_ns))
            .saturating_sub(start_ns) as f64
            / 1e9
    };
    for (at, c, e) in events {
        let (cause, taken) = match e {
            Event::Change(AssignEvent::Assigned, ps) => {
                for p in ps {
                    owner.insert(p, c);
                    if let Some((from, consumer, cause)) = gaps.remove(&p) {
                        let (from_s, to_s) = (s(from), s(at));
                        if to_s > from_s {
                            r.add(Pause {
                                partition: p,
                                consumer,
                                cause,
                                from_s,
                                to_s,
                            });
                        }
                    }
                }
                continue;
            }
            Event::Change(AssignEvent::Revoked, ps) => (PauseCause::Revoked, ps),
            Event::Kill => {
                let held = owner.iter().filter(|(_, &o)| o == c).map(|(&p, _)| p);
                (PauseCause::Killed, held.collect())
            }
        };
        for p in taken {
            if owner.get(&p) == Some(&c) {
                owner.remove(&p);
                gaps.insert(p, (at, c, cause));
            }
        }
    }
    r.unassigned_at_end = gaps
        .into_iter()
        .filter(|(_, (from, _, _))| *from < end_ns)
        .map(|(p, _)| p)
        .collect();
    r.pauses.sort_by(|a, b| a.from_s.total_cmp(&b.from_s));
    Some(r)
}

impl Rebalance {
    fn add(&mut self, p: Pause) {
        let ms = (p.to_s - p.from_s) * 1e3;
        self.max_pause_ms = self.max_pause_ms.max(ms);
        self.total_pause_ms += ms;
        if self.pauses.len() < MAX_PAUSES {
            self.pauses.push(p);
        }
    }

    /// The stretches when at least one partition had no consumer, merged, in seconds.
    pub fn spans(&self) -> Vec<(f64, f64)> {
        let mut v: Vec<(f64, f64)> = self.pauses.iter().map(|p| (p.from_s, p.to_s)).collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut out: Vec<(f64, f64)> = Vec::new();
        for (a, b) in v {
            match out.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => out.push((a, b)),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn line(at_s: f64, consumer: u16, event: AssignEvent, partitions: &[u32]) -> AssignLine {
        AssignLine {
            at_ns: 100 * S + (at_s * 1e9) as u64,
            consumer,
            event,
            partitions: partitions.to_vec(),
        }
    }

    #[test]
    fn a_killed_member_s_partitions_pause_until_they_are_assigned_again() {
        use AssignEvent::*;
        let lines = vec![
            // Before the load (start at 100 s): not pauses.
            line(-1.0, 0, Assigned, &[0, 1, 2, 3]),
            line(-0.5, 0, Revoked, &[1, 3]),
            line(-0.4, 1, Assigned, &[1, 3]),
            // Eager rebalance of the survivor: 0 and 2 pause 0.5 s; 1 and 3 from the kill.
            line(9.0, 0, Revoked, &[0, 2]),
            line(9.5, 0, Assigned, &[0, 1, 2, 3]),
        ];
        let r = measure(lines, &[(100 * S + 2 * S, 1)], 100 * S, 130 * S).unwrap();
        assert_eq!(r.changes, 5);
        assert_eq!(r.pauses.len(), 4, "{r:?}");
        let killed: Vec<_> = r
            .pauses
            .iter()
            .filter(|p| p.cause == PauseCause::Killed)
            .collect();
        assert_eq!(
            killed.iter().map(|p| p.partition).collect::<Vec<_>>(),
            [1, 3]
        );
        assert!(killed
            .iter()
            .all(|p| p.consumer == 1 && p.from_s == 2.0 && p.to_s == 9.5));
        assert!((r.max_pause_ms - 7500.0).abs() < 1e-6, "{r:?}");
        assert!((r.total_pause_ms - 16_000.0).abs() < 1e-6, "{r:?}");
        assert_eq!(r.spans(), [(2.0, 9.5)]);
        assert!(r.unassigned_at_end.is_empty());
    }

    #[test]
    fn partitions_nobody_takes_over_are_unassigned_at_the_end_and_manual_runs_have_none() {
        use AssignEvent::*;
        let lines = vec![line(-1.0, 0, Assigned, &[0]), line(-1.0, 1, Assigned, &[1])];
        let r = measure(lines, &[(103 * S, 1)], 100 * S, 110 * S).unwrap();
        assert!(r.pauses.is_empty());
        assert_eq!(r.max_pause_ms, 0.0);
        assert_eq!(r.unassigned_at_end, [1]);
        assert_eq!(measure(Vec::new(), &[(103 * S, 1)], 100 * S, 110 * S), None);
    }
}
