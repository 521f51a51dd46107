//! Throughput and backlog over time. Up to four variants share one chart, its key to the right
//! of the plot; from five on ([`SMALL_MULTIPLES_FROM`]) each variant gets its own panel (small
//! multiples: shared axes, its own faults) under one key. Fault labels are packed into rows
//! above the plot, so they never print over each other or over the data. The broker-depth line
//! breaks where samples are missing (the broker was down) instead of bridging the gap.
//! Rebalance pauses (a partition without a consumer) are shaded on the throughput chart.

mod labels;
mod lines;
mod panel;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    colour, draw_key, draw_key_column, draw_title, key_height, no_data, DrawResult, Sample,
    VariantSeries, FONT, INK, MUTED, SMALL_MULTIPLES_FROM, WIDTH,
};
use labels::{label_rows, labels, Label};
pub use lines::depth_segments;
use lines::{lines, rate_unit, x_max, y_range, Line};
use panel::{draw_panel, Frame};

const TITLE_H: i32 = 40;
/// The key's column right of a shared chart.
const KEY_W: i32 = 310;
/// Height of a shared chart's plot and axes.
const SHARED_H: i32 = 440;
const COLUMNS: usize = 3;
/// Height of a panel's plot and axes, without its title and fault labels.
const PANEL_H: i32 = 200;
const PANEL_TITLE_H: i32 = 22;
/// One row of fault labels.
const LABEL_ROW: i32 = 16;
const LABEL_FONT: f64 = 13.0;

/// Which chart.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Throughput,
    Backlog,
}

/// One plot: a shared chart, or one variant's panel.
struct Panel {
    title: Option<(String, RGBColor)>,
    lines: Vec<Line>,
    /// Fault instants (a dotted line each) and their labels (merged where they repeat).
    faults: Vec<(f64, RGBColor)>,
    /// Rebalance pauses (from, to seconds), shaded in a tint of their variant's colour.
    pauses: Vec<(f64, f64, RGBColor)>,
    labels: Vec<Label>,
    /// How far (px) labels may run past the plot's right edge: over the margin and the next
    /// panel's axis labels, or the key column's top (both clear of the label rows).
    label_room: i32,
}

/// The pixel geometry of a panel's plot, known before it is drawn (so labels can be packed).
#[derive(Clone, Copy)]
struct Geometry {
    width: i32,
    margin: i32,
    y_label_w: i32,
    x_label_h: i32,
    title_h: i32,
    tick_font: f64,
}

impl Geometry {
    fn plot_x(&self) -> (i32, i32) {
        (self.margin + self.y_label_w, self.width - self.margin)
    }
}

const SHARED: Geometry = Geometry {
    width: WIDTH as i32 - KEY_W,
    margin: 12,
    y_label_w: 72,
    x_label_h: 44,
    title_h: 0,
    tick_font: 13.0,
};

const SMALL: Geometry = Geometry {
    width: WIDTH as i32 / COLUMNS as i32,
    margin: 10,
    y_label_w: 50,
    x_label_h: 24,
    title_h: PANEL_TITLE_H,
    tick_font: 12.0,
};

/// Every panel of a chart: one shared, or one per variant.
fn panels(kind: Kind, variants: &[VariantSeries]) -> Vec<Panel> {
    let x_max = x_max(variants);
    if variants.len() < SMALL_MULTIPLES_FROM {
        vec![Panel {
            title: None,
            lines: variants.iter().flat_map(|v| lines(kind, v)).collect(),
            faults: variants
                .iter()
                .flat_map(|v| v.markers.iter().map(|m| (m.t, colour(v.colour))))
                .collect(),
            pauses: variants.iter().flat_map(|v| pauses(kind, v)).collect(),
            labels: labels(variants, x_max, variants.len() > 1),
            label_room: KEY_W - 20,
        }]
    } else {
        variants
            .iter()
            .enumerate()
            .map(|(k, v)| Panel {
                title: Some((v.name.clone(), colour(v.colour))),
                lines: lines(kind, v),
                faults: v.markers.iter().map(|m| (m.t, INK)).collect(),
                pauses: pauses(kind, v),
                labels: labels(std::slice::from_ref(v), x_max, false)
                    .into_iter()
                    .map(|l| Label { colour: INK, ..l })
                    .collect(),
                label_room: if k % COLUMNS == COLUMNS - 1 {
                    SMALL.margin - 2
                } else {
                    SMALL.margin + SMALL.y_label_w - 12
                },
            })
            .collect()
    }
}

/// A colour a fifth as strong, over white: a shade that lines stay legible on.
pub(super) fn tint(c: RGBColor) -> RGBColor {
    let t = |x: u8| (255.0 - (255.0 - f64::from(x)) * 0.2) as u8;
    RGBColor(t(c.0), t(c.1), t(c.2))
}

/// A variant's rebalance pauses, on the throughput chart only.
fn pauses(kind: Kind, v: &VariantSeries) -> Vec<(f64, f64, RGBColor)> {
    match kind {
        Kind::Throughput => (v.pauses.iter())
            .map(|&(a, b)| (a, b, tint(colour(v.colour))))
            .collect(),
        Kind::Backlog => Vec::new(),
    }
}

