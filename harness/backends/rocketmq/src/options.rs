//! `[variants.options]` of a rocketmq variant and their checks.

use mq_core::delivery::ProducerAck;
use mq_core::plan::FieldError;
use mq_core::Delivery;
use schemars::JsonSchema;
use serde::Deserialize;

pub use mq_core::backend::Mode;

/// The options a rocketmq variant may set.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `managed`: a private name server and broker run by `scripts/brokers/rocketmq.sh`;
    /// `external`: a cluster already running, reached through the name server at `namesrv`.
    #[serde(default)]
    pub mode: Mode,
    /// External cluster: the name server, `host:port`.
    #[serde(default)]
    pub namesrv: Option<String>,
    /// External cluster: the cluster name topics are created in (`brokerClusterName`);
    /// default `DefaultCluster`.
    #[serde(default)]
    pub cluster: Option<String>,
    /// Managed: the name server's port (default 9876); the broker listens on port + 10 (and
    /// on port + 8 and port + 11).
    #[serde(default)]
    #[schemars(range(min = 1, max = 65_500))]
    pub port: Option<u16>,
    /// FIFO sends (the default): one send at a time per queue (= partition), so with sync sends
    /// each key's messages are stored in the order sent, as RocketMQ's ordered messages by
    /// message group. Oneway sends do not wait for the broker, so the broker's send threads may
    /// still store them out of order. `false`: normal messages, up to `max_in_flight` sends at
    /// once on any queue.
    #[serde(default = "defaults::fifo")]
    pub fifo: bool,
    /// Sends awaiting their result at once (normal messages; FIFO: over all queues, each
    /// sending one at a time). At most 1000: the client refuses requests past its own queue
    /// of 1024 (`transport.admission.queue_saturated`).
    #[serde(default = "defaults::max_in_flight")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_in_flight: u32,
    /// Most messages a consumer takes in one pull (`pullBatchSize`); default 32.
    #[serde(default = "defaults::pull_batch")]
    #[schemars(range(min = 1, max = 1024))]
    pub pull_batch: u32,
    /// `after-process` consumers commit their offsets after this many deliveries, or 200 ms.
    #[serde(default = "defaults::commit_every")]
    #[schemars(range(min = 1, max = 1_000_000_000))]
    pub commit_every: u32,
    /// Keep the topic, the consumer group and a managed broker's data after the run.
    #[serde(default)]
    pub keep: bool,
}

mod defaults {
    pub fn fifo() -> bool {
        true
    }
    pub fn max_in_flight() -> u32 {
        256
    }
    pub fn pull_batch() -> u32 {
        32
    }
    pub fn commit_every() -> u32 {
        1000
    }
}

/// The managed name server's default port.
pub const DEFAULT_PORT: u16 = 9876;
/// The managed broker's port, above the name server's.
pub const BROKER_PORT_OFFSET: u16 = 10;
/// What `rocketmq.sh` names its cluster; external clusters default to RocketMQ's own.
pub const MANAGED_CLUSTER: &str = "mqbench";
const EXTERNAL_CLUSTER: &str = "DefaultCluster";

impl Options {
    /// Checks that need no broker; paths are relative to the variant.
    pub fn check(&self, delivery: &Delivery) -> Vec<FieldError> {
        let mut e = Vec::new();
        match self.mode {
            Mode::External if self.namesrv.is_none() => e.push(FieldError::new(
                "options.namesrv",
                "an external cluster needs its name server, e.g. namesrv = \"127.0.0.1:9876\"",
            )),
            Mode::Managed if self.namesrv.is_some() || self.cluster.is_some() => {
                e.push(FieldError::new(
                    "options.namesrv",
                    "namesrv and cluster are for mode = \"external\"; a managed broker's port is options.port",
                ))
            }
            _ => {}
        }
        if let Some(n) = &self.namesrv {
            if !valid_addr(n) {
                e.push(FieldError::new(
                    "options.namesrv",
                    format!("{n:?}: valid is host:port, e.g. 127.0.0.1:9876"),
                ));
            }
        }
        if delivery.producer_ack == ProducerAck::All {
            e.push(FieldError::new(
                "producer_ack",
                "rocketmq: one broker, no replicas to wait for; use \"leader\" (a sync send, acked on the broker's SEND_OK) with durability = \"persistent\" (SYNC_FLUSH: SEND_OK once on disk), or \"none\" (oneway)",
            ));
        }
        e
    }

    /// The managed name server's port.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(DEFAULT_PORT)
    }

    /// The name server clients dial.
    pub fn namesrv(&self) -> String {
        match (&self.mode, &self.namesrv) {
            (Mode::External, Some(n)) => n.clone(),
            _ => format!("127.0.0.1:{}", self.port()),
        }
    }

    /// The cluster topics are created in.
    pub fn cluster(&self) -> String {
        match self.mode {
            Mode::Managed => MANAGED_CLUSTER.into(),
            Mode::External => self
                .cluster
                .clone()
                .unwrap_or_else(|| EXTERNAL_CLUSTER.into()),
        }
    }
}

/// `host:port` with a port from 1 to 65535 and a non-empty host.
fn valid_addr(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((h, p)) => !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mq_core::delivery::{ConsumerAck, Durability};

    fn parse(v: serde_json::Value) -> Options {
        serde_json::from_value(v).unwrap()
    }

    fn delivery(ack: ProducerAck) -> Delivery {
        Delivery {
            producer_ack: ack,
            consumer_ack: ConsumerAck::AfterProcess,
            durability: Durability::Persistent,
            consumer_dedup: Default::default(),
        }
    }

    #[test]
    fn external_needs_a_valid_name_server_and_managed_refuses_one() {
        let o = parse(serde_json::json!({"mode": "external"}));
        let e = o.check(&delivery(ProducerAck::Leader));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].path, "options.namesrv");
        let o = parse(serde_json::json!({"mode": "external", "namesrv": "h:0"}));
        assert!(o.check(&delivery(ProducerAck::Leader))[0]
            .message
            .contains("host:port"));
        let o = parse(serde_json::json!({"mode": "external", "namesrv": "10.0.0.1:9876"}));
        assert!(o.check(&delivery(ProducerAck::Leader)).is_empty());
        assert_eq!(o.namesrv(), "10.0.0.1:9876");
        assert_eq!(o.cluster(), "DefaultCluster");
        let o = parse(serde_json::json!({"namesrv": "10.0.0.1:9876"}));
        assert_eq!(o.check(&delivery(ProducerAck::Leader)).len(), 1);
    }

    #[test]
    fn defaults_and_the_refused_producer_ack() {
        let o = parse(serde_json::json!({}));
        assert!(o.fifo);
        assert_eq!(o.namesrv(), "127.0.0.1:9876");
        assert_eq!(o.cluster(), MANAGED_CLUSTER);
        let e = o.check(&delivery(ProducerAck::All));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].path, "producer_ack");
        assert!(serde_json::from_value::<Options>(serde_json::json!({"bogus": 1})).is_err());
    }
}
