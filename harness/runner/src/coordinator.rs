//! The coordinator: one variant's event loop. Each turn takes the workers' reports, carries out
//! the faults that are due (their time matters most), samples the broker's own depth, shows
//! progress, and acts on the end-of-load and drain rules ([`crate::drain::decide`]).

use std::fs::File;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use mq_core::backend::Processes;
use mq_core::clock::now_ns;
use mq_core::plan::FaultAction;
use mq_core::spec::{Control, Totals};
use mq_results::{EndedBy, VariantDir, VariantResult};

use crate::drain::{self, Decision, EndFacts, Tick};
use crate::nemesis::{Nemesis, Targets};
use crate::progress::Progress;
use crate::resources;
use crate::variant::{BrokerGuard, VariantRun};
use crate::workers::{Pool, Role, Worker};

/// How often the broker's own depth is sampled.
const DEPTH_EVERY: Duration = Duration::from_millis(500);
/// The loop's longest sleep; it wakes earlier for a fault that is due.
const TICK: Duration = Duration::from_millis(100);

/// What the loop keeps between turns.
struct Loop<'a> {
    nemesis: Nemesis<'a>,
    progress: Progress,
    depth_log: File,
    facts: EndFacts,
    /// The load's start (monotonic ns): fault times count from it.
    start_ns: u64,
    last_depth: Instant,
    /// How long the last depth sample took (a broker query, up to seconds on a busy broker).
    depth_took: Duration,
    /// When the counts last moved, and to what.
    last_change: (Instant, Totals),
    /// Since when the producers are done.
    drain_since: Option<Instant>,
    /// Checking the histories is spaced by its own cost.
    next_verify: Instant,
}

impl Loop<'_> {
    fn elapsed(&self) -> Duration {
        Duration::from_nanos(now_ns().saturating_sub(self.start_ns))
    }
}

