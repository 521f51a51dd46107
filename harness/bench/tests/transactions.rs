//! Kafka transactions against real brokers: one of two transactional producers killed
//! mid-transaction (`kill-producer`, not restarted). Its open transaction is aborted by the
//! coordinator after `transaction_timeout_ms`; a `read_committed` consumer never sees it
//! (aborted > 0, aborted_visible 0) and, once the abort lets it past, gets every message the
//! other producer committed after it (nothing acked lost); a `read_uncommitted` one sees the
//! aborted messages (aborted_visible > 0, which breaks the contract). The histories alone
//! (scripts/recount.py) give the same counts.

mod common;

use std::path::Path;

use common::*;

/// 2000 msg/s per producer in transactions of 4000: commits at about 2 s and 4 s; the kill of
/// producer 0 at 3 s lands 2000 messages into its second transaction, 1 s from either commit, so
/// a kill up to 1 s late still finds it running and mid-transaction. (In CI a kill ran 0.6 s
/// late with the load's 3 s end and found producer 0 gone; another, 0.5 s late or more, landed
/// on the commit of a transaction of 2000 timed to end 0.5 s after the kill's time.) Producer 1
/// goes on to 5 s; its last transaction waits, for read_committed, behind producer 0's open one
/// until the coordinator aborts it.
fn scenario(port_committed: u16, port_uncommitted: u16) -> String {
    let variant = |name: &str, port: u16, extra: &str| {
        format!(
            r#"
[[variants]]
name = "{name}"
backend = "kafka"
producer_ack = "all"
consumer_ack = "after-process"
options = {{ port = {port}, transactional = true, transaction_size = 4000, transaction_timeout_ms = 5000{extra} }}
faults = [ {{ action = "kill-producer", at = "3s" }} ]
"#
        )
    };
    format!(
        r#"
name = "txn-kill"
[workload]
duration = "5s"
producers = 2
rate = 4000
partitions = 2
drain_timeout = "20s"
ack_timeout = "10s"
{}{}"#,
        variant("committed", port_committed, ""),
        variant(
            "uncommitted",
            port_uncommitted,
            ", isolation_level = \"read_uncommitted\""
        )
    )
}

fn run(dir: &Path) -> serde_json::Value {
    let scenario = write(dir, "s.toml", &scenario(19110, 19120));
    let out = dir.join("run");
    let o = run_quiet(&scenario, &out);
    let stderr = String::from_utf8_lossy(&o.stderr);
    // A broken contract is a finding, not a failed run.
    assert_eq!(o.status.code(), Some(0), "bench: {stderr}");
    assert_recount_matches(&out);
    results(&out)
}

/// Every send is acked, aborted or unknown (nothing refused here), and the checker marks the
/// variant transactional.
fn accounting(r: &serde_json::Value, i: usize) -> serde_json::Value {
    let v = &r["variants"][i];
    assert_eq!(v["report"]["transactional"], true, "{}", v["name"]);
    let f = v["faults"].as_array().unwrap();
    assert!(f.len() == 1 && f[0]["ok"] == true, "{f:?}");
    let c = counts(r, i);
    assert_eq!(
        u(&c, "sent"),
        u(&c, "acked") + u(&c, "failed") + u(&c, "not_sent") + u(&c, "unknown") + u(&c, "aborted"),
        "{c}"
    );
    assert_eq!(u(&c, "unexpected"), 0, "{c}");
    assert_eq!(u(&c, "lost"), 0, "{c}");
    assert_eq!(
        u(&c, "delivered"),
        u(&c, "acked") + u(&c, "aborted_visible"),
        "{c}"
    );
    // Producer 0's one commit before the kill, producer 1's whole load (5 s at 2000/s).
    assert!(u(&c, "acked") >= 4000 + 10000, "{c}");
    assert!(u(&c, "aborted") > 0, "the kill was mid-transaction: {c}");
    c
}

#[test]
fn a_killed_transactional_producer_s_open_transaction_is_seen_only_by_read_uncommitted() {
    if !installed("kafka") {
        return;
    }
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path());

    let committed = accounting(&r, 0);
    assert_eq!(u(&committed, "aborted_visible"), 0, "{committed}");
    assert_eq!(r["variants"][0]["contract_kept"], true);

    let uncommitted = accounting(&r, 1);
    assert!(u(&uncommitted, "aborted_visible") > 0, "{uncommitted}");
    assert_eq!(r["variants"][1]["contract_kept"], false);
    let note = r["variants"][1]["contract_note"].as_str().unwrap();
    assert!(
        note.contains("messages of aborted transactions delivered"),
        "{note}"
    );
    eprintln!("read_committed: {committed}\nread_uncommitted: {uncommitted}");
}
