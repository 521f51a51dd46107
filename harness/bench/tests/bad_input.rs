//! Bad scenarios: each gives one clear error naming the file, position and field, exits 2, and
//! creates nothing (no run folder, no queue).

mod common;

use common::*;

const GOOD: &str = r#"name = "bad"
[workload]
messages = 10
message_size = 100
producers = 1
[[variants]]
name = "sysv"
backend = "sysv"
"#;

/// Runs `bench run` on `text` and returns its stderr, asserting exit 2 and nothing created.
fn rejected(text: &str) -> String {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bad.toml", text);
    let out = dir.path().join("run");
    let before = queues();
    let o = run_quiet(&path, &out);
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "stderr: {stderr}");
    assert!(!out.exists(), "a run folder was created");
    assert_eq!(queues(), before, "a queue was created");
    assert!(
        stderr.contains(path.to_str().unwrap()),
        "error does not name the file: {stderr}"
    );
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "expected one error line: {stderr}"
    );
    stderr
}

#[test]
fn missing_file() {
    let o = run(&["run", "/nonexistent/scenario.toml"]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("cannot read scenario /nonexistent/scenario.toml"),
        "{e}"
    );
}

#[test]
fn toml_syntax_error_names_line_and_column() {
    let e = rejected(&GOOD.replace("messages = 10", "messages = = 10"));
    assert!(e.contains("bad.toml:3:"), "{e}");
}

#[test]
fn unknown_field() {
    let e = rejected(&GOOD.replace("producers = 1", "producers = 1\nprodcuers = 2"));
    assert!(e.contains("bad.toml:6:1") && e.contains("prodcuers"), "{e}");
}

#[test]
fn message_size_zero() {
    let e = rejected(&GOOD.replace("message_size = 100", "message_size = 0"));
    assert!(
        e.contains(
            "bad.toml:4:16: workload.message_size: message_size = 0 is out of range: valid is 32"
        ),
        "{e}"
    );
}

#[test]
fn message_size_above_msgmax() {
    let e = rejected(&GOOD.replace("message_size = 100", "message_size = 9000"));
    let msgmax = std::fs::read_to_string("/proc/sys/kernel/msgmax").unwrap();
    assert!(
        e.contains(&format!("workload.message_size: message_size = 9000 exceeds kernel.msgmax = {} for backend sysv", msgmax.trim())),
        "{e}"
    );
}

#[test]
fn zero_producers() {
    let e = rejected(&GOOD.replace("producers = 1", "producers = 0"));
    assert!(
        e.contains(
            "bad.toml:5:13: workload.producers: producers = 0 is out of range: valid is 1 to 1024"
        ),
        "{e}"
    );
}

#[test]
fn unknown_backend() {
    let e = rejected(&GOOD.replace("backend = \"sysv\"", "backend = \"zeromq\""));
    assert!(
        e.contains("bad.toml:8:11: variants[0].backend: unknown backend \"zeromq\"; valid: sysv"),
        "{e}"
    );
}

#[test]
fn consumer_ack_sysv_cannot_honour() {
    let e = rejected(&GOOD.replace(
        "backend = \"sysv\"",
        "backend = \"sysv\"\nconsumer_ack = \"after-process\"",
    ));
    assert!(
        e.contains("bad.toml:9:16: variants[0].consumer_ack: backend sysv cannot honour consumer_ack = \"after-process\"; valid: auto"),
        "{e}"
    );
}

#[test]
fn competing_consumers_where_the_backend_cannot_share_a_partition() {
    let two = GOOD.replace(
        "producers = 1",
        "producers = 1\nconsumers = 2\npartitions = 1",
    );
    let e = rejected(&two.replace("backend = \"sysv\"", "backend = \"log\""));
    assert!(
        e.contains("bad.toml:6:13: workload.consumers: consumers = 2 exceeds partitions = 1, and log cannot share a partition between consumers: log consumers are assigned partitions by hand (options.assignment = \"manual\"), so extra consumers would idle; set options.assignment = \"group\" for a consumer group whose extra members wait for a rebalance; raise partitions or lower consumers (variant \"sysv\")"),
        "{e}"
    );
    // A variant's own override is the one named.
    let e = rejected(&GOOD.replace(
        "backend = \"sysv\"",
        "backend = \"kafka\"\nworkload = { consumers = 3 }",
    ));
    assert!(
        e.contains("variants[0].workload.consumers: consumers = 3 exceeds partitions = 1, and kafka cannot share a partition between consumers: Kafka consumers are assigned partitions by hand"),
        "{e}"
    );
}

#[test]
fn unknown_variant_in_only() {
    let _g = serial();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "good.toml", GOOD);
    let o = run(&["run", path.to_str().unwrap(), "--only", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--only \"nope\""));
}

