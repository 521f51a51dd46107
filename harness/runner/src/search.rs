//! `rate = "max"`: probes at rising, then bisected rates, each a full measurement of
//! `search.probe`, until the highest rate the variant sustains is pinned within `precision`;
//! then the workload at `rate_fractions` of it. The decisions ([`verdict`], [`next`]) are pure,
//! so tests replay recorded probe figures.

use std::time::{Duration, Instant};

use mq_checker::Report;
use mq_core::plan::{PointOf, SweepAxis, VariantPlan, MAX_RATE};
use mq_core::search::SearchSpec;
use mq_results::{ProbeRecord, SearchResult, VariantResult, VariantStatus};

use crate::variant::VariantRun;

/// A probe keeps up when it acked and delivered at least this share of its offered rate.
pub const KEPT_UP_SHARE: f64 = 0.95;

/// What a probe found, as [`next`] weighs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub rate: u64,
    pub kept_up: bool,
}

/// The search's next step.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    Probe(u64),
    Done { max: Option<u64>, why: String },
}

/// Whether a probe offered `rate` msgs/s kept up: acked and delivered ≥ 95 % of it, a backlog
/// that did not keep growing while it sent, and end-to-end p99 within `slo`. Err says why not.
pub fn verdict(
    rate: u64,
    sent_s: f64,
    r: &Report,
    slo: Option<Duration>,
) -> Result<String, String> {
    let (acked, delivered) = r.rates_while_sending(sent_s);
    let want = rate as f64 * KEPT_UP_SHARE;
    if acked < want || delivered < want {
        return Err(format!(
            "achieved {acked:.0} acked / {delivered:.0} delivered msg/s of {rate} offered (< {:.0} %)",
            KEPT_UP_SHARE * 100.0
        ));
    }
    if let Some(grew) = backlog_growth(rate, sent_s, &r.series.backlog, r.series.bin_s) {
        return Err(format!(
            "backlog kept growing while it sent (+{grew:.0} messages)"
        ));
    }
    let p99 = r.latency.end_to_end.p99_us;
    if let Some(slo) = slo {
        if p99 > slo.as_secs_f64() * 1e6 {
            return Err(format!("end-to-end p99 {p99:.0} µs > slo_p99 {slo:?}"));
        }
    }
    Ok(format!(
        "{delivered:.0} msg/s delivered, end-to-end p99 {p99:.0} µs"
    ))
}

/// The backlog's growth over the sending period when it kept growing: the mean of the second
/// half above the first half's by 50 % and by more than 50 ms of the offered rate (100 messages
/// at least); the first 20 % (start-up) is left out. None when it stayed bounded.
fn backlog_growth(rate: u64, sent_s: f64, backlog: &[i64], bin_s: f64) -> Option<f64> {
    if bin_s <= 0.0 {
        return None;
    }
    let end = ((sent_s / bin_s) as usize).min(backlog.len());
    let start = end / 5;
    let bins = &backlog[start..end];
    if bins.len() < 4 {
        return None;
    }
    let mean = |s: &[i64]| s.iter().map(|&b| b as f64).sum::<f64>() / s.len() as f64;
    let (a, b) = bins.split_at(bins.len() / 2);
    let (a, b) = (mean(a), mean(b));
    let slack = (rate as f64 * 0.05).max(100.0);
    (b > a * 1.5 && b - a > slack).then_some(b - a)
}

