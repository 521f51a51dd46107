//! What every side shares: the names of a variant's stream, subjects and consumers, their
//! configs (declared once here), the endpoint workers receive, the tokio runtime each handle
//! owns, bounded connects, and `ensure`, which (re)creates the stream and consumers.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::stream::{self, StorageType};
use async_nats::jetstream::{self, Context};
use async_nats::Client;
use mq_core::delivery::{ConsumerAck, Durability};
use mq_core::plan::VariantPlan;
use mq_core::BackendError;
use serde::{Deserialize, Serialize};

use crate::options::Options;
use crate::script::Node;
use crate::NAME;

/// How long a connect may take before the server counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A JetStream API request (create, info, delete).
pub const OP_TIMEOUT: Duration = Duration::from_secs(10);

/// What `setup` hands every worker. No credentials: workers rebuild the URL from the options.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoint {
    /// The stream: `mqb-<run>-<variant>` (characters a stream name may not hold made `_`).
    pub stream: String,
    /// File or memory storage (`durability`).
    pub file: bool,
    /// Explicit acks (`after-process`) or none (`auto`).
    pub explicit: bool,
    pub ack_wait_ms: u32,
    pub max_ack_pending: u32,
    pub partitions: u32,
    /// Stream replicas: 1, or 3 on the managed cluster.
    #[serde(default = "one")]
    pub replicas: usize,
    /// `nats://host:port` (a cluster's nodes, comma-separated), for messages.
    pub address: String,
    /// The managed server, for whoever needs to kill or restart it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<Node>,
}

fn one() -> usize {
    1
}

impl Endpoint {
    pub fn new(plan: &VariantPlan, options: &Options, run_tag: &str, address: String) -> Endpoint {
        Endpoint {
            stream: stream_name(run_tag, &plan.name),
            file: plan.delivery.durability == Durability::Persistent,
            explicit: plan.delivery.consumer_ack == ConsumerAck::AfterProcess,
            ack_wait_ms: options.ack_wait_ms,
            max_ack_pending: options.max_ack_pending,
            partitions: plan.workload.partitions,
            replicas: if options.cluster() { 3 } else { 1 },
            address,
            node: None,
        }
    }

    pub fn from_value(v: &serde_json::Value) -> Result<Endpoint, BackendError> {
        mq_core::backend::endpoint(NAME, v)
    }

    /// Subject of partition `p`: `<stream>.<p>`.
    pub fn subject(&self, p: u32) -> String {
        format!("{}.{p}", self.stream)
    }

    /// The durable pull consumer reading partition `p`.
    pub fn consumer(&self, p: u32) -> String {
        format!("p{p}")
    }

    pub fn stream_config(&self) -> stream::Config {
        stream::Config {
            name: self.stream.clone(),
            subjects: vec![format!("{}.*", self.stream)],
            storage: if self.file {
                StorageType::File
            } else {
                StorageType::Memory
            },
            num_replicas: self.replicas,
            ..Default::default()
        }
    }

    pub fn consumer_config(&self, p: u32) -> pull::Config {
        pull::Config {
            durable_name: Some(self.consumer(p)),
            filter_subject: self.subject(p),
            deliver_policy: DeliverPolicy::All,
            ack_policy: if self.explicit {
                AckPolicy::Explicit
            } else {
                AckPolicy::None
            },
            ack_wait: Duration::from_millis(u64::from(self.ack_wait_ms)),
            max_ack_pending: i64::from(self.max_ack_pending),
            ..Default::default()
        }
    }

    /// Creates the stream and the consumers of `partitions` unless they exist (a memory
    /// stream does not survive a restart of its server); returns the stream handle.
    pub async fn ensure(
        &self,
        js: &Context,
        partitions: impl Iterator<Item = u32>,
    ) -> Result<stream::Stream, BackendError> {
        let stream = bounded(
            || format!("creating stream {} on {}", self.stream, self.address),
            js.get_or_create_stream(self.stream_config()),
        )
        .await?;
        for p in partitions {
            bounded(
                || format!("creating consumer {} of {}", self.consumer(p), self.stream),
                stream.get_or_create_consumer(&self.consumer(p), self.consumer_config(p)),
            )
            .await?;
        }
        Ok(stream)
    }
}

