//! The run folder's layout: every file and folder name a run writes or a report reads, in one
//! place. A run folder is `reports/<time>-<scenario>/` (or `--out`); a repeated run is a folder
//! of run folders `rep-1/` … `rep-N/`.
//!
//! ```text
//! <run>/results.json  scenario.toml  summary.md  report.html  charts/<name>.svg|png
//! <run>/history/<variant>/start_ns  broker-depth.jsonl  producer-0.hist  consumer-0-r1.log …
//!                          dedup.sqlite (consumer_dedup = "store")
//! ```

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

const RESULTS: &str = "results.json";
const SCENARIO: &str = "scenario.toml";
const SUMMARY: &str = "summary.md";
const REPORT: &str = "report.html";
const CHARTS: &str = "charts";
const HISTORY: &str = "history";
const REPETITION: &str = "rep-";

/// One run folder (or a folder of repetitions), and the names of what is in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// The run folder at `root` (nothing is created).
    pub fn new(root: impl Into<PathBuf>) -> RunDir {
        RunDir { root: root.into() }
    }

    /// A new run's folder under `reports`: `<time>-<scenario>`, the time in UTC as
    /// `20261125T063509Z`, so folders sort by when they ran.
    pub fn stamped(reports: &Path, at: SystemTime, scenario: &str) -> RunDir {
        let stamp: String = humantime::format_rfc3339_seconds(at)
            .to_string()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        RunDir::new(reports.join(format!("{stamp}-{scenario}")))
    }

    /// The folder itself.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `results.json`: everything the run measured.
    pub fn results(&self) -> PathBuf {
        self.root.join(RESULTS)
    }

    /// Where results.json is written before it is renamed into place.
    pub(crate) fn results_tmp(&self) -> PathBuf {
        self.root.join(format!("{RESULTS}.tmp"))
    }

    /// Whether this is a run folder (it holds results.json), not a folder of repetitions.
    pub fn has_results(&self) -> bool {
        self.results().exists()
    }

    /// `scenario.toml`: the scenario file as run.
    pub fn scenario(&self) -> PathBuf {
        self.root.join(SCENARIO)
    }

    /// `summary.md`: the tables (of a run, or the spread over repetitions).
    pub fn summary(&self) -> PathBuf {
        self.root.join(SUMMARY)
    }

    /// `report.html`: the self-contained page.
    pub fn report_html(&self) -> PathBuf {
        self.root.join(REPORT)
    }

    /// `charts/`.
    pub fn charts(&self) -> PathBuf {
        self.root.join(CHARTS)
    }

    /// `charts/<name>.<ext>`, e.g. `charts/backlog.svg`.
    pub fn chart(&self, name: &str, ext: &str) -> PathBuf {
        self.root.join(RunDir::chart_link(name, ext))
    }

    /// A chart's path relative to the run folder, as report.html links it.
    pub fn chart_link(name: &str, ext: &str) -> String {
        format!("{CHARTS}/{name}.{ext}")
    }

    /// The history folder of variant `name`.
    pub fn variant(&self, name: &str) -> VariantDir {
        let rel = format!("{HISTORY}/{name}");
        VariantDir {
            path: self.root.join(&rel),
            rel,
        }
    }

    /// Repetition `n` (from 1) of a repeated run: `rep-<n>/`, itself a run folder.
    pub fn repetition(&self, n: u32) -> RunDir {
        RunDir::new(self.root.join(format!("{REPETITION}{n}")))
    }

    /// The repetitions of this folder that hold a results.json, in N order (`rep-2` before
    /// `rep-10`).
    pub fn repetitions(&self) -> Vec<RunDir> {
        let mut reps: Vec<(u32, RunDir)> = std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let n: u32 = e
                    .file_name()
                    .to_str()?
                    .strip_prefix(REPETITION)?
                    .parse()
                    .ok()?;
                let rep = RunDir::new(e.path());
                rep.has_results().then_some((n, rep))
            })
            .collect();
        reps.sort_by_key(|(n, _)| *n);
        reps.into_iter().map(|(_, r)| r).collect()
    }
}

/// One variant's history folder: what its workers, the coordinator and the nemesis write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantDir {
    path: PathBuf,
    /// Relative to the run folder, as results.json's `history_dir` holds it.
    rel: String,
}

impl VariantDir {
    /// The folder itself.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder relative to the run folder (`history/<variant>`).
    pub fn rel(&self) -> &str {
        &self.rel
    }

    /// `start_ns`: the load's start (monotonic ns), which series and fault times count from.
    pub fn start_ns(&self) -> PathBuf {
        self.path.join("start_ns")
    }

