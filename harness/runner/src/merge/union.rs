//! One variant's histories joined: every shard's history files and latency logs linked (or
//! copied) into the merged run's history folder, so the checker reads their union; the
//! variant's start is the earliest shard's (all on the real-time clock).

use std::path::Path;

use mq_results::VariantDir;

use super::partials::Partial;
use super::MergeError;

/// What the merged folder takes from a shard's variant folder: histories, latency logs,
/// worker logs and assignment files. Not `start_ns` (merged apart), not the broker depth
/// (each shard sampled the one broker through its own group) nor a dedup store.
fn taken(name: &str) -> bool {
    (name.starts_with("producer-") || name.starts_with("consumer-") || name.starts_with("stage-"))
        && [".hist", ".hlog", ".log", ".jsonl"]
            .iter()
            .any(|e| name.ends_with(e))
}

/// Links every shard's files of `variant` into `out`; the earliest start_ns, None when no
/// shard's load started. Two shards holding one file name is a foreign or repeated shard.
pub fn join(
    partials: &[Partial],
    variant: &str,
    out: &VariantDir,
) -> Result<Option<u64>, MergeError> {
    std::fs::create_dir_all(out.path()).map_err(|e| MergeError::io(out.path(), e))?;
    let mut start: Option<u64> = None;
    for p in partials {
        let src = p.dir.variant(variant);
        if let Some(t) = src.read_start_ns() {
            start = Some(start.map_or(t, |s| s.min(t)));
        }
        let entries = match std::fs::read_dir(src.path()) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(MergeError::io(src.path(), e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| MergeError::io(src.path(), e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !taken(&name) {
                continue;
            }
            let to = out.path().join(&name);
            if to.exists() {
                return Err(MergeError::Input(format!(
                    "{}: {name} is already in the merge from another shard: one worker in two \
                     shards (a foreign or repeated shard)",
                    src.path().display()
                )));
            }
            link(&entry.path(), &to)?;
        }
    }
    if let Some(t) = start {
        std::fs::write(out.start_ns(), t.to_string())
            .map_err(|e| MergeError::io(&out.start_ns(), e))?;
    }
    Ok(start)
}

/// A hard link where the folders share a file system, else a copy.
fn link(from: &Path, to: &Path) -> Result<(), MergeError> {
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| MergeError::io(from, e))
}

/// The sum of a shard's consumers' same-shard latency logs for `variant`.
pub fn same_shard(p: &Partial, variant: &str) -> Result<hdrhistogram::Histogram<u64>, MergeError> {
    let mut h = mq_checker::new_histogram();
    let dir = p.dir.variant(variant);
    let suffix = format!(".{}", mq_core::shard::SAME_SHARD_LOG);
    let Ok(entries) = std::fs::read_dir(dir.path()) else {
        return Ok(h);
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("consumer-") && name.ends_with(&suffix) {
            let log = mq_checker::read_log(&entry.path())
                .map_err(|e| MergeError::Check(e.to_string()))?;
            h.add(&log)
                .map_err(|e| MergeError::Check(format!("{}: {e:?}", entry.path().display())))?;
        }
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::taken;

    #[test]
    fn histories_and_logs_are_taken_and_per_shard_files_are_not() {
        for name in [
            "producer-0.hist",
            "consumer-2-r1.hist",
            "consumer-0.hlog",
            "consumer-0.same-shard.hlog",
            "producer-1.log",
            "consumer-0.hist.assign.jsonl",
        ] {
            assert!(taken(name), "{name}");
        }
        for name in [
            "start_ns",
            "broker-depth.jsonl",
            "dedup.sqlite",
            "fault-1-kill-broker.log",
        ] {
            assert!(!taken(name), "{name}");
        }
    }
}
