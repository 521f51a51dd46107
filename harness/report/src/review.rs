//! The review: every variant judged against a team's `[requirements]`, one column per
//! requirement, ✓ / ✗ with the measured figure and the run it came from, or `?` with why it
//! could not be judged (never a silent ✓). Variants that meet every requirement come first.
//!
//! A variant is known by its name up to an `@` (`kafka@steady` and `kafka@kill-broker` are one
//! row, `kafka`), across runs, so one scenario, or a study of several run folders (a throughput
//! run, a crash matrix, a latency curve), judges one row per name from all of them:
//! - `min_msgs_per_s`: the best delivered rate of a run without faults that drained, or the
//!   maximum a `rate = "max"` search found; a measured rate within 1 % of the target counts
//!   (a fixed-rate run delivers its target give or take timing).
//! - `max_p99`: the worst end-to-end p99 of the runs without faults (a fault's stall is not the
//!   steady latency); only runs with faults: their worst, marked "under faults".
//! - `max_lost`, `max_duplicates`, `ordering`: the worst of every run (faults are the point).
//! - `max_cpu_us_per_msg`, `max_write_amplification`: the worst of the runs that measured them.

use mq_core::requirements::{OrderingRequirement, Requirements};
use mq_results::{EndedBy, RunDir, RunResults, VariantResult, VariantStatus};

use crate::doc::{Align, Span, Table, Text};
use crate::tables::n;

/// One run folder of a study: its label in cells, the prefix of links into it, its results.
pub struct Source<'a> {
    pub label: String,
    /// Prepended to `charts/NAME.png` in links ("" inside the run's own report).
    pub base: String,
    pub results: &'a RunResults,
}

/// The outcome of one requirement for one variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Met,
    Missed,
    /// No run measured the figure; the cell says why.
    Unknown,
}

/// One cell: the verdict, the figure (or why none), where it came from, what explains a miss.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub verdict: Verdict,
    pub text: String,
    pub run: Option<String>,
    /// A link to the chart that shows a miss.
    pub link: Option<String>,
}

/// One variant's row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub variant: String,
    pub cells: Vec<Cell>,
}

impl Row {
    pub fn meets_all(&self) -> bool {
        self.cells.iter().all(|c| c.verdict == Verdict::Met)
    }
}

/// The whole review.
#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
}

impl Review {
    /// Whether some variant meets every requirement (`bench review`'s exit 0).
    pub fn any_meets_all(&self) -> bool {
        self.rows.iter().any(Row::meets_all)
    }
}

/// One requirement, as judged.
#[derive(Debug, Clone, Copy)]
enum Req {
    MinRate(f64),
    MaxP99(f64),
    MaxLost(u64),
    MaxDuplicates(u64),
    PerKey,
    MaxCpu(f64),
    MaxAmplification(f64),
}

fn reqs(r: &Requirements) -> Vec<(Req, String)> {
    let mut out = Vec::new();
    if let Some(v) = r.min_msgs_per_s {
        out.push((Req::MinRate(v), format!("≥ {} msg/s", n(v))));
    }
    if let Some(d) = r.max_p99 {
        let us = d.0.as_secs_f64() * 1e6;
        let written = humantime::format_duration(d.0);
        out.push((Req::MaxP99(us), format!("p99 ≤ {written}")));
    }
    if let Some(v) = r.max_lost {
        out.push((Req::MaxLost(v), format!("lost ≤ {v}")));
    }
    if let Some(v) = r.max_duplicates {
        out.push((Req::MaxDuplicates(v), format!("duplicates ≤ {v}")));
    }
    if r.ordering == Some(OrderingRequirement::PerKey) {
        out.push((Req::PerKey, "per-key order".to_owned()));
    }
    if let Some(v) = r.max_cpu_us_per_msg {
        out.push((Req::MaxCpu(v), format!("CPU ≤ {v} µs/msg")));
    }
    if let Some(v) = r.max_write_amplification {
        out.push((
            Req::MaxAmplification(v),
            format!("write amplification ≤ {v}"),
        ));
    }
    out
}

/// A variant's figure for a requirement in one run, with whether the run had faults.
struct Figure {
    value: f64,
    run: String,
    base: String,
    faulted: bool,
}

