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
    /// A pipeline stage (read from one topic, write to another); it records no history.
    Stage,
}

/// Everything a worker needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerSpec {
    pub role: RoleSpec,
    pub ctx: WorkerCtx,
    pub history: PathBuf,
    /// A consumer's dedup store (`consumer_dedup = "store"`), made by the coordinator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_store: Option<PathBuf>,
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

/// A worker's running counts: producers fill the send outcomes, consumers `delivered` (each
/// (producer, seq) once per consumer). The one type for the worker protocol, progress and drain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub sent: u64,
    pub acked: u64,
    /// Refused by the broker.
    pub failed: u64,
    /// Never reached the broker (no connection within the delivery timeout).
    #[serde(default)]
    pub not_sent: u64,
    pub delivered: u64,
}

impl std::ops::AddAssign for Totals {
    fn add_assign(&mut self, o: Totals) {
        self.sent += o.sent;
        self.acked += o.acked;
        self.failed += o.failed;
        self.not_sent += o.not_sent;
        self.delivered += o.delivered;
    }
}

impl std::iter::Sum for Totals {
    fn sum<I: Iterator<Item = Totals>>(iter: I) -> Totals {
        let mut t = Totals::default();
        for x in iter {
            t += x;
        }
        t
    }
}

/// Worker → coordinator, one JSON object per stdout line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Status {
    /// Connected and about to start.
    Ready,
    /// Running totals as of `at_ns` (the worker's monotonic clock, shared by the host).
    Progress { at_ns: u64, totals: Totals },
    /// Finished normally, with final totals.
    Done { totals: Totals },
    /// Gave up; the message says why.
    Error { message: String },
}
