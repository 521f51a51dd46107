//! The nemesis: a variant's fault schedule, carried out on the broker and the workers, each
//! action recorded with the time it actually happened.
//!
//! Timed faults are what the coordinator's loop wakes up for ([`Nemesis::until_next`]), so an
//! action starts within a millisecond or two of its `at`; the lateness is recorded beside it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mq_core::clock::now_ns;
use mq_core::plan::VariantPlan;
use mq_core::plan::{FaultAction, FaultSpec};
use mq_core::spec::Control;
use mq_core::{Broker, NodeHit};

use crate::workers::{Pool, Role};
use mq_results::{FaultEvent, VariantDir};

/// How long a variant's kill_cmd / restart_cmd may run.
const FAULT_CMD_TIMEOUT: Duration = Duration::from_secs(120);

/// The schedule still to come and what the faults so far have done.
pub struct Nemesis<'a> {
    plan: &'a VariantPlan,
    pending: Vec<&'a FaultSpec>,
    /// Consumers are paused.
    pub paused: bool,
    /// The broker was killed at this many seconds and not restarted since.
    pub broker_down_at: Option<f64>,
    /// A node is paused, or links are cut or slow, with the resume / heal still to come.
    pub nodes_faulted: bool,
    /// A stage was killed and not restarted since.
    stage_down: bool,
    /// Actions carried out so far (names the external commands' logs).
    count: usize,
}

/// What a fault acts on.
pub struct Targets<'b> {
    pub broker: &'b mut dyn Broker,
    pub pool: &'b mut Pool,
    /// Starts a replacement for worker `index` of a role (restart-consumer, restart-stage),
    /// its `generation`-th.
    pub respawn: &'b mut dyn FnMut(&mut Pool, Role, u16, u32) -> anyhow::Result<()>,
    pub vdir: &'b VariantDir,
    /// The variant's start (monotonic ns): fault times count from it.
    pub start_ns: u64,
}

impl<'a> Nemesis<'a> {
    pub fn new(plan: &'a VariantPlan) -> Nemesis<'a> {
        Nemesis {
            plan,
            pending: plan.faults.iter().collect(),
            paused: false,
            broker_down_at: None,
            nodes_faulted: false,
            stage_down: false,
            count: 0,
        }
    }

    /// The faults due `elapsed` after the start with `acked` messages acked, in schedule
    /// order; they leave the schedule.
    pub fn due(&mut self, elapsed: Duration, acked: u64) -> Vec<&'a FaultSpec> {
        let is_due = |f: &FaultSpec| {
            f.at.is_some_and(|at| elapsed >= at.0) || f.after_messages.is_some_and(|n| acked >= n)
        };
        let due: Vec<_> = self.pending.iter().copied().filter(|f| is_due(f)).collect();
        self.pending.retain(|f| !is_due(f));
        due
    }

    /// How long until the next timed fault, from `elapsed` after the start.
    pub fn until_next(&self, elapsed: Duration) -> Option<Duration> {
        self.pending
            .iter()
            .filter_map(|f| f.at)
            .map(|at| at.0.saturating_sub(elapsed))
            .min()
    }

    /// Whether a fault with a time is still to come (the drain waits for the schedule).
    pub fn timed_pending(&self) -> bool {
        self.pending.iter().any(|f| f.at.is_some())
    }

    /// Whether an `action` is still to come.
    pub fn pending(&self, action: FaultAction) -> bool {
        self.pending.iter().any(|f| f.action == action)
    }

    /// Nothing moving is the schedule's doing: consumers paused, or the broker down with its
    /// restart still to come.
    pub fn excuses_a_standstill(&self) -> bool {
        self.paused
            || (self.broker_down_at.is_some() && self.pending(FaultAction::RestartBroker))
            || (self.stage_down && self.pending(FaultAction::RestartStage))
            || (self.nodes_faulted
                && (self.pending(FaultAction::ResumeBroker) || self.pending(FaultAction::Heal)))
    }

