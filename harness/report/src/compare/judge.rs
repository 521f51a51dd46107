//! The verdict on one figure of one variant: with enough repetitions, a Mann–Whitney test
//! against BASE moved by the allowed change; with fewer, a bootstrap of the per-second rates
//! (rates only); an anomaly count is exact. The rule is in the README.

use mq_checker::Report;

use super::{Row, Thresholds, Verdict};
use crate::stats::{bootstrap_ratio, mann_whitney_less, median};

#[derive(Clone, Copy)]
pub(super) enum Better {
    Higher,
    Lower,
}

pub(super) type Figure = fn(&Report) -> f64;
/// A series of counts per bin (`series.bin_s` wide).
pub(super) type PerBin = fn(&Report) -> &[u64];
pub(super) type Count = fn(&Report) -> u64;

/// One speed metric compared: its name, direction, allowed change, the figure, its series.
#[derive(Clone, Copy)]
pub(super) struct Metric {
    pub name: &'static str,
    pub better: Better,
    /// Allowed change, percent.
    pub limit_pct: f64,
    pub figure: Figure,
    /// The per-bin series the figure is a rate of (rates only).
    pub seconds: Option<PerBin>,
}

/// A rate: higher is better, judged with its series too.
pub(super) fn rate(name: &'static str, limit_pct: f64, figure: Figure, seconds: PerBin) -> Metric {
    Metric {
        name,
        better: Better::Higher,
        limit_pct,
        figure,
        seconds: Some(seconds),
    }
}

/// A latency: lower is better, judged on the figure alone.
pub(super) fn latency(name: &'static str, limit_pct: f64, figure: Figure) -> Metric {
    Metric {
        name,
        better: Better::Lower,
        limit_pct,
        figure,
        seconds: None,
    }
}

/// The windows `compare` measures noise over: bins finer than a second are summed into windows
/// of a second (as many whole bins as make one); bins of a second or more are each a window.
/// Returns (bins per window, window seconds).
fn window(bin_s: f64) -> (usize, f64) {
    let k = if bin_s >= 1.0 {
        1
    } else {
        ((1.0 / bin_s).round() as usize).max(1)
    };
    (k, k as f64 * bin_s)
}

/// Rates (msgs/s) of a series' full windows (see [`window`]). The last window is left out: the
/// run ended within it.
pub fn window_rates(counts: &[u64], bin_s: f64) -> Vec<f64> {
    let (k, window_s) = window(bin_s);
    let mut rates: Vec<f64> = counts
        .chunks(k)
        .map(|c| c.iter().sum::<u64>() as f64 / window_s)
        .collect();
    rates.pop();
    rates
}

/// The full windows' rates of every repetition, and how many seconds they cover.
fn per_second(reports: &[&Report], pick: PerBin) -> (Vec<f64>, f64) {
    let mut seconds = 0.0;
    let mut rates = Vec::new();
    for r in reports {
        let w = window_rates(pick(r), r.series.bin_s);
        seconds += w.len() as f64 * window(r.series.bin_s).1;
        rates.extend(w);
    }
    (rates, (seconds * 100.0).round() / 100.0)
}

fn pct(base: f64, new: f64) -> Option<f64> {
    (base != 0.0 && base.is_finite() && new.is_finite()).then(|| (new - base) / base * 100.0)
}

/// The row of speed metric `m` of `variant`, judged from the repetitions of each side.
pub(super) fn speed_row(
    t: &Thresholds,
    variant: &str,
    m: &Metric,
    base: &[&Report],
    new: &[&Report],
) -> Row {
    let b: Vec<f64> = base.iter().map(|r| (m.figure)(r)).collect();
    let n: Vec<f64> = new.iter().map(|r| (m.figure)(r)).collect();
    let (bm, nm) = (median(&b), median(&n));
    let limit = match m.better {
        Better::Higher => format!("−{} %", m.limit_pct),
        Better::Lower => format!("+{} %", m.limit_pct),
    };
    let (evidence, verdict) = if b.len() >= t.min_repetitions && n.len() >= t.min_repetitions {
        by_repetitions(t, m, &b, &n)
    } else {
        match m.seconds {
            Some(pick) => by_seconds(t, m, (base, new), pick, (b.len(), n.len())),
            None => (
                format!(
                    "{} vs {} reps: a percentile of one run carries no noise estimate",
                    b.len(),
                    n.len()
                ),
                Verdict::Inconclusive,
            ),
        }
    };
    Row {
        variant: variant.to_owned(),
        metric: m.name,
        base: Some(bm),
        new: Some(nm),
        change_pct: pct(bm, nm),
        limit,
        evidence,
        verdict,
    }
}

