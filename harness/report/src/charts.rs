//! The four charts of a run, drawn with plotters into SVG text and PNG bytes from the same code:
//! throughput over time, latency percentile distribution, backlog over time, anomalies per
//! variant. Text is rendered from the font embedded in `fonts/`, so no system font is needed.

use std::sync::Once;

use hdrhistogram::Histogram;
use mq_checker::Counts;
use plotters::chart::MeshStyle;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// A labelled instant on a time chart (a fault: `kill-broker`, `pause-consumers` …).
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    /// Seconds since the variant's start.
    pub t: f64,
    pub label: String,
}

/// What the charts need of one variant, taken from results.json.
#[derive(Debug, Clone, Default)]
pub struct VariantSeries {
    pub name: String,
    /// Index into [`PALETTE`]: the variant's position in results.json, so a variant keeps its
    /// colour across every chart of a run.
    pub colour: usize,
    /// Width of a series bin, seconds.
    pub bin_s: f64,
    /// Per bin: acked and first-delivered messages (counts; charts draw count / `bin_s`).
    pub acked: Vec<u64>,
    pub delivered: Vec<u64>,
    /// Acked messages not yet delivered at the end of each bin.
    pub backlog: Vec<i64>,
    /// Broker-reported depth samples (t seconds, messages).
    pub depth: Vec<(f64, u64)>,
    pub publish: Option<Histogram<u64>>,
    pub end_to_end: Option<Histogram<u64>>,
    pub counts: Counts,
    pub markers: Vec<Marker>,
}

/// One chart, rendered both ways.
pub struct Chart {
    /// File stem under `charts/`, e.g. `throughput`.
    pub name: &'static str,
    pub title: &'static str,
    pub svg: String,
    pub png: Vec<u8>,
    pub size: (u32, u32),
}

/// Okabe–Ito (colour-blind safe) then a few neutrals; a variant's colour is `PALETTE[i % len]`.
pub const PALETTE: [RGBColor; 9] = [
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0x55, 0x55, 0x55),
    RGBColor(0x8C, 0x56, 0x4B),
    RGBColor(0x00, 0x00, 0x00),
];

/// The colour of variant number `i` (as a CSS hex string too, for the HTML legend).
pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

pub fn colour_hex(i: usize) -> String {
    let RGBColor(r, g, b) = colour(i);
    format!("#{r:02x}{g:02x}{b:02x}")
}

const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../fonts/DejaVuSans-subset.ttf");

/// Registers the embedded font as plotters' `sans-serif`. Charts call it themselves; call it
/// before other plotters users in the same process (criterion's plots) when this crate's
/// `ab_glyph` feature is unified into their build.
pub fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TrueType font checked in with the crate; a failure here is a build
        // defect, and the charts would then lack text rather than fail.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES);
    });
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Renders `draw` to SVG text and to a PNG.
fn render(
    name: &'static str,
    title: &'static str,
    size: (u32, u32),
    draw: impl for<'b> Fn(&DrawingArea<SVGBackend<'b>, Shift>) -> DrawResult<SVGBackend<'b>>,
    draw_bitmap: impl for<'b> Fn(
        &DrawingArea<BitMapBackend<'b>, Shift>,
    ) -> DrawResult<BitMapBackend<'b>>,
) -> anyhow::Result<Chart> {
    register_font();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)
            .and_then(|_| draw(&root))
            .and_then(|_| root.present())
            .map_err(|e| anyhow::anyhow!("drawing {name}.svg: {e}"))?;
    }
    let mut rgb = vec![0u8; size.0 as usize * size.1 as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        root.fill(&WHITE)
            .and_then(|_| draw_bitmap(&root))
            .and_then(|_| root.present())
            .map_err(|e| anyhow::anyhow!("drawing {name}.png: {e}"))?;
    }
    Ok(Chart {
        name,
        title,
        svg,
        png: encode_png(&rgb, size)?,
        size,
    })
}

