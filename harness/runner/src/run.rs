//! `bench run`: every selected variant of a scenario in turn, into one run folder. results.json
//! is rewritten after every variant, so a crash keeps what was gathered; the summary, charts and
//! page are the report's, built from it afterwards.

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{anyhow, Context};
use mq_core::clock::now_ns;
use mq_core::plan::VariantPlan;
use mq_core::scenario::Scenario;
use mq_core::Registry;
use mq_results::{Machine, RunDir, RunResults, ScenarioInfo, VariantResult, VariantStatus, SCHEMA};

use crate::interrupt::Interrupt;
use crate::variant::VariantRun;

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
    /// `--shard I/N`: run only this shard's workers, into a partial run folder (shard.rs).
    pub shard: Option<crate::shard::ShardRun>,
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
    let dir = opts.run_dir(scenario, now);
    std::fs::create_dir_all(dir.path())
        .with_context(|| format!("creating run folder {}", dir.path().display()))?;
    std::fs::write(dir.scenario(), &scenario.text)
        .with_context(|| format!("writing {}", dir.scenario().display()))?;
    let mut results = started(scenario, timestamp(now));
    if let Some(shard) = &opts.shard {
        results.run_id = shard.run_id;
        results.shard = Some(shard.shard);
        shard.write_info(&dir)?;
    }
    let write = |results: &RunResults| {
        let began = std::time::Instant::now();
        let written = results
            .write(&dir)
            .with_context(|| format!("writing results to {}", dir.path().display()));
        tracing::debug!("results.json written in {:?}", began.elapsed());
        written
    };
    write(&results)?;
    // --only names a variant as written (all its runs and sweep points) or one of them.
    let selected = scenario.variants.iter().filter(|v| {
        let written = [
            Some(&v.name),
            v.run_of.as_ref().map(|r| &r.of),
            v.point_of.as_ref().map(|p| &p.of),
        ];
        opts.only.is_empty() || written.into_iter().flatten().any(|n| opts.only.contains(n))
    });
    let sharded: Vec<VariantPlan>;
    let selected: Vec<&VariantPlan> = match &opts.shard {
        Some(shard) => {
            sharded = selected.map(|p| shard.plan(p)).collect();
            sharded.iter().collect()
        }
        None => selected.collect(),
    };
    for plan in selected {
        let backend = registry
            .iter()
            .find(|b| b.info().name == plan.backend)
            .ok_or_else(|| anyhow!("backend {:?} is not registered", plan.backend))?;
        let ctx = VariantRun {
            plan,
            backend: backend.as_ref(),
            dir: &dir,
            run_id: results.run_id,
            opts,
            interrupt,
        };
        let Some(search) = &plan.search else {
            results.variants.push(variant(&ctx));
            write(&results)?;
            continue;
        };
        let mut record = |r: VariantResult| {
            results.variants.push(r);
            write(&results)
        };
        let found = crate::search::run(&ctx, search, &mut record)?;
        results.searches.push(found);
        write(&results)?;
    }
    results.partial = interrupt.is_set();
    results.finished_at = Some(timestamp(SystemTime::now()));
    write(&results)?;
    Ok(RunOutcome { dir, results })
}

/// results.json as a run starts: no variants yet, partial until it ends.
fn started(scenario: &Scenario, started_at: String) -> RunResults {
    RunResults {
        schema: SCHEMA.to_owned(),
        bench_version: env!("CARGO_PKG_VERSION").to_owned(),
        scenario: ScenarioInfo {
            name: scenario.name.clone(),
            description: scenario.description.clone(),
            file: scenario.path.display().to_string(),
            workload: scenario.workload.clone(),
            requirements: scenario.requirements.clone(),
        },
        run_id: (now_ns() as u32) ^ std::process::id().rotate_left(16),
        started_at,
        finished_at: None,
        partial: true,
        machine: Machine::this(),
        variants: Vec::new(),
        searches: Vec::new(),
        shard: None,
        merged: None,
    }
}

/// One variant: not run after Ctrl-C, skipped when its backend cannot run here, else run.
pub(crate) fn variant(ctx: &VariantRun<'_>) -> VariantResult {
    variant_on(ctx, None)
}

/// [`variant`] on the broker a search keeps across its rounds ([`VariantRun::run`]).
pub(crate) fn variant_on(
    ctx: &VariantRun<'_>,
    kept: Option<&mut Option<crate::variant::BrokerGuard>>,
) -> VariantResult {
    let plan = ctx.plan;
    if ctx.interrupt.is_set() {
        return empty_result(
            plan,
            VariantStatus::NotRun,
            Some("the run was interrupted before this variant".into()),
            None,
        );
    }
    match ctx.backend.available(plan) {
        Ok(()) => ctx.run(kept),
        Err(u) => {
            let fix = u.fix.as_deref().map(|f| format!(" (fix: {f})"));
            eprintln!(
                "{}: skipped: {}{}",
                plan.name,
                u.reason,
                fix.unwrap_or_default()
            );
            empty_result(plan, VariantStatus::Skipped, Some(u.reason), u.fix)
        }
    }
}

/// A variant's result before (or without) running it.
pub(crate) fn empty_result(
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
        rebalance: None,
        run_of: plan.run_of.clone(),
        point_of: plan.point_of.clone(),
        setup_s: None,
        cost: None,
    }
}
