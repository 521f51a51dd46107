//! What a validated scenario asks for: the workload, each variant's plan, its fault schedule
//! and the consumers' processing time, plus the field errors validation speaks in.
//!
//! A fault is an action at a time offset from the variant's start or after a number of acked
//! messages. Broker faults go to the backend's [`crate::Broker::fault`] (or a variant's
//! `kill_cmd` / `restart_cmd` for external brokers); worker faults are carried out by the
//! coordinator on the worker processes themselves.

pub use crate::ids::broker_name;
use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::delivery::{derived_contract, Contract, Delivery};
pub use crate::expand::{PointOf, RunOf, SweepAxis};
pub use crate::fault::{ClientSide, NodeRole, NodeTarget};
use crate::history::HistoryMode;
use crate::parallel::Dispatch;

/// Largest message a scenario may ask for (any backend).
pub const MAX_MESSAGE_SIZE: usize = 16 << 20;
/// Most messages one run may send: the checker keeps a few bits per message (1.25 GB here).
pub const MAX_MESSAGES: u64 = 10_000_000_000;
/// Longest a run may send (`duration`) or a fault wait (`at`): a week.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Longest a drain or a producer's wait for its last confirmations may take.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// Most messages per second a scenario may ask for, over all producers.
pub const MAX_RATE: u64 = 100_000_000;
/// Most ordering keys: the checker keeps the last seq per (consumer, producer, key).
pub const MAX_KEYS: u32 = 65_536;
/// Longest a consumer may "process" one message.
pub const MAX_PROCESSING: Duration = Duration::from_secs(10);
/// The most runs of one variant (`runs = N`).
pub const MAX_RUNS: u32 = 100;

/// Checks `lo <= value <= hi` and, if not, says so naming the field and the valid range.
pub fn check_range<T: PartialOrd + fmt::Display>(
    errors: &mut Vec<FieldError>,
    path: &str,
    value: T,
    lo: T,
    hi: T,
) {
    if value < lo || value > hi {
        let field = path.rsplit('.').next().unwrap_or(path);
        errors.push(FieldError::new(
            path,
            format!("{field} = {value} is out of range: valid is {lo} to {hi}"),
        ));
    }
}

/// [`check_range`] for durations, shown as written in scenarios ("1h", "250ms").
pub fn check_duration(
    errors: &mut Vec<FieldError>,
    path: &str,
    value: Duration,
    lo: Duration,
    hi: Duration,
) {
    check_range(errors, path, Written(value), Written(lo), Written(hi))
}

/// A duration displayed as a scenario writes it, quoted: `"250ms"`.
#[derive(PartialEq, PartialOrd)]
struct Written(Duration);

impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", humantime::format_duration(self.0))
    }
}

/// A duration written as `"10s"`, `"250ms"`, `"2m"` (humantime) in scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map(Dur).map_err(|e| {
            serde::de::Error::custom(format!(
                "{e}: expected a duration such as \"10s\", \"250ms\" or \"2m\""
            ))
        })
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

