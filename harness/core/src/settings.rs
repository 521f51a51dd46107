//! The delivery settings every backend maps to its own knobs (or rejects as unsupported).

use std::fmt;

use serde::{Deserialize, Serialize};

/// How the broker confirms a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProducerAck {
    /// Fire and forget: counted acked when handed to the client.
    None,
    /// The receiving broker (the leader) has it.
    Leader,
    /// Every replica has it / it is on disk.
    All,
}

/// When a consumer acknowledges (acks or commits) a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsumerAck {
    /// On receipt, before processing: at-most-once.
    Auto,
    /// After processing: at-least-once.
    AfterProcess,
}

/// Whether the broker keeps messages across its own crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Durability {
    Memory,
    Persistent,
}

macro_rules! display_as_kebab {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // The serde name is the one users write in scenarios.
                let s = serde_json::to_value(self).expect("unit enum serializes");
                f.write_str(s.as_str().unwrap_or("?"))
            }
        }
    )*};
}
display_as_kebab!(ProducerAck, ConsumerAck, Durability);

impl ProducerAck {
    pub const ALL: [ProducerAck; 3] = [ProducerAck::None, ProducerAck::Leader, ProducerAck::All];
}
impl ConsumerAck {
    pub const ALL: [ConsumerAck; 2] = [ConsumerAck::Auto, ConsumerAck::AfterProcess];
}
impl Durability {
    pub const ALL: [Durability; 2] = [Durability::Memory, Durability::Persistent];
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn displays_the_scenario_spelling() {
        assert_eq!(ConsumerAck::AfterProcess.to_string(), "after-process");
        assert_eq!(ProducerAck::Leader.to_string(), "leader");
    }
}
