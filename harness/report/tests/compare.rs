//! `compare` lists what differs between the scenarios of BASE and NEW before any figure.

mod common;

use std::path::Path;

use common::*;
use mq_report::compare::{compare, markdown, refusal, text, Side, Thresholds};

fn side(dir: &Path, results: &serde_json::Value, scenario_toml: Option<&str>) -> Side {
    write(dir, results);
    if let Some(t) = scenario_toml {
        std::fs::write(dir.join("scenario.toml"), t).unwrap();
    }
    Side::load(dir).unwrap()
}

fn variants() -> Vec<Variant> {
    vec![
        Variant::new("sysv", 4.0, 0.05),
        Variant::new("log", 4.0, 0.05),
    ]
}

const TOML: &str = r#"
name = "crafted"
[workload]
duration = "6s"
[[variants]]
name = "sysv"
backend = "sysv"
faults = [{ action = "kill-consumer", at = "2s" }]
[[variants]]
name = "log"
backend = "log"
"#;

#[test]
fn the_same_scenario_has_no_differences() {
    let tmp = tempfile::tempdir().unwrap();
    let b = side(&tmp.path().join("b"), &results(&variants(), 0), Some(TOML));
    let n = side(&tmp.path().join("n"), &results(&variants(), 0), Some(TOML));
    let c = compare(&b, &n, &Thresholds::default());
    assert!(c.scenario_changes.is_empty(), "{:?}", c.scenario_changes);
    assert!(!c.scenario_changed());
    assert!(!text(&c).contains("scenarios differ"));
    assert!(c.notes.is_empty(), "{:?}", c.notes);
}

#[test]
fn a_changed_rate_is_listed_with_both_values_first() {
    let tmp = tempfile::tempdir().unwrap();
    let b = side(&tmp.path().join("b"), &results(&variants(), 0), Some(TOML));
    let n = side(
        &tmp.path().join("n"),
        &results(&variants(), 250_000),
        Some(TOML),
    );
    let c = compare(&b, &n, &Thresholds::default());
    assert_eq!(c.scenario_changes.len(), 1, "{:?}", c.scenario_changes);
    let d = &c.scenario_changes[0];
    assert_eq!(
        (d.field.as_str(), d.base.as_str(), d.new.as_str()),
        ("workload.rate", "0", "250000")
    );
    let t = text(&c);
    let first_row = t.find("variant").unwrap();
    let change = t.find("  workload.rate: 0 -> 250000").expect(&t);
    assert!(
        change < first_row,
        "the difference comes before the table:\n{t}"
    );
    assert!(
        t.lines().next().unwrap().contains("the scenarios differ"),
        "{t}"
    );
    let md = markdown(&c);
    assert!(md.contains("| `workload.rate` | 0 | 250000 |"), "{md}");
    let r = refusal(&c, false);
    assert!(r.contains("--allow-scenario-change") && r.contains("workload.rate: 0 -> 250000"));
}

#[test]
fn variant_settings_options_overrides_and_fault_schedules_are_compared() {
    let tmp = tempfile::tempdir().unwrap();
    let b = results(&variants(), 0);
    let mut n = results(&variants(), 0);
    n["variants"][0]["delivery"]["producer_ack"] = "all".into();
    n["variants"][0]["options"] = serde_json::json!({"msg_qbytes": 65536});
    // The log variant sends larger messages than the scenario's.
    let mut w = n["scenario"]["workload"].clone();
    w["message_size"] = 1024.into();
    n["variants"][1]["workload"] = w;
    let toml_new = TOML.replace("at = \"2s\"", "at = \"3s\"");
    let b = side(&tmp.path().join("b"), &b, Some(TOML));
    let n = side(&tmp.path().join("n"), &n, Some(&toml_new));
    let c = compare(&b, &n, &Thresholds::default());
    let got: Vec<(&str, &str, &str)> = c
        .scenario_changes
        .iter()
        .map(|d| (d.field.as_str(), d.base.as_str(), d.new.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("variants.log.workload.message_size", "–", "1024"),
            ("variants.sysv.delivery.producer_ack", "leader", "all"),
            (
                "variants.sysv.faults",
                "kill-consumer@2s",
                "kill-consumer@3s"
            ),
            ("variants.sysv.options.msg_qbytes", "–", "65536"),
        ]
    );
}

#[test]
fn repetitions_that_disagree_show_each_value_and_a_missing_scenario_toml_is_noted() {
    let tmp = tempfile::tempdir().unwrap();
    for (rep, rate) in [("rep-1", 0), ("rep-2", 1000)] {
        write(&tmp.path().join("b").join(rep), &results(&variants(), rate));
    }
    let b = Side::load(&tmp.path().join("b")).unwrap();
    let n = side(&tmp.path().join("n"), &results(&variants(), 0), None);
    let c = compare(&b, &n, &Thresholds::default());
    assert_eq!(c.scenario_changes.len(), 1);
    assert_eq!(c.scenario_changes[0].base, "0 | 1000");
    assert_eq!(c.scenario_changes[0].new, "0");
    assert!(
        c.notes
            .iter()
            .any(|n| n.contains("fault schedules not compared")),
        "{:?}",
        c.notes
    );
}

#[test]
fn an_unreadable_scenario_toml_is_a_note_not_a_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let b = side(
        &tmp.path().join("b"),
        &results(&variants(), 0),
        Some("not = [toml"),
    );
    let n = side(&tmp.path().join("n"), &results(&variants(), 0), Some(TOML));
    let c = compare(&b, &n, &Thresholds::default());
    assert!(c.scenario_changes.is_empty(), "{:?}", c.scenario_changes);
    assert!(
        c.notes.iter().any(|n| n.contains("BASE's scenario.toml")),
        "{:?}",
        c.notes
    );
}
