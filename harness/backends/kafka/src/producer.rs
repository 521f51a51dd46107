//! Worker side: librdkafka batches and pipelines; its delivery reports become acks.
//!
//! Each record carries its seq as the delivery opaque. A report that says the outcome cannot be
//! known (timeouts, lost connections) is not reported: the seq stays unknown, as it should.

use std::time::{Duration, Instant};

use mq_core::delivery::ProducerAck;
use mq_core::{AckSink, BackendError, Outcome, Outgoing, Producer, Seq, WorkerCtx};
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{
    BaseProducer, DeliveryResult, Producer as _, ProducerContext, PurgeConfig,
};
use rdkafka::ClientConfig;

use crate::client::{self, base_config, Endpoint};
use crate::events::MainQueue;
use crate::options::Options;
use crate::topic_handle::TopicHandle;
use crate::txn::{self, OnFenced, Transaction};
use crate::NAME;

/// Sends between two polls for delivery reports while sending as fast as possible. Polling
/// after every send cost more than librdkafka's own produce call (clock reads converting the
/// timeout, the queue's lock); a report waits at most this many sends (well under 1 ms at any
/// rate bench reaches, against librdkafka's own `linger.ms` batching). A paced producer polls
/// while it waits for its next send ([`Producer::poll`]), so its reports are timely at any rate.
const SENDS_PER_POLL: u32 = 32;

/// How long a producer whose librdkafka queue is full waits for a delivery report at most
/// ([`MainQueue::wait`] wakes when one lands) before it looks again; a flush waits at most
/// [`FLUSH_WAKE`] between looks.
const QUEUE_FULL_WAKE: Duration = Duration::from_millis(10);
const FLUSH_WAKE: Duration = Duration::from_millis(100);

/// The producer's context. Delivery reports are read from the main queue directly
/// ([`MainQueue::serve`]); the crate's own poll runs only inside a transaction's commit
/// (`txn.rs`), whose reports are not outcomes (its commit is): dropped here.
struct Context;

impl ClientContext for Context {}

impl ProducerContext for Context {
    type DeliveryOpaque = usize;