/// The load every variant of a scenario runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Total messages over all producers (exactly one of `messages` and `duration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<u64>,
    /// Or: send for this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Dur>,
    /// Bytes per message, envelope included.
    #[serde(default = "defaults::message_size")]
    pub message_size: usize,
    #[serde(default = "defaults::one")]
    pub producers: u32,
    /// Consumer workers; more than `partitions` only where the backend has competing consumers
    /// (consumer i then reads partition i % partitions).
    #[serde(default = "defaults::one")]
    pub consumers: u32,
    /// Partitions (Kafka partitions, SysV message types, log partitions, RabbitMQ queues).
    #[serde(default = "defaults::one")]
    pub partitions: u32,
    /// Ordering keys; key k goes to partition k % partitions. Defaults to `partitions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<u32>,
    /// Target rate in messages per second over all producers; 0 = as fast as possible.
    #[serde(default)]
    pub rate: u64,
    /// Latency and throughput figures ignore messages scheduled in this first stretch.
    #[serde(default)]
    pub warmup: Dur,
    /// After the producers end, how long consumers may go without a delivery before the run stops
    /// waiting for the rest. Also how long a run may make no progress at all before it is stopped.
    #[serde(default = "defaults::drain_timeout")]
    pub drain_timeout: Dur,
    /// How long a producer waits for outstanding confirmations at its end.
    #[serde(default = "defaults::ack_timeout")]
    pub ack_timeout: Dur,
    /// What each worker records: `"intervals"` (runs of consecutive messages, anomalies one by
    /// one: the default), `"full"` (one record per event) or `"off"` (nothing: no counts are
    /// checked). See docs/history-format.md.
    #[serde(default)]
    pub history: HistoryMode,
    /// `false`: delete the variant's histories and latency logs once they are checked
    /// (results.json keeps every figure; scripts/recount.py then has nothing to read).
    #[serde(default = "defaults::yes")]
    pub keep_history: bool,
    /// `false`: no cost accounting (CPU, memory, storage writes read from /proc every 250 ms);
    /// for measuring what the sampling itself costs.
    #[serde(default = "defaults::yes", skip_serializing_if = "defaults::is_yes")]
    pub resources: bool,
    /// Consumer processing time per message ("2ms", or uniform "1ms..3ms"): a delivery counts
    /// as processed after it; acks or commits come before or after it per `consumer_ack`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing: Option<Processing>,
    /// Threads each consumer processes deliveries in (1 to 256; 1: in its receiving thread).
    /// See [`crate::parallel`].
    #[serde(default = "defaults::one", skip_serializing_if = "defaults::is_one")]
    pub processing_threads: u32,
    /// With `processing_threads` > 1: `"by-key"` (the key's thread, keeps per-key order; the
    /// default) or `"any"` (any free thread, reorders).
    #[serde(default, skip_serializing_if = "defaults::is_by_key")]
    pub dispatch: Dispatch,
}

mod actions;
mod defaults;
pub use actions::{BrokerFault, FaultAction};

impl Workload {
    pub fn keys(&self) -> u32 {
        self.keys.unwrap_or(self.partitions)
    }

    /// How many messages producer `i` sends (None: until the duration ends).
    pub fn messages_for(&self, producer: u32) -> Option<u64> {
        self.messages.map(|m| {
            let p = self.producers as u64;
            m / p + u64::from((producer as u64) < m % p)
        })
    }

    /// Each producer's share of the target rate (0 = unbounded).
    pub fn rate_per_producer(&self) -> f64 {
        self.rate as f64 / self.producers as f64
    }

    /// How long a fixed-rate load sends, seconds from its start (its duration, or its messages
    /// at its rate); None as fast as possible.
    pub fn sending_s(&self) -> Option<f64> {
        if self.rate == 0 {
            return None;
        }
        match (self.duration, self.messages) {
            (Some(d), _) => Some(d.0.as_secs_f64()),
            (None, Some(m)) => Some(m as f64 / self.rate as f64),
            (None, None) => None,
        }
    }
}

/// One variant, validated, with its backend's defaults filled in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VariantPlan {
    pub name: String,
    pub backend: String,
    pub delivery: Delivery,
    /// Backend options, as written (each backend parses its own).
    pub options: serde_json::Value,
    /// The scenario's workload with this variant's overrides applied.
    pub workload: Workload,
    /// The scenario's faults, then the variant's.
    pub faults: Vec<FaultSpec>,
    pub contract: Contract,
    /// With `consumer_dedup = "store"`: how its commits reach the disk.
    #[serde(default)]
    pub dedup_sync: crate::delivery::DedupSync,
    pub kill_cmd: Option<String>,
    pub restart_cmd: Option<String>,
    /// Set when the variant as written has `runs = N` (N > 1): this plan is one of its runs.
    pub run_of: Option<RunOf>,
    /// Set when the variant as written has a `sweep`: this plan is one of its points.
    pub point_of: Option<PointOf>,
    /// `rate = "max"`: search for the highest sustainable rate (the workload's rate is then 0).
    pub search: Option<crate::search::SearchSpec>,
    /// After the search, run the workload at these fractions of the rate it found.
    pub rate_fractions: Vec<f64>,
}

impl VariantPlan {
    /// A plan with no faults and the contract its delivery settings imply (tests, library use).
    pub fn new(
        name: impl Into<String>,
        backend: impl Into<String>,
        delivery: Delivery,
        options: serde_json::Value,
        workload: Workload,
    ) -> VariantPlan {
        VariantPlan {
            name: name.into(),
            backend: backend.into(),
            delivery,
            options,
            workload,
            faults: Vec::new(),
            contract: derived_contract(delivery),
            dedup_sync: Default::default(),
            kill_cmd: None,
            restart_cmd: None,
            run_of: None,
            point_of: None,
            search: None,
            rate_fractions: Vec::new(),
        }
    }

