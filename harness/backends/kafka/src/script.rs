//! Runs `scripts/brokers/kafka.sh` for a managed broker (a single node or the 3-node cluster),
//! with a bound on every call.
//!
//! The script's output goes to a log file, not a pipe: the node it starts is detached and must
//! not hold our pipe open.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A private broker as the script knows it: its port (controller: port + 1) and data dir; or
/// the 3-node cluster (`nodes = 3`), whose ports the script fixes (19092/29092/39092, controllers
/// + 1; `port` is then node 1's).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Node {
    pub script: PathBuf,
    pub port: u16,
    pub dir: PathBuf,
    /// 1 (a single node) or 3 (the cluster).
    #[serde(default = "one")]
    pub nodes: u8,
    /// The cluster in network namespaces: node N's address (empty: all on 127.0.0.1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// And node N's namespace (`KAFKA_NETNS`), made by the coordinator's network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Broker properties `k=v` added to every node's server.properties (`KAFKA_OVERRIDES`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
}

fn one() -> u8 {
    1
}

/// Nodes of the managed cluster (`kafka.sh --nodes 3`).
pub const CLUSTER_NODES: u8 = 3;

/// Broker port of node `id` (1..=3) of the cluster, as `kafka.sh --nodes 3` fixes it
/// (19092/29092/39092; controllers + 1).
fn cluster_port(id: u8) -> u16 {
    u16::from(id) * 10000 + 9092
}

/// The cluster's broker ports, `19092/29092/39092`.
pub fn cluster_ports() -> String {
    (1..=CLUSTER_NODES)
        .map(|id| cluster_port(id).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// Every broker of the managed cluster, `host:port,…`.
pub fn cluster_bootstrap() -> String {
    (1..=CLUSTER_NODES)
        .map(|id| format!("127.0.0.1:{}", cluster_port(id)))
        .collect::<Vec<_>>()
        .join(",")
}

impl Node {
    /// A single node on `port`.
    pub fn new(port: u16, dir: PathBuf) -> Node {
        Node {
            script: script_path(),
            port,
            dir,
            nodes: 1,
            hosts: Vec::new(),
            namespaces: Vec::new(),
            overrides: Vec::new(),
        }
    }

    /// The 3-node cluster (`kafka.sh --nodes 3`) in `dir`.
    pub fn cluster(dir: PathBuf) -> Node {
        Node {
            script: script_path(),
            port: cluster_port(1),
            dir,
            nodes: CLUSTER_NODES,
            hosts: Vec::new(),
            namespaces: Vec::new(),
            overrides: Vec::new(),
        }
    }

    /// The cluster with node N at `hosts[N-1]` inside namespace `namespaces[N-1]`.
    pub fn cluster_in(dir: PathBuf, hosts: Vec<String>, namespaces: Vec<String>) -> Node {
        Node {
            hosts,
            namespaces,
            ..Node::cluster(dir)
        }
    }

    /// Node `id`'s host: its namespace's address, or 127.0.0.1.
    fn host(&self, id: u8) -> &str {
        let i = usize::from(id.max(1) - 1);
        self.hosts.get(i).map_or("127.0.0.1", String::as_str)
    }

    /// Whether this is the 3-node cluster.
    pub fn is_cluster(&self) -> bool {
        self.nodes == CLUSTER_NODES
    }

    /// `host:port` of node `id` (1..=3) of the cluster, or of the single node.
    pub fn address(&self, id: u8) -> String {
        if self.is_cluster() {
            format!("{}:{}", self.host(id), cluster_port(id))
        } else {
            format!("127.0.0.1:{}", self.port)
        }
    }

    /// Every broker, `host:port,…`.
    pub fn bootstrap(&self) -> String {
        if self.is_cluster() {
            (1..=self.nodes)
                .map(|id| self.address(id))
                .collect::<Vec<_>>()
                .join(",")
        } else {
            self.address(1)
        }
    }

    /// For messages: `127.0.0.1:9092` or `the 3-node cluster 127.0.0.1:19092,…`.
    pub fn describe(&self) -> String {
        if self.is_cluster() && !self.namespaces.is_empty() {
            format!(
                "the 3-node cluster {} in namespaces {}",
                self.bootstrap(),
                self.namespaces.join(", ")
            )
        } else if self.is_cluster() {
            format!("the 3-node cluster {}", self.bootstrap())
        } else {
            format!("127.0.0.1:{}", self.port)
        }
    }

    /// The pid file of node `id` (`kafka.sh` writes it at start; a single node is node 1).
    pub fn pid_file(&self, id: u8) -> PathBuf {
        self.dir.join(format!("node-{id}")).join("kafka.pid")
    }

    /// The pid files of every node (each node's JVM).
    pub fn pid_files(&self) -> Vec<PathBuf> {
        (1..=self.nodes.max(1))
            .map(|id| self.pid_file(id))
            .collect()
    }

    /// Runs `kafka.sh CMD --port P --dir D` (cluster: `--nodes 3` instead of `--port`),
    /// appending its output to `log`; kills it after `timeout`. The error carries the end of
    /// the output.
    pub fn run(&self, cmd: &str, timeout: Duration, log: &Path) -> Result<(), String> {
        self.run_on(cmd, None, timeout, log)
    }

    /// [`Node::run`] on one node of the cluster (`--node N`) when `node` is given.
    pub fn run_on(
        &self,
        cmd: &str,
        node: Option<u8>,
        timeout: Duration,
        log: &Path,
    ) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let mut args = vec![cmd.to_owned()];
        if self.is_cluster() {
            args.extend(["--nodes".into(), "3".into()]);
            if let Some(n) = node {
                args.extend(["--node".into(), n.to_string()]);
            }
        } else {
            args.extend(["--port".into(), self.port.to_string()]);
        }
        args.extend([
            "--dir".into(),
            self.dir.display().to_string(),
            "--timeout".into(),
            timeout.as_secs().saturating_sub(5).max(10).to_string(),
        ]);
        let joined = [
            ("KAFKA_HOSTS", self.hosts.join(" ")),
            ("KAFKA_NETNS", self.namespaces.join(" ")),
            ("KAFKA_OVERRIDES", self.overrides.join(" ")),
        ];
        let env: Vec<(&str, &str)> = (joined.iter())
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        mq_core::script::run(&self.script, &args, &env, timeout, log)
    }
}

/// `scripts/brokers/kafka.sh`.
pub fn script_path() -> PathBuf {
    mq_core::script::broker_script("kafka.sh")
}

/// Why a managed broker cannot run here, if it cannot (`kafka.sh libs` fails when the jars
/// are not installed).
pub fn missing() -> Option<String> {
    let script = script_path();
    if let Some(m) = mq_core::script::not_found(&script) {
        return Some(m);
    }
    let out = Command::new("bash")
        .arg(&script)
        .arg("libs")
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => None,
        // The script's own message ends with how to install; the skip line says that once.
        Ok(o) => Some(match String::from_utf8_lossy(&o.stderr).trim() {
            "" => "Kafka is not installed".to_owned(),
            why => why
                .trim_start_matches("[kafka] ERROR: ")
                .split(": run ")
                .next()
                .unwrap_or(why)
                .to_owned(),
        }),
        Err(e) => Some(format!("cannot run {}: {e}", script.display())),
    }
}