fn key(kind: Kind, variants: &[VariantSeries], shared: bool) -> Vec<(Sample, String)> {
    let (solid, dashed) = match kind {
        Kind::Throughput => ("acked", "delivered"),
        Kind::Backlog => (
            "history backlog (acked, not yet delivered)",
            "broker depth (samples)",
        ),
    };
    let dashed_sample = match kind {
        Kind::Throughput => Sample::Dashed(INK),
        Kind::Backlog => Sample::DashedDots(INK),
    };
    let mut k = Vec::new();
    if shared {
        k.extend(
            variants
                .iter()
                .map(|v| (Sample::Swatch(colour(v.colour)), v.name.clone())),
        );
    }
    k.push((Sample::Solid(INK), solid.to_owned()));
    k.push((dashed_sample, dashed.to_owned()));
    if variants.iter().any(|v| !v.markers.is_empty()) {
        k.push((Sample::Fault, "fault".to_owned()));
    }
    if kind == Kind::Throughput && variants.iter().any(|v| !v.pauses.is_empty()) {
        let shade = Sample::Swatch(tint(INK));
        k.push((
            shade,
            "rebalance pause (a partition had no consumer)".to_owned(),
        ));
    }
    k
}

/// Rows of panels in a small-multiples chart.
fn grid_rows(n: usize) -> usize {
    n.div_ceil(COLUMNS)
}

fn header_h(kind: Kind, variants: &[VariantSeries]) -> i32 {
    TITLE_H + key_height(&key(kind, variants, false), WIDTH as i32 - 316) + 8
}

pub(super) fn size(variants: &[VariantSeries]) -> (u32, u32) {
    // Throughput and backlog share a size, so the page keeps its layout between them.
    let h = [Kind::Throughput, Kind::Backlog]
        .map(|k| height(k, variants))
        .into_iter()
        .max()
        .unwrap_or(0);
    (WIDTH, h as u32)
}

fn height(kind: Kind, variants: &[VariantSeries]) -> i32 {
    let x_max = x_max(variants);
    let ps = panels(kind, variants);
    if variants.len() < SMALL_MULTIPLES_FROM {
        let rows = ps
            .iter()
            .map(|p| label_rows(p, &SHARED, x_max))
            .max()
            .unwrap_or(0);
        TITLE_H + rows as i32 * LABEL_ROW + SHARED_H
    } else {
        header_h(kind, variants) + grid_rows(variants.len()) as i32 * panel_h(&ps, x_max)
    }
}

fn panel_h(ps: &[Panel], x_max: f64) -> i32 {
    let rows = ps
        .iter()
        .map(|p| label_rows(p, &SMALL, x_max))
        .max()
        .unwrap_or(0);
    PANEL_TITLE_H + rows as i32 * LABEL_ROW + PANEL_H
}

pub(super) fn throughput<'a, DB: DrawingBackend + 'a>(
    area: &'a DrawingArea<DB, Shift>,
    variants: &[VariantSeries],
) -> DrawResult<DB> {
    chart(area, variants, Kind::Throughput)
}

pub(super) fn backlog<'a, DB: DrawingBackend + 'a>(
    area: &'a DrawingArea<DB, Shift>,
    variants: &[VariantSeries],
) -> DrawResult<DB> {
    chart(area, variants, Kind::Backlog)
}

fn chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    variants: &[VariantSeries],
    kind: Kind,
) -> DrawResult<DB> {
    let (title, y_desc) = match kind {
        Kind::Throughput => ("Throughput over time", rate_unit(variants)),
        Kind::Backlog => ("Backlog over time", "messages".to_owned()),
    };
    if variants.is_empty() {
        return no_data(area, title);
    }
    let x_max = x_max(variants);
    let ps = panels(kind, variants);
    let y = y_range(kind, &ps);
    if variants.len() < SMALL_MULTIPLES_FROM {
        draw_title(area, title)?;
        let (_, body) = area.split_vertically(TITLE_H);
        let (plot, side) = body.split_horizontally(SHARED.width);
        let rows = label_rows(&ps[0], &SHARED, x_max);
        let frame = Frame {
            g: &SHARED,
            label_rows: rows,
            x_max,
            y,
            y_desc: Some(&y_desc),
        };
        draw_panel(&plot, &ps[0], &frame)?;
        let key_top = rows as i32 * LABEL_ROW + SHARED.margin;
        return draw_key_column(&side, &key(kind, variants, true), (8, key_top));
    }
    let h = header_h(kind, variants);
    draw_title(
        area,
        &format!("{title}: {y_desc}, a panel per variant on shared axes"),
    )?;
    draw_key(
        area,
        &key(kind, variants, false),
        (16, TITLE_H),
        WIDTH as i32 - 300,
    )?;
    area.draw(&Text::new(
        "x: seconds since the variant's start",
        (WIDTH as i32 - 16, TITLE_H + 8),
        (FONT, 13)
            .into_font()
            .color(&MUTED)
            .pos(Pos::new(HPos::Right, VPos::Center)),
    ))?;
    let (_, body) = area.split_vertically(h);
    let ph = panel_h(&ps, x_max);
    let frame = Frame {
        g: &SMALL,
        label_rows: ((ph - PANEL_TITLE_H - PANEL_H) / LABEL_ROW) as usize,
        x_max,
        y,
        y_desc: None,
    };
    for (k, p) in ps.iter().enumerate() {
        let (r, c) = ((k / COLUMNS) as i32, (k % COLUMNS) as i32);
        let cell = body
            .clone()
            .shrink((c * SMALL.width, r * ph), (SMALL.width, ph));
        draw_panel(&cell, p, &frame)?;
    }
    Ok(())
}
