//! The CPU-over-time chart: cores busy (CPU seconds per second) since the load's start, the
//! broker solid and the workers dashed in each variant's colour, under a grey line at the
//! machine's cores (its limit); read beside the throughput chart.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{colour, draw_key, key_height, mesh_style, DrawResult, Sample, FONT, INK, WIDTH};

/// What the chart draws of one variant (results.json `cost.series`).
#[derive(Debug, Clone, PartialEq)]
pub struct CpuLine {
    pub name: String,
    pub colour: usize,
    pub bin_s: f64,
    /// Cores busy per bin: the broker's (None: unknown), the workers'.
    pub broker: Option<Vec<f64>>,
    pub clients: Vec<f64>,
}

const PLOT_H: u32 = 380;
const GREY: RGBColor = RGBColor(0x99, 0x99, 0x99);

fn key(lines: &[CpuLine]) -> Vec<(Sample, String)> {
    let mut key: Vec<(Sample, String)> = (lines.iter())
        .map(|l| (Sample::Swatch(colour(l.colour)), l.name.clone()))
        .collect();
    key.push((Sample::Solid(INK), "broker".into()));
    key.push((Sample::Dashed(INK), "workers".into()));
    key.push((Sample::Solid(GREY), "the machine's cores".into()));
    key
}

pub(super) fn size(lines: &[CpuLine]) -> (u32, u32) {
    let k = key_height(&key(lines), WIDTH as i32 - 32);
    (WIDTH, PLOT_H + k as u32 + 12)
}

/// (bin middle, value) points of a series.
fn points(bin_s: f64, v: &[f64]) -> Vec<(f64, f64)> {
    (v.iter().enumerate())
        .map(|(i, &y)| ((i as f64 + 0.5) * bin_s, y))
        .collect()
}

pub(super) fn cpu<'a, DB: DrawingBackend + 'a>(
    area: &'a DrawingArea<DB, Shift>,
    lines: &[CpuLine],
    cores: u32,
) -> DrawResult<DB> {
    let (top, bottom) = area.split_vertically(PLOT_H);
    let t_hi = (lines.iter())
        .map(|l| l.bin_s * l.clients.len() as f64)
        .fold(0.1, f64::max);
    let all = lines.iter().flat_map(|l| {
        let broker = l.broker.iter().flatten();
        broker.chain(&l.clients).copied()
    });
    let y_hi = all.fold(f64::from(cores), f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&top)
        .caption("CPU use over time (cores busy)", (FONT, 18))
        .margin(12)
        .margin_right(36)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..t_hi, 0f64..y_hi)?;
    mesh_style(&mut chart.configure_mesh(), 13.0)
        .x_desc("seconds since the load's start")
        .y_desc("cores busy")
        .draw()?;
    let limit = f64::from(cores);
    chart.draw_series(LineSeries::new(
        [(0.0, limit), (t_hi, limit)],
        GREY.stroke_width(2),
    ))?;
    for l in lines {
        let c = colour(l.colour);
        if let Some(b) = &l.broker {
            chart.draw_series(LineSeries::new(points(l.bin_s, b), c.stroke_width(2)))?;
        }
        chart.draw_series(DashedLineSeries::new(
            points(l.bin_s, &l.clients),
            7,
            5,
            c.stroke_width(2),
        ))?;
    }
    let (w, _) = bottom.dim_in_pixel();
    draw_key(&bottom, &key(lines), (16, 0), w as i32 - 16)
}
