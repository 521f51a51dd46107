//! What workers and the coordinator share: the endpoint a run's broker hands out, and the
//! client runtime rocketmq-client-rust needs (its own tokio runtime plus a client runtime).

use std::sync::Arc;

use cheetah_string::CheetahString;
use mq_core::BackendError;
use rocketmq_client_rust::{ClientRuntime, ClientRuntimeConfig};
use rocketmq_model::common::message::message_queue::MessageQueue;
use rocketmq_runtime::{RuntimeConfig, RuntimeOwner};
use serde::{Deserialize, Serialize};

use crate::NAME;

/// What every worker of a variant is handed by [`crate::broker::RocketBroker`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoint {
    /// The name server, `host:port`.
    pub namesrv: String,
    pub topic: String,
    /// The consumer group (also the producer group's stem).
    pub group: String,
    /// `brokerName` of the broker holding the topic's queues.
    pub broker_name: String,
    /// Queues of the topic: partition p is queue p.
    pub queues: u32,
}

impl Endpoint {
    pub fn from_value(v: &serde_json::Value) -> Result<Endpoint, BackendError> {
        mq_core::backend::endpoint(NAME, v)
    }

    /// Queue `p` of the topic.
    pub fn queue(&self, p: u32) -> MessageQueue {
        MessageQueue::from_parts(self.topic.as_str(), self.broker_name.as_str(), p as i32)
    }
}

/// The runtimes a client lives in; dropped after the client itself.
pub struct Runtime {
    pub client: Arc<ClientRuntime>,
    pub owner: RuntimeOwner,
    _telemetry: rocketmq_observability::TelemetryRuntimeGuard,
}

impl Runtime {
    /// A small runtime (two worker threads) named after `who`.
    pub fn new(who: &str) -> Result<Runtime, BackendError> {
        let err = |what: &str, e: String| BackendError::other(NAME, format!("{what}: {e}"));
        let owner = RuntimeOwner::plan(RuntimeConfig {
            thread_name: format!("mqb-rocketmq-{who}"),
            worker_threads: 2,
            ..Default::default()
        })
        .map_err(|e| err("client runtime configuration", e.to_string()))?
        .build()
        .map_err(|e| err("starting the client runtime", e.to_string()))?;
        let telemetry = rocketmq_observability::TelemetryRuntimeGuard::noop();
        let client = ClientRuntime::try_new(
            owner.root_context().component("client"),
            ClientRuntimeConfig::default(),
            telemetry.handle(),
        )
        .map_err(|e| err("starting the client runtime", e.to_string()))?;
        Ok(Runtime {
            client,
            owner,
            _telemetry: telemetry,
        })
    }

    /// Runs `f` to completion on the runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.owner.block_on(f)
    }

    /// The runtime's tokio handle, to spawn on from a worker thread.
    pub fn handle(&self) -> tokio::runtime::Handle {
        self.owner
            .block_on(async { tokio::runtime::Handle::current() })
    }

    /// Closes the client runtime (best effort, bounded).
    pub fn shutdown(self) {
        let client = self.client.clone();
        let _ = self.owner.block_on(async move {
            tokio::time::timeout(std::time::Duration::from_secs(5), client.shutdown()).await
        });
        let _ = self
            .owner
            .shutdown_runtime_blocking_with_timeout(std::time::Duration::from_secs(5));
    }
}

/// A name for the client library.
pub fn cs(s: &str) -> CheetahString {
    CheetahString::from(s.to_owned())
}
