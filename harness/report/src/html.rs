//! report.html: one self-contained page (no network, charts inline as SVG data URIs) with the
//! scenario, machine, versions, the summary tables and the charts. Every text taken from results
//! is escaped.

use std::fmt::Write;

use base64::Engine;
use mq_results::RunResults;

use crate::charts::{colour_hex, Chart};
use crate::tables::{Align, Span, Summary, Table, Text};

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Inline text as HTML, escaped.
fn inline(t: &Text) -> String {
    t.0.iter()
        .map(|s| match s {
            Span::Plain(p) => esc(p),
            Span::Strong(b) => format!("<strong>{}</strong>", esc(b)),
            Span::Code(c) => format!("<code>{}</code>", esc(c)),
        })
        .collect()
}

/// A summary table; figures' columns (right-aligned) get `class="num"`.
fn table(t: &Table) -> String {
    let class = |k: usize| match t.columns[k].align {
        Align::Right => " class=\"num\"",
        Align::Left => "",
    };
    let mut out = String::from("<table>\n<thead><tr>");
    for (k, c) in t.columns.iter().enumerate() {
        let _ = write!(out, "<th{}>{}</th>", class(k), inline(&c.title));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &t.rows {
        out.push_str("<tr>");
        for k in 0..t.columns.len() {
            let text = row.get(k).map(inline).unwrap_or_default();
            let _ = write!(out, "<td{}>{text}</td>", class(k));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// The summary's sentences, tables and notes (the title is the page's own): what summary.md
/// shows, from the same data. A description of several lines is a paragraph per line.
pub fn summary(s: &Summary) -> String {
    let mut out = String::new();
    for line in s.description.lines().map(str::trim_end) {
        if !line.is_empty() {
            let _ = writeln!(out, "<p>{}</p>", esc(line));
        }
    }
    let _ = writeln!(out, "<p>{}</p>", esc(&s.workload));
    for t in &s.tables {
        let _ = writeln!(out, "<h3>{}</h3>", esc(&t.title));
        out.push_str(&table(t));
    }
    if !s.notes.is_empty() {
        out.push_str("<h3>Notes</h3>\n<ul>\n");
        for n in &s.notes {
            let _ = writeln!(out, "<li>{}</li>", inline(n));
        }
        out.push_str("</ul>\n");
    }
    let _ = writeln!(out, "<p>{}</p>", inline(&s.footer));
    out
}

fn kv_table(rows: &[(String, String)]) -> String {
    let mut s = String::from("<table class=\"kv\">\n");
    for (k, v) in rows {
        let _ = writeln!(s, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    }
    s.push_str("</table>\n");
    s
}

fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

const STYLE: &str = "
body { font-family: 'DejaVu Sans', 'Segoe UI', Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1260px; color: #222; padding: 0 16px; }
h1 { margin-bottom: 4px; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 32px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 14px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f5f5f5; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.kv th { width: 160px; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 6px; vertical-align: middle; }
figure { margin: 16px 0 28px; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 13px; color: #555; }
pre { background: #f7f7f7; padding: 12px; overflow-x: auto; font-size: 13px; }
.partial { background: #fff3cd; border: 1px solid #e0c36a; padding: 8px 12px; }
.muted { color: #666; font-size: 13px; }
";

/// The whole page.
pub fn page(
    r: &RunResults,
    summary_data: &Summary,
    scenario_text: Option<&str>,
    charts: &[Chart],
) -> String {
    let mut s = String::new();
    let name = esc(&r.scenario.name);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>mq-bench: {name}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
    );
    let _ = writeln!(s, "<h1>mq-bench: {name}</h1>");
    if !r.scenario.description.trim().is_empty() {
        let _ = writeln!(s, "<p>{}</p>", esc(r.scenario.description.trim()));
    }
    let _ = writeln!(
        s,
        "<p class=\"muted\">run {:#x} · started {} · finished {} · bench {} · schema {}</p>",
        r.run_id,
        esc(&r.started_at),
        esc(r.finished_at.as_deref().unwrap_or("never")),
        esc(&r.bench_version),
        esc(&r.schema)
    );
    if r.partial {
        s.push_str("<p class=\"partial\"><strong>Partial run:</strong> interrupted or unfinished; some variants lack results.</p>\n");
    }

    s.push_str("<h2>Summary</h2>\n");
    s.push_str(&summary(summary_data));

    s.push_str("<h2>Charts</h2>\n");
    let legend: Vec<String> = r
        .variants
        .iter()
        .enumerate()
        .filter(|(_, v)| v.report.is_some())
        .map(|(i, v)| {
            format!(
                "<span><span class=\"swatch\" style=\"background:{}\"></span>{}</span>",
                colour_hex(i),
                esc(&v.name)
            )
        })
        .collect();
    if !legend.is_empty() {
        let _ = writeln!(
            s,
            "<p class=\"muted\">One colour per variant in every chart: {}</p>",
            legend.join(" &nbsp; ")
        );
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    for c in charts {
        let _ = writeln!(
            s,
            "<figure id=\"chart-{name}\">\n<img src=\"data:image/svg+xml;base64,{data}\" width=\"{w}\" height=\"{h}\" alt=\"{title}\">\n<figcaption>{title} · <a href=\"charts/{name}.svg\">SVG</a> · <a href=\"charts/{name}.png\">PNG</a></figcaption>\n</figure>",
            name = c.name,
            data = b64.encode(c.svg.as_bytes()),
            w = c.size.0,
            h = c.size.1,
            title = esc(c.title),
        );
    }

    s.push_str("<h2>Scenario</h2>\n");
    let mut rows = vec![
        ("name".to_owned(), r.scenario.name.clone()),
        ("file".to_owned(), r.scenario.file.clone()),
    ];
    if let Ok(serde_json::Value::Object(w)) = serde_json::to_value(&r.scenario.workload) {
        for (k, v) in w {
            rows.push((format!("workload.{k}"), json_text(&v)));
        }
    }
    s.push_str(&kv_table(&rows));
    if let Some(text) = scenario_text {
        let _ = writeln!(
            s,
            "<details open><summary>scenario.toml as run</summary>\n<pre>{}</pre>\n</details>",
            esc(text)
        );
    }

    s.push_str("<h2>Machine</h2>\n");
    let m = &r.machine;
    s.push_str(&kv_table(&[
        ("cpu".into(), m.cpu.clone()),
        ("cores".into(), m.cores.to_string()),
        (
            "memory".into(),
            format!("{:.1} GiB", m.memory_bytes as f64 / (1u64 << 30) as f64),
        ),
        ("kernel".into(), m.kernel.clone()),
        ("os".into(), m.os.clone()),
    ]));

    s.push_str("<h2>Variants and versions</h2>\n<table>\n<thead><tr><th>variant</th><th>backend</th><th>producer_ack</th><th>consumer_ack</th><th>durability</th><th>options</th><th>status</th><th>versions</th></tr></thead>\n<tbody>\n");
    for (i, v) in r.variants.iter().enumerate() {
        let status = serde_json::to_value(v.status)
            .ok()
            .map(|x| json_text(&x))
            .unwrap_or_default();
        let versions: Vec<String> = v
            .versions
            .iter()
            .map(|(k, ver)| format!("{} {}", esc(k), esc(ver)))
            .collect();
        let d = &v.delivery;
        let _ = writeln!(
            s,
            "<tr><td><span class=\"swatch\" style=\"background:{}\"></span>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            colour_hex(i),
            esc(&v.name),
            esc(&v.backend),
            esc(&d.producer_ack.to_string()),
            esc(&d.consumer_ack.to_string()),
            esc(&d.durability.to_string()),
            esc(&v.options.to_string()),
            esc(&status),
            versions.join("<br>")
        );
    }
    s.push_str("</tbody>\n</table>\n");
    s.push_str("<p class=\"muted\">Generated by <code>bench report</code> from results.json alone; regenerate with <code>bench report RUN_DIR</code>.</p>\n</body>\n</html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_from_results() {
        assert_eq!(
            esc("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
        let mut t = Table::new("Speed", &[("a", Align::Left), ("b", Align::Right)]);
        t.columns[1].title = Text::strong("b");
        t.rows
            .push(vec!["<x>".into(), Text(vec![Span::Code("1".into())])]);
        let html = summary(&Summary {
            title: "t".into(),
            description: String::new(),
            workload: String::new(),
            tables: vec![t],
            notes: vec!["note <i>".into()],
            footer: Text::default(),
        });
        assert!(html.contains("<th>a</th><th class=\"num\"><strong>b</strong></th>"));
        assert!(html.contains("<td>&lt;x&gt;</td><td class=\"num\"><code>1</code></td>"));
        assert!(html.contains("<li>note &lt;i&gt;</li>\n</ul>"));
        assert!(!html.contains("<h3>t</h3>"));
    }
}
