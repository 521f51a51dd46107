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
    /// When the variant's load starts (monotonic ns): producers schedule from it.
    pub start_ns: u64,
}

/// Coordinator → worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Producers: stop sending and flush. Consumers: close and exit.
    Stop,
}

impl Control {
    pub fn parse(line: &str) -> Option<Control> {
        match line.trim() {
            "stop" => Some(Control::Stop),
            _ => None,
        }
    }
    pub fn as_line(self) -> &'static str {
        match self {
            Control::Stop => "stop\n",
        }
    }
}

/// Worker → coordinator, one JSON object per stdout line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Status {
    /// Connected and about to start.
    Ready,
    /// Running totals.
    Progress { sent: u64, acked: u64, failed: u64, delivered: u64 },
    /// Finished normally, with final totals.
    Done { sent: u64, acked: u64, failed: u64, delivered: u64 },
    /// Gave up; the message says why.
    Error { message: String },
}
