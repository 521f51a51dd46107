//! `consumers = 0`: the publish side alone, as producer-only peer tools measure it. The variant
//! ends with its producers, its acked messages are not counted lost, and the report says that
//! delivery was not measured rather than showing zeros as if it had been.

mod common;

use common::*;

#[test]
fn a_producer_only_run_ends_with_its_producers_and_measures_no_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(
        dir.path(),
        "alone.toml",
        r#"
name = "alone"
[workload]
messages = 20000
message_size = 100
producers = 2
consumers = 0
[[variants]]
name = "log-alone"
backend = "log"
producer_ack = "all"
"#,
    );
    let out = dir.path().join("run");
    let r = run_ok(&scenario, &out);
    let v = &r["variants"][0];
    assert_eq!(v["status"], "ok", "{v}");
    assert_eq!(v["ended_by"], "produced");
    assert_eq!(v["contract_kept"], serde_json::Value::Null);
    assert!(
        v["contract_note"]
            .as_str()
            .unwrap()
            .contains("not measured"),
        "{v}"
    );
    let c = counts(&r, 0);
    for (field, want) in [("sent", 20000), ("acked", 20000), ("delivered", 0)] {
        assert_eq!(u(&c, field), want, "{field}");
    }
    for field in ["lost", "unacked_lost", "duplicated", "reordered"] {
        assert_eq!(u(&c, field), 0, "{field}");
    }
    let rep = &v["report"];
    assert!(rep["throughput"]["acked_msgs_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(rep["latency"]["publish"]["count"], 20000);
    assert_eq!(rep["latency"]["end_to_end"]["count"], 0);
    // What the broker holds is the backlog: everything acked.
    assert_eq!(rep["backlog_peak"], 20000);
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    let row = summary
        .lines()
        .find(|l| l.starts_with("| log-alone | 20000 | 20000 |"))
        .unwrap_or_else(|| panic!("no correctness row in:\n{summary}"));
    assert!(
        row.contains("| – | – |") && row.ends_with("| produced |"),
        "{row}"
    );
}
