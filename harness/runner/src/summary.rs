//! summary.md: the comparison tables an architecture review pastes, built from results alone.

use std::fmt::Write;

use mq_results::{RunResults, VariantStatus};

fn n(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn status(s: VariantStatus) -> &'static str {
    match s {
        VariantStatus::Ok => "ok",
        VariantStatus::Failed => "FAILED",
        VariantStatus::Skipped => "skipped",
        VariantStatus::Interrupted => "interrupted",
        VariantStatus::NotRun => "not run",
    }
}

/// The Markdown summary of a run.
pub fn markdown(r: &RunResults) -> String {
    let mut s = String::new();
    let w = &r.scenario.workload;
    let _ = writeln!(
        s,
        "# {}{}\n",
        r.scenario.name,
        if r.partial {
            " (PARTIAL: run interrupted)"
        } else {
            ""
        }
    );
    if !r.scenario.description.is_empty() {
        let _ = writeln!(s, "{}\n", r.scenario.description.trim());
    }
    let load = match (w.messages, w.duration) {
        (Some(m), _) => format!("{m} messages"),
        (_, Some(d)) => format!("{} of sending", humantime::format_duration(d.0)),
        _ => String::new(),
    };
    let rate = if w.rate == 0 {
        "unbounded rate".to_owned()
    } else {
        format!("{} msg/s target", w.rate)
    };
    let _ = writeln!(
        s,
        "Workload: {load} of {} B, {} producer(s), {} consumer(s), {} partition(s), {rate}. Machine: {} cores, {}, kernel {}. Started {}.\n",
        w.message_size, w.producers, w.consumers, w.partitions, r.machine.cores, r.machine.cpu, r.machine.kernel, r.started_at
    );

    let _ = writeln!(s, "## Speed\n");
    let _ = writeln!(
        s,
        "| variant | backend | status | acked msg/s | acked MB/s | delivered msg/s | publish p50 / p99 (µs) | end-to-end p50 / p99 / p99.9 (µs) | backlog peak (history / broker) |"
    );
    let _ = writeln!(s, "|---|---|---|---:|---:|---:|---:|---:|---:|");
    for v in &r.variants {
        match &v.report {
            Some(rep) => {
                let (t, p, e) = (
                    &rep.throughput,
                    &rep.latency.publish,
                    &rep.latency.end_to_end,
                );
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {} / {} | {} / {} / {} | {} / {} |",
                    v.name,
                    v.backend,
                    status(v.status),
                    n(t.acked_msgs_per_s),
                    n(t.acked_mb_per_s),
                    n(t.delivered_msgs_per_s),
                    n(p.p50_us),
                    n(p.p99_us),
                    n(e.p50_us),
                    n(e.p99_us),
                    n(e.p999_us),
                    rep.backlog_peak,
                    rep.broker_depth_peak
                        .map_or("–".to_owned(), |d| d.to_string())
                );
            }
            None => {
                let why = v.reason.as_deref().unwrap_or("");
                let fix = v
                    .fix
                    .as_deref()
                    .map(|f| format!(" (fix: `{f}`)"))
                    .unwrap_or_default();
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {why}{fix} | | | | | |",
                    v.name,
                    v.backend,
                    status(v.status)
                );
            }
        }
    }

    let _ = writeln!(s, "\n## Correctness\n");
    let _ = writeln!(
        s,
        "| variant | sent | acked | failed | not sent | unknown | delivered | **lost** | unacked-lost | recovered | duplicated | reordered | unexpected | ended by |"
    );
    let _ = writeln!(
        s,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for v in &r.variants {
        if let Some(rep) = &v.report {
            let c = &rep.counts;
            let ended = v.ended_by.map(|e| {
                serde_json::to_value(e)
                    .unwrap()
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            });
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | **{}** | {} | {} | {} | {} | {} | {} |",
                v.name,
                c.sent,
                c.acked,
                c.failed,
                c.not_sent,
                c.unknown,
                c.delivered,
                c.lost,
                c.unacked_lost,
                c.recovered,
                c.duplicated,
                c.reordered,
                c.unexpected,
                ended.unwrap_or_default()
            );
        }
    }
    if r.variants.iter().any(|v| v.report.is_some()) {
        let _ = writeln!(s, "\n## Guarantees\n");
        let _ = writeln!(
            s,
            "| variant | faults | acked | lost | unacked-lost | duplicated | reordered | contract | kept |"
        );
        let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---|---|");
        for v in &r.variants {
            let (Some(rep), Some(contract)) = (&v.report, v.contract) else {
                continue;
            };
            let c = &rep.counts;
            let faults: Vec<String> = v
                .faults
                .iter()
                .map(|f| {
                    if f.ok {
                        f.label.clone()
                    } else {
                        format!("{} (failed)", f.label)
                    }
                })
                .collect();
            let kept = match (v.contract_kept, &v.contract_note) {
                (Some(true), _) => "✓".to_owned(),
                (Some(false), Some(why)) => format!("✗ {why}"),
                (Some(false), None) => "✗".to_owned(),
                (None, _) => String::new(),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {contract} | {kept} |",
                v.name,
                if faults.is_empty() {
                    "none".to_owned()
                } else {
                    faults.join(", ")
                },
                c.acked,
                c.lost,
                c.unacked_lost,
                c.duplicated,
                c.reordered
            );
        }
    }
    let failures: Vec<_> = r
        .variants
        .iter()
        .filter_map(|v| v.reason.as_ref().map(|why| (v, why)))
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(s, "\n## Notes\n");
        for (v, why) in failures {
            let _ = writeln!(s, "- **{}** ({}): {why}", v.name, status(v.status));
        }
    }
    let _ = writeln!(
        s,
        "\nLatencies are measured from each message's intended send time (no coordinated omission). `lost` = acked and never delivered."
    );
    s
}