fn encode_png(rgb: &[u8], (w, h): (u32, u32)) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Balanced);
    let mut writer = enc.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(out)
}

/// Every chart of a run, in the order the report shows them.
pub fn all(variants: &[VariantSeries]) -> anyhow::Result<Vec<Chart>> {
    // `draw` is generic over the backend, and a closure is not: one closure per backend.
    macro_rules! chart {
        ($name:literal, $title:literal, $size:expr, $draw:ident) => {
            render(
                $name,
                $title,
                $size,
                |a| $draw(a, variants),
                |a| $draw(a, variants),
            )?
        };
    }
    Ok(vec![
        chart!(
            "throughput",
            "Throughput over time",
            (1000, 480),
            throughput
        ),
        chart!(
            "latency",
            "Latency percentile distribution",
            (1200, 500),
            latency
        ),
        chart!("backlog", "Backlog over time", (1000, 480), backlog),
        chart!(
            "anomalies",
            "Lost, duplicated, reordered, unexpected",
            (1000, 480),
            anomalies
        ),
    ])
}

/// 1234567 → "1.23M", 15000 → "15k".
pub fn si(v: f64) -> String {
    let a = v.abs();
    let (x, unit) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let s = if x.abs() >= 100.0 || x.fract() == 0.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    };
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    };
    format!("{s}{unit}")
}

fn no_data<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, title: &str) -> DrawResult<DB> {
    let (w, h) = area.dim_in_pixel();
    area.draw(&Text::new(
        title.to_owned(),
        (20, 16),
        (FONT, 22).into_font().color(&BLACK),
    ))?;
    area.draw(&Text::new(
        "no data: no variant produced a report",
        (w as i32 / 2, h as i32 / 2),
        (FONT, 16)
            .into_font()
            .color(&RGBColor(0x55, 0x55, 0x55))
            .pos(Pos::new(HPos::Center, VPos::Center)),
    ))
}

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

fn i64_f(v: &[i64]) -> Vec<f64> {
    v.iter().map(|x| *x as f64).collect()
}

/// Counts per bin as msgs/s.
fn rates(v: &[u64], bin_s: f64) -> Vec<f64> {
    v.iter().map(|x| *x as f64 / bin_s).collect()
}