#[test]
fn validate_accepts_the_ready_scenarios() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios");
    for entry in std::fs::read_dir(root).unwrap().flatten() {
        let o = run(&["validate", entry.path().to_str().unwrap()]);
        assert!(
            o.status.success(),
            "{}: {}",
            entry.path().display(),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// Every numeric field of a scenario, with where it goes: `bench validate` must refuse extreme
/// values with an error that names the field and the valid range, and never panic.
#[test]
fn every_numeric_field_refuses_extreme_values_without_panicking() {
    const HUGE: &str = "9223372036854775807";
    const LONG: &str = "\"300000000000y\"";
    // (backend, where: workload | fault | option, field, values that must be refused)
    let cases: &[(&str, &str, &str, &[&str])] = &[
        ("sysv", "workload", "messages", &["0", HUGE, "-1"]),
        ("sysv", "workload", "message_size", &["0", HUGE]),
        ("sysv", "workload", "producers", &["0", HUGE]),
        ("sysv", "workload", "consumers", &["-1", "1025", HUGE]), // 0: producer only
        ("sysv", "workload", "partitions", &["0", HUGE]),
        ("sysv", "workload", "keys", &["0", HUGE]),
        ("sysv", "workload", "rate", &[HUGE, "-1"]),
        ("sysv", "workload", "warmup", &[LONG]),
        ("sysv", "workload", "drain_timeout", &["\"0s\"", LONG]),
        ("sysv", "workload", "ack_timeout", &[LONG]),
        (
            "sysv",
            "workload",
            "processing",
            &[LONG, "\"1s..300000000000y\""],
        ),
        ("sysv", "fault", "at", &[LONG]),
        ("sysv", "fault", "after_messages", &["0", HUGE]),
        ("sysv", "option", "msg_qbytes", &["1", HUGE]),
        ("log", "option", "batch_records", &["0", HUGE]),
        ("log", "option", "batch_bytes", &["0", HUGE]),
        ("log", "option", "linger_ms", &[HUGE]),
        ("log", "option", "max_in_flight", &["0", HUGE]),
        ("log", "option", "delivery_timeout_ms", &["0", HUGE]),
        ("log", "option", "buffer_bytes", &["0", HUGE]),
        ("log", "option", "fetch_bytes", &["0", HUGE]),
        ("log", "option", "segment_bytes", &["1", HUGE]),
        ("kafka", "option", "port", &["0", HUGE]),
        ("kafka", "option", "nodes", &["0", HUGE]),
        ("kafka", "option", "linger_ms", &[HUGE]),
        ("kafka", "option", "batch_size", &["0", HUGE]),
        ("kafka", "option", "replication_factor", &["0", HUGE]),
        ("kafka", "option", "min_insync_replicas", &["0", HUGE]),
        ("kafka", "option", "commit_every", &["0", HUGE]),
        ("kafka", "option", "session_timeout_ms", &["5999", HUGE]),
        ("kafka", "option", "heartbeat_interval_ms", &["0", HUGE]),
        ("kafka", "option", "transaction_size", &["0", HUGE]),
        ("kafka", "option", "transaction_timeout_ms", &["999", HUGE]),
        ("rabbitmq", "option", "port", &["0", HUGE]),
        ("rabbitmq", "option", "prefetch", &["0", HUGE]),
        ("rabbitmq", "option", "max_in_flight", &["0", HUGE]),
        ("rabbitmq", "option", "tx_batch", &["0", HUGE]),
        ("rabbitmq", "option", "nodes", &["0", "2", HUGE]),
        (
            "rabbitmq",
            "option",
            "reconnect_timeout_ms",
            &["3600001", HUGE],
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (backend, place, field, values) in cases {
        for value in *values {
            let (workload, fault, option) = match *place {
                "workload" => (format!("{field} = {value}\n"), String::new(), String::new()),
                "fault" => (
                    String::new(),
                    format!("[[faults]]\naction = \"pause-consumers\"\n{field} = {value}\n"),
                    String::new(),
                ),
                _ => (
                    String::new(),
                    String::new(),
                    format!("options = {{ {field} = {value} }}\n"),
                ),
            };
            let messages = if *field == "messages" {
                ""
            } else {
                "messages = 10\n"
            };
            let text = format!(
                "name = \"extreme\"\n[workload]\n{messages}{workload}{fault}[[variants]]\nname = \"v\"\nbackend = \"{backend}\"\n{option}"
            );
            let path = write(dir.path(), "extreme.toml", &text);
            let o = run(&["validate", path.to_str().unwrap()]);
            let stderr = String::from_utf8_lossy(&o.stderr);
            assert_eq!(
                o.status.code(),
                Some(2),
                "{backend} {field} = {value} was accepted: {stderr}"
            );
            assert!(!stderr.contains("panicked"), "{field} = {value}: {stderr}");
            assert!(
                stderr.contains(field),
                "{field} = {value}: the error does not name the field: {stderr}"
            );
        }
    }
}

#[test]
fn kafka_transactions_name_the_field_and_what_is_valid() {
    let kafka = |delivery: &str, options: &str| {
        GOOD.replace(
            "backend = \"sysv\"",
            &format!("backend = \"kafka\"\n{delivery}\noptions = {{ {options} }}"),
        )
    };
    let e = rejected(&kafka("producer_ack = \"leader\"", "transactional = true"));
    assert!(
        e.contains("variants[0].options.transactional: transactions need acks=all but producer_ack = \"leader\""),
        "{e}"
    );
    let e = rejected(&kafka(
        "producer_ack = \"all\"",
        "transactional = true, transaction_size = 0",
    ));
    assert!(
        e.contains("variants[0].options.transaction_size: transaction_size = 0 is out of range: valid is 1 to 100000"),
        "{e}"
    );
    let e = rejected(&kafka(
        "producer_ack = \"all\"",
        "isolation_level = \"committed\"",
    ));
    assert!(
        e.contains("expected `read_committed` or `read_uncommitted`"),
        "{e}"
    );
}

#[test]
fn processing_threads_out_of_range() {
    for n in [0, 257] {
        let e = rejected(&GOOD.replace(
            "producers = 1",
            &format!("producers = 1\nprocessing_threads = {n}"),
        ));
        assert!(
            e.contains(&format!(
                "bad.toml:6:22: workload.processing_threads: processing_threads = {n} is out of range: valid is 1 to 256"
            )),
            "{e}"
        );
    }
}

#[test]
fn dispatch_unknown() {
    let e = rejected(&GOOD.replace("producers = 1", "producers = 1\ndispatch = \"round-robin\""));
    assert!(
        e.contains("bad.toml:6:")
            && e.contains("dispatch")
            && e.contains("round-robin")
            && e.contains("`by-key`")
            && e.contains("`any`"),
        "{e}"
    );
}

#[test]
fn a_dedup_store_behind_auto_acks_is_refused_where_the_backend_can_ack_after_processing() {
    let log = GOOD.replace(
        "name = \"sysv\"\nbackend = \"sysv\"",
        "name = \"log\"\nbackend = \"log\"",
    );
    let e = rejected(&format!(
        "{log}consumer_ack = \"auto\"\nconsumer_dedup = \"store\"\n"
    ));
    assert!(
        e.contains("bad.toml:10:18: variants[0].consumer_dedup: consumer_dedup = \"store\" needs consumer_ack = \"after-process\" on backend log"),
        "{e}"
    );
    let e = rejected(&format!("{GOOD}dedup_sync = \"full\"\n"));
    assert!(
        e.contains("variants[0].dedup_sync: dedup_sync = \"full\" applies to the dedup store only"),
        "{e}"
    );
    let e = rejected(&format!("{GOOD}consumer_dedup = \"yes\"\n"));
    assert!(e.contains("variants[0].consumer_dedup"), "{e}");
    assert!(e.contains("store"), "names what is valid: {e}");
}

#[test]
fn stage_faults_need_a_pipeline_variant_and_one_of_its_stages() {
    let with = |backend: &str, options: &str, fault: &str| {
        GOOD.replace(
            "backend = \"sysv\"",
            &format!("backend = \"{backend}\"\noptions = {{ {options} }}\nfaults = [ {fault} ]"),
        )
        .replace("producers = 1", "producers = 1\npartitions = 2")
    };
    let kill = r#"{ action = "kill-stage", at = "1s" }"#;
    let e = rejected(&with("sysv", "", kill));
    assert!(
        e.contains("variants[0].faults: kill-stage needs a pipeline variant"),
        "{e}"
    );
    let e = rejected(&with("kafka", "port = 19290", kill));
    assert!(e.contains("kill-stage needs a pipeline variant"), "{e}");
    let e = rejected(&with(
        "kafka",
        "port = 19290, pipeline = \"read-process-write\", stages = 2",
        r#"{ action = "restart-stage", at = "1s", target = 2 }"#,
    ));
    assert!(
        e.contains("restart-stage target = 2, but there are 2 stages; valid: 0 to 1"),
        "{e}"
    );
    let e = rejected(&with("kafka", "port = 19290, stages = 2", ""));
    assert!(
        e.contains("variants[0].options.stages: stages is a pipeline's setting"),
        "{e}"
    );
    let e = rejected(&with(
        "kafka",
        "port = 19290, pipeline = \"read-process-write\", stages = 3",
        "",
    ));
    assert!(e.contains("valid is 1 to 2"), "{e}");
}
