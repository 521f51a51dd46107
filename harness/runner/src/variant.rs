//! One variant's life: its history folder, the broker set up and torn down however the variant
//! ends, the workers launched (consumers first, then producers on one go signal), and the
//! histories checked afterwards. The loop in between is the coordinator's.

use std::time::Duration;

use mq_core::backend::Processes;
use mq_core::clock::now_ns;
use mq_core::history::HistoryMode;
use mq_core::plan::{FaultAction, VariantPlan};
use mq_core::spec::{Control, RoleSpec};
use mq_core::{run_tag, Backend, Broker, WorkerCtx};
use mq_results::{EndedBy, RunDir, VariantDir, VariantResult, VariantStatus};

use crate::interrupt::Interrupt;
use crate::resources::{self, Sampler};
use crate::run::{empty_result, RunOptions};
use crate::workers::{consumer_partitions, Launch, Pool, Role, Worker};

/// How long workers may take to connect and say they are ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// One variant of a run, and what it runs with.
pub(crate) struct VariantRun<'a> {
    pub plan: &'a VariantPlan,
    pub backend: &'a dyn Backend,
    pub dir: &'a RunDir,
    pub run_id: u32,
    pub opts: &'a RunOptions,
    pub interrupt: &'a Interrupt,
}

/// Tears the broker down however the variant ends.
pub(crate) struct BrokerGuard(pub Box<dyn Broker>);
impl Drop for BrokerGuard {
    fn drop(&mut self) {
        if let Err(e) = self.0.teardown() {
            eprintln!("warning: teardown failed: {e}");
        }
    }
}

/// Ends a round on `broker`: kept for the search's next round when `reuse` and the broker can
/// end a round ([`Broker::end_round`]), else torn down (the error, if any, for the result).
fn release(
    mut broker: BrokerGuard,
    reuse: bool,
    name: &str,
) -> (Option<BrokerGuard>, Option<String>) {
    let began = std::time::Instant::now();
    let ended = match reuse {
        true => broker.0.end_round(),
        false => Ok(false),
    };
    let (kept, error) = match ended {
        Ok(true) => (Some(broker), None),
        Ok(false) => (
            None,
            broker.0.teardown().err().map(|e| format!("teardown: {e}")),
        ),
        Err(e) => (None, Some(format!("ending the round on the broker: {e}"))),
    };
    tracing::debug!(
        "{name}: round ended on the broker (kept: {}) in {:?}",
        kept.is_some(),
        began.elapsed()
    );
    (kept, error)
}

/// The contract note of a variant without consumers.
const PRODUCER_ONLY: &str =
    "consumers = 0 (producer only): delivery, loss, duplicates, order and end-to-end latency were not measured";

/// Judges `result` by its checked `report`: whether its contract was kept (a broker kill or a
/// removed queue excuses the losses the contract allows then), or, for a variant without
/// consumers, that delivery was not measured (the checker judged no message lost then, see
/// [`mq_checker::Input::consumers`]). The run's check and `bench merge` both judge with it.
pub(crate) fn judge(result: &mut VariantResult, report: &mq_checker::Report) {
    if result.producer_only() {
        result.contract_kept = None;
        result.contract_note = Some(PRODUCER_ONLY.into());
        return;
    }
    let Some(contract) = result.contract else {
        return;
    };
    let c = &report.counts;
    let broker_faulted = (result.faults.iter())
        .any(|f| f.ok && matches!(f.action, FaultAction::KillBroker | FaultAction::RemoveQueue));
    let kept = contract.kept(
        c.lost,
        c.duplicated,
        c.unexpected,
        c.aborted_visible,
        broker_faulted,
    );
    result.contract_kept = Some(kept.is_ok());
    result.contract_note = kept.err();
}

