//! `[variants.options]` of a kafka variant and their checks.

use std::collections::BTreeMap;

use mq_core::delivery::ProducerAck;
use mq_core::plan::FieldError;
use mq_core::Delivery;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::script::{cluster_bootstrap, cluster_ports, CLUSTER_NODES};
pub use crate::txn::IsolationLevel;

pub use mq_core::backend::Mode;

/// `compression.type` of the producer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// How consumers get their partitions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Assignment {
    /// `assign`: consumer i reads every consumers-th partition from i; no rebalances.
    #[default]
    Manual,
    /// `subscribe`: every consumer of the variant in one group; the group protocol shares the
    /// partitions out and moves them when a member dies or joins.
    Group,
}

/// `partition.assignment.strategy` of a group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Eager: every rebalance revokes every member's partitions, then assigns them again.
    Range,
    /// Incremental: only the partitions that move are revoked; the others keep being read.
    #[default]
    CooperativeSticky,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Range => "range",
            Strategy::CooperativeSticky => "cooperative-sticky",
        }
    }
}

/// The options a kafka variant may set.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `managed`: a KRaft node (or the 3-node cluster, `nodes = 3`) run by
    /// `scripts/brokers/kafka.sh`; `external`: a cluster already running at `bootstrap`.
    #[serde(default)]
    pub mode: Mode,
    /// External cluster, `host:port[,host:port…]`.
    #[serde(default)]
    pub bootstrap: Option<String>,
    /// Managed single-node broker port (its controller listens on port + 1); default 9092.
    /// A 3-node cluster's ports are fixed by the script (19092/29092/39092).
    #[serde(default)]
    #[schemars(range(min = 1, max = 65_534))]
    pub port: Option<u16>,
    /// Managed brokers: 1 (a single KRaft node) or 3 (a KRaft cluster on loopback).
    #[serde(default = "defaults::nodes")]
    pub nodes: u8,
    /// The 3-node cluster with each node in its own network namespace, so that partition, heal
    /// and slow-link can act on its links. Needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN),
    /// iproute2 and /dev/net/tun; without them the variant is reported as skipped.
    #[serde(default)]
    pub netns: bool,
    /// Topic config `unclean.leader.election.enable`: an out-of-sync replica may become the
    /// leader (losing what it lacks) rather than the partition staying offline. Default false.
    #[serde(default)]
    pub unclean_leader_election: bool,
    /// Managed brokers' `replica.lag.time.max.ms`: how long a follower may lag before the
    /// leader drops it from the ISR (Kafka's default 30000).
    #[serde(default)]
    #[schemars(range(min = 100, max = 3_600_000))]
    pub replica_lag_time_max_ms: Option<u32>,
    /// `enable.idempotence` (needs `producer_ack = "all"`).
    #[serde(default)]
    pub idempotence: bool,
    /// Transactional producers (needs `producer_ack = "all"`; implies idempotence): each sends
    /// `transaction_size` messages per transaction under a `transactional.id` of its own (run,
    /// variant, producer index); a message counts as acked once its transaction's commit
    /// returned, and a failed commit aborts the transaction.
    #[serde(default)]
    pub transactional: bool,
    /// Transactional only: messages per transaction; default 100.
    #[serde(default)]
    #[schemars(range(min = 1, max = 100_000))]
    pub transaction_size: Option<u32>,
    /// Transactional only: `transaction.timeout.ms`, after which the coordinator aborts a
    /// transaction left open (a killed producer's), letting `read_committed` consumers past it;
    /// default 10000 (librdkafka's 60000 would hold them a minute).
    #[serde(default)]
    #[schemars(range(min = 1_000, max = 900_000))]
    pub transaction_timeout_ms: Option<u32>,
    /// `read-process-write`: producers write an input topic, and `stages` stage processes move
    /// its messages to the output topic the consumers read, in transactions that commit the
    /// input offsets too (exactly-once inside Kafka). Absent: no pipeline.
    #[serde(default)]
    pub pipeline: Option<crate::pipeline::Pipeline>,
    /// Pipeline only: how many stage processes (stage i reads every stages-th partition from
    /// i); default 1, at most the partitions.
    #[serde(default)]
    #[schemars(range(min = 1, max = 1_000))]
    pub stages: Option<u16>,
    /// Pipeline only: how long a stage's transaction takes records after its first before it
    /// commits (unless `transaction_size` is reached first), as Kafka Streams'
    /// `commit.interval.ms` under exactly-once; default 100. Below half of
    /// `transaction_timeout_ms`.
    #[serde(default)]
    #[schemars(range(min = 1, max = 60_000))]
    pub stage_commit_interval_ms: Option<u32>,
    /// Consumers' `isolation.level`: `read_committed` (only committed transactions' messages;
    /// the default, librdkafka's too) or `read_uncommitted` (every message appended, aborted
    /// transactions' included).
    #[serde(default)]
    pub isolation_level: Option<IsolationLevel>,
    /// Transactional only: `recreate` (default) or `fail` when fenced (txn.rs `OnFenced`).
    #[serde(default)]
    pub on_fenced: Option<crate::txn::OnFenced>,
    /// `linger.ms`; librdkafka's default (5) when absent.
    #[serde(default)]
    #[schemars(range(min = 0, max = 900_000))]
    pub linger_ms: Option<u32>,
    /// `batch.size` in bytes; librdkafka's default when absent.
    #[serde(default)]
    #[schemars(range(min = 1, max = 2_147_483_647))]
    pub batch_size: Option<u32>,
    #[serde(default)]
    pub compression: Compression,
    /// Replication factor of the run's topic; default 1 (one managed node), 3 (managed cluster),
    /// the cluster's default (external).
    #[serde(default)]
    pub replication_factor: Option<u16>,
    /// Topic config `min.insync.replicas`; default 2 in the managed cluster (at most the
    /// replication factor), the broker's default otherwise.
    #[serde(default)]
    pub min_insync_replicas: Option<u16>,
    /// `after-process` consumers commit (async) after this many deliveries, or 200 ms.
    #[serde(default = "defaults::commit_every")]
    #[schemars(range(min = 1, max = 1_000_000_000))]
    pub commit_every: u32,
    /// `manual` (assigned by hand, no rebalances) or `group` (subscribed, in one group per
    /// variant; allows more consumers than partitions: the extra members idle until a rebalance
    /// gives them partitions).
    #[serde(default)]
    pub assignment: Assignment,
    /// Group only: `cooperative-sticky` (default: a member's death moves only its partitions,
    /// the others keep being read) or `range` (eager: every rebalance stops every partition).
    #[serde(default)]
    pub partition_assignment_strategy: Option<Strategy>,
    /// Group only: `session.timeout.ms`, how long a silent member stays in the group; its
    /// partitions are read by no one meanwhile. librdkafka's default 45000 when absent; the
    /// broker's default bounds are 6000 to 1800000.
    #[serde(default)]
    #[schemars(range(min = 6_000, max = 1_800_000))]
    pub session_timeout_ms: Option<u32>,
    /// Group only: `heartbeat.interval.ms`, below the session timeout (Kafka advises a third);
    /// librdkafka's default 3000 when absent.
    #[serde(default)]
    #[schemars(range(min = 100, max = 600_000))]
    pub heartbeat_interval_ms: Option<u32>,
    /// `assignment = "manual"` consumers take fetched messages in batches (librdkafka's
    /// `rd_kafka_consume_batch_queue`) rather than one `poll` per message; `false` for the old way.
    #[serde(default = "defaults::batch_fetch")]
    pub batch_fetch: bool,
    /// Keep the topic, the consumer group and a managed broker's data after the run.
    #[serde(default)]
    pub keep: bool,
    /// librdkafka producer properties, applied last (they win over the settings above).
    #[serde(default)]
    pub producer_config: BTreeMap<String, serde_json::Value>,
    /// librdkafka consumer properties, applied last.
    #[serde(default)]
    pub consumer_config: BTreeMap<String, serde_json::Value>,
}

