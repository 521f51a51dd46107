//! Throughput and backlog over time. Up to four variants share one chart, its key to the right
//! of the plot; from five on ([`SMALL_MULTIPLES_FROM`]) each variant gets its own panel (small
//! multiples: shared axes, its own faults) under one key. Fault labels are packed into rows
//! above the plot, so they never print over each other or over the data. The broker-depth line
//! breaks where samples are missing (the broker was down) instead of bridging the gap.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    bin_label, colour, draw_key, draw_key_column, draw_title, key_height, mesh_style, no_data, si,
    text_size, DrawResult, Sample, VariantSeries, FONT, INK, MUTED, SMALL_MULTIPLES_FROM, WIDTH,
};

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

/// How a line is drawn.
#[derive(Clone, Copy)]
enum Style {
    Solid,
    Dashed,
    /// Dashed, each sample a dot (broker depth).
    DashedDots,
}

/// One line of one variant: one or more segments (a gap between them is drawn as a gap).
struct Line {
    segments: Vec<Vec<(f64, f64)>>,
    colour: RGBColor,
    style: Style,
}

/// A fault label, before it is placed.
struct Label {
    t: f64,
    text: String,
    colour: RGBColor,
}

/// One plot: a shared chart, or one variant's panel.
struct Panel {
    title: Option<(String, RGBColor)>,
    lines: Vec<Line>,
    /// Fault instants (a dotted line each) and their labels (merged where they repeat).
    faults: Vec<(f64, RGBColor)>,
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

/// (0, v0) (w, v0) (w, v1) (2w, v1) …: a series of bins `w` seconds wide as steps, so a series
/// of one bin still shows a segment.
fn steps(values: &[f64], w: f64) -> Vec<(f64, f64)> {
    let mut pts = Vec::with_capacity(values.len() * 2);
    for (i, v) in values.iter().enumerate() {
        pts.push((i as f64 * w, *v));
        pts.push((i as f64 * w + w, *v));
    }
    pts
}

/// Counts per bin as msgs/s.
fn rates(v: &[u64], bin_s: f64) -> Vec<f64> {
    v.iter().map(|x| *x as f64 / bin_s).collect()
}

/// "msgs/s (10 ms bins)", or with several widths "msgs/s (bins: 10 ms, 50 ms)".
fn rate_unit(variants: &[VariantSeries]) -> String {
    let mut widths: Vec<f64> = variants.iter().map(|v| v.bin_s).collect();
    widths.sort_by(f64::total_cmp);
    widths.dedup();
    match widths.as_slice() {
        [w] => format!("msgs/s ({} bins)", bin_label(*w)),
        ws => format!(
            "msgs/s (bins: {})",
            ws.iter()
                .map(|w| bin_label(*w))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The broker-depth samples as line segments, broken wherever the time between two samples is
/// more than 2.5 typical (median) intervals: no samples means the broker did not answer (it was
/// down), and a line across the gap would invent values.
pub fn depth_segments(depth: &[(f64, u64)]) -> Vec<Vec<(f64, f64)>> {
    let mut pts: Vec<(f64, f64)> = depth
        .iter()
        .filter(|(t, _)| t.is_finite())
        .map(|(t, m)| (*t, *m as f64))
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut gaps: Vec<f64> = pts
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .filter(|g| *g > 0.0)
        .collect();
    gaps.sort_by(f64::total_cmp);
    let limit = gaps.get(gaps.len() / 2).map_or(f64::INFINITY, |g| g * 2.5);
    let mut segments: Vec<Vec<(f64, f64)>> = Vec::new();
    for p in pts {
        match segments.last_mut() {
            Some(seg) if p.0 - seg.last().map_or(p.0, |q| q.0) <= limit => seg.push(p),
            _ => segments.push(vec![p]),
        }
    }
    segments
}

fn lines(kind: Kind, v: &VariantSeries) -> Vec<Line> {
    let c = colour(v.colour);
    match kind {
        Kind::Throughput => vec![
            Line {
                segments: vec![steps(&rates(&v.acked, v.bin_s), v.bin_s)],
                colour: c,
                style: Style::Solid,
            },
            Line {
                segments: vec![steps(&rates(&v.delivered, v.bin_s), v.bin_s)],
                colour: c,
                style: Style::Dashed,
            },
        ],
        Kind::Backlog => {
            let backlog: Vec<f64> = v.backlog.iter().map(|b| *b as f64).collect();
            vec![
                Line {
                    segments: vec![steps(&backlog, v.bin_s)],
                    colour: c,
                    style: Style::Solid,
                },
                Line {
                    segments: depth_segments(&v.depth),
                    colour: c,
                    style: Style::DashedDots,
                },
            ]
        }
    }
}

/// The end of the time axis: the last bin, depth sample or fault of any variant.
fn x_max(variants: &[VariantSeries]) -> f64 {
    let end = variants
        .iter()
        .flat_map(|v| {
            let bins = v.acked.len().max(v.delivered.len()).max(v.backlog.len());
            [bins as f64 * v.bin_s]
                .into_iter()
                .chain(v.depth.iter().map(|d| d.0))
                .chain(v.markers.iter().map(|m| m.t))
        })
        .filter(|t| t.is_finite())
        .fold(0.0, f64::max);
    if end > 0.0 {
        end
    } else {
        1.0
    }
}

/// The y axis: from 0 (or below, for a negative value in an old results.json) to a little above
/// the highest value. On a throughput chart, when a few bins of one variant (a catch-up burst
/// after a restart) rise far above every variant's usual top, the axis ends at 1.25 × the
/// highest 98th percentile of any variant instead, so the other panels are not flattened; the
/// lines are clipped there and the panel says the peak.
fn y_range(kind: Kind, panels: &[Panel]) -> (f64, f64) {
    let values = |p: &Panel| -> Vec<f64> {
        let mut v: Vec<f64> = p
            .lines
            .iter()
            .flat_map(|l| l.segments.iter().flatten())
            .map(|p| p.1)
            .filter(|y| y.is_finite())
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let all: Vec<Vec<f64>> = panels.iter().map(values).collect();
    let lo = all.iter().flatten().fold(0f64, |lo, y| lo.min(*y));
    let max = all.iter().flatten().fold(0f64, |hi, y| hi.max(*y));
    let usual = all
        .iter()
        .filter_map(|v| v.get(((v.len().saturating_sub(1)) as f64 * 0.98) as usize))
        .fold(0f64, |a, b| a.max(*b));
    let top = if kind == Kind::Throughput && usual > 0.0 && max > usual * 1.25 * 1.1 {
        usual * 1.25
    } else {
        max
    };
    (if lo < 0.0 { lo * 1.1 } else { 0.0 }, top.max(1.0) * 1.1)
}

/// Fault labels: one per label text and time (several variants' identical faults merged),
/// prefixed with the variant's name when a shared chart shows one variant's fault.
fn labels(variants: &[VariantSeries], x_max: f64, name_them: bool) -> Vec<Label> {
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
fn px(t: f64, x_max: f64, (x0, x1): (i32, i32)) -> i32 {
    x0 + ((t / x_max).clamp(0.0, 1.0) * (x1 - x0) as f64).round() as i32
}

/// Rows of fault labels a panel needs.
fn label_rows(p: &Panel, g: &Geometry, x_max: f64) -> usize {
    let plot = g.plot_x();
    let spans: Vec<(i32, i32)> = p
        .labels
        .iter()
        .map(|l| (px(l.t, x_max, plot), text_size(&l.text, LABEL_FONT).0))
        .collect();
    pack(&spans, plot.1 + p.label_room).1
}

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
        draw_panel(&plot, &ps[0], &SHARED, rows, x_max, y, Some(&y_desc))?;
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
    let rows = (ph - PANEL_TITLE_H - PANEL_H) / LABEL_ROW;
    for (k, p) in ps.iter().enumerate() {
        let (r, c) = ((k / COLUMNS) as i32, (k % COLUMNS) as i32);
        let cell = body
            .clone()
            .shrink((c * SMALL.width, r * ph), (SMALL.width, ph));
        draw_panel(&cell, p, &SMALL, rows as usize, x_max, y, None)?;
    }
    Ok(())
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &Panel,
    g: &Geometry,
    label_rows: usize,
    x_max: f64,
    (lo, hi): (f64, f64),
    y_desc: Option<&str>,
) -> DrawResult<DB> {
    if let Some((title, c)) = &p.title {
        area.draw(&Text::new(
            title.clone(),
            (g.margin + g.y_label_w, 4),
            (FONT, 16).into_font().color(c),
        ))?;
    }
    let band = label_rows as i32 * LABEL_ROW;
    let mut chart = ChartBuilder::on(area)
        .margin(g.margin)
        .margin_top(g.margin + g.title_h + band)
        .x_label_area_size(g.x_label_h)
        .y_label_area_size(g.y_label_w)
        .build_cartesian_2d(0f64..x_max, lo..hi)?;
    let mut mesh = chart.configure_mesh();
    mesh_style(&mut mesh, g.tick_font)
        .y_label_formatter(&|v| si(*v))
        .x_label_formatter(&|v| si(*v));
    if let Some(desc) = y_desc {
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
    // Values above the axis (a burst, see `y_range`) are drawn at its top.
    let mut peak: Option<(f64, f64, RGBColor)> = None;
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
    if let Some((t, v, c)) = peak {
        let right = t > x_max / 2.0;
        chart.draw_series(std::iter::once(
            EmptyElement::at((t, hi))
                + Text::new(
                    format!("peak {} (clipped)", si(v)),
                    (if right { -4 } else { 4 }, 2),
                    (FONT, LABEL_FONT).into_font().color(&c).pos(Pos::new(
                        if right { HPos::Right } else { HPos::Left },
                        VPos::Top,
                    )),
                ),
        ))?;
    }
    // Faults: a dotted line through the plot and up to its label.
    const DOTS: usize = 120;
    for (t, c) in &p.faults {
        let dots = (0..DOTS).step_by(2).map(|k| {
            let a = lo + (hi - lo) * k as f64 / DOTS as f64;
            let b = lo + (hi - lo) * (k + 1) as f64 / DOTS as f64;
            PathElement::new(vec![(*t, a), (*t, b)], c.stroke_width(1))
        });
        chart.draw_series(dots)?;
    }
    let plot = g.plot_x();
    let spans: Vec<(i32, i32)> = p
        .labels
        .iter()
        .map(|l| (px(l.t, x_max, plot), text_size(&l.text, LABEL_FONT).0))
        .collect();
    let (placed, _) = pack(&spans, plot.1 + p.label_room);
    for (l, (left, row)) in p.labels.iter().zip(placed) {
        let rise = 2 + row as i32 * LABEL_ROW;
        let x = left - px(l.t, x_max, plot);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_breaks_where_samples_are_missing() {
        // Every 0.5 s, none from 2.0 to 3.5 s (the broker was down): two segments.
        let d: Vec<(f64, u64)> = [0.5, 1.0, 1.5, 2.0, 3.5, 4.0, 4.5]
            .iter()
            .map(|t| (*t, 10))
            .collect();
        let s = depth_segments(&d);
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!(s[0].len(), 4);
        assert_eq!(s[1].len(), 3);
        // One late sample (1 s apart, 2 intervals) is not a gap.
        let d = [(0.5, 1), (1.0, 1), (2.0, 1), (2.5, 1)];
        assert_eq!(depth_segments(&d).len(), 1);
        assert!(depth_segments(&[]).is_empty());
        assert_eq!(depth_segments(&[(1.0, 3)]), vec![vec![(1.0, 3.0)]]);
    }

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
