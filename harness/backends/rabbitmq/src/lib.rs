//! The `rabbitmq` backend: RabbitMQ through lapin (AMQP 0-9-1) on a private tokio runtime.
//!
//! Partition p is queue `mqb-<run>-<variant>-<p>`, bound with routing key `p` to the direct
//! exchange `mqb-<run>-<variant>`. A managed broker is a private node run by
//! `scripts/brokers/rabbitmq.sh`; an external one is reached at `options.uri` or
//! `$MQ_BENCH_AMQP_URI`.

mod acks;
mod broker;
mod cluster;
mod conn;
mod consumer;
mod dial;
mod options;
mod producer;
mod script;
mod topology;

use std::path::Path;

use mq_core::backend::managed_available;
use mq_core::delivery::{ConsumerAck, Durability, ProducerAck};
use mq_core::plan::{FieldError, VariantPlan};
use mq_core::{
    Backend, BackendError, BackendInfo, Broker, Consumer, Delivery, Producer, Unavailable,
    WorkerCtx,
};

pub use broker::Names;
pub use conn::Endpoint;
pub use options::{Mode, Options, QueueType, URI_ENV};
pub use script::{Leader, Node};

const NAME: &str = "rabbitmq";

/// The RabbitMQ backend.
pub struct RabbitMq;

fn options(plan: &VariantPlan) -> Result<Options, BackendError> {
    plan.backend_options(NAME)
}

impl Backend for RabbitMq {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: NAME,
            summary: "RabbitMQ (AMQP 0-9-1 through lapin): one queue per partition on a direct exchange",
            producer_ack: vec![
                (ProducerAck::None, "no publisher confirms: acked once written to the connection"),
                (ProducerAck::Leader, "publisher confirms: the broker has enqueued it (persistent messages: on disk)"),
                (
                    ProducerAck::All,
                    "publisher confirms, persistent only: confirmed once on disk (quorum queues: on a majority); with options.tx: tx.commit per tx_batch",
                ),
            ],
            consumer_ack: vec![
                (ConsumerAck::Auto, "no_ack consume: the broker forgets a message as it sends it (at-most-once)"),
                (ConsumerAck::AfterProcess, "manual basic.ack after the batch is handed over (at-least-once)"),
            ],
            durability: vec![
                (Durability::Memory, "transient queues and messages: lost when the broker restarts"),
                (Durability::Persistent, "durable queues and persistent messages (delivery_mode 2)"),
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

    /// Several consumers on one queue, each with its own channel and prefetch: the broker hands
    /// the queue's messages round-robin to whichever has room (the work-queue pattern).
    fn competing_consumers(&self, _plan: &VariantPlan) -> Result<(), String> {
        Ok(())
    }

    fn validate(&self, plan: &VariantPlan) -> Vec<FieldError> {
        let options: Options = match plan.options() {
            Ok(o) => o,
            Err(e) => return vec![e],
        };
        options.check(&plan.delivery)
    }

    fn available(&self, plan: &VariantPlan) -> Result<(), Unavailable> {
        // Options that do not parse are validate's to report.
        options(plan).map_or(Ok(()), |o| {
            managed_available(o.mode, "rabbitmq.sh", script::missing)
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
        let options = options(plan)?;
        Ok(Box::new(broker::RabbitBroker::new(
            plan, options, dir, run_tag,
        )))
    }

    fn producer(&self, ctx: &WorkerCtx) -> Result<Box<dyn Producer>, BackendError> {
        Ok(Box::new(producer::RabbitProducer::open(
            ctx,
            &options(&ctx.plan)?,
        )?))
    }

    fn consumer(&self, ctx: &WorkerCtx) -> Result<Box<dyn Consumer>, BackendError> {
        Ok(Box::new(consumer::RabbitConsumer::open(
            ctx,
            &options(&ctx.plan)?,
        )?))
    }
}
