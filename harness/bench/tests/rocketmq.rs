//! RocketMQ through `bench run`, judged by the contract each setting claims: sync sends on a
//! SYNC_FLUSH broker with commits after processing lose no acked message through a broker kill
//! and restart and a consumer kill; oneway sends with commits before processing keep their
//! at-most-once contract (their loss allowed). Managed brokers on ports 17400 and 17420.

mod common;

use common::*;

const SCENARIO: &str = r#"
name = "rocketmq-faults"
[workload]
duration = "6s"
rate = 1000
partitions = 2
keys = 8
processing = "200us"
drain_timeout = "20s"
ack_timeout = "20s"

[[variants]]
name = "rocketmq-safe"
backend = "rocketmq"
producer_ack = "leader"
durability = "persistent"
consumer_ack = "after-process"
options = { port = 17400 }
faults = [
  { action = "kill-broker", at = "2s" },
  { action = "restart-broker", at = "3s" },
  { action = "kill-consumer", at = "4.5s" },
  { action = "restart-consumer", at = "5s" },
]

[[variants]]
name = "rocketmq-at-most-once"
backend = "rocketmq"
producer_ack = "none"
durability = "memory"
consumer_ack = "auto"
options = { port = 17420 }
faults = [
  { action = "kill-consumer", at = "3s" },
  { action = "restart-consumer", at = "3.5s" },
]
"#;

#[test]
fn sync_send_sync_flush_commit_after_loses_nothing_acked_and_at_most_once_keeps_its_contract() {
    if !installed("rocketmq") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "s.toml", SCENARIO);
    let out = dir.path().join("run");
    let o = run_quiet(&scenario, &out);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "bench exit {:?}: {stderr}",
        o.status
    );
    let r = results(&out);
    for (i, v) in r["variants"].as_array().unwrap().iter().enumerate() {
        assert_eq!(v["status"], "ok", "{}: {stderr}", v["name"]);
        let c = counts(&r, i);
        assert_eq!(
            u(&c, "sent"),
            u(&c, "acked") + u(&c, "failed") + u(&c, "not_sent") + u(&c, "unknown"),
            "{c}"
        );
        assert_eq!(u(&c, "unexpected"), 0, "{c}");
        // Sync FIFO sends on SYNC_FLUSH are one fsync-bound round trip per queue at a time:
        // a few hundred a second here, and none while the broker restarts.
        assert!(u(&c, "acked") > 100, "{c}");
        assert!(
            v["faults"]
                .as_array()
                .unwrap()
                .iter()
                .all(|f| f["ok"] == true),
            "{}",
            v["faults"]
        );
        assert_eq!(v["contract_kept"], true, "{}: {c}", v["name"]);
        eprintln!("{}: {c}", v["name"]);
    }
    let safe = counts(&r, 0);
    assert_eq!(u(&safe, "lost"), 0, "{safe}");
    assert_eq!(u(&safe, "reordered"), 0, "{safe}");
    assert_eq!(r["variants"][0]["faults"].as_array().unwrap().len(), 4);
    assert_recount_matches(&out);
}