    fn delivery(&self, _: &DeliveryResult<'_>, _: usize) {}
}

/// A delivery report's outcome: acked, `Failed` when the cluster refused the record, `None`
/// (unknown) when it may have it.
fn classify(code: RDKafkaErrorCode) -> Option<Outcome> {
    use RDKafkaErrorCode::*;
    match code {
        NoError => Some(Outcome::Acked),
        MessageTimedOut
        | RequestTimedOut
        | BrokerTransportFailure
        | AllBrokersDown
        | NetworkException
        | NotEnoughReplicasAfterAppend
        | PurgeInflight => None,
        _ => Some(Outcome::Failed),
    }
}

pub struct KafkaProducer {
    /// The topic's handle in `producer`, produced through; dropped before it.
    handle: TopicHandle,
    /// Its main queue, where its delivery reports arrive; dropped before it.
    queue: MainQueue,
    producer: BaseProducer<Context>,
    topic: String,
    partitions: u32,
    /// Longest wait for room in librdkafka's queue.
    queue_timeout: Duration,
    bootstrap: String,
    reports: Batch,
    /// A transactional producer's open transaction.
    txn: Option<Transaction>,
    /// The settings it was made with (a fenced transactional producer is made again).
    config: ClientConfig,
    on_fenced: OnFenced,
    recreated: u32,
}

/// A producer of `config` (with its delivery-report context).
fn create(config: &ClientConfig, bootstrap: &str) -> Result<BaseProducer<Context>, BackendError> {
    config
        .create_with_context(Context)
        .map_err(|e| BackendError::other(NAME, format!("producer for {bootstrap}: {e}")))
}

impl KafkaProducer {
    pub fn open(ctx: &WorkerCtx, options: &Options) -> Result<KafkaProducer, BackendError> {
        let ep = Endpoint::from_value(&ctx.endpoint)?;
        let mut c = base_config(
            &ep.bootstrap,
            &format!(
                "mq-bench-{}-p{}",
                mq_core::plan::broker_name(&ctx.plan.name),
                ctx.index
            ),
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
        if options.transactional {
            txn::configure(&mut c, options, &format!("{}-p{}", ep.topic, ctx.index));
        }
        client::apply(&mut c, &options.producer_config);
        let producer = create(&c, &ep.bootstrap)?;
        // A pipeline's producers write its input topic.
        let topic = ep.input.clone().unwrap_or(ep.topic);
        client::reach(producer.client(), &ep.bootstrap, Some(&topic))?;
        let txn = match options.transactional {
            true => Some(Transaction::init(
                &producer,
                options,
                ctx.plan.workload.ack_timeout.0,
            )?),
            false => None,
        };
        Ok(KafkaProducer {
            handle: TopicHandle::new(&producer, &topic)?,
            queue: MainQueue::new(&producer)?,
            producer,
            topic,
            partitions: ep.partitions,
            queue_timeout: ctx.plan.workload.ack_timeout.0,
            bootstrap: ep.bootstrap,
            reports: Batch {
                transactional: txn.is_some(),
                ..Batch::default()
            },
            txn,
            config: c,
            on_fenced: options.on_fenced.unwrap_or_default(),
            recreated: 0,
        })
    }

    /// After a transaction step: when a fatal error ended the instance (fenced) and
    /// `on_fenced = "recreate"`, a new instance with the same `transactional.id` takes its place
    /// (its init aborts the transaction left open) and the step's error is dropped: `Ok(true)`.
    fn recover(&mut self, step: Result<(), BackendError>) -> Result<bool, BackendError> {
        let Err(e) = step else { return Ok(false) };
        let broken = self.txn.as_ref().is_some_and(Transaction::broken);
        if !broken || self.on_fenced == OnFenced::Fail || self.recreated >= txn::MAX_RECREATE {
            return Err(e);
        }
        self.recreated += 1;
        tracing::warn!(
            "kafka: {e}; making the transactional producer again ({} of at most {})",
            self.recreated,
            txn::MAX_RECREATE
        );
        self.producer
            .purge(PurgeConfig::default().queue().inflight());
        let producer = create(&self.config, &self.bootstrap)?;
        let renewed = match &self.txn {
            Some(t) => t.renew(&producer)?,
            None => return Err(e),
        };
        // The old handle goes before the old instance.
        self.handle = TopicHandle::new(&producer, &self.topic)?;
        self.queue = MainQueue::new(&producer)?;
        self.producer = producer;
        self.txn = Some(renewed);
        Ok(true)
    }
}

/// Delivery reports on their way from librdkafka's main queue to the worker.
#[derive(Default)]
struct Batch {
    /// Sends since the last poll.
    unpolled: u32,
    /// The outcomes being handed on (no allocation per poll).
    known: Vec<(Seq, Outcome)>,
    /// A transactional producer's reports are not outcomes (its commits are): dropped.
    transactional: bool,
}

impl Batch {
    /// Serves the main queue and hands the outcomes reported to `acks`, as one batch; how many
    /// reports there were.
    fn poll(
        &mut self,
        queue: &MainQueue,
        producer: &BaseProducer<Context>,
        acks: &mut dyn AckSink,
    ) -> usize {
        self.unpolled = 0;
        self.known.clear();
        let (known, transactional) = (&mut self.known, self.transactional);
        let reports = queue.serve(producer, |seq, code| {
            if let Some(outcome) = classify(code).filter(|_| !transactional) {
                known.push((Seq(seq), outcome));
            }
        });
        if !self.known.is_empty() {
            acks.ack_all(&self.known);
        }
        reports
    }
}

impl Producer for KafkaProducer {
    fn send(&mut self, msg: &mut Outgoing<'_>, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        if msg.partition.0 >= self.partitions {
            return Err(BackendError::other(
                NAME,
                format!(
                    "partition {} does not exist (topic {} has {})",
                    msg.partition.0, self.topic, self.partitions
                ),
            ));
        }
        if let Some(t) = &mut self.txn {
            let r = t.before_send(&self.producer, msg.seq);
            if self.recover(r)? {
                // The new instance opens the transaction this message goes in.
                if let Some(t) = &mut self.txn {
                    t.before_send(&self.producer, msg.seq)?;
                }
            }
        }
        let partition = msg.partition.0 as i32;
        let mut deadline = None;
        loop {
            match self.handle.produce(partition, msg.payload(), msg.seq.0) {
                Ok(()) => break,
                Err(RDKafkaErrorCode::QueueFull) => {
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
                    // Room comes with delivery reports: take those there are, else sleep until
                    // the next one arrives. (The crate's timed poll spins through its deadline's
                    // last millisecond, and a 10 ms one kept the producer idle long after room
                    // came.)
                    if self.reports.poll(&self.queue, &self.producer, acks) == 0 {
                        self.queue.wait(QUEUE_FULL_WAKE);
                    }
                }
                Err(code) => {
                    // Refused before it left the process (e.g. too large): it will never arrive.
                    acks.ack(msg.seq, Outcome::Failed);
                    let e = KafkaError::MessageProduction(code);
                    if code == RDKafkaErrorCode::Fatal {
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
        self.reports.unpolled += 1;
        if self.reports.unpolled >= SENDS_PER_POLL {
            self.reports.poll(&self.queue, &self.producer, acks);
        }
        if let Some(t) = &mut self.txn {
            let r = t.after_send(&self.producer, msg.seq, acks);
            self.recover(r)?;
        }
        Ok(())
    }

    fn poll(&mut self, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        self.reports.poll(&self.queue, &self.producer, acks);
        Ok(())
    }

    fn flush(&mut self, timeout: Duration, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        if let Some(t) = &mut self.txn {
            // The last transaction, however short: commit it (the commit flushes).
            let r = t.end(&self.producer, acks);
            self.recover(r)?;
        }
        let deadline = Instant::now() + timeout;
        loop {
            // SAFETY: a live producer; with no wait, the call only tells its broker threads to
            // send what lingers (delivery reports come as events: it does not serve them).
            unsafe { rdkafka::bindings::rd_kafka_flush(self.producer.client().native_ptr(), 0) };
            self.reports.poll(&self.queue, &self.producer, acks);
            let left = self.producer.in_flight_count();
            if left <= 0 {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                tracing::warn!(
                    "kafka: {left} records without a delivery report from {} after {timeout:?}; they count as unknown",
                    self.bootstrap,
                );
                return Ok(());
            }
            self.queue.wait((deadline - now).min(FLUSH_WAKE));
        }
    }

    fn transactional(&self) -> bool {
        self.txn.is_some()
    }
}
