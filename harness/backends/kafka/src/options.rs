//! `[variants.options]` of a kafka variant and their checks.

use std::collections::BTreeMap;

use mq_core::scenario::FieldError;
use mq_core::settings::ProducerAck;
use mq_core::Delivery;
use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

/// Who runs the broker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// `bench` starts a single KRaft node with `scripts/brokers/kafka.sh` and stops it at the end.
    #[default]
    Managed,
    /// A cluster that is already running, reached at `bootstrap`.
    External,
}

/// `compression.type` of the producer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// The options a kafka variant may set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    #[serde(default)]
    pub mode: Mode,
    /// External cluster, `host:port[,host:port…]`.
    #[serde(default)]
    pub bootstrap: Option<String>,
    /// Managed broker port (its controller listens on port + 1).
    #[serde(default = "defaults::port")]
    pub port: u16,
    /// `enable.idempotence` (needs `producer_ack = "all"`).
    #[serde(default)]
    pub idempotence: bool,
    /// `linger.ms`; librdkafka's default (5) when absent.
    #[serde(default)]
    pub linger_ms: Option<u32>,
    /// `batch.size` in bytes; librdkafka's default when absent.
    #[serde(default)]
    pub batch_size: Option<u32>,
    #[serde(default)]
    pub compression: Compression,
    /// Replication factor of the run's topic; the broker's default when absent.
    #[serde(default)]
    pub replication_factor: Option<u16>,
    /// `after-process` consumers commit (async) after this many deliveries, or 200 ms.
    #[serde(default = "defaults::commit_every")]
    pub commit_every: u32,
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
    pub fn commit_every() -> u32 {
        1000
    }
}

/// Properties the backend owns; setting them in a free-form table would break the run.
const OWNED: &[&str] = &[
    "bootstrap.servers",
    "metadata.broker.list",
    "group.id",
    "enable.auto.commit",
];

impl Options {
    /// Checks that need no broker; paths are relative to the variant.
    pub fn check(&self, delivery: &Delivery) -> Vec<FieldError> {
        let mut e = Vec::new();
        match self.mode {
            Mode::Managed => {
                if self.bootstrap.is_some() {
                    e.push(FieldError::new(
                        "options.bootstrap",
                        "bootstrap is only for mode = \"external\"; a managed broker listens on 127.0.0.1:<port>",
                    ));
                }
                if self.port == 0 || self.port == u16::MAX {
                    e.push(FieldError::new(
                        "options.port",
                        format!(
                            "port = {}: valid is 1 to 65534 (the controller uses port + 1)",
                            self.port
                        ),
                    ));
                }
                if let Some(rf) = self.replication_factor.filter(|&rf| rf != 1) {
                    e.push(FieldError::new(
                        "options.replication_factor",
                        format!("replication_factor = {rf}: the managed broker is a single node; valid is 1 (or use mode = \"external\")"),
                    ));
                }
            }
            Mode::External => match &self.bootstrap {
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
            },
        }
        if self.replication_factor == Some(0) {
            e.push(FieldError::new(
                "options.replication_factor",
                "replication_factor = 0: valid is 1 or more",
            ));
        }
        if self.idempotence && delivery.producer_ack != ProducerAck::All {
            e.push(FieldError::new(
                "options.idempotence",
                format!(
                    "idempotence needs acks=all but producer_ack = \"{}\": set producer_ack = \"all\" or idempotence = false",
                    delivery.producer_ack
                ),
            ));
        }
        if let Some(l) = self.linger_ms.filter(|&l| l > 900_000) {
            e.push(FieldError::new(
                "options.linger_ms",
                format!("linger_ms = {l}: valid is 0 to 900000"),
            ));
        }
        if let Some(b) = self.batch_size.filter(|&b| b == 0 || b > i32::MAX as u32) {
            e.push(FieldError::new(
                "options.batch_size",
                format!("batch_size = {b}: valid is 1 to 2147483647"),
            ));
        }
        if self.commit_every == 0 {
            e.push(FieldError::new(
                "options.commit_every",
                "commit_every = 0: valid is 1 or more",
            ));
        }
        for (table, map) in [
            ("producer_config", &self.producer_config),
            ("consumer_config", &self.consumer_config),
        ] {
            let mut cfg = ClientConfig::new();
            for (k, v) in map {
                let path = format!("options.{table}.{k}");
                if OWNED.contains(&k.as_str()) {
                    e.push(FieldError::new(
                        path,
                        format!("{k} is set by the backend; use the kafka options instead"),
                    ));
                    continue;
                }
                match value_string(v) {
                    Some(s) => {
                        cfg.set(k, s);
                    }
                    None => e.push(FieldError::new(
                        path,
                        "expected a string, number or boolean",
                    )),
                }
            }
            // librdkafka checks names and values without creating a client.
            if let Err(err) = cfg.create_native_config() {
                e.push(FieldError::new(
                    format!("options.{table}"),
                    format!("librdkafka rejects it: {err}"),
                ));
            }
        }
        e
    }

    /// `host:port,…` of the brokers.
    pub fn bootstrap(&self) -> String {
        match self.mode {
            Mode::Managed => format!("127.0.0.1:{}", self.port),
            Mode::External => self.bootstrap.clone().unwrap_or_default(),
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
