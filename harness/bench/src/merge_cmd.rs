//! `bench merge PARTIAL_DIR... --out RUN_DIR`: the shards of a sharded run joined into one run
//! folder (mq-runner's merge), then its report as after `bench run`.

use std::path::PathBuf;
use std::process::ExitCode;

use mq_runner::merge::{self, MergeOptions};

#[derive(clap::Args)]
pub struct MergeArgs {
    /// The shards' partial run folders (`bench run --shard I/N` wrote them), all N of them.
    #[arg(required = true, value_name = "PARTIAL_DIR")]
    partials: Vec<PathBuf>,
    /// The merged run folder to write.
    #[arg(long)]
    out: PathBuf,
    /// Above this clock offset bound between shards, end-to-end latency across hosts is marked
    /// unreliable and each shard's same-shard latency is the figure to read.
    #[arg(long, default_value = "1ms", value_parser = humantime::parse_duration)]
    clock_limit: std::time::Duration,
    /// Wait up to this long for every shard to finish (e.g. "6h"), polling every 2 s.
    #[arg(long, value_parser = humantime::parse_duration)]
    wait: Option<std::time::Duration>,
}

/// Exit 0 merged, 2 bad input (foreign, repeated or missing shard; named), 1 a failure.
pub fn merge(args: &MergeArgs) -> ExitCode {
    let started = std::time::Instant::now();
    let opts = MergeOptions {
        out: args.out.clone(),
        clock_limit_us: args.clock_limit.as_micros().min(i64::MAX as u128) as i64,
        wait: args.wait,
    };
    let results = match merge::merge(&args.partials, &opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(if e.is_input() { 2 } else { 1 });
        }
    };
    eprintln!(
        "merged {} shards into {} in {:.2} s",
        args.partials.len(),
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    let dir = mq_results::RunDir::new(&args.out);
    if let Err(e) = mq_report::generate(dir.path()) {
        eprintln!(
            "warning: report not generated ({e:#}); results are intact, retry with: bench report {}",
            dir.path().display()
        );
    }
    eprintln!("\n{}", mq_report::summary_markdown(&results));
    eprintln!("results: {}", dir.results().display());
    ExitCode::SUCCESS
}
