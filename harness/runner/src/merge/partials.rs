//! The partial run folders given to `bench merge`: each read (`shard.json`, `results.json`) and
//! checked to be one shard of one run, every shard 1..=N present exactly once.

use std::path::{Path, PathBuf};

use mq_core::shard::{ShardInfo, SHARD_FILE};
use mq_results::{RunDir, RunResults};

use super::MergeError;

/// One shard's partial run folder.
pub struct Partial {
    pub dir: RunDir,
    pub info: ShardInfo,
    pub results: RunResults,
}

/// Reads every folder and checks they are the shards of one run; sorted by shard index.
pub fn read(dirs: &[PathBuf]) -> Result<Vec<Partial>, MergeError> {
    if dirs.is_empty() {
        return Err(MergeError::Input("no partial run folder given".into()));
    }
    let mut partials = dirs.iter().map(|d| one(d)).collect::<Result<Vec<_>, _>>()?;
    let first = &partials[0];
    let (run_id, sha, of) = (
        first.info.run_id,
        first.info.scenario_sha256.clone(),
        first.info.of,
    );
    let reference = first.dir.path().display().to_string();
    for p in &partials[1..] {
        let i = &p.info;
        let what = if i.run_id != run_id {
            Some(format!(
                "run id {} (expected {run_id}, from {reference})",
                i.run_id
            ))
        } else if i.scenario_sha256 != sha {
            Some(format!(
                "scenario sha256 {} (expected {sha}, from {reference})",
                i.scenario_sha256
            ))
        } else if i.of != of {
            Some(format!(
                "shard {}/{} of {} shards (expected {of}, from {reference})",
                i.shard, i.of, i.of
            ))
        } else {
            None
        };
        if let Some(what) = what {
            return Err(MergeError::Input(format!(
                "{}: a foreign shard: {what}",
                p.dir.path().display()
            )));
        }
    }
    partials.sort_by_key(|p| p.info.shard);
    for w in partials.windows(2) {
        if w[0].info.shard == w[1].info.shard {
            return Err(MergeError::Input(format!(
                "shard {}/{of} given twice: {} and {}",
                w[0].info.shard,
                w[0].dir.path().display(),
                w[1].dir.path().display()
            )));
        }
    }
    let missing: Vec<String> = (1..=of)
        .filter(|i| !partials.iter().any(|p| p.info.shard == *i))
        .map(|i| format!("{i}/{of}"))
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::Input(format!(
            "run {run_id}: missing shard(s) {} ({} of {of} given)",
            missing.join(", "),
            partials.len()
        )));
    }
    Ok(partials)
}

/// Waits up to `timeout` until every folder holds a finished shard (its `shard.json`, and a
/// `results.json` with `finished_at`); then [`read`] judges them (a late one is named there).
pub fn wait(dirs: &[PathBuf], timeout: std::time::Duration) {
    let deadline = std::time::Instant::now() + timeout;
    let finished = |d: &PathBuf| {
        d.join(SHARD_FILE).is_file()
            && RunResults::read(&RunDir::new(d).results()).is_ok_and(|r| r.finished_at.is_some())
    };
    while !dirs.iter().all(finished) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
}

/// One partial folder: its `shard.json` and `results.json`, each checked.
fn one(dir: &Path) -> Result<Partial, MergeError> {
    let path = dir.join(SHARD_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        MergeError::Input(format!(
            "{}: not a shard's partial run folder ({SHARD_FILE}: {e}); give the folders \
             `bench run --shard I/N` wrote",
            dir.display()
        ))
    })?;
    let info: ShardInfo = serde_json::from_str(&text)
        .map_err(|e| MergeError::Input(format!("{}: {e}", path.display())))?;
    if info.shard == 0 || info.shard > info.of || info.of > mq_core::shard::MAX_SHARDS {
        return Err(MergeError::Input(format!(
            "{}: shard {}/{}: valid is 1 ≤ shard ≤ of ≤ {}",
            path.display(),
            info.shard,
            info.of,
            mq_core::shard::MAX_SHARDS
        )));
    }
    let run = RunDir::new(dir);
    let results = RunResults::read(&run.results()).map_err(|e| MergeError::Input(e.to_string()))?;
    if results.run_id != info.run_id {
        return Err(MergeError::Input(format!(
            "{}: run id {} but {SHARD_FILE} says {}",
            run.results().display(),
            results.run_id,
            info.run_id
        )));
    }
    Ok(Partial {
        dir: run,
        info,
        results,
    })
}
