//! Delivery semantics: the settings every backend maps to its own knobs (or rejects as
//! unsupported), and the contract they imply, judged per run.

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

/// The delivery settings of one variant, after defaults are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub producer_ack: ProducerAck,
    pub consumer_ack: ConsumerAck,
    pub durability: Durability,
}

/// The delivery contract a variant claims; the checker says whether the run kept it.
///
/// Two independent promises make it: no acked message lost (the producer and durability side)
/// and nothing delivered twice (the consumer side). [`derived_contract`] says which the delivery
/// settings make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Contract {
    /// Nothing delivered twice; loss allowed.
    AtMostOnce,
    /// No acked message lost; duplicates allowed.
    AtLeastOnce,
    /// Duplicates allowed, and no acked message lost unless the broker itself lost it (a
    /// broker kept in memory, or fire-and-forget sends, through a broker fault): commit after
    /// processing redelivers what the broker kept.
    AtLeastOnceOfKept,
    /// No acked message lost and nothing delivered twice.
    ExactlyOnce,
}

impl fmt::Display for Contract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Contract::AtMostOnce => "at-most-once",
            Contract::AtLeastOnce => "at-least-once",
            Contract::AtLeastOnceOfKept => "at-least-once-of-kept",
            Contract::ExactlyOnce => "exactly-once",
        })
    }
}

impl Contract {
    /// Whether counts keep the contract, and if not, why. `broker_faulted`: the schedule
    /// killed the broker or removed its queue (what a broker in memory may lose).
    /// `aborted_visible` (messages of aborted transactions delivered) breaks every contract, as
    /// `unexpected` does.
    pub fn kept(
        self,
        lost: u64,
        duplicated: u64,
        unexpected: u64,
        aborted_visible: u64,
        broker_faulted: bool,
    ) -> Result<(), String> {
        let mut broken = Vec::new();
        if unexpected > 0 {
            broken.push(format!("{unexpected} unexpected"));
        }
        if aborted_visible > 0 {
            broken.push(format!(
                "{aborted_visible} messages of aborted transactions delivered"
            ));
        }
        let no_loss = match self {
            Contract::AtLeastOnce | Contract::ExactlyOnce => true,
            Contract::AtLeastOnceOfKept => !broker_faulted,
            Contract::AtMostOnce => false,
        };
        if no_loss && lost > 0 {
            broken.push(format!("{lost} acked messages lost"));
        }
        if matches!(self, Contract::AtMostOnce | Contract::ExactlyOnce) && duplicated > 0 {
            broken.push(format!("{duplicated} duplicates"));
        }
        if broken.is_empty() {
            Ok(())
        } else {
            Err(broken.join(", "))
        }
    }
}

/// The contract the delivery settings make (the README's table). Duplicates follow the
/// consumer side: acking or committing after processing redelivers what a dead consumer held.
/// Loss follows the producer and durability side: an acked message survives a broker crash
/// only when the broker confirmed it and keeps it on disk; an auto-acking consumer loses what
/// it held when it dies.
pub fn derived_contract(d: Delivery) -> Contract {
    let broker_keeps =
        d.producer_ack != ProducerAck::None && d.durability == Durability::Persistent;
    match (d.consumer_ack, broker_keeps) {
        (ConsumerAck::AfterProcess, true) => Contract::AtLeastOnce,
        (ConsumerAck::AfterProcess, false) => Contract::AtLeastOnceOfKept,
        (ConsumerAck::Auto, _) => Contract::AtMostOnce,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_the_scenario_spelling() {
        assert_eq!(ConsumerAck::AfterProcess.to_string(), "after-process");
        assert_eq!(ProducerAck::Leader.to_string(), "leader");
    }

    #[test]
    fn contracts_are_judged_on_loss_and_duplicates() {
        assert!(Contract::AtMostOnce.kept(5, 0, 0, 0, false).is_ok());
        assert_eq!(
            Contract::AtMostOnce.kept(0, 2, 0, 0, false),
            Err("2 duplicates".into())
        );
        assert!(Contract::AtLeastOnce.kept(0, 9, 0, 0, false).is_ok());
        assert_eq!(
            Contract::AtLeastOnce.kept(1, 0, 0, 0, true),
            Err("1 acked messages lost".into())
        );
        assert!(Contract::ExactlyOnce.kept(0, 1, 0, 0, false).is_err());
        assert!(Contract::AtLeastOnce.kept(0, 0, 1, 0, false).is_err());
        for c in [
            Contract::AtMostOnce,
            Contract::AtLeastOnce,
            Contract::AtLeastOnceOfKept,
            Contract::ExactlyOnce,
        ] {
            assert_eq!(
                c.kept(0, 0, 0, 3, true),
                Err("3 messages of aborted transactions delivered".into()),
                "{c}"
            );
        }
    }

    #[test]
    fn at_least_once_of_kept_allows_loss_only_through_a_broker_fault() {
        let c = Contract::AtLeastOnceOfKept;
        assert!(
            c.kept(0, 40, 0, 0, false).is_ok(),
            "redeliveries are expected"
        );
        assert!(
            c.kept(7, 40, 0, 0, true).is_ok(),
            "the broker lost what it held"
        );
        assert_eq!(
            c.kept(7, 0, 0, 0, false),
            Err("7 acked messages lost".into()),
            "no broker fault: nothing may be lost"
        );
        assert!(c.kept(0, 0, 1, 0, true).is_err());
    }

    #[test]
    fn derived_contracts_follow_the_consumer_for_duplicates_and_the_broker_for_loss() {
        use ConsumerAck::*;
        use Contract::*;
        use Durability::*;
        use ProducerAck::{All, Leader, None as Fire};
        // The README's table, row by row.
        let rows = [
            (Leader, Persistent, AfterProcess, AtLeastOnce),
            (All, Persistent, AfterProcess, AtLeastOnce),
            (Leader, Memory, AfterProcess, AtLeastOnceOfKept),
            (All, Memory, AfterProcess, AtLeastOnceOfKept),
            (Fire, Persistent, AfterProcess, AtLeastOnceOfKept),
            (Fire, Memory, AfterProcess, AtLeastOnceOfKept),
            (Leader, Persistent, Auto, AtMostOnce),
            (All, Persistent, Auto, AtMostOnce),
            (Leader, Memory, Auto, AtMostOnce),
            (All, Memory, Auto, AtMostOnce),
            (Fire, Persistent, Auto, AtMostOnce),
            (Fire, Memory, Auto, AtMostOnce),
        ];
        for (producer_ack, durability, consumer_ack, want) in rows {
            let d = Delivery {
                producer_ack,
                consumer_ack,
                durability,
            };
            assert_eq!(derived_contract(d), want, "{d:?}");
        }
    }
}
