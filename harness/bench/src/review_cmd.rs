//! `bench review`: judges the variants of one or more run folders against a team's
//! requirements; exit 0 when some variant meets every requirement, 1 when none does, 2 on bad
//! input.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use mq_core::requirements::Requirements;
use mq_report::review::{self, Source};
use mq_report::review_page;
use mq_results::{RunDir, RunResults};

#[derive(clap::Args, Debug)]
pub struct ReviewArgs {
    /// Run folders (or results.json files, or folders of rep-N/ repetitions) of the study.
    #[arg(required = true, num_args = 1..)]
    pub runs: Vec<PathBuf>,
    /// The requirements (a TOML file with a `[requirements]` table, e.g. the scenario itself)
    /// [default: the first run's scenario's requirements].
    #[arg(long, value_name = "FILE")]
    pub requirements: Option<PathBuf>,
    /// Also write review.md and review.html into this folder.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Every run given, a folder of repetitions as its repetitions, each with its label.
fn load_runs(paths: &[PathBuf]) -> anyhow::Result<Vec<(String, String, RunResults)>> {
    let mut runs = Vec::new();
    for p in paths {
        let dir = RunDir::new(p);
        let one = |p: &Path| -> anyhow::Result<(String, String, RunResults)> {
            let loaded = mq_report::load(p)?;
            let folder = if p.is_dir() {
                p
            } else {
                p.parent().unwrap_or(p)
            };
            let folder = folder.canonicalize().unwrap_or_else(|_| folder.to_owned());
            let label = (folder.file_name()).map_or_else(
                || folder.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            Ok((label, format!("{}/", folder.display()), loaded.results))
        };
        if p.is_dir() && !dir.has_results() && !dir.repetitions().is_empty() {
            for rep in dir.repetitions() {
                runs.push(one(rep.path())?);
            }
        } else {
            runs.push(one(p).with_context(|| format!("reading run {}", p.display()))?);
        }
    }
    Ok(runs)
}

fn requirements(
    a: &ReviewArgs,
    runs: &[(String, String, RunResults)],
) -> anyhow::Result<Requirements> {
    if let Some(f) = &a.requirements {
        return Ok(Requirements::load(f)?);
    }
    runs.iter()
        .find_map(|(_, _, r)| r.scenario.requirements.clone())
        .context("no requirements: pass --requirements FILE (a TOML file with a [requirements] table) or write [requirements] in the scenario")
}

fn write_page(
    out: &Path,
    req: &Requirements,
    sources: &[Source<'_>],
    r: &review::Review,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (name, text) in [
        ("review.md", review_page::markdown(req, sources, r)),
        ("review.html", review_page::html(req, sources, r)),
    ] {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

pub fn review(a: &ReviewArgs) -> ExitCode {
    let judged = (|| -> anyhow::Result<bool> {
        let runs = load_runs(&a.runs)?;
        let req = requirements(a, &runs)?;
        let sources: Vec<Source<'_>> = runs
            .iter()
            .map(|(label, base, results)| Source {
                label: label.clone(),
                base: base.clone(),
                results,
            })
            .collect();
        let r = review::review(&req, &sources);
        print!("{}", review_page::markdown(&req, &sources, &r));
        if let Some(out) = &a.out {
            write_page(out, &req, &sources, &r)?;
        }
        Ok(r.any_meets_all())
    })();
    match judged {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
