//! results.json: everything a run measured, raw, in a versioned schema (docs/results-schema.md).
//! Reports and comparisons are rebuilt from this file alone.

use std::path::Path;

use mq_checker::Report;
use mq_core::delivery::Contract;
use mq_core::plan::FaultAction;
use mq_core::plan::Workload;
use mq_core::{Delivery, NodeHit};
use serde::{Deserialize, Serialize};

use crate::machine::Machine;

/// The schema id; bump the number on any incompatible change.
pub const SCHEMA: &str = "mq-bench.results/2";

/// Every schema this bench reads: 1 lacks `series.bin_s` (its series are per second).
pub const READS: [&str; 2] = [SCHEMA, "mq-bench.results/1"];

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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub description: String,
    pub file: String,
    pub workload: Workload,
}

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
    Interrupted,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerOutcome {
    pub role: String,
    pub index: u16,
    pub pid: u32,
    /// "ok", "exit N" or "signal N".
    pub exit: String,
    pub error: Option<String>,
}

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

impl RunResults {
    /// Writes results.json atomically (temp file + rename), so a crash never leaves half a file.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join("results.json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(tmp, dir.join("results.json"))
    }

    pub fn read(path: &Path) -> anyhow::Result<RunResults> {
        use anyhow::Context;
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let r: RunResults =
            serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))?;
        anyhow::ensure!(
            READS.contains(&r.schema.as_str()),
            "{}: schema {:?}, this bench reads {READS:?}",
            path.display(),
            r.schema
        );
        Ok(r)
    }
}