impl VariantRun<'_> {
    /// The variant's event loop: faults on time, depth samples, progress, and the drain.
    pub(crate) fn drive(
        &self,
        broker: &mut BrokerGuard,
        pool: &mut Pool,
        vdir: &VariantDir,
        result: &mut VariantResult,
    ) -> anyhow::Result<EndedBy> {
        let w = &self.plan.workload;
        let setup = Instant::now();
        let endpoint = broker.0.setup().context("setting up the broker")?;
        result.setup_s = Some(setup.elapsed().as_secs_f64());
        track_broker(pool.resources.as_ref(), broker);
        let ready = Instant::now();
        let Some(start_ns) = self.start_workers(pool, &endpoint, vdir)? else {
            return Ok(EndedBy::Interrupted);
        };
        let name = &self.plan.name;
        tracing::debug!(
            "{name}: broker set-up {:?}, workers ready {:?}",
            setup.elapsed() - ready.elapsed(),
            ready.elapsed()
        );
        let mut on_exit = self.on_exit();
        let mut respawn = |pool: &mut Pool, role: Role, index: u16, generation: u32| {
            let launch = self.launch(role, index, &endpoint, vdir);
            pool.spawn(role, index, generation, &launch)
        };
        let mut l = Loop {
            nemesis: Nemesis::new(self.plan),
            progress: Progress::start(&self.plan.name, w.messages, self.opts.quiet),
            depth_log: File::create(vdir.broker_depth())?,
            facts: EndFacts {
                drain_timeout: w.drain_timeout.0,
                ..EndFacts::default()
            },
            start_ns,
            last_depth: Instant::now() - DEPTH_EVERY,
            depth_took: Duration::ZERO,
            last_change: (Instant::now(), pool.totals()),
            drain_since: None,
            next_verify: Instant::now(),
        };
        let ended = loop {
            let wait = l
                .nemesis
                .until_next(l.elapsed())
                .map_or(TICK, |d| d.min(TICK));
            pool.pump(wait, &mut on_exit);
            let (t, now) = (pool.totals(), Instant::now());
            if t != l.last_change.1 {
                l.last_change = (now, t);
            }
            let mut on = Targets {
                broker: broker.0.as_mut(),
                pool,
                respawn: &mut respawn,
                vdir,
                start_ns,
            };
            self.apply_faults(&mut l, &mut on, t.acked, result);
            if sample_depth(&mut l, broker, now) {
                track_broker(pool.resources.as_ref(), broker);
            }
            let tick = self.tick(&mut l, pool, now, t);
            match drain::decide(&tick) {
                Decision::Continue => {}
                Decision::End(by) => break by,
                Decision::StopProducers => self.stop_producers(&mut l, pool, &mut on_exit),
                Decision::Verify => {
                    let began = Instant::now();
                    let all = self.all_delivered(vdir);
                    tracing::debug!(
                        "{name}: histories checked for the drain in {:?}",
                        began.elapsed()
                    );
                    if all {
                        break drain::drained(tick.stalled);
                    }
                    l.next_verify =
                        Instant::now() + (began.elapsed() * 4).max(Duration::from_secs(1));
                }
            }
        };
        let stop = Instant::now();
        self.finish(l, pool, ended, result, &mut on_exit);
        tracing::debug!("{name}: workers stopped in {:?}", stop.elapsed());
        Ok(ended)
    }

    /// Carries out the faults due now, recording each as it happened.
    fn apply_faults(
        &self,
        l: &mut Loop<'_>,
        on: &mut Targets<'_>,
        acked: u64,
        result: &mut VariantResult,
    ) {
        let resources = on.pool.resources.clone();
        for f in l.nemesis.due(l.elapsed(), acked) {
            // What a process killed or stopped by the fault did up to it.
            if let Some(r) = &resources {
                r.sample_now();
            }
            let ev = l.nemesis.apply(f, on);
            if let Some(r) = &resources {
                if let Processes::Pids(p) = on.broker.processes() {
                    r.brokers(&p);
                }
            }
            eprintln!(
                "{}: fault {} at {:.3}s: {}",
                self.plan.name,
                ev.label,
                ev.t,
                ev.error.as_deref().unwrap_or("done")
            );
            result.faults.push(ev);
            l.last_change.0 = Instant::now(); // a fault's own duration is not a stall
        }
    }

    /// Shows progress and gathers what the drain rules decide on.
    fn tick(&self, l: &mut Loop<'_>, pool: &Pool, now: Instant, t: Totals) -> Tick {
        let producing = pool.any_running(Role::Producer);
        let phase = match (producing, l.nemesis.paused) {
            (_, true) => "consumers paused",
            (true, _) => "producing",
            _ => "draining",
        };
        l.progress.update(pool.consistent_totals(), phase);
        if producing {
            l.drain_since = None;
        }
        let since = *l.drain_since.get_or_insert(now);
        Tick {
            interrupted: self.interrupt.is_set(),
            producing,
            consuming: pool.any_running(Role::Consumer),
            paused: l.nemesis.paused,
            excused: l.nemesis.excuses_a_standstill(),
            timed_pending: l.nemesis.timed_pending(),
            consumer_restart_pending: l.nemesis.pending(FaultAction::RestartConsumer),
            quiet: now.duration_since(l.last_change.0),
            draining_for: now.duration_since(since),
            counts_drained: t.delivered >= t.acked,
            verify_allowed: now >= l.next_verify,
            drain_timeout: l.facts.drain_timeout,
            stalled: l.facts.producers_stopped_after.is_some(),
            producer_only: self.plan.workload.consumers == 0,
        }
    }

    /// No progress for `drain_timeout` while producing: the producers stop, what was acked can
    /// still drain.
    fn stop_producers(&self, l: &mut Loop<'_>, pool: &mut Pool, on_exit: &mut dyn FnMut(&Worker)) {
        let drain_timeout = l.facts.drain_timeout;
        eprintln!(
            "{}: no progress for {drain_timeout:?}: stopping the producers",
            self.plan.name
        );
        pool.send_all(Some(Role::Producer), Control::Stop);
        let ack_timeout = self.plan.workload.ack_timeout.0;
        pool.wait_exit(ack_timeout + Duration::from_secs(5), on_exit);
        l.facts.producers_stopped_after = Some(drain_timeout);
        l.last_change.0 = Instant::now();
    }

    /// Stops the workers and records how the variant ended and why.
    fn finish(
        &self,
        mut l: Loop<'_>,
        pool: &mut Pool,
        ended: EndedBy,
        result: &mut VariantResult,
        on_exit: &mut dyn FnMut(&Worker),
    ) {
        let grace = match ended {
            EndedBy::Interrupted => Duration::from_secs(3),
            _ => self.plan.workload.ack_timeout.0 + Duration::from_secs(5),
        };
        pool.stop(grace, on_exit);
        let t = pool.totals();
        l.progress.finish(&format!(
            "{ended:?}: acked {}, delivered {}",
            t.acked, t.delivered
        ));
        result.workers = pool.outcomes();
        l.facts.broker_down_at = l.nemesis.broker_down_at;
        l.facts.dead_consumers = pool.dead(Role::Consumer);
        l.facts.worker_error = pool.first_error();
        result.reason = drain::reason(ended, &l.facts);
    }
}

