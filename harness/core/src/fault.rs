//! The node faults of a cluster: which node a fault picks (`node = "leader" | "follower" | N`),
//! whom the clients still reach across a partition (`clients = …`), and the checks of the
//! fault fields that go with them (`node`, `clients`, `delay`, `jitter`, `loss`).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::plan::{
    check_duration, check_range, FaultAction, FaultSpec, FieldError, VariantPlan, Workload,
    MAX_DURATION, MAX_MESSAGES,
};
use crate::validate::RawVariant;

/// Longest delay (or jitter) a slow link may add to each packet.
pub const MAX_LINK_DELAY: Duration = Duration::from_secs(60);

/// The node a fault acts on: the leader of partition 0 (of the queue), any one follower of it,
/// or node `N` (1-based, Kafka's node.id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "\"leader\", \"follower\" or a node number (1, 2, 3)"
)]
pub enum NodeTarget {
    Id(u8),
    Role(NodeRole),
}

/// A node named by its role for partition 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeRole {
    Leader,
    Follower,
}

impl Default for NodeTarget {
    fn default() -> NodeTarget {
        NodeTarget::Role(NodeRole::Leader)
    }
}

impl fmt::Display for NodeTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeTarget::Id(n) => write!(f, "node {n}"),
            NodeTarget::Role(NodeRole::Leader) => f.write_str("leader"),
            NodeTarget::Role(NodeRole::Follower) => f.write_str("follower"),
        }
    }
}

/// Whom the clients still reach across a partition that isolates the target node from the
/// other nodes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientSide {
    /// Only the isolated node (the leader, with `node = "leader"`): the minority side.
    LeaderSide,
    /// Only the other nodes: the majority side.
    MajoritySide,
    /// Every node: only the links between the two groups are cut.
    #[default]
    Both,
}

/// Checks the node-fault fields of fault `f`; `at` names a field of it.
pub fn check_fields(f: &FaultSpec, at: &dyn Fn(&str) -> String) -> Vec<FieldError> {
    use FaultAction::*;
    let mut e = Vec::new();
    let takes_node = matches!(f.action, PauseBroker | ResumeBroker | Partition | SlowLink);
    if f.node.is_some() && !takes_node {
        e.push(FieldError::new(
            at("node"),
            format!(
                "{} takes no node (node is for pause-broker, resume-broker, partition, slow-link)",
                f.action
            ),
        ));
    }
    if let Some(NodeTarget::Id(0)) = f.node {
        e.push(FieldError::new(
            at("node"),
            "node = 0: nodes are numbered from 1 (or say \"leader\" / \"follower\")",
        ));
    }
    if f.clients.is_some() && f.action != Partition {
        e.push(FieldError::new(
            at("clients"),
            format!("{} takes no clients (clients is for partition)", f.action),
        ));
    }
    let shaped = f.delay.is_some() || f.jitter.is_some() || f.loss.is_some();
    if f.action != SlowLink {
        if shaped {
            e.push(FieldError::new(
                at("delay"),
                format!(
                    "{} takes no delay, jitter or loss (they are for slow-link)",
                    f.action
                ),
            ));
        }
        return e;
    }
    if !shaped {
        e.push(FieldError::new(
            at("delay"),
            "slow-link needs delay = \"100ms\", jitter = \"10ms\" and/or loss = 5.0 (percent)",
        ));
    }
    for (field, d) in [("delay", f.delay), ("jitter", f.jitter)] {
        if let Some(d) = d {
            check_duration(&mut e, &at(field), d.0, Duration::ZERO, MAX_LINK_DELAY);
        }
    }
    if let Some(l) = f.loss.filter(|l| !(0.0..=100.0).contains(l)) {
        e.push(FieldError::new(
            at("loss"),
            format!("loss = {l} is out of range: valid is 0 to 100 (percent of packets)"),
        ));
    }
    e
}

