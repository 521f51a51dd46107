//! Worker side: librdkafka batches and pipelines; its delivery reports become acks.
//!
//! Each record carries its seq as the delivery opaque. A report that says the outcome cannot be
//! known (timeouts, lost connections) is not reported: the seq stays unknown, as it should.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use mq_core::delivery::ProducerAck;
use mq_core::{AckSink, BackendError, Outcome, Outgoing, Producer, Seq, WorkerCtx};
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext};

use crate::client::{self, base_config, Endpoint};
use crate::options::Options;
use crate::NAME;

/// Collects delivery reports; librdkafka calls it from `poll`/`flush` on the worker's thread.
#[derive(Default)]
struct Reports(Mutex<Vec<(u64, Option<Outcome>)>>);

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: usize) {
        let outcome = match result {
            Ok(_) => Some(Outcome::Acked),
            Err((e, _)) => classify(e),
        };
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((seq as u64, outcome));
    }
}

/// `Failed` when the cluster refused the record; `None` (unknown) when it may have it.
fn classify(e: &KafkaError) -> Option<Outcome> {
    use RDKafkaErrorCode::*;
    match e.rdkafka_error_code() {
        Some(
            MessageTimedOut
            | RequestTimedOut
            | BrokerTransportFailure
            | AllBrokersDown
            | NetworkException
            | NotEnoughReplicasAfterAppend
            | PurgeInflight,
        ) => None,
        _ => Some(Outcome::Failed),
    }
}

pub struct KafkaProducer {
    producer: BaseProducer<Reports>,
    topic: String,
    partitions: u32,
    /// Longest wait for room in librdkafka's queue.
    queue_timeout: Duration,
    bootstrap: String,
}

impl KafkaProducer {
    pub fn open(ctx: &WorkerCtx, options: &Options) -> Result<KafkaProducer, BackendError> {
        let ep = Endpoint::from_value(&ctx.endpoint)?;
        let mut c = base_config(
            &ep.bootstrap,
            &format!("mq-bench-{}-p{}", ctx.plan.name, ctx.index),
        );
        c.set(
            "acks",
            match ctx.plan.delivery.producer_ack {
                ProducerAck::None => "0",
                ProducerAck::Leader => "1",
                ProducerAck::All => "all",
            },
        )
        .set("enable.idempotence", options.idempotence.to_string())
        .set("compression.type", options.compression.as_str());
        if let Some(l) = options.linger_ms {
            c.set("linger.ms", l.to_string());
        }
        if let Some(b) = options.batch_size {
            c.set("batch.size", b.to_string());
        }
        client::apply(&mut c, &options.producer_config);
        let producer: BaseProducer<Reports> =
            c.create_with_context(Reports::default()).map_err(|e| {
                BackendError::other(NAME, format!("producer for {}: {e}", ep.bootstrap))
            })?;
        client::reach(producer.client(), &ep.bootstrap, Some(&ep.topic))?;
        Ok(KafkaProducer {
            producer,
            topic: ep.topic,
            partitions: ep.partitions,
            queue_timeout: ctx.plan.workload.ack_timeout.0,
            bootstrap: ep.bootstrap,
        })
    }

    fn report(&self, acks: &mut dyn AckSink) {
        let reports = std::mem::take(
            &mut *self
                .producer
                .context()
                .0
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for (seq, outcome) in reports {
            if let Some(o) = outcome {
                acks.ack(Seq(seq), o);
            }
        }
    }
}

impl Producer for KafkaProducer {
    fn send(&mut self, msg: &Outgoing<'_>, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        if msg.partition.0 >= self.partitions {
            return Err(BackendError::other(
                NAME,
                format!(
                    "partition {} does not exist (topic {} has {})",
                    msg.partition.0, self.topic, self.partitions
                ),
            ));
        }
        let mut record =
            BaseRecord::<(), [u8], usize>::with_opaque_to(&self.topic, msg.seq.0 as usize)
                .payload(msg.payload)
                .partition(msg.partition.0 as i32);
        let mut deadline = None;
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    // librdkafka's queue is the in-flight window: wait for room.
                    let d = *deadline.get_or_insert_with(|| Instant::now() + self.queue_timeout);
                    if Instant::now() >= d {
                        return Err(BackendError::other(
                            NAME,
                            format!(
                                "librdkafka's queue stayed full for {}s: {} is not taking records",
                                self.queue_timeout.as_secs(),
                                self.bootstrap
                            ),
                        ));
                    }
                    self.producer.poll(Duration::from_millis(10));
                    self.report(acks);
                    record = r;
                }
                Err((e, _)) => {
                    // Refused before it left the process (e.g. too large): it will never arrive.
                    acks.ack(msg.seq, Outcome::Failed);
                    if matches!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::Fatal)) {
                        return Err(BackendError::other(
                            NAME,
                            format!("producer to {}: {e}", self.bootstrap),
                        ));
                    }
                    tracing::debug!("kafka: seq {} refused: {e}", msg.seq.0);
                    break;
                }
            }
        }
        self.producer.poll(Duration::ZERO);
        self.report(acks);
        Ok(())
    }

    fn poll(&mut self, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        self.producer.poll(Duration::ZERO);
        self.report(acks);
        Ok(())
    }

    fn flush(&mut self, timeout: Duration, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        let r = self.producer.flush(timeout);
        self.report(acks);
        if let Err(e) = r {
            tracing::warn!(
                "kafka: {} records without a delivery report from {} after {:?} ({e}); they count as unknown",
                self.producer.in_flight_count(),
                self.bootstrap,
                timeout
            );
        }
        Ok(())
    }
}
