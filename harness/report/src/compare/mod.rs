//! `bench compare BASE NEW`: per variant and metric, the change and whether it is a regression
//! past the thresholds, decided from the spread of repetitions (or of per-second samples) so
//! that one noisy run neither passes nor fails a change by chance. The rule is in the README.

mod judge;
mod render;
mod search;

use std::path::{Path, PathBuf};

use anyhow::Context;
use mq_checker::Report;
use serde::Deserialize;

use mq_results::RunDir;

use crate::scenario_diff::{self, Difference};
use crate::{load, Loaded};
pub use judge::window_rates;
use judge::{count_row, latency, rate, speed_row, Better, Count, Metric};
pub use render::{markdown, refusal, text};

/// Regression thresholds, in percent; from flags or a TOML file (same names).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// Acked and delivered msgs/s may drop this much.
    pub max_throughput_drop: f64,
    /// Publish and end-to-end p50 may rise this much.
    pub max_p50_rise: f64,
    /// Publish and end-to-end p99 may rise this much.
    pub max_p99_rise: f64,
    /// End-to-end p99.9 may rise this much (tails are noisier).
    pub max_p999_rise: f64,
    /// Any lost or unexpected message in NEW is a regression.
    pub fail_on_loss: bool,
    /// Any duplicated message in NEW is a regression.
    pub fail_on_duplicates: bool,
    /// Any reordered message in NEW is a regression.
    pub fail_on_reorder: bool,
    /// Significance level of the tests.
    pub alpha: f64,
    /// Repetitions needed on both sides for the Mann–Whitney test.
    pub min_repetitions: usize,
    /// Treat "inconclusive" (too little data to tell change from noise) as a failure.
    pub strict: bool,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_throughput_drop: 5.0,
            max_p50_rise: 10.0,
            max_p99_rise: 10.0,
            max_p999_rise: 20.0,
            fail_on_loss: false,
            fail_on_duplicates: false,
            fail_on_reorder: false,
            alpha: 0.05,
            min_repetitions: 3,
            strict: false,
        }
    }
}

impl Thresholds {
    /// Reads a thresholds file (TOML, the field names above; unknown names are errors).
    pub fn from_file(path: &Path) -> anyhow::Result<Thresholds> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("{}: bad thresholds", path.display()))
    }
}

/// One side of a comparison: every repetition found at a path.
pub struct Side {
    pub path: PathBuf,
    pub reps: Vec<Loaded>,
}

impl Side {
    /// A results.json, a run folder, or a folder of `rep-N/` run folders.
    pub fn load(path: &Path) -> anyhow::Result<Side> {
        let dir = RunDir::new(path);
        let reps = if path.is_dir() && !dir.has_results() {
            let dirs = dir.repetitions();
            anyhow::ensure!(
                !dirs.is_empty(),
                "{}: no results.json and no rep-N/results.json in this folder",
                path.display()
            );
            dirs.iter()
                .map(|d| load(d.path()))
                .collect::<anyhow::Result<_>>()?
        } else {
            vec![load(path)?]
        };
        Ok(Side {
            path: path.to_path_buf(),
            reps,
        })
    }

