//! `bench run` end to end on the SysV backend: exact counts on a clean run, competing receivers
//! on each message type, a consumer killed with SIGKILL mid-run, and Ctrl-C.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn clean_run_delivers_every_message_exactly_once_in_order() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let before = queues();
    let scenario = write(
        dir.path(),
        "clean.toml",
        r#"
name = "clean"
[workload]
messages = 60000
message_size = 100
producers = 2
consumers = 2
partitions = 2
keys = 8
[[variants]]
name = "sysv"
backend = "sysv"
"#,
    );
    let out = dir.path().join("run");
    let r = run_ok(&scenario, &out);
    assert_eq!(r["schema"], "mq-bench.results/2");
    assert_eq!(r["partial"], false);
    assert_eq!(r["variants"][0]["status"], "ok");
    assert_eq!(r["variants"][0]["ended_by"], "drained");
    let c = counts(&r, 0);
    for (field, want) in [
        ("sent", 60000),
        ("acked", 60000),
        ("delivered", 60000),
        ("deliveries", 60000),
    ] {
        assert_eq!(u(&c, field), want, "{field}");
    }
    for field in [
        "failed",
        "unknown",
        "lost",
        "unacked_lost",
        "recovered",
        "duplicated",
        "reordered",
        "unexpected",
    ] {
        assert_eq!(u(&c, field), 0, "{field}");
    }
    let rep = &r["variants"][0]["report"];
    assert_eq!(rep["latency"]["end_to_end"]["count"], 60000);
    assert!(rep["throughput"]["acked_msgs_per_s"].as_f64().unwrap() > 0.0);
    assert!(out.join("summary.md").exists());
    assert!(out.join("history/sysv/producer-1.hist").exists());
    assert_eq!(queues(), before, "the run's queue was not removed");
}

#[test]
fn sysv_competing_receivers_share_each_message_type_and_lose_nothing() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let before = queues();
    let scenario = write(
        dir.path(),
        "competing.toml",
        r#"
name = "competing"
[workload]
messages = 40000
message_size = 100
producers = 2
consumers = 4
partitions = 2
keys = 8
[[variants]]
name = "sysv"
backend = "sysv"
"#,
    );
    let out = dir.path().join("run");
    let r = run_ok(&scenario, &out);
    let c = counts(&r, 0);
    for (field, want) in [("acked", 40000), ("delivered", 40000), ("lost", 0)] {
        assert_eq!(u(&c, field), want, "{field}: {c}");
    }
    assert_eq!((u(&c, "duplicated"), u(&c, "unexpected")), (0, 0), "{c}");
    // Four receivers, two per message type: each took messages.
    for i in 0..4 {
        let h = out.join(format!("history/sysv/consumer-{i}.hist"));
        let len = std::fs::metadata(&h).unwrap().len();
        assert!(len > 32, "consumer {i} recorded nothing ({len} bytes)");
    }
    // Per-key order across the receivers: the checker and the independent recount agree.
    assert_recount_matches(&out);
    assert_eq!(queues(), before, "the run's queue was not removed");
}

