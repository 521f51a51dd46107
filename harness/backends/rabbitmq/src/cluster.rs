//! Broker faults in the managed 3-node cluster: `kill-broker` SIGKILLs the node holding the
//! leader of the variant's first queue (a quorum queue's Raft leader, or the node a classic
//! queue lives on), found with `rabbitmq.sh leader`; `restart-broker` starts the nodes killed so
//! far. Each is noted in the broker's log and returned as the nodes it hit.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mq_core::plan::BrokerFault;
use mq_core::{BackendError, NodeHit};

use crate::script::{Leader, Node};
use crate::NAME;

/// How long a kill may look for the queue's leader (an election may be under way).
const LEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// One `rabbitmq.sh leader` call.
const LEADER_CALL: Duration = Duration::from_secs(25);

/// What the cluster's faults have done so far.
pub struct ClusterFaults {
    /// The queue whose leader `kill-broker` kills.
    queue: String,
    /// The broker's log (the script's output and our notes).
    log: PathBuf,
    /// Nodes killed and not restarted yet.
    killed: Vec<u8>,
    /// Bound of one start or kill.
    timeout: Duration,
}

impl ClusterFaults {
    pub fn new(queue: &str, log: &Path, timeout: Duration) -> ClusterFaults {
        ClusterFaults {
            queue: queue.to_owned(),
            log: log.to_owned(),
            killed: Vec::new(),
            timeout,
        }
    }

    /// Appends a line to the broker's log.
    fn note(&self, line: &str) {
        mq_core::script::note("rabbitmq", &self.log, line);
    }

    /// Carries out `fault` on `node` (the cluster).
    pub fn fault(&mut self, node: &Node, fault: BrokerFault) -> Result<Vec<NodeHit>, BackendError> {
        let err = |m: String| BackendError::other(NAME, format!("managed cluster: {m}"));
        match fault {
            BrokerFault::Kill => {
                let leader = self.leader(node).map_err(err)?;
                let id = leader.node;
                let role = if leader.queue_type == "quorum" {
                    format!("leader of queue {}", self.queue)
                } else {
                    format!("home of {} queue {}", leader.queue_type, self.queue)
                };
                self.note(&format!(
                    "kill-broker: killing node {id} ({}), the {role}",
                    node.address(id)
                ));
                node.run_on(&["kill"], Some(id), self.timeout, &self.log)
                    .map_err(err)?;
                if !self.killed.contains(&id) {
                    self.killed.push(id);
                }
                Ok(vec![NodeHit {
                    node: id.into(),
                    address: node.address(id),
                    role: Some(role),
                }])
            }
            BrokerFault::Restart => self.restart(node).map_err(err),
            BrokerFault::RemoveQueue => {
                Err(BackendError::other(NAME, "remove-queue is a sysv fault"))
            }
            // Not declared in the backend's info, so validation refuses them first.
            other => Err(BackendError::other(
                NAME,
                format!("{other:?} is not supported by the rabbitmq cluster"),
            )),
        }
    }

    /// Starts the killed nodes again (none killed: starts whichever is down).
    fn restart(&mut self, node: &Node) -> Result<Vec<NodeHit>, String> {
        if self.killed.is_empty() {
            self.note("restart-broker: no node was killed; starting any node that is down");
            return node
                .run("start", self.timeout, &self.log)
                .map(|()| Vec::new());
        }
        let mut hit = Vec::new();
        while let Some(&id) = self.killed.first() {
            self.note(&format!(
                "restart-broker: starting node {id} ({})",
                node.address(id)
            ));
            node.run_on(&["start"], Some(id), self.timeout, &self.log)?;
            self.killed.remove(0);
            self.note(&format!("restart-broker: node {id} is back"));
            hit.push(NodeHit {
                node: id.into(),
                address: node.address(id),
                role: Some("killed earlier".into()),
            });
        }
        Ok(hit)
    }

    /// The queue's leader, asked again while there is none (an election after an earlier kill).
    fn leader(&self, node: &Node) -> Result<Leader, String> {
        let deadline = Instant::now() + LEADER_TIMEOUT;
        loop {
            match node.leader(&self.queue, LEADER_CALL, &self.log) {
                Ok(l) => return Ok(l),
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!(
                        "the leader of queue {}: none found within {}s: {e}",
                        self.queue,
                        LEADER_TIMEOUT.as_secs()
                    ))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        }
    }
}
