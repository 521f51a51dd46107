//! The fault schedule (nemesis), consumer processing time and delivery contracts.
//!
//! A fault is an action at a time offset from the variant's start or after a number of acked
//! messages. Broker faults go to the backend's [`crate::Broker::fault`] (or a variant's
//! `kill_cmd` / `restart_cmd` for external brokers); worker faults are carried out by the
//! coordinator on the worker processes themselves.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::scenario::Dur;

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultAction {
    /// SIGKILL the broker.
    KillBroker,
    /// Start the broker again on the same data.
    RestartBroker,
    /// SIGKILL producer `target`.
    KillProducer,
    /// SIGKILL consumer `target`.
    KillConsumer,
    /// Start a replacement for consumer `target`: it resumes from what the broker redelivers or
    /// the committed offsets.
    RestartConsumer,
    /// Stop every consumer from taking messages (a backlog builds).
    PauseConsumers,
    /// Let them take messages again (the backlog drains).
    ResumeConsumers,
    /// SysV: remove the queue (the kernel broker losing its state, as a reboot would).
    RemoveQueue,
}

impl BrokerFault {
    /// The broker script's command that carries out this fault on a managed broker (`kill`;
    /// `start` again on the same data), or `None` when no broker script does it (remove-queue).
    pub fn script_command(self) -> Option<&'static str> {
        match self {
            BrokerFault::Kill => Some("kill"),
            BrokerFault::Restart => Some("start"),
            BrokerFault::RemoveQueue => None,
        }
    }
}

impl FaultAction {
    pub const ALL: [FaultAction; 8] = [
        FaultAction::KillBroker,
        FaultAction::RestartBroker,
        FaultAction::KillProducer,
        FaultAction::KillConsumer,
        FaultAction::RestartConsumer,
        FaultAction::PauseConsumers,
        FaultAction::ResumeConsumers,
        FaultAction::RemoveQueue,
    ];

    /// The broker fault this action asks of the backend, if it is one.
    pub fn broker_fault(self) -> Option<BrokerFault> {
        match self {
            FaultAction::KillBroker => Some(BrokerFault::Kill),
            FaultAction::RestartBroker => Some(BrokerFault::Restart),
            FaultAction::RemoveQueue => Some(BrokerFault::RemoveQueue),
            _ => None,
        }
    }

    /// Whether the action names one worker (`target`).
    pub fn takes_target(self) -> bool {
        matches!(
            self,
            FaultAction::KillProducer | FaultAction::KillConsumer | FaultAction::RestartConsumer
        )
    }
}

impl fmt::Display for FaultAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_value(self).expect("unit enum serializes");
        f.write_str(s.as_str().unwrap_or("?"))
    }
}

/// What a backend's broker can be asked to suffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BrokerFault {
    Kill,
    Restart,
    RemoveQueue,
}

/// One `[[faults]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub action: FaultAction,
    /// When, from the variant's start (exactly one of `at` and `after_messages`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Dur>,
    /// Or: once this many messages are acked (all producers together).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_messages: Option<u64>,
    /// The worker index for kill-producer, kill-consumer, restart-consumer (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<u16>,
}

impl FaultSpec {
    /// A short label for tables and chart markers, e.g. `kill-broker@3s`.
    pub fn label(&self) -> String {
        let target = self.target.map(|t| format!(" {t}")).unwrap_or_default();
        match (self.at, self.after_messages) {
            (Some(d), _) => format!(
                "{}{target}@{}",
                self.action,
                humantime::format_duration(d.0)
            ),
            (_, Some(n)) => format!("{}{target}@{n} msgs", self.action),
            _ => format!("{}{target}", self.action),
        }
    }
}

/// The delivery contract a variant claims; the checker says whether the run kept it.
///
/// Two independent promises make it: no acked message lost (the producer and durability side)
/// and nothing delivered twice (the consumer side). [`crate::scenario::derived_contract`] says
/// which the delivery settings make.
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
    pub fn kept(
        self,
        lost: u64,
        duplicated: u64,
        unexpected: u64,
        broker_faulted: bool,
    ) -> Result<(), String> {
        let mut broken = Vec::new();
        if unexpected > 0 {
            broken.push(format!("{unexpected} unexpected"));
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

/// How long a consumer "works" on each message before it counts as processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processing {
    Fixed(Duration),
    /// Uniformly distributed between the two.
    Uniform(Duration, Duration),
}

impl Processing {
    /// The processing time for one message, given a uniform random number in [0, 1).
    pub fn sample(self, unit: f64) -> Duration {
        match self {
            Processing::Fixed(d) => d,
            Processing::Uniform(lo, hi) => lo + (hi.saturating_sub(lo)).mul_f64(unit),
        }
    }

    fn parse(s: &str) -> Result<Processing, String> {
        let d = |s: &str| humantime::parse_duration(s.trim()).map_err(|e| format!("{s:?}: {e}"));
        match s.split_once("..") {
            Some((lo, hi)) => {
                let (lo, hi) = (d(lo)?, d(hi)?);
                if hi < lo {
                    return Err(format!("{s:?}: the upper bound is below the lower one"));
                }
                Ok(Processing::Uniform(lo, hi))
            }
            None => d(s).map(Processing::Fixed),
        }
    }
}

impl<'de> Deserialize<'de> for Processing {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Processing::parse(&s).map_err(|e| {
            serde::de::Error::custom(format!(
                "{e}: expected a duration (\"2ms\") or a uniform range (\"1ms..3ms\")"
            ))
        })
    }
}

impl Serialize for Processing {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = |d: Duration| humantime::format_duration(d).to_string();
        match *self {
            Processing::Fixed(d) => s.serialize_str(&f(d)),
            Processing::Uniform(lo, hi) => s.serialize_str(&format!("{}..{}", f(lo), f(hi))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processing_parses_fixed_and_uniform() {
        assert_eq!(
            Processing::parse("2ms"),
            Ok(Processing::Fixed(Duration::from_millis(2)))
        );
        let u = Processing::parse("1ms..3ms").unwrap();
        assert_eq!(u.sample(0.5), Duration::from_millis(2));
        assert!(Processing::parse("3ms..1ms").is_err());
    }

    #[test]
    fn contracts_are_judged_on_loss_and_duplicates() {
        assert!(Contract::AtMostOnce.kept(5, 0, 0, false).is_ok());
        assert_eq!(
            Contract::AtMostOnce.kept(0, 2, 0, false),
            Err("2 duplicates".into())
        );
        assert!(Contract::AtLeastOnce.kept(0, 9, 0, false).is_ok());
        assert_eq!(
            Contract::AtLeastOnce.kept(1, 0, 0, true),
            Err("1 acked messages lost".into())
        );
        assert!(Contract::ExactlyOnce.kept(0, 1, 0, false).is_err());
        assert!(Contract::AtLeastOnce.kept(0, 0, 1, false).is_err());
    }

    #[test]
    fn at_least_once_of_kept_allows_loss_only_through_a_broker_fault() {
        let c = Contract::AtLeastOnceOfKept;
        assert!(c.kept(0, 40, 0, false).is_ok(), "redeliveries are expected");
        assert!(
            c.kept(7, 40, 0, true).is_ok(),
            "the broker lost what it held"
        );
        assert_eq!(
            c.kept(7, 0, 0, false),
            Err("7 acked messages lost".into()),
            "no broker fault: nothing may be lost"
        );
        assert!(c.kept(0, 0, 1, true).is_err());
    }
}
