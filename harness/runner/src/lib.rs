//! mq-runner: turns a validated scenario into worker processes, watches them, and gathers what
//! they wrote into results.
//!
//! The coordinator (`coordinator.rs`) runs in `bench run`; the worker (`worker.rs`) is the same
//! binary started as `bench worker`. Results (`results.rs`) are written raw before they are
//! summarised (`summary.rs`).

pub mod coordinator;
pub mod interrupt;
pub mod machine;
pub mod progress;
pub mod results;
pub mod summary;
pub mod worker;

pub use coordinator::{run, RunOptions};
