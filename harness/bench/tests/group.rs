//! Kafka consumer groups against a real broker: a member killed mid-run, its partitions move to
//! the other member within the session timeout (read from the members' assignment files), and
//! commit-after-processing loses nothing acked (what the dead member had not committed is
//! delivered again: duplicates, counted).

mod common;

use std::path::Path;

use common::*;

/// How long after its session expired a dead member's partitions may still wait for the
/// survivor on a loaded machine.
const SLACK_MS: u64 = 30_000;

/// The members' session timeout: the broker's smallest by default.
const SESSION_MS: u64 = 6000;

/// (at_ns, event, partitions) of one member's assignment file.
fn changes(dir: &Path, consumer: u16) -> Vec<(u64, String, Vec<u64>)> {
    let path = dir.join(format!("consumer-{consumer}.hist.assign.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    (text.lines())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["consumer"], consumer, "{l}");
            let ps = v["partitions"].as_array().unwrap();
            let ps = ps.iter().map(|p| p.as_u64().unwrap()).collect();
            (
                v["at_ns"].as_u64().unwrap(),
                v["event"].as_str().unwrap().to_owned(),
                ps,
            )
        })
        .collect()
}

#[test]
fn a_killed_group_member_s_partitions_move_to_the_other_within_the_session_timeout() {
    if !installed("kafka") {
        return;
    }
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(
        dir.path(),
        "s.toml",
        &format!(
            r#"name = "group"
[workload]
duration = "10s"
rate = 1000
partitions = 4
consumers = 2
processing = "200us"
drain_timeout = "20s"
ack_timeout = "20s"
[[variants]]
name = "kafka-group"
backend = "kafka"
producer_ack = "all"
consumer_ack = "after-process"
options = {{ port = 9697, assignment = "group", session_timeout_ms = {SESSION_MS}, heartbeat_interval_ms = 1000 }}
faults = [{{ action = "kill-consumer", at = "2s", target = 1 }}]
"#
        ),
    );
    let out = dir.path().join("run");
    let o = run_quiet(&scenario, &out);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{stderr}");
    let r = results(&out);
    let v = &r["variants"][0];
    let c = counts(&r, 0);
    assert_eq!(u(&c, "lost"), 0, "{c}");
    assert_eq!(v["contract_kept"], true, "{v}");

    let hist = out.join(v["history_dir"].as_str().unwrap());
    let start_ns: u64 = std::fs::read_to_string(hist.join("start_ns"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let kill = (v["faults"].as_array().unwrap().iter())
        .find(|f| f["action"] == "kill-consumer" && f["ok"] == true)
        .expect("the kill was carried out");
    let kill_ns = start_ns + (kill["t"].as_f64().unwrap() * 1e9) as u64;
    // What the dead member held when it died: its share, given before the load started.
    let dead = changes(&hist, 1);
    // (Under load one member may join alone first, take all 4 and hand 2 back when the other
    // joins: what it held is what it was given minus what it gave back.)
    let mut held = std::collections::BTreeSet::new();
    for (_, e, ps) in dead.iter().filter(|(at, _, _)| *at < kill_ns) {
        match e.as_str() {
            "assigned" => held.extend(ps.iter().copied()),
            _ => ps.iter().for_each(|p| {
                held.remove(p);
            }),
        }
    }
    let held: Vec<u64> = held.into_iter().collect();
    assert_eq!(
        held.len(),
        2,
        "each member holds 2 of 4 partitions: {dead:?}"
    );
    // The survivor is given them once the dead member's session has timed out.
    let survivor = changes(&hist, 0);
    for p in &held {
        let (at, _, _) = (survivor.iter())
            .find(|(at, e, ps)| *at > kill_ns && e == "assigned" && ps.contains(p))
            .unwrap_or_else(|| panic!("partition {p} never moved to consumer 0: {survivor:?}"));
        // Not before the dead member's session expired (its last heartbeat was at most one
        // interval before the kill), and within the run: the rebalance itself is quick, but
        // a loaded 2-core machine has shown 12.9 s, so the upper bound only catches a
        // partition left without a consumer (no timing goal is asserted here).
        let after_ms = (at - kill_ns) / 1_000_000;
        assert!(
            (SESSION_MS - 1500..=SESSION_MS + SLACK_MS).contains(&after_ms),
            "partition {p} moved {after_ms} ms after the kill"
        );
    }
    // The same figure in results.json: one pause per partition of the dead member.
    let rb = &v["rebalance"];
    let pauses = rb["pauses"].as_array().expect("rebalance.pauses");
    let mut paused: Vec<u64> = (pauses.iter())
        .filter(|p| p["cause"] == "killed" && p["consumer"] == 1)
        .map(|p| p["partition"].as_u64().unwrap())
        .collect();
    paused.sort();
    let mut want = held.clone();
    want.sort();
    assert_eq!(paused, want, "{rb}");
    let max_ms = rb["max_pause_ms"].as_f64().unwrap();
    assert!(
        max_ms > 0.0 && max_ms <= (SESSION_MS + SLACK_MS) as f64,
        "{rb}"
    );
    eprintln!(
        "kafka group: max pause {max_ms:.0} ms, duplicated {}, {c}",
        u(&c, "duplicated")
    );
}
