//! `bench run` on the in-house log: results.json carries each variant's cost, with sane
//! figures (the broker used CPU, a persistent fsync variant wrote at least every acked byte
//! to storage), the Cost table is in summary.md, and `resources = false` turns it off.

mod common;

use common::*;

fn f(v: &serde_json::Value, path: &[&str]) -> f64 {
    let mut at = v;
    for p in path {
        at = &at[*p];
    }
    at.as_f64()
        .unwrap_or_else(|| panic!("{} is not a number: {at}", path.join(".")))
}

#[test]
fn the_log_run_reports_what_the_broker_and_the_workers_cost() {
    // On a real file system: write_bytes counts what reaches storage (tmpfs has none).
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let scenario = write(
        dir.path(),
        "cost.toml",
        r#"
name = "cost"
[workload]
messages = 60000
message_size = 1024
[[variants]]
name = "log-fsync"
backend = "log"
producer_ack = "all"
durability = "persistent"
[[variants]]
name = "log-unsampled"
backend = "log"
workload = { messages = 2000, resources = false }
"#,
    );
    let out = dir.path().join("run");
    let r = run_ok(&scenario, &out);
    let v = &r["variants"][0];
    assert_eq!(v["status"], "ok");
    let acked = u(&counts(&r, 0), "acked");
    assert_eq!(acked, 60000);
    let cost = &v["cost"];
    assert!(f(cost, &["broker", "cpu_s"]) > 0.0, "{cost}");
    assert!(f(cost, &["producers", "cpu_s"]) > 0.0, "{cost}");
    assert!(f(cost, &["consumers", "cpu_s"]) > 0.0, "{cost}");
    assert!(f(cost, &["broker", "peak_rss_bytes"]) > 0.0, "{cost}");
    let per = &cost["per_message"];
    assert_eq!(per["messages"], acked);
    assert_eq!(per["message_bytes"], acked * 1024);
    // Every acked message was fsynced before its ack: at least its bytes reached storage,
    // and not absurdly more (index, segment headers, committed offsets).
    let wa = f(per, &["write_amplification"]);
    assert!((1.0..20.0).contains(&wa), "write amplification {wa}");
    let broker_us = f(per, &["broker_cpu_us"]);
    let total_us = f(per, &["total_cpu_us"]);
    assert!(broker_us > 0.0 && total_us > broker_us, "{per}");
    let share = f(cost, &["cpu_share"]);
    assert!(share > 0.0 && share <= 1.0, "cpu share {share}");
    let labels: Vec<&str> = (cost["processes"].as_array().unwrap().iter())
        .map(|p| p["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels.len(), 3, "{labels:?}");
    for want in ["broker", "producer 0", "consumer 0"] {
        assert!(labels.contains(&want), "{labels:?}");
    }
    // The workers were read once more as they exited.
    for p in cost["processes"].as_array().unwrap() {
        if p["part"] != "broker" {
            assert_eq!(p["final_sample"], true, "{p}");
        }
    }
    assert_eq!(r["variants"][1]["status"], "ok");
    assert!(r["variants"][1].get("cost").is_none(), "resources = false");
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("## Cost"), "{summary}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("CPU per million messages"), "no cost chart");
    assert!(html.contains("CPU use over time"), "no CPU chart");
    let series = cost["series"]["broker"].as_array().unwrap();
    assert!(
        series.iter().any(|b| b.as_f64().unwrap() > 0.0),
        "{series:?}"
    );
}

#[test]
fn a_restarted_broker_is_accounted_as_two_processes() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let scenario = write(
        dir.path(),
        "restart.toml",
        r#"
name = "restart"
[workload]
duration = "3s"
rate = 2000
drain_timeout = "10s"
[[variants]]
name = "log"
backend = "log"
producer_ack = "all"
durability = "persistent"
consumer_ack = "after-process"
faults = [
  { action = "kill-broker", at = "1s" },
  { action = "restart-broker", at = "1.5s" },
]
"#,
    );
    let out = dir.path().join("run");
    let r = run_ok(&scenario, &out);
    let v = &r["variants"][0];
    let faults: Vec<bool> = (v["faults"].as_array().unwrap().iter())
        .map(|f| f["ok"].as_bool().unwrap())
        .collect();
    assert_eq!(faults, [true, true], "{}", v["faults"]);
    let brokers: Vec<&serde_json::Value> = (v["cost"]["processes"].as_array().unwrap().iter())
        .filter(|p| p["part"] == "broker")
        .collect();
    // The killed incarnation and the restarted one, each with its own pid and CPU time.
    assert_eq!(brokers.len(), 2, "{brokers:?}");
    assert_ne!(brokers[0]["pid"], brokers[1]["pid"]);
    for b in &brokers {
        assert!(f(b, &["cpu_s"]) > 0.0, "{b}");
    }
    let sum = f(brokers[0], &["cpu_s"]) + f(brokers[1], &["cpu_s"]);
    assert!((f(&v["cost"], &["broker", "cpu_s"]) - sum).abs() < 1e-9);
    assert_eq!(v["cost"]["broker"]["processes"], 2);
}

#[test]
fn kafka_and_rabbitmq_brokers_are_their_jvm_and_erlang_vm() {
    let mut variants = String::new();
    if installed("kafka") {
        variants.push_str(
            "[[variants]]\nname = \"kafka\"\nbackend = \"kafka\"\nproducer_ack = \"all\"\noptions = { port = 39150 }\n",
        );
    }
    if installed("rabbitmq") {
        variants.push_str(
            "[[variants]]\nname = \"rabbitmq\"\nbackend = \"rabbitmq\"\ndurability = \"persistent\"\noptions = { port = 35690 }\n",
        );
    }
    if variants.is_empty() {
        return;
    }
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let text = format!(
        "name = \"brokers-cost\"\n[workload]\nmessages = 20000\nmessage_size = 1024\n{variants}"
    );
    let scenario = write(dir.path(), "brokers.toml", &text);
    let out = dir.path().join("run");
    let r = run_ok(&scenario, &out);
    let ran = r["variants"].as_array().unwrap();
    assert_eq!(ran.len(), variants.matches("[[variants]]").count());
    for (i, v) in ran.iter().enumerate() {
        assert_eq!(v["status"], "ok", "{}", v["reason"]);
        let broker = &v["cost"]["broker"];
        assert_eq!(broker["processes"], 1, "{}: {broker}", v["name"]);
        // A JVM or an Erlang VM, not a script's shell: well over 50 MB resident.
        assert!(
            f(broker, &["peak_rss_bytes"]) > 50e6,
            "{}: {broker}",
            v["name"]
        );
        assert!(f(broker, &["cpu_s"]) > 0.0, "{}: {broker}", v["name"]);
        // Both keep every acked message on disk (Kafka's log, RabbitMQ's persistent store):
        // most of their bytes were written by the time the variant ended.
        let acked = u(&counts(&r, i), "acked") as f64;
        assert!(
            f(broker, &["write_bytes"]) > acked * 1024.0 / 2.0,
            "{}: {broker}",
            v["name"]
        );
    }
}
