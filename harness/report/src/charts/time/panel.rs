//! Drawing one plot of a time chart: axes and grid, shaded rebalance pauses, the lines (a burst
//! clipped at the top with its peak written), fault lines and their packed labels.

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::labels::{place, px};
use super::lines::Style;
use super::{Geometry, Panel, LABEL_FONT, LABEL_ROW};
use crate::charts::{mesh_style, si, DrawResult, FONT};

type Plot<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;
type Drawn<T, DB> = Result<T, DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;
/// A point drawn clipped at the axis' top: (t, value, colour).
type Peak = (f64, f64, RGBColor);

/// Where a panel goes and what its axes span.
pub(super) struct Frame<'g> {
    pub g: &'g Geometry,
    /// Rows of fault labels above the plot.
    pub label_rows: usize,
    pub x_max: f64,
    /// The y axis (lo, hi).
    pub y: (f64, f64),
    /// The y axis' title: a shared chart's; small panels have none.
    pub y_desc: Option<&'g str>,
}

pub(super) fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &Panel,
    f: &Frame<'_>,
) -> DrawResult<DB> {
    if let Some((title, c)) = &p.title {
        area.draw(&Text::new(
            title.clone(),
            (f.g.margin + f.g.y_label_w, 4),
            (FONT, 16).into_font().color(c),
        ))?;
    }
    let mut chart = axes(area, f)?;
    let (lo, hi) = f.y;
    chart.draw_series(p.pauses.iter().map(|&(a, b, c)| {
        Rectangle::new([(a.min(f.x_max), lo), (b.min(f.x_max), hi)], c.filled())
    }))?;
    if let Some((t, v, c)) = draw_lines(&mut chart, p, f.y.1)? {
        draw_peak(&mut chart, (t, v, c), f)?;
    }
    draw_faults(&mut chart, p, f)
}

/// The plot below the title and label rows, with its grid and tick labels.
fn axes<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    f: &Frame<'_>,
) -> Drawn<Plot<'a, DB>, DB> {
    let (g, (lo, hi)) = (f.g, f.y);
    let band = f.label_rows as i32 * LABEL_ROW;
    let mut chart = ChartBuilder::on(area)
        .margin(g.margin)
        .margin_top(g.margin + g.title_h + band)
        .x_label_area_size(g.x_label_h)
        .y_label_area_size(g.y_label_w)
        .build_cartesian_2d(0f64..f.x_max, lo..hi)?;
    let mut mesh = chart.configure_mesh();
    mesh_style(&mut mesh, g.tick_font)
        .y_label_formatter(&|v| si(*v))
        .x_label_formatter(&|v| si(*v));
    if let Some(desc) = f.y_desc {
        mesh.x_desc("seconds since the variant's start")
            .y_desc(desc);
    } else {
        // Small panels: a few ticks, no minor grid.
        mesh.x_labels(7)
            .y_labels(5)
            .max_light_lines(0)
            .bold_line_style(RGBColor(0xe8, 0xe8, 0xe8));
    }
    mesh.draw()?;
    Ok(chart)
}

/// Draws the lines, values above the axis (a burst, see `y_range`) at its top; returns the
/// highest clipped point, if any.
fn draw_lines<DB: DrawingBackend>(
    chart: &mut Plot<'_, DB>,
    p: &Panel,
    hi: f64,
) -> Drawn<Option<Peak>, DB> {
    let mut peak: Option<Peak> = None;
    for l in &p.lines {
        let style = l.colour.stroke_width(2);
        for seg in &l.segments {
            for (t, v) in seg {
                if *v > hi && peak.is_none_or(|p| *v > p.1) {
                    peak = Some((*t, *v, l.colour));
                }
            }
            let seg: Vec<(f64, f64)> = seg.iter().map(|(t, v)| (*t, v.min(hi))).collect();
            let seg = &seg;
            match l.style {
                Style::Solid => {
                    chart.draw_series(LineSeries::new(seg.iter().copied(), style))?;
                }
                Style::Dashed | Style::DashedDots => {
                    chart.draw_series(DashedLineSeries::new(seg.iter().copied(), 7, 5, style))?;
                }
            }
            if let Style::DashedDots = l.style {
                chart.draw_series(seg.iter().map(|pt| Circle::new(*pt, 2, l.colour.filled())))?;
            }
        }
    }
    Ok(peak)
}

/// "peak N (clipped)" at the top of the axis, on the side of the plot with room for it.
fn draw_peak<DB: DrawingBackend>(
    chart: &mut Plot<'_, DB>,
    (t, v, c): Peak,
    f: &Frame<'_>,
) -> DrawResult<DB> {
    let right = t > f.x_max / 2.0;
    chart.draw_series(std::iter::once(
        EmptyElement::at((t, f.y.1))
            + Text::new(
                format!("peak {} (clipped)", si(v)),
                (if right { -4 } else { 4 }, 2),
                (FONT, LABEL_FONT).into_font().color(&c).pos(Pos::new(
                    if right { HPos::Right } else { HPos::Left },
                    VPos::Top,
                )),
            ),
    ))?;
    Ok(())
}

/// Faults: a dotted line through the plot and up to its label.
fn draw_faults<DB: DrawingBackend>(
    chart: &mut Plot<'_, DB>,
    p: &Panel,
    f: &Frame<'_>,
) -> DrawResult<DB> {
    const DOTS: usize = 120;
    let (lo, hi) = f.y;
    for (t, c) in &p.faults {
        let dots = (0..DOTS).step_by(2).map(|k| {
            let a = lo + (hi - lo) * k as f64 / DOTS as f64;
            let b = lo + (hi - lo) * (k + 1) as f64 / DOTS as f64;
            PathElement::new(vec![(*t, a), (*t, b)], c.stroke_width(1))
        });
        chart.draw_series(dots)?;
    }
    let plot = f.g.plot_x();
    let (placed, _) = place(p, f.g, f.x_max);
    for (l, (left, row)) in p.labels.iter().zip(placed) {
        let rise = 2 + row as i32 * LABEL_ROW;
        let x = left - px(l.t, f.x_max, plot);
        chart.draw_series(std::iter::once(
            EmptyElement::at((l.t, hi))
                + PathElement::new(
                    vec![(0, 0), (0, -rise - LABEL_ROW + 3)],
                    l.colour.stroke_width(1),
                )
                + Text::new(
                    l.text.clone(),
                    (x, -rise),
                    (FONT, LABEL_FONT)
                        .into_font()
                        .color(&l.colour)
                        .pos(Pos::new(HPos::Left, VPos::Bottom)),
                ),
        ))?;
    }
    Ok(())
}
