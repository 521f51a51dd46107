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
    assert_eq!(lossy.cells[2].text, "3 lost (no fault in these runs)");
    assert_eq!(lossy.cells[3].link.as_deref(), Some("charts/anomalies.png"));
    let md = crate::summary::table(&table(&rev));
    assert!(md.contains("| good | **✓ yes** | ✓ 19900 msg/s |"), "{md}");
    assert!(
        md.contains("✗ 3 lost (no fault in these runs) [why](charts/anomalies.png)"),
        "{md}"
    );
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
    assert!(
        down.cells[0].text.contains("broker did not start"),
        "{down:?}"
    );
    let ok = rev.rows.iter().find(|r| r.variant == "ok").unwrap();
    assert_eq!(
        ok.cells[0].verdict,
        Verdict::Unknown,
        "did not drain: no rate"
    );
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
    assert_eq!(
        (c[0].verdict, c[0].run.as_deref()),
        (Verdict::Met, Some("speed"))
    );
    assert_eq!(
        c[1].verdict,
        Verdict::Met,
        "the fault's stall is not steady latency"
    );
    assert_eq!(
        (c[2].verdict, c[2].run.as_deref()),
        (Verdict::Missed, Some("crash"))
    );
    assert_eq!(c[2].link.as_deref(), Some("b/charts/anomalies.png"));
}

#[test]
fn a_search_s_maximum_is_the_rate_of_its_variant() {
    let mut r = run(vec![v("log.probe-1", 90_000.0, 100.0, 0, 0)]);
    r.searches.push(
        serde_json::from_value(serde_json::json!({
            "variant": "log", "max_rate": 80000, "max_mb_per_s": 8.0, "probes": [],
            "decision": "d", "measuring_s": 1.0, "total_s": 1.0
        }))
        .unwrap(),
    );
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

#[test]
fn cost_requirements_use_the_run_s_cost_figures_or_say_the_broker_was_not_measured() {
    let usage = mq_results::cost::Usage::default();
    let cost = |total: Option<f64>, amp: Option<f64>, note: Option<&str>| mq_results::cost::Cost {
        interval_ms: 250,
        span_s: 10.0,
        cores: 2,
        broker: None,
        broker_note: note.map(str::to_owned),
        producers: usage.clone(),
        consumers: usage.clone(),
        cpu_share: 0.5,
        per_message: Some(mq_results::cost::PerMessage {
            messages: 1000,
            message_bytes: 100_000,
            broker_cpu_us: total,
            clients_cpu_us: 1.0,
            total_cpu_us: total,
            cpu_s_per_million: 3.0,
            write_amplification: amp,
        }),
        series: Default::default(),
        processes: Vec::new(),
        sampler_cpu_s: 0.0,
    };
    let mut a = v("cheap", 30_000.0, 1_000.0, 0, 0);
    a.cost = Some(cost(Some(3.0), Some(1.2), None));
    let mut b = v("dear", 30_000.0, 1_000.0, 0, 0);
    b.cost = Some(cost(Some(80.0), Some(4.0), None));
    let mut k = v("kernel", 30_000.0, 1_000.0, 0, 0);
    k.cost = Some(cost(None, None, Some("the broker is the kernel")));
    let r = run(vec![a, b, k]);
    let q = Requirements {
        max_cpu_us_per_msg: Some(10.0),
        max_write_amplification: Some(2.0),
        ..Requirements::default()
    };
    let rev = review(
        &q,
        &[Source {
            label: "r".into(),
            base: String::new(),
            results: &r,
        }],
    );
    let verdicts: Vec<(&str, Vec<Verdict>)> = (rev.rows.iter())
        .map(|r| {
            (
                r.variant.as_str(),
                r.cells.iter().map(|c| c.verdict).collect(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("cheap", vec![Verdict::Met, Verdict::Met]),
            ("dear", vec![Verdict::Missed, Verdict::Missed]),
            ("kernel", vec![Verdict::Unknown, Verdict::Unknown]),
        ]
    );
    assert_eq!(
        rev.rows[1].cells[0].link.as_deref(),
        Some("charts/cost.png")
    );
    assert!(
        rev.rows[2].cells[0]
            .text
            .contains("the broker is the kernel"),
        "{rev:?}"
    );
}

#[test]
fn names_up_to_an_at_sign_are_one_row_and_a_loss_count_says_when_no_fault_ran() {
    let steady = v("kafka@steady", 25_000.0, 9_000.0, 0, 0);
    let mut killed = v("kafka@kill-broker", 3_000.0, 2_000_000.0, 0, 0);
    killed.faults.push(fault());
    let calm = v("sysv", 90_000.0, 100.0, 0, 0);
    let r = run(vec![steady, killed, calm]);
    let rev = one(&r);
    let names: Vec<&str> = rev.rows.iter().map(|r| r.variant.as_str()).collect();
    assert_eq!(names, ["kafka", "sysv"]);
    let kafka = &rev.rows[0].cells;
    assert_eq!(
        kafka[0].text, "25000 msg/s",
        "the rate of the run without faults"
    );
    assert_eq!(kafka[1].text, "p99 9.00 ms");
    assert_eq!(kafka[2].text, "0 lost", "the faulted run's count");
    assert_eq!(rev.rows[1].cells[2].text, "0 lost (no fault in these runs)");
    assert_eq!(row_name("kafka@x.run-12"), "kafka");
    assert_eq!(row_name("log.run-2"), "log");
    assert_eq!(row_name("log.run-x"), "log.run-x");
}
