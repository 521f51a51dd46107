//! `bench report` and `bench compare`: argument handling and exit codes around mq-report.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use mq_report::compare::{self, Side, Thresholds};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
}

/// Thresholds come from `--thresholds FILE` (TOML, same names with `_`), then these flags.
#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// The baseline: a results.json, a run folder, or a folder of rep-N/ repetitions.
    pub base: PathBuf,
    /// The candidate, same forms.
    pub new: PathBuf,
    /// Thresholds file (TOML): max_throughput_drop, max_p50_rise, max_p99_rise, max_p999_rise,
    /// fail_on_loss, fail_on_duplicates, fail_on_reorder, alpha, min_repetitions, strict.
    #[arg(long, value_name = "FILE")]
    pub thresholds: Option<PathBuf>,
    /// Allowed drop of acked / delivered msgs/s, percent [default: 5].
    #[arg(long, value_name = "PCT")]
    pub max_throughput_drop: Option<f64>,
    /// Allowed rise of publish / end-to-end p50, percent [default: 10].
    #[arg(long, value_name = "PCT")]
    pub max_p50_rise: Option<f64>,
    /// Allowed rise of publish / end-to-end p99, percent [default: 10].
    #[arg(long, value_name = "PCT")]
    pub max_p99_rise: Option<f64>,
    /// Allowed rise of end-to-end p99.9, percent [default: 20].
    #[arg(long, value_name = "PCT")]
    pub max_p999_rise: Option<f64>,
    /// Any lost or unexpected message in NEW is a regression.
    #[arg(long)]
    pub fail_on_loss: bool,
    /// Any duplicated message in NEW is a regression.
    #[arg(long)]
    pub fail_on_duplicates: bool,
    /// Any reordered message in NEW is a regression.
    #[arg(long)]
    pub fail_on_reorder: bool,
    /// Fail when a figure is inconclusive (too little data to tell a change from noise).
    #[arg(long)]
    pub strict: bool,
    /// Compare even when BASE and NEW ran different scenarios (the differences are listed
    /// first); without it, a changed scenario exits 2.
    #[arg(long)]
    pub allow_scenario_change: bool,
    /// Output format (markdown: for a pull-request comment).
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

/// `bench compare`: prints the comparison on stdout; exit 1 on a regression, 2 on bad input or
/// when the two sides ran different scenarios (unless `--allow-scenario-change`).
pub fn compare(a: &CompareArgs) -> ExitCode {
    let mut t = match &a.thresholds {
        Some(f) => match Thresholds::from_file(f) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        },
        None => Thresholds::default(),
    };
    let set = |dst: &mut f64, v: Option<f64>| {
        if let Some(v) = v {
            *dst = v;
        }
    };
    set(&mut t.max_throughput_drop, a.max_throughput_drop);
    set(&mut t.max_p50_rise, a.max_p50_rise);
    set(&mut t.max_p99_rise, a.max_p99_rise);
    set(&mut t.max_p999_rise, a.max_p999_rise);
    t.fail_on_loss |= a.fail_on_loss;
    t.fail_on_duplicates |= a.fail_on_duplicates;
    t.fail_on_reorder |= a.fail_on_reorder;
    t.strict |= a.strict;
    let (base, new) = match (Side::load(&a.base), Side::load(&a.new)) {
        (Ok(b), Ok(n)) => (b, n),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let c = compare::compare(&base, &new, &t);
    if c.scenario_changed() && !a.allow_scenario_change {
        print!("{}", compare::refusal(&c, a.format == Format::Markdown));
        eprintln!(
            "error: BASE and NEW ran different scenarios ({} field(s) differ); pass --allow-scenario-change to compare anyway",
            c.scenario_changes.len()
        );
        return ExitCode::from(2);
    }
    match a.format {
        Format::Text => print!("{}", compare::text(&c)),
        Format::Markdown => print!("{}", compare::markdown(&c)),
    }
    if c.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `bench report RUN_DIR`.
pub fn report(dir: &Path) -> ExitCode {
    match mq_report::generate(dir) {
        Ok(files) => {
            for f in files {
                eprintln!("wrote {}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