pub mod defaults {
    pub fn port() -> u16 {
        9092
    }
    pub fn nodes() -> u8 {
        1
    }
    pub fn commit_every() -> u32 {
        1000
    }
    pub fn batch_fetch() -> bool {
        true
    }
}

/// librdkafka's `session.timeout.ms` when the option is absent.
const DEFAULT_SESSION_MS: u32 = 45_000;

impl Options {
    /// Checks that need no broker; paths are relative to the variant. Bounds of single numbers
    /// are declared on the fields (schemars) and checked by the scenario's validation.
    pub fn check(&self, delivery: &Delivery) -> Vec<FieldError> {
        let mut e = Vec::new();
        match self.mode {
            Mode::Managed => self.check_managed(&mut e),
            Mode::External => self.check_external(&mut e),
        }
        self.check_replicas(&mut e);
        if self.idempotence && delivery.producer_ack != ProducerAck::All {
            e.push(FieldError::new(
                "options.idempotence",
                format!(
                    "idempotence needs acks=all but producer_ack = \"{}\": set producer_ack = \"all\" or idempotence = false",
                    delivery.producer_ack
                ),
            ));
        }
        crate::txn::check(self, delivery, &mut e);
        self.check_config_tables(&mut e);
        self.check_group(&mut e);
        e
    }

