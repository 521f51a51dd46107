//! What a time chart draws: each variant's lines (acked and delivered rates, history backlog,
//! broker depth broken at sample gaps) and the axes' ranges they need.

use plotters::prelude::*;

use super::{Kind, Panel};
use crate::charts::{bin_label, colour, VariantSeries};

/// How a line is drawn.
#[derive(Clone, Copy)]
pub(super) enum Style {
    Solid,
    Dashed,
    /// Dashed, each sample a dot (broker depth).
    DashedDots,
}

/// One line of one variant: one or more segments (a gap between them is drawn as a gap).
pub(super) struct Line {
    pub(super) segments: Vec<Vec<(f64, f64)>>,
    pub(super) colour: RGBColor,
    pub(super) style: Style,
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

/// Most steps a line draws: a chart is 1200 px wide, so a longer series (an hour of
/// per-second bins) is merged for drawing only; results.json keeps every bin.
const MAX_DRAWN: usize = 600;

/// How many of a series' bins merge into one drawn step.
pub(super) fn merge_factor(bins: usize) -> usize {
    bins.div_ceil(MAX_DRAWN).max(1)
}

/// Counts per bin as msgs/s, `k` bins merged into one step (each step's rate over the bins it
/// holds).
fn rates(v: &[u64], bin_s: f64, k: usize) -> Vec<f64> {
    v.chunks(k)
        .map(|c| c.iter().sum::<u64>() as f64 / (c.len() as f64 * bin_s))
        .collect()
}

/// The backlog, `k` bins merged into one step that shows their highest value (a peak stays
/// visible).
fn peaks(v: &[i64], k: usize) -> Vec<f64> {
    v.chunks(k)
        .map(|c| c.iter().copied().max().unwrap_or(0) as f64)
        .collect()
}

/// "msgs/s (10 ms bins)", or with several widths "msgs/s (bins: 10 ms, 50 ms)".
pub(super) fn rate_unit(variants: &[VariantSeries]) -> String {
    let drawn = |v: &VariantSeries| v.bin_s * merge_factor(v.acked.len()) as f64;
    let mut widths: Vec<f64> = variants.iter().map(drawn).collect();
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

/// Depth samples past [`MAX_DRAWN`] in all, merged `k` at a time into their highest (at the
/// first one's time), segment by segment.
fn thinned(segments: Vec<Vec<(f64, f64)>>) -> Vec<Vec<(f64, f64)>> {
    let k = merge_factor(segments.iter().map(Vec::len).sum());
    if k == 1 {
        return segments;
    }
    let peak = |c: &[(f64, f64)]| (c[0].0, c.iter().map(|p| p.1).fold(f64::MIN, f64::max));
    segments
        .into_iter()
        .map(|seg| seg.chunks(k).map(peak).collect())
        .collect()
}

pub(super) fn lines(kind: Kind, v: &VariantSeries) -> Vec<Line> {
    let c = colour(v.colour);
    let k = merge_factor(v.acked.len().max(v.delivered.len()).max(v.backlog.len()));
    let w = v.bin_s * k as f64;
    match kind {
        Kind::Throughput => vec![
            Line {
                segments: vec![steps(&rates(&v.acked, v.bin_s, k), w)],
                colour: c,
                style: Style::Solid,
            },
            Line {
                segments: vec![steps(&rates(&v.delivered, v.bin_s, k), w)],
                colour: c,
                style: Style::Dashed,
            },
        ],
        Kind::Backlog => {
            vec![
                Line {
                    segments: vec![steps(&peaks(&v.backlog, k), w)],
                    colour: c,
                    style: Style::Solid,
                },
                Line {
                    segments: thinned(depth_segments(&v.depth)),
                    colour: c,
                    style: Style::DashedDots,
                },
            ]
        }
    }
}

/// The end of the time axis: the last bin, depth sample or fault of any variant.
pub(super) fn x_max(variants: &[VariantSeries]) -> f64 {
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
pub(super) fn y_range(kind: Kind, panels: &[Panel]) -> (f64, f64) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hour_of_seconds_is_drawn_in_at_most_600_steps_keeping_rates_and_peaks() {
        assert_eq!(
            (merge_factor(600), merge_factor(601), merge_factor(3600)),
            (1, 2, 6)
        );
        let counts: Vec<u64> = (0..3600)
            .map(|i| if i < 1800 { 100 } else { 200 })
            .collect();
        let r = rates(&counts, 1.0, merge_factor(counts.len()));
        assert_eq!(r.len(), 600);
        assert_eq!((r[0], r[599]), (100.0, 200.0));
        let mut backlog = vec![0i64; 3600];
        backlog[1234] = 5000;
        let p = peaks(&backlog, 6);
        assert_eq!((p.len(), p[205]), (600, 5000.0));
    }

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
}
