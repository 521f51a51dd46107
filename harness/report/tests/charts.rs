//! The charts of a crash matrix (nine variants, faults, a broker down for a second) are drawn
//! as small multiples that can be read. The run folder is kept under the target dir
//! (`…/tmp/crash-matrix-charts`) so its charts and report.html can be looked at.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// Nine variants shaped like scenarios/crash-matrix.toml's.
pub fn crash_matrix() -> serde_json::Value {
    let v = |name: &str| Variant::new(name, 8.0, 0.1);
    let broker = |v: Variant| {
        v.fault(2.0, "kill-broker")
            .fault(3.0, "restart-broker")
            .down(2.0, 3.4)
    };
    let consumer = |v: Variant, at: f64| {
        v.fault(at, "kill-consumer")
            .fault(at + 0.5, "restart-consumer")
    };
    results(
        &[
            broker(v("rabbitmq-confirms-durable-manual"))
                .fault(4.0, "restart-consumer")
                .anomalies(0, 1187, 0),
            consumer(v("rabbitmq-autoack"), 3.0).anomalies(34, 0, 0),
            broker(v("rabbitmq-transient-manual")).anomalies(8, 0, 0),
            consumer(broker(v("kafka-acks-all-commit-after")), 5.0).anomalies(0, 8263, 0),
            consumer(v("kafka-auto-commit"), 3.0).anomalies(64, 0, 2),
            consumer(broker(v("log-fsync-always-acks-fsynced")), 4.0).anomalies(0, 412, 0),
            consumer(broker(v("log-fsync-never-auto-commit")), 4.0).anomalies(1, 0, 0),
            consumer(v("sysv-consumer-kill"), 3.0).anomalies(1, 0, 0),
            v("sysv-remove-queue")
                .fault(2.0, "pause-consumers")
                .fault(3.0, "remove-queue")
                .anomalies(2000, 0, 0),
        ],
        2000,
    )
}

/// Writes `results` to `…/tmp/NAME` (kept for looking at) and builds its report.
fn report(name: &str, results: &serde_json::Value) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    write(&dir, results);
    mq_report::generate(&dir).unwrap();
    dir
}

fn svg(dir: &Path, chart: &str) -> String {
    std::fs::read_to_string(dir.join(format!("charts/{chart}.svg"))).unwrap()
}

