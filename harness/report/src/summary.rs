//! summary.md: the comparison tables an architecture review pastes, rendered as Markdown from
//! the summary's data ([`crate::tables`]).

use crate::doc::{Align, Span, Table, Text};
use crate::tables::Summary;

/// Inline text as Markdown: `**strong**`, `` `code` ``.
pub fn inline(t: &Text) -> String {
    t.0.iter()
        .map(|s| match s {
            Span::Plain(p) => p.clone(),
            Span::Strong(b) => format!("**{b}**"),
            Span::Code(c) => format!("`{c}`"),
            Span::Link { text, href } => format!("[{text}]({href})"),
        })
        .collect()
}

/// One cell and the pipe that closes it; a blank cell is only the pipe.
fn cell(out: &mut String, text: &str) {
    out.push(' ');
    out.push_str(text);
    out.push_str(" |");
}

/// A pipe table: header, alignment row, one line per row; a short row ends in blank cells.
pub fn table(t: &Table) -> String {
    let mut s = String::from("|");
    for c in &t.columns {
        cell(&mut s, &inline(&c.title));
    }
    s.push_str("\n|");
    for c in &t.columns {
        s.push_str(match c.align {
            Align::Left => "---|",
            Align::Right => "---:|",
        });
    }
    s.push('\n');
    for row in &t.rows {
        s.push('|');
        for k in 0..t.columns.len() {
            match row.get(k) {
                Some(text) => cell(&mut s, &inline(text)),
                None => s.push_str(" |"),
            }
        }
        s.push('\n');
    }
    s
}

/// Markdown blocks (each ending in a newline) separated by blank lines.
pub fn blocks(blocks: &[String]) -> String {
    blocks.join("\n")
}

/// The whole of summary.md.
pub fn markdown(s: &Summary) -> String {
    let mut out = vec![format!("# {}\n", s.title)];
    if !s.description.is_empty() {
        out.push(format!("{}\n", s.description));
    }
    out.push(format!("{}\n", s.workload));
    for t in &s.tables {
        out.push(format!("## {}\n", t.title));
        out.push(table(t));
    }
    if !s.notes.is_empty() {
        out.push("## Notes\n".to_owned());
        out.push(
            s.notes
                .iter()
                .map(|n| format!("- {}\n", inline(n)))
                .collect(),
        );
    }
    out.push(format!("{}\n", inline(&s.footer)));
    blocks(&out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::Align::{Left, Right};

    #[test]
    fn a_table_renders_as_pipes_with_alignment_and_blank_cells_for_a_short_row() {
        let mut t = Table::new(
            "Speed",
            &[("variant", Left), ("msg/s", Right), ("p99", Right)],
        );
        t.columns[1].title = Text::strong("msg/s");
        t.rows.push(vec!["a".into(), "10".into(), "1.5".into()]);
        t.rows.push(vec![
            "b".into(),
            Text(vec![
                Span::Plain("down (fix: ".into()),
                Span::Code("start".into()),
                Span::Plain(")".into()),
            ]),
        ]);
        t.rows.push(vec!["c".into(), "".into()]);
        assert_eq!(
            table(&t),
            "| variant | **msg/s** | p99 |\n|---|---:|---:|\n| a | 10 | 1.5 |\n| b | down (fix: `start`) | |\n| c |  | |\n"
        );
    }

    #[test]
    fn the_summary_is_blocks_separated_by_blank_lines() {
        let s = Summary {
            title: "t".into(),
            description: String::new(),
            workload: "Workload: w.".into(),
            tables: vec![Table::new("Speed", &[("variant", Left)])],
            notes: vec!["n".into()],
            footer: "f".into(),
        };
        assert_eq!(
            markdown(&s),
            "# t\n\nWorkload: w.\n\n## Speed\n\n| variant |\n|---|\n\n## Notes\n\n- n\n\nf\n"
        );
    }
}
