//! The summary as data: a run's title, workload line, tables (Speed, Correctness, Guarantees;
//! [`crate::doc`]) and notes, built once from results.json. summary.md ([`crate::summary`]) and
//! report.html ([`crate::html`]) both render this, so the two never disagree and nothing parses
//! Markdown.

use mq_results::{RunResults, VariantResult, VariantStatus};
use serde::Serialize;

use crate::doc::{Align, Span, Table, Text};

/// What summary.md and the summary part of report.html show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The scenario's name, marked when the run was interrupted.
    pub title: String,
    /// The scenario's description, trimmed; may be empty or hold several lines.
    pub description: String,
    /// The workload and machine in one sentence.
    pub workload: String,
    pub tables: Vec<Table>,
    /// Why variants failed or were skipped, one entry each.
    pub notes: Vec<Text>,
    /// How to read the figures.
    pub footer: Text,
}

use Align::{Left, Right};

/// A figure with three significant digits or so: 866213, 86.6, 0.42.
pub fn n(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A variant's status as the tables write it (`FAILED` stands out).
pub fn status(s: VariantStatus) -> &'static str {
    match s {
        VariantStatus::Ok => "ok",
        VariantStatus::Failed => "FAILED",
        VariantStatus::Skipped => "skipped",
        VariantStatus::Interrupted => "interrupted",
        VariantStatus::NotRun => "not run",
    }
}

