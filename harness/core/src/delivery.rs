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

/// Whether a consumer skips messages it already processed (the idempotent consumer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsumerDedup {
    /// Every delivery is processed (and recorded).
    #[default]
    None,
    /// The (producer, seq) of each processed message is recorded in a durable store shared by
    /// the variant's consumers, atomically with its processing; a repeat is skipped.
    Store,
}

/// How the dedup store's commits reach the disk (`dedup_sync`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DedupSync {
    /// SQLite `synchronous = NORMAL` in WAL mode: a commit survives the process's kill, not a
    /// power loss.
    #[default]
    Normal,
    /// `synchronous = FULL`: each commit is fsynced, surviving a power loss too.
    Full,
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
display_as_kebab!(
    ProducerAck,
    ConsumerAck,
    Durability,
    ConsumerDedup,
    DedupSync
);

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
    /// `consumer_dedup`; absent from results.json when `none` (and from files written before
    /// it existed).
    #[serde(default, skip_serializing_if = "ConsumerDedup::is_none")]
    pub consumer_dedup: ConsumerDedup,
}

impl ConsumerDedup {
    pub fn is_none(&self) -> bool {
        *self == ConsumerDedup::None
    }
    pub fn is_store(&self) -> bool {
        *self == ConsumerDedup::Store
    }
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
    /// Nothing delivered twice, and no acked message lost unless the broker itself lost it (as
    /// [`Contract::AtLeastOnceOfKept`]): an idempotent consumer on a broker that may lose.
    ExactlyOnceOfKept,
}