    /// The load's start as written, None before the load started.
    pub fn read_start_ns(&self) -> Option<u64> {
        std::fs::read_to_string(self.start_ns())
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// `broker-depth.jsonl`: the broker's own depth samples, a JSON object a line.
    pub fn broker_depth(&self) -> PathBuf {
        self.path.join("broker-depth.jsonl")
    }

    /// `dedup.sqlite`: the idempotent consumers' store (`consumer_dedup = "store"`), shared by
    /// the variant's consumers.
    pub fn dedup_store(&self) -> PathBuf {
        self.path.join("dedup.sqlite")
    }

    /// Worker `index` of `role` (`producer`, `consumer`): `consumer-0`, and for the
    /// `generation`-th replacement `consumer-0-r1`.
    fn worker_stem(role: &str, index: u16, generation: u32) -> String {
        match generation {
            0 => format!("{role}-{index}"),
            g => format!("{role}-{index}-r{g}"),
        }
    }

    /// A worker's history file (`producer-0.hist`).
    pub fn worker_history(&self, role: &str, index: u16, generation: u32) -> PathBuf {
        let stem = Self::worker_stem(role, index, generation);
        self.path.join(format!("{stem}.hist"))
    }

    /// A worker's stderr (`producer-0.log`).
    pub fn worker_log(&self, role: &str, index: u16, generation: u32) -> PathBuf {
        let stem = Self::worker_stem(role, index, generation);
        self.path.join(format!("{stem}.log"))
    }

    /// The history files of `role`, replacements included, in name order.
    pub fn histories(&self, role: &str) -> Vec<PathBuf> {
        let prefix = format!("{role}-");
        let mut v: Vec<PathBuf> = std::fs::read_dir(&self.path)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                name.starts_with(&prefix) && name.ends_with(".hist")
            })
            .collect();
        v.sort();
        v
    }

    /// The output of the `n`-th fault's external command (`fault-2-kill-broker.log`).
    pub fn fault_log(&self, n: usize, action: impl Display) -> PathBuf {
        self.path.join(format!("fault-{n}-{action}.log"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_file_of_a_run_folder() {
        let run = RunDir::new("/r/x");
        assert_eq!(run.results(), Path::new("/r/x/results.json"));
        assert_eq!(run.results_tmp(), Path::new("/r/x/results.json.tmp"));
        assert_eq!(run.scenario(), Path::new("/r/x/scenario.toml"));
        assert_eq!(run.summary(), Path::new("/r/x/summary.md"));
        assert_eq!(run.report_html(), Path::new("/r/x/report.html"));
        assert_eq!(
            run.chart("backlog", "svg"),
            Path::new("/r/x/charts/backlog.svg")
        );
        assert_eq!(run.repetition(3).path(), Path::new("/r/x/rep-3"));
        let v = run.variant("kafka acks");
        assert_eq!(v.rel(), "history/kafka acks");
        assert_eq!(v.path(), Path::new("/r/x/history/kafka acks"));
        assert_eq!(v.start_ns(), Path::new("/r/x/history/kafka acks/start_ns"));
        assert_eq!(
            v.broker_depth(),
            Path::new("/r/x/history/kafka acks/broker-depth.jsonl")
        );
        assert!(v.dedup_store().ends_with("kafka acks/dedup.sqlite"));
        assert!(v
            .worker_history("producer", 0, 0)
            .ends_with("producer-0.hist"));
        assert!(v
            .worker_log("consumer", 2, 1)
            .ends_with("consumer-2-r1.log"));
        assert!(v
            .fault_log(2, "kill-broker")
            .ends_with("fault-2-kill-broker.log"));
    }

    #[test]
    fn a_new_run_folder_is_named_by_its_utc_start_and_scenario() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_588_509);
        let run = RunDir::stamped(Path::new("reports"), at, "quickstart");
        assert_eq!(run.path(), Path::new("reports/20261125T063509Z-quickstart"));
    }

    #[test]
    fn repetitions_are_the_rep_folders_with_results_in_number_order() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        for n in [10, 2, 1] {
            let rep = run.repetition(n);
            std::fs::create_dir_all(rep.path()).unwrap();
            std::fs::write(rep.results(), "{}").unwrap();
        }
        // Not repetitions: no results.json, a name that is not rep-<number>.
        std::fs::create_dir_all(run.repetition(4).path()).unwrap();
        std::fs::create_dir_all(dir.path().join("rep-x")).unwrap();
        let names: Vec<_> = run
            .repetitions()
            .iter()
            .map(|r| r.path().file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["rep-1", "rep-2", "rep-10"]);
        assert!(!run.has_results());
        assert!(run.repetition(1).has_results());
    }

    #[test]
    fn histories_of_a_role_include_replacements_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let v = RunDir::new(dir.path()).variant("v");
        std::fs::create_dir_all(v.path()).unwrap();
        for f in [
            v.worker_history("consumer", 0, 1),
            v.worker_history("consumer", 0, 0),
            v.worker_history("producer", 0, 0),
            v.worker_log("consumer", 0, 0),
        ] {
            std::fs::write(f, "").unwrap();
        }
        let names: Vec<_> = v
            .histories("consumer")
            .iter()
            .map(|p| p.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["consumer-0-r1.hist", "consumer-0.hist"]);
        assert_eq!(v.read_start_ns(), None);
        std::fs::write(v.start_ns(), "12345\n").unwrap();
        assert_eq!(v.read_start_ns(), Some(12345));
    }
}