/// Checks one fault list; `path` is where the list is (`faults`, `variants[1].faults`).
pub(crate) fn validate_faults(
    faults: &[FaultSpec],
    path: &str,
    w: &Workload,
    backend: &dyn Backend,
    v: &RawVariant,
) -> Vec<FieldError> {
    use crate::plan::{BrokerFault, FaultAction};
    let mut e = Vec::new();
    for (i, f) in faults.iter().enumerate() {
        let at = |field: &str| format!("{path}[{i}].{field}");
        if let Some(d) = f.at {
            check_duration(&mut e, &at("at"), d.0, Duration::ZERO, MAX_DURATION);
        }
        if let Some(n) = f.after_messages {
            check_range(&mut e, &at("after_messages"), n, 1, MAX_MESSAGES);
        }
        match (f.at, f.after_messages) {
            (None, None) => e.push(FieldError::new(
                at("action"),
                "say when: at = \"3s\" (from the variant's start) or after_messages = N",
            )),
            (Some(_), Some(_)) => e.push(FieldError::new(
                at("after_messages"),
                "set either at or after_messages, not both",
            )),
            _ => {}
        }
        if w.consumers == 0 && f.action.acts_on_consumers() {
            e.push(FieldError::new(
                at("action"),
                format!(
                    "{} needs consumers, and consumers = 0 (producer only); set consumers = 1 or more",
                    f.action
                ),
            ));
        }
        let workers = match f.action {
            FaultAction::KillProducer => Some(("producers", w.producers)),
            FaultAction::KillConsumer | FaultAction::RestartConsumer => {
                Some(("consumers", w.consumers))
            }
            // The stages are the backend's to count: [`check_stage_faults`] checks the target.
            FaultAction::KillStage | FaultAction::RestartStage => Some(("stages", u32::MAX)),
            _ => None,
        };
        match (workers, f.target) {
            (Some((role, n)), Some(t)) if t as u32 >= n => e.push(FieldError::new(
                at("target"),
                format!(
                    "target = {t}, but there are {n} {role}; valid: 0 to {}",
                    n - 1
                ),
            )),
            (None, Some(_)) => e.push(FieldError::new(
                at("target"),
                format!("{} takes no target", f.action),
            )),
            _ => {}
        }
        e.extend(crate::fault::check_fields(f, &at));
        if let Some(bf) = f.action.broker_fault() {
            let by_cmd = match bf {
                BrokerFault::Kill => v.kill_cmd.is_some(),
                BrokerFault::Restart => v.restart_cmd.is_some(),
                _ => false,
            };
            let offered = backend.broker_faults();
            if !by_cmd && !offered.contains(&bf) {
                let names: Vec<String> = FaultAction::ALL
                    .iter()
                    .filter(|a| a.broker_fault().is_some_and(|b| offered.contains(&b)))
                    .map(|a| a.to_string())
                    .collect();
                e.push(FieldError::new(
                    at("action"),
                    format!(
                        "backend {} cannot {} (it can: {}); for an external broker give the variant kill_cmd / restart_cmd",
                        backend.info().name,
                        f.action,
                        if names.is_empty() { "no broker faults".into() } else { names.join(", ") }
                    ),
                ));
            }
        }
    }
    e
}

/// Stage faults need a pipeline variant, and a target among its stages.
pub(crate) fn check_stage_faults(backend: &dyn Backend, plan: &VariantPlan) -> Vec<FieldError> {
    let stages = backend.stages(plan);
    let stage_faults = (plan.faults.iter())
        .filter(|f| matches!(f.action, FaultAction::KillStage | FaultAction::RestartStage));
    let mut e = Vec::new();
    for f in stage_faults {
        let target = f.target.unwrap_or(0);
        if stages == 0 {
            e.push(FieldError::new(
                "faults",
                format!("{} needs a pipeline variant, and this one runs no stages (kafka: set options.pipeline = \"read-process-write\")", f.action),
            ));
        } else if target >= stages {
            e.push(FieldError::new(
                "faults",
                format!(
                    "{} target = {target}, but there are {stages} stages; valid: 0 to {}",
                    f.action,
                    stages - 1
                ),
            ));
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(toml_fault: &str) -> Result<FaultSpec, String> {
        #[derive(Deserialize)]
        struct W {
            f: FaultSpec,
        }
        toml::from_str::<W>(&format!("f = {toml_fault}"))
            .map(|w| w.f)
            .map_err(|e| e.to_string())
    }

    fn errors(toml_fault: &str) -> Vec<String> {
        let f = spec(toml_fault).unwrap();
        check_fields(&f, &|x| format!("faults[0].{x}"))
            .into_iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect()
    }

    #[test]
    fn targets_parse_as_a_role_or_a_node_number() {
        let f = spec(r#"{ action = "pause-broker", at = "1s", node = "follower" }"#).unwrap();
        assert_eq!(f.node, Some(NodeTarget::Role(NodeRole::Follower)));
        let f = spec(r#"{ action = "partition", at = "1s", node = 2, clients = "leader-side" }"#)
            .unwrap();
        assert_eq!(f.node, Some(NodeTarget::Id(2)));
        assert_eq!(f.clients, Some(ClientSide::LeaderSide));
        let e = spec(r#"{ action = "partition", at = "1s", node = "boss" }"#).unwrap_err();
        assert!(
            e.contains("\"leader\", \"follower\" or a node number"),
            "{e}"
        );
        let e = spec(r#"{ action = "partition", at = "1s", clients = "all" }"#).unwrap_err();
        assert!(e.contains("leader-side"), "{e}");
    }

    #[test]
    fn fields_go_only_with_the_actions_that_use_them() {
        assert!(errors(r#"{ action = "heal", at = "1s" }"#).is_empty());
        let e = errors(r#"{ action = "heal", at = "1s", node = 1, delay = "5ms" }"#);
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with("faults[0].node: heal takes no node"),
            "{e:?}"
        );
        assert!(e[1].contains("takes no delay, jitter or loss"), "{e:?}");
        let e = errors(r#"{ action = "pause-broker", at = "1s", clients = "both" }"#);
        assert!(e[0].contains("clients is for partition"), "{e:?}");
        let e = errors(r#"{ action = "slow-link", at = "1s" }"#);
        assert!(e[0].contains("slow-link needs delay"), "{e:?}");
        let e = errors(r#"{ action = "slow-link", at = "1s", loss = 120.0, delay = "2m" }"#);
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].contains("delay = \"2m\" is out of range"), "{e:?}");
        assert!(e[1].contains("valid is 0 to 100"), "{e:?}");
        let e = errors(r#"{ action = "pause-broker", at = "1s", node = 0 }"#);
        assert!(e[0].contains("numbered from 1"), "{e:?}");
        assert!(
            errors(r#"{ action = "slow-link", at = "1s", node = "leader", delay = "50ms", jitter = "5ms", loss = 1.5 }"#)
                .is_empty()
        );
    }
}
