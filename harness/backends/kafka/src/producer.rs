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
use rdkafka::producer::{
    BaseProducer, DeliveryResult, Producer as _, ProducerContext, PurgeConfig,
};
use rdkafka::ClientConfig;

use crate::client::{self, base_config, Endpoint};
use crate::options::Options;
use crate::topic_handle::TopicHandle;
use crate::txn::{self, OnFenced, Transaction};
use crate::wake::Wake;
use crate::NAME;

/// Sends between two polls for delivery reports while sending as fast as possible. Polling
/// after every send cost more than librdkafka's own produce call (clock reads converting the
/// timeout, the queue's lock); a report waits at most this many sends (well under 1 ms at any
/// rate bench reaches, against librdkafka's own `linger.ms` batching). A paced producer polls
/// while it waits for its next send ([`Producer::poll`]), so its reports are timely at any rate.
const SENDS_PER_POLL: u32 = 32;

/// How long a producer whose librdkafka queue is full waits before it looks for reports again,
/// without a wake-up pipe ([`Wake`]); with one, it waits at most [`QUEUE_FULL_WAKE`] for a report.
const QUEUE_FULL_WAIT: Duration = Duration::from_micros(200);
const QUEUE_FULL_WAKE: Duration = Duration::from_millis(10);

/// Collects delivery reports; librdkafka calls it from `poll`/`flush` on the worker's thread.
#[derive(Default)]
struct Reports(Mutex<Vec<(Seq, Option<Outcome>)>>);

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
            .push((Seq(seq as u64), outcome));
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
    /// The topic's handle in `producer`, produced through; dropped before it.
    handle: TopicHandle,
    /// Wakes a producer waiting for room when a delivery report arrives; dropped before it.
    wake: Option<Wake>,
    producer: BaseProducer<Reports>,
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
fn create(config: &ClientConfig, bootstrap: &str) -> Result<BaseProducer<Reports>, BackendError> {
    config
        .create_with_context(Reports::default())
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
            wake: Wake::new(&producer),
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
        self.wake = Wake::new(&producer);
        self.producer = producer;
        self.txn = Some(renewed);
        Ok(true)
    }
}

/// Delivery reports on their way from librdkafka's callback to the worker.
#[derive(Default)]
struct Batch {
    /// Sends since the last poll.
    unpolled: u32,
    /// The reports being handed on, swapped with the context's (no allocation per poll).
    taken: Vec<(Seq, Option<Outcome>)>,
    known: Vec<(Seq, Outcome)>,
    /// A transactional producer's reports are not outcomes (its commits are): dropped.
    transactional: bool,
}

impl Batch {
    /// Polls librdkafka and hands the delivery reports it gave to `acks`, as one batch; how
    /// many reports there were.
    fn poll(
        &mut self,
        producer: &BaseProducer<Reports>,
        timeout: Duration,
        acks: &mut dyn AckSink,
    ) -> usize {
        self.unpolled = 0;
        producer.poll(timeout);
        self.report(producer, acks)
    }

    fn report(&mut self, producer: &BaseProducer<Reports>, acks: &mut dyn AckSink) -> usize {
        std::mem::swap(
            &mut self.taken,
            &mut *producer
                .context()
                .0
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        self.known.clear();
        let reports = self.taken.len();
        if self.transactional {
            self.taken.clear();
            return reports;
        }
        self.known.extend(
            self.taken
                .drain(..)
                .filter_map(|(seq, outcome)| Some((seq, outcome?))),
        );
        acks.ack_all(&self.known);
        reports
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
            match self.handle.produce(partition, msg.payload, msg.seq.0) {
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
                    if self.reports.poll(&self.producer, Duration::ZERO, acks) == 0 {
                        match &self.wake {
                            Some(w) => w.wait(QUEUE_FULL_WAKE),
                            None => std::thread::sleep(QUEUE_FULL_WAIT),
                        }
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
            self.reports.poll(&self.producer, Duration::ZERO, acks);
        }
        if let Some(t) = &mut self.txn {
            let r = t.after_send(&self.producer, msg.seq, acks);
            self.recover(r)?;
        }
        Ok(())
    }

    fn poll(&mut self, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        self.reports.poll(&self.producer, Duration::ZERO, acks);
        Ok(())
    }

    fn flush(&mut self, timeout: Duration, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        if let Some(t) = &mut self.txn {
            // The last transaction, however short: commit it (the commit flushes).
            let r = t.end(&self.producer, acks);
            self.recover(r)?;
        }
        let r = self.producer.flush(timeout);
        self.reports.report(&self.producer, acks);
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

    fn transactional(&self) -> bool {
        self.txn.is_some()
    }
}
