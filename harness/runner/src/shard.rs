//! This host's part of a sharded run (`bench run --shard I/N`): which workers it starts, which
//! faults it carries out, the broker names every shard shares, and the `shard.json` that marks
//! its partial run folder for `bench merge`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use mq_core::plan::{FaultAction, FaultSpec, VariantPlan};
use mq_core::shard::{ClockInfo, Shard, ShardInfo, SHARD_FILE};
use mq_results::RunDir;

/// A shard of a run, as `bench run --shard` was given it.
#[derive(Debug, Clone)]
pub struct ShardRun {
    pub shard: Shard,
    /// Shared by every shard: the envelopes' run id, and what names the run on the broker.
    pub run_id: u32,
    pub scenario_sha256: String,
    /// A folder every shard sees (the shared volume): each variant starts once every shard's
    /// workers are ready ([`ShardRun::barrier`]). None: each shard starts on its own.
    pub barrier: Option<PathBuf>,
}

/// How long a shard waits at the barrier for the others.
pub const BARRIER_TIMEOUT: Duration = Duration::from_secs(15 * 60);

impl ShardRun {
    /// Why `plan` cannot run sharded: every shard must reach one broker, so it must be an
    /// external one (`options.mode = "external"`); the kernel's queues (sysv) are per host.
    pub fn refusal(plan: &VariantPlan) -> Option<String> {
        let mode = plan.options.get("mode").and_then(|m| m.as_str());
        if mode != Some("external") {
            return Some(format!(
                "variants[{:?}].options.mode: --shard needs an external broker every shard \
                 reaches (mode = \"external\" with its address); a managed broker or the \
                 kernel's queues (backend {}) live on one host. For one host, start the broker \
                 yourself (e.g. `bench log serve`) and give its address",
                plan.name, plan.backend
            ));
        }
        let keep = plan.options.get("keep").and_then(|k| k.as_bool());
        if keep != Some(true) {
            return Some(format!(
                "variants[{:?}].options.keep: a sharded variant needs keep = true: the first \
                 shard to end would otherwise delete the topic or queues the other shards still \
                 read; delete them once `bench merge` is done",
                plan.name
            ));
        }
        None
    }

    /// Whether worker `index` of a role runs in this shard.
    pub fn runs(&self, index: u16) -> bool {
        self.shard.runs(u32::from(index))
    }

    /// The names on the broker, the same in every shard (not the run folder's, which differ).
    pub fn tag(&self) -> String {
        format!("run-{:08x}", self.run_id)
    }

    /// `plan` as this shard runs it: a worker fault only in the shard that runs its target, a
    /// broker fault only in shard 1 (once for the run); pausing consumers in every shard.
    pub fn plan(&self, plan: &VariantPlan) -> VariantPlan {
        let mut plan = plan.clone();
        plan.faults.retain(|f| self.keeps(f));
        plan
    }

    /// Whether this shard carries out fault `f` (see [`ShardRun::plan`]).
    fn keeps(&self, f: &FaultSpec) -> bool {
        match f.action {
            FaultAction::KillProducer
            | FaultAction::KillConsumer
            | FaultAction::RestartConsumer
            | FaultAction::KillStage
            | FaultAction::RestartStage => self.runs(f.target.unwrap_or(0)),
            FaultAction::PauseConsumers | FaultAction::ResumeConsumers => true,
            _ => self.shard.index == 1,
        }
    }

    /// Marks this shard ready for `variant` in the barrier folder and waits until every shard
    /// is; false when interrupted. Without a barrier folder, at once. A shard missing after
    /// [`BARRIER_TIMEOUT`] is an error naming it.
    pub fn barrier(&self, variant: &str, interrupted: &dyn Fn() -> bool) -> anyhow::Result<bool> {
        let Some(root) = &self.barrier else {
            return Ok(true);
        };
        let dir = root
            .join(self.tag())
            .join(mq_core::plan::broker_name(variant));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mark = |i: u16| dir.join(format!("ready-{i}"));
        std::fs::write(mark(self.shard.index), b"")
            .with_context(|| format!("writing {}", mark(self.shard.index).display()))?;
        let deadline = Instant::now() + BARRIER_TIMEOUT;
        loop {
            let missing: Vec<String> = (1..=self.shard.of)
                .filter(|&i| !mark(i).exists())
                .map(|i| format!("{i}/{}", self.shard.of))
                .collect();
            if missing.is_empty() {
                return Ok(true);
            }
            if interrupted() {
                return Ok(false);
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "shard(s) {} not ready at {} after {:?}",
                    missing.join(", "),
                    dir.display(),
                    BARRIER_TIMEOUT
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Writes `shard.json` into the partial run folder: the run, the scenario's hash, this
    /// shard, the host and its clocks.
    pub fn write_info(&self, dir: &RunDir) -> anyhow::Result<ShardInfo> {
        let info = ShardInfo {
            run_id: self.run_id,
            scenario_sha256: self.scenario_sha256.clone(),
            shard: self.shard.index,
            of: self.shard.of,
            host: mq_results::Machine::this().hostname,
            boot_id: mq_core::shard::boot_id(),
            clock: ClockInfo::now(mq_core::clock::name()),
        };
        let path = dir.path().join(SHARD_FILE);
        let text = serde_json::to_string_pretty(&info)?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(action: FaultAction, target: u16) -> FaultSpec {
        serde_json::from_value(serde_json::json!({
            "action": action, "at": "1s", "target": target
        }))
        .unwrap()
    }

    #[test]
    fn a_worker_fault_runs_in_its_target_s_shard_and_a_broker_fault_in_shard_1() {
        let faults = [
            fault(FaultAction::KillConsumer, 1),
            fault(FaultAction::KillProducer, 2),
            fault(FaultAction::KillBroker, 0),
            fault(FaultAction::PauseConsumers, 0),
        ];
        let kept = |index| {
            let s = ShardRun {
                shard: Shard { index, of: 3 },
                run_id: 7,
                scenario_sha256: String::new(),
                barrier: None,
            };
            let fs: Vec<FaultAction> = faults
                .iter()
                .filter(|f| s.keeps(f))
                .map(|f| f.action)
                .collect();
            fs
        };
        use FaultAction::*;
        assert_eq!(kept(1), [KillBroker, PauseConsumers]);
        assert_eq!(kept(2), [KillConsumer, PauseConsumers]);
        assert_eq!(kept(3), [KillProducer, PauseConsumers]);
    }
}

#[cfg(test)]
mod barrier_tests {
    use super::*;

    #[test]
    fn a_shard_waits_at_the_barrier_until_every_shard_is_ready() {
        let dir = tempfile::tempdir().unwrap();
        let shard = |index| ShardRun {
            shard: Shard { index, of: 2 },
            run_id: 9,
            scenario_sha256: String::new(),
            barrier: Some(dir.path().to_owned()),
        };
        let first = shard(1);
        std::thread::scope(|s| {
            let waiting = s.spawn(|| first.barrier("v", &|| false).unwrap());
            std::thread::sleep(Duration::from_millis(200));
            assert!(!waiting.is_finished(), "shard 1 went on alone");
            assert!(shard(2).barrier("v", &|| false).unwrap());
            assert!(waiting.join().unwrap());
        });
        // Interrupted while waiting: false, not an error.
        assert!(!shard(1).barrier("other", &|| true).unwrap());
    }
}
