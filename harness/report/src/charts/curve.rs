//! The sweep chart. A rate sweep draws end-to-end latency (p50 solid, p99 dashed, log scale)
//! against the throughput each point achieved, one colour per variant, the highest sustained
//! rate (the knee) ringed. A sweep over message size, producers or partitions draws delivered
//! throughput against the swept value.

use mq_core::plan::SweepAxis;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{colour, draw_key, key_height, mesh_style, si, DrawResult, Sample, FONT, INK, WIDTH};
use crate::sweep::{knee, Point};

const PLOT_H: u32 = 460;

fn key(points: &[Point], rate: bool) -> Vec<(Sample, String)> {
    let mut seen: Vec<(usize, &str)> = Vec::new();
    for p in points {
        if !seen.iter().any(|(g, _)| *g == p.group) {
            seen.push((p.group, &p.variant));
        }
    }
    let mut key: Vec<(Sample, String)> = seen
        .into_iter()
        .map(|(g, name)| (Sample::Swatch(colour(g)), name.to_owned()))
        .collect();
    if rate {
        key.push((Sample::Solid(INK), "end-to-end p50".into()));
        key.push((Sample::Dashed(INK), "end-to-end p99".into()));
    }
    key
}

pub(super) fn size(points: &[Point]) -> (u32, u32) {
    let rate = points.iter().all(|p| p.axis == SweepAxis::Rate);
    (
        WIDTH,
        PLOT_H + key_height(&key(points, rate), WIDTH as i32 - 32) as u32 + 12,
    )
}

/// A variant's points in the order of their swept value.
fn lines(points: &[Point]) -> Vec<(usize, Vec<&Point>)> {
    let mut groups: Vec<(usize, Vec<&Point>)> = Vec::new();
    for p in points {
        match groups.iter_mut().find(|(g, _)| *g == p.group) {
            Some((_, ps)) => ps.push(p),
            None => groups.push((p.group, vec![p])),
        }
    }
    for (_, ps) in &mut groups {
        ps.sort_by_key(|p| p.value);
    }
    groups
}

pub(super) fn curve<'a, DB: DrawingBackend + 'a>(
    area: &'a DrawingArea<DB, Shift>,
    points: &[Point],
) -> DrawResult<DB> {
    let rate = points.iter().all(|p| p.axis == SweepAxis::Rate);
    let (top, bottom) = area.split_vertically(PLOT_H);
    match rate {
        true => latency_vs_throughput(&top, points)?,
        false => throughput_vs_value(&top, points)?,
    }
    let (w, _) = bottom.dim_in_pixel();
    draw_key(&bottom, &key(points, rate), (16, 0), w as i32 - 16)
}

fn latency_vs_throughput<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    points: &[Point],
) -> DrawResult<DB> {
    let x_hi = points.iter().map(|p| p.delivered_per_s).fold(1.0, f64::max) * 1.1;
    let lat = |p: &Point| [p.p50_us, p.p99_us];
    let lo = points.iter().flat_map(lat).fold(f64::INFINITY, f64::min);
    let hi = points.iter().flat_map(lat).fold(0.0, f64::max);
    let (lo, hi) = ((lo / 1.5).max(0.01), (hi * 1.5).max(lo * 10.0).max(1.0));
    let mut chart = ChartBuilder::on(area)
        .caption("End-to-end latency against achieved throughput", (FONT, 18))
        .margin(12)
        .margin_right(36)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(0f64..x_hi, (lo..hi).log_scale())?;
    mesh_style(&mut chart.configure_mesh(), 13.0)
        .x_desc("delivered msg/s")
        .y_desc("latency, µs (log)")
        .x_label_formatter(&|x| si(*x))
        .y_label_formatter(&|v| si(*v))
        .draw()?;
    for (g, ps) in lines(points) {
        let c = colour(g);
        let p50: Vec<(f64, f64)> = ps.iter().map(|p| (p.delivered_per_s, p.p50_us)).collect();
        let p99: Vec<(f64, f64)> = ps.iter().map(|p| (p.delivered_per_s, p.p99_us)).collect();
        chart.draw_series(LineSeries::new(p50.iter().copied(), c.stroke_width(2)))?;
        chart.draw_series(DashedLineSeries::new(
            p99.iter().copied(),
            7,
            5,
            c.stroke_width(2),
        ))?;
        let dots = p50.iter().chain(&p99);
        chart.draw_series(dots.map(|&xy| Circle::new(xy, 3, c.filled())))?;
        if let Some(k) = knee(points, &ps[0].variant) {
            let at = (k.delivered_per_s, k.p99_us);
            chart.draw_series([Circle::new(at, 9, c.stroke_width(2))])?;
            let label = format!("knee {} msg/s", si(k.offered as f64));
            let style = (FONT, 13).into_font().color(&INK);
            let label = EmptyElement::at(at) + Text::new(label, (12, -18), style);
            chart.draw_series([label])?;
        }
    }
    Ok(())
}

fn throughput_vs_value<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    points: &[Point],
) -> DrawResult<DB> {
    let size = points.iter().all(|p| p.axis == SweepAxis::MessageSize);
    let y = |p: &Point| match size {
        true => p.delivered_mb_per_s,
        false => p.delivered_per_s,
    };
    let x_lo = points.iter().map(|p| p.value).min().unwrap_or(1).max(1) as f64;
    let x_hi = (points.iter().map(|p| p.value).max().unwrap_or(1) as f64).max(x_lo * 2.0);
    let y_hi = points.iter().map(y).fold(1e-3, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption("Delivered throughput against the swept value", (FONT, 18))
        .margin(12)
        .margin_right(36)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d((x_lo / 1.2..x_hi * 1.2).log_scale(), 0f64..y_hi)?;
    let axes: Vec<&str> = SweepAxis::ALL
        .iter()
        .filter(|a| points.iter().any(|p| p.axis == **a))
        .map(|a| a.field())
        .collect();
    mesh_style(&mut chart.configure_mesh(), 13.0)
        .x_desc(format!("{} (log)", axes.join(" / ")))
        .y_desc(match size {
            true => "delivered MB/s",
            false => "delivered msg/s",
        })
        .x_label_formatter(&|x| si(*x))
        .y_label_formatter(&|v| si(*v))
        .draw()?;
    for (g, ps) in lines(points) {
        let c = colour(g);
        let xy: Vec<(f64, f64)> = ps.iter().map(|p| (p.value as f64, y(p))).collect();
        chart.draw_series(LineSeries::new(xy.iter().copied(), c.stroke_width(2)))?;
        chart.draw_series(xy.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
    }
    Ok(())
}
