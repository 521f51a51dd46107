//! `history = "full"` and `"intervals"` on small runs with kills (SysV, SysV in the shape of
//! scenarios/ordering.toml, and the log; no external broker): the events a real run recorded in full, recorded again as intervals, give the
//! checker every count the same; and runs recorded as intervals are recounted alike by
//! scripts/recount.py.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use mq_checker::{check, Counts, Input};
use mq_core::history::{History, HistoryMode, HistoryReader};

const SCENARIO: &str = r#"
name = "history-modes"
[workload]
duration = "3s"
rate = 2000
keys = 2
processing = "2ms"       # slower than the rate: a killed consumer holds messages
drain_timeout = "5s"

[[variants]]
name = "sysv-full"
backend = "sysv"
workload = { history = "full" }
faults = [ { action = "kill-consumer", at = "1.2s" }, { action = "restart-consumer", at = "1.7s" } ]

[[variants]]
name = "log-full"
backend = "log"
producer_ack = "all"
consumer_ack = "after-process"
workload = { history = "full", processing = "100us" }
faults = [
  { action = "kill-broker", at = "1s" },
  { action = "restart-broker", at = "1.5s" },
  { action = "kill-consumer", at = "2s" },
  { action = "restart-consumer", at = "2.3s" },
]

[[variants]]
name = "ordering-full"           # scenarios/ordering.toml's shape, with a consumer kill
backend = "sysv"
workload = { history = "full", producers = 4, consumers = 2, partitions = 4, keys = 16, processing = "100us" }
faults = [ { action = "kill-consumer", at = "1s" }, { action = "restart-consumer", at = "1.5s" } ]

[[variants]]
name = "sysv-intervals"
backend = "sysv"
faults = [ { action = "kill-consumer", at = "1.2s" }, { action = "restart-consumer", at = "1.7s" } ]
"#;

/// The checker's input for the histories in `dir` (as the run wrote them or re-recorded).
fn input(dir: &Path, start_ns: u64, producers: u32, keys: u32) -> Input {
    let files = |role: &str| {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy();
                name.starts_with(role) && name.ends_with(".hist")
            })
            .collect();
        v.sort();
        v
    };
    Input {
        producer_files: files("producer-"),
        consumer_files: files("consumer-"),
        depth_file: None,
        dedup_store: None,
        start_ns,
        warmup_ns: 0,
        message_size: 100,
        producers,
        consumers: 1, // every scenario here reads back
        keys,
    }
}

/// Every history of `from` recorded again, event by event, as intervals into `to`; the bytes
/// of both.
fn rerecord(from: &Input, to: &Path) -> (u64, u64) {
    let (mut before, mut after) = (0, 0);
    for path in from.producer_files.iter().chain(&from.consumer_files) {
        let mut r = HistoryReader::open(path).unwrap();
        assert_eq!(r.version, 1, "{}", path.display());
        let out = to.join(path.file_name().unwrap());
        let mut h = History::create(&out, r.header, HistoryMode::Intervals, from.keys).unwrap();
        while let Some(rec) = r.next_record().unwrap() {
            h.record(rec).unwrap();
        }
        h.finish().unwrap();
        before += std::fs::metadata(path).unwrap().len();
        after += std::fs::metadata(&out).unwrap().len();
    }
    (before, after)
}

