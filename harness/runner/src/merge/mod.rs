//! `bench merge`: the partial run folders of a sharded run joined into one run folder. The
//! shards are checked to be one run (`partials.rs`), each variant's histories joined
//! (`union.rs`), and the checker run over the union, so a message produced in one shard and
//! consumed in another counts once; latency is the sum of every worker's HdrHistogram logs
//! (never an average of percentiles). results.json says it was merged, from which shards, and
//! how far their clocks may disagree.

mod partials;
mod union;

use std::path::{Path, PathBuf};

use mq_results::shards::{Merged, MergedClock, MergedShard, SameShard};
use mq_results::{EndedBy, RunDir, RunResults, VariantDir, VariantResult, VariantStatus};

pub use partials::Partial;

/// Why a merge failed: bad input (exit 2: not shards of one run, missing or repeated ones, an
/// output folder in use) or a failure while merging.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{0}")]
    Input(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("checking the merged histories: {0}")]
    Check(String),
}

impl MergeError {
    fn io(path: &Path, source: std::io::Error) -> MergeError {
        MergeError::Io {
            path: path.to_owned(),
            source,
        }
    }

    /// Whether the input was at fault (exit 2).
    pub fn is_input(&self) -> bool {
        matches!(self, MergeError::Input(_))
    }
}

/// How to merge.
pub struct MergeOptions {
    /// The merged run folder (must not hold a results.json yet).
    pub out: PathBuf,
    /// Clock offset bound above which cross-host end-to-end latency is unreliable, µs.
    pub clock_limit_us: i64,
    /// Wait up to this long for every shard to finish first (a merge Job started beside the
    /// shards' Job).
    pub wait: Option<std::time::Duration>,
}

