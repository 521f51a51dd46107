//! A pipeline stage's loop: steps the backend's stage until `stop`, then closes it. It records
//! no history (the envelope passes through unchanged; the consumers' histories tell the rest)
//! and its counts stay zero, so the run's totals count each delivery once.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use anyhow::Context;
use mq_core::spec::WorkerSpec;
use mq_core::{Backend, BackendError, Stage};

use super::Counters;

/// The longest a step waits for input, so that a stop is seen promptly.
const STEP_WAIT: Duration = Duration::from_millis(100);

/// Opens the backend's stage, calls `ready`, and runs it until stopped.
pub fn play_stage(
    spec: &WorkerSpec,
    backend: &dyn Backend,
    counters: &Counters,
    ready: &mut dyn FnMut(),
) -> anyhow::Result<()> {
    let result = backend.stage(&spec.ctx).map_err(anyhow::Error::from);
    let result = result.and_then(|stage| {
        ready();
        run_stage(stage, counters)
    });
    counters.stopped.store(true, Relaxed);
    result
}

/// Runs `stage` until the coordinator says stop.
fn run_stage(mut stage: Box<dyn Stage>, counters: &Counters) -> anyhow::Result<()> {
    while !counters.stop.load(Relaxed) {
        match stage.step(STEP_WAIT) {
            Ok(_) => {}
            Err(BackendError::Interrupted { .. }) if counters.stop.load(Relaxed) => break,
            Err(e) => return Err(e).context("pipeline stage"),
        }
    }
    counters.stopped.store(true, Relaxed);
    stage.close().context("closing the pipeline stage")
}
