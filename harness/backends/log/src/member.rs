//! `assignment = "group"`: the consumer as a member of the variant's group on the log server
//! (`mqlog::server` groups). It joins for its share of the partitions, heartbeats from its poll
//! loop every `heartbeat_interval_ms`, and when the server answers "rebalance needed" (a member
//! joined, left or went silent past its session) joins again and switches partitions,
//! recording what it was given and what it lost as [`AssignmentChange`]s.

use std::time::{Duration, Instant};

use mq_core::assignment::{AssignEvent, AssignmentChange};
use mq_core::clock::now_ns;
use mq_core::plan::FieldError;
use mqlog::client::{Client, ClientError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Endpoint, Options};

/// Session timeout when `session_timeout_ms` is absent.
pub const DEFAULT_SESSION_MS: u32 = 10_000;
/// Heartbeat interval when `heartbeat_interval_ms` is absent.
pub const DEFAULT_HEARTBEAT_MS: u32 = 1_000;

/// How consumers get their partitions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Assignment {
    /// Consumer i reads every consumers-th partition from i; no rebalances.
    #[default]
    Manual,
    /// Every consumer of the variant in one group on the server, which splits the partitions
    /// among the live members and moves them when a member dies, leaves or joins.
    Group,
}

/// The group settings: only with `assignment = "group"`, heartbeats below the session.
pub fn check_group(o: &Options, e: &mut Vec<FieldError>) {
    if o.assignment == Assignment::Manual {
        for (set, field) in [
            (o.session_timeout_ms.is_some(), "session_timeout_ms"),
            (o.heartbeat_interval_ms.is_some(), "heartbeat_interval_ms"),
        ] {
            if set {
                e.push(FieldError::new(
                    format!("options.{field}"),
                    format!("{field} is a consumer-group setting: set assignment = \"group\" (or remove {field})"),
                ));
            }
        }
        return;
    }
    let session = o.session_timeout_ms.unwrap_or(DEFAULT_SESSION_MS);
    let hb = o.heartbeat_interval_ms.unwrap_or(DEFAULT_HEARTBEAT_MS);
    if hb >= session {
        e.push(FieldError::new(
            "options.heartbeat_interval_ms",
            format!("heartbeat_interval_ms = {hb} is not below the session timeout ({session} ms): valid is 100 to {}; a third of it leaves room for two lost heartbeats", session - 1),
        ));
    }
}

/// The consumer's membership.
pub struct Member {
    group: String,
    topic: String,
    id: String,
    session_ms: u32,
    every: Duration,
    generation: u32,
    last_beat: Instant,
    /// Join again at the next poll (told to, or after a reconnect).
    rejoin: bool,
    changes: Vec<AssignmentChange>,
}

impl Member {
    /// Consumer `index`'s membership (a replacement gets a new id: this process's).
    pub fn new(ep: &Endpoint, o: &Options, index: u16) -> Member {
        Member {
            group: ep.group.clone(),
            topic: ep.topic.clone(),
            id: format!("c{index}-{}", std::process::id()),
            session_ms: o.session_timeout_ms.unwrap_or(DEFAULT_SESSION_MS),
            every: Duration::from_millis(u64::from(
                o.heartbeat_interval_ms.unwrap_or(DEFAULT_HEARTBEAT_MS),
            )),
            generation: 0,
            last_beat: Instant::now(),
            rejoin: false,
            changes: Vec::new(),
        }
    }

    /// Joins (again) and returns the new share, recording what changed from `held`.
    pub fn join(&mut self, client: &mut Client, held: &[u32]) -> Result<Vec<u32>, ClientError> {
        let j = client.join_group(&self.group, &self.topic, &self.id, self.session_ms)?;
        self.generation = j.generation;
        self.last_beat = Instant::now();
        self.rejoin = false;
        let now = now_ns();
        let revoked: Vec<u32> = (held.iter().copied())
            .filter(|p| !j.partitions.contains(p))
            .collect();
        let assigned: Vec<u32> = (j.partitions.iter().copied())
            .filter(|p| !held.contains(p))
            .collect();
        for (event, partitions) in [
            (AssignEvent::Revoked, revoked),
            (AssignEvent::Assigned, assigned),
        ] {
            if !partitions.is_empty() {
                self.changes.push(AssignmentChange {
                    at_ns: now,
                    event,
                    partitions,
                });
            }
        }
        tracing::debug!(member = %self.id, generation = j.generation, partitions = ?j.partitions, "log: joined the group");
        Ok(j.partitions)
    }

    /// Heartbeats when one is due; true when the member must join again.
    pub fn beat_if_due(&mut self, client: &mut Client) -> Result<bool, ClientError> {
        if self.rejoin {
            return Ok(true);
        }
        if self.last_beat.elapsed() < self.every {
            return Ok(false);
        }
        self.last_beat = Instant::now();
        self.rejoin = client.heartbeat(&self.group, &self.id, self.generation)?;
        Ok(self.rejoin)
    }

    /// Join again at the next poll (the connection was lost: the session may have ended).
    pub fn must_rejoin(&mut self) {
        self.rejoin = true;
    }

    /// Leaves the group (on close): the partitions move at once.
    pub fn leave(&mut self, client: &mut Client) -> Result<(), ClientError> {
        client.leave_group(&self.group, &self.id)
    }

    /// The changes since the last call.
    pub fn take_changes(&mut self) -> Vec<AssignmentChange> {
        std::mem::take(&mut self.changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(json: &str) -> Vec<String> {
        let o: Options = serde_json::from_str(json).unwrap();
        let mut e = Vec::new();
        check_group(&o, &mut e);
        e.iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect()
    }

    #[test]
    fn group_settings_need_the_group_and_heartbeats_below_the_session() {
        let e = errors(r#"{"session_timeout_ms": 3000, "heartbeat_interval_ms": 500}"#);
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("options.session_timeout_ms: session_timeout_ms is a consumer-group setting: set assignment = \"group\""), "{e:?}");
        let e = errors(
            r#"{"assignment": "group", "session_timeout_ms": 3000, "heartbeat_interval_ms": 3000}"#,
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("valid is 100 to 2999"), "{e:?}");
        // The default session (10 s) is above a heartbeat of 5 s.
        assert!(errors(r#"{"assignment": "group", "heartbeat_interval_ms": 5000}"#).is_empty());
        assert!(errors(r#"{"assignment": "group"}"#).is_empty());
        let bad = serde_json::from_str::<Options>(r#"{"assignment": "groups"}"#).unwrap_err();
        assert!(bad.to_string().contains("manual"), "{bad}");
    }
}