#[test]
fn a_consumer_killed_mid_run_loses_no_accounting() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let before = queues();
    let scenario = write(
        dir.path(),
        "kill.toml",
        r#"
name = "kill-consumer"
[workload]
duration = "4s"
rate = 20000
message_size = 100
drain_timeout = "1s"
[[variants]]
name = "sysv-kill-consumer"
backend = "sysv"
"#,
    );
    let out = dir.path().join("run");
    let mut child = start_run(&scenario, &out);
    let consumer = worker_pid(&mut child, &out, "sysv-kill-consumer", "consumer", 20);
    std::thread::sleep(Duration::from_millis(1000));
    // SAFETY: plain kill(2) of a pid we just found.
    assert_eq!(unsafe { libc::kill(consumer as i32, libc::SIGKILL) }, 0);
    let (status, stderr) = finish(&mut child, 60);
    assert!(status.code() == Some(0), "bench exit {status:?}: {stderr}");

    let r = results(&out);
    let v = &r["variants"][0];
    assert!(
        v["workers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["role"] == "consumer" && w["exit"] == "signal 9"),
        "{v}"
    );
    // One ending, one reason: the consumer's death ended the run; the producers' stall (the
    // queue filled) is part of the same sentence, not a second ending.
    assert_eq!(v["ended_by"], "consumers-gone", "{v}");
    let reason = v["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("every consumer ended (consumer 0: signal 9)")
            && reason.contains("producers made no progress"),
        "{reason}"
    );
    let c = counts(&r, 0);
    let (sent, acked, failed, not_sent, unknown) = (
        u(&c, "sent"),
        u(&c, "acked"),
        u(&c, "failed"),
        u(&c, "not_sent"),
        u(&c, "unknown"),
    );
    assert!(sent > 10_000, "the run went on for a while: {c}");
    assert_eq!(sent, acked + failed + not_sent + unknown, "{c}");
    // Every acked message is delivered or counted lost.
    let delivered_acked = u(&c, "delivered") - u(&c, "recovered") - u(&c, "failed_delivered");
    assert_eq!(acked, delivered_acked + u(&c, "lost"), "{c}");
    // Whatever sat in the queue when its only consumer died was never delivered.
    assert!(u(&c, "lost") > 0, "{c}");
    assert_eq!(u(&c, "unexpected"), 0);
    // Which ones: the first of them by send time, in results.json and in the summary.
    let lost = r["variants"][0]["report"]["samples"]["lost"]
        .as_array()
        .unwrap();
    assert_eq!(lost.len() as u64, u(&c, "lost").min(20), "{lost:?}");
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        summary.contains(&format!(
            "| sysv-kill-consumer | lost | {} |",
            u(&c, "lost")
        )),
        "{summary}"
    );
    assert_eq!(queues(), before, "the run's queue was not removed");
}

#[test]
fn ctrl_c_writes_partial_results_and_leaves_nothing_behind() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let before = queues();
    let scenario = write(
        dir.path(),
        "long.toml",
        r#"
name = "long"
[workload]
duration = "60s"
rate = 10000
[[variants]]
name = "sysv-ctrlc-a"
backend = "sysv"
[[variants]]
name = "sysv-ctrlc-b"
backend = "sysv"
"#,
    );
    let out = dir.path().join("run");
    let mut child = start_run(&scenario, &out);
    worker_pid(&mut child, &out, "sysv-ctrlc-a", "producer", 20);
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: plain kill(2) of our child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let (status, _) = finish(&mut child, 20);
    assert_eq!(status.code(), Some(130));

    let r = results(&out);
    assert_eq!(r["partial"], true);
    assert_eq!(r["variants"][0]["status"], "interrupted");
    assert_eq!(r["variants"][0]["ended_by"], "interrupted");
    assert_eq!(r["variants"][1]["status"], "not-run");
    let c = counts(&r, 0);
    assert!(u(&c, "acked") > 5_000, "counts up to Ctrl-C are kept: {c}");
    assert_eq!(
        u(&c, "sent"),
        u(&c, "acked") + u(&c, "failed") + u(&c, "unknown")
    );
    assert!(std::fs::read_to_string(out.join("summary.md"))
        .unwrap()
        .contains("PARTIAL"));
    assert!(
        processes_with(&["worker", "sysv-ctrlc"]).is_empty(),
        "worker processes left behind"
    );
    assert_eq!(queues(), before, "the run's queue was not removed");
}