/// A stream name from the run tag and the variant: letters, digits, `-` and `_` only (NATS
/// refuses `.`, `*`, `>`, spaces and path separators in names and subject tokens).
pub fn stream_name(run_tag: &str, variant: &str) -> String {
    format!("mqb-{run_tag}-{variant}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A runtime with one worker thread: async-nats runs its connection and ack tasks there, which
/// must progress between our `block_on` calls.
pub fn runtime() -> Result<tokio::runtime::Runtime, BackendError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("mq-nats")
        .enable_all()
        .build()
        .map_err(|e| BackendError::io(NAME, "cannot start the tokio runtime", e))
}

/// A client and how many times it has (re)connected: a worker that sees the count grow makes
/// sure its stream (and consumers) still exist, as a memory stream does not survive its
/// server's restart.
pub struct Connection {
    pub client: Client,
    connects: Arc<AtomicU64>,
    seen: u64,
}

impl Connection {
    /// Whether the client connected again since the last call.
    pub fn reconnected(&mut self) -> bool {
        let now = self.connects.load(Ordering::Relaxed);
        std::mem::replace(&mut self.seen, now) != now
    }
}

/// Connects to one of `urls` within [`CONNECT_TIMEOUT`] (later losses are reconnected by the
/// client itself, to any of them, without a limit); errors name the addresses, never the
/// credentials.
pub async fn connect(urls: &[String], shown: &str, name: &str) -> Result<Connection, BackendError> {
    let connects = Arc::new(AtomicU64::new(0));
    let count = connects.clone();
    let connect = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None)
        .event_callback(move |event| {
            let count = count.clone();
            async move {
                if matches!(event, async_nats::Event::Connected) {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .connect(urls);
    match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok(client)) => {
            let seen = connects.load(Ordering::Relaxed);
            Ok(Connection {
                client,
                connects,
                seen,
            })
        }
        Ok(Err(e)) => Err(BackendError::other(
            NAME,
            format!("cannot connect to {shown}: {e}"),
        )),
        Err(_) => Err(BackendError::other(
            NAME,
            format!(
                "no answer from {shown} within {}s",
                CONNECT_TIMEOUT.as_secs()
            ),
        )),
    }
}

/// A JetStream context whose requests and PubAcks wait up to `ack_timeout`, with room for
/// `in_flight` outstanding PubAcks. Its PubAck task is spawned on `rt`.
pub fn jetstream(
    rt: &tokio::runtime::Runtime,
    client: Client,
    ack_timeout: Duration,
    in_flight: usize,
) -> Context {
    let _in = rt.enter();
    jetstream::ContextBuilder::new()
        .timeout(ack_timeout)
        .max_ack_inflight(in_flight)
        .build(client)
}

/// Runs `f` within [`OP_TIMEOUT`], naming `what` in the error.
pub async fn bounded<T, E: std::fmt::Display>(
    what: impl Fn() -> String,
    f: impl Future<Output = Result<T, E>>,
) -> Result<T, BackendError> {
    match tokio::time::timeout(OP_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(BackendError::other(NAME, format!("{}: {e}", what()))),
        Err(_) => Err(BackendError::other(
            NAME,
            format!("{}: no answer within {}s", what(), OP_TIMEOUT.as_secs()),
        )),
    }
}

/// `f`, abandoned with `Interrupted` as soon as the worker is asked to stop.
pub async fn unless_stopped<T>(
    f: impl Future<Output = Result<T, BackendError>>,
) -> Result<T, BackendError> {
    let stopped = async {
        loop {
            if mq_core::stop::requested() {
                return Err(BackendError::Interrupted { backend: NAME });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    futures_lite::future::or(f, stopped).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_hold_only_characters_nats_accepts() {
        assert_eq!(
            stream_name("20260101T120000Z-x.y", "nats ack/all"),
            "mqb-20260101T120000Z-x_y-nats_ack_all"
        );
    }
}