/// Is NEW worse than BASE moved by the allowed change? Significant only past the limit.
fn by_repetitions(t: &Thresholds, m: &Metric, b: &[f64], n: &[f64]) -> (String, Verdict) {
    let k = m.limit_pct / 100.0;
    let p = match m.better {
        Better::Higher => {
            let shifted: Vec<f64> = b.iter().map(|v| v * (1.0 - k)).collect();
            mann_whitney_less(n, &shifted)
        }
        Better::Lower => {
            let shifted: Vec<f64> = b.iter().map(|v| v * (1.0 + k)).collect();
            mann_whitney_less(&shifted, n)
        }
    };
    let evidence = format!("Mann–Whitney p = {p:.3} ({} vs {} reps)", b.len(), n.len());
    let verdict = match p < t.alpha {
        true => Verdict::Regression,
        false => Verdict::Ok,
    };
    (evidence, verdict)
}

/// Too few repetitions: a bootstrap of the ratio of per-second rates, when there are enough.
fn by_seconds(
    t: &Thresholds,
    m: &Metric,
    (base, new): (&[&Report], &[&Report]),
    pick: PerBin,
    (b_reps, n_reps): (usize, usize),
) -> (String, Verdict) {
    let (bs, b_secs) = per_second(base, pick);
    let (ns, n_secs) = per_second(new, pick);
    if bs.len() < 3 || ns.len() < 3 {
        let evidence = format!(
            "{b_secs} vs {n_secs} full seconds, {b_reps} vs {n_reps} reps: too few to measure noise"
        );
        return (evidence, Verdict::Inconclusive);
    }
    let (lo, hi) = bootstrap_ratio(&bs, &ns, t.alpha, 1.0 - t.alpha);
    let conf = (1.0 - t.alpha) * 100.0;
    let evidence = format!(
        "bootstrap of per-second rates ({b_secs} vs {n_secs} s): {conf:.0} % bounds {:+.1} % / {:+.1} %",
        (lo - 1.0) * 100.0 + 0.0,
        (hi - 1.0) * 100.0 + 0.0
    );
    let verdict = match hi < 1.0 - m.limit_pct / 100.0 {
        true => Verdict::Regression,
        false => Verdict::Ok,
    };
    (evidence, verdict)
}

