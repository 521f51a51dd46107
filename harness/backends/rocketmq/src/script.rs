//! Runs `scripts/brokers/rocketmq.sh` for a managed name server + broker, with a bound on every
//! call. The flush policy goes to every call, so a restart keeps the variant's durability.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mq_core::managed::Script;

use crate::options::BROKER_PORT_OFFSET;

/// A private name server and broker as the script knows them.
#[derive(Debug, Clone)]
pub struct Node {
    pub script: PathBuf,
    /// The name server's port; the broker's is this + [`BROKER_PORT_OFFSET`].
    pub port: u16,
    pub dir: PathBuf,
    /// `sync` (SYNC_FLUSH) or `async` (ASYNC_FLUSH).
    pub flush: &'static str,
}

impl Node {
    pub fn new(port: u16, dir: PathBuf, sync_flush: bool) -> Node {
        Node {
            script: script_path(),
            port,
            dir,
            flush: if sync_flush { "sync" } else { "async" },
        }
    }

    /// The broker's address (what the name server lists).
    pub fn broker_addr(&self) -> String {
        format!("127.0.0.1:{}", self.port + BROKER_PORT_OFFSET)
    }

    /// The pid file of the broker (the name server is not faulted, nor counted).
    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("broker.pid")
    }
}

impl Script for Node {
    fn describe(&self) -> String {
        format!(
            "name server 127.0.0.1:{} + broker {}",
            self.port,
            self.broker_addr()
        )
    }

    fn run(&self, cmd: &str, timeout: Duration, log: &Path) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let args: Vec<String> = vec![
            cmd.into(),
            "--port".into(),
            self.port.to_string(),
            "--flush".into(),
            self.flush.into(),
            "--dir".into(),
            self.dir.display().to_string(),
            "--timeout".into(),
            timeout.as_secs().saturating_sub(5).max(10).to_string(),
        ];
        mq_core::script::run(&self.script, &args, &[], timeout, log)
    }
}

/// `scripts/brokers/rocketmq.sh`.
pub fn script_path() -> PathBuf {
    mq_core::script::broker_script("rocketmq.sh")
}

/// Why a managed broker cannot run here, if it cannot: the script, java, python3 (its
/// readiness probe) and the installed jars.
pub fn missing() -> Option<String> {
    let script = script_path();
    if let Some(m) = mq_core::script::not_found(&script) {
        return Some(m);
    }
    for tool in ["java", "python3"] {
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
        if !found {
            return Some(format!(
                "{tool} is not on PATH (scripts/brokers/rocketmq.sh needs it)"
            ));
        }
    }
    let cache = std::env::var_os("MQ_BENCH_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/mq-bench")))?;
    let installed = cache.join(format!("rocketmq-{}/.installed", crate::SERVER_VERSION));
    (!installed.is_file()).then(|| {
        format!(
            "RocketMQ {} is not installed ({} is missing)",
            crate::SERVER_VERSION,
            installed.display()
        )
    })
}
