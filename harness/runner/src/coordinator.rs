//! The coordinator: for each variant, sets up the broker, starts consumer then producer worker
//! processes, watches their progress, ends the load and the drain, tears down, and checks the
//! histories. results.json is rewritten after every variant, so a crash keeps what was gathered;
//! the summary, charts and page are the report's, built from it afterwards.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, Context};
use mq_core::clock::now_ns;
use mq_core::plan::FaultAction;
use mq_core::plan::VariantPlan;
use mq_core::scenario::Scenario;
use mq_core::spec::{Control, RoleSpec};
use mq_core::{run_tag, Backend, Broker, Registry, WorkerCtx};

use crate::drain::{self, Decision, EndFacts, Tick};
use crate::interrupt::Interrupt;
use mq_results::{
    EndedBy, Machine, RunDir, RunResults, ScenarioInfo, VariantDir, VariantResult, VariantStatus,
    SCHEMA,
};

use crate::nemesis::{Nemesis, Targets};
use crate::progress::Progress;
use crate::workers::{consumer_partitions, Launch, Pool, Role, Worker};

/// How `bench run` was asked to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where run folders go (`reports/`).
    pub reports_dir: PathBuf,
    /// Run exactly this folder instead of `reports_dir/<time>-<scenario>`.
    pub out: Option<PathBuf>,
    /// Run only these variants (all when empty).
    pub only: Vec<String>,
    pub quiet: bool,
    /// The executable to start workers with (`bench`).
    pub worker_exe: PathBuf,
}

impl RunOptions {
    /// The folder a run started at `at` writes into: `--out`, or `<reports>/<time>-<scenario>`.
    pub fn run_dir(&self, scenario: &Scenario, at: SystemTime) -> RunDir {
        match &self.out {
            Some(d) => RunDir::new(d),
            None => RunDir::stamped(&self.reports_dir, at, &scenario.name),
        }
    }
}

/// Where a run wrote, and what it found.
pub struct RunOutcome {
    pub dir: RunDir,
    pub results: RunResults,
}

/// How long workers may take to connect and say they are ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the broker's own depth is sampled.
const DEPTH_EVERY: Duration = Duration::from_millis(500);
/// The loop's longest sleep; it wakes earlier for a fault that is due.
const TICK: Duration = Duration::from_millis(100);

fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

/// Runs every (selected) variant of `scenario` and writes the run folder.
pub fn run(
    scenario: &Scenario,
    registry: &Registry,
    opts: &RunOptions,
    interrupt: &Interrupt,
) -> anyhow::Result<RunOutcome> {
    let now = SystemTime::now();
    let started_at = timestamp(now);
    let dir = opts.run_dir(scenario, now);
    std::fs::create_dir_all(dir.path())
        .with_context(|| format!("creating run folder {}", dir.path().display()))?;
    std::fs::write(dir.scenario(), &scenario.text)
        .with_context(|| format!("writing {}", dir.scenario().display()))?;
    let run_id = (now_ns() as u32) ^ std::process::id().rotate_left(16);

    let mut results = RunResults {
        schema: SCHEMA.to_owned(),
        bench_version: env!("CARGO_PKG_VERSION").to_owned(),
        scenario: ScenarioInfo {
            name: scenario.name.clone(),
            description: scenario.description.clone(),
            file: scenario.path.display().to_string(),
            workload: scenario.workload.clone(),
        },
        run_id,
        started_at,
        finished_at: None,
        partial: true,
        machine: Machine::this(),
        variants: Vec::new(),
    };
    results
        .write(&dir)
        .with_context(|| format!("writing results to {}", dir.path().display()))?;

    let selected = scenario
        .variants
        .iter()
        .filter(|v| opts.only.is_empty() || opts.only.contains(&v.name));
    for plan in selected {
        let backend = registry
            .iter()
            .find(|b| b.info().name == plan.backend)
            .ok_or_else(|| anyhow!("backend {:?} is not registered", plan.backend))?;
        let result = if interrupt.is_set() {
            empty_result(
                plan,
                VariantStatus::NotRun,
                Some("the run was interrupted before this variant".into()),
                None,
            )
        } else if let Err(u) = backend.available(plan) {
            eprintln!(
                "{}: skipped: {}{}",
                plan.name,
                u.reason,
                u.fix
                    .as_deref()
                    .map(|f| format!(" (fix: {f})"))
                    .unwrap_or_default()
            );
            empty_result(plan, VariantStatus::Skipped, Some(u.reason), u.fix)
        } else {
            let ctx = VariantRun {
                plan,
                backend: backend.as_ref(),
                dir: &dir,
                run_id,
                opts,
                interrupt,
            };
            ctx.run()
        };
        results.variants.push(result);
        results
            .write(&dir)
            .with_context(|| format!("writing results to {}", dir.path().display()))?;
    }
    results.partial = interrupt.is_set();
    results.finished_at = Some(timestamp(SystemTime::now()));
    results
        .write(&dir)
        .with_context(|| format!("writing results to {}", dir.path().display()))?;
    Ok(RunOutcome { dir, results })
}

