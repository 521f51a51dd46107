//! `bench run`: argument handling, the run (once or `--repeat N` times) through mq-runner, the
//! report after it through mq-report, and the exit status.

use std::path::PathBuf;
use std::process::ExitCode;

use mq_core::scenario::{self, Scenario};
use mq_core::Registry;
use mq_results::{RunDir, RunResults, VariantStatus};
use mq_runner::interrupt::Interrupt;
use mq_runner::repeat::Repeated;
use mq_runner::RunOptions;

#[derive(clap::Args)]
pub struct RunArgs {
    /// The scenario file (TOML).
    pub(crate) scenario: PathBuf,
    /// Write the run into this folder instead of reports/<time>-<scenario>/.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Run only this variant (repeatable).
    #[arg(long, value_name = "VARIANT")]
    pub(crate) only: Vec<String>,
    /// No progress bar: plain log lines every few seconds.
    #[arg(short, long)]
    quiet: bool,
    /// Folder for run folders.
    #[arg(long, default_value = "reports")]
    pub(crate) reports: PathBuf,
    /// Run the scenario N times into DIR/rep-1 … rep-N (for `bench compare`'s noise test).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) repeat: u32,
    /// Run shard I of N: only producers p and consumers c with p mod N = I-1 (c likewise),
    /// against an external broker, into a partial run folder for `bench merge`.
    #[arg(long, value_name = "I/N")]
    pub(crate) shard: Option<String>,
    /// The run id every shard shares (with --shard). Without it, derived from the scenario's
    /// hash and $MQ_BENCH_RUN_NAME (e.g. a Kubernetes Job's name).
    #[arg(long, value_name = "ID", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) run_id: Option<u32>,
    /// A folder every shard sees (a shared volume): each variant starts only once every
    /// shard's workers are ready (with --shard).
    #[arg(long, value_name = "DIR")]
    pub(crate) barrier: Option<PathBuf>,
}

/// `bench run`: exit 2 on bad input (nothing created), else as [`run_exit_code`].
pub fn run(args: RunArgs, registry: &Registry) -> ExitCode {
    let scenario = match scenario::load(&args.scenario, registry) {
        Ok(s) => s,
        Err(e) => return crate::bad_input(&e),
    };
    if let Some(unknown) = args
        .only
        .iter()
        .find(|o| !scenario.variants.iter().any(|v| &v.name == *o))
    {
        let names: Vec<_> = scenario.variants.iter().map(|v| v.name.as_str()).collect();
        eprintln!(
            "error: --only {unknown:?}: {} has no such variant; valid: {}",
            args.scenario.display(),
            names.join(", ")
        );
        return ExitCode::from(2);
    }
    // Before the Ctrl-C handler's thread: a shard sets the workers' environment.
    let shard = match crate::shard_cmd::shard_run(&args, &scenario) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {}: {e}", args.scenario.display());
            return ExitCode::from(2);
        }
    };
    let out = match &shard {
        Some(s) => Some(crate::shard_cmd::out_dir(&args, &scenario, s)),
        None => args.out.clone(),
    };
    if let Err(e) = room_for_histories(&scenario, &args) {
        eprintln!("error: {}: {e}", args.scenario.display());
        return ExitCode::from(2);
    }
    let interrupt = match Interrupt::install() {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: installing the Ctrl-C handler: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opts = RunOptions {
        reports_dir: args.reports,
        out,
        only: args.only,
        quiet: args.quiet,
        worker_exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("bench")),
        shard,
    };
    match args.repeat {
        1 => run_once(&scenario, registry, &opts, &interrupt),
        n => run_repeated(&scenario, registry, &opts, &interrupt, n),
    }
}

/// One run, its report, and its summary on stderr.
fn run_once(
    scenario: &Scenario,
    registry: &Registry,
    opts: &RunOptions,
    interrupt: &Interrupt,
) -> ExitCode {
    match mq_runner::run(scenario, registry, opts, interrupt) {
        Ok(outcome) => {
            let reported = report_after_run(&outcome.dir);
            eprintln!("\n{}", mq_report::summary_markdown(&outcome.results));
            eprintln!("results: {}", outcome.dir.results().display());
            if reported {
                eprintln!("summary: {}", outcome.dir.summary().display());
            }
            run_exit_code(&[&outcome.results])
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// After `bench run`: summary.md, charts and report.html; a failure is a warning (results.json
/// is safe). Whether the report was written.
fn report_after_run(dir: &RunDir) -> bool {
    match mq_report::generate(dir.path()) {
        Ok(_) => {
            eprintln!("report:  {}", dir.report_html().display());
            true
        }
        Err(e) => {
            eprintln!(
                "warning: report not generated ({e:#}); results are intact, retry with: bench report {}",
                dir.path().display()
            );
            false
        }
    }
}

/// `bench run --repeat N`: each repetition reported as it ends, then the spread over them.
fn run_repeated(
    scenario: &Scenario,
    registry: &Registry,
    opts: &RunOptions,
    interrupt: &Interrupt,
    n: u32,
) -> ExitCode {
    let result = mq_runner::repeat::run(scenario, registry, opts, interrupt, n, |i, o| {
        eprintln!("\nrepetition {i}/{n}: {}", o.dir.path().display());
        report_after_run(&o.dir);
    });
    let Repeated { dir, outcomes } = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let reps = dir.repetitions();
    match mq_report::repeat::write_summary(&dir, &reps) {
        Ok(p) => match std::fs::read_to_string(&p) {
            Ok(text) => eprintln!("\n{text}\nsummary: {}", p.display()),
            Err(_) => eprintln!("summary: {}", p.display()),
        },
        Err(e) => eprintln!("warning: repetition summary not written: {e:#}"),
    }
    let results: Vec<&RunResults> = outcomes.iter().map(|o| &o.results).collect();
    run_exit_code(&results)
}

/// How `bench run` exits: 130 when a run was interrupted (saying so), 1 when a variant failed.
fn run_exit_code(results: &[&RunResults]) -> ExitCode {
    if results.iter().any(|r| r.partial) {
        eprintln!("interrupted: partial results written");
        ExitCode::from(130)
    } else if results
        .iter()
        .any(|r| r.variants.iter().any(|v| v.status == VariantStatus::Failed))
    {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Refuses a run whose histories, as estimated, would not fit on the disk it writes to.
fn room_for_histories(scenario: &Scenario, args: &RunArgs) -> Result<(), String> {
    let variants = scenario
        .variants
        .iter()
        .filter(|v| args.only.is_empty() || args.only.contains(&v.name));
    let need = mq_runner::estimate::run_bytes(variants).saturating_mul(u64::from(args.repeat));
    let dir = args.out.as_deref().unwrap_or(&args.reports);
    let Some(free) = mq_runner::estimate::free_bytes(dir) else {
        return Ok(()); // cannot tell: the run finds out, with a clear error at the first write
    };
    if need <= free {
        return Ok(());
    }
    let mb = |b: u64| b.div_ceil(1_000_000);
    Err(format!(
        "its histories would take about {} MB but {} has {} MB free; set \
         workload.history = \"intervals\" (the default) or \"off\", keep_history = false, \
         fewer messages, or --out on a larger disk",
        mb(need),
        dir.display(),
        mb(free)
    ))
}
