//! Coordinator side: starts a managed server (`nats.sh`, JetStream with a file store in the
//! variant's folder), creates the variant's stream and one durable pull consumer per partition,
//! reports their backlog (`num_pending + num_ack_pending`), carries out kill / restart, and
//! deletes the stream (with its consumers) at teardown.

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream::Context;
use async_nats::Client;
use mq_core::delivery::ProducerAck;
use mq_core::managed::{Managed, Script, Scripted};
use mq_core::plan::{BrokerFault, VariantPlan};
use mq_core::{BackendError, Broker, Depth, NodeHit};
use tokio::runtime::Runtime;

use crate::cluster::ClusterFaults;
use crate::conn::{self, bounded, Endpoint};
use crate::options::{Mode, Options};
use crate::script::Node;
use crate::NAME;

const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a new cluster may take to elect its JetStream meta leader.
const CLUSTER_READY: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(45);
const DEPTH_TIMEOUT: Duration = Duration::from_secs(2);

pub struct NatsBroker {
    options: Options,
    endpoint: Endpoint,
    /// The managed server (None: external).
    managed: Option<Managed<Scripted<Node>>>,
    /// The managed cluster's faults (None: a single server or external).
    cluster: Option<ClusterFaults>,
    /// The stream exists and is ours to delete.
    created: bool,
    rt: Option<Runtime>,
    conn: Option<(Client, Context)>,
}

impl NatsBroker {
    /// `variant_dir` is the variant's folder in the run; names come from `run_tag`.
    pub fn new(
        plan: &VariantPlan,
        options: Options,
        variant_dir: &Path,
        run_tag: &str,
    ) -> Result<NatsBroker, BackendError> {
        let (_, shown) = options
            .connect_urls()
            .map_err(|m| BackendError::other(NAME, m))?;
        let mut endpoint = Endpoint::new(plan, &options, run_tag, shown);
        let log = variant_dir.join(format!("{}.nats.log", plan.name));
        let cluster = options.cluster().then(|| ClusterFaults {
            log: log.clone(),
            start_timeout: START_TIMEOUT,
            stop_timeout: STOP_TIMEOUT,
        });
        let managed = (options.mode == Mode::Managed).then(|| {
            // producer_ack = all: every write fsynced before its PubAck.
            let sync = (plan.delivery.producer_ack == ProducerAck::All).then(|| "always".into());
            let dir = variant_dir.join(format!("{}.nats", plan.name));
            let node = if options.cluster() {
                Node::cluster(options.port(), dir, sync)
            } else {
                Node::new(options.port(), dir, sync)
            };
            endpoint.node = Some(node.clone());
            let scripted = Scripted {
                script: node,
                log,
                start_timeout: START_TIMEOUT,
                stop_timeout: STOP_TIMEOUT,
            };
            Managed::new(NAME, scripted, options.keep)
        });
        Ok(NatsBroker {
            options,
            endpoint,
            managed,
            cluster,
            created: false,
            rt: None,
            conn: None,
        })
    }

    fn rt(&mut self) -> Result<&Runtime, BackendError> {
        if self.rt.is_none() {
            self.rt = Some(conn::runtime()?);
        }
        Ok(self.rt.as_ref().expect("just set"))
    }

    /// The JetStream context of a live connection (the client reconnects by itself).
    fn js(&mut self) -> Result<Context, BackendError> {
        if let Some((_, js)) = &self.conn {
            return Ok(js.clone());
        }
        let (urls, shown) = self
            .options
            .connect_urls()
            .map_err(|m| BackendError::other(NAME, m))?;
        let rt = self.rt()?;
        let client = rt
            .block_on(conn::connect(&urls, &shown, "mq-bench coordinator"))?
            .client;
        let js = conn::jetstream(rt, client.clone(), conn::OP_TIMEOUT, 64);
        self.conn = Some((client, js.clone()));
        Ok(js)
    }

    fn create(&mut self) -> Result<(), BackendError> {
        let js = self.js()?;
        let ep = self.endpoint.clone();
        self.created = true; // from here on, teardown deletes whatever exists
        let deadline = std::time::Instant::now() + CLUSTER_READY;
        loop {
            match self.rt()?.block_on(ep.ensure(&js, 0..ep.partitions)) {
                // A new cluster answers "JetStream system temporarily unavailable" until its
                // meta leader is elected.
                Err(e) if self.cluster.is_some() && std::time::Instant::now() < deadline => {
                    tracing::debug!("nats: cluster not ready yet: {e}");
                    std::thread::sleep(Duration::from_millis(250));
                }
                other => return other.map(|_| ()),
            }
        }
    }

