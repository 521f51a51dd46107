use super::*;
use crate::tables::tests::{run, variant};
use mq_core::plan::Dur;
use mq_results::FaultEvent;
use std::time::Duration;

fn fault() -> FaultEvent {
    serde_json::from_value(serde_json::json!({
        "t": 2.0, "action": "kill-broker", "target": null, "label": "kill-broker@2s",
        "ok": true, "error": null, "took_s": 0.1
    }))
    .unwrap()
}

/// A drained variant with these figures.
fn v(name: &str, rate: f64, p99_us: f64, lost: u64, reordered: u64) -> VariantResult {
    let mut v = variant(name, lost, 0);
    v.ended_by = Some(EndedBy::Drained);
    let rep = v.report.as_mut().unwrap();
    rep.throughput.delivered_msgs_per_s = rate;
    rep.latency.end_to_end.count = 1000;
    rep.latency.end_to_end.p99_us = p99_us;
    rep.counts.reordered = reordered;
    v
}

fn req() -> Requirements {
    Requirements {
        min_msgs_per_s: Some(20_000.0),
        max_p99: Some(Dur(Duration::from_millis(50))),
        max_lost: Some(0),
        ordering: Some(OrderingRequirement::PerKey),
        ..Requirements::default()
    }
}

fn one(r: &RunResults) -> Review {
    review(
        &req(),
        &[Source {
            label: "run".into(),
            base: String::new(),
            results: r,
        }],
    )
}

#[test]
fn variants_meeting_every_requirement_come_first_and_each_miss_links_its_chart() {
    let r = run(vec![
        v("slow", 9_000.0, 4_000.0, 0, 0),
        v("good", 19_900.0, 30_000.0, 0, 0),
        v("lossy", 50_000.0, 1_000.0, 3, 7),
    ]);
    let rev = one(&r);
    let order: Vec<&str> = rev.rows.iter().map(|r| r.variant.as_str()).collect();
    assert_eq!(order, ["good", "slow", "lossy"]);
    assert!(rev.any_meets_all());
    let good = &rev.rows[0];
    assert!(good.meets_all(), "19 900 is within 1 % of 20 000: {good:?}");
    let slow = &rev.rows[1];
    assert_eq!(slow.cells[0].verdict, Verdict::Missed);
    assert_eq!(slow.cells[0].link.as_deref(), Some("charts/throughput.png"));
    let lossy = &rev.rows[2];
    assert_eq!(
        lossy.cells.iter().map(|c| c.verdict).collect::<Vec<_>>(),
        [Verdict::Met, Verdict::Met, Verdict::Missed, Verdict::Missed]
    );
    assert_eq!(lossy.cells[2].text, "3 lost");
    assert_eq!(lossy.cells[3].link.as_deref(), Some("charts/anomalies.png"));
    let md = crate::summary::table(&table(&rev));
    assert!(md.contains("| good | **✓ yes** | ✓ 19900 msg/s |"), "{md}");
    assert!(md.contains("✗ 3 lost [why](charts/anomalies.png)"), "{md}");
}

#[test]
fn a_figure_no_run_measured_is_unknown_with_why_never_a_silent_pass() {
    let mut failed = variant("down", 0, 0);
    failed.report = None;
    failed.status = VariantStatus::Failed;
    failed.reason = Some("broker did not start".into());
    let mut r = run(vec![failed, v("ok", 30_000.0, 1_000.0, 0, 0)]);
    r.variants[1].ended_by = Some(EndedBy::DrainTimeout);
    let mut q = req();
    q.max_cpu_us_per_msg = Some(50.0);
    let rev = review(
        &q,
        &[Source {
            label: "run".into(),
            base: String::new(),
            results: &r,
        }],
    );
    assert!(!rev.any_meets_all());
    let down = rev.rows.iter().find(|r| r.variant == "down").unwrap();
    assert!(down.cells.iter().all(|c| c.verdict == Verdict::Unknown));
    assert!(down.cells[0].text.contains("broker did not start"), "{down:?}");
    let ok = rev.rows.iter().find(|r| r.variant == "ok").unwrap();
    assert_eq!(ok.cells[0].verdict, Verdict::Unknown, "did not drain: no rate");
    assert_eq!(ok.cells[1].verdict, Verdict::Met);
    assert_eq!(ok.cells[4].verdict, Verdict::Unknown);
    assert!(ok.cells[4].text.contains("no resource figures"), "{ok:?}");
}

#[test]
fn a_study_judges_a_name_across_runs_rate_from_the_best_loss_from_the_worst() {
    let speed = run(vec![v("kafka", 40_000.0, 9_000.0, 0, 0)]);
    let mut crash_v = v("kafka", 2_000.0, 900_000.0, 5, 0);
    crash_v.faults.push(fault());
    let crash = run(vec![crash_v]);
    let rev = review(
        &req(),
        &[
            Source {
                label: "speed".into(),
                base: "a/".into(),
                results: &speed,
            },
            Source {
                label: "crash".into(),
                base: "b/".into(),
                results: &crash,
            },
        ],
    );
    assert_eq!(rev.rows.len(), 1);
    let c = &rev.rows[0].cells;
    assert_eq!((c[0].verdict, c[0].run.as_deref()), (Verdict::Met, Some("speed")));
    assert_eq!(c[1].verdict, Verdict::Met, "the fault's stall is not steady latency");
    assert_eq!((c[2].verdict, c[2].run.as_deref()), (Verdict::Missed, Some("crash")));
    assert_eq!(c[2].link.as_deref(), Some("b/charts/anomalies.png"));
}

#[test]
fn a_search_s_maximum_is_the_rate_of_its_variant() {
    let mut r = run(vec![v("log.probe-1", 90_000.0, 100.0, 0, 0)]);
    r.searches.push(serde_json::from_value(serde_json::json!({
        "variant": "log", "max_rate": 80000, "max_mb_per_s": 8.0, "probes": [],
        "decision": "d", "measuring_s": 1.0, "total_s": 1.0
    })).unwrap());
    let rev = one(&r);
    assert_eq!(rev.rows.len(), 1, "probes are the search's");
    let c = &rev.rows[0].cells[0];
    assert_eq!(c.verdict, Verdict::Met);
    assert_eq!(c.run.as_deref(), Some("run (max sustainable)"));
}

#[test]
fn the_run_s_summary_starts_with_the_review_when_its_scenario_has_requirements() {
    let mut r = run(vec![v("a", 30_000.0, 1_000.0, 0, 0)]);
    assert!(of_run(&r).is_none());
    r.scenario.requirements = Some(req());
    let s = crate::tables::summary(&r);
    assert_eq!(s.tables[0].title, "Review");
    assert_eq!(s.tables[0].column("meets all"), ["✓ yes"]);
}