/// The next rate to probe, or the end: ramp ×4 from `start_rate` while probes keep up (÷4 while
/// they do not), then bisect between the highest that kept up and the lowest above it that did
/// not, until they are within `precision` or `max_probes` ran. With `confirm`, the upper bound
/// is probed again before the end: failing twice makes it the bound, keeping up the second time
/// makes it the new highest sustained rate and the search goes on above it (as it does from a
/// point above an earlier maximum that kept up, see [`resume`]).
pub fn next(spec: &SearchSpec, probes: &[Probe]) -> Next {
    let Some(last) = probes.last() else {
        return Next::Probe(spec.start_rate.clamp(1, MAX_RATE));
    };
    let lo = probes.iter().filter(|p| p.kept_up).map(|p| p.rate).max();
    // A failure below a success is noise; the bound is the lowest failure above it.
    let hi = probes
        .iter()
        .filter(|p| !p.kept_up && lo.is_none_or(|lo| p.rate > lo))
        .map(|p| p.rate)
        .min();
    let done = |max: Option<u64>, why: String| Next::Done { max, why };
    if probes.len() >= spec.max_probes as usize {
        let why = format!("{} probes ran (max_probes)", probes.len());
        return done(lo, why);
    }
    match (lo, hi) {
        (Some(lo), None) if lo >= MAX_RATE => done(Some(lo), "kept up at the rate limit".into()),
        (Some(lo), None) => Next::Probe((lo.saturating_mul(4)).min(MAX_RATE)),
        (None, Some(hi)) if hi <= 1 => done(None, "not even 1 msg/s kept up".into()),
        (None, Some(hi)) => Next::Probe((hi / 4).max(1)),
        (Some(lo), Some(hi)) => {
            if (hi - lo) as f64 > spec.precision * lo as f64 && hi - lo > 1 {
                return Next::Probe(lo + (hi - lo) / 2);
            }
            let failed = probes.iter().filter(|p| p.rate == hi && !p.kept_up).count();
            if spec.confirm && failed < 2 {
                return Next::Probe(hi);
            }
            let twice = if spec.confirm { " (twice)" } else { "" };
            let why = format!(
                "{lo} msg/s kept up and {hi} did not{twice}: within precision {}",
                spec.precision
            );
            done(Some(lo), why)
        }
        (None, None) => done(None, format!("probe at {} gave no verdict", last.rate)),
    }
}

/// After a search settled on `max`: the points above it (fractions over 1) are its check. The
/// highest of them that kept up shows the maximum was too low (a system with two regimes, such
/// as a SysV queue that once full wakes a side for every message, fails a probe that fell
/// behind at its start and sustains more when it never does): it becomes a probe that kept up
/// and the search goes on, unless `probes_left` is 0. None: the maximum stands.
pub fn resume(max: u64, over: &[ProbeRecord], probes_left: usize) -> Option<ProbeRecord> {
    let p = over
        .iter()
        .filter(|p| p.kept_up && p.rate > max)
        .max_by_key(|p| p.rate)?;
    (probes_left > 0).then(|| ProbeRecord {
        name: p.name.clone(),
        rate: p.rate,
        kept_up: true,
        why: format!(
            "{}; above the maximum {max} msg/s: the search goes on",
            p.why
        ),
    })
}

/// The plan of probe `i` at `rate`: the variant's, sending for `search.probe`.
fn probe_plan(plan: &VariantPlan, search: &SearchSpec, i: usize, rate: u64) -> VariantPlan {
    let mut p = plan.clone();
    p.name = format!("{}.probe-{i}", plan.name);
    p.workload.rate = rate;
    p.workload.messages = None;
    p.workload.duration = Some(search.probe);
    p.search = None;
    p.rate_fractions = Vec::new();
    p
}

/// The plan at `fraction` of the rate found: the variant's own workload, at that rate. `attempt`:
/// the how-manieth maximum the search settled on (`NAME.at-50pct`, then `NAME.at-50pct-2`, …).
fn fraction_plan(plan: &VariantPlan, max: u64, fraction: f64, attempt: usize) -> VariantPlan {
    let rate = ((max as f64 * fraction).round() as u64).clamp(1, MAX_RATE);
    let mut p = plan.clone();
    p.name = format!("{}.at-{}pct", plan.name, (fraction * 100.0).round());
    if attempt > 1 {
        p.name = format!("{}-{attempt}", p.name);
    }
    p.workload.rate = rate;
    p.search = None;
    p.rate_fractions = Vec::new();
    p.point_of = Some(PointOf {
        of: plan.name.clone(),
        axis: SweepAxis::Rate,
        value: rate,
    });
    p
}

