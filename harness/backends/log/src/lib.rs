//! The `log` backend: the in-house append-only log (`mqlog`) through its TCP protocol.
//!
//! Managed by default: `bench` starts `bench log serve` on a fresh folder in the run and stops
//! it at the end; or an external server at `options.address`. Partitions are log partitions of
//! one topic per variant; consumers of one group read their assigned partitions and commit per
//! the consumer-ack setting. Backlog = end offsets − committed offsets.

mod broker;
mod consumer;
mod member;
mod producer;

use std::path::Path;
use std::time::Duration;

use mq_core::backend::Mode;
use mq_core::delivery::{ConsumerAck, Durability, ProducerAck};
use mq_core::plan::BrokerFault;
use mq_core::plan::{FieldError, VariantPlan};
use mq_core::{
    Backend, BackendError, BackendInfo, Broker, Consumer, Delivery, Producer, WorkerCtx,
};
use mqlog::client::{Ack, Client};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

const NAME: &str = "log";
/// How long a connection may take (managed or external server).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The in-house log backend.
pub struct LogBackend;

/// `[variants.options]` of a log variant.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    /// `managed`: bench starts `bench log serve` in the run folder; `external`: a server
    /// already running at `address`.
    #[serde(default)]
    mode: Mode,
    /// External server address, e.g. `127.0.0.1:7070` (`mode = "external"`).
    address: Option<String>,
    /// Server fsync policy: `never`, `interval:MS` or `always`. Default: from `durability`
    /// (memory → never, persistent → always). Managed mode only.
    fsync: Option<String>,
    /// Records per produce batch at most.
    #[serde(default = "defaults::batch_records")]
    #[schemars(range(min = 1, max = 1_000_000))]
    batch_records: usize,
    /// Bytes per produce batch at most (a batch is one request frame).
    #[serde(default = "defaults::batch_bytes")]
    #[schemars(range(min = 1, max = mqlog::protocol::MAX_FRAME_LEN / 2))]
    batch_bytes: usize,
    /// How long a batch may wait to fill before it is sent (0: as soon as a request slot is
    /// free).
    #[serde(default)]
    #[schemars(range(min = 0, max = 60_000))]
    linger_ms: u64,
    /// Produce requests in flight per producer.
    #[serde(default = "defaults::max_in_flight")]
    #[schemars(range(min = 1, max = 1024))]
    max_in_flight: usize,
    /// How long a batch may wait for a connection to the server before its messages fail as
    /// not sent (Kafka's delivery.timeout.ms).
    #[serde(default = "defaults::delivery_timeout_ms")]
    #[schemars(range(min = 1, max = 3_600_000))]
    delivery_timeout_ms: u64,
    /// Bytes a producer buffers while it has no connection (at least batch_bytes); a send
    /// waits when they are full.
    #[serde(default = "defaults::buffer_bytes")]
    #[schemars(range(min = 1, max = 1_073_741_824))]
    buffer_bytes: usize,
    /// Bytes per fetch (at least one message).
    #[serde(default = "defaults::fetch_bytes")]
    #[schemars(range(min = 1, max = mqlog::protocol::MAX_FETCH_BYTES))]
    fetch_bytes: u32,
    /// `after-process`: commit what was processed at most this often (ms), as Kafka's
    /// auto-commit interval does; 0 (the default): after every fetch. A longer interval means
    /// fewer commits and more redeliveries after a consumer's crash.
    #[serde(default)]
    #[schemars(range(min = 0, max = 60_000))]
    commit_interval_ms: u64,
    /// Segment size of the managed server; default 64 MiB.
    #[schemars(range(min = 1024, max = mqlog::storage::MAX_SEGMENT_BYTES))]
    segment_bytes: Option<u64>,
    /// Keep the managed server's data folder after the run.
    #[serde(default)]
    keep: bool,
    /// Where a consumer resumes when its offset is not in the log (retention removed it).
    #[serde(default)]
    auto_offset_reset: OffsetReset,
    /// `manual` (consumer i reads every consumers-th partition from i) or `group` (all
    /// consumers of the variant in one group on the server, which shares the partitions out
    /// and moves them when a member dies or leaves; allows more consumers than partitions).
    #[serde(default)]
    assignment: member::Assignment,
    /// Group only: a member silent this long is removed and its partitions move; default
    /// 10000.
    #[serde(default)]
    #[schemars(range(min = 1_000, max = 300_000))]
    session_timeout_ms: Option<u32>,
    /// Group only: how often a member heartbeats, below the session timeout; default 1000.
    #[serde(default)]
    #[schemars(range(min = 100, max = 60_000))]
    heartbeat_interval_ms: Option<u32>,
}

/// Where a consumer goes when its position is outside the log, as Kafka's
/// `auto.offset.reset`: retention ignores committed offsets, so a consumer that fell behind
/// the retention limit finds its next offset gone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
    pub fn delivery_timeout_ms() -> u64 {
        30_000
    }
    pub fn buffer_bytes() -> usize {
        32 << 20
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
                consumer_dedup: Default::default(),
            },
            options: mq_core::options::describe::<Options>(),
        }
    }

    fn competing_consumers(&self, plan: &VariantPlan) -> Result<(), String> {
        match plan.options::<Options>() {
            Ok(o) if o.assignment == member::Assignment::Group => Ok(()),
            _ => Err("log consumers are assigned partitions by hand (options.assignment = \"manual\"), so extra consumers would idle; set options.assignment = \"group\" for a consumer group whose extra members wait for a rebalance".into()),
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
            match f.parse::<mqlog::storage::FsyncPolicy>() {
                Err(e) => errors.push(FieldError::new(
                    "options.fsync",
                    format!("{e}; valid: never, interval:MS, always"),
                )),
                Ok(p) => {
                    let never = p == mqlog::storage::FsyncPolicy::Never;
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
        // The declared bounds are checked from the schema; these depend on the workload.
        let size = plan.workload.message_size;
        if o.buffer_bytes < o.batch_bytes.max(size) {
            errors.push(FieldError::new(
                "options.buffer_bytes",
                format!(
                    "buffer_bytes = {} cannot hold one batch; valid: at least batch_bytes ({}) and message_size ({size})",
                    o.buffer_bytes, o.batch_bytes
                ),
            ));
        }
        if (o.fetch_bytes as usize) < size + 64 {
            errors.push(FieldError::new(
                "options.fetch_bytes",
                format!(
                    "fetch_bytes = {} cannot hold one {size}-byte message; valid: at least {}",
                    o.fetch_bytes,
                    size + 64
                ),
            ));
        }
        member::check_group(&o, &mut errors);
        errors
    }

    fn broker_faults(&self) -> Vec<BrokerFault> {
        vec![
            BrokerFault::Kill,
            BrokerFault::Restart,
            BrokerFault::Pause,
            BrokerFault::Resume,
        ]
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
    plan.backend_options(NAME)
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

fn client_err(what: &str, e: mqlog::client::ClientError) -> BackendError {
    BackendError::other(NAME, format!("{what}: {e}"))
}
