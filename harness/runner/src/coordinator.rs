//! The coordinator: for each variant, sets up the broker, starts consumer then producer worker
//! processes, watches their progress, ends the load and the drain, tears down, and checks the
//! histories. results.json is rewritten after every variant, so a crash keeps what was gathered.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, Context};
use mq_core::clock::now_ns;
use mq_core::scenario::{Scenario, VariantPlan};
use mq_core::spec::{Control, RoleSpec, Status, WorkerSpec};
use mq_core::{run_tag, Backend, Broker, Partition, Registry, WorkerCtx};

use crate::interrupt::Interrupt;
use crate::machine::Machine;
use crate::progress::{Progress, Totals};
use mq_core::fault::{FaultAction, FaultSpec};

use crate::results::{
    EndedBy, FaultEvent, RunResults, ScenarioInfo, VariantResult, VariantStatus, WorkerOutcome,
    SCHEMA,
};
use crate::summary;

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

/// Where a run wrote, and what it found.
pub struct RunOutcome {
    pub dir: PathBuf,
    pub results: RunResults,
}

/// How long workers may take to connect and say they are ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the broker's own depth is sampled.
const DEPTH_EVERY: Duration = Duration::from_millis(500);
/// Quiet time after the counts say "drained", so late duplicates are still seen.
const DRAIN_QUIET: Duration = Duration::from_millis(200);
/// Quiet time after which the histories are checked even though the counts disagree (a dead
/// consumer's last count is up to one progress report stale).
const VERIFY_QUIET: Duration = Duration::from_secs(1);

fn timestamp() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Runs every (selected) variant of `scenario` and writes the run folder.
pub fn run(
    scenario: &Scenario,
    registry: &Registry,
    opts: &RunOptions,
    interrupt: &Interrupt,
) -> anyhow::Result<RunOutcome> {
    let started_at = timestamp();
    let dir = match &opts.out {
        Some(d) => d.clone(),
        None => {
            let stamp: String = started_at
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect();
            opts.reports_dir.join(format!("{stamp}-{}", scenario.name))
        }
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating run folder {}", dir.display()))?;
    std::fs::write(dir.join("scenario.toml"), &scenario.text)
        .with_context(|| format!("writing {}", dir.display()))?;
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
        .with_context(|| format!("writing results to {}", dir.display()))?;

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
            .with_context(|| format!("writing results to {}", dir.display()))?;
    }
    results.partial = interrupt.is_set();
    results.finished_at = Some(timestamp());
    results
        .write(&dir)
        .with_context(|| format!("writing results to {}", dir.display()))?;
    std::fs::write(dir.join("summary.md"), summary::markdown(&results))
        .with_context(|| format!("writing {}", dir.join("summary.md").display()))?;
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
    dir: &'a Path,
    run_id: u32,
    opts: &'a RunOptions,
    interrupt: &'a Interrupt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Producer,
    Consumer,
}

struct Worker {
    role: Role,
    index: u16,
    child: Child,
    stdin: Option<ChildStdin>,
    ready: bool,
    totals: Totals,
    exited: Option<String>,
    error: Option<String>,
}

impl Worker {
    fn send(&mut self, c: Control) {
        if let Some(stdin) = &mut self.stdin {
            if stdin
                .write_all(c.to_line().as_bytes())
                .and_then(|_| stdin.flush())
                .is_err()
            {
                self.stdin = None; // the worker is gone; its exit is reported separately
            }
        }
    }
    fn running(&self) -> bool {
        self.exited.is_none()
    }
    fn name(&self) -> String {
        format!(
            "{} {}",
            if self.role == Role::Producer {
                "producer"
            } else {
                "consumer"
            },
            self.index
        )
    }
}

enum Event {
    Status(usize, Status),
    Eof(usize),
}

/// What the faults so far have done to the variant.
#[derive(Default)]
struct FaultState {
    paused: bool,
    broker_down: bool,
    stalled: bool,
    count: usize,
}

