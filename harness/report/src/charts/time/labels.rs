//! Fault labels of a time chart: merged where several variants met the same fault, and packed
//! into rows above the plot so none prints over another, over a line up to another, or over
//! the data.

use plotters::prelude::*;

use super::{Geometry, Panel, LABEL_FONT};
use crate::charts::{colour, text_size, VariantSeries, INK};

/// A fault label, before it is placed.
pub(super) struct Label {
    pub(super) t: f64,
    pub(super) text: String,
    pub(super) colour: RGBColor,
}

/// Fault labels: one per label text and time (several variants' identical faults merged),
/// prefixed with the variant's name when a shared chart shows one variant's fault.
pub(super) fn labels(variants: &[VariantSeries], x_max: f64, name_them: bool) -> Vec<Label> {
    let mut out: Vec<(Label, Vec<usize>)> = Vec::new();
    for (i, v) in variants.iter().enumerate() {
        for m in &v.markers {
            let same = out
                .iter_mut()
                .find(|(l, _)| l.text == m.label && (l.t - m.t).abs() <= x_max * 0.01);
            match same {
                Some((_, who)) => who.push(i),
                None => out.push((
                    Label {
                        t: m.t,
                        text: m.label.clone(),
                        colour: colour(v.colour),
                    },
                    vec![i],
                )),
            }
        }
    }
    out.into_iter()
        .map(|(mut l, who)| {
            if who.len() > 1 {
                l.colour = INK;
            } else if name_them {
                l.text = format!("{}: {}", variants[who[0]].name, l.text);
            }
            l
        })
        .collect()
}

/// Places labels in rows above the plot, from the rightmost line to the leftmost: each starts
/// just right of its line (or ends just left of it at the right edge) in the lowest row where
/// it overlaps no other label and covers no line going up to a higher label; so the lines up
/// to the labels cross none of them (labels climb leftwards, like stairs). Takes (line x,
/// width) per label; returns per label (left x, row) in the order given, and the row count.
fn pack(labels: &[(i32, i32)], right: i32) -> (Vec<(i32, usize)>, usize) {
    // Room between labels: a browser draws the SVG's text in its own sans-serif, which may run
    // a little wider than the embedded font the widths are measured in.
    const GAP: i32 = 12;
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by_key(|i| std::cmp::Reverse(labels[*i].0));
    // Placed so far: (span, line x, row).
    let mut placed: Vec<((i32, i32), i32, usize)> = Vec::new();
    let mut out = vec![(0, 0); labels.len()];
    let mut rows = 0;
    for i in order {
        let (px, w) = labels[i];
        let left = if px + 3 + w > right {
            px - 3 - w
        } else {
            px + 3
        };
        let span = (left - GAP / 2, left + w + w / 10 + GAP / 2);
        let inside = |x: i32, s: (i32, i32)| s.0 < x && x < s.1;
        // Its own span free in `row`, and no higher label's line through it.
        let room = |row: usize| {
            placed.iter().all(|(s, line, r)| {
                (*r != row || span.1 <= s.0 || span.0 >= s.1) && (*r <= row || !inside(*line, span))
            })
        };
        // Its line up to `row` crosses no label below.
        let clear = |row: usize| placed.iter().all(|(s, _, r)| *r >= row || !inside(px, *s));
        // The row above every placed label always has room; a line crossing a label below
        // happens only next to a label turned left at the right edge.
        let row = (0..=rows)
            .find(|r| room(*r) && clear(*r))
            .or_else(|| (0..=rows).find(|r| room(*r)))
            .unwrap_or(rows);
        rows = rows.max(row + 1);
        placed.push((span, px, row));
        out[i] = (left, row);
    }
    (out, rows)
}

/// Pixel x of time t in a plot spanning `plot` pixels over [0, x_max] seconds.
pub(super) fn px(t: f64, x_max: f64, (x0, x1): (i32, i32)) -> i32 {
    x0 + ((t / x_max).clamp(0.0, 1.0) * (x1 - x0) as f64).round() as i32
}

/// Where a panel's fault labels go: (left x, row) per label, and the rows they take.
pub(super) fn place(p: &Panel, g: &Geometry, x_max: f64) -> (Vec<(i32, usize)>, usize) {
    let plot = g.plot_x();
    let spans: Vec<(i32, i32)> = p
        .labels
        .iter()
        .map(|l| (px(l.t, x_max, plot), text_size(&l.text, LABEL_FONT).0))
        .collect();
    pack(&spans, plot.1 + p.label_room)
}

/// Rows of fault labels a panel needs.
pub(super) fn label_rows(p: &Panel, g: &Geometry, x_max: f64) -> usize {
    place(p, g, x_max).1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_labels_never_overlap() {
        // Five labels 100 px wide, 20 px apart, the last at the right edge.
        let spans = [(100, 100), (120, 100), (140, 100), (400, 100), (590, 100)];
        let (placed, rows) = pack(&spans, 600);
        assert_eq!(rows, 3);
        for (i, a) in placed.iter().enumerate() {
            for b in &placed[i + 1..] {
                let overlap = a.1 == b.1 && a.0 < b.0 + 100 && b.0 < a.0 + 100;
                assert!(!overlap, "{placed:?}");
            }
        }
        // The one at the right edge ends left of its line.
        assert_eq!(placed[4].0, 590 - 3 - 100);
        // No line up to a label crosses a label in a lower row.
        for (i, a) in placed.iter().enumerate() {
            for (j, b) in placed.iter().enumerate() {
                let line = spans[j].0;
                let crosses = b.1 > a.1 && a.0 < line && line < a.0 + 100;
                assert!(!crosses, "label {j}'s line crosses label {i}: {placed:?}");
            }
        }
    }
}
