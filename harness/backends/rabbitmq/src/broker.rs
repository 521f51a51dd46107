//! Coordinator side: starts a managed node (or the 3-node cluster), declares the exchange and
//! one queue per partition, reports their depth, carries out broker faults (in the cluster:
//! [`crate::cluster`]), and removes the queues (and stops the nodes) at teardown.

use std::path::Path;
use std::time::Duration;

use lapin::options::{ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use mq_core::managed::{Managed, Script, Scripted};
use mq_core::plan::BrokerFault;
use mq_core::plan::VariantPlan;
use mq_core::{BackendError, Broker, Depth, NodeHit};
use tokio::runtime::Runtime;

use crate::cluster::ClusterFaults;
use crate::conn::{self, bounded, Endpoint};
use crate::dial::Dialer;
use crate::options::{Mode, Options};
use crate::script::Node;
use crate::topology::Topology;
use crate::NAME;

const OP_TIMEOUT: Duration = Duration::from_secs(10);
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// Three nodes boot at once on two cores, then two join the first.
const CLUSTER_START_TIMEOUT: Duration = Duration::from_secs(240);
const STOP_TIMEOUT: Duration = Duration::from_secs(90);
const DEPTH_TIMEOUT: Duration = Duration::from_secs(2);

/// The exchange and queue names of one variant of one run.
#[derive(Debug, Clone)]
pub struct Names {
    pub exchange: String,
    pub queues: Vec<String>,
}

impl Names {
    /// `mqb-<run_tag>-<variant>` and `mqb-<run_tag>-<variant>-<i>`.
    pub fn new(run_tag: &str, variant: &str, partitions: u32) -> Names {
        let exchange = format!("mqb-{run_tag}-{variant}");
        let queues = (0..partitions).map(|i| format!("{exchange}-{i}")).collect();
        Names { exchange, queues }
    }
}

pub struct RabbitBroker {
    options: Options,
    topology: Topology,
    /// The managed node or cluster (None: external).
    managed: Option<Managed<Scripted<Node>>>,
    /// The cluster's faults (None: a single node or external).
    cluster: Option<ClusterFaults>,
    /// Queues and exchange exist and are ours to delete.
    created: bool,
    rt: Option<Runtime>,
    conn: Option<(Connection, Channel)>,
    dialer: Option<Dialer>,
}

impl RabbitBroker {
    /// `variant_dir` is the variant's folder in the run; names are made from `run_tag` ([`Names`]).
    pub fn new(
        plan: &VariantPlan,
        options: Options,
        variant_dir: &Path,
        run_tag: &str,
    ) -> RabbitBroker {
        let names = Names::new(run_tag, &plan.name, plan.workload.partitions);
        let log = variant_dir.join(format!("{}.rabbitmq.log", plan.name));
        let dir = variant_dir.join(format!("{}.rabbitmq", plan.name));
        let (script, start_timeout) = if options.cluster() {
            (Node::cluster(options.port(), dir), CLUSTER_START_TIMEOUT)
        } else {
            (Node::new(options.port(), dir), START_TIMEOUT)
        };
        let cluster = (options.mode == Mode::Managed && options.cluster()).then(|| {
            ClusterFaults::new(names.queues.first().map_or("", |q| q), &log, start_timeout)
        });
        let managed = (options.mode == Mode::Managed).then(|| {
            let node = Scripted {
                script,
                log,
                start_timeout,
                stop_timeout: STOP_TIMEOUT,
            };
            Managed::new(NAME, node, options.keep)
        });
        RabbitBroker {
            topology: Topology::new(&names.exchange, &names.queues, plan, &options),
            options,
            managed,
            cluster,
            created: false,
            rt: None,
            conn: None,
            dialer: None,
        }
    }

    fn rt(&mut self) -> Result<&Runtime, BackendError> {
        if self.rt.is_none() {
            self.rt = Some(conn::runtime()?);
        }
        Ok(self.rt.as_ref().expect("just set"))
    }

    /// The address of the current connection, for messages.
    fn shown(&self) -> String {
        self.dialer
            .as_ref()
            .map_or_else(String::new, |d| d.shown().to_owned())
    }

    /// A channel on a live connection, reconnecting (to any node) if the last one died.
    fn channel(&mut self) -> Result<Channel, BackendError> {
        if let Some((c, ch)) = &self.conn {
            if c.status().connected() && ch.status().connected() {
                return Ok(ch.clone());
            }
        }
        if self.dialer.is_none() {
            self.dialer = Some(Dialer::new(
                &self.options,
                "mq-bench coordinator".to_owned(),
            )?);
        }
        let old = self.conn.take();
        self.rt()?;
        let (rt, dialer) = (
            self.rt.as_ref().expect("made above"),
            self.dialer.as_mut().expect("made above"),
        );
        let (c, ch) = rt.block_on(async {
            let c = match old {
                Some((c, _)) if c.status().connected() => c,
                _ => dialer.connect().await?,
            };
            let shown = dialer.shown();
            let ch = bounded(
                OP_TIMEOUT,
                || format!("opening a channel on {shown}"),
                c.create_channel(),
            )
            .await?;
            Ok::<_, BackendError>((c, ch))
        })?;
        self.conn = Some((c, ch.clone()));
        Ok(ch)
    }

    fn declare(&mut self) -> Result<(), BackendError> {
        let ch = self.channel()?;
        let (topology, shown) = (self.topology.clone(), self.shown());
        self.created = true; // from here on, teardown tries to delete whatever exists
        self.rt()?.block_on(async {
            topology.declare_exchange(&ch, &shown).await?;
            for i in 0..topology.queues.len() {
                topology.declare_queue(&ch, i, &shown).await?;
            }
            Ok(())
        })
    }

    fn delete(&mut self) -> Result<(), BackendError> {
        let names = self.topology.clone();
        let mut first_err = None;
        for q in &names.queues {
            // A failed delete closes the channel: take a fresh one for each. A failed connect ends it.
            let ch = self.channel()?;
            let shown = self.shown();
            let r = self.rt()?.block_on(bounded(
                OP_TIMEOUT,
                || format!("deleting queue {q} on {shown}"),
                ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default()),
            ));
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        let ch = self.channel()?;
        let shown = self.shown();
        let ex = names.exchange.as_str();
        let r = self.rt()?.block_on(bounded(
            OP_TIMEOUT,
            || format!("deleting exchange {ex} on {shown}"),
            ch.exchange_delete(ex.into(), ExchangeDeleteOptions::default()),
        ));
        if let Err(e) = r {
            first_err.get_or_insert(e);
        }
        first_err.map_or(Ok(()), Err)
    }

    fn close(&mut self) {
        if let (Some((c, _)), Some(rt)) = (self.conn.take(), &self.rt) {
            let _ = rt.block_on(conn::within(
                Duration::from_secs(2),
                c.close(200, "bye".into()),
            ));
        }
    }
}

impl Script for Node {
    fn describe(&self) -> String {
        Node::describe(self)
    }
    fn run(&self, cmd: &str, timeout: Duration, log: &Path) -> Result<(), String> {
        Node::run(self, cmd, timeout, log)
    }
}

impl Broker for RabbitBroker {
    fn setup(&mut self) -> Result<serde_json::Value, BackendError> {
        if let Some(m) = &mut self.managed {
            let node = &m.node().script;
            tracing::info!(port = node.port, dir = %node.dir.display(), "starting a managed RabbitMQ node");
            m.start()?;
        }
        self.declare()?;
        let endpoint = Endpoint {
            exchange: self.topology.exchange.clone(),
            queues: self.topology.queues.clone(),
            addresses: self
                .options
                .connect_uris()
                .map_err(|m| BackendError::other(NAME, m))?
                .into_iter()
                .map(|(_, shown)| shown)
                .collect(),
            node: self.managed.as_ref().map(|m| m.node().script.clone()),
        };
        Ok(serde_json::to_value(endpoint).expect("endpoint serializes"))
    }

    fn end_round(&mut self) -> Result<bool, BackendError> {
        // A cluster's nodes may be killed or paused by a round's faults: not shared.
        if self.cluster.is_some() || self.options.cluster() {
            return Ok(false);
        }
        if self.created && !self.options.keep {
            self.delete()?;
        }
        self.created = false;
        Ok(true)
    }

    fn next_round(&mut self, plan: &VariantPlan, run_tag: &str) -> Result<bool, BackendError> {
        if !self.end_round()? {
            return Ok(false);
        }
        let names = Names::new(run_tag, &plan.name, plan.workload.partitions);
        self.topology = Topology::new(&names.exchange, &names.queues, plan, &self.options);
        Ok(true)
    }

    fn depth_bound(&self) -> Duration {
        DEPTH_TIMEOUT
    }

    fn depth(&mut self) -> Option<Depth> {
        if !self.created {
            return None;
        }
        let ch = match self.channel() {
            Ok(ch) => ch,
            Err(e) => {
                tracing::debug!("rabbitmq depth: {e}");
                self.conn = None;
                return None;
            }
        };
        let queues = self.topology.queues.clone();
        let r = self.rt().ok()?.block_on(conn::within(DEPTH_TIMEOUT, async {
            let mut total = 0u64;
            for q in &queues {
                let opts = QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                };
                total += u64::from(
                    ch.queue_declare(q.as_str().into(), opts, FieldTable::default())
                        .await?
                        .message_count(),
                );
            }
            Ok::<_, lapin::Error>(total)
        }));
        match r {
            Ok(Ok(n)) => Some(Depth {
                messages: n,
                bytes: None,
            }),
            other => {
                tracing::debug!("rabbitmq depth: {other:?}");
                self.conn = None;
                None
            }
        }
    }

    fn teardown(&mut self) -> Result<(), BackendError> {
        let mut result = Ok(());
        // A managed node's wipe takes the queues with it (and a classic queue on a cluster node
        // still down could not be deleted).
        if self.created && !self.options.keep && self.managed.is_none() {
            result = self.delete();
        }
        self.created = false;
        self.close();
        if let Some(m) = &mut self.managed {
            result = result.and(m.finish());
        }
        result
    }

    fn fault(&mut self, fault: BrokerFault) -> Result<Vec<NodeHit>, BackendError> {
        let Some(m) = &mut self.managed else {
            return Err(BackendError::other(
                NAME,
                "an external broker: give the variant kill_cmd / restart_cmd",
            ));
        };
        match &mut self.cluster {
            Some(cluster) => cluster.fault(&m.node().script, fault),
            None => m.fault(fault).map(|()| Vec::new()),
        }
    }

    fn versions(&mut self) -> Vec<(String, String)> {
        let mut v = vec![("lapin".to_owned(), "4.12".to_owned())];
        if self.managed.is_some() {
            let out = std::process::Command::new("dpkg-query")
                .args(["-W", "-f=${Version}", "rabbitmq-server"])
                .output();
            if let Ok(o) = out {
                if o.status.success() {
                    v.push((
                        "rabbitmq-server".into(),
                        String::from_utf8_lossy(&o.stdout).trim().to_owned(),
                    ));
                }
            }
        }
        v
    }

    fn processes(&mut self) -> mq_core::backend::Processes {
        use mq_core::backend::{pids_in, Processes};
        match &self.managed {
            Some(m) => Processes::Pids(pids_in(&m.node().script.pid_files())),
            None => Processes::Unknown(
                "an external broker: its processes are not bench's to measure".into(),
            ),
        }
    }
}

impl Drop for RabbitBroker {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            tracing::warn!("{e}");
        }
    }
}