fn names(r: &serde_json::Value) -> Vec<String> {
    r["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The lowest and highest y, and the highest x, of the data lines: 2 px polylines of more
/// than two points (a key's sample line has two).
fn data_extent(svg: &str) -> (f64, f64, f64) {
    let pts: Vec<(f64, f64)> = svg_polylines(svg)
        .into_iter()
        .filter(|(_, w, pts)| w == "2" && pts.len() > 2)
        .flat_map(|(_, _, pts)| pts)
        .collect();
    assert!(!pts.is_empty(), "no data lines");
    pts.iter()
        .fold((f64::MAX, f64::MIN, f64::MIN), |(y0, y1, x1), (x, y)| {
            (y0.min(*y), y1.max(*y), x1.max(*x))
        })
}

/// The top of the highest plotting area: the least y of the axes (black 1 px polylines).
fn plots_top(svg: &str) -> f64 {
    svg_polylines(svg)
        .into_iter()
        .filter(|(c, w, _)| c == "#000000" && w == "1")
        .flat_map(|(_, _, pts)| pts)
        .map(|p| p.1)
        .fold(f64::MAX, f64::min)
}

fn overlap(a: (f64, f64, f64, f64), b: (f64, f64, f64, f64)) -> bool {
    a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3
}

#[test]
fn a_crash_matrix_draws_a_panel_per_variant_with_the_key_above_the_panels() {
    let r = crash_matrix();
    let dir = report("crash-matrix-charts", &r);
    for (chart, key) in [
        ("throughput", "acked"),
        ("backlog", "broker depth (samples)"),
    ] {
        let svg = svg(&dir, chart);
        let texts = svg_texts(&svg);
        for name in names(&r) {
            let titles = texts.iter().filter(|t| t.text == name).count();
            assert_eq!(titles, 1, "{chart}: panel title {name:?}");
            assert!(
                !texts
                    .iter()
                    .any(|t| t.text.starts_with(&format!("{name} "))),
                "{chart}: a key entry per variant"
            );
        }
        let top = plots_top(&svg).min(data_extent(&svg).0);
        let key = texts.iter().find(|t| t.text == key).expect(key);
        assert!(key.bounds().3 < top, "{chart}: the key overlaps the plots");
    }
}

#[test]
fn each_panel_labels_its_own_faults_and_no_label_prints_over_another_text() {
    let dir = report("crash-matrix-charts-labels", &crash_matrix());
    for chart in ["throughput", "backlog"] {
        let svg = svg(&dir, chart);
        let texts = svg_texts(&svg);
        let count = |label: &str| texts.iter().filter(|t| t.text == label).count();
        assert_eq!(count("kill-broker@2s"), 5, "{chart}");
        assert_eq!(count("restart-broker@3s"), 5, "{chart}");
        assert_eq!(count("kill-consumer@3s"), 3, "{chart}");
        assert_eq!(count("remove-queue@3s"), 1, "{chart}");
        let labels: Vec<&SvgText> = texts.iter().filter(|t| t.text.contains('@')).collect();
        assert_eq!(labels.len(), 25, "{chart}");
        for l in &labels {
            for t in &texts {
                if !std::ptr::eq(*l, t) {
                    assert!(
                        !overlap(l.bounds(), t.bounds()),
                        "{chart}: {:?} prints over {:?}",
                        l.text,
                        t.text
                    );
                }
            }
        }
    }
}

#[test]
fn up_to_four_variants_share_a_chart_with_the_key_right_of_the_plot() {
    let r = results(
        &[
            Variant::new("alpha", 6.0, 0.1)
                .fault(2.0, "kill-broker")
                .fault(3.0, "restart-broker")
                .down(2.0, 3.2),
            Variant::new("beta", 6.0, 0.1)
                .fault(2.0, "kill-broker")
                .fault(3.0, "restart-broker"),
            Variant::new("gamma", 5.0, 0.1).fault(2.2, "kill-consumer"),
        ],
        2000,
    );
    let dir = report("few-variants-charts", &r);
    for chart in ["throughput", "backlog"] {
        let svg = svg(&dir, chart);
        let texts = svg_texts(&svg);
        let (_, _, right) = data_extent(&svg);
        for name in names(&r) {
            let key = texts.iter().find(|t| t.text == name).expect(&name);
            assert!(
                key.bounds().0 > right,
                "{chart}: key entry {name} over the plot"
            );
        }
        // The same fault of two variants is labelled once; one variant's own is named.
        let labels: Vec<&str> = texts
            .iter()
            .filter(|t| t.text.contains('@'))
            .map(|t| t.text.as_str())
            .collect();
        assert_eq!(
            labels,
            [
                "kill-broker@2s",
                "restart-broker@3s",
                "gamma: kill-consumer@2.2s"
            ],
            "{chart}"
        );
    }
}

#[test]
fn the_latency_key_is_below_the_curves() {
    let r = crash_matrix();
    let dir = report("crash-matrix-charts-latency", &r);
    let svg = svg(&dir, "latency");
    let (_, bottom, _) = data_extent(&svg);
    let texts = svg_texts(&svg);
    for name in names(&r) {
        let key = texts.iter().find(|t| t.text == name).expect(&name);
        assert!(key.bounds().1 > bottom, "key entry {name} over the curves");
    }
}

#[test]
fn every_lost_message_gets_a_visible_bar_labelled_with_its_count() {
    let r = crash_matrix();
    let dir = report("crash-matrix-charts-anomalies", &r);
    let svg = svg(&dir, "anomalies");
    let rects = svg_rects(&svg);
    let texts = svg_texts(&svg);
    for (i, v) in r["variants"].as_array().unwrap().iter().enumerate() {
        let fill = mq_report::charts::colour_hex(i).to_uppercase();
        for metric in ["lost", "duplicated", "reordered"] {
            let n = v["report"]["counts"][metric].as_u64().unwrap();
            if n == 0 {
                continue;
            }
            // A bar at least 20 px long and 10 px thick, in the variant's colour.
            let bars = rects
                .iter()
                .filter(|r| r.4 == fill && r.2.max(r.3) >= 20.0 && r.2.min(r.3) >= 10.0)
                .count();
            assert!(bars >= 1, "{} {metric} = {n}: no visible bar", v["name"]);
            assert!(
                texts.iter().any(|t| t.text == n.to_string()),
                "{} {metric} = {n}: no label",
                v["name"]
            );
        }
    }
    // The losses have their own panel.
    assert!(texts.iter().any(|t| t.text.starts_with("lost")));
}
