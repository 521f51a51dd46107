//! Small newtypes that keep producer ids, sequence numbers, keys and partitions apart.

use serde::{Deserialize, Serialize};

/// A producer worker's index within its variant (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProducerId(pub u16);

/// A consumer worker's index within its variant (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConsumerId(pub u16);

/// Per-producer sequence number: 0, 1, 2, … in send order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Seq(pub u64);

/// Ordering key: messages of one key from one producer must arrive in seq order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key(pub u32);

/// Partition (Kafka partition, SysV message type - 1, log partition, RabbitMQ queue index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Partition(pub u32);

impl Key {
    /// The partition this key maps to when there are `partitions` of them.
    pub fn partition(self, partitions: u32) -> Partition {
        Partition(self.0 % partitions.max(1))
    }
}

/// A variant's name as brokers take it in topic and group names (Kafka allows only letters,
/// digits, `.`, `_` and `-`): the `@` of `NAME@part` becomes `.`.
pub fn broker_name(variant: &str) -> String {
    variant.replace('@', ".")
}
