//! Runs `scripts/brokers/rabbitmq.sh` for a managed node or the 3-node cluster, with a bound on
//! every call.
//!
//! The script's output goes to a log file, not a pipe: the node it starts is detached and must
//! not hold our pipe open. What a call answers (the leader of a queue) is read back from there.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::options::CLUSTER_NODES;

/// Where the Debian package puts the server; the script needs it.
pub const SERVER_BIN: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// A private node as the script knows it: its port, data dir and Erlang node name; or the
/// cluster (`nodes = 3`), whose node N listens on `port + N - 1` and is named
/// `mqb-<its port>@localhost` by the script.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Node {
    pub script: PathBuf,
    pub port: u16,
    pub dir: PathBuf,
    /// `RABBITMQ_NODENAME` of a single node: one per port, so nodes on other ports never
    /// collide in epmd.
    pub nodename: String,
    /// 1 (a single node) or 3 (the cluster).
    #[serde(default = "one")]
    pub nodes: u8,
}

fn one() -> u8 {
    1
}

/// Where a queue lives, as `rabbitmq.sh leader` says: the node of its leader (quorum) or of
/// the queue itself (classic), and the queue's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    pub node: u8,
    pub queue_type: String,
}

impl Node {
    /// A single node on `port`.
    pub fn new(port: u16, dir: PathBuf) -> Node {
        Node {
            script: script_path(),
            port,
            dir,
            nodename: format!("mqb-{port}@localhost"),
            nodes: 1,
        }
    }

    /// The 3-node cluster (`rabbitmq.sh --nodes 3`) from `port` on, in `dir`.
    pub fn cluster(port: u16, dir: PathBuf) -> Node {
        Node {
            nodes: CLUSTER_NODES,
            ..Node::new(port, dir)
        }
    }

    /// Whether this is the cluster.
    pub fn is_cluster(&self) -> bool {
        self.nodes == CLUSTER_NODES
    }

    /// `127.0.0.1:port` of node `id` (1..=3) of the cluster, or of the single node.
    pub fn address(&self, id: u8) -> String {
        format!("127.0.0.1:{}", self.port + u16::from(id.max(1)) - 1)
    }

    /// For messages: `127.0.0.1:5672` or `the 3-node cluster 127.0.0.1:5771,…`.
    /// The pid files of every node (each node's Erlang VM, beam.smp, as `rabbitmq.sh`
    /// writes them: `DIR/rabbitmq.pid`, in a cluster `DIR/node-N/rabbitmq.pid`).
    pub fn pid_files(&self) -> Vec<PathBuf> {
        if self.nodes <= 1 {
            return vec![self.dir.join("rabbitmq.pid")];
        }
        (1..=self.nodes)
            .map(|id| self.dir.join(format!("node-{id}")).join("rabbitmq.pid"))
            .collect()
    }

    pub fn describe(&self) -> String {
        if self.is_cluster() {
            let all: Vec<String> = (1..=self.nodes).map(|id| self.address(id)).collect();
            format!("the {}-node cluster {}", self.nodes, all.join(","))
        } else {
            self.address(1)
        }
    }

    /// Runs `rabbitmq.sh CMD --port P --dir D` (cluster: `--nodes 3`), appending its output to
    /// `log`; kills it after `timeout`. The error carries the end of the output.
    pub fn run(&self, cmd: &str, timeout: Duration, log: &Path) -> Result<(), String> {
        self.run_on(&[cmd], None, timeout, log)
    }

    /// [`Node::run`] of `words` (a command and its arguments) on node `node` of the cluster
    /// (`--node N`) when given.
    pub fn run_on(
        &self,
        words: &[&str],
        node: Option<u8>,
        timeout: Duration,
        log: &Path,
    ) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let mut args: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
        args.extend(["--port".into(), self.port.to_string()]);
        if self.is_cluster() {
            args.extend(["--nodes".into(), self.nodes.to_string()]);
            if let Some(n) = node {
                args.extend(["--node".into(), n.to_string()]);
            }
        }
        args.extend([
            "--dir".into(),
            self.dir.display().to_string(),
            "--timeout".into(),
            timeout.as_secs().saturating_sub(5).max(10).to_string(),
        ]);
        let env = [("RABBITMQ_NODENAME", self.nodename.as_str())];
        mq_core::script::run(&self.script, &args, &env, timeout, log)
    }

    /// Which node holds `queue`'s leader (`rabbitmq.sh leader`), within `timeout`.
    pub fn leader(&self, queue: &str, timeout: Duration, log: &Path) -> Result<Leader, String> {
        let from = std::fs::metadata(log).map_or(0, |m| m.len());
        self.run_on(&["leader", queue], None, timeout, log)?;
        let mut said = String::new();
        std::fs::File::open(log)
            .and_then(|mut f| {
                f.seek(SeekFrom::Start(from))?;
                f.read_to_string(&mut said)
            })
            .map_err(|e| format!("reading {}: {e}", log.display()))?;
        parse_leader(&said, self.nodes)
    }
}

/// The `leader=N type=T` line of `rabbitmq.sh leader`'s output, N one of the `nodes`.
fn parse_leader(said: &str, nodes: u8) -> Result<Leader, String> {
    let line = said
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("leader="))
        .ok_or_else(|| format!("rabbitmq.sh leader said no leader=: {:?}", said.trim()))?;
    let (node, queue_type) = line.split_once(" type=").unwrap_or((line, "?"));
    match node.parse::<u8>() {
        Ok(n) if (1..=nodes).contains(&n) => Ok(Leader {
            node: n,
            queue_type: queue_type.trim().to_owned(),
        }),
        _ => Err(format!(
            "rabbitmq.sh leader named node {node:?}, not one of 1 to {nodes}"
        )),
    }
}

/// `scripts/brokers/rabbitmq.sh`.
pub fn script_path() -> PathBuf {
    mq_core::script::broker_script("rabbitmq.sh")
}

/// Why a managed node cannot run here, if it cannot.
pub fn missing() -> Option<String> {
    let script = script_path();
    if let Some(m) = mq_core::script::not_found(&script) {
        return Some(m);
    }
    if !Path::new(SERVER_BIN).exists() {
        return Some(format!(
            "RabbitMQ is not installed ({SERVER_BIN} is missing)"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leader_line_names_a_node_of_the_cluster() {
        let said = "[rabbitmq] noise\nleader=2 type=quorum\n[rabbitmq] more noise\n";
        assert_eq!(
            parse_leader(said, 3),
            Ok(Leader {
                node: 2,
                queue_type: "quorum".into()
            })
        );
        assert_eq!(parse_leader("leader=1 type=classic", 1).unwrap().node, 1);
        assert!(parse_leader("leader=4 type=quorum", 3)
            .unwrap_err()
            .contains("not one of 1 to 3"));
        assert!(parse_leader("leader=x", 3).is_err());
        assert!(parse_leader("[rabbitmq] ERROR: queue q not found", 3)
            .unwrap_err()
            .contains("no leader="));
    }

    #[test]
    fn cluster_nodes_listen_on_consecutive_ports() {
        let c = Node::cluster(5771, PathBuf::from("/x"));
        assert_eq!(c.address(3), "127.0.0.1:5773");
        assert_eq!(
            c.describe(),
            "the 3-node cluster 127.0.0.1:5771,127.0.0.1:5772,127.0.0.1:5773"
        );
        let n = Node::new(5672, PathBuf::from("/x"));
        assert_eq!(n.describe(), "127.0.0.1:5672");
        assert!(!n.is_cluster());
    }
}