    /// Carries out one fault and says how it went.
    pub fn apply(&mut self, f: &FaultSpec, on: &mut Targets<'_>) -> FaultEvent {
        let t = now_ns().saturating_sub(on.start_ns) as f64 / 1e9;
        let began = Instant::now();
        let outcome = self.act(f, t, on);
        self.count += 1;
        let scheduled = f.at.map(|d| d.0.as_secs_f64());
        let (nodes, error) = match outcome {
            Ok(nodes) => (nodes, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        FaultEvent {
            t,
            scheduled,
            late_ms: scheduled.map(|s| ((t - s) * 1e3).max(0.0)),
            action: f.action,
            target: f.target,
            nodes,
            label: f.label(),
            ok: error.is_none(),
            error,
            took_s: began.elapsed().as_secs_f64(),
        }
    }

    fn act(&mut self, f: &FaultSpec, t: f64, on: &mut Targets<'_>) -> Result<Vec<NodeHit>, String> {
        let target = f.target.unwrap_or(0);
        match f.action {
            FaultAction::PauseBroker
            | FaultAction::ResumeBroker
            | FaultAction::Partition
            | FaultAction::Heal
            | FaultAction::SlowLink => {
                let bf = f.action.broker_fault().ok_or("not a broker fault")?;
                let hit = on.broker.fault_on(bf, f).map_err(|e| e.to_string())?;
                self.nodes_faulted =
                    !matches!(f.action, FaultAction::Heal | FaultAction::ResumeBroker);
                Ok(hit)
            }
            FaultAction::KillBroker | FaultAction::RestartBroker | FaultAction::RemoveQueue => {
                let cmd = match f.action {
                    FaultAction::KillBroker => self.plan.kill_cmd.as_deref(),
                    FaultAction::RestartBroker => self.plan.restart_cmd.as_deref(),
                    _ => None,
                };
                let hit = match (cmd, f.action.broker_fault()) {
                    (Some(cmd), _) => {
                        let log = on.vdir.fault_log(self.count, f.action);
                        run_fault_cmd(cmd, &log).map(|()| Vec::new())
                    }
                    (None, Some(bf)) => on.broker.fault_on(bf, f).map_err(|e| e.to_string()),
                    (None, None) => Err(format!("{} is not a broker fault", f.action)),
                }?;
                match f.action {
                    FaultAction::KillBroker => self.broker_down_at = Some(t),
                    FaultAction::RestartBroker => self.broker_down_at = None,
                    _ => {}
                }
                Ok(hit)
            }
            FaultAction::KillProducer
            | FaultAction::KillConsumer
            | FaultAction::KillStage
            | FaultAction::RestartConsumer
            | FaultAction::RestartStage => self.worker_fault(f.action, target, on),
            FaultAction::PauseConsumers | FaultAction::ResumeConsumers => {
                self.paused = f.action == FaultAction::PauseConsumers;
                let c = if self.paused {
                    Control::Pause
                } else {
                    Control::Resume
                };
                on.pool.send_all(Some(Role::Consumer), c);
                Ok(Vec::new())
            }
        }
    }

    /// Kills the newest running worker of a role and index (a replacement if there is one), or
    /// starts a replacement for it.
    fn worker_fault(
        &mut self,
        action: FaultAction,
        target: u16,
        on: &mut Targets<'_>,
    ) -> Result<Vec<NodeHit>, String> {
        let role = match action {
            FaultAction::KillProducer => Role::Producer,
            FaultAction::KillStage | FaultAction::RestartStage => Role::Stage,
            _ => Role::Consumer,
        };
        if matches!(
            action,
            FaultAction::RestartConsumer | FaultAction::RestartStage
        ) {
            let generation = on.pool.of(role).filter(|w| w.index == target).count() as u32;
            (on.respawn)(on.pool, role, target, generation).map_err(|e| format!("{e:#}"))?;
            self.stage_down &= role != Role::Stage;
            if self.paused && role == Role::Consumer {
                if let Some(w) = on.pool.workers.last_mut() {
                    w.send(Control::Pause);
                }
            }
            return Ok(Vec::new());
        }
        let newest = (on.pool.workers.iter().rev())
            .find(|w| w.role == role && w.index == target && w.running());
        match newest {
            Some(w) => {
                self.stage_down |= role == Role::Stage;
                w.kill9().map(|()| Vec::new())
            }
            None => Err(format!("no running {} {target}", role.as_str())),
        }
    }
}

/// Runs an external broker's kill or restart command, output into `log`.
fn run_fault_cmd(cmd: &str, log: &Path) -> Result<(), String> {
    let out = std::fs::File::create(log).map_err(|e| format!("creating {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut child = Command::new("sh")
        .args(["-c", cmd])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("running {cmd:?}: {e}"))?;
    let deadline = Instant::now() + FAULT_CMD_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(s)) if s.success() => return Ok(()),
            Ok(Some(s)) => {
                return Err(format!("{cmd:?} failed ({s}); output in {}", log.display()))
            }
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{cmd:?} still running after {FAULT_CMD_TIMEOUT:?}: killed"
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("waiting for {cmd:?}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mq_core::plan::Dur;

    fn fault(action: FaultAction, at_ms: Option<u64>, after: Option<u64>) -> FaultSpec {
        FaultSpec {
            action,
            at: at_ms.map(|ms| Dur(Duration::from_millis(ms))),
            after_messages: after,
            target: None,
            node: None,
            clients: None,
            delay: None,
            jitter: None,
            loss: None,
        }
    }

    #[test]
    fn faults_come_due_by_time_or_count_and_the_next_wake_up_is_the_next_fault() {
        let mut plan = mq_core::plan::VariantPlan::new(
            "v",
            "sysv",
            mq_core::Delivery {
                producer_ack: mq_core::delivery::ProducerAck::Leader,
                consumer_ack: mq_core::delivery::ConsumerAck::Auto,
                durability: mq_core::delivery::Durability::Memory,
                consumer_dedup: Default::default(),
            },
            serde_json::json!({}),
            serde_json::from_value(serde_json::json!({ "messages": 10 })).unwrap(),
        );
        plan.faults = vec![
            fault(FaultAction::PauseConsumers, Some(300), None),
            fault(FaultAction::KillConsumer, None, Some(50)),
            fault(FaultAction::ResumeConsumers, Some(700), None),
        ];
        let mut n = Nemesis::new(&plan);
        let ms = Duration::from_millis;
        assert_eq!(n.until_next(ms(100)), Some(ms(200)));
        assert!(n.due(ms(299), 10).is_empty());
        let due = n.due(ms(300), 60);
        assert_eq!(
            due.iter().map(|f| f.action).collect::<Vec<_>>(),
            [FaultAction::PauseConsumers, FaultAction::KillConsumer]
        );
        assert_eq!(n.until_next(ms(300)), Some(ms(400)));
        assert!(n.timed_pending());
        assert_eq!(n.due(ms(900), 60).len(), 1);
        assert!(!n.timed_pending());
        assert_eq!(n.until_next(ms(900)), None);
    }
}
