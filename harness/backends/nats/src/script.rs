//! Runs `scripts/brokers/nats.sh` for a managed server, with a bound on every call.
//!
//! The script's output goes to a log file, not a pipe: the server it starts is detached and
//! must not hold our pipe open.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A private server as the script knows it: its port, data dir and JetStream sync interval.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Node {
    pub script: PathBuf,
    pub port: u16,
    pub dir: PathBuf,
    /// `sync_interval` of its JetStream (`always`: fsync every write); None: the server's
    /// default (2 minutes).
    #[serde(default)]
    pub sync: Option<String>,
    /// 1 (a single server) or 3 (the cluster: node N on `port + N - 1`, its data in
    /// `dir/node-N`).
    #[serde(default = "one")]
    pub nodes: u8,
}

fn one() -> u8 {
    1
}

impl Node {
    /// A server on `port` with its data in `dir`.
    pub fn new(port: u16, dir: PathBuf, sync: Option<String>) -> Node {
        Node {
            script: script_path(),
            port,
            dir,
            sync,
            nodes: 1,
        }
    }

    /// The 3-node cluster from `port` on, in `dir`.
    pub fn cluster(port: u16, dir: PathBuf, sync: Option<String>) -> Node {
        Node {
            nodes: crate::options::CLUSTER_NODES,
            ..Node::new(port, dir, sync)
        }
    }

    /// `127.0.0.1:port` of node `id` (1..=3) of the cluster, or of the single server.
    pub fn address(&self, id: u8) -> String {
        format!("127.0.0.1:{}", self.port + u16::from(id.max(1)) - 1)
    }

    /// For messages: `127.0.0.1:4222` or `the 3-node cluster 127.0.0.1:4222,…`.
    pub fn describe(&self) -> String {
        if self.nodes <= 1 {
            return self.address(1);
        }
        let all: Vec<String> = (1..=self.nodes).map(|id| self.address(id)).collect();
        format!("the {}-node cluster {}", self.nodes, all.join(","))
    }

    /// The pid files the script writes, node 1 first.
    pub fn pid_files(&self) -> Vec<PathBuf> {
        if self.nodes <= 1 {
            return vec![self.dir.join("nats.pid")];
        }
        (1..=self.nodes)
            .map(|id| self.dir.join(format!("node-{id}")).join("nats.pid"))
            .collect()
    }

    /// Runs `nats.sh CMD --port P --dir D [--sync S]`, appending its output to `log`; kills it
    /// after `timeout`. The error carries the end of the output.
    pub fn run(&self, cmd: &str, timeout: Duration, log: &Path) -> Result<(), String> {
        self.run_on(cmd, None, timeout, log)
    }

    /// [`Node::run`] on node `node` of the cluster only (`--node N`) when given.
    pub fn run_on(
        &self,
        cmd: &str,
        node: Option<u8>,
        timeout: Duration,
        log: &Path,
    ) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let mut args = vec![
            cmd.to_owned(),
            "--port".into(),
            self.port.to_string(),
            "--dir".into(),
            self.dir.display().to_string(),
            "--timeout".into(),
            timeout.as_secs().saturating_sub(5).max(10).to_string(),
        ];
        if let Some(s) = &self.sync {
            args.extend(["--sync".into(), s.clone()]);
        }
        if self.nodes > 1 {
            args.extend(["--nodes".into(), self.nodes.to_string()]);
            if let Some(n) = node {
                args.extend(["--node".into(), n.to_string()]);
            }
        }
        mq_core::script::run(&self.script, &args, &[], timeout, log)
    }
}

/// `scripts/brokers/nats.sh`.
pub fn script_path() -> PathBuf {
    mq_core::script::broker_script("nats.sh")
}

/// Where `nats.sh install` puts the server.
pub fn server_bin() -> PathBuf {
    let cache = std::env::var_os("MQ_BENCH_CACHE").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache")
                .join("mq-bench")
        },
        PathBuf::from,
    );
    cache.join("nats-bin").join("nats-server")
}

/// Why a managed server cannot run here, if it cannot.
pub fn missing() -> Option<String> {
    let script = script_path();
    if let Some(m) = mq_core::script::not_found(&script) {
        return Some(m);
    }
    let bin = server_bin();
    (!bin.is_file()).then(|| {
        format!(
            "nats-server is not installed ({} is missing)",
            bin.display()
        )
    })
}

/// `nats-server --version` of the installed server, e.g. `v2.15.2`.
pub fn server_version() -> Option<String> {
    let o = std::process::Command::new(server_bin())
        .arg("--version")
        .output()
        .ok()?;
    let s = String::from_utf8_lossy(&o.stdout);
    // "nats-server: v2.15.2"
    Some(s.trim().rsplit(' ').next()?.to_owned()).filter(|v| o.status.success() && !v.is_empty())
}
