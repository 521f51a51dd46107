//! The spread over repetitions (`bench run --repeat N` writes `DIR/rep-1/` … `DIR/rep-N/`):
//! `DIR/summary.md` with the median, min and max of the key figures. Each repetition has its own
//! report; `compare` reads such a folder as N repetitions.

use std::path::PathBuf;

use anyhow::Context;
use mq_checker::Report;
use mq_results::RunDir;

use crate::doc::{Align::*, Table, Text};
use crate::stats::median;
use crate::summary as markdown;
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

/// The spread of the key figures over repetitions, a row per variant of the first.
pub fn table(reps: &[Loaded]) -> Table {
    let mut t = Table::new(
        "Repetitions",
        &[
            ("variant", Left),
            ("reps", Right),
            ("acked msg/s", Right),
            ("delivered msg/s", Right),
            ("publish p99 (µs)", Right),
            ("end-to-end p50 (µs)", Right),
            ("end-to-end p99 (µs)", Right),
            ("lost (sum)", Right),
            ("duplicated (sum)", Right),
            ("reordered (sum)", Right),
        ],
    );
    let Some(first) = reps.first() else {
        return t;
    };
    for v in &first.results.variants {
        let rs: Vec<&Report> = reps
            .iter()
            .filter_map(|l| {
                l.results
                    .variants
                    .iter()
                    .find(|x| x.name == v.name)
                    .and_then(|x| x.report.as_ref())
            })
            .collect();
        let mut row: Vec<Text> = vec![v.name.as_str().into(), rs.len().to_string().into()];
        if !rs.is_empty() {
            let col = |f: fn(&Report) -> f64| {
                Text::plain(spread(&rs.iter().map(|r| f(r)).collect::<Vec<_>>()))
            };
            let sum = |f: fn(&Report) -> u64| {
                Text::plain(rs.iter().map(|r| f(r)).sum::<u64>().to_string())
            };
            row.extend([
                col(|r| r.throughput.acked_msgs_per_s),
                col(|r| r.throughput.delivered_msgs_per_s),
                col(|r| r.latency.publish.p99_us),
                col(|r| r.latency.end_to_end.p50_us),
                col(|r| r.latency.end_to_end.p99_us),
                sum(|r| r.counts.lost),
                sum(|r| r.counts.duplicated),
                sum(|r| r.counts.reordered),
            ]);
        }
        t.rows.push(row);
    }
    t
}

/// The Markdown spread of the key figures over repetitions (the folder's summary.md).
pub fn summary(reps: &[Loaded]) -> String {
    let name = reps
        .first()
        .map_or("", |l| l.results.scenario.name.as_str());
    let n = reps.len();
    markdown::blocks(&[
        format!("# {name} × {n} repetitions\n"),
        format!("Median [min … max] (± half the range, % of the median) over the repetitions in `rep-1/` … `rep-{n}/`; each has its own summary.md and report.html.\n"),
        markdown::table(&table(reps)),
    ])
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
