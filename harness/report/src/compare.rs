//! `bench compare BASE NEW`: per variant and metric, the change and whether it is a regression
//! past the thresholds, decided from the spread of repetitions (or of per-second samples) so
//! that one noisy run neither passes nor fails a change by chance. The rule is in the README.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use mq_checker::Report;
use serde::Deserialize;

use crate::scenario_diff::{self, Difference};
use crate::stats::{bootstrap_ratio, mann_whitney_less, median};
use mq_results::RunDir;

use crate::{load, Loaded};

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
    fn as_str(self) -> &'static str {
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

#[derive(Clone, Copy)]
enum Better {
    Higher,
    Lower,
}

type Figure = fn(&Report) -> f64;
/// A series of counts per bin (`series.bin_s` wide).
type PerBin = fn(&Report) -> &[u64];
type Count = fn(&Report) -> u64;

/// One speed metric compared: name, direction, allowed change, the figure, its series.
type Spec = (&'static str, Better, f64, Figure, Option<PerBin>);

/// A rate: higher is better, judged with its series too.
fn rate(metric: &'static str, limit: f64, figure: Figure, seconds: PerBin) -> Spec {
    (metric, Better::Higher, limit, figure, Some(seconds))
}

/// A latency: lower is better, judged on the figure alone.
fn latency(metric: &'static str, limit: f64, figure: Figure) -> Spec {
    (metric, Better::Lower, limit, figure, None)
}

/// The windows `compare` measures noise over: bins finer than a second are summed into windows
/// of a second (as many whole bins as make one); bins of a second or more are each a window.
/// Returns (bins per window, window seconds).
fn window(bin_s: f64) -> (usize, f64) {
    let k = if bin_s >= 1.0 {
        1
    } else {
        ((1.0 / bin_s).round() as usize).max(1)
    };
    (k, k as f64 * bin_s)
}

/// Rates (msgs/s) of a series' full windows (see [`window`]). The last window is left out: the
/// run ended within it.
pub fn window_rates(counts: &[u64], bin_s: f64) -> Vec<f64> {
    let (k, window_s) = window(bin_s);
    let mut rates: Vec<f64> = counts
        .chunks(k)
        .map(|c| c.iter().sum::<u64>() as f64 / window_s)
        .collect();
    rates.pop();
    rates
}

/// The full windows' rates of every repetition, and how many seconds they cover.
fn per_second(reports: &[&Report], pick: PerBin) -> (Vec<f64>, f64) {
    let mut seconds = 0.0;
    let mut rates = Vec::new();
    for r in reports {
        let w = window_rates(pick(r), r.series.bin_s);
        seconds += w.len() as f64 * window(r.series.bin_s).1;
        rates.extend(w);
    }
    (rates, (seconds * 100.0).round() / 100.0)
}

fn pct(base: f64, new: f64) -> Option<f64> {
    (base != 0.0 && base.is_finite() && new.is_finite()).then(|| (new - base) / base * 100.0)
}

#[allow(clippy::too_many_arguments)]
fn speed_row(
    t: &Thresholds,
    variant: &str,
    metric: &'static str,
    better: Better,
    limit_pct: f64,
    base: &[&Report],
    new: &[&Report],
    figure: Figure,
    seconds: Option<PerBin>,
) -> Row {
    let b: Vec<f64> = base.iter().map(|r| figure(r)).collect();
    let n: Vec<f64> = new.iter().map(|r| figure(r)).collect();
    let (bm, nm) = (median(&b), median(&n));
    let limit = match better {
        Better::Higher => format!("−{limit_pct} %"),
        Better::Lower => format!("+{limit_pct} %"),
    };
    let mut row = Row {
        variant: variant.to_owned(),
        metric,
        base: Some(bm),
        new: Some(nm),
        change_pct: pct(bm, nm),
        limit,
        evidence: String::new(),
        verdict: Verdict::Inconclusive,
    };
    let k = limit_pct / 100.0;
    if b.len() >= t.min_repetitions && n.len() >= t.min_repetitions {
        // Is NEW worse than BASE moved by the allowed change? Significant only past the limit.
        let p = match better {
            Better::Higher => {
                let shifted: Vec<f64> = b.iter().map(|v| v * (1.0 - k)).collect();
                mann_whitney_less(&n, &shifted)
            }
            Better::Lower => {
                let shifted: Vec<f64> = b.iter().map(|v| v * (1.0 + k)).collect();
                mann_whitney_less(&shifted, &n)
            }
        };
        row.evidence = format!("Mann–Whitney p = {p:.3} ({} vs {} reps)", b.len(), n.len());
        row.verdict = if p < t.alpha {
            Verdict::Regression
        } else {
            Verdict::Ok
        };
        return row;
    }
    match seconds {
        Some(pick) => {
            let (bs, b_secs) = per_second(base, pick);
            let (ns, n_secs) = per_second(new, pick);
            if bs.len() < 3 || ns.len() < 3 {
                row.evidence = format!(
                    "{b_secs} vs {n_secs} full seconds, {} vs {} reps: too few to measure noise",
                    b.len(),
                    n.len()
                );
                return row;
            }
            let (lo, hi) = bootstrap_ratio(&bs, &ns, t.alpha, 1.0 - t.alpha);
            let conf = (1.0 - t.alpha) * 100.0;
            row.evidence = format!(
                "bootstrap of per-second rates ({b_secs} vs {n_secs} s): {conf:.0} % bounds {:+.1} % / {:+.1} %",
                (lo - 1.0) * 100.0 + 0.0,
                (hi - 1.0) * 100.0 + 0.0
            );
            row.verdict = if hi < 1.0 - k {
                Verdict::Regression
            } else {
                Verdict::Ok
            };
        }
        None => {
            row.evidence = format!(
                "{} vs {} reps: a percentile of one run carries no noise estimate",
                b.len(),
                n.len()
            );
        }
    }
    row
}

fn count_row(
    variant: &str,
    metric: &'static str,
    fail: bool,
    base: &[&Report],
    new: &[&Report],
    figure: Count,
) -> Row {
    let b = base.iter().map(|r| figure(r)).max().unwrap_or(0) as f64;
    let n = new.iter().map(|r| figure(r)).max().unwrap_or(0) as f64;
    let verdict = if fail && n > 0.0 {
        Verdict::Regression
    } else {
        Verdict::Ok
    };
    Row {
        variant: variant.to_owned(),
        metric,
        base: Some(b),
        new: Some(n),
        change_pct: pct(b, n),
        limit: if fail { "any > 0" } else { "report only" }.to_owned(),
        evidence: "exact count (worst repetition)".to_owned(),
        verdict,
    }
}

/// Compares every variant of BASE with the variant of the same name in NEW.
pub fn compare(base: &Side, new: &Side, t: &Thresholds) -> Comparison {
    let mut rows = Vec::new();
    let (scenario_changes, mut notes) = scenario_diff::differences(&base.reps, &new.reps);
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
    for name in &names {
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
        let specs = [
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
        ];
        for (metric, better, limit, figure, seconds) in specs {
            // A latency with no samples (e.g. producer_ack = none has no publish latency).
            let empty = |rs: &[&Report]| rs.iter().all(|r| figure(r) == 0.0);
            if matches!(better, Better::Lower) && empty(&b) && empty(&n) {
                continue;
            }
            rows.push(speed_row(
                t, name, metric, better, limit, &b, &n, figure, seconds,
            ));
        }
        let counts: [(&'static str, bool, Count); 4] = [
            ("lost", t.fail_on_loss, |r| r.counts.lost),
            ("unexpected", t.fail_on_loss, |r| r.counts.unexpected),
            ("duplicated", t.fail_on_duplicates, |r| r.counts.duplicated),
            ("reordered", t.fail_on_reorder, |r| r.counts.reordered),
        ];
        for (metric, fail, figure) in counts {
            rows.push(count_row(name, metric, fail, &b, &n, figure));
        }
    }
    for l in new.reps.iter().chain(&base.reps) {
        if l.results.partial {
            notes.push(format!(
                "a run of {} is partial (interrupted): its figures are incomplete",
                l.results.scenario.name
            ));
            break;
        }
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

/// The scenario differences as Markdown (empty when there are none).
fn changes_markdown(c: &Comparison) -> String {
    let mut s = String::new();
    if !c.scenario_changed() {
        return s;
    }
    let _ = writeln!(
        s,
        "**The scenarios differ** ({} field(s)): a changed workload is not a regression of the system under test.\n",
        c.scenario_changes.len()
    );
    let _ = writeln!(s, "| field | base | new |\n|---|---|---|");
    for d in &c.scenario_changes {
        let _ = writeln!(s, "| `{}` | {} | {} |", d.field, d.base, d.new);
    }
    s.push('\n');
    s
}

/// The scenario differences as plain text (empty when there are none).
fn changes_text(c: &Comparison) -> String {
    let mut s = String::new();
    if !c.scenario_changed() {
        return s;
    }
    let _ = writeln!(
        s,
        "the scenarios differ ({} field(s)), BASE -> NEW:",
        c.scenario_changes.len()
    );
    for d in &c.scenario_changes {
        let _ = writeln!(s, "  {}: {} -> {}", d.field, d.base, d.new);
    }
    s.push('\n');
    s
}

/// What `bench compare` prints when it refuses to compare different scenarios.
pub fn refusal(c: &Comparison, markdown: bool) -> String {
    const WHY: &str = "not compared: BASE and NEW ran different scenarios; run both on the same scenario, or pass --allow-scenario-change to compare anyway";
    if markdown {
        format!("### mq-bench compare: {WHY}\n\n{}", changes_markdown(c))
    } else {
        format!("mq-bench compare: {WHY}\n{}", changes_text(c))
    }
}

fn num(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) if !v.is_finite() => "–".into(),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

fn change(r: &Row) -> String {
    match (r.change_pct, r.base, r.new) {
        (Some(p), _, _) => format!("{p:+.1} %"),
        (None, Some(b), Some(n)) if b == 0.0 && n > 0.0 => format!("+{n:.0}"),
        (None, Some(b), Some(n)) if b == n => "0".into(),
        _ => "–".into(),
    }
}

fn headline(c: &Comparison) -> String {
    let r = c.regressions();
    let i = c.inconclusive();
    let mut s = if r > 0 {
        format!("REGRESSION: {r} figure(s) past their limits")
    } else {
        "no regression".to_owned()
    };
    if c.scenario_changed() {
        s.push_str(" (the scenarios differ, compared anyway)");
    }
    if i > 0 {
        let _ = write!(
            s,
            "; {i} inconclusive (too little data to tell change from noise{})",
            if c.thresholds.strict {
                ": failing, --strict"
            } else {
                ""
            }
        );
    }
    s
}

/// The comparison as Markdown, for a pull-request comment.
pub fn markdown(c: &Comparison) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "### mq-bench compare: {}\n", headline(c));
    s.push_str(&changes_markdown(c));
    let _ = writeln!(
        s,
        "BASE `{}` ({} repetition(s)) → NEW `{}` ({} repetition(s)). Figures are medians over repetitions; counts are the worst repetition.\n",
        c.base, c.base_reps, c.new, c.new_reps
    );
    let _ = writeln!(
        s,
        "| variant | metric | base | new | change | limit | evidence | verdict |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---|---|");
    for r in &c.rows {
        let verdict = match r.verdict {
            Verdict::Regression => "**REGRESSION**".to_owned(),
            v => v.as_str().to_owned(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.variant,
            r.metric,
            num(r.base),
            num(r.new),
            change(r),
            r.limit,
            r.evidence,
            verdict
        );
    }
    for n in &c.notes {
        let _ = writeln!(s, "\n- {n}");
    }
    s
}

/// The comparison as aligned plain text, for a terminal or a CI log.
pub fn text(c: &Comparison) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "mq-bench compare: {}", headline(c));
    let _ = writeln!(
        s,
        "BASE {} ({} rep) -> NEW {} ({} rep); medians over repetitions, counts: worst repetition\n",
        c.base, c.base_reps, c.new, c.new_reps
    );
    s.push_str(&changes_text(c));
    let table: Vec<[String; 8]> = std::iter::once(
        [
            "variant", "metric", "base", "new", "change", "limit", "verdict", "evidence",
        ]
        .map(String::from),
    )
    .chain(c.rows.iter().map(|r| {
        [
            r.variant.clone(),
            r.metric.to_owned(),
            num(r.base),
            num(r.new),
            change(r),
            r.limit.clone(),
            r.verdict.as_str().to_owned(),
            r.evidence.clone(),
        ]
    }))
    .collect();
    let mut widths = [0usize; 8];
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in &table {
        let mut line = String::new();
        for (k, (w, cell)) in widths.iter().zip(row).enumerate() {
            let pad = w - cell.chars().count();
            if (2..=5).contains(&k) {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                if k < 7 {
                    line.push_str(&" ".repeat(pad));
                }
            }
            if k < 7 {
                line.push_str("  ");
            }
        }
        let _ = writeln!(s, "{}", line.trim_end());
    }
    for n in &c.notes {
        let _ = writeln!(s, "note: {n}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(rate: f64, seconds: usize, p99: f64) -> Report {
        let mut r = Report::default();
        r.throughput.acked_msgs_per_s = rate;
        r.throughput.delivered_msgs_per_s = rate;
        r.latency.publish.p99_us = p99;
        r.latency.end_to_end.p99_us = p99;
        r.series.acked = vec![rate as u64; seconds];
        r.series.delivered = vec![rate as u64; seconds];
        r
    }

    fn row<'a>(rows: &'a [Row], metric: &str) -> &'a Row {
        rows.iter().find(|r| r.metric == metric).unwrap()
    }

    #[test]
    fn repetitions_decide_by_mann_whitney_past_the_limit() {
        let t = Thresholds::default();
        let b: Vec<Report> = [100.0, 103.0, 98.0, 101.0, 99.0]
            .iter()
            .map(|v| report(*v, 1, 10.0))
            .collect();
        let small: Vec<Report> = [97.0, 100.0, 95.0, 98.0, 96.0] // −3 %: within 5 %
            .iter()
            .map(|v| report(*v, 1, 10.0))
            .collect();
        let big: Vec<Report> = [80.0, 83.0, 78.0, 81.0, 79.0] // −20 %
            .iter()
            .map(|v| report(*v, 1, 10.0))
            .collect();
        fn refs(v: &[Report]) -> Vec<&Report> {
            v.iter().collect()
        }
        let f: Figure = |r| r.throughput.acked_msgs_per_s;
        let ok = speed_row(
            &t,
            "v",
            "acked",
            Better::Higher,
            5.0,
            &refs(&b),
            &refs(&small),
            f,
            None,
        );
        assert_eq!(ok.verdict, Verdict::Ok, "{ok:?}");
        let bad = speed_row(
            &t,
            "v",
            "acked",
            Better::Higher,
            5.0,
            &refs(&b),
            &refs(&big),
            f,
            None,
        );
        assert_eq!(bad.verdict, Verdict::Regression, "{bad:?}");
        assert!((bad.change_pct.unwrap() + 20.0).abs() < 1.0);
    }

    #[test]
    fn one_repetition_uses_per_second_samples_or_says_inconclusive() {
        let t = Thresholds::default();
        let f: Figure = |r| r.throughput.acked_msgs_per_s;
        let s: Option<PerBin> = Some(|r| &r.series.acked);
        let b = report(1000.0, 6, 10.0);
        let mut n = report(800.0, 6, 10.0);
        n.series.acked = vec![790, 810, 800, 805, 795, 0];
        let r = speed_row(&t, "v", "acked", Better::Higher, 5.0, &[&b], &[&n], f, s);
        assert_eq!(r.verdict, Verdict::Regression, "{r:?}");
        let same = speed_row(&t, "v", "acked", Better::Higher, 5.0, &[&b], &[&b], f, s);
        assert_eq!(same.verdict, Verdict::Ok, "{same:?}");
        let short = report(800.0, 2, 10.0);
        let r = speed_row(
            &t,
            "v",
            "acked",
            Better::Higher,
            5.0,
            &[&b],
            &[&short],
            f,
            s,
        );
        assert_eq!(r.verdict, Verdict::Inconclusive, "{r:?}");
        // A latency percentile of single runs: never decided on one number.
        let lat: Figure = |r| r.latency.end_to_end.p99_us;
        let worse = report(1000.0, 6, 100.0);
        let r = speed_row(
            &t,
            "v",
            "p99",
            Better::Lower,
            10.0,
            &[&b],
            &[&worse],
            lat,
            None,
        );
        assert_eq!(r.verdict, Verdict::Inconclusive);
    }

    #[test]
    fn window_rates_sum_fine_bins_into_seconds_and_scale_coarse_ones() {
        // 10 ms bins of 10 messages over 2.5 s: 1000 msgs/s in each of the 2 full seconds.
        assert_eq!(window_rates(&[10; 250], 0.01), vec![1000.0, 1000.0]);
        // 50 ms bins: 20 to a second; the third, partial second is left out.
        let mut v = vec![50; 40];
        v.extend([100; 20]);
        assert_eq!(window_rates(&v, 0.05), vec![1000.0, 1000.0]);
        // Per-second bins as before: the last second is left out.
        assert_eq!(window_rates(&[5, 6, 7], 1.0), vec![5.0, 6.0]);
        // 2 s bins: each bin is a window, scaled to msgs/s.
        assert_eq!(window_rates(&[400, 600, 10], 2.0), vec![200.0, 300.0]);
        assert!(window_rates(&[], 0.01).is_empty());
    }

    #[test]
    fn runs_with_different_bin_widths_compare_as_rates() {
        let t = Thresholds::default();
        let f: Figure = |r| r.throughput.acked_msgs_per_s;
        let s: Option<PerBin> = Some(|r| &r.series.acked);
        // BASE: per-second bins (schema 1). NEW: the same 1000 msgs/s in 10 ms bins.
        let b = report(1000.0, 6, 10.0);
        let mut n = report(1000.0, 0, 10.0);
        n.series.bin_s = 0.01;
        n.series.acked = vec![10; 600];
        let r = speed_row(&t, "v", "acked", Better::Higher, 5.0, &[&b], &[&n], f, s);
        assert_eq!(r.verdict, Verdict::Ok, "{r:?}");
        assert!(r.evidence.contains("(5 vs 5 s)"), "{}", r.evidence);
        // 20 % fewer per 10 ms bin is a regression.
        n.series.acked = vec![8; 600];
        let r = speed_row(&t, "v", "acked", Better::Higher, 5.0, &[&b], &[&n], f, s);
        assert_eq!(r.verdict, Verdict::Regression, "{r:?}");
    }

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
    #[test]
    fn counts_fail_only_when_asked() {
        let mut b = report(1.0, 1, 1.0);
        b.counts.lost = 0;
        let mut n = b.clone();
        n.counts.lost = 4;
        let r = count_row("v", "lost", true, &[&b], &[&n], |r| r.counts.lost);
        assert_eq!(r.verdict, Verdict::Regression);
        assert_eq!(change(&r), "+4");
        let r = count_row("v", "lost", false, &[&b], &[&n], |r| r.counts.lost);
        assert_eq!(r.verdict, Verdict::Ok);
        let _ = row(&[r], "lost");
    }
}
