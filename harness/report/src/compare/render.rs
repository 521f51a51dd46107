//! The comparison for people: Markdown for a pull-request comment, aligned text for a terminal
//! or a CI log, and the refusal when the scenarios differ. Both tables are built as data
//! ([`Table`]) and rendered by the summary's Markdown renderer or by [`aligned`].

use std::fmt::Write;

use super::{Comparison, Row, Verdict};
use crate::doc::Align::{Left, Right};
use crate::doc::{Align, Span, Table, Text};
use crate::summary as md;

/// The scenario fields that differ, as a table.
fn changes_table(c: &Comparison) -> Table {
    let mut t = Table::new(
        "Scenario changes",
        &[("field", Left), ("base", Left), ("new", Left)],
    );
    for d in &c.scenario_changes {
        t.rows.push(vec![
            Text(vec![Span::Code(d.field.clone())]),
            d.base.as_str().into(),
            d.new.as_str().into(),
        ]);
    }
    t
}

/// The scenario differences as Markdown (empty when there are none).
fn changes_markdown(c: &Comparison) -> String {
    if !c.scenario_changed() {
        return String::new();
    }
    format!(
        "**The scenarios differ** ({} field(s)): a changed workload is not a regression of the system under test.\n\n{}\n",
        c.scenario_changes.len(),
        md::table(&changes_table(c))
    )
}

/// The scenario differences as plain text (empty when there are none).
fn changes_text(c: &Comparison) -> String {
    let mut s = String::new();
    if !c.scenario_changed() {
        return s;
    }
    let _ = writeln!(
        s,
        "the scenarios differ ({} field(s)), BASE -> NEW:",
        c.scenario_changes.len()
    );
    for d in &c.scenario_changes {
        let _ = writeln!(s, "  {}: {} -> {}", d.field, d.base, d.new);
    }
    s.push('\n');
    s
}

/// What `bench compare` prints when it refuses to compare different scenarios.
pub fn refusal(c: &Comparison, markdown: bool) -> String {
    const WHY: &str = "not compared: BASE and NEW ran different scenarios; run both on the same scenario, or pass --allow-scenario-change to compare anyway";
    if markdown {
        format!("### mq-bench compare: {WHY}\n\n{}", changes_markdown(c))
    } else {
        format!("mq-bench compare: {WHY}\n{}", changes_text(c))
    }
}

fn num(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) if !v.is_finite() => "–".into(),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

pub(super) fn change(r: &Row) -> String {
    match (r.change_pct, r.base, r.new) {
        (Some(p), _, _) => format!("{p:+.1} %"),
        (None, Some(b), Some(n)) if b == 0.0 && n > 0.0 => format!("+{n:.0}"),
        (None, Some(b), Some(n)) if b == n => "0".into(),
        _ => "–".into(),
    }
}

fn headline(c: &Comparison) -> String {
    let r = c.regressions();
    let i = c.inconclusive();
    let mut s = if r > 0 {
        format!("REGRESSION: {r} figure(s) past their limits")
    } else {
        "no regression".to_owned()
    };
    if c.scenario_changed() {
        s.push_str(" (the scenarios differ, compared anyway)");
    }
    if i > 0 {
        let _ = write!(
            s,
            "; {i} inconclusive (too little data to tell change from noise{})",
            if c.thresholds.strict {
                ": failing, --strict"
            } else {
                ""
            }
        );
    }
    s
}

/// The compared figures as a table: for Markdown the evidence before the verdict and a
/// regression set bold; for text the verdict before the (long) evidence.
fn rows_table(c: &Comparison, markdown: bool) -> Table {
    let (seventh, eighth) = match markdown {
        true => ("evidence", "verdict"),
        false => ("verdict", "evidence"),
    };
    let mut t = Table::new(
        "Comparison",
        &[
            ("variant", Left),
            ("metric", Left),
            ("base", Right),
            ("new", Right),
            ("change", Right),
            ("limit", Right),
            (seventh, Left),
            (eighth, Left),
        ],
    );
    for r in &c.rows {
        let verdict = match (r.verdict, markdown) {
            (Verdict::Regression, true) => Text::strong(r.verdict.as_str()),
            (v, _) => Text::plain(v.as_str()),
        };
        let evidence = Text::plain(r.evidence.as_str());
        let (seventh, eighth) = match markdown {
            true => (evidence, verdict),
            false => (verdict, evidence),
        };
        t.rows.push(vec![
            r.variant.as_str().into(),
            r.metric.into(),
            num(r.base).into(),
            num(r.new).into(),
            change(r).into(),
            r.limit.as_str().into(),
            seventh,
            eighth,
        ]);
    }
    t
}

/// The comparison as Markdown, for a pull-request comment.
pub fn markdown(c: &Comparison) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "### mq-bench compare: {}\n", headline(c));
    s.push_str(&changes_markdown(c));
    let _ = writeln!(
        s,
        "BASE `{}` ({} repetition(s)) → NEW `{}` ({} repetition(s)). Figures are medians over repetitions; counts are the worst repetition.\n",
        c.base, c.base_reps, c.new, c.new_reps
    );
    s.push_str(&md::table(&rows_table(c, true)));
    for n in &c.notes {
        let _ = writeln!(s, "\n- {n}");
    }
    s
}

/// A table as plain text in aligned columns, two spaces apart, figures right-aligned.
pub fn aligned(t: &Table) -> String {
    let lines: Vec<Vec<String>> =
        std::iter::once(t.columns.iter().map(|c| c.title.to_plain()).collect())
            .chain(
                t.rows
                    .iter()
                    .map(|r| r.iter().map(Text::to_plain).collect()),
            )
            .collect();
    let mut widths = vec![0usize; t.columns.len()];
    for line in &lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let last = t.columns.len().saturating_sub(1);
    let mut s = String::new();
    for line in &lines {
        let mut out = String::new();
        for (k, (w, cell)) in widths.iter().zip(line).enumerate() {
            let pad = " ".repeat(w - cell.chars().count());
            match t.columns[k].align {
                Align::Right => out.push_str(&(pad + cell)),
                Align::Left if k < last => out.push_str(&(cell.clone() + &pad)),
                Align::Left => out.push_str(cell),
            }
            if k < last {
                out.push_str("  ");
            }
        }
        let _ = writeln!(s, "{}", out.trim_end());
    }
    s
}

/// The comparison as aligned plain text, for a terminal or a CI log.
pub fn text(c: &Comparison) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "mq-bench compare: {}", headline(c));
    let _ = writeln!(
        s,
        "BASE {} ({} rep) -> NEW {} ({} rep); medians over repetitions, counts: worst repetition\n",
        c.base, c.base_reps, c.new, c.new_reps
    );
    s.push_str(&changes_text(c));
    s.push_str(&aligned(&rows_table(c, false)));
    for n in &c.notes {
        let _ = writeln!(s, "note: {n}");
    }
    s
}