impl fmt::Display for Contract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Contract::AtMostOnce => "at-most-once",
            Contract::AtLeastOnce => "at-least-once",
            Contract::AtLeastOnceOfKept => "at-least-once-of-kept",
            Contract::ExactlyOnce => "exactly-once",
            Contract::ExactlyOnceOfKept => "exactly-once-of-kept",
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
            Contract::AtLeastOnceOfKept | Contract::ExactlyOnceOfKept => !broker_faulted,
            Contract::AtMostOnce => false,
        };
        if no_loss && lost > 0 {
            broken.push(format!("{lost} acked messages lost"));
        }
        let no_duplicates = matches!(
            self,
            Contract::AtMostOnce | Contract::ExactlyOnce | Contract::ExactlyOnceOfKept
        );
        if no_duplicates && duplicated > 0 {
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
/// it held when it dies. An idempotent consumer (`consumer_dedup = "store"`) acking after
/// processing turns the redeliveries into skips: at-least-once becomes exactly-once.
pub fn derived_contract(d: Delivery) -> Contract {
    let broker_keeps =
        d.producer_ack != ProducerAck::None && d.durability == Durability::Persistent;
    let dedup = d.consumer_dedup == ConsumerDedup::Store;
    match (d.consumer_ack, broker_keeps, dedup) {
        (ConsumerAck::AfterProcess, true, false) => Contract::AtLeastOnce,
        (ConsumerAck::AfterProcess, false, false) => Contract::AtLeastOnceOfKept,
        (ConsumerAck::AfterProcess, true, true) => Contract::ExactlyOnce,
        (ConsumerAck::AfterProcess, false, true) => Contract::ExactlyOnceOfKept,
        (ConsumerAck::Auto, _, _) => Contract::AtMostOnce,
    }
}

/// What is wrong with `consumer_dedup` and `dedup_sync` on `backend`, as (field, message).
/// `after_process`: whether the backend can acknowledge after processing (one without any
/// acknowledgement, sysv, may still dedup: it cannot prevent loss there).
pub fn dedup_problems(
    backend: &str,
    d: Delivery,
    sync: Option<DedupSync>,
    after_process: bool,
) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    let store = d.consumer_dedup == ConsumerDedup::Store;
    if store && d.consumer_ack == ConsumerAck::Auto && after_process {
        problems.push((
            "consumer_dedup",
            format!(
                "consumer_dedup = \"store\" needs consumer_ack = \"after-process\" on backend \
                 {backend}: with auto the broker is acknowledged before the store commit, so a \
                 consumer killed in between loses the message; valid: consumer_ack = \
                 \"after-process\", or consumer_dedup = \"none\""
            ),
        ));
    }
    if let (Some(s), false) = (sync, store) {
        problems.push((
            "dedup_sync",
            format!(
                "dedup_sync = \"{s}\" applies to the dedup store only: set consumer_dedup = \
                 \"store\", or leave dedup_sync out"
            ),
        ));
    }
    problems
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
        let e = Contract::ExactlyOnceOfKept;
        assert!(
            e.kept(7, 0, 0, 0, true).is_ok(),
            "the broker lost what it held"
        );
        assert_eq!(e.kept(0, 3, 0, 0, true), Err("3 duplicates".into()));
        assert_eq!(
            e.kept(7, 0, 0, 0, false),
            Err("7 acked messages lost".into())
        );
    }

    #[test]
    fn dedup_needs_acking_after_processing_where_the_backend_can() {
        let d = |consumer_ack, consumer_dedup| Delivery {
            producer_ack: ProducerAck::Leader,
            consumer_ack,
            durability: Durability::Persistent,
            consumer_dedup,
        };
        let store_auto = d(ConsumerAck::Auto, ConsumerDedup::Store);
        let p = dedup_problems("kafka", store_auto, None, true);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "consumer_dedup");
        assert!(p[0]
            .1
            .contains("needs consumer_ack = \"after-process\" on backend kafka"));
        assert!(
            dedup_problems("sysv", store_auto, Some(DedupSync::Full), false).is_empty(),
            "sysv has no acknowledgement to wait for"
        );
        let store_after = d(ConsumerAck::AfterProcess, ConsumerDedup::Store);
        assert!(dedup_problems("log", store_after, Some(DedupSync::Full), true).is_empty());
        let none = d(ConsumerAck::AfterProcess, ConsumerDedup::None);
        let p = dedup_problems("log", none, Some(DedupSync::Full), true);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, "dedup_sync");
        assert!(p[0].1.starts_with("dedup_sync = \"full\" applies"), "{p:?}");
    }

    #[test]
    fn derived_contracts_follow_the_consumer_for_duplicates_and_the_broker_for_loss() {
        use ConsumerAck::*;
        use ConsumerDedup::{None as Each, Store};
        use Contract::*;
        use Durability::*;
        use ProducerAck::{All, Leader, None as Fire};
        // The README's table, row by row.
        let rows = [
            (Leader, Persistent, AfterProcess, Each, AtLeastOnce),
            (All, Persistent, AfterProcess, Each, AtLeastOnce),
            (Leader, Memory, AfterProcess, Each, AtLeastOnceOfKept),
            (All, Memory, AfterProcess, Each, AtLeastOnceOfKept),
            (Fire, Persistent, AfterProcess, Each, AtLeastOnceOfKept),
            (Fire, Memory, AfterProcess, Each, AtLeastOnceOfKept),
            (Leader, Persistent, Auto, Each, AtMostOnce),
            (All, Persistent, Auto, Each, AtMostOnce),
            (Leader, Memory, Auto, Each, AtMostOnce),
            (All, Memory, Auto, Each, AtMostOnce),
            (Fire, Persistent, Auto, Each, AtMostOnce),
            (Fire, Memory, Auto, Each, AtMostOnce),
            // The idempotent consumer: redeliveries are skipped.
            (Leader, Persistent, AfterProcess, Store, ExactlyOnce),
            (All, Persistent, AfterProcess, Store, ExactlyOnce),
            (Leader, Memory, AfterProcess, Store, ExactlyOnceOfKept),
            (All, Memory, AfterProcess, Store, ExactlyOnceOfKept),
            (Fire, Persistent, AfterProcess, Store, ExactlyOnceOfKept),
            (Fire, Memory, AfterProcess, Store, ExactlyOnceOfKept),
            // sysv: no acknowledgement at all (validation refuses auto elsewhere)
            (Leader, Memory, Auto, Store, AtMostOnce),
        ];
        for (producer_ack, durability, consumer_ack, consumer_dedup, want) in rows {
            let d = Delivery {
                producer_ack,
                consumer_ack,
                durability,
                consumer_dedup,
            };
            assert_eq!(derived_contract(d), want, "{d:?}");
        }
    }
}