/// A bin width for a label: "10 ms", "1 s".
pub fn bin_label(bin_s: f64) -> String {
    if bin_s < 1.0 {
        format!("{} ms", si(bin_s * 1e3))
    } else {
        format!("{} s", si(bin_s))
    }
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

/// The end of a variant's series, seconds.
fn series_end(v: &VariantSeries) -> f64 {
    v.acked.len().max(v.delivered.len()).max(v.backlog.len()) as f64 * v.bin_s
}

/// Most marker labels a time chart shows; past this the lines alone (in their variant's colour)
/// carry the schedule, and one label per action and time says what happened.
const MAX_MARKER_LABELS: usize = 6;

/// Fault markers from every variant, labelled with the variant's name when several are drawn.
/// With many (a crash matrix), labels are merged: one per action at about the same time
/// (within 0.3 s), without variant names; the colour of each line still tells the variant.
fn markers(variants: &[VariantSeries]) -> Vec<(Marker, RGBColor)> {
    let several = variants.len() > 1;
    let total: usize = variants.iter().map(|v| v.markers.len()).sum();
    let merge = total > MAX_MARKER_LABELS;
    let mut all: Vec<(Marker, RGBColor)> = variants
        .iter()
        .flat_map(|v| {
            v.markers.iter().map(move |m| {
                let label = if several && !merge {
                    format!("{}: {}", v.name, m.label)
                } else {
                    m.label.clone()
                };
                (Marker { t: m.t, label }, colour(v.colour))
            })
        })
        .collect();
    all.sort_by(|a, b| a.0.t.total_cmp(&b.0.t));
    if merge {
        // Keep every line; blank the label of a marker that repeats one shown just before.
        let mut shown: Vec<(f64, String)> = Vec::new();
        for (m, _) in &mut all {
            if shown
                .iter()
                .any(|(t, l)| *l == m.label && (m.t - t).abs() < 0.3)
            {
                m.label.clear();
            } else {
                shown.push((m.t, m.label.clone()));
            }
        }
    }
    all
}

type PickHistogram = fn(&VariantSeries) -> Option<&Histogram<u64>>;
type PickCount = fn(&Counts) -> u64;

type LinChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Dotted vertical lines with their labels, staggered so neighbours do not overlap.
fn draw_markers<'a, DB: DrawingBackend + 'a>(
    chart: &mut LinChart<'a, DB>,
    marks: &[(Marker, RGBColor)],
    y: (f64, f64),
) -> DrawResult<DB> {
    let mut row = 0;
    for (m, c) in marks {
        let steps = 40;
        let dots = (0..steps).step_by(2).map(|k| {
            let a = y.0 + (y.1 - y.0) * k as f64 / steps as f64;
            let b = y.0 + (y.1 - y.0) * (k + 1) as f64 / steps as f64;
            PathElement::new(vec![(m.t, a), (m.t, b)], c.stroke_width(2))
        });
        chart.draw_series(dots)?;
        if m.label.is_empty() {
            continue;
        }
        let text = EmptyElement::at((m.t, y.1))
            + Text::new(
                m.label.clone(),
                (4, 4 + 15 * (row % 4)),
                (FONT, 13).into_font().color(c),
            );
        row += 1;
        chart.draw_series(std::iter::once(text))?;
    }
    Ok(())
}

/// A legend sample: two segments, touching (solid) or apart (dashed).
macro_rules! legend_sample {
    ($c:expr, $dashed:expr) => {{
        let c: RGBColor = $c;
        let gap = if $dashed { (7, 12) } else { (10, 10) };
        move |(x, y): (i32, i32)| {
            EmptyElement::at((x, y))
                + PathElement::new(vec![(0, 0), (gap.0, 0)], c.stroke_width(2))
                + PathElement::new(vec![(gap.1, 0), (19, 0)], c.stroke_width(2))
        }
    }};
}

/// The mesh style every chart shares: label fonts and light grid lines.
fn mesh_style<'m, 'a, 'b, X: Ranged, Y: Ranged, DB: DrawingBackend>(
    mesh: &'m mut MeshStyle<'a, 'b, X, Y, DB>,
) -> &'m mut MeshStyle<'a, 'b, X, Y, DB> {
    mesh.label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .light_line_style(RGBColor(0xee, 0xee, 0xee))
}

/// A chart over time: seconds since the variant's start across, `y_desc` up with SI labels.
fn time_chart<'a, DB: DrawingBackend + 'a>(
    area: &'a DrawingArea<DB, Shift>,
    title: &str,
    x_max: f64,
    (lo, hi): (f64, f64),
    y_desc: &str,
) -> Result<LinChart<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(0f64..x_max, lo..hi)?;
    mesh_style(&mut chart.configure_mesh())
        .x_desc("seconds since the variant's start")
        .y_desc(y_desc)
        .y_label_formatter(&|v| si(*v))
        .draw()?;
    Ok(chart)
}

/// The series legend every chart shares, at `position`.
fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> DrawResult<DB> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(0xaa, 0xaa, 0xaa))
        .draw()
}

