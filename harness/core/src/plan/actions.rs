//! What a fault does ([`FaultAction`]) and what a backend's broker can be asked to suffer
//! ([`BrokerFault`]).

use std::fmt;

use serde::{Deserialize, Serialize};

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
    /// SIGKILL pipeline stage `target` (a backend's read-process-write stage).
    KillStage,
    /// Start a replacement for stage `target`, with the same index.
    RestartStage,
    /// Stop every consumer from taking messages (a backlog builds).
    PauseConsumers,
    /// Let them take messages again (the backlog drains).
    ResumeConsumers,
    /// SysV: remove the queue (the kernel broker losing its state, as a reboot would).
    RemoveQueue,
    /// SIGSTOP a node (`node`, default the leader): a GC pause, a stalled VM.
    PauseBroker,
    /// SIGCONT the paused nodes.
    ResumeBroker,
    /// Cut the links between node `node` (default the leader) and the other nodes; `clients`
    /// says whom the clients still reach. Until `heal`.
    Partition,
    /// Restore every link: no cut, no delay, no loss.
    Heal,
    /// Delay, jitter and loss on node `node`'s link (both ways), until `heal`.
    SlowLink,
}

impl BrokerFault {
    /// The broker script's command that carries out this fault on a managed broker (`kill`;
    /// `start` again on the same data), or `None` when no broker script does it (remove-queue).
    pub fn script_command(self) -> Option<&'static str> {
        match self {
            BrokerFault::Kill => Some("kill"),
            BrokerFault::Restart => Some("start"),
            _ => None,
        }
    }
}

impl FaultAction {
    pub const ALL: [FaultAction; 15] = [
        FaultAction::KillBroker,
        FaultAction::RestartBroker,
        FaultAction::KillProducer,
        FaultAction::KillConsumer,
        FaultAction::RestartConsumer,
        FaultAction::KillStage,
        FaultAction::RestartStage,
        FaultAction::PauseConsumers,
        FaultAction::ResumeConsumers,
        FaultAction::RemoveQueue,
        FaultAction::PauseBroker,
        FaultAction::ResumeBroker,
        FaultAction::Partition,
        FaultAction::Heal,
        FaultAction::SlowLink,
    ];

    /// Whether the action needs consumers to act on (a producer-only variant has none).
    pub fn acts_on_consumers(self) -> bool {
        matches!(
            self,
            FaultAction::KillConsumer
                | FaultAction::RestartConsumer
                | FaultAction::PauseConsumers
                | FaultAction::ResumeConsumers
        )
    }

    /// The broker fault this action asks of the backend, if it is one.
    pub fn broker_fault(self) -> Option<BrokerFault> {
        match self {
            FaultAction::KillBroker => Some(BrokerFault::Kill),
            FaultAction::RestartBroker => Some(BrokerFault::Restart),
            FaultAction::RemoveQueue => Some(BrokerFault::RemoveQueue),
            FaultAction::PauseBroker => Some(BrokerFault::Pause),
            FaultAction::ResumeBroker => Some(BrokerFault::Resume),
            FaultAction::Partition => Some(BrokerFault::Partition),
            FaultAction::Heal => Some(BrokerFault::Heal),
            FaultAction::SlowLink => Some(BrokerFault::SlowLink),
            _ => None,
        }
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
    Pause,
    Resume,
    Partition,
    Heal,
    SlowLink,
}
