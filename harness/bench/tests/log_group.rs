//! The log's consumer groups against its real (managed) server: a member killed mid-run, its
//! partitions move to the other member once its session timed out (read from the members'
//! assignment files), and commit-after-processing loses nothing; members beyond the partition
//! count idle.

mod common;

use std::path::Path;

use common::*;

/// The members' session timeout and heartbeat interval.
const SESSION_MS: u64 = 2000;
const HEARTBEAT_MS: u64 = 300;
/// How long after its session expired a dead member's partitions may still wait for the
/// survivor on a loaded machine.
const SLACK_MS: u64 = 10_000;

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

/// The partitions a member held at `at_ns`: its assignments minus its revocations before then.
fn held_at(changes: &[(u64, String, Vec<u64>)], at_ns: u64) -> Vec<u64> {
    let mut held = Vec::new();
    for (_, event, ps) in changes.iter().filter(|(at, _, _)| *at < at_ns) {
        if event == "assigned" {
            held.extend(ps);
        } else {
            held.retain(|p| !ps.contains(p));
        }
    }
    held.sort();
    held
}

#[test]
fn a_killed_log_group_member_s_partitions_move_to_the_other_after_its_session() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(
        dir.path(),
        "s.toml",
        &format!(
            r#"name = "log-group"
[workload]
duration = "6s"
rate = 1000
partitions = 4
consumers = 2
processing = "200us"
drain_timeout = "20s"
ack_timeout = "20s"
[[variants]]
name = "log-group"
backend = "log"
consumer_ack = "after-process"
options = {{ assignment = "group", session_timeout_ms = {SESSION_MS}, heartbeat_interval_ms = {HEARTBEAT_MS} }}
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
    let dead = changes(&hist, 1);
    let held = held_at(&dead, kill_ns);
    assert_eq!(
        held.len(),
        2,
        "each member holds 2 of 4 partitions: {dead:?}"
    );
    let survivor = changes(&hist, 0);
    assert_eq!(
        held_at(&survivor, kill_ns).len(),
        2,
        "the survivor held the other half: {survivor:?}"
    );
    for p in &held {
        let (at, _, _) = (survivor.iter())
            .find(|(at, e, ps)| *at > kill_ns && e == "assigned" && ps.contains(p))
            .unwrap_or_else(|| panic!("partition {p} never moved to consumer 0: {survivor:?}"));
        // Not before the dead member's session expired (its last heartbeat was at most one
        // interval before the kill); the upper bound only catches a partition left unread.
        let after_ms = (at - kill_ns) / 1_000_000;
        assert!(
            (SESSION_MS - HEARTBEAT_MS - 200..=SESSION_MS + SLACK_MS).contains(&after_ms),
            "partition {p} moved {after_ms} ms after the kill"
        );
    }
    assert_eq!(
        held_at(&survivor, u64::MAX),
        vec![0, 1, 2, 3],
        "{survivor:?}"
    );
    // The same moves as pauses in results.json: one per partition of the dead member.
    let rb = &v["rebalance"];
    let pauses = rb["pauses"].as_array().expect("rebalance.pauses");
    let mut paused: Vec<u64> = (pauses.iter())
        .filter(|p| p["cause"] == "killed" && p["consumer"] == 1)
        .map(|p| p["partition"].as_u64().unwrap())
        .collect();
    paused.sort();
    assert_eq!(paused, held, "{rb}");
    eprintln!(
        "log group: max pause {} ms, duplicated {}, {c}",
        rb["max_pause_ms"],
        u(&c, "duplicated")
    );
}

#[test]
fn more_log_group_members_than_partitions_idle_and_lose_nothing() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(
        dir.path(),
        "s.toml",
        r#"name = "log-group-extra"
[workload]
duration = "3s"
rate = 1000
partitions = 2
consumers = 3
drain_timeout = "20s"
[[variants]]
name = "log-group-extra"
backend = "log"
consumer_ack = "after-process"
options = { assignment = "group", session_timeout_ms = 2000, heartbeat_interval_ms = 200 }
"#,
    );
    let out = dir.path().join("run");
    let o = run_quiet(&scenario, &out);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let r = results(&out);
    let v = &r["variants"][0];
    let c = counts(&r, 0);
    assert_eq!((u(&c, "lost"), u(&c, "duplicated")), (0, 0), "{c}");
    let hist = out.join(v["history_dir"].as_str().unwrap());
    // At the end each partition is held by exactly one member, and one member holds none.
    let mut held: Vec<Vec<u64>> = (0..3)
        .map(|i| held_at(&changes(&hist, i), u64::MAX))
        .collect();
    let all: Vec<u64> = held.concat();
    assert_eq!(all.len(), 2, "{held:?}");
    held.sort();
    assert!(held[0].is_empty(), "{held:?}");
}