/// Searches `ctx.plan`'s highest sustainable rate, then runs its fractions; `record` keeps
/// every probe and point as it ends (results.json is rewritten each time). When a point above
/// the maximum keeps up, the search goes on above it ([`resume`]) and the fractions run again.
pub(crate) fn run(
    ctx: &VariantRun<'_>,
    search: &SearchSpec,
    record: &mut dyn FnMut(VariantResult) -> anyhow::Result<()>,
) -> anyhow::Result<SearchResult> {
    let t0 = Instant::now();
    let mut s = Searching {
        probes: Vec::new(),
        records: Vec::new(),
        time: Rounds::default(),
        // One broker for every probe and point where the backend can
        // ([`mq_core::Broker::next_round`]): starting a broker per probe would be most of the
        // search's time.
        broker: None,
    };
    // The fraction points at the maximum that stands (none while the search goes on), and how
    // many maxima it has settled on.
    let (mut points, mut attempt) = (Vec::new(), 0);
    let (max, decision) = loop {
        let (max, why, settled) = s.probe(ctx, search, record)?;
        let Some(max) = max.filter(|_| !ctx.interrupt.is_set()) else {
            break (max, why);
        };
        attempt += 1;
        points = s.points(ctx, search, (max, attempt), record)?;
        let left = (search.max_probes as usize).saturating_sub(s.probes.len());
        match resume(max, &points, left) {
            Some(p) if settled && !ctx.interrupt.is_set() => {
                if !ctx.opts.quiet {
                    eprintln!(
                        "{}: {} msg/s kept up above the maximum {max}: the search goes on",
                        ctx.plan.name, p.rate
                    );
                }
                s.probes.push(Probe {
                    rate: p.rate,
                    kept_up: true,
                });
                s.records.push(p);
                // this maximum no longer stands: its points are not the search's
                points.clear();
            }
            _ => break (Some(max), why),
        }
    };
    Ok(SearchResult {
        variant: ctx.plan.name.clone(),
        max_rate: max,
        max_mb_per_s: (s.time.kept_mb.iter())
            .find(|(r, _)| Some(*r) == max)
            .map(|m| m.1),
        probes: s.records,
        points,
        decision,
        measuring_s: s.time.measuring_s,
        total_s: t0.elapsed().as_secs_f64(),
        broker_start_s: s.time.broker_start_s.unwrap_or(0.0),
    })
}

/// A search under way: its probes, their records, its time and its broker.
struct Searching {
    probes: Vec<Probe>,
    records: Vec<ProbeRecord>,
    time: Rounds,
    broker: Option<crate::variant::BrokerGuard>,
}

impl Searching {
    /// One round of `plan` on the search's broker, its time counted.
    fn round(&mut self, ctx: &VariantRun<'_>, plan: &VariantPlan) -> VariantResult {
        let round = VariantRun { plan, ..*ctx };
        let result = crate::run::variant_on(&round, Some(&mut self.broker));
        self.time.add(&result);
        result
    }

