//! Consumer groups: membership, generations and the range assignment of a topic's partitions
//! (requests 7-9 of [`crate::protocol`]).
//!
//! Kept simple: the state is in memory only (a restarted server forgets its groups; members
//! find out at their next heartbeat and join again), and a silent member is removed lazily, by
//! the next join, heartbeat or leave of its group (its live members heartbeat, so that is
//! within a heartbeat interval of its session's end). Every change of membership starts a new
//! generation and re-splits the partitions with [`range_assign`]; each member learns of it at
//! its next heartbeat ("rebalance needed") and joins again for its new share. A join is given
//! only the part of its share no other member still holds (from that member's last join): the
//! old owner gives a partition up when it joins again (having committed what it processed),
//! and the new owner, still short of its share, is told to rebalance at its next heartbeat and
//! takes it then. So a partition has one reader at a time, and a handover takes up to two
//! heartbeat intervals.
//!
//! Bounded: [`MAX_GROUPS`] groups with members, [`MAX_MEMBERS`] members a group, ids of
//! [`MAX_GROUP_ID_LEN`] bytes, sessions of [`MIN_SESSION_MS`]..=[`MAX_SESSION_MS`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::protocol::{ErrorCode, Response, MAX_GROUP_ID_LEN, MAX_SESSION_MS, MIN_SESSION_MS};

/// Most groups with members at once.
pub const MAX_GROUPS: usize = 1024;
/// Most members of one group.
pub const MAX_MEMBERS: usize = 1024;

/// Partitions `0..partitions` split among `members` (sorted by the caller): member i gets a
/// contiguous range, the first `partitions % members` one partition more. Pure.
pub fn range_assign(members: usize, partitions: u32) -> Vec<Vec<u32>> {
    if members == 0 {
        return Vec::new();
    }
    let (each, extra) = (partitions as usize / members, partitions as usize % members);
    let mut next = 0u32;
    (0..members)
        .map(|i| {
            let n = (each + usize::from(i < extra)) as u32;
            let range = (next..next + n).collect();
            next += n;
            range
        })
        .collect()
}

struct Member {
    session: Duration,
    last_seen: Instant,
    /// The partitions it was given at its last join.
    held: Vec<u32>,
}

struct Group {
    topic: String,
    /// The topic's partition count.
    partitions: u32,
    generation: u32,
    /// By member id: sorted, as [`range_assign`] wants.
    members: BTreeMap<String, Member>,
}

impl Group {
    /// Removes the members silent past their session; true when any was.
    fn expire(&mut self, now: Instant) -> bool {
        let before = self.members.len();
        (self.members).retain(|_, m| now.duration_since(m.last_seen) <= m.session);
        let changed = self.members.len() != before;
        if changed {
            self.generation = self.generation.wrapping_add(1);
        }
        changed
    }

    fn share_of(&self, member: &str) -> Vec<u32> {
        let shares = range_assign(self.members.len(), self.partitions);
        (self.members.keys().zip(shares))
            .find(|(id, _)| id.as_str() == member)
            .map(|(_, s)| s)
            .unwrap_or_default()
    }

    /// What `member` may read now: its share, less what other members still hold (they give
    /// it up at their next join), so a partition never has two readers.
    fn grant(&mut self, member: &str) -> Vec<u32> {
        let taken: Vec<u32> = (self.members.iter())
            .filter(|(id, _)| id.as_str() != member)
            .flat_map(|(_, m)| m.held.iter().copied())
            .collect();
        let mut share = self.share_of(member);
        share.retain(|p| !taken.contains(p));
        if let Some(m) = self.members.get_mut(member) {
            m.held = share.clone();
        }
        share
    }
}

/// Every group of a server.
#[derive(Default)]
pub struct Groups {
    groups: Mutex<HashMap<String, Group>>,
}

fn invalid(message: String) -> Response {
    Response::Error {
        code: ErrorCode::InvalidArgument,
        message,
    }
}

