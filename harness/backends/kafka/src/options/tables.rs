//! The free-form librdkafka tables (`producer_config`, `consumer_config`): names and values as
//! librdkafka itself checks them, minus the properties the backend owns.

use mq_core::plan::FieldError;
use rdkafka::ClientConfig;

use super::{value_string, Options};

/// Properties the backend owns; setting them in a free-form table would break the run.
const OWNED: &[&str] = &[
    "bootstrap.servers",
    "metadata.broker.list",
    "group.id",
    "enable.auto.commit",
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "transactional.id",
    "transaction.timeout.ms",
    "isolation.level",
];

impl Options {
    /// The free librdkafka tables: names and values as librdkafka itself checks them.
    pub(super) fn check_config_tables(&self, e: &mut Vec<FieldError>) {
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
    }
}
