//! The `kafka` backend: Apache Kafka through rdkafka (librdkafka, built from its vendored source).
//!
//! A variant's run writes topic `mqb-<run>-<variant>` with the workload's partitions; consumers
//! are manually assigned their partitions (or, with `assignment = "group"`, subscribe as members
//! of the group) and commit under group `mqb-<run>-<variant>`. A managed
//! broker is a single KRaft node, or with `nodes = 3` a 3-node KRaft cluster on loopback, run by
//! `scripts/brokers/kafka.sh`; an external cluster is reached at `options.bootstrap`. In the
//! cluster, `kill-broker` kills the current leader of partition 0 and `restart-broker` starts it
//! again; `pause-broker` / `resume-broker` SIGSTOP / SIGCONT a node. With `netns = true` each node
//! of the cluster runs in its own network namespace (mq-netns), and `partition`, `heal` and
//! `slow-link` act on the links between the nodes and the clients. With `pipeline =
//! "read-process-write"` the producers write `mqb-<run>-<variant>-in` and `stages` stage
//! workers move it, in transactions, to the topic the consumers read (see `stage`).

mod batch;
mod broker;
mod client;
mod consumer;
mod events;
mod group;
mod options;
mod pipeline;
mod producer;
mod script;
mod stage;
mod topic_handle;
mod txn;

use std::path::Path;

use mq_core::backend::managed_available;
use mq_core::delivery::{ConsumerAck, Durability, ProducerAck};
use mq_core::plan::{FieldError, VariantPlan};
use mq_core::{
    Backend, BackendError, BackendInfo, Broker, Consumer, Delivery, Producer, Unavailable,
    WorkerCtx,
};

pub use client::Endpoint;
pub use options::{Assignment, Compression, IsolationLevel, Mode, Options, Strategy};
pub use pipeline::Pipeline;
pub use script::Node;

const NAME: &str = "kafka";

/// The Kafka backend.
pub struct Kafka;

fn options(plan: &VariantPlan) -> Result<Options, BackendError> {
    plan.backend_options(NAME)
}

/// Faults on links need the cluster in namespaces; node faults need a managed broker.
fn check_faults(plan: &VariantPlan, options: &Options) -> Vec<FieldError> {
    use mq_core::plan::FaultAction::*;
    let actions: Vec<_> = plan.faults.iter().map(|f| f.action).collect();
    let mut e = Vec::new();
    if let Some(a) = actions
        .iter()
        .find(|a| matches!(a, Partition | Heal | SlowLink))
    {
        if !options.netns {
            e.push(FieldError::new(
                "options.netns",
                format!("{a} acts on the cluster's links: set netns = true (with nodes = 3; needs root)"),
            ));
        }
    }
    if let Some(a) = actions
        .iter()
        .find(|a| matches!(a, PauseBroker | ResumeBroker))
    {
        if options.mode != Mode::Managed {
            e.push(FieldError::new(
                "options.mode",
                format!("{a} signals a managed broker's process: an external broker has none here"),
            ));
        }
    }
    e
}

impl Backend for Kafka {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: NAME,
            summary: "Apache Kafka (rdkafka): one topic per variant, consumers assigned their partitions or members of one group",
            producer_ack: vec![
                (ProducerAck::None, "acks=0: acked once librdkafka has sent it"),
                (ProducerAck::Leader, "acks=1: the partition leader has appended it"),
                (ProducerAck::All, "acks=all: every in-sync replica has it"),
            ],
            consumer_ack: vec![
                (ConsumerAck::Auto, "enable.auto.commit: offsets stored on receipt, committed every second"),
                (ConsumerAck::AfterProcess, "offsets committed after handing over (async in batches, sync at close)"),
            ],
            durability: vec![(
                Durability::Persistent,
                "Kafka always appends to its log on disk (flushed by the OS; replicas protect acked data)",
            )],
            defaults: Delivery {
                producer_ack: ProducerAck::All,
                consumer_ack: ConsumerAck::AfterProcess,
                durability: Durability::Persistent,
                consumer_dedup: Default::default(),
            },
            options: mq_core::options::describe::<Options>(),
        }
    }

    fn competing_consumers(&self, plan: &VariantPlan) -> Result<(), String> {
        match plan.options::<Options>() {
            Ok(o) if o.assignment == crate::options::Assignment::Group => Ok(()),
            _ => Err("Kafka consumers are assigned partitions by hand (options.assignment = \"manual\"), so extra consumers would idle; set options.assignment = \"group\" for a consumer group whose extra members wait for a rebalance".into()),
        }
    }

    fn validate(&self, plan: &VariantPlan) -> Vec<FieldError> {
        let options: Options = match plan.options() {
            Ok(o) => o,
            Err(e) => return vec![e],
        };
        let mut errors = options.check(&plan.delivery);
        errors.extend(check_faults(plan, &options));
        txn::check_pace(&options, plan.workload.rate_per_producer(), &mut errors);
        pipeline::check(&options, plan.workload.partitions, &mut errors);
        if plan.workload.partitions > 100_000 {
            errors.push(FieldError::new(
                "workload.partitions",
                format!(
                    "partitions = {}: kafka valid is 1 to 100000",
                    plan.workload.partitions
                ),
            ));
        }
        errors
    }

    fn available(&self, plan: &VariantPlan) -> Result<(), Unavailable> {
        // Options that do not parse are validate's to report.
        options(plan).map_or(Ok(()), |o| {
            managed_available(o.mode, "kafka.sh", script::missing)?;
            match o.netns {
                true => mq_netns::check().map_err(|reason| Unavailable { reason, fix: None }),
                false => Ok(()),
            }
        })
    }

    fn stages(&self, plan: &VariantPlan) -> u16 {
        options(plan).map_or(0, |o| pipeline::stages(&o))
    }

    fn stage(&self, ctx: &WorkerCtx) -> Result<Box<dyn mq_core::Stage>, BackendError> {
        Ok(Box::new(stage::KafkaStage::open(
            ctx,
            &options(&ctx.plan)?,
        )?))
    }

    fn broker_faults(&self) -> Vec<mq_core::plan::BrokerFault> {
        use mq_core::plan::BrokerFault;
        vec![
            BrokerFault::Kill,
            BrokerFault::Restart,
            BrokerFault::Pause,
            BrokerFault::Resume,
            BrokerFault::Partition,
            BrokerFault::Heal,
            BrokerFault::SlowLink,
        ]
    }

    fn broker(
        &self,
        plan: &VariantPlan,
        dir: &Path,
        run_tag: &str,
    ) -> Result<Box<dyn Broker>, BackendError> {
        let options = options(plan)?;
        Ok(Box::new(broker::KafkaBroker::new(
            plan, options, dir, run_tag,
        )?))
    }

    fn producer(&self, ctx: &WorkerCtx) -> Result<Box<dyn Producer>, BackendError> {
        Ok(Box::new(producer::KafkaProducer::open(
            ctx,
            &options(&ctx.plan)?,
        )?))
    }

    fn consumer(&self, ctx: &WorkerCtx) -> Result<Box<dyn Consumer>, BackendError> {
        Ok(Box::new(consumer::KafkaConsumer::open(
            ctx,
            &options(&ctx.plan)?,
        )?))
    }
}