    /// Probes until [`next`] settles: the maximum, why, and whether it settled (false: a probe
    /// failed to run, or the run was interrupted).
    fn probe(
        &mut self,
        ctx: &VariantRun<'_>,
        search: &SearchSpec,
        record: &mut dyn FnMut(VariantResult) -> anyhow::Result<()>,
    ) -> anyhow::Result<(Option<u64>, String, bool)> {
        loop {
            let rate = match next(search, &self.probes) {
                Next::Probe(rate) => rate,
                Next::Done { max, why } => return Ok((max, why, true)),
            };
            let plan = probe_plan(ctx.plan, search, self.probes.len() + 1, rate);
            let result = self.round(ctx, &plan);
            let sent_s = search.probe.0.as_secs_f64();
            let slo = search.slo_p99.map(|d| d.0);
            let verdict = match (&result.report, result.status) {
                (Some(r), VariantStatus::Ok) => verdict(rate, sent_s, r, slo),
                (_, status) => {
                    let why = result.reason.clone().unwrap_or_default();
                    let stop = format!("probe {} at {rate} msg/s: {status:?} {why}", plan.name);
                    record(result)?;
                    return Ok((highest_kept(&self.probes), stop, false));
                }
            };
            if let (Ok(_), Some(r)) = (&verdict, &result.report) {
                (self.time.kept_mb).push((rate, r.throughput.delivered_mb_per_s));
            }
            if !ctx.opts.quiet {
                let said = verdict
                    .as_ref()
                    .map_or_else(|e| format!("✗ {e}"), |ok| format!("✓ {ok}"));
                eprintln!("{}: probe at {rate} msg/s: {said}", ctx.plan.name);
            }
            let kept_up = verdict.is_ok();
            self.records.push(ProbeRecord {
                name: plan.name.clone(),
                rate,
                kept_up,
                why: verdict.unwrap_or_else(|e| e),
            });
            self.probes.push(Probe { rate, kept_up });
            record(result)?;
            if ctx.interrupt.is_set() {
                return Ok((None, "interrupted".into(), false));
            }
        }
    }

    /// The workload at each of the plan's fractions of `max` (`attempt`: see
    /// [`fraction_plan`]), on the search's broker, each judged.
    fn points(
        &mut self,
        ctx: &VariantRun<'_>,
        search: &SearchSpec,
        (max, attempt): (u64, usize),
        record: &mut dyn FnMut(VariantResult) -> anyhow::Result<()>,
    ) -> anyhow::Result<Vec<ProbeRecord>> {
        let mut judged = Vec::new();
        for &f in &ctx.plan.rate_fractions {
            if ctx.interrupt.is_set() {
                break;
            }
            let plan = fraction_plan(ctx.plan, max, f, attempt);
            let result = self.round(ctx, &plan);
            let point = judge_point(&plan, &result, search);
            if let (true, Some(r)) = (point.kept_up, &result.report) {
                (self.time.kept_mb).push((point.rate, r.throughput.delivered_mb_per_s));
            }
            judged.push(point);
            record(result)?;
        }
        Ok(judged)
    }
}

/// Where a search's time went, round by round, and what the rounds that kept up delivered.
#[derive(Default)]
struct Rounds {
    /// Delivered MB/s of each probe or point that kept up, by rate.
    kept_mb: Vec<(u64, f64)>,
    /// Load in flight: each round's start to its last ack or delivery.
    measuring_s: f64,
    /// The first round's broker set-up (a managed broker's start).
    broker_start_s: Option<f64>,
}

impl Rounds {
    fn add(&mut self, r: &VariantResult) {
        self.broker_start_s.get_or_insert(r.setup_s.unwrap_or(0.0));
        self.measuring_s += r.report.as_ref().map_or(0.0, |rep| rep.throughput.seconds);
    }
}

/// The highest rate a probe kept up with.
fn highest_kept(probes: &[Probe]) -> Option<u64> {
    probes.iter().filter(|p| p.kept_up).map(|p| p.rate).max()
}

