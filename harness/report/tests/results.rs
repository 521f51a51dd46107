//! Reading results.json: schema 1 (per-second series, no `series.bin_s`) still reports; odd
//! values are clear errors, never a panic.

mod common;

use common::*;

#[test]
fn a_schema_1_folder_without_bin_s_still_reports_its_series_as_per_second() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = results(&[Variant::new("old", 4.0, 1.0)], 2000);
    r["schema"] = "mq-bench.results/1".into();
    r["variants"][0]["report"]["series"]
        .as_object_mut()
        .unwrap()
        .remove("bin_s");
    write(dir.path(), &r);
    let loaded = mq_report::load(dir.path()).unwrap();
    let s = &loaded.results.variants[0].report.as_ref().unwrap().series;
    assert_eq!(s.bin_s, 1.0);
    assert_eq!(s.acked.len(), 4);
    let files = mq_report::generate(dir.path()).unwrap();
    assert!(files.iter().any(|f| f.ends_with("report.html")));
    let svg = std::fs::read_to_string(dir.path().join("charts/throughput.svg")).unwrap();
    assert!(svg.contains("msgs/s (1 s bins)"), "unit label missing");
}

#[test]
fn a_bin_width_that_is_not_a_positive_number_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [serde_json::json!(0.0), serde_json::json!(-1.0)] {
        let mut r = results(&[Variant::new("odd", 2.0, 0.01)], 2000);
        r["variants"][0]["report"]["series"]["bin_s"] = bad.clone();
        write(dir.path(), &r);
        let e = format!("{:#}", mq_report::generate(dir.path()).err().unwrap());
        assert!(e.contains("series.bin_s") && e.contains("\"odd\""), "{e}");
    }
}

#[test]
fn an_unknown_schema_is_refused_naming_what_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = results(&[Variant::new("v", 2.0, 0.01)], 2000);
    r["schema"] = "mq-bench.results/99".into();
    write(dir.path(), &r);
    let e = format!("{:#}", mq_report::load(dir.path()).err().unwrap());
    assert!(
        e.contains("mq-bench.results/99") && e.contains("mq-bench.results/1"),
        "{e}"
    );
}

#[test]
fn odd_but_well_formed_values_chart_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let vs: Vec<Variant> = (0..6)
        .map(|i| Variant::new(&format!("v{i}"), 2.0, 0.01).fault(1.0, "kill-broker"))
        .collect();
    let mut r = results(&vs, 0);
    let v = &mut r["variants"];
    // A tiny bin, a negative backlog (schema 1 could hold one), faults before the start and
    // far after it, depth samples out of order and before the start, empty series.
    v[0]["report"]["series"]["bin_s"] = 1e-9.into();
    v[1]["report"]["series"]["backlog"] = serde_json::json!([-5, -2, 0, 3]);
    v[2]["faults"][0]["t"] = (-3.0).into();
    v[2]["faults"].as_array_mut().unwrap().push(
        serde_json::json!({"t": 1e12, "action": "kill-broker", "target": null,
            "label": "late", "ok": false, "error": "x", "took_s": 0.0}),
    );
    v[3]["report"]["broker_depth"] = serde_json::json!([{"t": 5.0, "messages": 1, "bytes": null}, {"t": -1.0, "messages": 2, "bytes": null}]);
    for s in ["sent", "acked", "failed", "delivered", "backlog"] {
        v[4]["report"]["series"][s] = serde_json::json!([]);
    }
    v[5]["report"]["series"]["bin_s"] = 1e9.into();
    write(dir.path(), &r);
    let files = mq_report::generate(dir.path()).unwrap();
    assert!(files.iter().any(|f| f.ends_with("charts/backlog.png")));
}