    /// Parses this variant's `options` into a backend's own struct (use `deny_unknown_fields`).
    pub fn options<T: DeserializeOwned>(&self) -> Result<T, FieldError> {
        serde_path_to_error::deserialize(&self.options).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." {
                "options".to_owned()
            } else {
                format!("options.{path}")
            };
            FieldError::new(path, e.into_inner().to_string())
        })
    }

    /// [`VariantPlan::options`] where a field error is a `backend`'s error: for a broker or a
    /// worker, after validation has reported the scenario's errors with their file and field.
    pub fn backend_options<T: DeserializeOwned>(
        &self,
        backend: &'static str,
    ) -> Result<T, crate::backend::BackendError> {
        self.options().map_err(|e| {
            crate::backend::BackendError::other(backend, format!("{}: {}", e.path, e.message))
        })
    }
}

/// A problem with one field; the path is dotted (`variants[1].options.msg_qbytes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl FieldError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// One `[[faults]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub action: FaultAction,
    /// When, from the variant's start (exactly one of `at` and `after_messages`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Dur>,
    /// Or: once this many messages are acked (all producers together).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_messages: Option<u64>,
    /// The worker index for kill-producer, kill-consumer, restart-consumer (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<u16>,
    /// The node of a cluster that pause-broker, resume-broker, partition or slow-link acts on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeTarget>,
    /// Partition: whom the clients still reach (default both sides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<ClientSide>,
    /// Slow-link: delay added to each packet, each way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Dur>,
    /// Slow-link: the delay varies uniformly by this much either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<Dur>,
    /// Slow-link: percent of packets lost (0 to 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
}

impl FaultSpec {
    /// A short label for tables and chart markers, e.g. `kill-broker@3s`.
    pub fn label(&self) -> String {
        let target = match (self.target, self.node) {
            (Some(t), _) => format!(" {t}"),
            (None, Some(n)) => format!(" {n}"),
            _ => String::new(),
        };
        match (self.at, self.after_messages) {
            (Some(d), _) => format!(
                "{}{target}@{}",
                self.action,
                humantime::format_duration(d.0)
            ),
            (_, Some(n)) => format!("{}{target}@{n} msgs", self.action),
            _ => format!("{}{target}", self.action),
        }
    }
}

/// How long a consumer "works" on each message before it counts as processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processing {
    Fixed(Duration),
    /// Uniformly distributed between the two.
    Uniform(Duration, Duration),
}

impl Processing {
    /// The processing time for one message, given a uniform random number in [0, 1).
    pub fn sample(self, unit: f64) -> Duration {
        match self {
            Processing::Fixed(d) => d,
            Processing::Uniform(lo, hi) => lo + (hi.saturating_sub(lo)).mul_f64(unit),
        }
    }

    fn parse(s: &str) -> Result<Processing, String> {
        let d = |s: &str| humantime::parse_duration(s.trim()).map_err(|e| format!("{s:?}: {e}"));
        match s.split_once("..") {
            Some((lo, hi)) => {
                let (lo, hi) = (d(lo)?, d(hi)?);
                if hi < lo {
                    return Err(format!("{s:?}: the upper bound is below the lower one"));
                }
                Ok(Processing::Uniform(lo, hi))
            }
            None => d(s).map(Processing::Fixed),
        }
    }
}

impl<'de> Deserialize<'de> for Processing {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Processing::parse(&s).map_err(|e| {
            serde::de::Error::custom(format!(
                "{e}: expected a duration (\"2ms\") or a uniform range (\"1ms..3ms\")"
            ))
        })
    }
}

impl Serialize for Processing {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = |d: Duration| humantime::format_duration(d).to_string();
        match *self {
            Processing::Fixed(d) => s.serialize_str(&f(d)),
            Processing::Uniform(lo, hi) => s.serialize_str(&format!("{}..{}", f(lo), f(hi))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processing_parses_fixed_and_uniform() {
        assert_eq!(
            Processing::parse("2ms"),
            Ok(Processing::Fixed(Duration::from_millis(2)))
        );
        let u = Processing::parse("1ms..3ms").unwrap();
        assert_eq!(u.sample(0.5), Duration::from_millis(2));
        assert!(Processing::parse("3ms..1ms").is_err());
    }
}