/// Merges the shards in `dirs` into `opts.out`; writes its results.json and returns it.
pub fn merge(dirs: &[PathBuf], opts: &MergeOptions) -> Result<RunResults, MergeError> {
    if let Some(timeout) = opts.wait {
        partials::wait(dirs, timeout);
    }
    let partials = partials::read(dirs)?;
    let out = RunDir::new(&opts.out);
    if out.has_results() {
        return Err(MergeError::Input(format!(
            "{}: already holds a results.json; give --out a new folder",
            out.path().display()
        )));
    }
    std::fs::create_dir_all(out.path()).map_err(|e| MergeError::io(out.path(), e))?;
    let first = &partials[0];
    let scenario = first.dir.scenario();
    std::fs::copy(&scenario, out.scenario()).map_err(|e| MergeError::io(&scenario, e))?;
    let mut variants = Vec::new();
    let mut same_shard = Vec::new();
    for v in &first.results.variants {
        let per_shard = partials
            .iter()
            .map(|p| {
                p.results
                    .variants
                    .iter()
                    .find(|x| x.name == v.name)
                    .ok_or_else(|| {
                        MergeError::Input(format!(
                            "{}: no variant {:?} (shard 1 has it): not a shard of this run",
                            p.dir.path().display(),
                            v.name
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        variants.push(variant(&partials, &per_shard, &out.variant(&v.name))?);
        for p in &partials {
            let h = union::same_shard(p, &v.name)?;
            same_shard.push(SameShard {
                variant: v.name.clone(),
                shard: p.info.shard,
                end_to_end: mq_checker::percentiles(&h),
                end_to_end_hdr: mq_checker::encode_histogram(&h),
            });
        }
    }
    let results = RunResults {
        started_at: (partials.iter().map(|p| p.results.started_at.clone()).min())
            .unwrap_or_default(),
        finished_at: partials
            .iter()
            .filter_map(|p| p.results.finished_at.clone())
            .max(),
        partial: partials.iter().any(|p| p.results.partial),
        variants,
        searches: Vec::new(),
        shard: None,
        merged: Some(Merged {
            shards: first.info.of,
            partials: partials.iter().map(merged_shard).collect(),
            clock: clock(&partials, opts.clock_limit_us),
            same_shard,
        }),
        ..first.results.clone()
    };
    results
        .write(&out)
        .map_err(|e| MergeError::Check(e.to_string()))?;
    Ok(results)
}

fn merged_shard(p: &Partial) -> MergedShard {
    MergedShard {
        shard: p.info.shard,
        host: p.info.host.clone(),
        dir: p.dir.path().display().to_string(),
        started_at: p.results.started_at.clone(),
    }
}

/// How far the shards' clocks may disagree, against the limit.
fn clock(partials: &[Partial], limit_us: i64) -> MergedClock {
    let infos: Vec<_> = partials.iter().map(|p| p.info.clone()).collect();
    let bound = mq_core::shard::offset_bound_us(&infos);
    let mut hosts: Vec<&str> = infos.iter().map(|i| i.host.as_str()).collect();
    hosts.dedup();
    let note = match bound {
        Some(0) => format!(
            "Every shard ran on one host ({}): one clock.",
            hosts.join(", ")
        ),
        Some(_) => format!(
            "Hosts {}; the bound is the sum of the two largest adjtimex maxerror figures.",
            hosts.join(", ")
        ),
        None => format!(
            "Hosts {}; some shard's clock was not synchronised (adjtimex), so no bound holds.",
            hosts.join(", ")
        ),
    };
    MergedClock {
        offset_bound_us: bound,
        limit_us,
        end_to_end_reliable: bound.is_some_and(|b| b <= limit_us),
        note,
    }
}

/// One variant over every shard: its histories joined and checked as one.
fn variant(
    partials: &[Partial],
    per_shard: &[&VariantResult],
    out: &VariantDir,
) -> Result<VariantResult, MergeError> {
    let mut v = per_shard[0].clone();
    v.cost = None; // per host; see each shard's results.json
    v.rebalance = None;
    v.workers = per_shard.iter().flat_map(|s| s.workers.clone()).collect();
    let start = union::join(partials, &v.name, out)?;
    v.faults = faults(partials, per_shard, &v.name, start);
    let worst = |st: VariantStatus| per_shard.iter().find(|s| s.status == st);
    if let Some(s) = worst(VariantStatus::Failed).or(worst(VariantStatus::Interrupted)) {
        v.status = s.status;
        v.reason = s.reason.clone();
    }
    let (Some(start_ns), Some(w)) = (start, v.workload.clone()) else {
        v.report = None;
        return Ok(v);
    };
    let input = mq_checker::Input {
        producer_files: out.histories("producer"),
        consumer_files: out.histories("consumer"),
        depth_file: None,
        dedup_store: None,
        start_ns,
        warmup_ns: w.warmup.0.as_nanos() as u64,
        message_size: w.message_size,
        producers: w.producers,
        consumers: w.consumers,
        keys: w.keys(),
    };
    let report = mq_checker::check(&input).map_err(|e| MergeError::Check(e.to_string()))?;
    crate::variant::judge(&mut v, &report);
    if v.producer_only() {
        v.ended_by = Some(EndedBy::Produced);
        v.report = Some(report);
        return Ok(v);
    }
    let c = &report.counts;
    v.ended_by = Some(ended_by(per_shard, c.lost));
    if v.status == VariantStatus::Ok {
        v.reason = (c.lost > 0).then(|| {
            format!(
                "merged from {} shards: {} acked messages were never delivered",
                partials.len(),
                c.lost
            )
        });
    }
    v.report = Some(report);
    Ok(v)
}

/// Every shard's faults, their times moved from the shard's start to the merged start.
fn faults(
    partials: &[Partial],
    per_shard: &[&VariantResult],
    variant: &str,
    start: Option<u64>,
) -> Vec<mq_results::FaultEvent> {
    let mut all = Vec::new();
    for (p, s) in partials.iter().zip(per_shard) {
        let shift = match (start, p.dir.variant(variant).read_start_ns()) {
            (Some(m), Some(t)) => (t as f64 - m as f64) / 1e9,
            _ => 0.0,
        };
        all.extend(s.faults.iter().cloned().map(|mut f| {
            f.t += shift;
            f
        }));
    }
    all.sort_by(|a, b| a.t.total_cmp(&b.t));
    all
}

/// How the merged variant ended: interrupted if a shard was; drained when nothing acked was
/// lost (a shard alone cannot tell, so each ends by its drain timeout); else the first
/// shard's other ending, or the drain timeout.
fn ended_by(per_shard: &[&VariantResult], lost: u64) -> EndedBy {
    let interrupted = per_shard
        .iter()
        .any(|s| s.ended_by == Some(EndedBy::Interrupted));
    match (interrupted, lost) {
        (true, _) => EndedBy::Interrupted,
        (false, 0) => EndedBy::Drained,
        _ => (per_shard.iter())
            .filter_map(|s| s.ended_by)
            .find(|e| *e != EndedBy::Drained && *e != EndedBy::DrainTimeout)
            .unwrap_or(EndedBy::DrainTimeout),
    }
}