/// A fraction point judged as a probe is: whether it kept up with its rate, and why.
fn judge_point(plan: &VariantPlan, result: &VariantResult, search: &SearchSpec) -> ProbeRecord {
    let w = &plan.workload;
    let rate = w.rate;
    let sent_s = w.sending_s().unwrap_or(0.0);
    let verdict = match (&result.report, result.status) {
        (Some(r), VariantStatus::Ok) => verdict(rate, sent_s, r, search.slo_p99.map(|d| d.0)),
        (_, status) => Err(format!(
            "{status:?} {}",
            result.reason.clone().unwrap_or_default()
        )),
    };
    ProbeRecord {
        name: plan.name.clone(),
        rate,
        kept_up: verdict.is_ok(),
        why: verdict.unwrap_or_else(|e| e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays a search against a system that keeps up to `capacity` msg/s.
    fn replay(spec: &SearchSpec, capacity: u64) -> (Vec<u64>, Next) {
        let mut probes = Vec::new();
        loop {
            match next(spec, &probes) {
                Next::Probe(rate) => probes.push(Probe {
                    rate,
                    kept_up: rate <= capacity,
                }),
                done => return (probes.iter().map(|p| p.rate).collect(), done),
            }
        }
    }

    #[test]
    fn ramps_then_bisects_to_within_precision() {
        let spec = SearchSpec::default();
        let (rates, done) = replay(&spec, 50_000);
        assert_eq!(&rates[..4], [1000, 4000, 16_000, 64_000]);
        let Next::Done { max: Some(max), .. } = done else {
            panic!("{done:?}")
        };
        assert!(
            max <= 50_000 && max as f64 >= 50_000.0 / 1.1,
            "{max} {rates:?}"
        );
        assert!(rates.len() <= spec.max_probes as usize);
    }

    #[test]
    fn the_upper_bound_is_probed_twice_and_a_lucky_second_try_moves_the_search_up() {
        let spec = SearchSpec::default();
        let (rates, done) = replay(&spec, 50_000);
        // The bound failed twice: its second try is the last probe.
        let bound = rates[rates.len() - 1];
        assert!(bound > 50_000, "{rates:?}");
        assert_eq!(
            rates.iter().filter(|&&r| r == bound).count(),
            2,
            "{rates:?}"
        );
        assert!(matches!(done, Next::Done { ref why, .. } if why.contains("(twice)")));
        // The first failure at 70 000 was noise: the second try keeps up, so 70 000 is the new
        // highest sustained rate and the next bound, 76 000, gets its second try.
        let p = |rate, kept_up| Probe { rate, kept_up };
        let probes = [
            p(16_000, true),
            p(64_000, true),
            p(256_000, false),
            p(160_000, false),
            p(112_000, false),
            p(88_000, false),
            p(76_000, false),
            p(70_000, false),
            p(67_000, true),
        ];
        let spec = SearchSpec {
            max_probes: 50,
            ..spec
        };
        assert_eq!(next(&spec, &probes), Next::Probe(70_000));
        let mut again = probes.to_vec();
        again.push(p(70_000, true));
        assert_eq!(next(&spec, &again), Next::Probe(76_000));
        let without = SearchSpec {
            confirm: false,
            ..spec
        };
        assert!(matches!(
            next(&without, &probes),
            Next::Done {
                max: Some(67_000),
                ..
            }
        ));
    }

    #[test]
    fn ramps_down_when_the_first_probe_fails_and_stops_at_the_budget() {
        let spec = SearchSpec {
            max_probes: 5,
            ..SearchSpec::default()
        };
        let (rates, done) = replay(&spec, 100);
        assert_eq!(&rates[..3], [1000, 250, 62]);
        assert_eq!(rates.len(), 5);
        let Next::Done { max, why } = done else {
            panic!()
        };
        assert_eq!(why, "5 probes ran (max_probes)");
        assert!(max.is_some_and(|m| (62..=100).contains(&m)), "{max:?}");
        let (_, done) = replay(&SearchSpec::default(), 0);
        assert!(matches!(done, Next::Done { max: None, .. }), "{done:?}");
    }

    #[test]
    fn a_failure_below_a_success_is_noise_not_a_bound() {
        let spec = SearchSpec::default();
        let probes = [
            Probe {
                rate: 1000,
                kept_up: true,
            },
            Probe {
                rate: 4000,
                kept_up: true,
            },
            Probe {
                rate: 2000,
                kept_up: false,
            },
        ];
        assert_eq!(next(&spec, &probes), Next::Probe(16_000));
    }

    /// SysV 100 B, 2026-12-07 (reports/readme-latency-curve-repeat/rep-1): its bound 1 280 000
    /// failed twice, yet the point at 120 % of 1 184 000 kept up, so the search goes on there.
    #[test]
    fn a_point_above_the_maximum_that_kept_up_resumes_the_search_above_it() {
        let spec = SearchSpec {
            max_probes: 11,
            ..SearchSpec::default()
        };
        let p = |rate, kept_up| Probe { rate, kept_up };
        let mut probes = vec![
            p(128_000, true),
            p(512_000, true),
            p(2_048_000, false),
            p(1_280_000, false),
            p(896_000, true),
            p(1_088_000, true),
            p(1_184_000, true),
            p(1_280_000, false),
        ];
        let Next::Done { max: Some(max), .. } = next(&spec, &probes) else {
            panic!("{:?}", next(&spec, &probes))
        };
        assert_eq!(max, 1_184_000);
        let point = |pct: u64, kept_up| ProbeRecord {
            name: format!("sysv-100B.at-{pct}pct"),
            rate: max * pct / 100,
            kept_up,
            why: format!("{pct} %"),
        };
        let mut over = vec![point(95, true), point(120, false)];
        assert_eq!(
            resume(max, &over, 3),
            None,
            "120 % failed: the maximum stands"
        );
        over[1].kept_up = true;
        assert_eq!(resume(max, &over, 0), None, "no probes left");
        let again = resume(max, &over, 3).expect("120 % kept up");
        assert_eq!((again.rate, again.kept_up), (1_420_800, true));
        assert!(again.why.ends_with("the search goes on"), "{}", again.why);
        // Bisection between it and the lowest failure above it (the ramp's 2 048 000), as before.
        probes.push(p(again.rate, true));
        assert_eq!(next(&spec, &probes), Next::Probe(1_734_400));
        probes.push(p(1_734_400, false));
        assert_eq!(next(&spec, &probes), Next::Probe(1_577_600));
        probes.push(p(1_577_600, false));
        let Next::Done {
            max: Some(max),
            why,
        } = next(&spec, &probes)
        else {
            panic!("the budget of 11 is spent")
        };
        assert_eq!(
            (max, why.as_str()),
            (1_420_800, "11 probes ran (max_probes)")
        );
    }

    fn report(rate: f64, backlog: Vec<i64>, p99_us: f64) -> Report {
        let mut r = Report::default();
        // To the last ack: lower than the rate while sending, by the last messages' latency.
        r.throughput.acked_msgs_per_s = rate * 0.9;
        r.throughput.delivered_msgs_per_s = rate * 0.9;
        r.series.bin_s = 0.1;
        let per_bin = (rate * 0.1) as u64;
        r.series.acked = vec![per_bin; backlog.len()];
        r.series.delivered = vec![per_bin; backlog.len()];
        r.series.backlog = backlog;
        r.latency.end_to_end.p99_us = p99_us;
        r
    }

    #[test]
    fn verdicts_from_recorded_figures() {
        let steady = vec![50; 50];
        assert!(verdict(1000, 5.0, &report(1000.0, steady.clone(), 900.0), None).is_ok());
        let slow = verdict(1000, 5.0, &report(900.0, steady.clone(), 900.0), None);
        assert!(slow.unwrap_err().starts_with("achieved 900 acked"));
        // 3 % short of the rate: the backlog grows by 30 msgs per 0.1 s bin.
        let growing: Vec<i64> = (0..50).map(|i| i * 300).collect();
        let e = verdict(10_000, 5.0, &report(9700.0, growing, 900.0), None).unwrap_err();
        assert!(e.starts_with("backlog kept growing"), "{e}");
        let slo = Some(Duration::from_micros(500));
        let e = verdict(1000, 5.0, &report(1000.0, steady, 900.0), slo).unwrap_err();
        assert!(e.contains("p99 900 µs > slo_p99"), "{e}");
    }
}