/// The row of an anomaly count: the worst repetition of each side, a regression only when
/// `fail` and NEW has any.
pub(super) fn count_row(
    variant: &str,
    metric: &'static str,
    fail: bool,
    base: &[&Report],
    new: &[&Report],
    figure: Count,
) -> Row {
    let b = base.iter().map(|r| figure(r)).max().unwrap_or(0) as f64;
    let n = new.iter().map(|r| figure(r)).max().unwrap_or(0) as f64;
    let verdict = if fail && n > 0.0 {
        Verdict::Regression
    } else {
        Verdict::Ok
    };
    Row {
        variant: variant.to_owned(),
        metric,
        base: Some(b),
        new: Some(n),
        change_pct: pct(b, n),
        limit: if fail { "any > 0" } else { "report only" }.to_owned(),
        evidence: "exact count (worst repetition)".to_owned(),
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::render::change;

    /// Acked msgs/s with a 5 % limit, judged with series `s` or without.
    fn acked(s: Option<PerBin>) -> Metric {
        m(
            "acked",
            Better::Higher,
            5.0,
            |r| r.throughput.acked_msgs_per_s,
            s,
        )
    }

    /// A metric as the rows of `compare` judge it.
    fn m(
        name: &'static str,
        better: Better,
        limit_pct: f64,
        figure: Figure,
        seconds: Option<PerBin>,
    ) -> Metric {
        Metric {
            name,
            better,
            limit_pct,
            figure,
            seconds,
        }
    }

    fn report(rate: f64, seconds: usize, p99: f64) -> Report {
        let mut r = Report::default();
        r.throughput.acked_msgs_per_s = rate;
        r.throughput.delivered_msgs_per_s = rate;
        r.latency.publish.p99_us = p99;
        r.latency.end_to_end.p99_us = p99;
        r.series.acked = vec![rate as u64; seconds];
        r.series.delivered = vec![rate as u64; seconds];
        r
    }

    fn row<'a>(rows: &'a [Row], metric: &str) -> &'a Row {
        rows.iter().find(|r| r.metric == metric).unwrap()
    }

    #[test]
    fn repetitions_decide_by_mann_whitney_past_the_limit() {
        let t = Thresholds::default();
        let b: Vec<Report> = [100.0, 103.0, 98.0, 101.0, 99.0]
            .iter()
            .map(|v| report(*v, 1, 10.0))
            .collect();
        let small: Vec<Report> = [97.0, 100.0, 95.0, 98.0, 96.0] // −3 %: within 5 %
            .iter()
            .map(|v| report(*v, 1, 10.0))
            .collect();
        let big: Vec<Report> = [80.0, 83.0, 78.0, 81.0, 79.0] // −20 %
            .iter()
            .map(|v| report(*v, 1, 10.0))
            .collect();
        fn refs(v: &[Report]) -> Vec<&Report> {
            v.iter().collect()
        }
        let ok = speed_row(&t, "v", &acked(None), &refs(&b), &refs(&small));
        assert_eq!(ok.verdict, Verdict::Ok, "{ok:?}");
        let bad = speed_row(&t, "v", &acked(None), &refs(&b), &refs(&big));
        assert_eq!(bad.verdict, Verdict::Regression, "{bad:?}");
        assert!((bad.change_pct.unwrap() + 20.0).abs() < 1.0);
    }

    #[test]
    fn one_repetition_uses_per_second_samples_or_says_inconclusive() {
        let t = Thresholds::default();
        let s: Option<PerBin> = Some(|r| &r.series.acked);
        let b = report(1000.0, 6, 10.0);
        let mut n = report(800.0, 6, 10.0);
        n.series.acked = vec![790, 810, 800, 805, 795, 0];
        let r = speed_row(&t, "v", &acked(s), &[&b], &[&n]);
        assert_eq!(r.verdict, Verdict::Regression, "{r:?}");
        let same = speed_row(&t, "v", &acked(s), &[&b], &[&b]);
        assert_eq!(same.verdict, Verdict::Ok, "{same:?}");
        let short = report(800.0, 2, 10.0);
        let r = speed_row(&t, "v", &acked(s), &[&b], &[&short]);
        assert_eq!(r.verdict, Verdict::Inconclusive, "{r:?}");
        // A latency percentile of single runs: never decided on one number.
        let lat: Figure = |r| r.latency.end_to_end.p99_us;
        let worse = report(1000.0, 6, 100.0);
        let r = speed_row(
            &t,
            "v",
            &m("p99", Better::Lower, 10.0, lat, None),
            &[&b],
            &[&worse],
        );
        assert_eq!(r.verdict, Verdict::Inconclusive);
    }

    #[test]
    fn window_rates_sum_fine_bins_into_seconds_and_scale_coarse_ones() {
        // 10 ms bins of 10 messages over 2.5 s: 1000 msgs/s in each of the 2 full seconds.
        assert_eq!(window_rates(&[10; 250], 0.01), vec![1000.0, 1000.0]);
        // 50 ms bins: 20 to a second; the third, partial second is left out.
        let mut v = vec![50; 40];
        v.extend([100; 20]);
        assert_eq!(window_rates(&v, 0.05), vec![1000.0, 1000.0]);
        // Per-second bins as before: the last second is left out.
        assert_eq!(window_rates(&[5, 6, 7], 1.0), vec![5.0, 6.0]);
        // 2 s bins: each bin is a window, scaled to msgs/s.
        assert_eq!(window_rates(&[400, 600, 10], 2.0), vec![200.0, 300.0]);
        assert!(window_rates(&[], 0.01).is_empty());
    }

    #[test]
    fn runs_with_different_bin_widths_compare_as_rates() {
        let t = Thresholds::default();
        let s: Option<PerBin> = Some(|r| &r.series.acked);
        // BASE: per-second bins (schema 1). NEW: the same 1000 msgs/s in 10 ms bins.
        let b = report(1000.0, 6, 10.0);
        let mut n = report(1000.0, 0, 10.0);
        n.series.bin_s = 0.01;
        n.series.acked = vec![10; 600];
        let r = speed_row(&t, "v", &acked(s), &[&b], &[&n]);
        assert_eq!(r.verdict, Verdict::Ok, "{r:?}");
        assert!(r.evidence.contains("(5 vs 5 s)"), "{}", r.evidence);
        // 20 % fewer per 10 ms bin is a regression.
        n.series.acked = vec![8; 600];
        let r = speed_row(&t, "v", &acked(s), &[&b], &[&n]);
        assert_eq!(r.verdict, Verdict::Regression, "{r:?}");
    }

    #[test]
    fn counts_fail_only_when_asked() {
        let mut b = report(1.0, 1, 1.0);
        b.counts.lost = 0;
        let mut n = b.clone();
        n.counts.lost = 4;
        let r = count_row("v", "lost", true, &[&b], &[&n], |r| r.counts.lost);
        assert_eq!(r.verdict, Verdict::Regression);
        assert_eq!(change(&r), "+4");
        let r = count_row("v", "lost", false, &[&b], &[&n], |r| r.counts.lost);
        assert_eq!(r.verdict, Verdict::Ok);
        let _ = row(&[r], "lost");
    }
}
