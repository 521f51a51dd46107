//! The four charts of a run, drawn with plotters into SVG text and PNG bytes from the same code:
//! throughput over time and backlog over time ([`time`]: one chart, or a panel per variant past
//! four variants), latency percentile distribution ([`latency`]), anomalies per variant
//! ([`anomalies`]); after them the cost per variant ([`cost`]), CPU use over time ([`cpu`])
//! and a sweep's curve
//! ([`curve`]). Keys ([`key`]) sit outside the plotting areas. Text is rendered from the font
//! embedded in `fonts/`, so no system font is needed.

mod anomalies;
mod cost;
mod cpu;
mod curve;
mod key;
mod latency;
mod time;

use std::sync::Once;

use hdrhistogram::Histogram;
use mq_checker::Counts;
use plotters::chart::MeshStyle;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub use cost::CostBar;
pub use cpu::CpuLine;
use key::{draw_key, draw_key_column, key_height, Sample};
pub use latency::percentile_curve;
pub use time::depth_segments;

/// A labelled instant on a time chart (a fault: `kill-broker@3s`, `pause-consumers@2s` …).
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
    /// Stretches (from, to seconds) when at least one partition had no consumer (a group
    /// rebalance or a dead member), shaded on the throughput chart.
    pub pauses: Vec<(f64, f64)>,
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

/// Past this many variants, the time charts draw a panel per variant (small multiples).
pub const SMALL_MULTIPLES_FROM: usize = 5;

/// Every chart is this wide (the page shows it at its natural size).
const WIDTH: u32 = 1200;
const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../../fonts/DejaVuSans-subset.ttf");
/// Text and lines that are not data: axes' titles, fault markers, keys.
const INK: RGBColor = RGBColor(0x33, 0x33, 0x33);
const MUTED: RGBColor = RGBColor(0x55, 0x55, 0x55);

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

/// The sweep chart (`charts/sweep.*`), when the run has sweep points.
pub fn sweep(points: &[crate::sweep::Point]) -> anyhow::Result<Option<Chart>> {
    if points.is_empty() {
        return Ok(None);
    }
    let chart = render(
        "sweep",
        "Sweep",
        curve::size(points),
        |a| curve::curve(a, points),
        |a| curve::curve(a, points),
    )?;
    Ok(Some(chart))
}

/// The cost chart (`charts/cost.*`), when some variant has cost figures.
pub fn cost(bars: &[CostBar]) -> anyhow::Result<Option<Chart>> {
    if bars.is_empty() {
        return Ok(None);
    }
    let chart = render(
        "cost",
        "CPU per million messages and write amplification",
        cost::size(bars),
        |a| cost::cost(a, bars),
        |a| cost::cost(a, bars),
    )?;
    Ok(Some(chart))
}

/// The CPU-over-time chart (`charts/cpu.*`) on a machine of `cores`, when some variant has a
/// CPU series.
pub fn cpu(lines: &[CpuLine], cores: u32) -> anyhow::Result<Option<Chart>> {
    if lines.is_empty() {
        return Ok(None);
    }
    let chart = render(
        "cpu",
        "CPU use over time",
        cpu::size(lines),
        |a| cpu::cpu(a, lines, cores),
        |a| cpu::cpu(a, lines, cores),
    )?;
    Ok(Some(chart))
}

/// Every chart of a run, in the order the report shows them.
pub fn all(variants: &[VariantSeries]) -> anyhow::Result<Vec<Chart>> {
    register_font();
    // `draw` is generic over the backend, and a closure is not: one closure per backend.
    macro_rules! chart {
        ($name:literal, $title:literal, $size:expr, $draw:expr) => {
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
            time::size(variants),
            time::throughput
        ),
        chart!(
            "latency",
            "Latency percentile distribution",
            latency::size(variants),
            latency::latency
        ),
        chart!(
            "backlog",
            "Backlog over time",
            time::size(variants),
            time::backlog
        ),
        chart!(
            "anomalies",
            "Lost, duplicated, reordered, unexpected",
            anomalies::size(variants),
            anomalies::anomalies
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

/// A bin width for a label: "10 ms", "1 s".
pub fn bin_label(bin_s: f64) -> String {
    if bin_s < 1.0 {
        format!("{} ms", si(bin_s * 1e3))
    } else {
        format!("{} s", si(bin_s))
    }
}

/// The width and height of `text` in `size` px of the embedded font (a rough estimate when the
/// font cannot lay it out).
fn text_size(text: &str, size: f64) -> (i32, i32) {
    register_font();
    match (FONT, size).into_font().box_size(text) {
        Ok((w, h)) => (w as i32, h as i32),
        Err(_) => (
            (text.chars().count() as f64 * size * 0.6) as i32,
            size as i32,
        ),
    }
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
            .color(&MUTED)
            .pos(Pos::new(HPos::Center, VPos::Center)),
    ))
}

/// A chart's title, top left.
fn draw_title<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, title: &str) -> DrawResult<DB> {
    area.draw(&Text::new(
        title.to_owned(),
        (16, 10),
        (FONT, 20).into_font().color(&BLACK),
    ))
}

/// The mesh style every chart shares: label fonts and light grid lines.
fn mesh_style<'m, 'a, 'b, X: Ranged, Y: Ranged, DB: DrawingBackend>(
    mesh: &'m mut MeshStyle<'a, 'b, X, Y, DB>,
    font: f64,
) -> &'m mut MeshStyle<'a, 'b, X, Y, DB> {
    mesh.label_style((FONT, font))
        .axis_desc_style((FONT, 14))
        .light_line_style(RGBColor(0xee, 0xee, 0xee))
        .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
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

    pub(super) fn variant(name: &str, colour: usize, markers: Vec<Marker>) -> VariantSeries {
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
            pauses: Vec::new(),
        }
    }

    /// The text elements of an SVG, trimmed.
    pub(super) fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| {
                let body = &t[t.find('>')? + 1..];
                Some(body[..body.find("</text>")?].trim().to_owned())
            })
            .collect()
    }

    #[test]
    fn charts_render_both_ways_deterministically_with_and_without_markers() {
        let vs = vec![
            variant(
                "a<&>",
                0,
                vec![Marker {
                    t: 1.5,
                    label: "kill-broker@1.5s".into(),
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
        assert!(one[0].svg.contains("kill-broker@1.5s"));
        assert!(!one[0].svg.contains("a<&>"));
        let none = all(&[]).unwrap();
        assert!(none[0].svg.contains("no data"));
    }

    #[test]
    fn rebalance_pauses_are_shaded_on_the_throughput_chart_only() {
        let mut v = variant("g", 0, vec![]);
        v.pauses = vec![(0.5, 1.5)];
        let charts = all(&[v]).unwrap();
        let RGBColor(r, g, b) = time::tint(colour(0));
        let fill = format!("fill=\"#{r:02X}{g:02X}{b:02X}\"");
        let key = "rebalance pause (a partition had no consumer)";
        let (throughput, backlog) = (&charts[0], &charts[2]);
        assert_eq!((throughput.name, backlog.name), ("throughput", "backlog"));
        assert!(texts(&throughput.svg).iter().any(|t| t == key));
        assert!(throughput.svg.contains(&fill), "no shaded span");
        assert!(!texts(&backlog.svg).iter().any(|t| t == key));
        assert!(!backlog.svg.contains(&fill));
        let plain = all(&[variant("g", 0, vec![])]).unwrap();
        assert!(!plain[0].svg.contains(&fill));
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
