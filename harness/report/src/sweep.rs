//! Sweeps (a variant written with `sweep = { rates = [...] }`, or message sizes, producers,
//! partitions): each point as a row of figures, whether it kept up with its offered rate, and the
//! highest point that did (the knee). The latency–throughput chart draws the same points.

use mq_core::plan::SweepAxis;
use mq_results::RunResults;

use crate::doc::{Align::*, Table, Text};
use crate::tables::n;

/// A point kept up when it acked and delivered at least this share of its offered rate.
pub const SUSTAINED_SHARE: f64 = 0.95;

/// One measured point of a sweep (one run of it, when the point ran several times).
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The variant as written, and its position among the swept variants (its colour).
    pub variant: String,
    pub group: usize,
    /// The run's own name (`NAME.rate-1000`, `NAME.rate-1000.run-2`).
    pub name: String,
    pub axis: SweepAxis,
    pub value: u64,
    /// The offered rate, msgs/s (0 = as fast as possible).
    pub offered: u64,
    pub acked_per_s: f64,
    pub delivered_per_s: f64,
    pub delivered_mb_per_s: f64,
    /// End-to-end latency percentiles, µs.
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub publish_p99_us: f64,
    pub lost: u64,
}

impl Point {
    /// Whether it kept up with its offered rate (None when it had none: as fast as possible).
    pub fn sustained(&self) -> Option<bool> {
        (self.offered > 0).then(|| {
            let want = self.offered as f64 * SUSTAINED_SHARE;
            self.acked_per_s >= want && self.delivered_per_s >= want
        })
    }
}

/// Every measured sweep point of run `r`, in results.json order.
pub fn points(r: &RunResults) -> Vec<Point> {
    let mut groups: Vec<&str> = Vec::new();
    r.variants
        .iter()
        .filter_map(|v| {
            let p = v.point_of.as_ref()?;
            let rep = v.report.as_ref()?;
            let group = match groups.iter().position(|g| *g == p.of) {
                Some(g) => g,
                None => {
                    groups.push(&p.of);
                    groups.len() - 1
                }
            };
            let (t, l) = (&rep.throughput, &rep.latency);
            // At a fixed rate, the rates while it sent (as `rate = "max"` judges its probes).
            let (acked_per_s, delivered_per_s) =
                match v.workload.as_ref().and_then(|w| w.sending_s()) {
                    Some(sent_s) => rep.rates_while_sending(sent_s),
                    None => (t.acked_msgs_per_s, t.delivered_msgs_per_s),
                };
            Some(Point {
                variant: p.of.clone(),
                group,
                name: v.name.clone(),
                axis: p.axis,
                value: p.value,
                offered: v.workload.as_ref().map_or(0, |w| w.rate),
                acked_per_s,
                delivered_per_s,
                delivered_mb_per_s: t.delivered_mb_per_s,
                p50_us: l.end_to_end.p50_us,
                p99_us: l.end_to_end.p99_us,
                p999_us: l.end_to_end.p999_us,
                publish_p99_us: l.publish.p99_us,
                lost: rep.counts.lost,
            })
        })
        .collect()
}

/// The knee of a swept variant: its highest offered rate that every run at it sustained.
pub fn knee<'a>(points: &'a [Point], variant: &str) -> Option<&'a Point> {
    let of: Vec<&Point> = points.iter().filter(|p| p.variant == variant).collect();
    of.iter()
        .filter(|p| p.sustained() == Some(true))
        .filter(|p| {
            of.iter()
                .filter(|q| q.value == p.value)
                .all(|q| q.sustained() == Some(true))
        })
        .max_by_key(|p| p.offered)
        .copied()
}

/// The Sweep table: a row per point (per run of it), the knee marked; None without sweeps.
pub fn table(r: &RunResults) -> Option<Table> {
    let points = points(r);
    if points.is_empty() {
        return None;
    }
    let mut t = Table::new(
        "Sweep",
        &[
            ("variant", Left),
            ("point", Left),
            ("offered msg/s", Right),
            ("acked msg/s", Right),
            ("delivered msg/s", Right),
            ("delivered MB/s", Right),
            ("e2e p50 (µs)", Right),
            ("e2e p99 (µs)", Right),
            ("e2e p99.9 (µs)", Right),
            ("publish p99 (µs)", Right),
            ("lost", Right),
            ("kept up", Left),
        ],
    );
    for p in &points {
        let knee = knee(&points, &p.variant).is_some_and(|k| k.name == p.name);
        let kept = match (p.sustained(), knee) {
            (Some(true), true) => "✓ highest sustained",
            (Some(true), false) => "✓",
            (Some(false), _) => "✗",
            (None, _) => "",
        };
        let offered = match p.offered {
            0 => "max".to_owned(),
            o => o.to_string(),
        };
        let mut row: Vec<Text> = vec![
            p.name.as_str().into(),
            format!("{} = {}", p.axis.field(), p.value).into(),
            offered.into(),
        ];
        row.extend(
            [
                p.acked_per_s,
                p.delivered_per_s,
                p.delivered_mb_per_s,
                p.p50_us,
                p.p99_us,
                p.p999_us,
                p.publish_p99_us,
            ]
            .map(|x| Text::plain(n(x))),
        );
        row.extend([Text::plain(p.lost.to_string()), kept.into()]);
        t.rows.push(row);
    }
    Some(t)
}

