//! `[variants.options]` of a nats variant, their checks, and where the server URL comes from.

use mq_core::delivery::{Durability, ProducerAck};
use mq_core::plan::FieldError;
use mq_core::Delivery;
use schemars::JsonSchema;
use serde::Deserialize;

pub use mq_core::backend::Mode;

/// Environment variable holding the URL of an external server (it may carry credentials).
pub const URL_ENV: &str = "MQ_BENCH_NATS_URL";

/// Nodes of the managed cluster (`nats.sh --nodes 3`).
pub const CLUSTER_NODES: u8 = 3;

/// The options a nats variant may set.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// `managed`: a private server run by `scripts/brokers/nats.sh`; `external`: a server
    /// already running at `url` / `$MQ_BENCH_NATS_URL`.
    #[serde(default)]
    pub mode: Mode,
    /// External server URL, e.g. `nats://127.0.0.1:4222` (a cluster: its nodes' URLs,
    /// comma-separated); `$MQ_BENCH_NATS_URL` wins when set.
    #[serde(default)]
    pub url: Option<String>,
    /// Managed server client port (its monitoring port is port + 4000); default 4222. In the
    /// cluster node N listens on port + N - 1.
    #[serde(default)]
    #[schemars(range(min = 1, max = 61_533))]
    pub port: Option<u16>,
    /// Managed servers: 1 (a single server) or 3 (a JetStream cluster of three servers on
    /// 127.0.0.1, the stream replicated on all three).
    #[serde(default = "defaults::nodes")]
    pub nodes: u8,
    /// JetStream publishes awaiting their PubAck before `send` waits for the oldest.
    #[serde(default = "defaults::max_in_flight")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub max_in_flight: u32,
    /// Messages each pull request of a consumer asks for (the client buffers at most this many).
    #[serde(default = "defaults::batch")]
    #[schemars(range(min = 1, max = 100_000))]
    pub batch: u32,
    /// The consumer's `max_ack_pending`: delivered, unacknowledged messages the server allows
    /// before it stops delivering (explicit acks only).
    #[serde(default = "defaults::max_ack_pending")]
    #[schemars(range(min = 1, max = 10_000_000))]
    pub max_ack_pending: u32,
    /// The consumer's `ack_wait`: an unacknowledged delivery is redelivered after this long.
    #[serde(default = "defaults::ack_wait_ms")]
    #[schemars(range(min = 100, max = 3_600_000))]
    pub ack_wait_ms: u32,
    /// How long a consumer keeps trying to get its pull subscription back (after the server
    /// was lost or its stream recreated) before it ends with an error.
    #[serde(default = "defaults::reconnect_timeout_ms")]
    #[schemars(range(min = 0, max = 3_600_000))]
    pub reconnect_timeout_ms: u32,
    /// Keep the stream and a managed server's data after the run.
    #[serde(default)]
    pub keep: bool,
}

pub mod defaults {
    pub fn port() -> u16 {
        4222
    }
    pub fn nodes() -> u8 {
        1
    }
    pub fn max_in_flight() -> u32 {
        4096
    }
    pub fn batch() -> u32 {
        500
    }
    pub fn max_ack_pending() -> u32 {
        10_000
    }
    pub fn ack_wait_ms() -> u32 {
        5_000
    }
    pub fn reconnect_timeout_ms() -> u32 {
        60_000
    }
}

