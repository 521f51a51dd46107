//! The `nats` backend: NATS JetStream through async-nats on a private tokio runtime.
//!
//! A variant is one stream `mqb-<run>-<variant>` with subjects `<stream>.<p>`, one per
//! partition, each read by the durable pull consumer `p<p>`. A managed server is a private
//! `nats-server -js` run by `scripts/brokers/nats.sh`; an external one is reached at
//! `options.url` or `$MQ_BENCH_NATS_URL`.

mod broker;
mod cluster;
mod conn;
mod consumer;
mod options;
mod producer;
mod script;

use std::path::Path;

use mq_core::backend::managed_available;
use mq_core::delivery::{ConsumerAck, Durability, ProducerAck};
use mq_core::plan::{BrokerFault, FieldError, VariantPlan};
use mq_core::{
    Backend, BackendError, BackendInfo, Broker, Consumer, Delivery, Producer, Unavailable,
    WorkerCtx,
};

pub use conn::{stream_name, Endpoint};
pub use options::{shown_url, shown_urls, Mode, Options, CLUSTER_NODES, URL_ENV};
pub use script::Node;

const NAME: &str = "nats";

/// The NATS JetStream backend.
pub struct Nats;

fn options(plan: &VariantPlan) -> Result<Options, BackendError> {
    plan.backend_options(NAME)
}

impl Backend for Nats {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: NAME,
            summary: "NATS JetStream (async-nats): one stream per variant, a subject and a durable pull consumer per partition",
            producer_ack: vec![
                (ProducerAck::None, "core NATS publish: acked once handed to the client's connection, no reply"),
                (ProducerAck::Leader, "JetStream publish, acked on the PubAck: the stream stored it (file store: written, fsynced every sync_interval, 2 min by default)"),
                (ProducerAck::All, "JetStream publish on a managed server with sync_interval: always: the PubAck comes once the write is fsynced"),
            ],
            consumer_ack: vec![
                (ConsumerAck::Auto, "AckPolicy None: the server forgets a message as it sends it (at-most-once)"),
                (ConsumerAck::AfterProcess, "AckPolicy Explicit: +ACK once the message is handed over; redelivered after ack_wait otherwise (at-least-once)"),
            ],
            durability: vec![
                (Durability::Memory, "memory storage: the stream is lost when the server restarts"),
                (Durability::Persistent, "file storage in the server's store dir"),
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

    /// Several consumers on one partition bind the same durable pull consumer: the server
    /// hands each pull request its share (the work-queue pattern).
    fn competing_consumers(&self, _plan: &VariantPlan) -> Result<(), String> {
        Ok(())
    }

    fn validate(&self, plan: &VariantPlan) -> Vec<FieldError> {
        match plan.options::<Options>() {
            Ok(o) => o.check(&plan.delivery),
            Err(e) => vec![e],
        }
    }

    fn available(&self, plan: &VariantPlan) -> Result<(), Unavailable> {
        // Options that do not parse are validate's to report.
        options(plan).map_or(Ok(()), |o| {
            managed_available(o.mode, "nats.sh", script::missing)
        })
    }

    fn broker_faults(&self) -> Vec<BrokerFault> {
        vec![BrokerFault::Kill, BrokerFault::Restart]
    }

    fn broker(
        &self,
        plan: &VariantPlan,
        dir: &Path,
        run_tag: &str,
    ) -> Result<Box<dyn Broker>, BackendError> {
        let options = options(plan)?;
        Ok(Box::new(broker::NatsBroker::new(
            plan, options, dir, run_tag,
        )?))
    }

    fn producer(&self, ctx: &WorkerCtx) -> Result<Box<dyn Producer>, BackendError> {
        Ok(Box::new(producer::NatsProducer::open(
            ctx,
            &options(&ctx.plan)?,
        )?))
    }

    fn consumer(&self, ctx: &WorkerCtx) -> Result<Box<dyn Consumer>, BackendError> {
        Ok(Box::new(consumer::NatsConsumer::open(
            ctx,
            &options(&ctx.plan)?,
        )?))
    }
}