/// Every entry of variant `name` across the sources (repetitions and sweep points are entries
/// of their own name; a search's probes are left to the search).
fn entries<'a>(sources: &'a [Source<'a>], name: &str) -> Vec<(&'a Source<'a>, &'a VariantResult)> {
    sources
        .iter()
        .flat_map(|s| s.results.variants.iter().map(move |v| (s, v)))
        .filter(|(_, v)| row_name(&v.name) == name)
        .collect()
}

/// The row a variant entry belongs to: its name up to the first `@`, without the `.run-N` of
/// a variant run N times (each run is judged, the worst counts).
pub fn row_name(name: &str) -> &str {
    let name = name.split('@').next().unwrap_or(name);
    match name.rsplit_once(".run-") {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => name,
    }
}

/// The names to judge, in first-seen order.
fn names(sources: &[Source<'_>]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut push = |n: &str| {
        if !names.iter().any(|x| x == n) {
            names.push(n.to_owned());
        }
    };
    for s in sources {
        for v in &s.results.variants {
            if !v.name.contains(".probe-") && !v.name.contains(".at-") {
                push(row_name(&v.name));
            }
        }
        for search in &s.results.searches {
            push(row_name(&search.variant));
        }
    }
    names
}

/// The figure of `req` in entry `v`, if it measured it.
fn figure_of(req: Req, v: &VariantResult) -> Option<f64> {
    let rep = v.report.as_ref()?;
    let c = &rep.counts;
    let read_back = !v.producer_only();
    match req {
        Req::MinRate(_) => {
            (v.ended_by == Some(EndedBy::Drained)).then_some(rep.throughput.delivered_msgs_per_s)
        }
        Req::MaxP99(_) => {
            (rep.latency.end_to_end.count > 0).then_some(rep.latency.end_to_end.p99_us)
        }
        Req::MaxLost(_) => read_back.then_some(c.lost as f64),
        Req::MaxDuplicates(_) => read_back.then_some(c.duplicated as f64),
        Req::PerKey => read_back.then_some(c.reordered as f64),
        Req::MaxCpu(_) => v.cost.as_ref()?.per_message.as_ref()?.total_cpu_us,
        Req::MaxAmplification(_) => v.cost.as_ref()?.per_message.as_ref()?.write_amplification,
    }
}

