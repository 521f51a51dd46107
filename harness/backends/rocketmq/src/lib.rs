//! The `rocketmq` backend: Apache RocketMQ 5.x through rocketmq-client-rust (the remoting
//! protocol, straight to the name server and the broker; no proxy).
//!
//! A variant's run writes topic `mqb-<run>-<variant>` with one queue per partition; producers
//! send partition p's messages to queue p (FIFO by default: one send in flight per queue, so a
//! key's order holds), consumers are `assign`ed their partitions' queues and commit under group
//! `mqb-<run>-<variant>`. A managed broker is a private name server + broker run by
//! `scripts/brokers/rocketmq.sh`, its flushDiskType from the durability (persistent:
//! SYNC_FLUSH, memory: ASYNC_FLUSH); an external cluster is reached at `options.namesrv`.

pub mod admin;
mod broker;
mod client;
mod consumer;
mod options;
mod producer;
mod script;

use std::path::Path;

use mq_core::backend::managed_available;
use mq_core::delivery::{ConsumerAck, Durability, ProducerAck};
use mq_core::plan::{FieldError, VariantPlan};
use mq_core::{
    Backend, BackendError, BackendInfo, Broker, Consumer, Delivery, Producer, Unavailable,
    WorkerCtx,
};

pub use admin::Admin;
pub use client::Endpoint;
pub use options::{Mode, Options};
pub use script::Node;

const NAME: &str = "rocketmq";
/// The RocketMQ release `scripts/brokers/rocketmq.sh` installs.
pub const SERVER_VERSION: &str = "5.3.3";
/// The rocketmq-client-rust release this backend is built on.
pub const CLIENT_VERSION: &str = "1.0.0";

/// The RocketMQ backend.
pub struct RocketMq;

fn options(plan: &VariantPlan) -> Result<Options, BackendError> {
    plan.backend_options(NAME)
}

impl Backend for RocketMq {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: NAME,
            summary: "Apache RocketMQ 5.x (rocketmq-client-rust, remoting): one topic per variant, a queue per partition, FIFO sends per queue, consumers assigned their queues",
            producer_ack: vec![
                (ProducerAck::None, "oneway send: acked once the client has written it"),
                (ProducerAck::Leader, "sync send: acked on the broker's SEND_OK (after the fsync with SYNC_FLUSH)"),
            ],
            consumer_ack: vec![
                (ConsumerAck::Auto, "offsets committed before the messages are handed over (at-most-once)"),
                (ConsumerAck::AfterProcess, "offsets committed after handing over, every commit_every messages or 200 ms"),
            ],
            durability: vec![
                (Durability::Memory, "flushDiskType=ASYNC_FLUSH: SEND_OK once in the page cache, flushed in the background"),
                (Durability::Persistent, "flushDiskType=SYNC_FLUSH: SEND_OK once the commit log is fsynced"),
            ],
            defaults: Delivery {
                producer_ack: ProducerAck::Leader,
                consumer_ack: ConsumerAck::AfterProcess,
                durability: Durability::Persistent,
                consumer_dedup: Default::default(),
            },
            options: mq_core::options::describe::<Options>(),
        }
    }

    fn validate(&self, plan: &VariantPlan) -> Vec<FieldError> {
        let options: Options = match plan.options() {
            Ok(o) => o,
            Err(e) => return vec![e],
        };
        let mut errors = options.check(&plan.delivery);
        if plan.workload.partitions > 1024 {
            errors.push(FieldError::new(
                "workload.partitions",
                format!(
                    "partitions = {}: rocketmq valid is 1 to 1024 (queues of one topic)",
                    plan.workload.partitions
                ),
            ));
        }
        if options.mode == Mode::External && plan.delivery.durability == Durability::Memory {
            errors.push(FieldError::new(
                "durability",
                "an external broker's flushDiskType is its own: leave durability at \"persistent\" and say in the variant's name what the broker runs",
            ));
        }
        errors
    }

    fn available(&self, plan: &VariantPlan) -> Result<(), Unavailable> {
        options(plan).map_or(Ok(()), |o| {
            managed_available(o.mode, "rocketmq.sh", script::missing)
        })
    }

    fn broker_faults(&self) -> Vec<mq_core::plan::BrokerFault> {
        use mq_core::plan::BrokerFault;
        vec![BrokerFault::Kill, BrokerFault::Restart]
    }

    fn broker(
        &self,
        plan: &VariantPlan,
        dir: &Path,
        run_tag: &str,
    ) -> Result<Box<dyn Broker>, BackendError> {
        Ok(Box::new(broker::RocketBroker::new(
            plan,
            options(plan)?,
            dir,
            run_tag,
        )))
    }

    fn producer(&self, ctx: &WorkerCtx) -> Result<Box<dyn Producer>, BackendError> {
        Ok(Box::new(producer::RocketProducer::open(
            ctx,
            &options(&ctx.plan)?,
        )?))
    }

    fn consumer(&self, ctx: &WorkerCtx) -> Result<Box<dyn Consumer>, BackendError> {
        Ok(Box::new(consumer::RocketConsumer::open(
            ctx,
            &options(&ctx.plan)?,
        )?))
    }
}