/// Whether a timed fault due in `until_fault` is too close for a depth sample that may take
/// up to `bound`.
fn fault_too_close(until_fault: Option<Duration>, bound: Duration) -> bool {
    until_fault.is_some_and(|d| d < bound)
}

/// The broker's processes now, for the cost sampler to read (a restart changes them).
fn track_broker(resources: Option<&resources::Handle>, broker: &mut BrokerGuard) {
    if let (Some(r), Processes::Pids(p)) = (resources, broker.0.processes()) {
        r.brokers(&p);
    }
}

/// A line of broker-depth.jsonl every [`DEPTH_EVERY`], while the broker is up and reports one;
/// whether it was time for one. A sample waits while a timed fault is due sooner than the
/// longest the query may take (the backend's depth time-out, or twice the last sample if more):
/// the query blocks this loop, and a fault's time is the experiment's. A Kafka depth query
/// during a transactional run has hung for its whole 2 s time-out and made a kill 1 s late.
fn sample_depth(l: &mut Loop<'_>, broker: &mut BrokerGuard, now: Instant) -> bool {
    if now.duration_since(l.last_depth) < DEPTH_EVERY || l.nemesis.broker_down_at.is_some() {
        return false;
    }
    let bound = broker.0.depth_bound().max(l.depth_took * 2);
    if fault_too_close(l.nemesis.until_next(l.elapsed()), bound) {
        return false;
    }
    l.last_depth = now;
    let began = Instant::now();
    let depth = broker.0.depth();
    l.depth_took = began.elapsed();
    if let Some(d) = depth {
        let _ = writeln!(
            l.depth_log,
            r#"{{"t_ns":{},"messages":{},"bytes":{}}}"#,
            now_ns(),
            d.messages,
            d.bytes.map_or("null".to_owned(), |b| b.to_string())
        );
    }
    true
}

#[cfg(test)]
mod tests {
    use super::fault_too_close;
    use std::time::Duration;

    #[test]
    fn a_depth_sample_waits_only_for_a_fault_closer_than_its_bound() {
        let ms = Duration::from_millis;
        assert!(!fault_too_close(None, ms(2000)), "no fault to come");
        assert!(fault_too_close(Some(ms(1999)), ms(2000)));
        assert!(!fault_too_close(Some(ms(2000)), ms(2000)));
        assert!(
            !fault_too_close(Some(ms(1)), Duration::ZERO),
            "a fast broker is always sampled"
        );
        assert!(!fault_too_close(Some(Duration::ZERO), Duration::ZERO));
    }
}