fn check_id(what: &str, id: &str) -> Result<(), Response> {
    if id.is_empty() || id.len() > MAX_GROUP_ID_LEN {
        return Err(invalid(format!(
            "{what} id of {} bytes: valid is 1..={MAX_GROUP_ID_LEN}",
            id.len()
        )));
    }
    Ok(())
}

impl Groups {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Group>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `member` joins `group` reading `topic` of `partitions` partitions.
    pub fn join(
        &self,
        group: &str,
        topic: &str,
        member: &str,
        session_ms: u32,
        partitions: u32,
    ) -> Response {
        if let Err(e) = check_id("group", group).and_then(|()| check_id("member", member)) {
            return e;
        }
        if !(MIN_SESSION_MS..=MAX_SESSION_MS).contains(&session_ms) {
            return invalid(format!(
                "session timeout {session_ms} ms: valid is {MIN_SESSION_MS}..={MAX_SESSION_MS}"
            ));
        }
        let now = Instant::now();
        let mut groups = self.lock();
        if !groups.contains_key(group) && groups.len() >= MAX_GROUPS {
            groups.retain(|_, g| {
                g.expire(now);
                !g.members.is_empty()
            });
            if groups.len() >= MAX_GROUPS {
                return invalid(format!("the server holds {MAX_GROUPS} groups already"));
            }
        }
        let g = groups.entry(group.to_owned()).or_insert_with(|| Group {
            topic: topic.to_owned(),
            partitions,
            generation: 0,
            members: BTreeMap::new(),
        });
        g.expire(now);
        if g.members.is_empty() {
            g.topic = topic.to_owned();
            g.partitions = partitions;
        } else if g.topic != topic {
            return invalid(format!(
                "group {group} reads topic {}, not {topic}",
                g.topic
            ));
        }
        let session = Duration::from_millis(u64::from(session_ms));
        if let Some(m) = g.members.get_mut(member) {
            m.session = session;
            m.last_seen = now;
        } else {
            if g.members.len() >= MAX_MEMBERS {
                return invalid(format!("group {group} has {MAX_MEMBERS} members already"));
            }
            let m = Member {
                session,
                last_seen: now,
                held: Vec::new(),
            };
            g.members.insert(member.to_owned(), m);
            g.generation = g.generation.wrapping_add(1);
        }
        Response::Joined {
            generation: g.generation,
            partitions: g.grant(member),
        }
    }

    /// `member` of `group` is alive in `generation`: "rebalance needed" when the generation
    /// moved on, the member is no longer in the group, or part of its share was still held by
    /// another member at its last join (and may be free now).
    pub fn heartbeat(&self, group: &str, member: &str, generation: u32) -> Response {
        let now = Instant::now();
        let mut groups = self.lock();
        let Some(g) = groups.get_mut(group) else {
            return Response::Heartbeat { rebalance: true };
        };
        g.expire(now);
        let share = g.share_of(member);
        let rebalance = match g.members.get_mut(member) {
            Some(m) => {
                m.last_seen = now;
                g.generation != generation || m.held != share
            }
            None => true,
        };
        if g.members.is_empty() {
            groups.remove(group);
        }
        Response::Heartbeat { rebalance }
    }