    /// The group settings: only with `assignment = "group"`, heartbeats below the session.
    fn check_group(&self, e: &mut Vec<FieldError>) {
        if self.assignment == Assignment::Manual {
            for (set, field) in [
                (
                    self.partition_assignment_strategy.is_some(),
                    "partition_assignment_strategy",
                ),
                (self.session_timeout_ms.is_some(), "session_timeout_ms"),
                (
                    self.heartbeat_interval_ms.is_some(),
                    "heartbeat_interval_ms",
                ),
            ] {
                if set {
                    e.push(FieldError::new(
                        format!("options.{field}"),
                        format!("{field} is a consumer-group setting: set assignment = \"group\" (or remove {field})"),
                    ));
                }
            }
            return;
        }
        let session = self.session_timeout_ms.unwrap_or(DEFAULT_SESSION_MS);
        if let Some(hb) = self.heartbeat_interval_ms.filter(|&hb| hb >= session) {
            e.push(FieldError::new(
                "options.heartbeat_interval_ms",
                format!("heartbeat_interval_ms = {hb} is not below the session timeout ({session} ms): valid is 100 to {}; Kafka advises a third of it", session - 1),
            ));
        }
    }

    /// Whether consumers subscribe as one group (and may outnumber the partitions).
    pub fn group(&self) -> bool {
        self.assignment == Assignment::Group
    }

    /// A managed single node or cluster: what its ports and replication can be.
    fn check_managed(&self, e: &mut Vec<FieldError>) {
        if self.bootstrap.is_some() {
            e.push(FieldError::new(
                "options.bootstrap",
                "bootstrap is only for mode = \"external\"; a managed broker listens on 127.0.0.1:<port>",
            ));
        }
        if self.netns && self.nodes != CLUSTER_NODES {
            e.push(FieldError::new(
                "options.netns",
                format!(
                    "netns = true needs the cluster: set nodes = 3 (nodes = {})",
                    self.nodes
                ),
            ));
        }
        match self.nodes {
            1 => {
                if let Some(rf) = self.replication_factor.filter(|&rf| rf != 1) {
                    e.push(FieldError::new(
                        "options.replication_factor",
                        format!("replication_factor = {rf}: the managed broker is a single node; valid is 1 (or use nodes = 3, or mode = \"external\")"),
                    ));
                }
            }
            CLUSTER_NODES => {
                if let Some(port) = self.port {
                    e.push(FieldError::new(
                        "options.port",
                        format!("port = {port}: the 3-node cluster's ports are fixed (brokers {}, controllers + 1); remove port", cluster_ports()),
                    ));
                }
                if let Some(rf) = self.replication_factor.filter(|&rf| rf > 3) {
                    e.push(FieldError::new(
                        "options.replication_factor",
                        format!("replication_factor = {rf}: the managed cluster has 3 nodes; valid is 1 to 3"),
                    ));
                }
            }
            n => e.push(FieldError::new(
                "options.nodes",
                format!(
                    "nodes = {n}: valid is 1 (a single KRaft node) or 3 (a 3-node KRaft cluster)"
                ),
            )),
        }
    }

