//! Node faults of a managed broker: in the cluster kill-broker (the leader of partition 0) and
//! restart-broker (the killed nodes); pause-broker / resume-broker (SIGSTOP / SIGCONT a node,
//! as a GC pause or a stalled VM would), and, with the cluster in network namespaces
//! (`netns = true`), partition, heal and slow-link on the links between its nodes and the
//! clients (carried out by [`mq_netns::Network`]).

use std::time::{Duration, Instant};

use mq_core::plan::{BrokerFault, ClientSide, FaultSpec, NodeRole, NodeTarget};
use mq_core::{BackendError, NodeHit};
use mq_netns::{Endpoint, Shape};

use super::{KafkaBroker, LEADER_TIMEOUT, START_TIMEOUT};
use crate::script::Node;
use crate::NAME;

fn err(m: impl Into<String>) -> BackendError {
    BackendError::other(NAME, m.into())
}

impl KafkaBroker {
    /// The broker id of the current leader of partition 0 of the run's topic (in the managed
    /// cluster, broker id = node number), retried while there is none.
    pub(super) fn leader_of_partition_0(&mut self) -> Result<i32, BackendError> {
        let (topic, bootstrap) = (self.topic.clone(), self.bootstrap.clone());
        let admin = self.admin()?;
        let deadline = Instant::now() + LEADER_TIMEOUT;
        loop {
            let found = match admin
                .inner()
                .fetch_metadata(Some(&topic), Duration::from_secs(5))
            {
                Ok(md) => md
                    .topics()
                    .iter()
                    .find(|t| t.name() == topic)
                    .and_then(|t| t.partitions().iter().find(|p| p.id() == 0))
                    .map(|p| p.leader())
                    .filter(|&l| l >= 0)
                    .ok_or_else(|| "partition 0 has no leader".to_owned()),
                Err(e) => Err(e.to_string()),
            };
            match found {
                Ok(leader) => return Ok(leader),
                Err(e) if Instant::now() >= deadline => {
                    return Err(BackendError::other(
                        NAME,
                        format!(
                            "the leader of partition 0 of {topic} on {bootstrap}: none found within {}s: {e}",
                            LEADER_TIMEOUT.as_secs()
                        ),
                    ))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// Cluster faults: kill the leader of partition 0 / start the killed nodes again.
    pub(super) fn cluster_fault(
        &mut self,
        node: &Node,
        fault: BrokerFault,
    ) -> Result<Vec<NodeHit>, BackendError> {
        let err = |m: String| BackendError::other(NAME, format!("managed cluster: {m}"));
        match fault {
            BrokerFault::Kill => {
                let leader = self.leader_of_partition_0()?;
                let id = u8::try_from(leader)
                    .ok()
                    .filter(|id| (1..=node.nodes).contains(id))
                    .ok_or_else(|| {
                        err(format!(
                            "the leader of partition 0 is broker {leader}, not one of nodes 1 to {}",
                            node.nodes
                        ))
                    })?;
                self.note(&format!(
                    "kill-broker: killing node {id} ({}), the leader of partition 0 of {}",
                    node.address(id),
                    self.topic
                ));
                node.run_on("kill", Some(id), START_TIMEOUT, &self.log)
                    .map_err(err)?;
                if !self.killed.contains(&id) {
                    self.killed.push(id);
                }
                self.note(&format!("kill-broker: node {id} killed"));
                Ok(vec![NodeHit {
                    node: id.into(),
                    address: node.address(id),
                    role: Some("leader of partition 0".into()),
                }])
            }
            BrokerFault::Restart => {
                if self.killed.is_empty() {
                    // Nothing killed by us: start whatever is not running.
                    self.note("restart-broker: no node was killed; starting any node that is down");
                    return node
                        .run("start", START_TIMEOUT, &self.log)
                        .map(|()| Vec::new())
                        .map_err(err);
                }
                let mut hit = Vec::new();
                while let Some(&id) = self.killed.first() {
                    self.note(&format!(
                        "restart-broker: starting node {id} ({})",
                        node.address(id)
                    ));
                    node.run_on("start", Some(id), START_TIMEOUT, &self.log)
                        .map_err(err)?;
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
            other => Err(BackendError::other(
                NAME,
                format!("{other:?} is not a kill or restart"),
            )),
        }
    }

    /// Carries out a node fault on the managed `node` (a single node or the cluster).
    pub(super) fn node_fault(
        &mut self,
        node: &Node,
        fault: BrokerFault,
        spec: &FaultSpec,
    ) -> Result<Vec<NodeHit>, BackendError> {
        let target = spec.node.unwrap_or_default();
        match fault {
            BrokerFault::Pause => {
                let (id, role) = self.pick(node, target)?;
                self.signal(node, id, libc::SIGSTOP)?;
                if !self.paused.contains(&id) {
                    self.paused.push(id);
                }
                self.note(&format!(
                    "pause-broker: node {id} ({role}) stopped (SIGSTOP)"
                ));
                Ok(vec![hit(node, id, role)])
            }
            BrokerFault::Resume => self.resume_all(node),
            BrokerFault::Partition => {
                let (id, role) = self.pick(node, target)?;
                let clients = spec.clients.unwrap_or_default();
                self.partition(node, id, clients)?;
                let role = format!("{role}, isolated; clients reach {}", side(clients));
                self.note(&format!(
                    "partition: node {id} cut from the others ({role})"
                ));
                Ok(vec![hit(node, id, role)])
            }
            BrokerFault::SlowLink => {
                let (id, role) = self.pick(node, target)?;
                let shape = Shape {
                    delay: spec.delay.map_or(Duration::ZERO, |d| d.0),
                    jitter: spec.jitter.map_or(Duration::ZERO, |d| d.0),
                    loss_percent: spec.loss.unwrap_or(0.0),
                };
                self.network()?.slow(id, shape);
                let role = format!(
                    "{role}, link +{:?} ±{:?}, {}% loss",
                    shape.delay, shape.jitter, shape.loss_percent
                );
                self.note(&format!("slow-link: node {id} ({role})"));
                Ok(vec![hit(node, id, role)])
            }
            BrokerFault::Heal => {
                self.network()?.heal();
                self.note("heal: every link restored");
                Ok(Vec::new())
            }
            other => Err(err(format!("{other:?} is not a node fault"))),
        }
    }

    fn network(&self) -> Result<&mq_netns::Network, BackendError> {
        self.net.as_ref().ok_or_else(|| {
            err("partition, heal and slow-link need the cluster in network namespaces: set options.netns = true (with nodes = 3)")
        })
    }

    /// Cuts node `id` from the other nodes; `clients` says which side the host still reaches.
    fn partition(&self, node: &Node, id: u8, clients: ClientSide) -> Result<(), BackendError> {
        let net = self.network()?;
        let isolated = [Endpoint::Node(id)];
        let rest: Vec<Endpoint> = (1..=node.nodes)
            .filter(|&k| k != id)
            .map(Endpoint::Node)
            .collect();
        net.cut(&isolated, &rest);
        match clients {
            ClientSide::LeaderSide => net.cut(&[Endpoint::Host], &rest),
            ClientSide::MajoritySide => net.cut(&[Endpoint::Host], &isolated),
            ClientSide::Both => {}
        }
        Ok(())
    }

    /// The node `target` names, and why it: (id, "leader of partition 0" …).
    fn pick(&mut self, node: &Node, target: NodeTarget) -> Result<(u8, String), BackendError> {
        if let NodeTarget::Id(id) = target {
            if !(1..=node.nodes).contains(&id) {
                return Err(err(format!(
                    "node = {id}: the managed broker has nodes 1 to {}",
                    node.nodes
                )));
            }
            return Ok((id, format!("node {id}")));
        }
        let leader = if node.is_cluster() {
            let l = self.leader_of_partition_0()?;
            u8::try_from(l)
                .ok()
                .filter(|id| (1..=node.nodes).contains(id))
                .ok_or_else(|| err(format!("the leader of partition 0 is broker {l}")))?
        } else {
            1
        };
        match target {
            NodeTarget::Role(NodeRole::Follower) => (1..=node.nodes)
                .find(|&k| k != leader && !self.paused.contains(&k) && !self.killed.contains(&k))
                .map(|k| {
                    (
                        k,
                        format!("follower of partition 0 (leader: node {leader})"),
                    )
                })
                .ok_or_else(|| err("no running follower of partition 0")),
            _ => Ok((leader, "leader of partition 0".into())),
        }
    }

    /// Sends `sig` to node `id`'s broker process (its pid file, written by kafka.sh).
    fn signal(&self, node: &Node, id: u8, sig: libc::c_int) -> Result<(), BackendError> {
        let path = node.pid_file(id);
        let pid: libc::pid_t = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .filter(|&p| p > 1)
            .ok_or_else(|| {
                err(format!(
                    "node {id} is not running (no pid in {})",
                    path.display()
                ))
            })?;
        // SAFETY: kill(2) on the broker pid kafka.sh recorded for this run's node.
        if unsafe { libc::kill(pid, sig) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(err(format!("signal {sig} to node {id} (pid {pid}): {e}")));
        }
        Ok(())
    }

    /// SIGCONTs every node paused so far.
    fn resume_all(&mut self, node: &Node) -> Result<Vec<NodeHit>, BackendError> {
        let mut hits = Vec::new();
        while let Some(id) = self.paused.pop() {
            self.signal(node, id, libc::SIGCONT)?;
            self.note(&format!("resume-broker: node {id} continued (SIGCONT)"));
            hits.push(hit(node, id, "paused earlier".into()));
        }
        Ok(hits)
    }

    /// Undoes what node faults left in effect (at teardown): paused nodes continue, links heal.
    pub(super) fn release_nodes(&mut self) {
        if let Some(node) = self.node().cloned() {
            if let Err(e) = self.resume_all(&node) {
                tracing::warn!("kafka: {e}");
            }
        }
        if let Some(net) = &self.net {
            net.heal();
        }
    }
}

fn hit(node: &Node, id: u8, role: String) -> NodeHit {
    NodeHit {
        node: id.into(),
        address: node.address(id),
        role: Some(role),
    }
}

fn side(clients: ClientSide) -> &'static str {
    match clients {
        ClientSide::LeaderSide => "only it",
        ClientSide::MajoritySide => "only the others",
        ClientSide::Both => "every node",
    }
}