impl Options {
    /// Checks that need no server; paths are relative to the variant.
    pub fn check(&self, delivery: &Delivery) -> Vec<FieldError> {
        let mut e = Vec::new();
        if self.nodes != 1 && self.nodes != CLUSTER_NODES {
            e.push(FieldError::new(
                "options.nodes",
                format!(
                    "nodes = {}: valid are 1 (a single server) and {CLUSTER_NODES} (a cluster)",
                    self.nodes
                ),
            ));
        }
        match self.mode {
            Mode::Managed => {
                if self.url.is_some() {
                    e.push(FieldError::new(
                        "options.url",
                        "url is only for mode = \"external\"; a managed server listens on 127.0.0.1:<port>",
                    ));
                }
            }
            Mode::External => {
                if self.nodes != 1 {
                    e.push(FieldError::new(
                        "options.nodes",
                        "nodes is for managed servers; an external cluster is reached at url (its nodes' URLs, comma-separated)",
                    ));
                }
                if self.port.is_some() {
                    e.push(FieldError::new(
                        "options.port",
                        "port is for managed servers; an external server's port is in url",
                    ));
                }
                match (std::env::var(URL_ENV).ok(), &self.url) {
                    (None, None) => e.push(FieldError::new(
                        "options.url",
                        format!(
                            "mode = \"external\" needs url = \"nats://host:port\" (or ${URL_ENV})"
                        ),
                    )),
                    (Some(env), _) => {
                        if let Err(m) = shown_urls(&env) {
                            e.push(FieldError::new("options.url", format!("${URL_ENV}: {m}")));
                        }
                    }
                    (None, Some(url)) => {
                        if let Err(m) = shown_urls(url) {
                            e.push(FieldError::new("options.url", m));
                        }
                    }
                }
                if delivery.producer_ack == ProducerAck::All {
                    e.push(FieldError::new(
                        "producer_ack",
                        "nats producer_ack = \"all\" is a PubAck from a server with sync_interval: always, which bench sets on the servers it manages only; with mode = \"external\" use \"leader\" (the server's own sync_interval applies) or \"none\"",
                    ));
                }
            }
        }
        if delivery.producer_ack == ProducerAck::All && delivery.durability == Durability::Memory {
            e.push(FieldError::new(
                "producer_ack",
                "nats producer_ack = \"all\" means a PubAck once the message is fsynced to the file store, which needs durability = \"persistent\"; valid with memory: none, leader",
            ));
        }
        e
    }

    /// The managed server's client port.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or_else(defaults::port)
    }

    /// A managed cluster of [`CLUSTER_NODES`] (not a single server).
    pub fn cluster(&self) -> bool {
        self.mode == Mode::Managed && self.nodes == CLUSTER_NODES
    }

    /// The URLs to connect to (credentials included; a cluster's every node) and how to name
    /// them in messages (without credentials).
    pub fn connect_urls(&self) -> Result<(Vec<String>, String), String> {
        let urls = match self.mode {
            Mode::Managed => {
                let nodes = if self.cluster() { CLUSTER_NODES } else { 1 };
                (0..u16::from(nodes))
                    .map(|i| format!("nats://127.0.0.1:{}", self.port() + i))
                    .collect::<Vec<_>>()
                    .join(",")
            }
            Mode::External => std::env::var(URL_ENV)
                .ok()
                .or_else(|| self.url.clone())
                .ok_or_else(|| format!("mode = \"external\" needs options.url or ${URL_ENV}"))?,
        };
        let shown = shown_urls(&urls)?;
        Ok((
            urls.split(',').map(|u| u.trim().to_owned()).collect(),
            shown,
        ))
    }
}

/// Checks a comma-separated list of NATS URLs; returns it without credentials.
pub fn shown_urls(urls: &str) -> Result<String, String> {
    let shown: Vec<String> = urls
        .split(',')
        .map(|u| shown_url(u.trim()))
        .collect::<Result<_, _>>()?;
    Ok(shown.join(","))
}

/// Checks a NATS URL (`nats://[user:password@]host:port`); returns it without credentials.
pub fn shown_url(url: &str) -> Result<String, String> {
    let bad = |why: &str| {
        format!("{url:?} is not a NATS URL ({why}); expected nats://[user:password@]host:port")
    };
    let rest = url
        .strip_prefix("nats://")
        .ok_or_else(|| bad("it must start with nats://; tls:// is not supported by this build"))?;
    let authority = rest.trim_end_matches('/');
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = host_port.rsplit_once(':').ok_or_else(|| bad("no :port"))?;
    if host.is_empty() || host.contains('/') {
        return Err(bad("no host"));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| bad("the port is not a number 1..65535"))?;
    if port == 0 {
        return Err(bad("port 0"));
    }
    Ok(format!("nats://{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_credentials_and_bad_ones_say_what_is_valid() {
        assert_eq!(
            shown_url("nats://u:secret@127.0.0.1:4223").unwrap(),
            "nats://127.0.0.1:4223"
        );
        assert_eq!(shown_url("nats://h:1/").unwrap(), "nats://h:1");
        assert_eq!(
            shown_urls("nats://a:b@h:1, nats://h:2").unwrap(),
            "nats://h:1,nats://h:2"
        );
        assert!(shown_urls("nats://h:1,").is_err());
        for bad in [
            "tls://h:1",
            "nats://h",
            "nats://:4222",
            "nats://h:x",
            "h:4222",
        ] {
            let e = shown_url(bad).unwrap_err();
            assert!(e.contains("expected nats://"), "{bad}: {e}");
        }
    }
}