    /// An external cluster: named by bootstrap alone.
    fn check_external(&self, e: &mut Vec<FieldError>) {
        for (set, field) in [
            (self.netns, "netns"),
            (
                self.replica_lag_time_max_ms.is_some(),
                "replica_lag_time_max_ms",
            ),
        ] {
            if set {
                e.push(FieldError::new(
                    format!("options.{field}"),
                    format!(
                        "{field} is for a managed broker; configure an external cluster yourself"
                    ),
                ));
            }
        }
        match &self.bootstrap {
            None => e.push(FieldError::new(
                "options.bootstrap",
                "mode = \"external\" needs bootstrap = \"host:port[,host:port]\"",
            )),
            Some(b) if b.trim().is_empty() || b.split(',').any(|s| !s.contains(':')) => {
                e.push(FieldError::new(
                    "options.bootstrap",
                    format!("bootstrap = {b:?}: expected host:port[,host:port]"),
                ))
            }
            Some(_) => {}
        }
        if self.nodes != defaults::nodes() {
            e.push(FieldError::new(
                "options.nodes",
                format!(
                    "nodes = {}: nodes is for a managed broker; an external cluster is what bootstrap names",
                    self.nodes
                ),
            ));
        }
    }

    /// The topic's replication factor and min.insync.replicas, together.
    fn check_replicas(&self, e: &mut Vec<FieldError>) {
        if let Some(m) = self.min_insync_replicas {
            let rf = self.topic_replication_factor();
            if m == 0 {
                e.push(FieldError::new(
                    "options.min_insync_replicas",
                    "min_insync_replicas = 0: valid is 1 or more",
                ));
            } else if let Some(rf) = rf.filter(|&rf| rf > 0 && i32::from(m) > rf) {
                e.push(FieldError::new(
                    "options.min_insync_replicas",
                    format!("min_insync_replicas = {m}: valid is 1 to the replication factor ({rf}); more would refuse every acks=all send"),
                ));
            }
        }
        if self.replication_factor == Some(0) {
            e.push(FieldError::new(
                "options.replication_factor",
                "replication_factor = 0: valid is 1 or more",
            ));
        }
    }

    /// Whether the managed broker is the 3-node cluster.
    pub fn cluster(&self) -> bool {
        self.mode == Mode::Managed && self.nodes == CLUSTER_NODES
    }

    /// The managed single node's port.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or_else(defaults::port)
    }

    /// `host:port,…` of the brokers.
    pub fn bootstrap(&self) -> String {
        match self.mode {
            Mode::Managed if self.cluster() => cluster_bootstrap(),
            Mode::Managed => format!("127.0.0.1:{}", self.port()),
            Mode::External => self.bootstrap.clone().unwrap_or_default(),
        }
    }

    /// Broker properties the options add to the managed nodes' server.properties.
    pub fn broker_overrides(&self) -> Vec<String> {
        let mut o: Vec<String> = (self.replica_lag_time_max_ms.iter())
            .map(|ms| format!("replica.lag.time.max.ms={ms}"))
            .collect();
        if self.transactional || self.pipeline.is_some() {
            // The coordinator looks for timed-out transactions every 10 s by default: a killed
            // producer's would hold read_committed consumers up to that much longer.
            o.push(format!(
                "transaction.abort.timed.out.transaction.cleanup.interval.ms={}",
                crate::txn::CLEANUP_INTERVAL_MS
            ));
        }
        o
    }

    /// The replication factor the topic is created with; `None` = the cluster's default.
    pub fn topic_replication_factor(&self) -> Option<i32> {
        match (self.replication_factor, self.mode) {
            (Some(rf), _) => Some(i32::from(rf)),
            (None, Mode::Managed) if self.cluster() => Some(3),
            (None, Mode::Managed) => Some(1),
            (None, Mode::External) => None,
        }
    }

    /// The topic's `min.insync.replicas`; `None` = the broker's default.
    pub fn topic_min_insync_replicas(&self) -> Option<u16> {
        match self.min_insync_replicas {
            Some(m) => Some(m),
            None if self.cluster() => {
                let rf = self.topic_replication_factor().unwrap_or(3);
                Some(rf.clamp(1, 2) as u16)
            }
            None => None,
        }
    }
}

/// A free-form property value as librdkafka wants it.
pub fn value_string(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

mod tables;

#[cfg(test)]
mod tests;