/// The "Maximum sustainable rate" table: per `rate = "max"` variant, the rate it found, its
/// MB/s and p99 there, the probes and why the search stopped; None without searches.
pub fn search_table(r: &RunResults) -> Option<Table> {
    if r.searches.is_empty() {
        return None;
    }
    let mut t = Table::new(
        "Maximum sustainable rate",
        &[
            ("variant", Left),
            ("max msg/s", Right),
            ("MB/s", Right),
            ("e2e p99 there (µs)", Right),
            ("probes (✓ kept up)", Left),
            ("decision", Left),
            ("at fractions of it (✓ kept up)", Left),
            ("search overhead", Right),
        ],
    );
    for s in &r.searches {
        let at_max = s
            .probes
            .iter()
            .find(|p| p.kept_up && Some(p.rate) == s.max_rate)
            .and_then(|p| r.variants.iter().find(|v| v.name == p.name))
            .and_then(|v| v.report.as_ref());
        let probes: Vec<String> = s
            .probes
            .iter()
            .map(|p| format!("{}{}", p.rate, if p.kept_up { " ✓" } else { " ✗" }))
            .collect();
        let overhead = s.overhead().map_or(String::new(), |o| {
            format!(
                "{:.0} % (+ broker start {:.0} s)",
                o * 100.0,
                s.broker_start_s
            )
        });
        t.rows.push(vec![
            s.variant.as_str().into(),
            s.max_rate.map_or("none".into(), |m| m.to_string()).into(),
            s.max_mb_per_s.map_or(String::new(), n).into(),
            at_max
                .map_or(String::new(), |r| n(r.latency.end_to_end.p99_us))
                .into(),
            probes.join(", ").into(),
            Text::plain(s.decision.clone()),
            fractions(s).into(),
            overhead.into(),
        ]);
    }
    Some(t)
}

/// The fraction points of a search, judged as its probes: `50 % ✓, 120 % ✗ (why)`.
fn fractions(s: &mq_results::SearchResult) -> String {
    let Some(max) = s.max_rate.filter(|&m| m > 0) else {
        return String::new();
    };
    let shown: Vec<String> = s
        .points
        .iter()
        .map(|p| {
            let pct = (p.rate as f64 / max as f64 * 100.0).round();
            match p.kept_up {
                true => format!("{pct} % ✓"),
                false => format!("{pct} % ✗ ({})", p.why),
            }
        })
        .collect();
    shown.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(variant: &str, name: &str, offered: u64, achieved: f64) -> Point {
        Point {
            variant: variant.into(),
            group: 0,
            name: name.into(),
            axis: SweepAxis::Rate,
            value: offered,
            offered,
            acked_per_s: achieved,
            delivered_per_s: achieved,
            delivered_mb_per_s: 0.0,
            p50_us: 1.0,
            p99_us: 2.0,
            p999_us: 3.0,
            publish_p99_us: 1.0,
            lost: 0,
        }
    }

    #[test]
    fn the_knee_is_the_highest_rate_every_run_sustained() {
        let ps = vec![
            point("a", "a.rate-1000", 1000, 1000.0),
            point("a", "a.rate-2000.run-1", 2000, 1990.0),
            point("a", "a.rate-2000.run-2", 2000, 1800.0),
            point("a", "a.rate-3000", 3000, 2200.0),
            point("b", "b.rate-5000", 5000, 4800.0),
        ];
        assert_eq!(knee(&ps, "a").map(|p| p.name.as_str()), Some("a.rate-1000"));
        assert_eq!(knee(&ps, "b").map(|p| p.name.as_str()), Some("b.rate-5000"));
        assert_eq!(ps[2].sustained(), Some(false));
        let unbounded = point("c", "c.size-100", 0, 9.0);
        assert_eq!(unbounded.sustained(), None);
        assert!(knee(&[unbounded], "c").is_none());
    }

    #[test]
    fn fraction_points_show_their_share_of_the_maximum_and_why_one_did_not_keep_up() {
        let judged = |rate, kept_up, why: &str| mq_results::ProbeRecord {
            name: format!("v.at-{rate}"),
            rate,
            kept_up,
            why: why.into(),
        };
        let mut s = mq_results::SearchResult {
            variant: "v".into(),
            max_rate: Some(10_000),
            max_mb_per_s: None,
            probes: Vec::new(),
            points: vec![
                judged(5000, true, "fine"),
                judged(12_000, false, "backlog kept growing"),
            ],
            decision: String::new(),
            measuring_s: 1.0,
            total_s: 1.0,
            broker_start_s: 0.0,
        };
        assert_eq!(fractions(&s), "50 % ✓, 120 % ✗ (backlog kept growing)");
        s.max_rate = None;
        assert_eq!(fractions(&s), "");
    }
}