    /// `member` leaves `group` (a member not in it is fine: it has left already).
    pub fn leave(&self, group: &str, member: &str) -> Response {
        let now = Instant::now();
        let mut groups = self.lock();
        if let Some(g) = groups.get_mut(group) {
            g.expire(now);
            if g.members.remove(member).is_some() {
                g.generation = g.generation.wrapping_add(1);
            }
            if g.members.is_empty() {
                groups.remove(group);
            }
        }
        Response::Left
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_assign_gives_contiguous_even_ranges() {
        assert_eq!(range_assign(2, 4), vec![vec![0, 1], vec![2, 3]]);
        assert_eq!(range_assign(3, 4), vec![vec![0, 1], vec![2], vec![3]]);
        assert_eq!(range_assign(1, 3), vec![vec![0, 1, 2]]);
        assert_eq!(range_assign(3, 1), vec![vec![0], vec![], vec![]]);
        assert!(range_assign(0, 4).is_empty());
        for (m, p) in [(5, 17), (7, 3), (1, 0)] {
            let all: Vec<u32> = range_assign(m, p).concat();
            assert_eq!(all, (0..p).collect::<Vec<_>>());
        }
    }

    fn joined(r: Response) -> (u32, Vec<u32>) {
        match r {
            Response::Joined {
                generation,
                partitions,
            } => (generation, partitions),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn joins_and_leaves_move_the_generation_and_the_shares() {
        let g = Groups::default();
        let (g1, a) = joined(g.join("g", "t", "a", 1000, 4));
        assert_eq!(a, vec![0, 1, 2, 3]);
        // b's share is [2, 3], which a still holds: b gets none of it yet.
        let (g2, b) = joined(g.join("g", "t", "b", 1000, 4));
        assert_eq!((b, g2), (vec![], g1 + 1));
        let beat = |m, gen| g.heartbeat("g", m, gen);
        assert_eq!(beat("b", g2), Response::Heartbeat { rebalance: true });
        assert_eq!(joined(g.join("g", "t", "b", 1000, 4)), (g2, vec![]));
        // a learns of b, joins again and gives [2, 3] up; then b takes them.
        assert_eq!(beat("a", g1), Response::Heartbeat { rebalance: true });
        assert_eq!(joined(g.join("g", "t", "a", 1000, 4)), (g2, vec![0, 1]));
        assert_eq!(beat("a", g2), Response::Heartbeat { rebalance: false });
        assert_eq!(beat("b", g2), Response::Heartbeat { rebalance: true });
        assert_eq!(joined(g.join("g", "t", "b", 1000, 4)), (g2, vec![2, 3]));
        assert_eq!(beat("b", g2), Response::Heartbeat { rebalance: false });
        assert_eq!(g.leave("g", "b"), Response::Left);
        assert_eq!(
            g.heartbeat("g", "a", g2),
            Response::Heartbeat { rebalance: true }
        );
        assert_eq!(joined(g.join("g", "t", "a", 1000, 4)).1, vec![0, 1, 2, 3]);
    }

    #[test]
    fn members_and_groups_are_bounded() {
        let g = Groups::default();
        for i in 0..MAX_MEMBERS {
            joined(g.join("g", "t", &format!("m{i}"), 1000, 4));
        }
        let r = g.join("g", "t", "one-more", 1000, 4);
        assert!(format!("{r:?}").contains("1024 members already"), "{r:?}");
        // A member already in is welcome again.
        joined(g.join("g", "t", "m0", 1000, 4));
        for i in 1..MAX_GROUPS {
            joined(g.join(&format!("g{i}"), "t", "a", 1000, 4));
        }
        let r = g.join("another", "t", "a", 1000, 4);
        assert!(format!("{r:?}").contains("1024 groups already"), "{r:?}");
        // Leaving empties a group, which makes room.
        assert_eq!(g.leave("g1", "a"), Response::Left);
        joined(g.join("another", "t", "a", 1000, 4));
    }

    #[test]
    fn bad_joins_are_refused() {
        let g = Groups::default();
        let long = "x".repeat(MAX_GROUP_ID_LEN + 1);
        for r in [
            g.join("", "t", "a", 1000, 4),
            g.join("g", "t", &long, 1000, 4),
            g.join("g", "t", "a", 999, 4),
            g.join("g", "t", "a", MAX_SESSION_MS + 1, 4),
        ] {
            assert!(
                matches!(
                    r,
                    Response::Error {
                        code: ErrorCode::InvalidArgument,
                        ..
                    }
                ),
                "{r:?}"
            );
        }
        joined(g.join("g", "t", "a", 1000, 4));
        assert!(matches!(
            g.join("g", "other", "b", 1000, 4),
            Response::Error { .. }
        ));
    }
}
