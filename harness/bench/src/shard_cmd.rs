//! `bench run --shard I/N [--run-id ID]`: the arguments checked into a [`ShardRun`] before
//! anything is created (every failure is exit 2 with the reason).

use mq_core::scenario::Scenario;
use mq_core::shard::{self, Shard, RUN_NAME_ENV};
use mq_runner::shard::ShardRun;

use crate::run_cmd::RunArgs;

/// The shard to run, None without `--shard`; an error names the argument and what is valid.
pub fn shard_run(args: &RunArgs, scenario: &Scenario) -> Result<Option<ShardRun>, String> {
    let Some(text) = &args.shard else {
        if args.run_id.is_some() || args.barrier.is_some() {
            return Err(
                "--run-id and --barrier are for sharded runs; give --shard I/N with them".into(),
            );
        }
        return Ok(None);
    };
    let shard: Shard = text.parse()?;
    if args.repeat > 1 {
        return Err("--shard runs once; --repeat is for whole runs".into());
    }
    let selected = scenario
        .variants
        .iter()
        .filter(|v| args.only.is_empty() || args.only.contains(&v.name));
    for plan in selected {
        if let Some(why) = ShardRun::refusal(plan) {
            return Err(why);
        }
        if plan.search.is_some() {
            return Err(format!(
                "variants[{:?}]: rate = \"max\" decides each probe from the whole run's \
                 figures, which no shard has; run the search unsharded",
                plan.name
            ));
        }
    }
    let scenario_sha256 = shard::sha256_hex(scenario.text.as_bytes());
    let run_id = match (args.run_id, std::env::var(RUN_NAME_ENV)) {
        (Some(id), _) => id,
        (None, Ok(name)) if !name.trim().is_empty() => {
            shard::derive_run_id(&scenario_sha256, name.trim())
        }
        _ => {
            return Err(format!(
                "--shard needs the run id every shard shares: --run-id ID (1 to {}), or \
                 ${RUN_NAME_ENV} set alike in every shard (the id is then derived from it and \
                 the scenario's hash)",
                u32::MAX
            ))
        }
    };
    // Every shard stamps times with the real-time clock, the one hosts share (mq_core::clock).
    mq_core::clock::use_realtime();
    // The consumers keep a same-shard latency log (docs/history-format.md).
    std::env::set_var(shard::SHARD_ENV, shard.to_string());
    Ok(Some(ShardRun {
        shard,
        run_id,
        scenario_sha256,
        barrier: args.barrier.clone(),
    }))
}

/// A shard's partial run folder: `--out`, or `<reports>/<scenario>-run-<id>-shard-I-of-N`.
pub fn out_dir(args: &RunArgs, scenario: &Scenario, s: &ShardRun) -> std::path::PathBuf {
    args.out.clone().unwrap_or_else(|| {
        let name = format!(
            "{}-{}-shard-{}-of-{}",
            scenario.name,
            s.tag(),
            s.shard.index,
            s.shard.of
        );
        args.reports.join(name)
    })
}
