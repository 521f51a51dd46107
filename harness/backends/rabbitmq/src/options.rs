//! `[variants.options]` of a rabbitmq variant, their checks, and where the AMQP URI comes from.
//!
//! Credentials never enter the endpoint or the results: workers rebuild the URI themselves from
//! the options, the managed port or `$MQ_BENCH_AMQP_URI`.

use lapin::uri::AMQPUri;
use mq_core::delivery::{Durability, ProducerAck};
use mq_core::plan::FieldError;
use mq_core::Delivery;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Environment variable holding the URI (with credentials) of an external broker.
pub const URI_ENV: &str = "MQ_BENCH_AMQP_URI";

pub use mq_core::backend::Mode;

/// Nodes of the managed cluster (`rabbitmq.sh --nodes 3`).
pub const CLUSTER_NODES: u8 = 3;

/// RabbitMQ queue type (`x-queue-type`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum QueueType {
    #[default]
    Classic,
    Quorum,
}

/// The options a rabbitmq variant may set.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `managed`: a private node run by `scripts/brokers/rabbitmq.sh`; `external`: a broker
    /// already running at `uri` / `$MQ_BENCH_AMQP_URI`.
    #[serde(default)]
    pub mode: Mode,
    /// External broker URI, e.g. `amqp://127.0.0.1:5672/%2f`; `$MQ_BENCH_AMQP_URI` wins when set.
    #[serde(default)]
    pub uri: Option<String>,
    /// Managed broker AMQP port (the Erlang distribution port is port + 20000); default 5672,
    /// or 5771 for the cluster, whose node N listens on port + N - 1.
    #[serde(default)]
    #[schemars(range(min = 1, max = 45_533))]
    pub port: Option<u16>,
    /// Managed brokers: 1 (a single node) or 3 (a cluster of three nodes on 127.0.0.1,
    /// `cluster_partition_handling = pause_minority`).
    #[serde(default = "defaults::nodes")]
    pub nodes: u8,
    /// `classic` or `quorum` (replicated, always durable).
    #[serde(default)]
    pub queue_type: QueueType,
    /// Unacknowledged deliveries the broker may push to each consumer queue (`basic.qos`; 0
    /// would mean unlimited in AMQP).
    #[serde(default = "defaults::prefetch")]
    #[schemars(range(min = 1, max = 65_535))]
    pub prefetch: u16,
    /// An `after-process` consumer acks (one `basic.ack` with `multiple`) once it has handed
    /// over this many deliveries since its last ack, or 10 ms after the first of them,
    /// whichever comes first: fewer acks for the broker to take (as PerfTest's `-A`), and up
    /// to that many more redeliveries when a consumer dies. At most `prefetch`; default: 100,
    /// or half of `prefetch` if that is less.
    #[schemars(range(min = 1, max = 65_535))]
    pub ack_every: Option<u16>,
    /// Publishes awaiting a confirm before `send` waits for the oldest.
    #[serde(default = "defaults::max_in_flight")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub max_in_flight: u32,
    /// Transactions (`tx.select` / `tx.commit`) instead of publisher confirms: sends are acked
    /// when the commit that covers them returns. Needs producer_ack = "all".
    #[serde(default)]
    pub tx: bool,
    /// Messages per `tx.commit` (a partial batch is committed after 10 ms of waiting).
    #[serde(default = "defaults::tx_batch")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub tx_batch: u32,
    /// How long producers and consumers keep reconnecting after losing their connection (to
    /// any node of the cluster, re-declaring what they use; producers then republish what was
    /// unconfirmed) before they end with an error; 0: they end at the first loss.
    #[serde(default = "defaults::reconnect_timeout_ms")]
    #[schemars(range(min = 0, max = 3_600_000))]
    pub reconnect_timeout_ms: u32,
    /// Keep the queues, the exchange and a managed node's data after the run.
    #[serde(default)]
    pub keep: bool,
}

pub mod defaults {
    pub fn tx_batch() -> u32 {
        100
    }
    pub fn port() -> u16 {
        5672
    }
    /// Node 1 of the managed cluster: apart from a single node's default, so both can run.
    pub fn cluster_port() -> u16 {
        5771
    }
    pub fn nodes() -> u8 {
        1
    }
    /// A restarted node answers after ~8 s here; a minute leaves room for a slow restart.
    pub fn reconnect_timeout_ms() -> u32 {
        60_000
    }
    pub fn prefetch() -> u16 {
        1000
    }
    pub fn max_in_flight() -> u32 {
        4096
    }
}

impl Options {
    /// Deliveries an `after-process` consumer hands over before it acks them (see `ack_every`).
    pub fn ack_every(&self) -> usize {
        let half = (self.prefetch / 2).max(1);
        usize::from(self.ack_every.unwrap_or(100.min(half)))
    }

