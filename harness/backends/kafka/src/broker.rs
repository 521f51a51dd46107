//! Coordinator side: starts a managed broker, creates the run's topic, reports the backlog (end
//! offsets minus the group's committed offsets), and deletes topic and group at teardown.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_lite::future::block_on;
use mq_core::fault::BrokerFault;
use mq_core::scenario::VariantPlan;
use mq_core::{BackendError, Broker, Depth};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::client::{self, base_config, Endpoint};
use crate::options::{Mode, Options};
use crate::script::Node;
use crate::NAME;

const START_TIMEOUT: Duration = Duration::from_secs(150);
const STOP_TIMEOUT: Duration = Duration::from_secs(90);
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);
const DEPTH_TIMEOUT: Duration = Duration::from_secs(2);

pub struct KafkaBroker {
    options: Options,
    topic: String,
    group: String,
    partitions: u32,
    bootstrap: String,
    log: PathBuf,
    node: Option<Node>,
    /// The broker is ours to stop.
    started: bool,
    /// Topic (and maybe group) exist and are ours to delete.
    created: bool,
    admin: Option<AdminClient<DefaultClientContext>>,
    /// Reads end and committed offsets for `depth`; never joins the group.
    probe: Option<BaseConsumer>,
}

impl KafkaBroker {
    pub fn new(plan: &VariantPlan, options: Options, run_dir: &Path) -> KafkaBroker {
        let node = (options.mode == Mode::Managed)
            .then(|| Node::new(options.port, run_dir.join(format!("{}.kafka", plan.name))));
        let topic = format!("mqb-{}-{}", client::run_tag(run_dir), plan.name);
        KafkaBroker {
            group: topic.clone(),
            topic,
            partitions: plan.workload.partitions,
            bootstrap: options.bootstrap(),
            log: run_dir.join(format!("{}.kafka.log", plan.name)),
            options,
            node,
            started: false,
            created: false,
            admin: None,
            probe: None,
        }
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

    fn create_topic(&mut self) -> Result<(), BackendError> {
        let rf = match (self.options.replication_factor, self.options.mode) {
            (Some(rf), _) => i32::from(rf),
            (None, Mode::Managed) => 1,
            (None, Mode::External) => -1, // the cluster's default.replication.factor
        };
        let (topic, bootstrap, partitions) =
            (self.topic.clone(), self.bootstrap.clone(), self.partitions);
        let admin = self.admin()?;
        let new = NewTopic::new(&topic, partitions as i32, TopicReplication::Fixed(rf));
        let results =
            block_on(admin.create_topics([&new], &Self::admin_options())).map_err(|e| {
                BackendError::other(NAME, format!("creating topic {topic} on {bootstrap}: {e}"))
            })?;
        for r in results {
            if let Err((t, code)) = r {
                return Err(BackendError::other(
                    NAME,
                    format!("creating topic {t} on {bootstrap}: {code}"),
                ));
            }
        }
        // Creation returns before every partition has a leader: wait for them.
        let deadline = Instant::now() + ADMIN_TIMEOUT;
        loop {
            let ready = admin
                .inner()
                .fetch_metadata(Some(&topic), Duration::from_secs(5))
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
        let admin = self.admin()?;
        let opts = Self::admin_options();
        let results = block_on(admin.delete_topics(&[&topic], &opts)).map_err(|e| {
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
        if let Ok(results) = block_on(admin.delete_groups(&[&group], &opts)) {
            for r in results {
                if let Err((g, code)) = r {
                    tracing::debug!("kafka: deleting group {g}: {code}");
                }
            }
        }
        Ok(())
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

impl Broker for KafkaBroker {
    fn setup(&mut self) -> Result<serde_json::Value, BackendError> {
        if let Some(node) = &self.node {
            tracing::info!(port = node.port, dir = %node.dir.display(), "starting a managed Kafka broker");
            // Set before the call: a start that times out may still leave a broker behind.
            self.started = true;
            node.run("start", START_TIMEOUT, &self.log).map_err(|m| {
                BackendError::other(
                    NAME,
                    format!("managed broker on 127.0.0.1:{}: {m}", node.port),
                )
            })?;
        }
        self.admin()?;
        self.created = true;
        self.create_topic()?;
        let endpoint = Endpoint {
            topic: self.topic.clone(),
            group: self.group.clone(),
            bootstrap: self.bootstrap.clone(),
            partitions: self.partitions,
            node: self.node.clone(),
        };
        Ok(serde_json::to_value(endpoint).expect("endpoint serializes"))
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
        if self.started {
            self.started = false;
            if let Some(node) = &self.node {
                let cmd = if self.options.keep { "stop" } else { "wipe" };
                if let Err(m) = node.run(cmd, STOP_TIMEOUT, &self.log) {
                    let e = BackendError::other(
                        NAME,
                        format!("managed broker on 127.0.0.1:{}: {m}", node.port),
                    );
                    result = result.and(Err(e));
                }
            }
        }
        result
    }

    fn fault(&mut self, fault: BrokerFault) -> Result<(), BackendError> {
        let Some(node) = &self.node else {
            return Err(BackendError::other(
                NAME,
                "an external broker: give the variant kill_cmd / restart_cmd",
            ));
        };
        let cmd = match fault {
            BrokerFault::Kill => "kill",
            BrokerFault::Restart => "start",
            BrokerFault::RemoveQueue => {
                return Err(BackendError::other(NAME, "remove-queue is a sysv fault"))
            }
        };
        node.run(cmd, START_TIMEOUT, &self.log).map_err(|m| {
            BackendError::other(
                NAME,
                format!("managed broker on 127.0.0.1:{}: {m}", node.port),
            )
        })
    }

    fn versions(&mut self) -> Vec<(String, String)> {
        let (_, v) = rdkafka::util::get_rdkafka_version();
        let mut out = vec![("librdkafka".to_owned(), v)];
        if self.node.is_some() {
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
}

impl Drop for KafkaBroker {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            tracing::warn!("{e}");
        }
    }
}
