//! mq-report: everything built from results.json after a run: charts (SVG + PNG), report.html and
//! summary.md ([`generate`]), the spread over repeated runs ([`repeat`]), and the
//! comparison of two runs for CI ([`compare`]).
//!
//! Output is a function of results.json alone (plus scenario.toml when present): the same input
//! gives byte-identical files, so a report can be rebuilt and diffed.

pub mod charts;
pub mod compare;
pub mod cost;
pub mod dedup;
pub mod doc;
pub mod guarantees;
pub mod html;
pub mod offenders;
pub mod rebalance;
pub mod repeat;
pub mod review;
pub mod review_page;
pub mod scenario_diff;
pub mod shards;
pub mod stats;
pub mod summary;
pub mod sweep;
pub mod tables;

use std::path::{Path, PathBuf};

use anyhow::Context;
use mq_results::{FaultEvent, RunDir, RunResults};

pub use charts::Marker;

/// A run read back: the typed results, and the scenario.toml beside results.json when there is
/// one.
pub struct Loaded {
    pub results: RunResults,
    pub scenario_text: Option<String>,
}

/// Reads `results.json` (a file, or the one in a run folder).
pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    let file = if path.is_dir() {
        RunDir::new(path).results()
    } else {
        path.to_path_buf()
    };
    let results = RunResults::read(&file)?;
    for v in &results.variants {
        if let Some(rep) = &v.report {
            let w = rep.series.bin_s;
            anyhow::ensure!(
                w.is_finite() && w > 0.0,
                "{}: variant {:?}: series.bin_s = {w}: must be a positive number of seconds",
                file.display(),
                v.name
            );
        }
    }
    let scenario_text = file
        .parent()
        .and_then(|d| std::fs::read_to_string(RunDir::new(d).scenario()).ok());
    Ok(Loaded {
        results,
        scenario_text,
    })
}

/// The faults carried out as chart markers, each labelled as scheduled (`kill-broker@3s`).
pub fn markers(faults: &[FaultEvent]) -> Vec<Marker> {
    faults
        .iter()
        .filter(|f| f.t.is_finite())
        .map(|f| Marker {
            t: f.t,
            label: match f.ok {
                true => f.label.clone(),
                false => format!("{} (failed)", f.label),
            },
        })
        .collect()
}

/// What the charts draw, one entry per variant that produced a report.
pub fn series(l: &Loaded) -> Vec<charts::VariantSeries> {
    l.results
        .variants
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            let rep = v.report.as_ref()?;
            let hist = |s: &str| {
                if s.is_empty() {
                    None
                } else {
                    mq_checker::decode_histogram(s)
                }
            };
            Some(charts::VariantSeries {
                name: v.name.clone(),
                colour: i,
                bin_s: rep.series.bin_s,
                acked: rep.series.acked.clone(),
                delivered: rep.series.delivered.clone(),
                backlog: rep.series.backlog.clone(),
                depth: rep.broker_depth.iter().map(|d| (d.t, d.messages)).collect(),
                publish: hist(&rep.latency.publish_hdr),
                end_to_end: hist(&rep.latency.end_to_end_hdr),
                counts: rep.counts,
                markers: markers(&v.faults),
                pauses: v.rebalance.as_ref().map(|r| r.spans()).unwrap_or_default(),
            })
        })
        .collect()
}

/// summary.md of run `r`, as `bench run` also prints it.
pub fn summary_markdown(r: &RunResults) -> String {
    summary::markdown(&tables::summary(r))
}

/// Writes `charts/*.svg|png`, `report.html` and `summary.md` into run folder `dir` from its
/// results.json; a folder of repetitions (`rep-1/`, `rep-2/` …) gets one per repetition plus
/// a `summary.md` of their spread. Returns the files written.
pub fn generate(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = RunDir::new(path);
    if !dir.has_results() {
        let reps = dir.repetitions();
        anyhow::ensure!(
            !reps.is_empty(),
            "{}: no results.json and no rep-N/results.json: not a run folder",
            path.display()
        );
        let mut files = Vec::new();
        for rep in &reps {
            files.extend(generate(rep.path())?);
        }
        files.push(repeat::write_summary(&dir, &reps)?);
        return Ok(files);
    }
    let loaded = load(path)?;
    let r = &loaded.results;
    let tables = tables::summary(r);
    let summary = summary::markdown(&tables);
    let mut charts = charts::all(&series(&loaded))?;
    charts.extend(charts::sweep(&sweep::points(r))?);
    charts.extend(charts::cost(&cost::bars(r))?);
    charts.extend(charts::cpu(&cost::lines(r), r.machine.cores as u32)?);
    let page = html::page(r, &tables, loaded.scenario_text.as_deref(), &charts);

    let mut files = Vec::new();
    let chart_dir = dir.charts();
    std::fs::create_dir_all(&chart_dir)
        .with_context(|| format!("creating {}", chart_dir.display()))?;
    let mut write = |path: PathBuf, bytes: &[u8]| -> anyhow::Result<()> {
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        files.push(path);
        Ok(())
    };
    for c in &charts {
        write(dir.chart(c.name, "svg"), c.svg.as_bytes())?;
        write(dir.chart(c.name, "png"), &c.png)?;
    }
    write(dir.summary(), summary.as_bytes())?;
    write(dir.report_html(), page.as_bytes())?;
    Ok(files)
}
