//! The idempotent consumer (`consumer_dedup = "store"`) on the log, through a consumer's kill
//! and restart: committing processed offsets once a second leaves up to a second of processed
//! messages uncommitted when the consumer dies, so its replacement is handed them again.
//! Without the store they are duplicates; with it (and with it behind processing threads) they
//! are skipped, and nothing is lost.

mod common;

use common::*;

const SCENARIO: &str = r#"
name = "dedup"
[workload]
duration = "3s"
rate = 2000
processing = "200us"
drain_timeout = "10s"
[[faults]]
action = "kill-consumer"
at = "1.5s"
[[faults]]
action = "restart-consumer"
at = "2s"
[[variants]]
name = "plain"
backend = "log"
producer_ack = "leader"
durability = "persistent"
consumer_ack = "after-process"
options = { commit_interval_ms = 1000 }
[[variants]]
name = "store"
backend = "log"
producer_ack = "leader"
durability = "persistent"
consumer_ack = "after-process"
consumer_dedup = "store"
options = { commit_interval_ms = 1000 }
[[variants]]
name = "store-threads"
backend = "log"
producer_ack = "leader"
durability = "persistent"
consumer_ack = "after-process"
consumer_dedup = "store"
options = { commit_interval_ms = 1000 }
workload = { processing_threads = 4 }
"#;

#[test]
fn the_store_turns_redeliveries_after_a_consumer_kill_into_skips() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "s.toml", SCENARIO);
    let out = dir.path().join("run");
    let o = run_quiet(&scenario, &out);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "bench exit {:?}: {stderr}", o.status);
    let r = results(&out);
    for (i, v) in r["variants"].as_array().unwrap().iter().enumerate() {
        let kills = v["faults"].as_array().unwrap();
        assert!(
            kills.iter().all(|f| f["ok"] == true),
            "variant {i}: {kills:?}"
        );
        assert_eq!(u(&counts(&r, i), "unexpected"), 0);
    }

    let plain = counts(&r, 0);
    let v = &r["variants"][0];
    assert_eq!(v["contract"], "at-least-once");
    assert!(
        u(&plain, "duplicated") > 0,
        "the replacement is handed what was processed and not committed: {plain}"
    );
    assert_eq!(u(&plain, "lost"), 0, "{plain}");
    assert!(v["report"].get("dedup").is_none(), "{v}");

    // With and without processing threads (whose completions are marked as they come back).
    for i in [1, 2] {
        let store = counts(&r, i);
        let v = &r["variants"][i];
        assert_eq!(v["delivery"]["consumer_dedup"], "store");
        assert_eq!(v["contract"], "exactly-once");
        assert_eq!(u(&store, "duplicated"), 0, "{v}");
        assert_eq!(u(&store, "lost"), 0, "{v}");
        assert_eq!(v["contract_kept"], true, "{v}");
        let d = &v["report"]["dedup"];
        assert!(
            u(d, "skipped") > 0,
            "the redeliveries were skipped, not recorded: {v}"
        );
        assert_eq!(
            u(d, "processed"),
            u(&store, "delivered"),
            "every delivered message is in the store once: {d} {store}"
        );
    }
    assert!(out.join("history/store/dedup.sqlite").exists());
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("## Idempotent consumers"), "{summary}");
    // The histories and the store alone give the same counts (scripts/recount.py).
    assert_recount_matches(&out);
}
