//! The tokio runtime each handle owns, bounded AMQP connects, and the endpoint workers receive.

use std::future::Future;
use std::time::Duration;

use lapin::{Connection, ConnectionProperties};
use mq_core::BackendError;
use serde::{Deserialize, Serialize};

use crate::script::Node;
use crate::NAME;

/// How long a connect may take before the broker counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What `setup` hands every worker. No credentials: workers rebuild the URI from the options.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoint {
    /// The direct exchange every producer publishes to.
    pub exchange: String,
    /// Queue of partition p, bound with routing key `p`.
    pub queues: Vec<String>,
    /// `amqp://host:port/vhost` of every node (a cluster's in node order), for messages;
    /// workers make their URIs from the options in the same order.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// The managed node or cluster, for whoever needs to kill or restart it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<Node>,
}

impl Endpoint {
    pub fn from_value(v: &serde_json::Value) -> Result<Endpoint, BackendError> {
        mq_core::backend::endpoint(NAME, v)
    }
}

/// A runtime with one worker thread: lapin spawns its own tasks (heartbeats, acks), which must
/// progress between our `block_on` calls.
pub fn runtime() -> Result<tokio::runtime::Runtime, BackendError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("mq-rabbitmq")
        .enable_all()
        .build()
        .map_err(|e| BackendError::io(NAME, "cannot start the tokio runtime", e))
}

/// Connects within [`CONNECT_TIMEOUT`]; errors name the address (never the credentials).
pub async fn connect(uri: &str, shown: &str, name: &str) -> Result<Connection, BackendError> {
    let props = ConnectionProperties::default().with_connection_name(name.into());
    match tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect(uri, props)).await {
        Ok(Ok(c)) => Ok(c),
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

/// Runs `f` with a bound, naming `what` in the error.
pub async fn bounded<T, E: std::fmt::Display>(
    limit: Duration,
    what: impl Fn() -> String,
    f: impl Future<Output = Result<T, E>>,
) -> Result<T, BackendError> {
    match tokio::time::timeout(limit, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(BackendError::other(NAME, format!("{}: {e}", what()))),
        Err(_) => Err(BackendError::other(
            NAME,
            format!("{}: no answer within {}s", what(), limit.as_secs()),
        )),
    }
}

/// `tokio::time::timeout`, built lazily: a timeout made outside the runtime (as an argument of
/// `block_on`) panics.
pub async fn within<F: Future>(
    limit: Duration,
    f: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    tokio::time::timeout(limit, f).await
}
