//! Coordinator side: starts a managed name server + broker (flushDiskType from the variant's
//! durability), creates the run's topic with one queue per partition, reports the consumer
//! group's lag as the depth, carries out kill / restart, and removes the topic and group (and
//! stops the managed broker) at teardown.

use std::path::Path;
use std::time::Duration;

use mq_core::delivery::Durability;
use mq_core::managed::{Managed, Scripted};
use mq_core::plan::{BrokerFault, VariantPlan};
use mq_core::{BackendError, Broker, Depth, NodeHit};

use crate::admin::{Admin, Target};
use crate::client::Endpoint;
use crate::options::{Mode, Options};
use crate::script::Node;
use crate::NAME;

const START_TIMEOUT: Duration = Duration::from_secs(120);
const STOP_TIMEOUT: Duration = Duration::from_secs(90);
const DEPTH_TIMEOUT: Duration = Duration::from_secs(2);

/// A name RocketMQ accepts for a topic or group (`[%|a-zA-Z0-9_-]`, at most 127 characters):
/// `mqb-<run_tag>-<variant>` with every other character made `_`.
pub fn name(run_tag: &str, variant: &str) -> String {
    format!("mqb-{run_tag}-{variant}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(127)
        .collect()
}

pub struct RocketBroker {
    options: Options,
    topic: String,
    queues: u32,
    managed: Option<Managed<Scripted<Node>>>,
    admin: Option<Admin>,
    /// The broker holding the topic, once created (ours to remove).
    created: Option<Target>,
}

impl RocketBroker {
    pub fn new(
        plan: &VariantPlan,
        options: Options,
        variant_dir: &Path,
        run_tag: &str,
    ) -> RocketBroker {
        let managed = (options.mode == Mode::Managed).then(|| {
            let sync = plan.delivery.durability == Durability::Persistent;
            let dir = variant_dir.join(format!("{}.rocketmq", plan.name));
            let node = Scripted {
                script: Node::new(options.port(), dir, sync),
                log: variant_dir.join(format!("{}.rocketmq.log", plan.name)),
                start_timeout: START_TIMEOUT,
                stop_timeout: STOP_TIMEOUT,
            };
            Managed::new(NAME, node, options.keep)
        });
        RocketBroker {
            topic: name(run_tag, &plan.name),
            queues: plan.workload.partitions,
            options,
            managed,
            admin: None,
            created: None,
        }
    }

    fn admin(&mut self) -> Result<&Admin, BackendError> {
        if self.admin.is_none() {
            self.admin = Some(Admin::start(&self.options.namesrv())?);
        }
        Ok(self.admin.as_ref().expect("just set"))
    }

    fn remove(&mut self) -> Result<(), BackendError> {
        let Some(target) = self.created.take() else {
            return Ok(());
        };
        let (cluster, topic) = (self.options.cluster(), self.topic.clone());
        self.admin()?.remove(&target, &cluster, &topic, &topic)
    }
}

impl Broker for RocketBroker {
    fn setup(&mut self) -> Result<serde_json::Value, BackendError> {
        if let Some(m) = &mut self.managed {
            let node = &m.node().script;
            tracing::info!(port = node.port, dir = %node.dir.display(), flush = node.flush, "starting a managed RocketMQ name server + broker");
            m.start()?;
        }
        let (cluster, topic, queues) = (self.options.cluster(), self.topic.clone(), self.queues);
        let admin = self.admin()?;
        let target = admin.target(&cluster)?;
        admin.create_topic(&target, &topic, queues)?;
        let endpoint = Endpoint {
            namesrv: self.options.namesrv(),
            topic: topic.clone(),
            group: topic,
            broker_name: target.broker_name.clone(),
            queues,
        };
        self.created = Some(target);
        Ok(serde_json::to_value(endpoint).expect("endpoint serializes"))
    }

    fn end_round(&mut self) -> Result<bool, BackendError> {
        if !self.options.keep {
            self.remove()?;
        }
        self.created = None;
        Ok(true)
    }

    fn next_round(&mut self, plan: &VariantPlan, run_tag: &str) -> Result<bool, BackendError> {
        self.end_round()?;
        self.topic = name(run_tag, &plan.name);
        self.queues = plan.workload.partitions;
        Ok(true)
    }

    fn depth_bound(&self) -> Duration {
        DEPTH_TIMEOUT
    }

    fn depth(&mut self) -> Option<Depth> {
        let target = self.created.clone()?;
        let topic = self.topic.clone();
        let lag = self
            .admin()
            .ok()?
            .lag(&target, &topic, &topic, DEPTH_TIMEOUT)?;
        Some(Depth {
            messages: lag,
            bytes: None,
        })
    }

    fn teardown(&mut self) -> Result<(), BackendError> {
        let mut result = Ok(());
        // A managed broker's wipe takes the topic and group with it.
        if !self.options.keep && self.managed.is_none() {
            result = self.remove();
        }
        self.created = None;
        if let Some(a) = self.admin.take() {
            a.shutdown();
        }
        if let Some(m) = &mut self.managed {
            result = result.and(m.finish());
        }
        result
    }

    fn fault(&mut self, fault: BrokerFault) -> Result<Vec<NodeHit>, BackendError> {
        let Some(m) = &mut self.managed else {
            return Err(BackendError::other(
                NAME,
                "an external broker: give the variant kill_cmd / restart_cmd",
            ));
        };
        m.fault(fault).map(|()| Vec::new())
    }

    fn versions(&mut self) -> Vec<(String, String)> {
        let mut v = vec![(
            "rocketmq-client-rust".to_owned(),
            crate::CLIENT_VERSION.to_owned(),
        )];
        if self.managed.is_some() {
            v.push(("rocketmq".into(), crate::SERVER_VERSION.into()));
        }
        v
    }

    fn processes(&mut self) -> mq_core::backend::Processes {
        use mq_core::backend::{pids_in, Processes};
        match &self.managed {
            Some(m) => Processes::Pids(pids_in(&[m.node().script.pid_file()])),
            None => Processes::Unknown(
                "an external broker: its processes are not bench's to measure".into(),
            ),
        }
    }
}

impl Drop for RocketBroker {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            tracing::warn!("{e}");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_keep_only_what_rocketmq_accepts() {
        assert_eq!(super::name("20260101T1.2", "a b"), "mqb-20260101T1_2-a_b");
        assert_eq!(super::name(&"x".repeat(200), "v").len(), 127);
    }
}
