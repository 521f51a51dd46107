//! What producers, consumers and the coordinator share: the endpoint, base client settings, and
//! a bounded first contact that names the address when nobody answers.

use std::time::Duration;

use mq_core::BackendError;
use rdkafka::client::{Client, ClientContext};
use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

use crate::options::value_string;
use crate::script::Node;
use crate::NAME;

/// How long the first metadata request may take before the cluster counts as unreachable.
pub const REACH_TIMEOUT: Duration = Duration::from_secs(10);

/// What `setup` hands every worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Endpoint {
    pub topic: String,
    /// A pipeline's input topic: the producers write it, the stages read it and write `topic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// Consumer group: committed offsets live here.
    pub group: String,
    pub bootstrap: String,
    pub partitions: u32,
    /// The managed broker, for whoever needs to kill or restart it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<Node>,
}

impl Endpoint {
    pub fn from_value(v: &serde_json::Value) -> Result<Endpoint, BackendError> {
        mq_core::backend::endpoint(NAME, v)
    }
}

/// Settings every client of a run has.
pub fn base_config(bootstrap: &str, client_id: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("client.id", client_id)
        .set("broker.address.family", "v4")
        .set("socket.connection.setup.timeout.ms", "10000");
    c
}

/// Applies a free-form `producer_config` / `consumer_config` table (validated already).
pub fn apply(c: &mut ClientConfig, extra: &std::collections::BTreeMap<String, serde_json::Value>) {
    for (k, v) in extra {
        if let Some(s) = value_string(v) {
            c.set(k, s);
        }
    }
}

/// One metadata request within [`REACH_TIMEOUT`]: clients never fail on their own when no
/// broker answers, they retry forever.
pub fn reach<C: ClientContext>(
    client: &Client<C>,
    bootstrap: &str,
    topic: Option<&str>,
) -> Result<(), BackendError> {
    match client.fetch_metadata(topic, REACH_TIMEOUT) {
        Ok(md) => {
            if let Some(t) = topic {
                match md.topics().iter().find(|x| x.name() == t) {
                    Some(x) if x.error().is_none() => Ok(()),
                    Some(x) => Err(BackendError::other(
                        NAME,
                        format!(
                            "topic {t} on {bootstrap}: {:?}",
                            x.error().expect("checked")
                        ),
                    )),
                    None => Err(BackendError::other(
                        NAME,
                        format!("topic {t} does not exist on {bootstrap}"),
                    )),
                }
            } else {
                Ok(())
            }
        }
        Err(e) => Err(BackendError::other(
            NAME,
            format!(
                "cannot reach the Kafka cluster at {bootstrap} within {}s: {e}",
                REACH_TIMEOUT.as_secs()
            ),
        )),
    }
}