    /// Checks that need no broker; paths are relative to the variant.
    pub fn check(&self, delivery: &Delivery) -> Vec<FieldError> {
        let mut e = Vec::new();
        if let Some(n) = self.ack_every.filter(|&n| n > self.prefetch) {
            e.push(FieldError::new(
                "options.ack_every",
                format!(
                    "ack_every = {n} is above prefetch = {}: the broker holds deliveries back once prefetch are unacked; valid: 1 to {}",
                    self.prefetch, self.prefetch
                ),
            ));
        }
        if self.nodes != 1 && self.nodes != CLUSTER_NODES {
            e.push(FieldError::new(
                "options.nodes",
                format!(
                    "nodes = {}: valid are 1 (a single node) and {CLUSTER_NODES} (a cluster)",
                    self.nodes
                ),
            ));
        }
        match self.mode {
            Mode::Managed => {
                if self.uri.is_some() {
                    e.push(FieldError::new(
                        "options.uri",
                        "uri is only for mode = \"external\"; a managed broker listens on 127.0.0.1:<port>",
                    ));
                }
            }
            Mode::External if self.nodes != 1 => e.push(FieldError::new(
                "options.nodes",
                "nodes is for managed brokers; an external cluster is reached at uri",
            )),
            Mode::External if self.port.is_some() => e.push(FieldError::new(
                "options.port",
                "port is for managed brokers; an external broker's port is in uri",
            )),
            Mode::External => match (std::env::var(URI_ENV).ok(), &self.uri) {
                (None, None) => e.push(FieldError::new(
                    "options.uri",
                    format!("mode = \"external\" needs uri = \"amqp://host:port/vhost\" (or ${URI_ENV} with credentials)"),
                )),
                (Some(env), _) => {
                    if let Err(m) = parse_uri(&env) {
                        e.push(FieldError::new("options.uri", format!("${URI_ENV}: {m}")));
                    }
                }
                (None, Some(uri)) => {
                    if let Err(m) = parse_uri(uri) {
                        e.push(FieldError::new("options.uri", m));
                    }
                }
            },
        }
        if self.tx && delivery.producer_ack != ProducerAck::All {
            e.push(FieldError::new(
                "options.tx",
                format!(
                    "tx = true is the producer_ack = \"all\" mode (a commit acknowledges its batch); producer_ack is \"{}\"",
                    delivery.producer_ack
                ),
            ));
        }
        if self.queue_type == QueueType::Quorum && delivery.durability == Durability::Memory {
            e.push(FieldError::new(
                "durability",
                "rabbitmq quorum queues are always durable: use durability = \"persistent\" or options.queue_type = \"classic\"",
            ));
        }
        if delivery.producer_ack == ProducerAck::All && delivery.durability == Durability::Memory {
            e.push(FieldError::new(
                "producer_ack",
                "rabbitmq producer_ack = \"all\" means confirms sent once the message is on disk, which needs durability = \"persistent\"; valid with memory: none, leader",
            ));
        }
        e
    }

    /// A managed cluster of [`CLUSTER_NODES`] (not a single node).
    pub fn cluster(&self) -> bool {
        self.mode == Mode::Managed && self.nodes == CLUSTER_NODES
    }

    /// The managed node's port (the cluster's: node 1's).
    pub fn port(&self) -> u16 {
        self.port.unwrap_or_else(|| {
            if self.cluster() {
                defaults::cluster_port()
            } else {
                defaults::port()
            }
        })
    }

    /// The URIs to connect with (credentials included), each with how to name it in messages
    /// (without): one per node of a managed cluster, in node order.
    pub fn connect_uris(&self) -> Result<Vec<(String, String)>, String> {
        let uris = match self.mode {
            Mode::Managed => {
                let nodes = if self.cluster() { CLUSTER_NODES } else { 1 };
                (0..u16::from(nodes))
                    .map(|i| format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port() + i))
                    .collect()
            }
            Mode::External => match std::env::var(URI_ENV).ok().or_else(|| self.uri.clone()) {
                Some(u) => vec![u],
                None => {
                    return Err(format!(
                        "mode = \"external\" needs options.uri or ${URI_ENV}"
                    ))
                }
            },
        };
        uris.into_iter()
            .map(|uri| parse_uri(&uri).map(|shown| (uri, shown)))
            .collect()
    }
}

/// Parses an AMQP URI; returns it without credentials (`amqp://host:port/vhost`).
pub fn parse_uri(uri: &str) -> Result<String, String> {
    let parsed: AMQPUri = uri.parse().map_err(|e| {
        format!("not an AMQP URI ({e}); expected amqp://[user:password@]host[:port][/vhost]")
    })?;
    if parsed.scheme != lapin::uri::AMQPScheme::AMQP {
        return Err("amqps:// is not supported by this build (no TLS); use amqp://".into());
    }
    Ok(format!(
        "amqp://{}:{}/{}",
        parsed.authority.host, parsed.authority.port, parsed.vhost
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_is_shown_without_credentials() {
        assert_eq!(
            parse_uri("amqp://u:secret@127.0.0.1:5673/%2f").unwrap(),
            "amqp://127.0.0.1:5673//"
        );
        assert!(parse_uri("amqps://127.0.0.1")
            .unwrap_err()
            .contains("amqps"));
        assert!(parse_uri("http://x").is_err());
    }

    fn options(extra: serde_json::Value) -> Options {
        let mut o = serde_json::json!({ "mode": "managed" });
        o.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(o).unwrap()
    }

    #[test]
    fn ack_every_defaults_to_100_or_half_the_prefetch_and_stays_within_it() {
        use mq_core::delivery::ConsumerAck;
        use serde_json::json;
        let delivery = Delivery {
            producer_ack: ProducerAck::Leader,
            consumer_ack: ConsumerAck::AfterProcess,
            durability: Durability::Persistent,
            consumer_dedup: Default::default(),
        };
        assert_eq!(options(json!({})).ack_every(), 100);
        assert_eq!(options(json!({ "prefetch": 50 })).ack_every(), 25);
        assert_eq!(options(json!({ "prefetch": 1 })).ack_every(), 1);
        assert_eq!(options(json!({ "ack_every": 7 })).ack_every(), 7);
        let at = options(json!({ "prefetch": 10, "ack_every": 10 }));
        assert!(at.check(&delivery).is_empty());
        let e = options(json!({ "prefetch": 10, "ack_every": 11 })).check(&delivery);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].path, "options.ack_every");
        assert!(e[0].message.contains("valid: 1 to 10"), "{}", e[0].message);
    }
}
