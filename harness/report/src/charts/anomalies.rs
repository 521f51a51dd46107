//! The anomalies chart: a panel per count (lost, duplicated, reordered, unexpected), each with
//! its own log scale, so 8 lost messages show beside 8 263 duplicates; a bar per variant, named
//! on the left and labelled with its count.

use mq_checker::Counts;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    colour, draw_title, no_data, si, text_size, DrawResult, VariantSeries, FONT, INK, WIDTH,
};

type PickCount = fn(&Counts) -> u64;

const TITLE_H: u32 = 40;
const BAR_ROW: u32 = 24;
/// A panel's height beyond its bars: its title, the scale under it, margins.
const PANEL_EXTRA: u32 = 82;
const LOST: RGBColor = RGBColor(0xB0, 0x00, 0x20);

const METRICS: [(&str, PickCount); 4] = [
    ("lost: acked, never delivered", |c| c.lost),
    ("duplicated: deliveries beyond the first", |c| c.duplicated),
    ("reordered", |c| c.reordered),
    ("unexpected: delivered, never sent", |c| c.unexpected),
];

pub(super) fn size(variants: &[VariantSeries]) -> (u32, u32) {
    let n = variants.len().max(1) as u32;
    (WIDTH, TITLE_H + 2 * (n * BAR_ROW + PANEL_EXTRA))
}

/// Where a count sits on a panel's scale: log10(1 + count), so 0 is at 0 and 1 is visible
/// beside thousands.
pub(super) fn scale(count: u64) -> f64 {
    (1.0 + count as f64).log10()
}

/// The scale's ticks up to `max`: 0, 1, 10, 100, 1k …
fn ticks(max: u64) -> Vec<u64> {
    let mut t = vec![0, 1];
    let mut v = 10u64;
    while v <= max.max(1) {
        t.push(v);
        match v.checked_mul(10) {
            Some(n) => v = n,
            None => break,
        }
    }
    t
}

pub(super) fn anomalies<'a, DB: DrawingBackend + 'a>(
    area: &'a DrawingArea<DB, Shift>,
    variants: &[VariantSeries],
) -> DrawResult<DB> {
    let title = "Lost, duplicated, reordered, unexpected per variant (0 is good; each panel on its own log scale)";
    if variants.is_empty() {
        return no_data(area, title);
    }
    draw_title(area, title)?;
    let (_, body) = area.split_vertically(TITLE_H);
    let names_w = variants
        .iter()
        .map(|v| text_size(&v.name, 12.0).0)
        .max()
        .unwrap_or(0)
        + 14;
    for (panel, (name, pick)) in body.split_evenly((2, 2)).iter().zip(METRICS) {
        panel_chart(panel, variants, name, pick, names_w)?;
    }
    Ok(())
}

fn panel_chart<DB: DrawingBackend>(
    panel: &DrawingArea<DB, Shift>,
    variants: &[VariantSeries],
    name: &str,
    pick: PickCount,
    names_w: i32,
) -> DrawResult<DB> {
    let n = variants.len() as f64;
    let counts: Vec<u64> = variants.iter().map(|v| pick(&v.counts)).collect();
    let max = counts.iter().copied().max().unwrap_or(0);
    // Room right of the longest bar for its count.
    let x_max = scale(max.max(1)) * 1.18;
    let head = if name.starts_with("lost") { LOST } else { INK };
    panel.draw(&Text::new(
        name.to_owned(),
        (16, 6),
        (FONT, 15).into_font().color(&head),
    ))?;
    let mut chart = ChartBuilder::on(panel)
        .margin(10)
        .margin_top(30)
        .margin_right(24)
        .x_label_area_size(24)
        .y_label_area_size(names_w)
        .build_cartesian_2d(0f64..x_max, 0f64..n)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(0)
        .y_labels(0)
        .axis_style(RGBColor(0x99, 0x99, 0x99))
        .draw()?;
    let grid = RGBColor(0xe4, 0xe4, 0xe4);
    for t in ticks(max) {
        let x = scale(t);
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(x, 0.0), (x, n)],
            grid.stroke_width(1),
        )))?;
        chart.draw_series(std::iter::once(
            EmptyElement::at((x, 0.0))
                + Text::new(
                    si(t as f64),
                    (0, 5),
                    (FONT, 11)
                        .into_font()
                        .color(&INK)
                        .pos(Pos::new(HPos::Center, VPos::Top)),
                ),
        ))?;
    }
    for (i, (v, count)) in variants.iter().zip(&counts).enumerate() {
        let y = n - i as f64 - 0.5;
        let c = colour(v.colour);
        chart.draw_series(std::iter::once(Rectangle::new(
            [(0.0, y - 0.32), (scale(*count), y + 0.32)],
            c.filled(),
        )))?;
        let at = |x: f64, dx: i32, pos: HPos, text: String| {
            EmptyElement::at((x, y))
                + Text::new(
                    text,
                    (dx, 0),
                    (FONT, 12)
                        .into_font()
                        .color(&INK)
                        .pos(Pos::new(pos, VPos::Center)),
                )
        };
        chart.draw_series([
            at(0.0, -8, HPos::Right, v.name.clone()),
            at(scale(*count), 5, HPos::Left, count.to_string()),
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_lost_message_shows_beside_thousands() {
        // On a linear scale 1 of 2000 is 0.05 % of the width; here it is 9 %.
        assert!(scale(1) / scale(2000) > 0.09);
        assert_eq!(scale(0), 0.0);
        assert_eq!(ticks(0), vec![0, 1]);
        assert_eq!(ticks(8263), vec![0, 1, 10, 100, 1000]);
        assert_eq!(ticks(u64::MAX).len(), 21);
    }
}