fn empty_result(
    plan: &VariantPlan,
    status: VariantStatus,
    reason: Option<String>,
    fix: Option<String>,
) -> VariantResult {
    VariantResult {
        name: plan.name.clone(),
        backend: plan.backend.clone(),
        delivery: plan.delivery,
        options: plan.options.clone(),
        workload: Some(plan.workload.clone()),
        status,
        reason,
        fix,
        ended_by: None,
        versions: Vec::new(),
        workers: Vec::new(),
        history_dir: None,
        faults: Vec::new(),
        contract: Some(plan.contract),
        contract_kept: None,
        contract_note: None,
        report: None,
    }
}

struct VariantRun<'a> {
    plan: &'a VariantPlan,
    backend: &'a dyn Backend,
    dir: &'a RunDir,
    run_id: u32,
    opts: &'a RunOptions,
    interrupt: &'a Interrupt,
}

/// Tears the broker down however the variant ends.
struct BrokerGuard(Box<dyn Broker>);
impl Drop for BrokerGuard {
    fn drop(&mut self) {
        if let Err(e) = self.0.teardown() {
            eprintln!("warning: teardown failed: {e}");
        }
    }
}

impl VariantRun<'_> {
    fn run(&self) -> VariantResult {
        let plan = self.plan;
        let vdir = self.dir.variant(&plan.name);
        let mut result = empty_result(plan, VariantStatus::Ok, None, None);
        result.history_dir = Some(vdir.rel().to_owned());
        if let Err(e) = std::fs::create_dir_all(vdir.path()) {
            result.status = VariantStatus::Failed;
            result.reason = Some(format!("creating {}: {e}", vdir.path().display()));
            return result;
        }
        let broker = match self
            .backend
            .broker(plan, vdir.path(), &run_tag(self.dir.path()))
        {
            Ok(b) => b,
            Err(e) => {
                result.status = VariantStatus::Failed;
                result.reason = Some(e.to_string());
                return result;
            }
        };
        let mut broker = BrokerGuard(broker);
        let mut pool = Pool::default();
        let ended = self.drive(&mut broker, &mut pool, &vdir, &mut result);
        // Workers first (they hold connections), then the broker.
        drop(pool);
        result.versions = broker.0.versions();
        if let Err(e) = broker.0.teardown() {
            result.reason.get_or_insert(format!("teardown: {e}"));
        }
        drop(broker);
        match ended {
            Ok(by) => {
                result.ended_by = Some(by);
                if by == EndedBy::Interrupted {
                    result.status = VariantStatus::Interrupted;
                }
            }
            Err(e) => {
                result.status = VariantStatus::Failed;
                result.reason = Some(format!("{e:#}"));
            }
        }
        self.check(&vdir, &mut result);
        result
    }

    /// What the checker reads for this variant; None before the load started.
    fn checker_input(&self, vdir: &VariantDir) -> Option<mq_checker::Input> {
        let w = &self.plan.workload;
        let start_ns = vdir.read_start_ns()?;
        Some(mq_checker::Input {
            producer_files: vdir.histories(Role::Producer.as_str()),
            consumer_files: vdir.histories(Role::Consumer.as_str()),
            depth_file: Some(vdir.broker_depth()),
            start_ns,
            warmup_ns: w.warmup.0.as_nanos() as u64,
            message_size: w.message_size,
            producers: w.producers,
            keys: w.keys(),
        })
    }

    fn check(&self, vdir: &VariantDir, result: &mut VariantResult) {
        // The load never started: nothing to check.
        let Some(input) = self.checker_input(vdir) else {
            return;
        };
        match mq_checker::check(&input) {
            Ok(report) => {
                let c = &report.counts;
                let broker_faulted = result.faults.iter().any(|f| {
                    f.ok && matches!(f.action, FaultAction::KillBroker | FaultAction::RemoveQueue)
                });
                let kept =
                    self.plan
                        .contract
                        .kept(c.lost, c.duplicated, c.unexpected, broker_faulted);
                result.contract_kept = Some(kept.is_ok());
                result.contract_note = kept.err();
                result.report = Some(report);
            }
            Err(e) => {
                result.status = VariantStatus::Failed;
                result
                    .reason
                    .get_or_insert(format!("checking the histories: {e}"));
            }
        }
    }

    /// Whether the histories show every acked message delivered.
    fn all_delivered(&self, vdir: &VariantDir) -> bool {
        self.checker_input(vdir)
            .and_then(|input| mq_checker::check(&input).ok())
            .is_some_and(|r| r.counts.lost == 0)
    }

    /// How worker `index` of `role` is started.
    fn launch<'b>(
        &'b self,
        role: Role,
        index: u16,
        endpoint: &serde_json::Value,
        vdir: &'b VariantDir,
    ) -> Launch<'b> {
        let w = &self.plan.workload;
        let (role_spec, partitions) = match role {
            Role::Producer => (
                RoleSpec::Producer {
                    messages: w.messages_for(index as u32),
                    duration_ns: w.duration.map(|d| d.0.as_nanos() as u64),
                    rate: w.rate_per_producer(),
                    ack_timeout_ns: w.ack_timeout.0.as_nanos() as u64,
                },
                (0..w.partitions).map(mq_core::Partition).collect(),
            ),
            Role::Consumer => (
                RoleSpec::Consumer,
                consumer_partitions(w.partitions, w.consumers, index),
            ),
        };
        Launch {
            exe: &self.opts.worker_exe,
            variant: &self.plan.name,
            ctx: WorkerCtx {
                plan: self.plan.clone(),
                endpoint: endpoint.clone(),
                index,
                partitions,
                run_id: self.run_id,
            },
            role_spec,
            vdir,
        }
    }

    /// Reports a worker that ended badly, as it happens.
    fn on_exit(&self) -> impl FnMut(&Worker) + '_ {
        |w: &Worker| {
            if w.exited.as_deref() != Some("ok") {
                let why = w
                    .error
                    .clone()
                    .unwrap_or_else(|| w.exited.clone().unwrap_or_default());
                eprintln!("{}: {} ended: {why}", self.plan.name, w.name());
            }
        }
    }

    /// Starts the consumers, then the producers; the load's start time, or None if interrupted.
    fn start_workers(
        &self,
        pool: &mut Pool,
        endpoint: &serde_json::Value,
        vdir: &VariantDir,
    ) -> anyhow::Result<Option<u64>> {
        let w = &self.plan.workload;
        let interrupted = || self.interrupt.is_set();
        let mut on_exit = self.on_exit();
        for (role, n) in [(Role::Consumer, w.consumers), (Role::Producer, w.producers)] {
            let first = pool.workers.len();
            for i in 0..n as u16 {
                pool.spawn(role, i, 0, &self.launch(role, i, endpoint, vdir))?;
            }
            let range = first..pool.workers.len();
            if !pool.await_ready(range, READY_TIMEOUT, &interrupted, &mut on_exit)? {
                return Ok(None);
            }
        }
        let start_ns = now_ns() + 10_000_000;
        std::fs::write(vdir.start_ns(), start_ns.to_string())?;
        for p in pool.of(Role::Producer) {
            p.send(Control::Go(start_ns));
        }
        Ok(Some(start_ns))
    }

    /// The variant's event loop: faults on time, depth samples, progress, and the drain.
    fn drive(
        &self,
        broker: &mut BrokerGuard,
        pool: &mut Pool,
        vdir: &VariantDir,
        result: &mut VariantResult,
    ) -> anyhow::Result<EndedBy> {
        let w = &self.plan.workload;
        let endpoint = broker.0.setup().context("setting up the broker")?;
        let Some(start_ns) = self.start_workers(pool, &endpoint, vdir)? else {
            return Ok(EndedBy::Interrupted);
        };
        let mut on_exit = self.on_exit();
        let mut respawn = |pool: &mut Pool, index: u16, generation: u32| {
            pool.spawn(
                Role::Consumer,
                index,
                generation,
                &self.launch(Role::Consumer, index, &endpoint, vdir),
            )
        };
        let mut depth_log = std::fs::File::create(vdir.broker_depth())?;
        let mut progress = Progress::start(&self.plan.name, w.messages, self.opts.quiet);
        let mut nemesis = Nemesis::new(self.plan);
        let drain_timeout = w.drain_timeout.0;
        let mut last_depth = Instant::now() - DEPTH_EVERY;
        let mut last_change = (Instant::now(), pool.totals());
        let mut drain_since: Option<Instant> = None;
        let mut next_verify = Instant::now();
        let mut facts = EndFacts {
            drain_timeout,
            ..EndFacts::default()
        };
        let ended = loop {
            let elapsed = || Duration::from_nanos(now_ns().saturating_sub(start_ns));
            let wait = nemesis.until_next(elapsed()).map_or(TICK, |d| d.min(TICK));
            pool.pump(wait, &mut on_exit);
            let t = pool.totals();
            let now = Instant::now();
            if t != last_change.1 {
                last_change = (now, t);
            }

            // Faults first: their time matters most.
            for f in nemesis.due(elapsed(), t.acked) {
                let mut on = Targets {
                    broker: broker.0.as_mut(),
                    pool,
                    respawn: &mut respawn,
                    vdir,
                    start_ns,
                };
                let ev = nemesis.apply(f, &mut on);
                eprintln!(
                    "{}: fault {} at {:.3}s: {}",
                    self.plan.name,
                    ev.label,
                    ev.t,
                    ev.error.as_deref().unwrap_or("done")
                );
                result.faults.push(ev);
                last_change.0 = Instant::now(); // a fault's own duration is not a stall
            }
            if now.duration_since(last_depth) >= DEPTH_EVERY && nemesis.broker_down_at.is_none() {
                last_depth = now;
                if let Some(d) = broker.0.depth() {
                    let _ = writeln!(
                        depth_log,
                        r#"{{"t_ns":{},"messages":{},"bytes":{}}}"#,
                        now_ns(),
                        d.messages,
                        d.bytes.map_or("null".to_owned(), |b| b.to_string())
                    );
                }
            }

            let producing = pool.any_running(Role::Producer);
            let phase = match (producing, nemesis.paused) {
                (_, true) => "consumers paused",
                (true, _) => "producing",
                _ => "draining",
            };
            progress.update(pool.consistent_totals(), phase);
            if producing {
                drain_since = None;
            }
            let since = *drain_since.get_or_insert(now);
            let tick = Tick {
                interrupted: self.interrupt.is_set(),
                producing,
                consuming: pool.any_running(Role::Consumer),
                paused: nemesis.paused,
                excused: nemesis.excuses_a_standstill(),
                timed_pending: nemesis.timed_pending(),
                consumer_restart_pending: nemesis.pending(FaultAction::RestartConsumer),
                quiet: now.duration_since(last_change.0),
                draining_for: now.duration_since(since),
                counts_drained: t.delivered >= t.acked,
                verify_allowed: now >= next_verify,
                drain_timeout,
                stalled: facts.producers_stopped_after.is_some(),
            };
            match drain::decide(&tick) {
                Decision::Continue => {}
                Decision::End(by) => break by,
                Decision::StopProducers => {
                    eprintln!(
                        "{}: no progress for {drain_timeout:?}: stopping the producers",
                        self.plan.name
                    );
                    pool.send_all(Some(Role::Producer), Control::Stop);
                    pool.wait_exit(w.ack_timeout.0 + Duration::from_secs(5), &mut on_exit);
                    // What was acked can still drain.
                    facts.producers_stopped_after = Some(drain_timeout);
                    last_change.0 = Instant::now();
                }
                Decision::Verify => {
                    let began = Instant::now();
                    if self.all_delivered(vdir) {
                        break drain::drained(tick.stalled);
                    }
                    next_verify =
                        Instant::now() + (began.elapsed() * 4).max(Duration::from_secs(1));
                }
            }
        };

        let grace = match ended {
            EndedBy::Interrupted => Duration::from_secs(3),
            _ => w.ack_timeout.0 + Duration::from_secs(5),
        };
        pool.stop(grace, &mut on_exit);
        let t = pool.totals();
        progress.finish(&format!(
            "{ended:?}: acked {}, delivered {}",
            t.acked, t.delivered
        ));
        result.workers = pool.outcomes();
        facts.broker_down_at = nemesis.broker_down_at;
        facts.dead_consumers = pool.dead(Role::Consumer);
        facts.worker_error = pool.first_error();
        result.reason = drain::reason(ended, &facts);
        Ok(ended)
    }
}
