//! Runs one of the repository's shell scripts (`scripts/brokers/*.sh`) with a bound on its time.
//!
//! Output goes to a log file, not a pipe: a broker the script starts is detached and must not
//! hold our pipe open. A failure carries the last lines the script printed.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `scripts/brokers/<name>` of the repository (see [`crate::paths::scripts_dir`]).
pub fn broker_script(name: &str) -> PathBuf {
    crate::paths::scripts_dir().join("brokers").join(name)
}

/// Appends `mq-bench: <line>` to a managed broker's log (where its script's output goes too),
/// and logs it; a log that cannot be written is a warning, not an error.
pub fn note(backend: &str, log: &Path, line: &str) {
    use std::io::Write;
    tracing::info!("{backend}: {line}");
    let written = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .and_then(|mut f| writeln!(f, "mq-bench: {line}"));
    if let Err(e) = written {
        tracing::warn!("{backend}: cannot write to {}: {e}", log.display());
    }
}

/// Why `script` cannot be run, when it is not there.
pub fn not_found(script: &Path) -> Option<String> {
    (!script.is_file()).then(|| {
        format!(
            "{} not found (set $MQ_BENCH_SCRIPTS to the repository's scripts/)",
            script.display()
        )
    })
}

/// Runs `bash SCRIPT ARGS…` with `env`, appending its output to `log`; kills it after `timeout`.
pub fn run(
    script: &Path,
    args: &[String],
    env: &[(&str, &str)],
    timeout: Duration,
    log: &Path,
) -> Result<(), String> {
    let mut out = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(log)
        .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    let start_len = out.seek(SeekFrom::End(0)).unwrap_or(0);
    let name = script.file_name().map_or_else(
        || script.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let shown = format!("`{name} {}`", args.join(" "));
    let mut child = Command::new("bash")
        .arg(script)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(out.try_clone().map_err(|e| e.to_string())?)
        .stderr(out.try_clone().map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{shown} did not finish within {}s: {}",
                    timeout.as_secs(),
                    tail(&mut out, start_len)
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(format!("waiting for {shown}: {e}")),
        }
    };
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{shown} failed ({status}): {}",
            tail(&mut out, start_len)
        ))
    }
}

/// The last few non-empty lines written to `f` after offset `from`, joined by ` | `.
fn tail(f: &mut File, from: u64) -> String {
    let mut s = String::new();
    if f.seek(SeekFrom::Start(from)).is_ok() {
        let _ = f.read_to_string(&mut s);
    }
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(6)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_carry_the_output_and_timeouts_are_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s.sh");
        std::fs::write(&script, "echo \"hello $WHO\"\n[ \"$1\" = ok ] || { echo boom >&2; exit 3; }\n[ -z \"$2\" ] || sleep \"$2\"\n").unwrap();
        let log = dir.path().join("log");
        let env = [("WHO", "world")];
        assert_eq!(
            run(&script, &["ok".into()], &env, Duration::from_secs(10), &log),
            Ok(())
        );
        let e = run(&script, &["no".into()], &env, Duration::from_secs(10), &log).unwrap_err();
        assert!(
            e.contains("`s.sh no` failed") && e.contains("hello world | boom"),
            "{e}"
        );
        let e = run(
            &script,
            &["ok".into(), "5".into()],
            &env,
            Duration::from_millis(300),
            &log,
        )
        .unwrap_err();
        assert!(e.contains("did not finish within 0s"), "{e}");
    }
}
