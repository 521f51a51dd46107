//! Consumer-group calls of [`Client`]: join, heartbeat, leave (requests 7-9 of
//! [`crate::protocol`]).

use super::error::{server_error, Result};
use super::Client;
use crate::protocol::{Request, Response};

/// A member's place in its group after a join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// The group's generation: heartbeats carry it.
    pub generation: u32,
    /// The member's partitions in this generation (possibly none).
    pub partitions: Vec<u32>,
}

impl Client {
    /// Joins `group` reading `topic` as `member`, removed after `session_ms` without a
    /// heartbeat (1000..=300000).
    pub fn join_group(
        &mut self,
        group: &str,
        topic: &str,
        member: &str,
        session_ms: u32,
    ) -> Result<Joined> {
        let req = Request::Join {
            group: group.to_owned(),
            topic: topic.to_owned(),
            member: member.to_owned(),
            session_ms,
        };
        let what = format!("join of {member} to group {group}");
        match self.call(&req, &what, self.request_timeout)? {
            Response::Joined {
                generation,
                partitions,
            } => Ok(Joined {
                generation,
                partitions,
            }),
            other => Err(server_error(other)),
        }
    }

    /// Tells `group` that `member` is alive in `generation`; `Ok(true)` when the group has
    /// rebalanced (or dropped the member) and it must join again.
    pub fn heartbeat(&mut self, group: &str, member: &str, generation: u32) -> Result<bool> {
        let req = Request::Heartbeat {
            group: group.to_owned(),
            member: member.to_owned(),
            generation,
        };
        let what = format!("heartbeat of {member} in group {group}");
        match self.call(&req, &what, self.request_timeout)? {
            Response::Heartbeat { rebalance } => Ok(rebalance),
            other => Err(server_error(other)),
        }
    }

    /// Leaves `group`: its partitions move to the other members at once.
    pub fn leave_group(&mut self, group: &str, member: &str) -> Result<()> {
        let req = Request::Leave {
            group: group.to_owned(),
            member: member.to_owned(),
        };
        let what = format!("leave of {member} from group {group}");
        match self.call(&req, &what, self.request_timeout)? {
            Response::Left => Ok(()),
            other => Err(server_error(other)),
        }
    }
}