/// How long a variant's kill_cmd / restart_cmd may run.
const FAULT_CMD_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs an external broker's kill or restart command, output into `log`.
fn run_fault_cmd(cmd: &str, log: &Path) -> Result<(), String> {
    let out = std::fs::File::create(log).map_err(|e| format!("creating {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut child = Command::new("sh")
        .args(["-c", cmd])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("running {cmd:?}: {e}"))?;
    let deadline = Instant::now() + FAULT_CMD_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(s)) if s.success() => return Ok(()),
            Ok(Some(s)) => {
                return Err(format!("{cmd:?} failed ({s}); output in {}", log.display()))
            }
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{cmd:?} still running after {FAULT_CMD_TIMEOUT:?}: killed"
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("waiting for {cmd:?}: {e}")),
        }
    }
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

/// Kills workers still alive however the variant ends.
struct Workers(Vec<Worker>);
impl Drop for Workers {
    fn drop(&mut self) {
        for w in &mut self.0 {
            if w.exited.is_none() {
                let _ = w.child.kill();
                let _ = w.child.wait();
            }
        }
    }
}

impl VariantRun<'_> {
    fn run(&self) -> VariantResult {
        let plan = self.plan;
        let hist_rel = format!("history/{}", plan.name);
        let vdir = self.dir.join(&hist_rel);
        let mut result = empty_result(plan, VariantStatus::Ok, None, None);
        result.history_dir = Some(hist_rel);
        if let Err(e) = std::fs::create_dir_all(&vdir) {
            result.status = VariantStatus::Failed;
            result.reason = Some(format!("creating {}: {e}", vdir.display()));
            return result;
        }
        let broker = match self.backend.broker(plan, &vdir, &run_tag(self.dir)) {
            Ok(b) => b,
            Err(e) => {
                result.status = VariantStatus::Failed;
                result.reason = Some(e.to_string());
                return result;
            }
        };
        let mut broker = BrokerGuard(broker);
        let mut workers = Workers(Vec::new());
        let ended = self.drive(&mut broker, &mut workers, &vdir, &mut result);
        // Workers first (they hold connections), then the broker.
        drop(workers);
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
    fn checker_input(&self, vdir: &Path) -> Option<mq_checker::Input> {
        let w = &self.plan.workload;
        // Every history of a role, replacements (`consumer-0-r1.hist`) included, in name order.
        let histories = |prefix: &str| -> Vec<PathBuf> {
            let mut v: Vec<PathBuf> = std::fs::read_dir(vdir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    name.starts_with(&format!("{prefix}-")) && name.ends_with(".hist")
                })
                .collect();
            v.sort();
            v
        };
        let start_ns = std::fs::read_to_string(vdir.join("start_ns"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        Some(mq_checker::Input {
            producer_files: histories("producer"),
            consumer_files: histories("consumer"),
            depth_file: Some(vdir.join("broker-depth.jsonl")),
            start_ns,
            warmup_ns: w.warmup.0.as_nanos() as u64,
            message_size: w.message_size,
            producers: w.producers,
            keys: w.keys(),
        })
    }

    fn check(&self, vdir: &Path, result: &mut VariantResult) {
        // The load never started: nothing to check.
        let Some(input) = self.checker_input(vdir) else {
            return;
        };
        match mq_checker::check(&input) {
            Ok(report) => {
                let c = &report.counts;
                let kept = self.plan.contract.kept(c.lost, c.duplicated, c.unexpected);
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

    #[allow(clippy::too_many_arguments)]
    fn spawn(
        &self,
        role: Role,
        index: u16,
        generation: u32,
        endpoint: &serde_json::Value,
        vdir: &Path,
        tx: &Sender<Event>,
        slot: usize,
    ) -> anyhow::Result<Worker> {
        let w = &self.plan.workload;
        let (role_spec, partitions, prefix) = match role {
            Role::Producer => (
                RoleSpec::Producer {
                    messages: w.messages_for(index as u32),
                    duration_ns: w.duration.map(|d| d.0.as_nanos() as u64),
                    rate: w.rate_per_producer(),
                    ack_timeout_ns: w.ack_timeout.0.as_nanos() as u64,
                },
                (0..w.partitions).map(Partition).collect(),
                "producer",
            ),
            Role::Consumer => (
                RoleSpec::Consumer,
                (0..w.partitions)
                    .filter(|p| p % w.consumers == index as u32)
                    .map(Partition)
                    .collect(),
                "consumer",
            ),
        };
        // A replacement consumer (restart-consumer) writes a history of its own.
        let name = match generation {
            0 => format!("{prefix}-{index}"),
            g => format!("{prefix}-{index}-r{g}"),
        };
        let history = vdir.join(format!("{name}.hist"));
        let spec = WorkerSpec {
            role: role_spec,
            ctx: WorkerCtx {
                plan: self.plan.clone(),
                endpoint: endpoint.clone(),
                index,
                partitions,
                run_id: self.run_id,
            },
            history,
        };
        let log = std::fs::File::create(vdir.join(format!("{name}.log")))?;
        let mut cmd = Command::new(&self.opts.worker_exe);
        cmd.args([
            "worker",
            "--variant",
            &self.plan.name,
            "--role",
            prefix,
            "--index",
            &index.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                // Ctrl-C is the coordinator's to handle; a coordinator that dies takes its workers along.
                libc::signal(libc::SIGINT, libc::SIG_IGN);
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting worker {}", self.opts.worker_exe.display()))?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let mut line = serde_json::to_vec(&spec)?;
        line.push(b'\n');
        stdin
            .write_all(&line)
            .context("handing the worker its spec")?;
        let stdout = child.stdout.take().expect("piped stdout");
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(s) = serde_json::from_str::<Status>(&line) {
                    if tx.send(Event::Status(slot, s)).is_err() {
                        return;
                    }
                }
            }
            let _ = tx.send(Event::Eof(slot));
        });
        Ok(Worker {
            role,
            index,
            child,
            stdin: Some(stdin),
            ready: false,
            totals: Totals::default(),
            exited: None,
            error: None,
        })
    }

    fn handle(&self, ws: &mut [Worker], ev: Event) {
        match ev {
            Event::Status(i, s) => {
                let w = &mut ws[i];
                match s {
                    Status::Ready => w.ready = true,
                    Status::Progress {
                        sent,
                        acked,
                        failed,
                        delivered,
                    }
                    | Status::Done {
                        sent,
                        acked,
                        failed,
                        delivered,
                    } => {
                        w.totals = Totals {
                            sent,
                            acked,
                            failed,
                            delivered,
                        }
                    }
                    Status::Error { message } => w.error = Some(message),
                }
            }
            Event::Eof(i) => {
                let w = &mut ws[i];
                let status = w.child.wait();
                w.stdin = None;
                w.exited = Some(match status {
                    Ok(s) if s.success() => "ok".to_owned(),
                    Ok(s) => match (s.code(), s.signal()) {
                        (Some(c), _) => format!("exit {c}"),
                        (_, Some(sig)) => format!("signal {sig}"),
                        _ => "unknown".to_owned(),
                    },
                    Err(e) => format!("wait failed: {e}"),
                });
                if w.exited.as_deref() != Some("ok") {
                    let why = w
                        .error
                        .clone()
                        .unwrap_or_else(|| w.exited.clone().unwrap_or_default());
                    eprintln!("{}: {} ended: {why}", self.plan.name, w.name());
                }
            }
        }
    }

    /// Waits until every worker in `range` is ready (or one fails).
    fn await_ready(
        &self,
        ws: &mut [Worker],
        rx: &Receiver<Event>,
        range: std::ops::Range<usize>,
    ) -> anyhow::Result<bool> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if ws[range.clone()].iter().all(|w| w.ready) {
                return Ok(true);
            }
            if let Some(w) = ws[range.clone()].iter().find(|w| !w.running() && !w.ready) {
                return Err(anyhow!(
                    "{} failed to start: {}",
                    w.name(),
                    w.error
                        .clone()
                        .unwrap_or_else(|| w.exited.clone().unwrap_or_default())
                ));
            }
            if self.interrupt.is_set() {
                return Ok(false);
            }
            if Instant::now() > deadline {
                let waiting: Vec<_> = ws[range.clone()]
                    .iter()
                    .filter(|w| !w.ready)
                    .map(|w| w.name())
                    .collect();
                return Err(anyhow!(
                    "workers not ready after {READY_TIMEOUT:?}: {}",
                    waiting.join(", ")
                ));
            }
            if let Ok(ev) = rx.recv_timeout(Duration::from_millis(50)) {
                self.handle(ws, ev);
            }
        }
    }

    fn drive(
        &self,
        broker: &mut BrokerGuard,
        workers: &mut Workers,
        vdir: &Path,
        result: &mut VariantResult,
    ) -> anyhow::Result<EndedBy> {
        let w = &self.plan.workload;
        let endpoint = broker.0.setup().context("setting up the broker")?;
        let (tx, rx) = mpsc::channel();
        let ws = &mut workers.0;
        for i in 0..w.consumers as u16 {
            let slot = ws.len();
            ws.push(self.spawn(Role::Consumer, i, 0, &endpoint, vdir, &tx, slot)?);
        }
        let consumers = 0..ws.len();
        if !self.await_ready(ws, &rx, consumers.clone())? {
            return Ok(EndedBy::Interrupted);
        }
        for i in 0..w.producers as u16 {
            let slot = ws.len();
            ws.push(self.spawn(Role::Producer, i, 0, &endpoint, vdir, &tx, slot)?);
        }
        let producers = consumers.end..ws.len();
        if !self.await_ready(ws, &rx, producers.clone())? {
            return Ok(EndedBy::Interrupted);
        }
        let start_ns = now_ns() + 10_000_000;
        std::fs::write(vdir.join("start_ns"), start_ns.to_string())?;
        for p in &mut ws[producers.clone()] {
            p.send(Control::Go(start_ns));
        }

        let mut depth_log = std::fs::File::create(vdir.join("broker-depth.jsonl"))?;
        let mut progress = Progress::start(&self.plan.name, w.messages, self.opts.quiet);
        let drain_timeout = w.drain_timeout.0;
        let mut last_depth = Instant::now() - DEPTH_EVERY;
        let mut last_change = (Instant::now(), Totals::default());
        let mut drain_since: Option<Instant> = None;
        let mut next_verify: Option<Instant> = None;
        let mut pending: Vec<&FaultSpec> = self.plan.faults.iter().collect();
        let mut state = FaultState::default();
        let ended = loop {
            if let Ok(ev) = rx.recv_timeout(Duration::from_millis(100)) {
                self.handle(ws, ev);
            }
            while let Ok(ev) = rx.try_recv() {
                self.handle(ws, ev);
            }
            let mut t = Totals::default();
            for wk in ws.iter() {
                t.sent += wk.totals.sent;
                t.acked += wk.totals.acked;
                t.failed += wk.totals.failed;
                t.delivered += wk.totals.delivered;
            }
            let now = Instant::now();
            if t != last_change.1 {
                last_change = (now, t);
            }
            if now.duration_since(last_depth) >= DEPTH_EVERY && !state.broker_down {
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

            // The nemesis: faults that are due, in schedule order.
            let elapsed = Duration::from_nanos(now_ns().saturating_sub(start_ns));
            let due: Vec<&FaultSpec> = pending
                .iter()
                .copied()
                .filter(|f| {
                    f.at.is_some_and(|at| elapsed >= at.0)
                        || f.after_messages.is_some_and(|n| t.acked >= n)
                })
                .collect();
            pending.retain(|f| !due.iter().any(|d| std::ptr::eq(*d, *f)));
            for f in due {
                let ev = self.apply(f, broker, ws, &endpoint, vdir, &tx, &mut state, start_ns);
                eprintln!(
                    "{}: fault {} at {:.1}s: {}",
                    self.plan.name,
                    ev.label,
                    ev.t,
                    ev.error.as_deref().unwrap_or("done")
                );
                result.faults.push(ev);
                last_change.0 = Instant::now(); // a fault's own duration is not a stall
            }
            let timed_pending = pending.iter().any(|f| f.at.is_some());
            let restart_pending = |a: FaultAction| pending.iter().any(|f| f.action == a);

            let producing = ws.iter().any(|w| w.role == Role::Producer && w.running());
            let consuming = ws.iter().any(|w| w.role == Role::Consumer && w.running());
            let phase = match (producing, state.paused) {
                (_, true) => "consumers paused",
                (true, _) => "producing",
                _ => "draining",
            };
            progress.update(t, phase);

            if self.interrupt.is_set() {
                break EndedBy::Interrupted;
            }
            // Nothing moving is a stall unless the schedule made it so (paused consumers, a
            // broker down with its restart still to come).
            let excused =
                state.paused || (state.broker_down && restart_pending(FaultAction::RestartBroker));
            if producing {
                if !excused && now.duration_since(last_change.0) > drain_timeout {
                    eprintln!(
                        "{}: no progress for {drain_timeout:?}: stopping the producers",
                        self.plan.name
                    );
                    for p in ws.iter_mut().filter(|w| w.role == Role::Producer) {
                        p.send(Control::Stop);
                    }
                    result.reason = Some(format!(
                        "stalled: no message moved for {drain_timeout:?}; producers were stopped"
                    ));
                    let all = 0..ws.len();
                    self.wait_exit(ws, &rx, all, w.ack_timeout.0 + Duration::from_secs(5));
                    // What was acked can still drain.
                    drain_since = Some(Instant::now());
                    last_change.0 = Instant::now();
                    state.stalled = true;
                }
                continue;
            }
            let since = *drain_since.get_or_insert(now);
            // With every consumer gone there is nothing left to drain, once the schedule is done.
            if !consuming && !timed_pending && !restart_pending(FaultAction::RestartConsumer) {
                break EndedBy::ConsumersGone;
            }
            // The workers' counts say when the drain may be over (or go stale when a consumer
            // dies); the histories say whether it is: every acked message delivered.
            let counts_drained = t.delivered >= t.acked;
            let quiet = now.duration_since(last_change.0);
            let may_be_over = (counts_drained && quiet >= DRAIN_QUIET) || quiet >= VERIFY_QUIET;
            if !timed_pending
                && !state.paused
                && may_be_over
                && next_verify.is_none_or(|at| now >= at)
            {
                let began = Instant::now();
                let all_delivered = self
                    .checker_input(vdir)
                    .and_then(|input| mq_checker::check(&input).ok())
                    .is_some_and(|r| r.counts.lost == 0);
                if all_delivered {
                    break if state.stalled {
                        EndedBy::Stalled
                    } else {
                        EndedBy::Drained
                    };
                }
                next_verify =
                    Some(Instant::now() + (began.elapsed() * 4).max(Duration::from_secs(1)));
            }
            if !timed_pending && now.duration_since(last_change.0.max(since)) > drain_timeout {
                break if state.stalled {
                    EndedBy::Stalled
                } else {
                    EndedBy::DrainTimeout
                };
            }
        };
        if state.broker_down {
            let killed = result
                .faults
                .iter()
                .rev()
                .find(|f| f.action == FaultAction::KillBroker)
                .map_or(0.0, |f| f.t);
            result.reason.get_or_insert(format!(
                "the broker was killed at {killed:.1}s and never came back; the run ended at {ended:?}"
            ));
        }

        let stop_wait = if ended == EndedBy::Interrupted {
            Duration::from_secs(3)
        } else {
            w.ack_timeout.0 + Duration::from_secs(5)
        };
        for wk in ws.iter_mut() {
            wk.send(Control::Stop);
        }
        let all = 0..ws.len();
        self.wait_exit(ws, &rx, all.clone(), stop_wait);
        for wk in ws.iter_mut().filter(|w| w.running()) {
            let _ = wk.child.kill();
        }
        self.wait_exit(ws, &rx, all, Duration::from_secs(2));
        let mut t = Totals::default();
        for wk in ws.iter() {
            t.acked += wk.totals.acked;
            t.delivered += wk.totals.delivered;
        }
        progress.finish(&format!(
            "{ended:?}: acked {}, delivered {}",
            t.acked, t.delivered
        ));
        result.workers = ws
            .iter()
            .map(|wk| WorkerOutcome {
                role: if wk.role == Role::Producer {
                    "producer".into()
                } else {
                    "consumer".into()
                },
                index: wk.index,
                pid: wk.child.id(),
                exit: wk.exited.clone().unwrap_or_else(|| "running".into()),
                error: wk.error.clone(),
            })
            .collect();
        if result.reason.is_none() {
            result.reason = ws.iter().find_map(|wk| {
                wk.error
                    .as_ref()
                    .map(|e| format!("{} failed: {e}", wk.name()))
            });
        }
        Ok(ended)
    }

    /// Carries out one fault and says how it went.
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &self,
        f: &FaultSpec,
        broker: &mut BrokerGuard,
        ws: &mut Vec<Worker>,
        endpoint: &serde_json::Value,
        vdir: &Path,
        tx: &Sender<Event>,
        state: &mut FaultState,
        start_ns: u64,
    ) -> FaultEvent {
        let t = now_ns().saturating_sub(start_ns) as f64 / 1e9;
        let began = Instant::now();
        let target = f.target.unwrap_or(0);
        let role_of = |a: FaultAction| {
            if a == FaultAction::KillProducer {
                Role::Producer
            } else {
                Role::Consumer
            }
        };
        let outcome: Result<(), String> = match f.action {
            FaultAction::KillBroker | FaultAction::RestartBroker | FaultAction::RemoveQueue => {
                let cmd = match f.action {
                    FaultAction::KillBroker => self.plan.kill_cmd.as_deref(),
                    FaultAction::RestartBroker => self.plan.restart_cmd.as_deref(),
                    _ => None,
                };
                let r = match cmd {
                    Some(cmd) => run_fault_cmd(
                        cmd,
                        &vdir.join(format!("fault-{}-{}.log", state.count, f.action)),
                    ),
                    None => broker
                        .0
                        .fault(f.action.broker_fault().expect("broker action"))
                        .map_err(|e| e.to_string()),
                };
                if r.is_ok() {
                    match f.action {
                        FaultAction::KillBroker => state.broker_down = true,
                        FaultAction::RestartBroker => state.broker_down = false,
                        _ => {}
                    }
                }
                r
            }
            FaultAction::KillProducer | FaultAction::KillConsumer => {
                let role = role_of(f.action);
                match ws
                    .iter_mut()
                    .rev()
                    .find(|w| w.role == role && w.index == target && w.running())
                {
                    // SAFETY: plain kill(2) of our own child.
                    Some(w) => match unsafe { libc::kill(w.child.id() as i32, libc::SIGKILL) } {
                        0 => Ok(()),
                        _ => Err(std::io::Error::last_os_error().to_string()),
                    },
                    None => Err(format!(
                        "no running {} {target}",
                        if role == Role::Producer {
                            "producer"
                        } else {
                            "consumer"
                        }
                    )),
                }
            }
            FaultAction::RestartConsumer => {
                let generation = ws
                    .iter()
                    .filter(|w| w.role == Role::Consumer && w.index == target)
                    .count() as u32;
                let slot = ws.len();
                match self.spawn(Role::Consumer, target, generation, endpoint, vdir, tx, slot) {
                    Ok(mut w) => {
                        if state.paused {
                            w.send(Control::Pause);
                        }
                        ws.push(w);
                        Ok(())
                    }
                    Err(e) => Err(format!("{e:#}")),
                }
            }
            FaultAction::PauseConsumers | FaultAction::ResumeConsumers => {
                let pause = f.action == FaultAction::PauseConsumers;
                state.paused = pause;
                for w in ws.iter_mut().filter(|w| w.role == Role::Consumer) {
                    w.send(if pause {
                        Control::Pause
                    } else {
                        Control::Resume
                    });
                }
                Ok(())
            }
        };
        state.count += 1;
        FaultEvent {
            t,
            action: f.action,
            target: f.target,
            label: f.label(),
            ok: outcome.is_ok(),
            error: outcome.err(),
            took_s: began.elapsed().as_secs_f64(),
        }
    }

    fn wait_exit(
        &self,
        ws: &mut [Worker],
        rx: &Receiver<Event>,
        range: std::ops::Range<usize>,
        limit: Duration,
    ) {
        let deadline = Instant::now() + limit;
        while ws[range.clone()].iter().any(Worker::running) && Instant::now() < deadline {
            if let Ok(ev) = rx.recv_timeout(Duration::from_millis(50)) {
                self.handle(ws, ev);
            }
        }
    }
}