/// A unit enum as results.json spells it (`drain-timeout`).
pub fn json_name(v: impl Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// The summary of run `r`.
pub fn summary(r: &RunResults) -> Summary {
    let mut tables: Vec<Table> = crate::review::of_run(r).into_iter().collect();
    tables.extend([speed(r), correctness(r)]);
    if r.variants.iter().any(|v| v.report.is_some()) {
        tables.push(crate::guarantees::table(r));
    }
    tables.extend(crate::rebalance::table(r));
    tables.extend(crate::cost::table(r));
    tables.extend(crate::dedup::table(r));
    tables.extend(crate::sweep::search_table(r));
    tables.extend(crate::sweep::table(r));
    tables.extend(crate::offenders::table(r));
    tables.extend(crate::shards::table(r));
    let partial = if r.partial {
        " (PARTIAL: run interrupted)"
    } else {
        ""
    };
    Summary {
        title: format!("{}{partial}", r.scenario.name),
        description: r.scenario.description.trim().to_owned(),
        workload: workload(r),
        tables,
        notes: notes(r).into_iter().chain(crate::shards::notes(r)).collect(),
        footer: Text(vec![
            Span::Plain("Latencies are measured from each message's intended send time (no coordinated omission). ".into()),
            Span::Code("lost".into()),
            Span::Plain(" = acked and never delivered.".into()),
        ]),
    }
}

fn workload(r: &RunResults) -> String {
    let w = &r.scenario.workload;
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
    format!(
        "Workload: {load} of {} B, {} producer(s), {} consumer(s), {} partition(s), {rate}. Machine: {} cores, {}, kernel {}. Started {}.",
        w.message_size, w.producers, w.consumers, w.partitions, r.machine.cores, r.machine.cpu, r.machine.kernel, r.started_at
    )
}

/// Throughput, latency and backlog per variant; a variant without results says why.
pub fn speed(r: &RunResults) -> Table {
    let mut t = Table::new(
        "Speed",
        &[
            ("variant", Left),
            ("backend", Left),
            ("status", Left),
            ("acked msg/s", Right),
            ("acked MB/s", Right),
            ("delivered msg/s", Right),
            ("publish p50 / p99 (µs)", Right),
            ("end-to-end p50 / p99 / p99.9 (µs)", Right),
            ("backlog peak (history / broker)", Right),
        ],
    );
    for v in &r.variants {
        let mut row: Vec<Text> = vec![
            v.name.as_str().into(),
            v.backend.as_str().into(),
            status(v.status).into(),
        ];
        let Some(rep) = &v.report else {
            row.push(why_no_results(v));
            t.rows.push(row);
            continue;
        };
        let (th, p, e) = (
            &rep.throughput,
            &rep.latency.publish,
            &rep.latency.end_to_end,
        );
        let depth = rep
            .broker_depth_peak
            .map_or("–".to_owned(), |d| d.to_string());
        row.extend([
            n(th.acked_msgs_per_s).into(),
            n(th.acked_mb_per_s).into(),
            n(th.delivered_msgs_per_s).into(),
            format!("{} / {}", n(p.p50_us), n(p.p99_us)).into(),
            format!("{} / {} / {}", n(e.p50_us), n(e.p99_us), n(e.p999_us)).into(),
            format!("{} / {depth}", rep.backlog_peak).into(),
        ]);
        t.rows.push(row);
    }
    t
}

/// The reason a variant has no results, and the command that fixes a skip.
fn why_no_results(v: &VariantResult) -> Text {
    let mut why = Text::plain(v.reason.as_deref().unwrap_or(""));
    if let Some(fix) = &v.fix {
        why.0.extend([
            Span::Plain(" (fix: ".into()),
            Span::Code(fix.clone()),
            Span::Plain(")".into()),
        ]);
    }
    why
}

/// What the checker counted per variant, `lost` set bold; with a transactional variant, its
/// aborted messages and those delivered anyway too.
pub fn correctness(r: &RunResults) -> Table {
    let txn = (r.variants.iter()).any(|v| v.report.as_ref().is_some_and(|r| r.transactional));
    let mut columns = vec![
        ("variant", Left),
        ("sent", Right),
        ("acked", Right),
        ("failed", Right),
        ("not sent", Right),
        ("unknown", Right),
        ("delivered", Right),
        ("lost", Right),
        ("unacked-lost", Right),
        ("recovered", Right),
        ("duplicated", Right),
        ("reordered", Right),
        ("unexpected", Right),
    ];
    if txn {
        columns.extend([("aborted", Right), ("aborted, visible", Right)]);
    }
    columns.push(("ended by", Left));
    let mut t = Table::new("Correctness", &columns);
    t.columns[7].title = Text::strong("lost");
    for v in &r.variants {
        let Some(rep) = &v.report else { continue };
        let c = &rep.counts;
        let mut row: Vec<Text> = vec![v.name.as_str().into()];
        row.extend(
            [
                c.sent,
                c.acked,
                c.failed,
                c.not_sent,
                c.unknown,
                c.delivered,
            ]
            .map(|x| Text::plain(x.to_string())),
        );
        match v.producer_only() {
            // Nothing was read back: none of these was measured.
            true => row.extend((0..6).map(|_| Text::plain("–"))),
            false => {
                row.push(Text::strong(c.lost.to_string()));
                row.extend(
                    [
                        c.unacked_lost,
                        c.recovered,
                        c.duplicated,
                        c.reordered,
                        c.unexpected,
                    ]
                    .map(|x| Text::plain(x.to_string())),
                );
            }
        }
        if txn {
            // A variant without transactions has none to abort.
            row.extend(match rep.transactional {
                true => [c.aborted, c.aborted_visible].map(|x| Text::plain(x.to_string())),
                false => ["–", "–"].map(Text::plain),
            });
        }
        row.push(v.ended_by.map(json_name).unwrap_or_default().into());
        t.rows.push(row);
    }
    t
}

/// "**variant** (status): why" for every variant with a reason.
fn notes(r: &RunResults) -> Vec<Text> {
    r.variants
        .iter()
        .filter_map(|v| {
            let why = v.reason.as_ref()?;
            Some(Text(vec![
                Span::Strong(v.name.clone()),
                Span::Plain(format!(" ({}): {why}", status(v.status))),
            ]))
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use mq_checker::{Counts, Report};
    use mq_results::{EndedBy, Machine, ScenarioInfo};

    pub(crate) fn variant(name: &str, lost: u64, duplicated: u64) -> VariantResult {
        let plan_json = serde_json::json!({
            "name": name, "backend": "sysv",
            "delivery": {"producer_ack": "leader", "consumer_ack": "auto", "durability": "memory"},
            "options": {}, "status": "ok", "reason": null, "fix": null, "ended_by": "drained",
            "versions": [], "workers": [], "history_dir": null, "contract": "at-least-once",
            "contract_kept": true, "contract_note": null, "report": null
        });
        let mut v: VariantResult = serde_json::from_value(plan_json).unwrap();
        v.report = Some(Report {
            counts: Counts {
                sent: 1000,
                acked: 990,
                failed: 4,
                not_sent: 1,
                unknown: 5,
                delivered: 990 - lost + 3,
                lost,
                unacked_lost: 2,
                recovered: 3,
                duplicated,
                reordered: 7,
                ..Counts::default()
            },
            ..Report::default()
        });
        v
    }

    pub(crate) fn run(variants: Vec<VariantResult>) -> RunResults {
        RunResults {
            schema: mq_results::SCHEMA.into(),
            bench_version: "0.1.0".into(),
            scenario: ScenarioInfo {
                name: "crash".into(),
                description: "  Kills.\n".into(),
                file: "crash.toml".into(),
                workload: serde_json::from_str(r#"{"messages": 1000}"#).unwrap(),
                requirements: None,
            },
            run_id: 1,
            started_at: "2026-11-25T06:35:09Z".into(),
            finished_at: None,
            partial: true,
            machine: Machine::default(),
            variants,
            searches: Vec::new(),
            shard: None,
            merged: None,
        }
    }

    #[test]
    fn the_correctness_table_holds_every_count_with_lost_set_bold() {
        let mut slow = variant("slow", 0, 0);
        slow.ended_by = Some(EndedBy::DrainTimeout);
        let mut skipped = variant("kafka", 0, 0);
        (skipped.status, skipped.report) = (VariantStatus::Skipped, None);
        let t = correctness(&run(vec![variant("sysv", 8, 12), slow, skipped]));
        assert_eq!(t.title, "Correctness");
        assert_eq!(t.columns.len(), 14);
        assert_eq!(t.columns[7].title, Text::strong("lost"));
        assert_eq!(t.rows.len(), 2, "a variant without a report has no counts");
        let cells: Vec<String> = t.rows[0].iter().map(Text::to_plain).collect();
        assert_eq!(
            cells,
            [
                "sysv", "1000", "990", "4", "1", "5", "985", "8", "2", "3", "12", "7", "0",
                "drained"
            ]
        );
        assert_eq!(t.rows[0][7], Text::strong("8"));
        assert_eq!(t.column("ended by"), ["drained", "drain-timeout"]);
        assert_eq!(t.column("lost"), ["8", "0"]);
        let right: Vec<bool> = t.columns.iter().map(|c| c.align == Right).collect();
        assert_eq!(right.iter().filter(|r| **r).count(), 12);
        assert!(!right[0] && !right[13]);
    }

    #[test]
    fn a_transactional_variant_adds_its_aborted_columns() {
        let mut txn = variant("txn", 0, 0);
        let rep = txn.report.as_mut().unwrap();
        rep.transactional = true;
        (rep.counts.aborted, rep.counts.aborted_visible) = (40, 3);
        let plain = variant("plain", 0, 0);
        let t = correctness(&run(vec![plain.clone()]));
        assert!(t.column("aborted").is_empty() && t.columns.len() == 14);
        let t = correctness(&run(vec![txn, plain]));
        assert_eq!(t.columns.len(), 16);
        assert_eq!(t.column("aborted"), ["40", "–"]);
        assert_eq!(t.column("aborted, visible"), ["3", "–"]);
        assert_eq!(t.column("ended by"), ["drained", "drained"]);
    }

    #[test]
    fn a_variant_without_results_says_why_in_speed_and_in_the_notes() {
        let mut skipped = variant("kafka", 0, 0);
        skipped.status = VariantStatus::Skipped;
        skipped.report = None;
        skipped.reason = Some("kafka is not installed".into());
        skipped.fix = Some("scripts/brokers/kafka.sh install".into());
        let s = summary(&run(vec![variant("sysv", 0, 0), skipped]));
        assert_eq!(s.title, "crash (PARTIAL: run interrupted)");
        assert_eq!(s.description, "Kills.");
        let titles: Vec<&str> = s.tables.iter().map(|t| t.title.as_str()).collect();
        assert_eq!(titles, ["Speed", "Correctness", "Guarantees"]);
        let row = &s.tables[0].rows[1];
        assert_eq!(row.len(), 4, "the rest of the row is blank");
        assert_eq!(
            row[3].0,
            [
                Span::Plain("kafka is not installed".into()),
                Span::Plain(" (fix: ".into()),
                Span::Code("scripts/brokers/kafka.sh install".into()),
                Span::Plain(")".into()),
            ]
        );
        assert_eq!(s.notes.len(), 1);
        assert_eq!(s.notes[0].0[0], Span::Strong("kafka".into()));
        assert_eq!(
            s.notes[0].to_plain(),
            "kafka (skipped): kafka is not installed"
        );
    }
}