    fn delete(&mut self) -> Result<(), BackendError> {
        let js = self.js()?;
        let (stream, shown) = (self.endpoint.stream.clone(), self.endpoint.address.clone());
        let r = self.rt()?.block_on(bounded(
            || format!("deleting stream {stream} on {shown}"),
            js.delete_stream(&stream),
        ));
        match r {
            Err(e) if e.to_string().contains("not found") => Ok(()),
            other => other.map(|_| ()),
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

impl Broker for NatsBroker {
    fn setup(&mut self) -> Result<serde_json::Value, BackendError> {
        if let Some(m) = &mut self.managed {
            let node = &m.node().script;
            tracing::info!(port = node.port, dir = %node.dir.display(), "starting a managed NATS server");
            m.start()?;
        }
        self.create()?;
        Ok(serde_json::to_value(&self.endpoint).expect("endpoint serializes"))
    }

    fn end_round(&mut self) -> Result<bool, BackendError> {
        // A cluster's nodes may be killed by a round's faults: not shared.
        if self.cluster.is_some() {
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
        let node = self.endpoint.node.take();
        self.endpoint = Endpoint::new(plan, &self.options, run_tag, self.endpoint.address.clone());
        self.endpoint.node = node;
        Ok(true)
    }

    fn depth_bound(&self) -> Duration {
        DEPTH_TIMEOUT
    }

    fn depth(&mut self) -> Option<Depth> {
        if !self.created {
            return None;
        }
        let js = self.js().ok()?;
        let ep = self.endpoint.clone();
        let r = self.rt().ok()?.block_on(async {
            tokio::time::timeout(DEPTH_TIMEOUT, async {
                let stream = js.get_stream(&ep.stream).await?;
                let mut total = 0u64;
                for p in 0..ep.partitions {
                    let info = stream.consumer_info(ep.consumer(p)).await?;
                    total += info.num_pending + info.num_ack_pending as u64;
                }
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(total)
            })
            .await
        });
        match r {
            Ok(Ok(n)) => Some(Depth {
                messages: n,
                bytes: None,
            }),
            other => {
                tracing::debug!("nats depth: {other:?}");
                None
            }
        }
    }

    fn teardown(&mut self) -> Result<(), BackendError> {
        let mut result = Ok(());
        // A managed server's wipe takes the stream with it (and it may be down).
        if self.created && !self.options.keep && self.managed.is_none() {
            result = self.delete();
        }
        self.created = false;
        if let (Some((client, _)), Some(rt)) = (self.conn.take(), &self.rt) {
            let _ = rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(2), client.drain()).await
            });
        }
        if let Some(m) = &mut self.managed {
            result = result.and(m.finish());
        }
        result
    }

    fn fault(&mut self, fault: BrokerFault) -> Result<Vec<NodeHit>, BackendError> {
        if self.cluster.is_some() {
            let js = self.js()?;
            self.rt()?;
            let (Some(c), Some(m), Some(rt)) = (&self.cluster, &self.managed, &self.rt) else {
                return Err(BackendError::other(NAME, "the cluster is not managed"));
            };
            return c.fault(rt, &js, &self.endpoint.stream, &m.node().script, fault);
        }
        let Some(m) = &mut self.managed else {
            return Err(BackendError::other(
                NAME,
                "an external server: give the variant kill_cmd / restart_cmd",
            ));
        };
        m.fault(fault).map(|()| Vec::new())
    }

    fn versions(&mut self) -> Vec<(String, String)> {
        let mut v = vec![("async-nats".to_owned(), "0.52".to_owned())];
        if self.managed.is_some() {
            if let Some(s) = crate::script::server_version() {
                v.push(("nats-server".into(), s));
            }
        }
        v
    }

    fn processes(&mut self) -> mq_core::backend::Processes {
        use mq_core::backend::{pids_in, Processes};
        match &self.managed {
            Some(m) => Processes::Pids(pids_in(&m.node().script.pid_files())),
            None => Processes::Unknown(
                "an external server: its processes are not bench's to measure".into(),
            ),
        }
    }
}

impl Drop for NatsBroker {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            tracing::warn!("{e}");
        }
    }
}
