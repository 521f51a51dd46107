//! mq-runner: turns a validated scenario into worker processes, watches them, and gathers what
//! they wrote into results.
//!
//! `bench run` ([`run()`], `run.rs`) runs each variant in turn (`variant.rs`: broker, workers,
//! check); the coordinator's loop (`coordinator.rs`) drives the worker processes (`workers.rs`),
//! the fault schedule (`nemesis.rs`) and the end-of-drain rules (`drain.rs`). The worker
//! (`worker/`) is the same binary started as `bench worker`. Results are written raw (mq-results:
//! results.json's types and the run folder's layout); summarising them is the report's.
//! `--repeat` runs a scenario N times into one folder (`repeat.rs`). What each variant costs
//! (CPU, memory, storage writes of the broker and the workers) is read from /proc by one
//! sampling thread (`resources/`).

pub mod coordinator;
pub mod drain;
pub mod estimate;
pub mod interrupt;
pub mod k8s;
pub mod merge;
pub mod nemesis;
pub mod progress;
pub mod repeat;
pub mod resources;
pub mod run;
pub mod search;
pub mod shard;
mod variant;
pub mod worker;
pub mod workers;

pub use run::{run, RunOptions, RunOutcome};
