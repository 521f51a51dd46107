//! `bench run --repeat N`: the same scenario N times into `DIR/rep-1/` … `DIR/rep-N/`, each an
//! ordinary run folder with its own results.json. The spread over repetitions is the report's
//! (mq-report's `repeat`); `bench compare` reads such a folder as N repetitions.

use std::time::SystemTime;

use anyhow::Context;
use mq_core::scenario::Scenario;
use mq_core::Registry;
use mq_results::RunDir;

use crate::interrupt::Interrupt;
use crate::run::{self, RunOptions, RunOutcome};

/// A repeated run: its folder of repetitions and every repetition's outcome.
pub struct Repeated {
    pub dir: RunDir,
    pub outcomes: Vec<RunOutcome>,
}

/// Runs `scenario` `n` times into `rep-1/` … `rep-n/` of the run folder (`--out`, or
/// `<reports>/<time>-<scenario>` like a single run's), stopping early on Ctrl-C. `after_each`
/// sees every repetition as it ends (to report it).
pub fn run(
    scenario: &Scenario,
    registry: &Registry,
    opts: &RunOptions,
    interrupt: &Interrupt,
    n: u32,
    mut after_each: impl FnMut(u32, &RunOutcome),
) -> anyhow::Result<Repeated> {
    let dir = opts.run_dir(scenario, SystemTime::now());
    std::fs::create_dir_all(dir.path())
        .with_context(|| format!("creating {}", dir.path().display()))?;
    let mut outcomes = Vec::new();
    for i in 1..=n {
        let rep = RunOptions {
            out: Some(dir.repetition(i).path().to_owned()),
            ..opts.clone()
        };
        let outcome = run::run(scenario, registry, &rep, interrupt)?;
        after_each(i, &outcome);
        let partial = outcome.results.partial;
        outcomes.push(outcome);
        if partial {
            break;
        }
    }
    Ok(Repeated { dir, outcomes })
}
