//! Coordinator side: starts a managed broker (a single node or the 3-node cluster), creates the
//! run's topic (and a pipeline's input topic), reports the backlog (end offsets minus the
//! group's committed offsets), carries out broker faults (in the cluster: kill the leader of
//! partition 0, restart it), and deletes topics and groups at teardown. Pause, resume, partition, heal and slow-link are in [`nodes`].

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_lite::future::block_on;
use mq_core::managed::{Managed, Script, Scripted};
use mq_core::plan::{BrokerFault, FaultSpec, VariantPlan};
use mq_core::{BackendError, Broker, Depth, NodeHit};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::client::{self, base_config, Endpoint};
use crate::options::{Mode, Options};
use crate::script::Node;
use crate::NAME;

mod nodes;

const START_TIMEOUT: Duration = Duration::from_secs(150);
const STOP_TIMEOUT: Duration = Duration::from_secs(90);
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);
const DEPTH_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a kill may look for the leader of partition 0 (it may be moving).
const LEADER_TIMEOUT: Duration = Duration::from_secs(15);

pub struct KafkaBroker {
    options: Options,
    topic: String,
    group: String,
    partitions: u32,
    bootstrap: String,
    log: PathBuf,
    /// The managed broker (None: external).
    managed: Option<Managed<Scripted<Node>>>,
    /// Topic (and maybe group) exist and are ours to delete.
    created: bool,
    admin: Option<AdminClient<DefaultClientContext>>,
    /// Reads end and committed offsets for `depth`; never joins the group.
    probe: Option<BaseConsumer>,
    /// Cluster nodes killed by `fault(Kill)` and not restarted yet.
    killed: Vec<u8>,
    /// Nodes paused (SIGSTOP) and not resumed yet.
    paused: Vec<u8>,
    /// The cluster's network namespaces (`netns = true`); removed after the nodes.
    net: Option<mq_netns::Network>,
}

impl KafkaBroker {
    /// `variant_dir` is the variant's folder in the run; topic and group are
    /// `mqb-<run_tag>-<variant>`. With `netns`, the cluster's network is made here.
    pub fn new(
        plan: &VariantPlan,
        options: Options,
        variant_dir: &Path,
        run_tag: &str,
    ) -> Result<KafkaBroker, BackendError> {
        let dir = variant_dir.join(format!("{}.kafka", plan.name));
        let log = variant_dir.join(format!("{}.kafka.log", plan.name));
        let net = match options.netns && options.cluster() {
            true => Some(
                mq_netns::Network::create(
                    &format!("{run_tag}-{}", mq_core::plan::broker_name(&plan.name)),
                    3,
                )
                .map_err(|e| BackendError::other(NAME, format!("network namespaces: {e}")))?,
            ),
            false => None,
        };
        let node = match (options.mode, &net) {
            (Mode::Managed, Some(net)) => Some(Node::cluster_in(
                dir,
                (1..=3).map(|k| net.node_addr(k).to_string()).collect(),
                net.namespaces().to_vec(),
            )),
            (Mode::Managed, None) if options.cluster() => Some(Node::cluster(dir)),
            (Mode::Managed, None) => Some(Node::new(options.port(), dir)),
            (Mode::External, _) => None,
        }
        .map(|n| Node {
            overrides: options.broker_overrides(),
            ..n
        });
        let bootstrap = node
            .as_ref()
            .map_or_else(|| options.bootstrap(), Node::bootstrap);
        let managed = node.map(|script| {
            let node = Scripted {
                script,
                log: log.clone(),
                start_timeout: START_TIMEOUT,
                stop_timeout: STOP_TIMEOUT,
            };
            Managed::new(NAME, node, options.keep)
        });
        let topic = format!("mqb-{run_tag}-{}", mq_core::plan::broker_name(&plan.name));
        Ok(KafkaBroker {
            group: topic.clone(),
            topic,
            partitions: plan.workload.partitions,
            bootstrap,
            log,
            options,
            managed,
            created: false,
            admin: None,
            probe: None,
            killed: Vec::new(),
            paused: Vec::new(),
            net,
        })
    }