    fn reports(&self, variant: &str) -> Vec<&Report> {
        self.reps
            .iter()
            .filter_map(|l| {
                l.results
                    .variants
                    .iter()
                    .find(|v| v.name == variant)
                    .and_then(|v| v.report.as_ref())
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Regression,
    /// Too little data to tell a change from noise.
    Inconclusive,
}

impl Verdict {
    /// As the reports write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Regression => "REGRESSION",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// One compared figure.
#[derive(Debug, Clone)]
pub struct Row {
    pub variant: String,
    pub metric: &'static str,
    /// Median over repetitions (max for anomaly counts); None when the side has no data.
    pub base: Option<f64>,
    pub new: Option<f64>,
    /// (new − base) / base in percent.
    pub change_pct: Option<f64>,
    /// The limit applied, as text ("−5 %", "any > 0", "report only").
    pub limit: String,
    /// What the verdict rests on (test and figure).
    pub evidence: String,
    pub verdict: Verdict,
}

/// The outcome of a comparison.
pub struct Comparison {
    pub base: String,
    pub new: String,
    pub base_reps: usize,
    pub new_reps: usize,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
    pub thresholds: Thresholds,
    /// Scenario fields that differ between BASE and NEW (empty: the same scenario).
    pub scenario_changes: Vec<Difference>,
}

impl Comparison {
    pub fn regressions(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.verdict == Verdict::Regression)
            .count()
    }
    pub fn inconclusive(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.verdict == Verdict::Inconclusive)
            .count()
    }
    /// Whether BASE and NEW ran different scenarios (`bench compare` then refuses unless
    /// `--allow-scenario-change`).
    pub fn scenario_changed(&self) -> bool {
        !self.scenario_changes.is_empty()
    }
    /// Whether CI should fail: a regression, or with `strict` an inconclusive figure.
    pub fn failed(&self) -> bool {
        self.regressions() > 0 || (self.thresholds.strict && self.inconclusive() > 0)
    }
}

/// Compares every variant of BASE with the variant of the same name in NEW.
pub fn compare(base: &Side, new: &Side, t: &Thresholds) -> Comparison {
    let mut rows = Vec::new();
    let (scenario_changes, mut notes) = scenario_diff::differences(&base.reps, &new.reps);
    for name in &variant_names(base, new) {
        if search::is_probe(base, new, name) {
            continue;
        }
        let b = base.reports(name);
        let n = new.reports(name);
        if b.is_empty() {
            notes.push(format!("{name}: no results in BASE; not compared"));
            continue;
        }
        if n.is_empty() {
            rows.push(Row {
                variant: name.clone(),
                metric: "results",
                base: None,
                new: None,
                change_pct: None,
                limit: "present".into(),
                evidence: "missing, failed or skipped in NEW".into(),
                verdict: Verdict::Regression,
            });
            continue;
        }
        rows.extend(variant_rows(t, name, &b, &n));
    }
    rows.extend(search::rows(base, new, t));
    if let Some(l) = new
        .reps
        .iter()
        .chain(&base.reps)
        .find(|l| l.results.partial)
    {
        notes.push(format!(
            "a run of {} is partial (interrupted): its figures are incomplete",
            l.results.scenario.name
        ));
    }
    Comparison {
        base: base.path.display().to_string(),
        new: new.path.display().to_string(),
        base_reps: base.reps.len(),
        new_reps: new.reps.len(),
        rows,
        notes,
        thresholds: t.clone(),
        scenario_changes,
    }
}

/// BASE's variants in their order, then NEW's that BASE has results for.
fn variant_names(base: &Side, new: &Side) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for l in &base.reps {
        for v in &l.results.variants {
            if !names.contains(&v.name) {
                names.push(v.name.clone());
            }
        }
    }
    for l in &new.reps {
        for v in &l.results.variants {
            if !names.contains(&v.name) && !base.reports(&v.name).is_empty() {
                names.push(v.name.clone());
            }
        }
    }
    names
}

/// The speed metrics compared, with their allowed changes.
fn metrics(t: &Thresholds) -> [Metric; 7] {
    [
        rate(
            "acked msgs/s",
            t.max_throughput_drop,
            |r| r.throughput.acked_msgs_per_s,
            |r| &r.series.acked,
        ),
        rate(
            "delivered msgs/s",
            t.max_throughput_drop,
            |r| r.throughput.delivered_msgs_per_s,
            |r| &r.series.delivered,
        ),
        latency("publish p50 µs", t.max_p50_rise, |r| {
            r.latency.publish.p50_us
        }),
        latency("publish p99 µs", t.max_p99_rise, |r| {
            r.latency.publish.p99_us
        }),
        latency("end-to-end p50 µs", t.max_p50_rise, |r| {
            r.latency.end_to_end.p50_us
        }),
        latency("end-to-end p99 µs", t.max_p99_rise, |r| {
            r.latency.end_to_end.p99_us
        }),
        latency("end-to-end p99.9 µs", t.max_p999_rise, |r| {
            r.latency.end_to_end.p999_us
        }),
    ]
}

/// Every row of a variant both sides have results for: speed, then anomaly counts.
fn variant_rows(t: &Thresholds, name: &str, b: &[&Report], n: &[&Report]) -> Vec<Row> {
    let mut rows = Vec::new();
    for m in metrics(t) {
        // A latency with no samples (e.g. producer_ack = none has no publish latency).
        let empty = |rs: &[&Report]| rs.iter().all(|r| (m.figure)(r) == 0.0);
        if matches!(m.better, Better::Lower) && empty(b) && empty(n) {
            continue;
        }
        rows.push(speed_row(t, name, &m, b, n));
    }
    let counts: [(&'static str, bool, Count); 4] = [
        ("lost", t.fail_on_loss, |r| r.counts.lost),
        ("unexpected", t.fail_on_loss, |r| r.counts.unexpected),
        ("duplicated", t.fail_on_duplicates, |r| r.counts.duplicated),
        ("reordered", t.fail_on_reorder, |r| r.counts.reordered),
    ];
    for (metric, fail, figure) in counts {
        rows.push(count_row(name, metric, fail, b, n, figure));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_file_reads_known_names_and_rejects_others() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.toml");
        std::fs::write(&p, "max_throughput_drop = 2.5\nfail_on_loss = true\n").unwrap();
        let t = Thresholds::from_file(&p).unwrap();
        assert_eq!(t.max_throughput_drop, 2.5);
        assert!(t.fail_on_loss);
        assert_eq!(t.max_p99_rise, 10.0);
        std::fs::write(&p, "max_throughput_dorp = 2.5\n").unwrap();
        let e = format!("{:#}", Thresholds::from_file(&p).unwrap_err());
        assert!(e.contains("max_throughput_dorp"), "{e}");
    }
}