fn throughput<'a, DB: DrawingBackend + 'a>(
    area: &'a DrawingArea<DB, Shift>,
    variants: &[VariantSeries],
) -> DrawResult<DB> {
    let title = "Throughput over time (acked solid, delivered dashed)";
    if variants.is_empty() {
        return no_data(area, title);
    }
    let marks = markers(variants);
    let seconds = variants.iter().map(series_end).fold(0.0, f64::max);
    let x_max = marks.iter().map(|m| m.0.t).fold(seconds, f64::max);
    let x_max = if x_max > 0.0 { x_max } else { 1.0 };
    let top = variants
        .iter()
        .flat_map(|v| {
            rates(&v.acked, v.bin_s)
                .into_iter()
                .chain(rates(&v.delivered, v.bin_s))
        })
        .fold(1.0, f64::max)
        * 1.12;
    let mut chart = time_chart(area, title, x_max, (0.0, top), &rate_unit(variants))?;
    for v in variants {
        let c = colour(v.colour);
        chart
            .draw_series(LineSeries::new(
                steps(&rates(&v.acked, v.bin_s), v.bin_s),
                c.stroke_width(2),
            ))?
            .label(format!("{} acked", v.name))
            .legend(legend_sample!(c, false));
        chart
            .draw_series(DashedLineSeries::new(
                steps(&rates(&v.delivered, v.bin_s), v.bin_s),
                7,
                5,
                c.stroke_width(2),
            ))?
            .label(format!("{} delivered", v.name))
            .legend(legend_sample!(c, true));
    }
    draw_markers(&mut chart, &marks, (0.0, top))?;
    draw_legend(&mut chart, SeriesLabelPosition::LowerRight)
}

/// Quantiles q = 1 − 10^(−x), x from 0 to 4 (p0 … p99.99), as (1/(1−q), µs).
pub fn percentile_curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    const POINTS: u32 = 160;
    (0..=POINTS)
        .map(|k| {
            let x = 4.0 * k as f64 / POINTS as f64;
            let q = 1.0 - 10f64.powf(-x);
            let ns = h.value_at_quantile(q) as f64;
            (10f64.powf(x), (ns / 1000.0).max(MIN_US))
        })
        .collect()
}

/// The floor of the log-scaled latency axis: 10 ns.
const MIN_US: f64 = 0.01;

/// x = 1/(1−q) → "99.9%".
fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 1.0 / x);
    let s = format!("{p:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

fn latency<'a, DB: DrawingBackend + 'a>(
    area: &'a DrawingArea<DB, Shift>,
    variants: &[VariantSeries],
) -> DrawResult<DB> {
    let panels = area.split_evenly((1, 2));
    let kinds: [(&str, PickHistogram); 2] = [
        ("Publish latency (send → ack)", |v| v.publish.as_ref()),
        ("End-to-end latency (send → delivery)", |v| {
            v.end_to_end.as_ref()
        }),
    ];
    for (panel, (title, pick)) in panels.iter().zip(kinds) {
        let curves: Vec<(&VariantSeries, Vec<(f64, f64)>)> = variants
            .iter()
            .filter_map(|v| {
                pick(v)
                    .filter(|h| !h.is_empty())
                    .map(|h| (v, percentile_curve(h)))
            })
            .collect();
        if curves.is_empty() {
            no_data(panel, title)?;
            continue;
        }
        let lo = curves
            .iter()
            .flat_map(|(_, c)| c.iter().map(|p| p.1))
            .fold(f64::INFINITY, f64::min);
        let hi = curves
            .iter()
            .flat_map(|(_, c)| c.iter().map(|p| p.1))
            .fold(0f64, f64::max);
        let (lo, hi) = (lo / 1.5, (hi * 1.5).max(lo * 10.0));
        let mut chart = ChartBuilder::on(panel)
            .caption(title, (FONT, 18))
            .margin(12)
            .margin_right(36)
            .x_label_area_size(44)
            .y_label_area_size(72)
            .build_cartesian_2d((1f64..10_000f64).log_scale(), (lo..hi).log_scale())?;
        mesh_style(&mut chart.configure_mesh())
            .x_desc("percentile (log scale of 1/(1−q))")
            .y_desc("latency, µs (log)")
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|v| si(*v))
            .draw()?;
        for (v, curve) in &curves {
            let c = colour(v.colour);
            chart
                .draw_series(LineSeries::new(curve.iter().copied(), c.stroke_width(2)))?
                .label(v.name.clone())
                .legend(legend_sample!(c, false));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    }
    Ok(())
}

fn backlog<'a, DB: DrawingBackend + 'a>(
    area: &'a DrawingArea<DB, Shift>,
    variants: &[VariantSeries],
) -> DrawResult<DB> {
    let title = "Backlog over time (history: acked − delivered, solid; broker depth, dashed)";
    if variants.is_empty() {
        return no_data(area, title);
    }
    let marks = markers(variants);
    let seconds = variants
        .iter()
        .map(|v| series_end(v).max(v.depth.last().map_or(0.0, |d| d.0)))
        .fold(0.0, f64::max);
    let seconds = if seconds > 0.0 { seconds } else { 1.0 };
    let x_max = marks.iter().map(|m| m.0.t).fold(seconds, f64::max);
    let values = variants.iter().flat_map(|v| {
        v.backlog
            .iter()
            .map(|b| *b as f64)
            .chain(v.depth.iter().map(|d| d.1 as f64))
    });
    let (lo, hi) = values.fold((0f64, 1f64), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let (lo, hi) = (if lo < 0.0 { lo * 1.12 } else { 0.0 }, hi * 1.12);
    let mut chart = time_chart(area, title, x_max, (lo, hi), "messages")?;
    for v in variants {
        let c = colour(v.colour);
        chart
            .draw_series(LineSeries::new(
                steps(&i64_f(&v.backlog), v.bin_s),
                c.stroke_width(2),
            ))?
            .label(format!("{} backlog", v.name))
            .legend(legend_sample!(c, false));
        if !v.depth.is_empty() {
            let pts: Vec<(f64, f64)> = v.depth.iter().map(|(t, m)| (*t, *m as f64)).collect();
            chart
                .draw_series(DashedLineSeries::new(pts.clone(), 5, 4, c.stroke_width(2)))?
                .label(format!("{} broker depth", v.name))
                .legend(legend_sample!(c, true));
            chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 2, c.filled())))?;
        }
    }
    draw_markers(&mut chart, &marks, (lo, hi))?;
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
}

