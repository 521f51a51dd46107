//! What the coordinator hands a worker process on its stdin, and the lines they exchange after.
//!
//! The first stdin line is a JSON [`WorkerSpec`]; later lines are [`Control`] commands. A worker
//! writes [`Status`] lines to stdout. EOF on stdin means the coordinator is gone: stop.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::backend::WorkerCtx;

/// The role and its parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "kebab-case")]
pub enum RoleSpec {
    Producer {
        /// Messages to send; None = until `duration_ns` has passed.
        messages: Option<u64>,
        duration_ns: Option<u64>,
        /// Messages per second for this producer; 0 = unbounded.
        rate: f64,
        ack_timeout_ns: u64,
    },
    Consumer,
}

/// Everything a worker needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerSpec {
    pub role: RoleSpec,
    pub ctx: WorkerCtx,
    pub history: PathBuf,
}

/// Coordinator → worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Producers: start the load; it is scheduled from this monotonic time (ns).
    Go(u64),
    /// Producers: stop sending and flush. Consumers: close and exit.
    Stop,
    /// Consumers: stop taking messages until `Resume`.
    Pause,
    Resume,
}

impl Control {
    pub fn parse(line: &str) -> Option<Control> {
        let mut words = line.split_whitespace();
        match (words.next()?, words.next()) {
            ("stop", None) => Some(Control::Stop),
            ("pause", None) => Some(Control::Pause),
            ("resume", None) => Some(Control::Resume),
            ("go", Some(t)) => t.parse().ok().map(Control::Go),
            _ => None,
        }
    }
    pub fn to_line(self) -> String {
        match self {
            Control::Go(t) => format!("go {t}\n"),
            Control::Stop => "stop\n".to_owned(),
            Control::Pause => "pause\n".to_owned(),
            Control::Resume => "resume\n".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn control_lines_round_trip() {
        for c in [
            Control::Go(123),
            Control::Stop,
            Control::Pause,
            Control::Resume,
        ] {
            assert_eq!(Control::parse(&c.to_line()), Some(c));
        }
        assert_eq!(Control::parse("go"), None);
        assert_eq!(Control::parse("launch"), None);
    }
}

/// Worker → coordinator, one JSON object per stdout line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Status {
    /// Connected and about to start.
    Ready,
    /// Running totals.
    Progress {
        sent: u64,
        acked: u64,
        failed: u64,
        delivered: u64,
    },
    /// Finished normally, with final totals.
    Done {
        sent: u64,
        acked: u64,
        failed: u64,
        delivered: u64,
    },
    /// Gave up; the message says why.
    Error { message: String },
}
