//! `bench review`'s page: the review of several run folders (a study) as review.md and a
//! self-contained review.html, with the requirements and the runs it was judged from.

use std::fmt::Write;

use mq_core::requirements::Requirements;

use crate::html::{esc, STYLE};
use crate::review::{table, Review, Source};

/// The requirements as a team wrote them, one line each.
fn requirement_lines(req: &Requirements) -> Vec<String> {
    match toml::to_string(req) {
        Ok(s) => s.lines().map(str::to_owned).collect(),
        Err(e) => vec![format!("(cannot show the requirements: {e})")],
    }
}

/// One line per run judged: its label and where it is.
fn source_lines(sources: &[Source<'_>]) -> Vec<String> {
    sources
        .iter()
        .map(|s| {
            format!(
                "{}: scenario {}, started {}{}",
                s.label,
                s.results.scenario.name,
                s.results.started_at,
                if s.results.partial { " (PARTIAL)" } else { "" }
            )
        })
        .collect()
}

fn verdict_line(review: &Review) -> String {
    let meeting: Vec<&str> = (review.rows.iter())
        .filter(|r| r.meets_all())
        .map(|r| r.variant.as_str())
        .collect();
    if meeting.is_empty() {
        "No variant meets every requirement.".to_owned()
    } else {
        format!("Meets every requirement: {}.", meeting.join(", "))
    }
}

/// review.md.
pub fn markdown(req: &Requirements, sources: &[Source<'_>], review: &Review) -> String {
    let mut s = String::from("# Review\n\n");
    let _ = writeln!(s, "{}\n", verdict_line(review));
    s.push_str(&crate::summary::table(&table(review)));
    s.push_str("\n## Requirements\n\n```toml\n[requirements]\n");
    for l in requirement_lines(req) {
        let _ = writeln!(s, "{l}");
    }
    s.push_str("```\n\n## Runs judged\n\n");
    for l in source_lines(sources) {
        let _ = writeln!(s, "- {l}");
    }
    s.push_str("\n✓ met, ✗ missed (`why` links the chart that shows it), ? not judged and why. Rebuild with `bench review RUN_DIR... --requirements FILE`.\n");
    s
}

/// review.html: the same, one self-contained page.
pub fn html(req: &Requirements, sources: &[Source<'_>], review: &Review) -> String {
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>mq-bench review</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>Review</h1>\n"
    );
    let _ = writeln!(s, "<p><strong>{}</strong></p>", esc(&verdict_line(review)));
    s.push_str(&crate::html::table(&table(review)));
    s.push_str("<h2>Requirements</h2>\n<pre>[requirements]\n");
    for l in requirement_lines(req) {
        let _ = writeln!(s, "{}", esc(&l));
    }
    s.push_str("</pre>\n<h2>Runs judged</h2>\n<ul>\n");
    for l in source_lines(sources) {
        let _ = writeln!(s, "<li>{}</li>", esc(&l));
    }
    s.push_str("</ul>\n<p class=\"muted\">✓ met, ✗ missed (<em>why</em> links the chart that shows it), ? not judged and why. Rebuild with <code>bench review RUN_DIR... --requirements FILE</code>.</p>\n</body>\n</html>\n");
    s
}