fn anomalies<'a, DB: DrawingBackend + 'a>(
    area: &'a DrawingArea<DB, Shift>,
    variants: &[VariantSeries],
) -> DrawResult<DB> {
    let title = "Lost, duplicated, reordered, unexpected per variant (0 is good)";
    if variants.is_empty() {
        return no_data(area, title);
    }
    let groups: [(&str, PickCount); 4] = [
        ("lost", |c| c.lost),
        ("duplicated", |c| c.duplicated),
        ("reordered", |c| c.reordered),
        ("unexpected", |c| c.unexpected),
    ];
    let top = variants
        .iter()
        .flat_map(|v| groups.iter().map(|g| (g.1)(&v.counts)))
        .max()
        .unwrap_or(0)
        .max(1) as f64
        * 1.18;
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(0f64..groups.len() as f64, 0f64..top)?;
    mesh_style(&mut chart.configure_mesh())
        .disable_x_mesh()
        .x_labels(2)
        .x_label_formatter(&|_| String::new())
        .y_desc("messages")
        .y_label_formatter(&|v| {
            if v.fract() == 0.0 {
                si(*v)
            } else {
                String::new()
            }
        })
        .draw()?;
    let n = variants.len() as f64;
    let width = 0.8 / n;
    for (g, (group, _)) in groups.iter().enumerate() {
        let label = EmptyElement::at((g as f64 + 0.5, 0.0))
            + Text::new(
                group.to_string(),
                (0, 10),
                (FONT, 15)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Center, VPos::Top)),
            );
        chart.draw_series(std::iter::once(label))?;
    }
    for (i, v) in variants.iter().enumerate() {
        let c = colour(v.colour);
        let bars: Vec<(f64, f64, u64)> = groups
            .iter()
            .enumerate()
            .map(|(g, (_, f))| (g as f64 + 0.1 + width * i as f64, width, f(&v.counts)))
            .collect();
        chart
            .draw_series(bars.iter().map(|(x, w, val)| {
                Rectangle::new(
                    [(*x + w * 0.06, 0.0), (*x + w * 0.94, *val as f64)],
                    c.filled(),
                )
            }))?
            .label(v.name.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], c.filled()));
        chart.draw_series(bars.iter().map(|(x, w, val)| {
            EmptyElement::at((*x + w / 2.0, *val as f64))
                + Text::new(
                    val.to_string(),
                    (0, -4),
                    (FONT, 13)
                        .into_font()
                        .color(&BLACK)
                        .pos(Pos::new(HPos::Center, VPos::Bottom)),
                )
        }))?;
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn si_formats_compactly() {
        assert_eq!(si(0.0), "0");
        assert_eq!(si(950.0), "950");
        assert_eq!(si(1500.0), "1.5k");
        assert_eq!(si(1_364_062.0), "1.36M");
        assert_eq!(si(2_000_000.0), "2M");
        assert_eq!(si(0.25), "0.25");
    }

    #[test]
    fn percentile_labels_read_as_percentiles() {
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(1000.0), "99.9%");
        assert_eq!(percentile_label(10_000.0), "99.99%");
    }

    fn variant(name: &str, colour: usize, markers: Vec<Marker>) -> VariantSeries {
        let mut h = mq_checker::new_histogram();
        for i in 1..10_000u64 {
            h.record(i * 100).unwrap();
        }
        VariantSeries {
            name: name.into(),
            colour,
            bin_s: 1.0,
            acked: vec![1000, 1200, 800],
            delivered: vec![900, 1250, 850],
            backlog: vec![100, 50, 0],
            depth: vec![(0.5, 90), (1.0, 60), (1.5, 40)],
            publish: Some(h.clone()),
            end_to_end: Some(h),
            counts: Counts {
                lost: 3,
                duplicated: 7,
                ..Counts::default()
            },
            markers,
        }
    }

    #[test]
    fn charts_render_both_ways_deterministically_with_and_without_markers() {
        let vs = vec![
            variant(
                "a<&>",
                0,
                vec![Marker {
                    t: 1.5,
                    label: "kill-broker".into(),
                }],
            ),
            variant("b", 1, vec![]),
        ];
        let one = all(&vs).unwrap();
        let two = all(&vs).unwrap();
        assert_eq!(one.len(), 4);
        for (a, b) in one.iter().zip(&two) {
            assert!(a.svg.starts_with("<svg"), "{}", &a.svg[..40]);
            assert_eq!(&a.png[1..4], b"PNG");
            assert_eq!(a.svg, b.svg, "{} svg differs between renders", a.name);
            assert_eq!(a.png, b.png, "{} png differs between renders", a.name);
        }
        // The marker is drawn with its variant's name; names are escaped in SVG.
        assert!(one[0].svg.contains("kill-broker"));
        assert!(!one[0].svg.contains("a<&>"));
        let none = all(&[]).unwrap();
        assert!(none[0].svg.contains("no data"));
    }

    /// The text elements of an SVG, trimmed.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| {
                let body = &t[t.find('>')? + 1..];
                Some(body[..body.find("</text>")?].trim().to_owned())
            })
            .collect()
    }

    #[test]
    fn throughput_is_drawn_in_msgs_per_second_with_its_bin_width() {
        // 0.6 s in 10 ms bins of 10 acks: 1000 msgs/s, over 0.6 s of x axis.
        let mut v = variant("a", 0, vec![]);
        v.bin_s = 0.01;
        v.acked = vec![10; 60];
        v.delivered = vec![10; 60];
        v.backlog = vec![0; 60];
        v.depth.clear();
        let charts = all(&[v]).unwrap();
        let svg = &charts[0].svg;
        assert!(svg.contains("msgs/s (10 ms bins)"), "no unit label");
        // The y axis reaches 1000 msgs/s (labels in SI), not 10.
        let t = texts(svg);
        assert!(t.iter().any(|t| t == "1k"), "y axis not in msgs/s: {t:?}");
        assert_eq!(bin_label(0.01), "10 ms");
        assert_eq!(bin_label(0.5), "500 ms");
        assert_eq!(bin_label(2.0), "2 s");
    }
}