/// Why no entry of a variant gave a figure.
fn why_unknown(req: Req, found: &[(&Source<'_>, &VariantResult)]) -> String {
    if found.is_empty() {
        return "not in these runs".to_owned();
    }
    if let Some((_, v)) = found.iter().find(|(_, v)| v.status != VariantStatus::Ok) {
        if found.iter().all(|(_, v)| v.report.is_none()) {
            return format!(
                "no results: {} {}",
                crate::tables::status(v.status),
                v.reason.as_deref().unwrap_or("")
            )
            .trim_end()
            .to_owned();
        }
    }
    match req {
        Req::MinRate(_) => "no run drained without faults".to_owned(),
        Req::MaxP99(_) => "no end-to-end latency measured".to_owned(),
        Req::MaxCpu(_) | Req::MaxAmplification(_) => {
            let note = found
                .iter()
                .find_map(|(_, v)| v.cost.as_ref()?.broker_note.clone());
            match note {
                Some(n) => format!("broker not measured: {n}"),
                None => "no resource figures in these runs (resources = false, or older runs)"
                    .to_owned(),
            }
        }
        _ => "not measured".to_owned(),
    }
}

/// Judges one requirement for variant `name`.
fn judge(req: Req, name: &str, sources: &[Source<'_>]) -> Cell {
    let found = entries(sources, name);
    let mut figures: Vec<Figure> = found
        .iter()
        .filter_map(|(s, v)| {
            Some(Figure {
                value: figure_of(req, v)?,
                run: s.label.clone(),
                base: s.base.clone(),
                faulted: !v.faults.is_empty(),
            })
        })
        .collect();
    if let Req::MinRate(_) = req {
        figures.retain(|f| !f.faulted);
        for s in sources {
            let rate = (s.results.searches.iter())
                .find(|x| row_name(&x.variant) == name)
                .and_then(|x| x.max_rate);
            if let Some(rate) = rate {
                figures.push(Figure {
                    value: rate as f64,
                    run: format!("{} (max sustainable)", s.label),
                    base: s.base.clone(),
                    faulted: false,
                });
            }
        }
    }
    if let Req::MaxP99(_) = req {
        if figures.iter().any(|f| !f.faulted) {
            figures.retain(|f| !f.faulted);
        }
    }
    // The best rate, the worst of every upper bound: the highest figure either way; on a tie
    // the run with faults, which says more.
    let pick =
        (figures.iter()).max_by(|a, b| a.value.total_cmp(&b.value).then(a.faulted.cmp(&b.faulted)));
    let Some(f) = pick else {
        return Cell {
            verdict: Verdict::Unknown,
            text: why_unknown(req, &found),
            run: None,
            link: None,
        };
    };
    let (met, text, chart) = verdict(req, f);
    let sources_named = sources.len() > 1 || f.run.ends_with("(max sustainable)");
    Cell {
        verdict: if met { Verdict::Met } else { Verdict::Missed },
        text,
        run: sources_named.then(|| f.run.clone()),
        link: (!met).then(|| format!("{}{}", f.base, RunDir::chart_link(chart, "png"))),
    }
}

/// Whether figure `f` meets `req`, its text, and the chart that explains a miss.
fn verdict(req: Req, f: &Figure) -> (bool, String, &'static str) {
    let v = f.value;
    let under = if f.faulted { " under faults" } else { "" };
    // A count from runs without any fault says nothing of what a crash does.
    let calm = if f.faulted {
        ""
    } else {
        " (no fault in these runs)"
    };
    match req {
        Req::MinRate(min) => (v >= min * 0.99, format!("{} msg/s", n(v)), "throughput"),
        Req::MaxP99(max) => (
            v <= max,
            format!("p99 {} ms{under}", n(v / 1000.0)),
            "latency",
        ),
        Req::MaxLost(max) => (v <= max as f64, format!("{v} lost{calm}"), "anomalies"),
        Req::MaxDuplicates(max) => (v <= max as f64, format!("{v} duplicated"), "anomalies"),
        Req::PerKey => (v == 0.0, format!("{v} reordered"), "anomalies"),
        Req::MaxCpu(max) => (v <= max, format!("{v:.2} µs/msg"), "cost"),
        Req::MaxAmplification(max) => (v <= max, format!("{v:.2}×"), "cost"),
    }
}

/// Judges every variant of `sources` against `req`; those meeting all come first.
pub fn review(req: &Requirements, sources: &[Source<'_>]) -> Review {
    let list = reqs(req);
    let mut rows: Vec<Row> = names(sources)
        .into_iter()
        .map(|name| Row {
            cells: list
                .iter()
                .map(|(r, _)| judge(*r, &name, sources))
                .collect(),
            variant: name,
        })
        .collect();
    rows.sort_by_key(|r| !r.meets_all());
    Review {
        columns: list.into_iter().map(|(_, title)| title).collect(),
        rows,
    }
}

/// The review as a table: variant, whether it meets every requirement, one column each.
pub fn table(r: &Review) -> Table {
    let mut cols: Vec<(&str, Align)> = vec![("variant", Align::Left), ("meets all", Align::Left)];
    cols.extend(r.columns.iter().map(|c| (c.as_str(), Align::Left)));
    let mut t = Table::new("Review", &cols);
    for row in &r.rows {
        let all = if row.meets_all() {
            Text::strong("✓ yes")
        } else {
            Text::plain("no")
        };
        let mut cells = vec![Text::plain(row.variant.clone()), all];
        cells.extend(row.cells.iter().map(cell_text));
        t.rows.push(cells);
    }
    t
}

fn cell_text(c: &Cell) -> Text {
    let mark = match c.verdict {
        Verdict::Met => "✓",
        Verdict::Missed => "✗",
        Verdict::Unknown => "?",
    };
    let mut spans = vec![Span::Plain(format!("{mark} {}", c.text))];
    if let Some(run) = &c.run {
        spans.push(Span::Plain(format!(" ({run})")));
    }
    if let Some(href) = &c.link {
        spans.push(Span::Plain(" ".into()));
        spans.push(Span::Link {
            text: "why".into(),
            href: href.clone(),
        });
    }
    Text(spans)
}

/// The review table of run `r` when its scenario has requirements.
pub fn of_run(r: &RunResults) -> Option<Table> {
    let req = r.scenario.requirements.as_ref()?;
    let sources = [Source {
        label: r.scenario.name.clone(),
        base: String::new(),
        results: r,
    }];
    Some(table(&review(req, &sources)))
}

#[cfg(test)]
#[path = "review_tests.rs"]
mod tests;
