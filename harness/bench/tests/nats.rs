//! NATS JetStream through `bench run` against real managed servers (scripts/brokers/nats.sh),
//! killed with SIGKILL mid-run and restarted on the same store: PubAck + file store + explicit
//! acks loses no acknowledged message; the at-most-once setting (core publish, memory stream,
//! no acks) keeps its contract, which allows loss. A consumer killed while its processing threads
//! hold messages loses none that were acked (only finished messages are acked).
//!
//! Without nats-server installed the test says SKIPPED and passes, unless
//! `MQ_BENCH_REQUIRE_BROKERS` is set (scripts/test.sh sets it after installing the brokers).

mod common;

use std::process::Command;

use common::*;

const SCENARIO: &str = r#"
name = "nats-kill"
[workload]
duration = "5s"
rate = 2000
partitions = 2
processing = "100us"
drain_timeout = "15s"
ack_timeout = "10s"

[[variants]]
name = "nats-pubAck-file-explicit"
backend = "nats"
producer_ack = "leader"
durability = "persistent"
consumer_ack = "after-process"
options = { port = 14252, ack_wait_ms = 2000 }
faults = [
  { action = "kill-broker", at = "2s" },
  { action = "restart-broker", at = "3s" },
]

[[variants]]
name = "nats-core-memory-noack"
backend = "nats"
producer_ack = "none"
durability = "memory"
consumer_ack = "auto"
options = { port = 14262 }
faults = [
  { action = "kill-broker", at = "2s" },
  { action = "restart-broker", at = "3s" },
]
"#;

#[test]
fn a_killed_server_loses_no_acked_message_with_pub_acks_a_file_store_and_explicit_acks() {
    if !installed("nats") {
        return;
    }
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "nats-kill.toml", SCENARIO);
    let out = dir.path().join("run");
    let o = run_quiet(&scenario, &out);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.code().is_some_and(|c| c == 0 || c == 1),
        "bench exit {:?}: {stderr}",
        o.status
    );
    let r = results(&out);
    for (i, v) in r["variants"].as_array().unwrap().iter().enumerate() {
        let c = counts(&r, i);
        eprintln!("{}: {c}", v["name"]);
        let (sent, acked) = (u(&c, "sent"), u(&c, "acked"));
        assert!(acked > 0, "{c}");
        assert_eq!(sent, acked + u(&c, "failed") + u(&c, "unknown"), "{c}");
        assert_eq!(u(&c, "unexpected"), 0, "{c}");
        let faults: Vec<&str> = (v["faults"].as_array().into_iter().flatten())
            .filter_map(|f| f["action"].as_str())
            .collect();
        assert!(
            faults.contains(&"kill-broker") && faults.contains(&"restart-broker"),
            "both faults applied: {}",
            v["faults"]
        );
    }
    let safe = &r["variants"][0];
    let c = counts(&r, 0);
    assert_eq!(safe["contract"], "at-least-once", "{safe}");
    assert_eq!(
        u(&c, "lost"),
        0,
        "PubAck + file store lost acked messages: {c}"
    );
    assert!(u(&c, "acked") >= 5000, "sends go on after the restart: {c}");
    assert_eq!(safe["contract_kept"], true, "{c}");
    let cheap = &r["variants"][1];
    assert_eq!(cheap["contract"], "at-most-once", "{cheap}");
    assert_eq!(u(&counts(&r, 1), "duplicated"), 0);
    // The memory stream died with the server; the clients made it again when they reconnected,
    // so what was sent after the restart (about 4000) is delivered.
    assert!(u(&counts(&r, 1), "delivered") >= 5000, "{}", counts(&r, 1));
    assert_eq!(cheap["contract_kept"], true, "{}", counts(&r, 1));
    // Nothing of either server is left running.
    assert!(processes_with(&["nats-server", "nats-pubAck-file-explicit"]).is_empty());
    for name in ["nats-pubAck-file-explicit", "nats-core-memory-noack"] {
        assert!(processes_with(&["worker", name]).is_empty(), "{name}");
    }
    assert_recount_matches(&out);
}

/// A consumer whose 4 processing threads are busy (4 × 5 ms against 1000 msg/s) killed and
/// restarted: only what the threads finished was acked, so every acked message comes (again).
#[test]
fn a_killed_consumer_with_busy_processing_threads_loses_no_acked_message() {
    if !installed("nats") {
        return;
    }
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
name = "nats-threads-kill"
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
name = "nats"
backend = "nats"
producer_ack = "leader"
durability = "persistent"
consumer_ack = "after-process"
options = { port = 14272, ack_wait_ms = 1000 }
faults = [ { action = "kill-consumer", at = "1.5s" }, { action = "restart-consumer", at = "2s" } ]
"#;
    let scenario = write(dir.path(), "s.toml", text);
    let out = dir.path().join("run");
    let o = run_quiet(&scenario, &out);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "bench exit {:?}: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    let r = results(&out);
    let v = &r["variants"][0];
    let c = counts(&r, 0);
    eprintln!("nats, 4 threads, consumer killed: {c}");
    assert!(u(&c, "acked") >= 2500, "{c}");
    assert_eq!(u(&c, "lost"), 0, "an acked message was lost: {c}");
    assert_eq!(u(&c, "unexpected"), 0, "{c}");
    assert!(
        u(&c, "duplicated") > 0,
        "the killed consumer's held messages came again: {c}"
    );
    assert_eq!(v["contract_kept"], true, "{v}");
}

/// Runs `nats.sh CMD --port PORT --dir DIR`, asserting it succeeds.
fn nats_sh(cmd: &str, port: u16, dir: &std::path::Path) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/brokers/nats.sh");
    let o = Command::new("bash")
        .args([script, cmd, "--port", &port.to_string(), "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "nats.sh {cmd}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Wipes the server a test started itself, however the test ends.
struct Wipe(u16, std::path::PathBuf);
impl Drop for Wipe {
    fn drop(&mut self) {
        nats_sh("wipe", self.0, &self.1);
    }
}

#[test]
fn ctrl_c_deletes_the_stream_on_an_external_server() {
    if !installed("nats") {
        return;
    }
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let (port, node) = (14282, dir.path().join("node"));
    nats_sh("start", port, &node);
    let _wipe = Wipe(port, node);
    let text = format!(
        "name = \"ctrlc\"\n[workload]\nduration = \"60s\"\nrate = 1000\npartitions = 2\n\
         [[variants]]\nname = \"nats-ctrlc\"\nbackend = \"nats\"\n\
         options = {{ mode = \"external\", url = \"nats://127.0.0.1:{port}\" }}\n"
    );
    let scenario = write(dir.path(), "ctrlc.toml", &text);
    let out = dir.path().join("run");
    let mut child = start_run(&scenario, &out);
    worker_pid(&mut child, &out, "nats-ctrlc", "producer", 60);
    let jsz = || {
        let url = format!(
            "http://127.0.0.1:{}/jsz?accounts=true&streams=true",
            port + 4000
        );
        let o = Command::new("curl").args(["-sf", &url]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(
        jsz().contains("-nats-ctrlc"),
        "the run's stream exists: {}",
        jsz()
    );
    // SAFETY: plain kill(2) of our child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let (status, stderr) = finish(&mut child, 60);
    assert_eq!(status.code(), Some(130), "{stderr}");
    let r = results(&out);
    assert_eq!(r["partial"], true);
    assert!(u(&counts(&r, 0), "acked") > 0);
    assert!(
        !jsz().contains("-nats-ctrlc"),
        "stream left behind: {}",
        jsz()
    );
    assert!(processes_with(&["worker", "nats-ctrlc"]).is_empty());
}