    /// Appends a line to the broker's log file (where kafka.sh's output goes too).
    fn note(&self, line: &str) {
        mq_core::script::note("kafka", &self.log, line);
    }

    fn admin_options() -> AdminOptions {
        AdminOptions::new()
            .operation_timeout(Some(ADMIN_TIMEOUT))
            .request_timeout(Some(ADMIN_TIMEOUT))
    }

    fn admin(&mut self) -> Result<&AdminClient<DefaultClientContext>, BackendError> {
        if self.admin.is_none() {
            let admin: AdminClient<DefaultClientContext> =
                base_config(&self.bootstrap, "mq-bench-admin")
                    .create()
                    .map_err(|e| {
                        BackendError::other(
                            NAME,
                            format!("admin client for {}: {e}", self.bootstrap),
                        )
                    })?;
            client::reach(admin.inner(), &self.bootstrap, None)?;
            self.admin = Some(admin);
        }
        Ok(self.admin.as_ref().expect("just set"))
    }

    /// A pipeline's input topic (the producers write it, the stages read it).
    fn input(&self) -> Option<String> {
        (self.options.pipeline.is_some()).then(|| crate::pipeline::input_topic(&self.topic))
    }

    fn create_topic(&mut self, topic: &str) -> Result<(), BackendError> {
        // -1: the cluster's default.replication.factor
        let rf = self.options.topic_replication_factor().unwrap_or(-1);
        let min_isr = self
            .options
            .topic_min_insync_replicas()
            .map(|m| m.to_string());
        let (bootstrap, partitions) = (self.bootstrap.clone(), self.partitions);
        let unclean = self.options.unclean_leader_election;
        let admin = self.admin()?;
        let mut new = NewTopic::new(topic, partitions as i32, TopicReplication::Fixed(rf));
        if let Some(m) = &min_isr {
            new = new.set("min.insync.replicas", m);
        }
        if unclean {
            new = new.set("unclean.leader.election.enable", "true");
        }
        let results =
            block_on(admin.create_topics([&new], &Self::admin_options())).map_err(|e| {
                BackendError::other(NAME, format!("creating topic {topic} on {bootstrap}: {e}"))
            })?;
        for r in results {
            match r {
                // The shards of a sharded run (`bench run --shard`) share one topic: the first
                // creates it; the wait below checks its partitions.
                Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) | Ok(_) => {}
                Err((t, code)) => {
                    return Err(BackendError::other(
                        NAME,
                        format!("creating topic {t} on {bootstrap}: {code}"),
                    ))
                }
            }
        }
        // Creation returns before every partition has a leader: wait for them.
        let deadline = Instant::now() + ADMIN_TIMEOUT;
        loop {
            let ready = admin
                .inner()
                .fetch_metadata(Some(topic), Duration::from_secs(5))
                .ok()
                .and_then(|md| {
                    md.topics().iter().find(|t| t.name() == topic).map(|t| {
                        t.error().is_none()
                            && t.partitions().len() == partitions as usize
                            && t.partitions()
                                .iter()
                                .all(|p| p.leader() >= 0 && p.error().is_none())
                    })
                })
                .unwrap_or(false);
            if ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(BackendError::other(
                    NAME,
                    format!(
                        "topic {topic} on {bootstrap}: partitions without a leader after {}s",
                        ADMIN_TIMEOUT.as_secs()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn delete(&mut self) -> Result<(), BackendError> {
        let (topic, group, bootstrap) = (
            self.topic.clone(),
            self.group.clone(),
            self.bootstrap.clone(),
        );
        let input = self.input();
        let topics: Vec<&str> = std::iter::once(topic.as_str())
            .chain(input.as_deref())
            .collect();
        let stage_group = crate::pipeline::stage_group(&group);
        let groups: Vec<&str> = match input {
            Some(_) => vec![&group, &stage_group],
            None => vec![&group],
        };
        let admin = self.admin()?;
        let opts = Self::admin_options();
        let results = block_on(admin.delete_topics(&topics, &opts)).map_err(|e| {
            BackendError::other(NAME, format!("deleting topic {topic} on {bootstrap}: {e}"))
        })?;
        for r in results {
            if let Err((t, code)) = r {
                return Err(BackendError::other(
                    NAME,
                    format!("deleting topic {t} on {bootstrap}: {code}"),
                ));
            }
        }
        // The group exists only once a consumer committed; a missing group is fine.
        if let Ok(results) = block_on(admin.delete_groups(&groups, &opts)) {
            for r in results {
                if let Err((g, code)) = r {
                    tracing::debug!("kafka: deleting group {g}: {code}");
                }
            }
        }
        Ok(())
    }

    /// The first group lookup creates `__consumer_offsets` (replication factor 3 in the cluster):
    /// do it while every node is up, since with one killed no group could commit (or report its
    /// offsets) until it is back. Bounded; a failure only means a slower start for consumers.
    fn await_group_coordinator(&mut self) {
        let deadline = Instant::now() + ADMIN_TIMEOUT;
        loop {
            match self.depth_now() {
                Ok(_) => return,
                Err(e) if Instant::now() >= deadline => {
                    tracing::warn!(
                        "kafka: the group coordinator of {} did not answer within {}s: {e}",
                        self.group,
                        ADMIN_TIMEOUT.as_secs()
                    );
                    return;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    fn depth_now(&mut self) -> Result<u64, String> {
        if self.probe.is_none() {
            let mut c = base_config(&self.bootstrap, "mq-bench-depth");
            c.set("group.id", &self.group)
                .set("enable.auto.commit", "false");
            self.probe = Some(c.create().map_err(|e| e.to_string())?);
        }
        let probe = self.probe.as_ref().expect("just set");
        let mut tpl = TopicPartitionList::new();
        for p in 0..self.partitions as i32 {
            tpl.add_partition(&self.topic, p);
        }
        let started = Instant::now();
        let committed = probe
            .committed_offsets(tpl, DEPTH_TIMEOUT)
            .map_err(|e| e.to_string())?;
        let mut total = 0u64;
        for e in committed.elements() {
            let left = DEPTH_TIMEOUT.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err("timed out".into());
            }
            let (low, high) = probe
                .fetch_watermarks(&self.topic, e.partition(), left)
                .map_err(|e| e.to_string())?;
            let from = match e.offset() {
                Offset::Offset(o) => o.max(low),
                _ => low, // nothing committed yet: the group starts at the beginning
            };
            total += (high - from).max(0) as u64;
        }
        Ok(total)
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

impl KafkaBroker {
    fn node(&self) -> Option<&Node> {
        self.managed.as_ref().map(|m| &m.node().script)
    }
}

impl Broker for KafkaBroker {
    fn setup(&mut self) -> Result<serde_json::Value, BackendError> {
        if let Some(m) = &mut self.managed {
            let node = &m.node().script;
            tracing::info!(brokers = %node.bootstrap(), dir = %node.dir.display(), "starting a managed Kafka broker");
            m.start()?;
        }
        self.admin()?;
        self.created = true;
        let input = self.input();
        for topic in std::iter::once(self.topic.clone()).chain(input.clone()) {
            self.create_topic(&topic)?;
        }
        if self.node().is_some_and(Node::is_cluster) {
            self.await_group_coordinator();
        }
        let endpoint = Endpoint {
            topic: self.topic.clone(),
            input,
            group: self.group.clone(),
            bootstrap: self.bootstrap.clone(),
            partitions: self.partitions,
            node: self.node().cloned(),
        };
        Ok(serde_json::to_value(endpoint).expect("endpoint serializes"))
    }

    fn end_round(&mut self) -> Result<bool, BackendError> {
        // A cluster's nodes may be killed, paused or cut off by a round's faults: not shared.
        if self.node().is_some_and(Node::is_cluster) {
            return Ok(false);
        }
        self.probe = None;
        if self.created && !self.options.keep {
            self.delete()?;
        }
        self.created = false;
        Ok(true)
    }

    fn next_round(&mut self, plan: &VariantPlan, run_tag: &str) -> Result<bool, BackendError> {
        if !self.end_round()? || plan.workload.partitions == 0 {
            return Ok(false);
        }
        self.topic = format!("mqb-{run_tag}-{}", mq_core::plan::broker_name(&plan.name));
        self.group = self.topic.clone();
        self.partitions = plan.workload.partitions;
        Ok(true)
    }

    fn depth_bound(&self) -> Duration {
        DEPTH_TIMEOUT
    }

    fn depth(&mut self) -> Option<Depth> {
        if !self.created {
            return None;
        }
        match self.depth_now() {
            Ok(n) => Some(Depth {
                messages: n,
                bytes: None,
            }),
            Err(e) => {
                tracing::debug!("kafka depth of {}: {e}", self.topic);
                // A fresh client next time: this one may hold on to a dead coordinator or leader.
                self.probe = None;
                None
            }
        }
    }

    fn teardown(&mut self) -> Result<(), BackendError> {
        let mut result = Ok(());
        self.probe = None;
        if self.created && !self.options.keep {
            result = self.delete();
        }
        self.created = false;
        self.admin = None;
        self.killed.clear();
        self.release_nodes();
        if let Some(m) = &mut self.managed {
            result = result.and(m.finish());
        }
        if let Some(net) = &mut self.net {
            let removed = net.remove();
            result = result.and(removed.map_err(|e| BackendError::other(NAME, e.to_string())));
        }
        result
    }

    fn fault(&mut self, fault: BrokerFault) -> Result<Vec<NodeHit>, BackendError> {
        let Some(node) = self.node().cloned() else {
            return Err(BackendError::other(
                NAME,
                "an external broker: give the variant kill_cmd / restart_cmd",
            ));
        };
        if node.is_cluster() {
            return self.cluster_fault(&node, fault);
        }
        let m = self.managed.as_mut().expect("a node is managed");
        m.fault(fault).map(|()| Vec::new())
    }

    fn fault_on(
        &mut self,
        fault: BrokerFault,
        spec: &FaultSpec,
    ) -> Result<Vec<NodeHit>, BackendError> {
        match fault {
            BrokerFault::Kill | BrokerFault::Restart | BrokerFault::RemoveQueue => {
                self.fault(fault)
            }
            _ => {
                let node = self.node().cloned().ok_or_else(|| {
                    BackendError::other(NAME, format!("{fault:?} needs a managed broker"))
                })?;
                self.node_fault(&node, fault, spec)
            }
        }
    }

    fn versions(&mut self) -> Vec<(String, String)> {
        let (_, v) = rdkafka::util::get_rdkafka_version();
        let mut out = vec![("librdkafka".to_owned(), v)];
        if self.managed.is_some() {
            let cache = std::env::var_os("MQ_BENCH_CACHE")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/mq-bench"))
                });
            if let Some(v) =
                cache.and_then(|c| std::fs::read_to_string(c.join("kafka-current")).ok())
            {
                out.push(("kafka".into(), v.trim().to_owned()));
            }
        }
        out
    }

    fn processes(&mut self) -> mq_core::backend::Processes {
        use mq_core::backend::{pids_in, Processes};
        match self.node() {
            Some(node) => Processes::Pids(pids_in(&node.pid_files())),
            None => Processes::Unknown(EXTERNAL_PROCESSES.into()),
        }
    }
}

/// Why an external broker's cost is unknown.
const EXTERNAL_PROCESSES: &str = "an external broker: its processes are not bench's to measure";

impl Drop for KafkaBroker {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            tracing::warn!("{e}");
        }
    }
}
