//! The latency chart: publish and end-to-end percentile distributions side by side (x = 1/(1−q)
//! on a log axis, the classic HdrHistogram plot), one curve per variant, the key below both.

use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    colour, draw_key, key_height, mesh_style, no_data, si, DrawResult, Sample, VariantSeries, FONT,
    WIDTH,
};

type PickHistogram = fn(&VariantSeries) -> Option<&Histogram<u64>>;

const PANELS_H: u32 = 480;

/// The floor of the log-scaled latency axis: 10 ns.
const MIN_US: f64 = 0.01;

fn key(variants: &[VariantSeries]) -> Vec<(Sample, String)> {
    variants
        .iter()
        .map(|v| (Sample::Solid(colour(v.colour)), v.name.clone()))
        .collect()
}

pub(super) fn size(variants: &[VariantSeries]) -> (u32, u32) {
    (
        WIDTH,
        PANELS_H + key_height(&key(variants), WIDTH as i32 - 32) as u32 + 12,
    )
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

/// x = 1/(1−q) → "99.9%".
fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 1.0 / x);
    let s = format!("{p:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}%")
}

pub(super) fn latency<'a, DB: DrawingBackend + 'a>(
    area: &'a DrawingArea<DB, Shift>,
    variants: &[VariantSeries],
) -> DrawResult<DB> {
    let (top, bottom) = area.split_vertically(PANELS_H);
    let panels = top.split_evenly((1, 2));
    let kinds: [(&str, PickHistogram); 2] = [
        ("Publish latency (send → ack)", |v| v.publish.as_ref()),
        ("End-to-end latency (send → delivery)", |v| {
            v.end_to_end.as_ref()
        }),
    ];
    let mut any = false;
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
        any = true;
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
        mesh_style(&mut chart.configure_mesh(), 13.0)
            .x_desc("percentile (log scale of 1/(1−q))")
            .y_desc("latency, µs (log)")
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|v| si(*v))
            .draw()?;
        for (v, curve) in &curves {
            chart.draw_series(LineSeries::new(
                curve.iter().copied(),
                colour(v.colour).stroke_width(2),
            ))?;
        }
    }
    if any {
        let (w, _) = bottom.dim_in_pixel();
        draw_key(&bottom, &key(variants), (16, 0), w as i32 - 16)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_labels_read_as_percentiles() {
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(1000.0), "99.9%");
        assert_eq!(percentile_label(10_000.0), "99.99%");
    }
}
