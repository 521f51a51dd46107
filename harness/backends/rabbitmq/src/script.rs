//! Runs `scripts/brokers/rabbitmq.sh` for a managed node, with a bound on every call.
//!
//! The script's output goes to a log file, not a pipe: the node it starts is detached and must
//! not hold our pipe open.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Where the Debian package puts the server; the script needs it.
pub const SERVER_BIN: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// A private node as the script knows it: its port, data dir and Erlang node name.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Node {
    pub script: PathBuf,
    pub port: u16,
    pub dir: PathBuf,
    /// `RABBITMQ_NODENAME`: one per port, so nodes on other ports never collide in epmd.
    pub nodename: String,
}

impl Node {
    pub fn new(port: u16, dir: PathBuf) -> Node {
        Node {
            script: script_path(),
            port,
            dir,
            nodename: format!("mqb-{port}@localhost"),
        }
    }

    /// Runs `rabbitmq.sh CMD --port P --dir D`, appending its output to `log`; kills it after
    /// `timeout`. The error carries the end of the output.
    pub fn run(&self, cmd: &str, timeout: Duration, log: &Path) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let mut out = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(log)
            .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
        let start_len = out.seek(SeekFrom::End(0)).unwrap_or(0);
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut child = Command::new("bash")
            .arg(&self.script)
            .arg(cmd)
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--dir")
            .arg(&self.dir)
            .arg("--timeout")
            .arg(timeout.as_secs().saturating_sub(5).max(10).to_string())
            .env("RABBITMQ_NODENAME", &self.nodename)
            .stdin(Stdio::null())
            .stdout(out.try_clone().map_err(|e| e.to_string())?)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.script.display()))?;
        let deadline = Instant::now() + timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "`rabbitmq.sh {cmd}` did not finish within {}s: {}",
                        timeout.as_secs(),
                        tail(&mut out, start_len)
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(100)),
                Err(e) => return Err(format!("waiting for rabbitmq.sh {cmd}: {e}")),
            }
        };
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "`rabbitmq.sh {cmd} --port {}` failed ({status}): {}",
                self.port,
                tail(&mut out, start_len)
            ))
        }
    }
}

/// `scripts/brokers/rabbitmq.sh`.
pub fn script_path() -> PathBuf {
    mq_core::paths::scripts_dir()
        .join("brokers")
        .join("rabbitmq.sh")
}

/// Why a managed node cannot run here, if it cannot.
pub fn missing() -> Option<String> {
    let script = script_path();
    if !script.is_file() {
        return Some(format!(
            "{} not found (set $MQ_BENCH_SCRIPTS to the repository's scripts/)",
            script.display()
        ));
    }
    if !Path::new(SERVER_BIN).exists() {
        return Some(format!(
            "RabbitMQ is not installed ({SERVER_BIN} is missing)"
        ));
    }
    None
}

/// The last lines the script wrote since `from`, on one line.
fn tail(f: &mut File, from: u64) -> String {
    let mut s = String::new();
    if f.seek(SeekFrom::Start(from)).is_ok() {
        let _ = f.read_to_string(&mut s);
    }
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(6)..].join(" | ")
}
