//! Parallel processing in a consumer (`processing_threads`, `dispatch`), against the real
//! brokers: a consumer killed while its threads hold unfinished messages loses none that were
//! acknowledged when it acks or commits after processing (only what has finished is acked, and
//! a partition is committed only below its lowest unfinished offset); `dispatch = "any"`
//! reorders a partition, `"by-key"` keeps per-key order. SysV, without acks, loses what the
//! killed consumer's threads held.
//!
//! The consumers process slower than the producers send (4 threads × 5 ms = 800/s against
//! 1000/s), so at the kill every thread is busy and their queues are full: had those messages
//! been acked or committed on delivery, the kill would lose them.

mod common;

use std::path::Path;

use common::*;

fn run_scenario(dir: &Path, text: &str) -> serde_json::Value {
    let scenario = write(dir, "s.toml", text);
    let out = dir.join("run");
    let o = run_quiet(&scenario, &out);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "bench exit {:?}: {stderr}",
        o.status
    );
    let r = results(&out);
    assert!(
        r["variants"][0]["report"].is_object(),
        "no report: {stderr}"
    );
    r
}

/// A consumer with 4 busy threads killed at 1.5 s and restarted at 2 s, acking after processing.
fn killed_with_busy_threads(backend: &str, settings: &str) -> String {
    format!(
        r#"
name = "{backend}-threads-kill"
[workload]
duration = "3s"
rate = 1000
partitions = 2
keys = 8
processing = "5ms"
processing_threads = 4
dispatch = "any"
drain_timeout = "10s"
ack_timeout = "20s"
[[variants]]
name = "{backend}"
backend = "{backend}"
consumer_ack = "after-process"
{settings}
faults = [ {{ action = "kill-consumer", at = "1.5s" }}, {{ action = "restart-consumer", at = "2s" }} ]
"#
    )
}

/// Every acked message was delivered (lost = 0) after the kill, and the run kept its contract.
fn nothing_acked_lost(r: &serde_json::Value) -> serde_json::Value {
    let v = &r["variants"][0];
    let f = v["faults"].as_array().unwrap();
    assert!(f.len() == 2 && f.iter().all(|f| f["ok"] == true), "{f:?}");
    let c = counts(r, 0);
    assert!(u(&c, "acked") >= 2500, "{c}");
    assert_eq!(u(&c, "lost"), 0, "an acked message was lost: {c}");
    assert_eq!(u(&c, "unexpected"), 0, "{c}");
    assert_eq!(v["contract"], "at-least-once", "{v}");
    assert_eq!(v["contract_kept"], true, "{v}");
    c
}

#[test]
fn log_threads_commit_after_processing_loses_nothing_when_the_consumer_is_killed() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let text = killed_with_busy_threads(
        "log",
        "producer_ack = \"leader\"\ndurability = \"persistent\"",
    );
    let c = nothing_acked_lost(&run_scenario(dir.path(), &text));
    eprintln!("log, 4 threads, consumer killed: {c}");
}

#[test]
fn kafka_threads_commit_after_processing_loses_nothing_when_the_consumer_is_killed() {
    if !installed("kafka") {
        return;
    }
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let text =
        killed_with_busy_threads("kafka", "producer_ack = \"all\"\noptions = { port = 9797 }");
    let c = nothing_acked_lost(&run_scenario(dir.path(), &text));
    eprintln!("kafka, 4 threads, consumer killed: {c}");
}

#[test]
fn rabbitmq_threads_ack_after_processing_loses_nothing_when_the_consumer_is_killed() {
    if !installed("rabbitmq") {
        return;
    }
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let text = killed_with_busy_threads(
        "rabbitmq",
        "producer_ack = \"leader\"\ndurability = \"persistent\"\noptions = { port = 5797 }",
    );
    let c = nothing_acked_lost(&run_scenario(dir.path(), &text));
    eprintln!("rabbitmq, 4 threads, consumer killed: {c}");
}

#[test]
fn log_dispatch_any_reorders_and_by_key_keeps_key_order() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let r = run_scenario(
        dir.path(),
        r#"
name = "log-dispatch"
[workload]
messages = 20000
partitions = 2
keys = 8
processing = "20us..300us"
processing_threads = 4
drain_timeout = "10s"
[[variants]]
name = "any"
backend = "log"
consumer_ack = "after-process"
workload = { dispatch = "any" }
[[variants]]
name = "by-key"
backend = "log"
consumer_ack = "after-process"
workload = { dispatch = "by-key" }
"#,
    );
    let (any, by_key) = (counts(&r, 0), counts(&r, 1));
    for c in [&any, &by_key] {
        assert_eq!(u(c, "delivered"), 20000, "{c}");
        assert_eq!(u(c, "lost") + u(c, "duplicated"), 0, "{c}");
    }
    assert!(u(&any, "reordered") > 0, "any: {any}");
    assert_eq!(u(&by_key, "reordered"), 0, "by-key: {by_key}");
    eprintln!(
        "reordered: any {}, by-key {}",
        u(&any, "reordered"),
        u(&by_key, "reordered")
    );
}

#[test]
fn sysv_threads_lose_what_a_killed_consumer_held() {
    // SysV has no acknowledgement: msgrcv removed what the threads hold, so a kill loses it,
    // and the checker says so (the at-most-once contract allows it; nothing comes twice).
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let r = run_scenario(
        dir.path(),
        &killed_with_busy_threads("sysv", "").replace("consumer_ack = \"after-process\"", ""),
    );
    let v = &r["variants"][0];
    let c = counts(&r, 0);
    assert!(u(&c, "lost") > 0, "{c}");
    assert_eq!(u(&c, "duplicated"), 0, "{c}");
    assert_eq!(v["contract"], "at-most-once", "{v}");
    assert_eq!(v["contract_kept"], true, "{v}");
    eprintln!("sysv, 4 threads, consumer killed: {c}");
}
