//! The `log` backend: the in-house append-only log (`mq-log`) through its TCP protocol.
//!
//! Managed by default: `bench` starts `bench log serve` on a fresh folder in the run and stops
//! it at the end; or an external server at `options.address`. Partitions are log partitions of
//! one topic per variant; consumers of one group read their assigned partitions and commit per
//! the consumer-ack setting. Backlog = end offsets − committed offsets.

mod broker;
mod consumer;
mod producer;

use std::path::Path;
use std::time::Duration;

use mq_core::fault::BrokerFault;
use mq_core::scenario::{FieldError, VariantPlan};
use mq_core::settings::{ConsumerAck, Durability, ProducerAck};
use mq_core::{
    Backend, BackendError, BackendInfo, Broker, Consumer, Delivery, OptionInfo, Producer, WorkerCtx,
};
use mq_log::client::{Ack, Client};
use serde::{Deserialize, Serialize};

const NAME: &str = "log";
/// How long a connection may take (managed or external server).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The in-house log backend.
pub struct LogBackend;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Mode {
    #[default]
    Managed,
    External,
}

/// `[variants.options]` of a log variant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default)]
    mode: Mode,
    /// External server address (`mode = "external"`).
    address: Option<String>,
    /// Server fsync policy: `never`, `interval:MS` or `always`. Default: from `durability`
    /// (memory → never, persistent → always). Managed mode only.
    fsync: Option<String>,
    /// Records per produce batch at most.
    #[serde(default = "defaults::batch_records")]
    batch_records: usize,
    /// Bytes per produce batch at most.
    #[serde(default = "defaults::batch_bytes")]
    batch_bytes: usize,
    /// Wait this long for a batch to fill before sending it (0: send as soon as a request slot is free).
    #[serde(default)]
    linger_ms: u64,
    /// Produce requests in flight per producer.
    #[serde(default = "defaults::max_in_flight")]
    max_in_flight: usize,
    /// Bytes per fetch.
    #[serde(default = "defaults::fetch_bytes")]
    fetch_bytes: u32,
    /// Segment size of the managed server.
    segment_bytes: Option<u64>,
    /// Keep the managed server's data folder after the run.
    #[serde(default)]
    keep: bool,
    /// Where a consumer resumes when its offset is not in the log (retention removed it).
    #[serde(default)]
    auto_offset_reset: OffsetReset,
}

/// Where a consumer goes when its position is outside the log, as Kafka's
/// `auto.offset.reset`: retention ignores committed offsets, so a consumer that fell behind
/// the retention limit finds its next offset gone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum OffsetReset {
    /// To the first offset the log still holds; the offsets skipped are counted and logged.
    #[default]
    Earliest,
    /// To the end of the log: only what is written from then on.
    Latest,
    /// Stop the consumer with an error naming the offsets.
    Error,
}

impl OffsetReset {
    fn name(self) -> &'static str {
        match self {
            OffsetReset::Earliest => "earliest",
            OffsetReset::Latest => "latest",
            OffsetReset::Error => "error",
        }
    }
}

mod defaults {
    pub fn batch_records() -> usize {
        1000
    }
    pub fn batch_bytes() -> usize {
        1 << 20
    }
    pub fn max_in_flight() -> usize {
        4
    }
    pub fn fetch_bytes() -> u32 {
        1 << 20
    }
}

/// What workers get from the broker.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Endpoint {
    address: String,
    topic: String,
    group: String,
}

impl Options {
    fn fsync(&self, durability: Durability) -> String {
        self.fsync.clone().unwrap_or_else(|| match durability {
            Durability::Memory => "never".into(),
            Durability::Persistent => "always".into(),
        })
    }
}

fn ack_level(a: ProducerAck) -> Ack {
    match a {
        ProducerAck::None => Ack::None,
        ProducerAck::Leader => Ack::Written,
        ProducerAck::All => Ack::Fsynced,
    }
}

