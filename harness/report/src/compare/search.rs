//! Comparing `rate = "max"` searches: the highest sustainable rate each side found, per
//! variant. A probe's figures are not compared (its rate depends on the probes before it);
//! the rate found is, against the throughput threshold or the search's own 10 % resolution,
//! whichever is wider.

use super::{Row, Side, Thresholds, Verdict};
use crate::stats::median;

/// The default search precision: two searches of one system agree to about this.
const RESOLUTION_PCT: f64 = 10.0;

/// Whether `name` is a probe of a search on either side.
pub(super) fn is_probe(base: &Side, new: &Side, name: &str) -> bool {
    base.reps.iter().chain(&new.reps).any(|l| {
        l.results
            .searches
            .iter()
            .any(|s| s.probes.iter().any(|p| p.name == name))
    })
}

/// The median over repetitions of the rate each search of `variant` found (None: no search
/// found one).
fn found(side: &Side, variant: &str) -> Option<f64> {
    let rates: Vec<f64> = side
        .reps
        .iter()
        .flat_map(|l| &l.results.searches)
        .filter(|s| s.variant == variant)
        .filter_map(|s| s.max_rate.map(|r| r as f64))
        .collect();
    (!rates.is_empty()).then(|| median(&rates))
}

/// A "max sustainable msgs/s" row per variant BASE searched.
pub(super) fn rows(base: &Side, new: &Side, t: &Thresholds) -> Vec<Row> {
    let mut variants: Vec<&str> = Vec::new();
    for s in base.reps.iter().flat_map(|l| &l.results.searches) {
        if !variants.contains(&s.variant.as_str()) {
            variants.push(&s.variant);
        }
    }
    let limit = t.max_throughput_drop.max(RESOLUTION_PCT);
    variants
        .into_iter()
        .map(|v| {
            let (b, n) = (found(base, v), found(new, v));
            let change_pct = match (b, n) {
                (Some(b), Some(n)) if b > 0.0 => Some((n - b) / b * 100.0),
                _ => None,
            };
            let verdict = match (b, n, change_pct) {
                (Some(_), None, _) => Verdict::Regression,
                (_, _, Some(c)) if c < -limit => Verdict::Regression,
                (None, _, _) => Verdict::Inconclusive,
                _ => Verdict::Ok,
            };
            Row {
                variant: v.to_owned(),
                metric: "max sustainable msgs/s",
                base: b,
                new: n,
                change_pct,
                limit: format!("−{limit:.0} %"),
                evidence: "the rate each search found (median over repetitions)".into(),
                verdict,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::tests::{run, variant};
    use crate::Loaded;
    use mq_results::{ProbeRecord, SearchResult};

    fn side(max: Option<u64>) -> Side {
        let mut r = run(vec![
            variant("log.probe-1", 0, 0),
            variant("log.at-50pct", 0, 0),
        ]);
        r.searches = vec![SearchResult {
            variant: "log".into(),
            max_rate: max,
            max_mb_per_s: None,
            probes: vec![ProbeRecord {
                name: "log.probe-1".into(),
                rate: 1000,
                kept_up: true,
                why: String::new(),
            }],
            points: Vec::new(),
            decision: String::new(),
            measuring_s: 5.0,
            total_s: 6.0,
            broker_start_s: 0.0,
        }];
        Side {
            path: "x".into(),
            reps: vec![Loaded {
                results: r,
                scenario_text: None,
            }],
        }
    }

    #[test]
    fn two_searches_compare_by_the_rate_found_and_skip_the_probes() {
        let t = Thresholds::default();
        let c = super::super::compare(&side(Some(100_000)), &side(Some(85_000)), &t);
        let names: Vec<(&str, &str)> = c
            .rows
            .iter()
            .map(|r| (r.variant.as_str(), r.metric))
            .collect();
        assert!(!names.iter().any(|(v, _)| *v == "log.probe-1"), "{names:?}");
        assert!(names.contains(&("log.at-50pct", "lost")), "{names:?}");
        let row = c
            .rows
            .iter()
            .find(|r| r.metric == "max sustainable msgs/s")
            .unwrap();
        assert_eq!((row.base, row.new), (Some(100_000.0), Some(85_000.0)));
        assert_eq!(row.verdict, Verdict::Regression);
        assert_eq!(row.limit, "−10 %");
        let within = rows(&side(Some(100_000)), &side(Some(92_000)), &t);
        assert_eq!(within[0].verdict, Verdict::Ok);
        let none = rows(&side(Some(100_000)), &side(None), &t);
        assert_eq!(none[0].verdict, Verdict::Regression);
    }
}
