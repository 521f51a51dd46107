//! The spread over repetitions (`bench run --repeat N` writes `DIR/rep-1/` … `DIR/rep-N/`):
//! `DIR/summary.md` with the median, min and max of the key figures. Each repetition has its own
//! report; `compare` reads such a folder as N repetitions.

use std::fmt::Write;
use std::path::PathBuf;

use anyhow::Context;
use mq_results::RunDir;

use crate::stats::median;
use crate::{load, Loaded};

fn spread(v: &[f64]) -> String {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let m = median(v);
    let f = |x: f64| {
        if x.abs() >= 100.0 {
            format!("{x:.0}")
        } else {
            format!("{x:.2}")
        }
    };
    let spread = if m != 0.0 {
        format!(" (±{:.1} %)", (max - min) / 2.0 / m * 100.0)
    } else {
        String::new()
    };
    format!("{} [{} … {}]{spread}", f(m), f(min), f(max))
}

/// The Markdown spread of the key figures over repetitions.
pub fn summary(reps: &[Loaded]) -> String {
    let mut s = String::new();
    let first = &reps[0].results;
    let _ = writeln!(
        s,
        "# {} × {} repetitions\n",
        first.scenario.name,
        reps.len()
    );
    let _ = writeln!(
        s,
        "Median [min … max] (± half the range, % of the median) over the repetitions in `rep-1/` … `rep-{}/`; each has its own summary.md and report.html.\n",
        reps.len()
    );
    let _ = writeln!(
        s,
        "| variant | reps | acked msg/s | delivered msg/s | publish p99 (µs) | end-to-end p50 (µs) | end-to-end p99 (µs) | lost (sum) | duplicated (sum) | reordered (sum) |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for v in &first.variants {
        let rs: Vec<_> = reps
            .iter()
            .filter_map(|l| {
                l.results
                    .variants
                    .iter()
                    .find(|x| x.name == v.name)
                    .and_then(|x| x.report.as_ref())
            })
            .collect();
        if rs.is_empty() {
            let _ = writeln!(s, "| {} | 0 | | | | | | | | |", v.name);
            continue;
        }
        let col = |f: fn(&mq_checker::Report) -> f64| {
            spread(&rs.iter().map(|r| f(r)).collect::<Vec<_>>())
        };
        let sum = |f: fn(&mq_checker::Report) -> u64| rs.iter().map(|r| f(r)).sum::<u64>();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            v.name,
            rs.len(),
            col(|r| r.throughput.acked_msgs_per_s),
            col(|r| r.throughput.delivered_msgs_per_s),
            col(|r| r.latency.publish.p99_us),
            col(|r| r.latency.end_to_end.p50_us),
            col(|r| r.latency.end_to_end.p99_us),
            sum(|r| r.counts.lost),
            sum(|r| r.counts.duplicated),
            sum(|r| r.counts.reordered),
        );
    }
    s
}

/// Writes `dir/summary.md` for the repetitions `reps` (run folders).
pub fn write_summary(dir: &RunDir, reps: &[RunDir]) -> anyhow::Result<PathBuf> {
    let loaded = reps
        .iter()
        .map(|r| load(r.path()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let path = dir.summary();
    std::fs::write(&path, summary(&loaded))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
