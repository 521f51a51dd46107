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
        e.contains("bad.toml:5:13: workload.producers: producers = 0: valid is 1 to 1024"),
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