#[test]
fn the_ready_sysv_scenarios_run_clean() {
    for name in ["ordering", "sysv-sizes"] {
        let _g = serial();
        let dir = tempfile::tempdir().unwrap();
        let scenario = format!("{}/../../scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
        let out = dir.path().join("run");
        // The SysV variants only (ordering.toml also compares RabbitMQ, and has a Kafka group
        // rebalance, with duplicates by design).
        let mut args = vec!["run", &scenario, "--out", out.to_str().unwrap(), "--quiet"];
        if name == "ordering" {
            args.extend(["--only", "sysv", "--only", "sysv-competing"]);
        }
        let o = run(&args);
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let r = results(&out);
        for (i, v) in r["variants"].as_array().unwrap().iter().enumerate() {
            assert_eq!(v["status"], "ok", "{name}/{}: {v}", v["name"]);
            let c = counts(&r, i);
            assert_eq!(u(&c, "acked"), u(&c, "sent"), "{name}/{}: {c}", v["name"]);
            // Competing receivers (more consumers than partitions) may reorder; nothing else.
            let field_of = |f: &str| {
                v["workload"][f]
                    .as_u64()
                    .or(r["scenario"]["workload"][f].as_u64())
            };
            let competing = field_of("consumers") > field_of("partitions");
            for field in ["lost", "duplicated", "reordered", "unexpected"] {
                if field == "reordered" && competing {
                    continue;
                }
                assert_eq!(u(&c, field), 0, "{name}/{}: {field}: {c}", v["name"]);
            }
        }
        if name == "sysv-sizes" {
            // A sweep: a variant per point, grouped by point_of, with its table and chart.
            let variants = r["variants"].as_array().unwrap();
            let names: Vec<&str> = variants
                .iter()
                .map(|v| v["name"].as_str().unwrap())
                .collect();
            assert_eq!(names.len(), 9, "{names:?}");
            assert_eq!((names[0], names[8]), ("sysv.size-32", "sysv.size-8192"));
            assert_eq!(variants[8]["point_of"]["axis"], "message_size");
            assert_eq!(variants[8]["point_of"]["value"], 8192);
            assert_eq!(variants[8]["workload"]["message_size"], 8192);
            let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
            assert!(
                summary.contains("| sysv.size-8192 | message_size = 8192 |"),
                "{summary}"
            );
            assert!(out.join("charts/sweep.svg").is_file());
        }
    }
}

#[test]
fn a_broker_not_installed_is_skipped_with_its_install_command_once() {
    let dir = tempfile::tempdir().unwrap();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let o = bench()
        .current_dir(&repo)
        .env("MQ_BENCH_CACHE", dir.path().join("no-cache"))
        .args([
            "run",
            "scenarios/quickstart.toml",
            "--only",
            "kafka",
            "--quiet",
            "--out",
        ])
        .arg(dir.path().join("run"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("kafka: skipped:"))
        .unwrap_or_else(|| panic!("no skip line: {stderr}"));
    assert!(
        line.ends_with("(fix: scripts/brokers/kafka.sh install)"),
        "{line}"
    );
    assert_eq!(
        line.matches("install").count(),
        2,
        "once in the reason's 'not installed', once in the fix: {line}"
    );
    assert!(!line.contains(".."), "{line}");
}

/// The guarantee matrix isolates one cause per row: RabbitMQ's durable and transient rows differ
/// in durability alone (confirms on in both), and fire-and-forget is a row of its own (its
/// transient row used to send without confirms, so its losses were fire-and-forget's).
#[test]
fn the_crash_matrix_compares_one_setting_at_a_time() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scenarios/crash-matrix.toml"
    );
    let doc: toml::Table = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let variants = doc["variants"].as_array().unwrap();
    let find = |name: &str| {
        variants
            .iter()
            .find(|v| v["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no variant {name}"))
            .as_table()
            .unwrap()
            .clone()
    };
    let (mut durable, mut transient) = (
        find("rabbitmq-confirms-durable-manual"),
        find("rabbitmq-confirms-transient-manual"),
    );
    assert_eq!(durable["producer_ack"].as_str(), Some("leader"));
    assert_eq!(durable["durability"].as_str(), Some("persistent"));
    assert_eq!(transient["durability"].as_str(), Some("memory"));
    for v in [&mut durable, &mut transient] {
        for k in ["name", "durability", "contract"] {
            v.remove(k);
        }
    }
    assert_eq!(
        durable, transient,
        "the two rows differ in durability alone"
    );
    let fire = find("rabbitmq-fire-and-forget");
    assert_eq!(fire["producer_ack"].as_str(), Some("none"));
    assert_eq!(fire["durability"].as_str(), Some("persistent"));
}
