//! `bench`: the command line. Parses arguments and calls the library crates; nothing else.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mq_core::scenario::{self, ScenarioError};

mod k8s_cmd;
mod merge_cmd;
mod report_cmd;
mod review_cmd;
mod run_cmd;
mod shard_cmd;

const EXAMPLES: &str = "\
Examples:
  bench run scenarios/quickstart.toml            run every variant, write reports/<time>-quickstart/
  bench run scenarios/ordering.toml --only sysv  run one variant
  bench validate scenarios/sysv-sizes.toml       check a scenario without running it
  bench list                                     backends, their settings and options
  bench run scenarios/quickstart.toml --repeat 5 five repetitions into one folder (rep-1 … rep-5)
  bench report reports/20261125T063509Z-quickstart   rebuild charts, report.html, summary.md
  bench compare base/ new/ --fail-on-loss        exit 1 when NEW regressed (CI)
  bench review RUN1/ RUN2/ --requirements req.toml   each variant against the requirements
  bench run s.toml --shard 2/3 --run-id 7 --out part-2   one shard of a run (external broker)
  bench merge part-1 part-2 part-3 --out merged       join the shards into one run folder
  bench k8s s.toml --shards 8 --image REG/mq-bench:1  Kubernetes manifests for 8 shards + merge

Exit status: 0 done, 1 a variant failed, 2 bad input (nothing was created), 130 interrupted.";

#[derive(Parser)]
#[command(name = "bench", version, about = "Run the same message-queue workload against several backends and compare speed and correctness", after_help = EXAMPLES)]
struct Cli {
    /// More log output (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario: every variant in turn, then write results.json and the report
    /// (summary.md, report.html, charts/).
    Run(run_cmd::RunArgs),
    /// Join the partial run folders of a sharded run (`bench run --shard I/N`) into one run
    /// folder: every shard present once, histories checked as one, histograms added.
    Merge(merge_cmd::MergeArgs),
    /// Write Kubernetes manifests that run a scenario as N shards (an Indexed Job) on a shared
    /// ReadWriteMany volume and merge them (a second Job).
    K8s(k8s_cmd::K8sArgs),
    /// Rebuild charts/, report.html and summary.md of a run folder from its results.json.
    Report {
        /// The run folder (or a folder of rep-N/ repetitions).
        run_dir: PathBuf,
    },
    /// Compare two runs; exit 1 when NEW regressed past the thresholds (for CI).
    Compare(report_cmd::CompareArgs),
    /// Judge the variants of run folders against requirements (a review page); exit 0 when
    /// some variant meets every requirement, 1 when none does.
    Review(review_cmd::ReviewArgs),
    /// Check a scenario and print what it would run; creates nothing.
    Validate { scenario: PathBuf },
    /// List the backends, their delivery settings, defaults and options.
    List,
    /// The in-house log's server (what the `log` backend starts in managed mode).
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
    /// Internal: a producer or consumer process started by `bench run` (spec on stdin). Its
    /// arguments (variant, role, index) only name it for `ps`.
    #[command(hide = true)]
    Worker {
        #[arg(num_args = 0..)]
        label: Vec<String>,
    },
}

#[derive(Subcommand)]
enum LogCommand {
    /// Serve a log folder over TCP until SIGTERM or Ctrl-C; prints `listening ADDR` when ready.
    Serve(mqlog::server::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .init();
    let registry = mq_backends::registry();
    match cli.command {
        Command::Worker { .. } => match mq_runner::worker::main(&registry) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("worker: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Log {
            command: LogCommand::Serve(args),
        } => match mqlog::server::serve(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Merge(args) => merge_cmd::merge(&args),
        Command::K8s(args) => k8s_cmd::k8s(&args, &registry),
        Command::Report { run_dir } => report_cmd::report(&run_dir),
        Command::Compare(args) => report_cmd::compare(&args),
        Command::Review(args) => review_cmd::review(&args),
        Command::List => {
            print!("{}", list(&registry));
            ExitCode::SUCCESS
        }
        Command::Validate { scenario } => validate(&scenario, &registry),
        Command::Run(args) => run_cmd::run(args, &registry),
    }
}

/// `bench validate`: what the scenario would run, or why it cannot.
fn validate(path: &Path, registry: &mq_core::Registry) -> ExitCode {
    let s = match scenario::load(path, registry) {
        Ok(s) => s,
        Err(e) => return bad_input(&e),
    };
    eprintln!(
        "{}: ok: scenario {:?}, {} variant(s)",
        path.display(),
        s.name,
        s.variants.len()
    );
    for v in &s.variants {
        let d = v.delivery;
        let dedup = match d.consumer_dedup.is_store() {
            true => format!(" consumer_dedup store ({})", v.dedup_sync),
            false => String::new(),
        };
        eprintln!(
            "  {:<20} backend {:<9} producer_ack {} consumer_ack {} durability {}{dedup}",
            v.name, v.backend, d.producer_ack, d.consumer_ack, d.durability
        );
    }
    ExitCode::SUCCESS
}

pub(crate) fn bad_input(e: &ScenarioError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

fn list(registry: &mq_core::Registry) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for b in registry {
        let i = b.info();
        let _ = writeln!(s, "{}: {}", i.name, i.summary);
        let d = i.defaults;
        let setting = |s: &mut String, name: &str, values: Vec<(String, &str)>, default: String| {
            let _ = writeln!(s, "  {name} (default {default}):");
            for (v, meaning) in values {
                let _ = writeln!(s, "    {v:<14} {meaning}");
            }
        };
        setting(
            &mut s,
            "producer_ack",
            i.producer_ack
                .iter()
                .map(|(v, m)| (v.to_string(), *m))
                .collect(),
            d.producer_ack.to_string(),
        );
        setting(
            &mut s,
            "consumer_ack",
            i.consumer_ack
                .iter()
                .map(|(v, m)| (v.to_string(), *m))
                .collect(),
            d.consumer_ack.to_string(),
        );
        setting(
            &mut s,
            "durability",
            i.durability
                .iter()
                .map(|(v, m)| (v.to_string(), *m))
                .collect(),
            d.durability.to_string(),
        );
        if !i.options.is_empty() {
            let _ = writeln!(s, "  options ([variants.options]):");
            for o in &i.options {
                let mut help = o.help.clone();
                if !o.values.is_empty() && !o.values.iter().all(|v| help.contains(v.as_str())) {
                    help = format!("{} ({})", help.trim_end_matches('.'), o.values.join(" | "));
                }
                if let (Some(lo), Some(hi)) = (o.min, o.max) {
                    help = format!("{help} [{lo} to {hi}]");
                }
                let default = o.default.as_deref().unwrap_or("-");
                let _ = writeln!(s, "    {:<20} default {:<12} {help}", o.name, default);
            }
        }
        let offered = b.broker_faults();
        let faults: Vec<String> = (mq_core::plan::FaultAction::ALL.iter())
            .filter(|a| a.broker_fault().is_some_and(|f| offered.contains(&f)))
            .map(|a| a.to_string())
            .collect();
        if !faults.is_empty() {
            let _ = writeln!(s, "  broker faults: {}", faults.join(", "));
        }
        s.push('\n');
    }
    s
}
