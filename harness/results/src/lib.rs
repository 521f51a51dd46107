//! mq-results: results.json's types (everything a run measured, raw, in a versioned schema:
//! docs/results-schema.md) and the run folder's layout ([`RunDir`]). The runner writes them; the
//! report and `bench compare` read them, and are rebuilt from them alone.

pub mod cost;
pub mod machine;
pub mod rundir;
pub mod shards;

use std::path::{Path, PathBuf};

use mq_checker::Report;
use mq_core::delivery::Contract;
use mq_core::plan::Workload;
use mq_core::plan::{FaultAction, PointOf, RunOf};
use mq_core::{Delivery, NodeHit};
use serde::{Deserialize, Serialize};

pub use machine::Machine;
pub use rundir::{RunDir, VariantDir};

/// The schema id; bump the number on any incompatible change.
pub const SCHEMA: &str = "mq-bench.results/2";

/// Every schema this bench reads: 1 lacks `series.bin_s` (its series are per second).
pub const READS: [&str; 2] = [SCHEMA, "mq-bench.results/1"];

/// results.json: one run of a scenario, every variant in it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResults {
    pub schema: String,
    pub bench_version: String,
    pub scenario: ScenarioInfo,
    /// Random id of this run, also in every envelope.
    pub run_id: u32,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// True when the run was interrupted or did not finish: some variants lack results.
    pub partial: bool,
    pub machine: Machine,
    pub variants: Vec<VariantResult>,
    /// The searches of variants with `rate = "max"`: their probes (ordinary variants above,
    /// named `NAME.probe-i`) and the rate each found.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub searches: Vec<SearchResult>,
    /// A shard's partial run (`bench run --shard`): its counts are of its own histories only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<mq_core::shard::Shard>,
    /// A run joined from shards by `bench merge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<shards::Merged>,
}

/// What `rate = "max"` found for one variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResult {
    /// The variant as written.
    pub variant: String,
    /// The highest rate a probe sustained, msgs/s (None: not even the lowest probe).
    pub max_rate: Option<u64>,
    /// Its delivered MB/s, as that probe measured.
    pub max_mb_per_s: Option<f64>,
    pub probes: Vec<ProbeRecord>,
    /// The points at `rate_fractions` of `max_rate`, judged as a probe is (`NAME.at-120pct`
    /// should not keep up); empty in files written before they were judged.
    #[serde(default)]
    pub points: Vec<ProbeRecord>,
    /// Why the search stopped, in a sentence.
    pub decision: String,
    /// Seconds the probes and points had load in flight (each from its start to its last ack
    /// or delivery), and the search's whole wall time, points included.
    pub measuring_s: f64,
    pub total_s: f64,
    /// Seconds the first round took to set its broker up (a managed broker's start): any run of
    /// the variant pays it, so the search's own overhead leaves it out.
    #[serde(default)]
    pub broker_start_s: f64,
}

impl SearchResult {
    /// The share of the search's time that was neither load in flight nor the broker's start.
    pub fn overhead(&self) -> Option<f64> {
        let own = self.total_s - self.broker_start_s;
        (own > 0.0).then(|| (1.0 - self.measuring_s / own).clamp(0.0, 1.0))
    }
}

/// One probe of a search, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeRecord {
    /// Its variant entry's name (`NAME.probe-3`).
    pub name: String,
    pub rate: u64,
    pub kept_up: bool,
    /// Why it did not keep up, or the figures that show it did.
    pub why: String,
}

/// The scenario as run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub description: String,
    pub file: String,
    pub workload: Workload,
    /// `[requirements]`: what the review judges every variant against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirements: Option<mq_core::requirements::Requirements>,
}

/// How a variant's run went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VariantStatus {
    /// Ran to its end.
    Ok,
    /// Could not start or broke down; `reason` says why. Counts gathered so far are kept.
    Failed,
    /// Not runnable on this machine (e.g. broker not installed); `reason` and `fix` say why.
    Skipped,
    /// Stopped by Ctrl-C; counts up to then are kept.
    Interrupted,
    /// Not started because the run was interrupted earlier.
    NotRun,
}

/// What ended the load and drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndedBy {
    /// Every acked message was delivered.
    Drained,
    /// Nothing arrived for `drain_timeout` after the producers ended.
    DrainTimeout,
    /// No progress at all for `drain_timeout` while producing: producers were stopped.
    Stalled,
    /// All consumers exited.
    ConsumersGone,
    /// A producer-only variant (`consumers = 0`): its producers ended, and nothing was read
    /// back, so delivery (loss, duplicates, order, end-to-end latency) was not measured.
    Produced,
    Interrupted,
}

/// How one worker process ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerOutcome {
    pub role: String,
    pub index: u16,
    pub pid: u32,
    /// "ok", "exit N" or "signal N".
    pub exit: String,
    pub error: Option<String>,
}

/// One variant: its settings, how it ran, and what the checker found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VariantResult {
    pub name: String,
    pub backend: String,
    pub delivery: Delivery,
    pub options: serde_json::Value,
    /// The workload this variant ran: the scenario's with the variant's overrides.
    #[serde(default)]
    pub workload: Option<Workload>,
    pub status: VariantStatus,
    pub reason: Option<String>,
    pub fix: Option<String>,
    pub ended_by: Option<EndedBy>,
    pub versions: Vec<(String, String)>,
    pub workers: Vec<WorkerOutcome>,
    /// The history files of this variant, relative to the run folder.
    pub history_dir: Option<String>,
    /// The faults carried out, in order, with their times.
    #[serde(default)]
    pub faults: Vec<FaultEvent>,
    /// The delivery contract the variant claims, and whether the run kept it.
    pub contract: Option<Contract>,
    pub contract_kept: Option<bool>,
    /// Why the contract was broken.
    pub contract_note: Option<String>,
    pub report: Option<Report>,
    /// How long partitions had no consumer when group members were killed or rebalanced;
    /// absent when the consumers were assigned their partitions by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebalance: Option<mq_checker::rebalance::Rebalance>,
    /// Which of the N runs of a variant written with `runs = N` this is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_of: Option<RunOf>,
    /// Which point of a variant written with a `sweep` this is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point_of: Option<PointOf>,
    /// Seconds the broker's set-up took (a managed broker's start, topics or queues made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup_s: Option<f64>,
    /// CPU, memory and storage writes of the broker and the workers (absent with
    /// `resources = false`, or in results written before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<cost::Cost>,
}

