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

#[cfg(test)]
mod latency_tests {
    use std::time::Duration;

    use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
    use hdrhistogram::serialization::V2DeflateSerializer;

    /// Writes `values` (ns) as an interval log of one-second intervals, 1000 values each.
    fn write_log(path: &std::path::Path, values: &[u64]) {
        let mut out = Vec::new();
        let mut ser = V2DeflateSerializer::new();
        let mut log = IntervalLogWriterBuilder::new()
            .begin_log_with(&mut out, &mut ser)
            .unwrap();
        for (i, chunk) in values.chunks(1000).enumerate() {
            let mut h = mq_checker::new_histogram();
            chunk.iter().for_each(|&v| h.record(v).unwrap());
            let at = Duration::from_secs(i as u64);
            log.write_histogram(&h, at, Duration::from_secs(1), Tag::new("end-to-end"))
                .unwrap();
        }
        drop(log);
        std::fs::write(path, out).unwrap();
    }

    /// A small deterministic generator (xorshift) of latencies in `lo..hi` ns.
    fn latencies(n: usize, lo: u64, hi: u64, mut seed: u64) -> Vec<u64> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                lo + seed % (hi - lo)
            })
            .collect()
    }

    #[test]
    fn the_merged_p99_is_the_p99_of_the_concatenated_raw_latencies_not_an_average() {
        let dir = tempfile::tempdir().unwrap();
        // Three shards with unlike latencies: fast, middling, slow with a tail.
        let shards = [
            latencies(5000, 50_000, 400_000, 1),
            latencies(3000, 200_000, 2_000_000, 2),
            latencies(2000, 1_000_000, 90_000_000, 3),
        ];
        let mut merged = mq_checker::new_histogram();
        let mut p99s = Vec::new();
        for (i, raw) in shards.iter().enumerate() {
            let path = dir.path().join(format!("consumer-{i}.hlog"));
            write_log(&path, raw);
            let h = mq_checker::read_log(&path).unwrap();
            assert_eq!(h.len(), raw.len() as u64);
            p99s.push(h.value_at_quantile(0.99) as f64);
            merged.add(&h).unwrap();
        }
        let mut all: Vec<u64> = shards.concat();
        all.sort_unstable();
        let raw_p99 = all[(all.len() * 99).div_ceil(100) - 1] as f64;
        let p99 = mq_checker::percentiles(&merged).p99_us * 1e3;
        // Three significant digits: within 0.1 % (plus one unit of rounding).
        assert!(
            (p99 - raw_p99).abs() <= raw_p99 * 1e-3 + 1.0,
            "{p99} vs {raw_p99}"
        );
        let averaged = p99s.iter().sum::<f64>() / 3.0;
        assert!(
            (averaged - raw_p99).abs() > raw_p99 * 0.1,
            "averaging would be {averaged}"
        );
        assert_eq!(merged.len(), all.len() as u64);
    }
}
