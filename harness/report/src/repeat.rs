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

/// The maximum each `rate = "max"` search found in each repetition, and their spread; `None`
/// when no repetition searched.
pub fn searches(reps: &[Loaded]) -> Option<Table> {
    let first = reps.first()?;
    if first.results.searches.is_empty() {
        return None;
    }
    let mut t = Table::new(
        "Maximum sustainable rate",
        &[
            ("variant", Left),
            ("max msg/s in each repetition", Right),
            ("median [min … max] (± %)", Right),
        ],
    );
    for s in &first.results.searches {
        let found: Vec<Option<u64>> = (reps.iter())
            .map(|l| {
                let same = l.results.searches.iter().find(|x| x.variant == s.variant);
                same.and_then(|x| x.max_rate)
            })
            .collect();
        let each: Vec<String> = (found.iter())
            .map(|m| m.map_or("none".to_owned(), |v| v.to_string()))
            .collect();
        let rates: Vec<f64> = found.iter().flatten().map(|&v| v as f64).collect();
        let all = if rates.is_empty() {
            "–".to_owned()
        } else {
            spread(&rates)
        };
        t.rows.push(vec![
            s.variant.as_str().into(),
            each.join(", ").into(),
            all.into(),
        ]);
    }
    Some(t)
}

/// The Markdown spread of the key figures over repetitions (the folder's summary.md).
pub fn summary(reps: &[Loaded]) -> String {
    let name = reps
        .first()
        .map_or("", |l| l.results.scenario.name.as_str());
    let n = reps.len();
    let mut out = vec![
        format!("# {name} × {n} repetitions\n"),
        format!("Median [min … max] (± half the range, % of the median) over the repetitions in `rep-1/` … `rep-{n}/`; each has its own summary.md and report.html.\n"),
        "## Repetitions\n".to_owned(),
        markdown::table(&table(reps)),
    ];
    if let Some(t) = searches(reps) {
        out.push(format!("## {}\n", t.title));
        out.push(markdown::table(&t));
    }
    markdown::blocks(&out)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rep(max: Option<u64>) -> Loaded {
        let mut results = crate::tables::tests::run(Vec::new());
        results.searches.push(
            serde_json::from_value(serde_json::json!({
                "variant": "kafka", "max_rate": max, "max_mb_per_s": null, "probes": [],
                "decision": "d", "measuring_s": 1.0, "total_s": 1.0
            }))
            .unwrap(),
        );
        Loaded {
            results,
            scenario_text: None,
        }
    }

    #[test]
    fn the_maximum_of_each_repetition_and_their_spread_have_a_section_of_their_own() {
        let reps = [
            rep(Some(50_000)),
            rep(Some(60_000)),
            rep(None),
            rep(Some(58_000)),
        ];
        let t = searches(&reps).unwrap();
        assert_eq!(
            t.column("max msg/s in each repetition"),
            ["50000, 60000, none, 58000"]
        );
        assert_eq!(
            t.column("median [min … max] (± %)"),
            ["58000 [50000 … 60000] (±8.6 %)"]
        );
        let md = summary(&reps);
        assert!(md.contains("## Repetitions\n") && md.contains("## Maximum sustainable rate\n"));
        let none = Loaded {
            results: crate::tables::tests::run(Vec::new()),
            scenario_text: None,
        };
        assert!(searches(&[none]).is_none());
    }
}