#[test]
fn full_and_intervals_histories_of_runs_with_kills_give_identical_counts() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "s.toml", SCENARIO);
    let out = dir.path().join("run");
    let o = run_quiet(&scenario, &out);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(matches!(o.status.code(), Some(0 | 1)), "bench: {stderr}");
    let r = results(&out);
    for (i, name, producers, keys) in [
        (0, "sysv-full", 1, 2),
        (1, "log-full", 1, 2),
        (2, "ordering-full", 4, 16),
    ] {
        let v = &r["variants"][i];
        assert_eq!(v["name"], name);
        assert!(
            v["faults"]
                .as_array()
                .unwrap()
                .iter()
                .all(|f| f["ok"] == true),
            "{v}"
        );
        let hist = out.join(v["history_dir"].as_str().unwrap());
        let start_ns: u64 = std::fs::read_to_string(hist.join("start_ns"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let full = input(&hist, start_ns, producers, keys);
        let again = tempfile::tempdir().unwrap();
        let (full_bytes, bytes) = rerecord(&full, again.path());
        let intervals = input(again.path(), start_ns, producers, keys);
        let (a, b): (Counts, Counts) = (
            check(&full).unwrap().counts,
            check(&intervals).unwrap().counts,
        );
        assert_eq!(a, b, "{name}: full vs intervals");
        let reported: Counts = serde_json::from_value(counts(&r, i)).unwrap();
        assert_eq!(a, reported, "{name}: the run's own counts");
        assert!(a.sent > 3000 && a.delivered > 0, "{name}: {a:?}");
        assert!(
            bytes * 5 < full_bytes,
            "{name}: {bytes} vs {full_bytes} bytes"
        );
    }
    // The SysV consumer kill loses what the killed consumer held: an anomaly to count alike.
    assert!(u(&counts(&r, 0), "lost") > 0, "{}", counts(&r, 0));
    // The run written as intervals: its files are version 2, and the Python recount agrees.
    let v = &r["variants"][3];
    let hist = out.join(v["history_dir"].as_str().unwrap());
    let files = input(&hist, 0, 1, 2);
    for p in files.producer_files.iter().chain(&files.consumer_files) {
        assert_eq!(
            HistoryReader::open(p).unwrap().version,
            2,
            "{}",
            p.display()
        );
    }
    assert!(u(&counts(&r, 3), "lost") > 0, "{}", counts(&r, 3));
    assert_recount_matches(&out);
}

#[test]
fn history_off_writes_no_history_and_checks_nothing() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(
        dir.path(),
        "s.toml",
        r#"
name = "history-off"
[workload]
messages = 2000
history = "off"
[[variants]]
name = "sysv"
backend = "sysv"
"#,
    );
    let out = dir.path().join("run");
    let o = run_quiet(&scenario, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = results(&out);
    let v = &r["variants"][0];
    assert_eq!(v["status"], "ok", "{v}");
    assert!(v["report"].is_null(), "{v}");
    assert_eq!(v["contract_note"], "history = \"off\": nothing was checked");
    let hist = out.join(v["history_dir"].as_str().unwrap());
    let files: Vec<String> = std::fs::read_dir(&hist)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!files.iter().any(|f| f.ends_with(".hist")), "{files:?}");
    assert!(files.iter().any(|f| f == "summary.md") || out.join("summary.md").exists());
}

#[test]
fn keep_history_false_removes_the_checked_histories_and_keeps_the_counts() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(
        dir.path(),
        "s.toml",
        r#"
name = "history-gone"
[workload]
messages = 2000
keep_history = false
[[variants]]
name = "sysv"
backend = "sysv"
"#,
    );
    let out = dir.path().join("run");
    let o = run_quiet(&scenario, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = results(&out);
    assert_eq!(u(&counts(&r, 0), "delivered"), 2000);
    let hist = out.join(r["variants"][0]["history_dir"].as_str().unwrap());
    let left: Vec<String> = std::fs::read_dir(&hist)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".hist") || f.ends_with(".hlog"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(hist.join("start_ns").exists());
}

#[test]
fn a_run_whose_histories_would_not_fit_is_refused_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(
        dir.path(),
        "s.toml",
        r#"
name = "too-big"
[workload]
duration = "7d"
rate = 100000000         # 7 days at 10^8 msgs/s × 96 B: 5.8 PB of full history
history = "full"
[[variants]]
name = "sysv"
backend = "sysv"
"#,
    );
    let out = dir.path().join("run");
    let o = run_quiet(&scenario, &out);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("its histories would take about 58060") && stderr.contains("MB free"),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing may be created");
}

/// A small tmpfs mounted at `at` for the test's life (None without the right to mount).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_history_disk_that_fills_mid_run_gives_a_clear_error_and_valid_results() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // The histories get a 48 MiB file system of their own; a full-rate SysV run fills it with
    // full (version 1) histories in about a second.
    let Some(_fs) = Tmpfs::mount(&out.join("history"), "48m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN)");
        return;
    };
    let scenario = write(
        dir.path(),
        "s.toml",
        "name = \"disk-full\"\n[workload]\nduration = \"20s\"\nhistory = \"full\"\n\
         [[variants]]\nname = \"sysv\"\nbackend = \"sysv\"\n",
    );
    let o = run_quiet(&scenario, &out);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{:?}: {stderr}",
        o.status
    );
    let r = results(&out);
    let v = &r["variants"][0];
    let reason = v["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("No space left on device"),
        "the reason names the full disk: {v}"
    );
    // What was recorded before the disk filled is checked, and adds up.
    let c = counts(&r, 0);
    assert!(u(&c, "sent") > 0, "{c}");
    assert_eq!(
        u(&c, "sent"),
        u(&c, "acked") + u(&c, "failed") + u(&c, "not_sent") + u(&c, "unknown"),
        "{c}"
    );
    assert_eq!(u(&c, "lost"), 0, "{c}");
}