impl Backend for LogBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: NAME,
            summary:
                "the in-house segmented append-only log (bench log serve), Kafka-like, over TCP",
            producer_ack: vec![
                (ProducerAck::None, "fire and forget: no acknowledgement"),
                (
                    ProducerAck::Leader,
                    "written to the log file (page cache); after the fsync under fsync = always",
                ),
                (ProducerAck::All, "an fsync covers the write (group commit)"),
            ],
            consumer_ack: vec![
                (
                    ConsumerAck::Auto,
                    "commit each fetch's offset before handling it (at-most-once)",
                ),
                (
                    ConsumerAck::AfterProcess,
                    "commit after handling (at-least-once)",
                ),
            ],
            durability: vec![
                (Durability::Memory, "fsync never: the page cache decides"),
                (
                    Durability::Persistent,
                    "fsync always (group commit), or options.fsync = \"interval:MS\"",
                ),
            ],
            defaults: Delivery {
                producer_ack: ProducerAck::Leader,
                consumer_ack: ConsumerAck::AfterProcess,
                durability: Durability::Memory,
            },
            options: vec![
                OptionInfo {
                    name: "mode",
                    default: "managed",
                    help: "managed (bench starts the server) or external",
                },
                OptionInfo {
                    name: "address",
                    default: "-",
                    help: "external server address, e.g. 127.0.0.1:7070",
                },
                OptionInfo {
                    name: "fsync",
                    default: "by durability",
                    help: "never | interval:MS | always (managed)",
                },
                OptionInfo {
                    name: "batch_records",
                    default: "1000",
                    help: "records per produce batch at most",
                },
                OptionInfo {
                    name: "batch_bytes",
                    default: "1048576",
                    help: "bytes per produce batch at most",
                },
                OptionInfo {
                    name: "linger_ms",
                    default: "0",
                    help: "wait for a batch to fill (0: send when a slot is free)",
                },
                OptionInfo {
                    name: "max_in_flight",
                    default: "4",
                    help: "produce requests in flight per producer",
                },
                OptionInfo {
                    name: "fetch_bytes",
                    default: "1048576",
                    help: "bytes per fetch",
                },
                OptionInfo {
                    name: "segment_bytes",
                    default: "67108864",
                    help: "segment size of the managed server",
                },
                OptionInfo {
                    name: "keep",
                    default: "false",
                    help: "keep the managed server's data folder",
                },
                OptionInfo {
                    name: "auto_offset_reset",
                    default: "earliest",
                    help: "earliest | latest | error: where a consumer whose offset retention removed resumes (skipped offsets are logged)",
                },
            ],
        }
    }

    fn validate(&self, plan: &VariantPlan) -> Vec<FieldError> {
        let o: Options = match plan.options() {
            Ok(o) => o,
            Err(e) => return vec![e],
        };
        let mut errors = Vec::new();
        match (o.mode, &o.address) {
            (Mode::External, None) => errors.push(FieldError::new(
                "options.address",
                "mode = \"external\" needs an address, e.g. \"127.0.0.1:7070\"",
            )),
            (Mode::Managed, Some(_)) => errors.push(FieldError::new(
                "options.address",
                "address is for mode = \"external\"; a managed server picks its own port",
            )),
            _ => {}
        }
        if let Some(f) = &o.fsync {
            match f.parse::<mq_log::storage::FsyncPolicy>() {
                Err(e) => errors.push(FieldError::new(
                    "options.fsync",
                    format!("{e}; valid: never, interval:MS, always"),
                )),
                Ok(p) => {
                    let never = p == mq_log::storage::FsyncPolicy::Never;
                    if never != (plan.delivery.durability == Durability::Memory) {
                        errors.push(FieldError::new(
                            "options.fsync",
                            format!(
                                "fsync = {f:?} contradicts durability = \"{}\": memory goes with never, persistent with interval:MS or always",
                                plan.delivery.durability
                            ),
                        ));
                    }
                }
            }
        }
        for (field, v) in [
            ("batch_records", o.batch_records),
            ("batch_bytes", o.batch_bytes),
            ("max_in_flight", o.max_in_flight),
        ] {
            if v == 0 {
                errors.push(FieldError::new(
                    format!("options.{field}"),
                    format!("{field} = 0: must be at least 1"),
                ));
            }
        }
        if (o.fetch_bytes as usize) < plan.workload.message_size + 64 {
            errors.push(FieldError::new(
                "options.fetch_bytes",
                "fetch_bytes must hold at least one message",
            ));
        }
        errors
    }

    fn broker_faults(&self) -> Vec<BrokerFault> {
        vec![BrokerFault::Kill, BrokerFault::Restart]
    }

    fn broker(
        &self,
        plan: &VariantPlan,
        dir: &Path,
        _run_tag: &str,
    ) -> Result<Box<dyn Broker>, BackendError> {
        Ok(Box::new(broker::LogBroker::new(
            plan.clone(),
            options(plan)?,
            dir,
        )))
    }

    fn producer(&self, ctx: &WorkerCtx) -> Result<Box<dyn Producer>, BackendError> {
        let (options, ep, client) = connect_worker(ctx)?;
        Ok(Box::new(producer::LogProducer::new(
            client,
            ep,
            &options,
            ack_level(ctx.plan.delivery.producer_ack),
            ctx,
        )))
    }

    fn consumer(&self, ctx: &WorkerCtx) -> Result<Box<dyn Consumer>, BackendError> {
        let (options, ep, client) = connect_worker(ctx)?;
        consumer::LogConsumer::new(client, ep, &options, ctx)
            .map(|c| Box::new(c) as Box<dyn Consumer>)
    }
}

fn options(plan: &VariantPlan) -> Result<Options, BackendError> {
    plan.options()
        .map_err(|e| BackendError::other(NAME, e.message))
}

/// What a producer or consumer starts from: the variant's options, the server's endpoint and a
/// connection to it.
fn connect_worker(ctx: &WorkerCtx) -> Result<(Options, Endpoint, Client), BackendError> {
    let options = options(&ctx.plan)?;
    let ep = endpoint(ctx)?;
    let client = connect(&ep.address)?;
    Ok((options, ep, client))
}

fn endpoint(ctx: &WorkerCtx) -> Result<Endpoint, BackendError> {
    serde_json::from_value(ctx.endpoint.clone())
        .map_err(|e| BackendError::other(NAME, format!("bad endpoint: {e}")))
}

fn connect(address: &str) -> Result<Client, BackendError> {
    Client::connect(address, CONNECT_TIMEOUT).map_err(|e| BackendError::other(NAME, e.to_string()))
}

fn client_err(what: &str, e: mq_log::client::ClientError) -> BackendError {
    BackendError::other(NAME, format!("{what}: {e}"))
}