impl VariantRun<'_> {
    /// Sets the broker up, drives the load to its end, tears down and checks the histories.
    /// With `kept`, on the broker a search keeps across its rounds: one left
    /// there by the round before is reused ([`mq_core::Broker::next_round`]) and this round's is
    /// left there when it ended without faults, instead of being torn down.
    pub(crate) fn run(&self, mut kept: Option<&mut Option<BrokerGuard>>) -> VariantResult {
        let plan = self.plan;
        let vdir = self.dir.variant(&plan.name);
        let mut result = empty_result(plan, VariantStatus::Ok, None, None);
        result.history_dir = Some(vdir.rel().to_owned());
        if let Err(e) = std::fs::create_dir_all(vdir.path()) {
            result.status = VariantStatus::Failed;
            result.reason = Some(format!("creating {}: {e}", vdir.path().display()));
            return result;
        }
        if plan.delivery.consumer_dedup.is_store() {
            // Before any consumer opens it; a store left there by an earlier run goes.
            if let Err(e) = mq_dedup::create(&vdir.dedup_store()) {
                result.status = VariantStatus::Failed;
                result.reason = Some(e.to_string());
                return result;
            }
        }
        let previous = kept.as_mut().and_then(|k| k.take());
        let mut broker = match self.broker(previous, &vdir) {
            Ok(b) => b,
            Err(e) => {
                result.status = VariantStatus::Failed;
                result.reason = Some(e.to_string());
                return result;
            }
        };
        let sampler = plan.workload.resources.then(Sampler::start);
        let mut pool = Pool::default();
        pool.resources = sampler.as_ref().map(Sampler::handle);
        let ended = self.drive(&mut broker, &mut pool, &vdir, &mut result);
        // Workers first (they hold connections), then the broker.
        drop(pool);
        result.versions = broker.0.versions();
        // The broker's last reading before it is stopped.
        let sampled = sampler.map(|s| (s.finish(), broker.0.processes()));
        let clean = matches!(
            ended,
            Ok(EndedBy::Drained | EndedBy::DrainTimeout | EndedBy::Produced)
        );
        let reuse = kept.is_some() && clean && result.faults.is_empty() && plan.faults.is_empty();
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
        // The broker's end of the round runs beside the check: deleting a round's topic or a
        // log's gigabytes takes about as long as checking its histories, and neither needs the
        // other (the broker's data is not in the history folder).
        let (released, teardown) = std::thread::scope(|s| {
            let release = s.spawn(|| release(broker, reuse, &plan.name));
            let check = std::time::Instant::now();
            self.check(&vdir, &mut result);
            tracing::debug!("{}: checked in {:?}", plan.name, check.elapsed());
            release
                .join()
                .unwrap_or_else(|_| (None, Some("ending the round panicked".into())))
        });
        if let Some(e) = teardown {
            result.reason.get_or_insert(e);
        }
        if let (Some(slot), Some(b)) = (kept, released) {
            *slot = Some(b);
        }
        if let Some((handle, processes)) = sampled {
            result.cost = self.cost(&handle, processes, &result);
        }
        result
    }

    /// The variant's cost from the sampler's readings, per acked message when it was checked.
    fn cost(
        &self,
        handle: &resources::Handle,
        processes: Processes,
        result: &VariantResult,
    ) -> Option<mq_results::cost::Cost> {
        let broker_unknown = match &processes {
            Processes::Unknown(why) => Some(why.as_str()),
            Processes::Pids(_) => None,
        };
        let load = resources::Load {
            acked: result.report.as_ref().map(|r| r.counts.acked),
            message_size: self.plan.workload.message_size,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            broker_unknown,
        };
        resources::account(handle, &load)
    }

    /// The round's broker: `previous` for its next round when it can be, else a new one.
    fn broker(
        &self,
        previous: Option<BrokerGuard>,
        vdir: &VariantDir,
    ) -> Result<BrokerGuard, mq_core::BackendError> {
        let tag = match &self.opts.shard {
            Some(shard) => shard.tag(),
            None => run_tag(self.dir.path()),
        };
        if let Some(mut b) = previous {
            let began = std::time::Instant::now();
            let next = b.0.next_round(self.plan, &tag)?;
            if next {
                tracing::debug!(
                    "{}: next round on the kept broker in {:?}",
                    self.plan.name,
                    began.elapsed()
                );
                return Ok(b);
            }
            drop(b);
            tracing::debug!(
                "{}: the last round's broker torn down in {:?}",
                self.plan.name,
                began.elapsed()
            );
        }
        let b = self.backend.broker(self.plan, vdir.path(), &tag)?;
        Ok(BrokerGuard(b))
    }

    /// What the checker reads for this variant; None before the load started.
    fn checker_input(&self, vdir: &VariantDir) -> Option<mq_checker::Input> {
        let w = &self.plan.workload;
        let start_ns = vdir.read_start_ns()?;
        Some(mq_checker::Input {
            producer_files: vdir.histories(Role::Producer.as_str()),
            consumer_files: vdir.histories(Role::Consumer.as_str()),
            depth_file: Some(vdir.broker_depth()),
            dedup_store: (self.plan.delivery.consumer_dedup.is_store()).then(|| vdir.dedup_store()),
            start_ns,
            warmup_ns: w.warmup.0.as_nanos() as u64,
            message_size: w.message_size,
            producers: w.producers,
            consumers: w.consumers,
            keys: w.keys(),
        })
    }

    fn check(&self, vdir: &VariantDir, result: &mut VariantResult) {
        // The load never started, or nothing was recorded: nothing to check.
        let Some(input) = self.checker_input(vdir) else {
            return;
        };
        if self.plan.workload.history == HistoryMode::Off {
            result.contract_note = Some("history = \"off\": nothing was checked".into());
            return;
        }
        match mq_checker::check(&input) {
            Ok(report) => {
                judge(result, &report);
                if !result.producer_only() {
                    result.rebalance = rebalance(&input, &report, &result.faults);
                }
                result.report = Some(report);
                if !self.plan.workload.keep_history {
                    remove_histories(&input);
                }
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
    /// Without histories, the workers' counts (which said so before this is asked) are all
    /// there is.
    pub(crate) fn all_delivered(&self, vdir: &VariantDir) -> bool {
        if self.plan.workload.history == HistoryMode::Off {
            return true;
        }
        self.checker_input(vdir)
            .and_then(|input| mq_checker::lost(&input).ok())
            .is_some_and(|lost| lost == 0)
    }

    /// The backend's pipeline stages for this variant (0: no pipeline).
    fn stages(&self) -> u16 {
        self.backend.stages(self.plan)
    }

    /// How worker `index` of `role` is started.
    pub(crate) fn launch<'b>(
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
            Role::Stage => (
                RoleSpec::Stage,
                consumer_partitions(w.partitions, self.stages().into(), index),
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
    pub(crate) fn on_exit(&self) -> impl FnMut(&Worker) + '_ {
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

    /// Starts the consumers and the producers; the load's start time, or None if interrupted.
    pub(crate) fn start_workers(
        &self,
        pool: &mut Pool,
        endpoint: &serde_json::Value,
        vdir: &VariantDir,
    ) -> anyhow::Result<Option<u64>> {
        let w = &self.plan.workload;
        let interrupted = || self.interrupt.is_set();
        let mut on_exit = self.on_exit();
        // All start connecting at once (stages, then consumers first); none sends before the go
        // signal, which waits until every one is ready.
        let first = pool.workers.len();
        let roles = [
            (Role::Stage, u32::from(self.stages())),
            (Role::Consumer, w.consumers),
            (Role::Producer, w.producers),
        ];
        let here = |i: u16| self.opts.shard.as_ref().is_none_or(|s| s.runs(i));
        for (role, n) in roles {
            for i in (0..n as u16).filter(|&i| here(i)) {
                pool.spawn(role, i, 0, &self.launch(role, i, endpoint, vdir))?;
            }
        }
        let range = first..pool.workers.len();
        if !pool.await_ready(range, READY_TIMEOUT, &interrupted, &mut on_exit)? {
            return Ok(None);
        }
        if let Some(shard) = &self.opts.shard {
            // Every shard's workers ready before any sends: a late shard's messages would find
            // the others' consumers gone.
            if !shard.barrier(&self.plan.name, &interrupted)? {
                return Ok(None);
            }
        }
        let start_ns = now_ns() + 10_000_000;
        std::fs::write(vdir.start_ns(), start_ns.to_string())?;
        if let Some(r) = &pool.resources {
            r.go(start_ns);
        }
        for p in pool.of(Role::Producer) {
            p.send(Control::Go(start_ns));
        }
        Ok(Some(start_ns))
    }
}

/// The rebalance pauses from the members' assignment files (kept, however `keep_history` is
/// set: they are small and bounded), between the load's start and its last delivery.
fn rebalance(
    input: &mq_checker::Input,
    report: &mq_checker::Report,
    faults: &[mq_results::FaultEvent],
) -> Option<mq_checker::rebalance::Rebalance> {
    let mut lines = Vec::new();
    for hist in &input.consumer_files {
        let path = mq_core::assignment::assign_path(hist);
        match mq_core::assignment::read(&path) {
            Ok(l) => lines.extend(l),
            Err(e) => tracing::warn!("reading {}: {e}", path.display()),
        }
    }
    let at = |t: f64| input.start_ns + (t.max(0.0) * 1e9) as u64;
    let kills: Vec<(u64, u16)> = (faults.iter())
        .filter(|f| f.ok && f.action == FaultAction::KillConsumer)
        .map(|f| (at(f.t), f.target.unwrap_or(0)))
        .collect();
    let s = &report.series;
    let last_bin = s
        .delivered
        .iter()
        .rposition(|&n| n > 0)
        .map_or(0, |i| i + 1);
    let end_ns = at(last_bin as f64 * s.bin_s);
    mq_checker::rebalance::measure(lines, &kills, input.start_ns, end_ns)
}

/// `keep_history = false`: the checked histories, their latency logs and the dedup store go
/// (a file that will not go is left, said in the log: the results are already whole).
fn remove_histories(input: &mq_checker::Input) {
    if let Some(store) = &input.dedup_store {
        if let Err(e) = mq_dedup::remove(store) {
            tracing::warn!("keep_history = false: removing {}: {e}", store.display());
        }
    }
    let files = input.producer_files.iter().chain(&input.consumer_files);
    for hist in files {
        for path in [hist.clone(), hist.with_extension("hlog")] {
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!("keep_history = false: removing {}: {e}", path.display());
                }
            }
        }
    }
}