impl VariantResult {
    /// A variant without consumers (`consumers = 0`): its delivery figures were not measured.
    pub fn producer_only(&self) -> bool {
        self.workload.as_ref().is_some_and(|w| w.consumers == 0)
    }
}

/// One fault as it was carried out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultEvent {
    /// When the action began, in seconds since the variant's start.
    pub t: f64,
    /// When it was scheduled (`at`), in seconds; None for `after_messages`.
    #[serde(default)]
    pub scheduled: Option<f64>,
    /// How late it began: `t − scheduled`, in milliseconds.
    #[serde(default)]
    pub late_ms: Option<f64>,
    pub action: FaultAction,
    /// The worker index (kill-producer, kill-consumer, restart-consumer).
    pub target: Option<u16>,
    /// The cluster nodes a broker fault hit, and why each (e.g. leader of partition 0).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeHit>,
    /// As scheduled, e.g. `kill-broker@3s`.
    pub label: String,
    pub ok: bool,
    pub error: Option<String>,
    /// How long the action took (a broker restart waits until it answers).
    pub took_s: f64,
}

/// Why results.json could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("writing {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: schema {found:?}, this bench reads {READS:?}", path.display())]
    Schema { path: PathBuf, found: String },
}

impl RunResults {
    /// Writes the run folder's results.json atomically (temp file + rename), so a crash never
    /// leaves half a file.
    pub fn write(&self, dir: &RunDir) -> Result<(), ResultsError> {
        let tmp = dir.results_tmp();
        serde_json::to_vec_pretty(self)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, dir.results()))
            .map_err(|source| ResultsError::Write { path: tmp, source })
    }

    /// Reads a results.json of any schema in [`READS`].
    pub fn read(path: &Path) -> Result<RunResults, ResultsError> {
        let text = std::fs::read(path).map_err(|source| ResultsError::Read {
            path: path.to_owned(),
            source,
        })?;
        let r: RunResults =
            serde_json::from_slice(&text).map_err(|source| ResultsError::Parse {
                path: path.to_owned(),
                source,
            })?;
        if !READS.contains(&r.schema.as_str()) {
            return Err(ResultsError::Schema {
                path: path.to_owned(),
                found: r.schema,
            });
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_s_overhead_leaves_the_broker_start_out() {
        let mut s = SearchResult {
            variant: "v".into(),
            max_rate: None,
            max_mb_per_s: None,
            probes: Vec::new(),
            points: Vec::new(),
            decision: String::new(),
            measuring_s: 45.0,
            total_s: 65.0,
            broker_start_s: 15.0,
        };
        assert!(
            (s.overhead().unwrap() - 0.1).abs() < 1e-9,
            "{:?}",
            s.overhead()
        );
        s.broker_start_s = 65.0;
        assert_eq!(s.overhead(), None);
        // written before broker_start_s existed
        let old: SearchResult = serde_json::from_str(
            r#"{"variant":"v","max_rate":1,"max_mb_per_s":null,"probes":[],"decision":"",
                "measuring_s":1.0,"total_s":2.0}"#,
        )
        .unwrap();
        assert_eq!((old.broker_start_s, old.overhead()), (0.0, Some(0.5)));
    }

    fn run() -> RunResults {
        RunResults {
            schema: SCHEMA.to_owned(),
            bench_version: "0.1.0".to_owned(),
            scenario: ScenarioInfo {
                name: "s".to_owned(),
                description: String::new(),
                file: "s.toml".to_owned(),
                workload: serde_json::from_str(r#"{"messages": 10}"#).unwrap(),
                requirements: None,
            },
            run_id: 7,
            started_at: "2026-11-25T06:35:09Z".to_owned(),
            finished_at: None,
            partial: true,
            machine: Machine::default(),
            variants: Vec::new(),
            searches: Vec::new(),
            shard: None,
            merged: None,
        }
    }

    #[test]
    fn results_written_into_a_run_folder_read_back_and_leave_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let run_dir = RunDir::new(dir.path());
        run().write(&run_dir).unwrap();
        let back = RunResults::read(&run_dir.results()).unwrap();
        assert_eq!((back.run_id, back.partial), (7, true));
        assert!(!run_dir.results_tmp().exists());
    }

    #[test]
    fn schemas_this_bench_does_not_read_are_refused_naming_those_it_reads() {
        let dir = tempfile::tempdir().unwrap();
        let run_dir = RunDir::new(dir.path());
        let mut r = run();
        r.schema = "mq-bench.results/99".to_owned();
        r.write(&run_dir).unwrap();
        let e = RunResults::read(&run_dir.results()).unwrap_err();
        assert!(
            matches!(e, ResultsError::Schema { ref found, .. } if found == "mq-bench.results/99")
        );
        assert!(e.to_string().contains("mq-bench.results/1"), "{e}");
        let missing = RunResults::read(&dir.path().join("nope.json")).unwrap_err();
        assert!(matches!(missing, ResultsError::Read { .. }), "{missing}");
    }
}
