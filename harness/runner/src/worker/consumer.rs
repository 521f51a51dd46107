//! The consumer's loop: takes what the backend delivers, decodes each envelope, spends the
//! configured processing time, and records the delivery in the history (and the backend's
//! assignment changes beside it, `<history>.assign.jsonl`).
//!
//! With `processing_threads` > 1 the processing happens in a [`Pool`] of threads: a delivery is
//! recorded when its processing finishes (stamped with that time), by this thread, and its token
//! goes back to the backend ([`mq_core::Consumer::processed`]) to be acknowledged only then.
//!
//! With `consumer_dedup = "store"` every processed delivery first waits for the store's verdict
//! ([`Dedup`]): after each poll the worker marks the batch, records the new ones, skips the
//! repeats, and only then gives their tokens back to be acknowledged.

use std::sync::atomic::Ordering::{Relaxed, Release};
use std::time::Duration;

use anyhow::Context;
use mq_core::assignment::AssignLog;
use mq_core::bits::Bits;
use mq_core::clock::now_ns;
use mq_core::envelope::Envelope;
use mq_core::history::{History, Record};
use mq_core::plan::Processing;
use mq_core::spec::WorkerSpec;
use mq_core::{BackendError, DeliverySink, Partition, Processed, Token};

use super::dedup::Dedup;
use mq_core::shard::{Shard, SAME_SHARD_LOG, SHARD_ENV};

use super::latency::{LatencyLog, END_TO_END, END_TO_END_SAME_SHARD};
use super::pool::{Done, Job, Pool, PoolError};
use super::Counters;

/// First deliveries counted at once in `delivered` at most: one shared count per message cost
/// a few per cent of a fast consumer's time.
const PUBLISH_EVERY: u64 = 64;

/// Timestamps and records processed deliveries.
struct Recorder<'a> {
    history: History,
    latency: LatencyLog,
    /// In a sharded run: end-to-end latency of messages whose producer ran in this shard,
    /// the figure that needs no clock shared across hosts.
    same_shard: Option<(LatencyLog, Shard)>,
    counters: &'a Counters,
    /// (producer, seq) seen by this consumer: `delivered` counts each once.
    seen: Vec<Bits>,
    /// First deliveries recorded but not yet added to `delivered` ([`Recorder::publish`]).
    unpublished: u64,
    error: Option<std::io::Error>,
    /// Tokens processed by the threads, not yet given back to the backend.
    done: Vec<Token>,
    /// `consumer_dedup = "store"`: processed deliveries wait here for the store's verdict.
    dedup: Option<Dedup>,
    store_error: Option<mq_dedup::StoreError>,
}

impl Recorder<'_> {
    fn record(&mut self, envelope: Option<Envelope>, at_ns: u64) {
        let rec = match envelope {
            Some(e) => {
                let p = e.producer.0 as usize;
                if p >= self.seen.len() {
                    self.seen.resize_with(p + 1, Bits::default);
                }
                if !self.seen[p].set(e.seq.0) {
                    self.unpublished += 1;
                    if self.unpublished >= PUBLISH_EVERY {
                        self.publish();
                    }
                    if let Err(err) = self.latency.record(e.send_ns, at_ns) {
                        self.error.get_or_insert(err);
                    }
                    if let Some((log, shard)) = &mut self.same_shard {
                        if shard.runs(u32::from(e.producer.0)) {
                            if let Err(err) = log.record(e.send_ns, at_ns) {
                                self.error.get_or_insert(err);
                            }
                        }
                    }
                }
                Record::Delivered {
                    producer: e.producer,
                    seq: e.seq,
                    key: e.key,
                    sent_ns: e.send_ns,
                    at_ns,
                }
            }
            None => Record::Unexpected { at_ns },
        };
        if let Err(e) = self.history.record(rec) {
            self.error.get_or_insert(e);
        }
    }

    /// Adds the first deliveries recorded since the last call to `delivered`: after every
    /// poll, and every [`PUBLISH_EVERY`] within one.
    fn publish(&mut self) {
        if self.unpublished > 0 {
            self.counters
                .delivered
                .fetch_add(std::mem::take(&mut self.unpublished), Release);
        }
    }

    fn processed(&mut self, d: Done) {
        self.finished(d.job.envelope, d.job.token, d.at_ns);
    }

    /// A delivery whose processing finished at `at_ns`: recorded (and its token handed back)
    /// now, or with dedup once the store has said whether it is new.
    fn finished(&mut self, envelope: Option<Envelope>, token: Option<Token>, at_ns: u64) {
        let Some(d) = self.dedup.as_mut() else {
            self.done.extend(token);
            return self.record(envelope, at_ns);
        };
        d.push(envelope, token);
        if d.full() {
            if let Err(e) = self.mark() {
                self.store_error.get_or_insert(e);
            }
        }
    }

    /// Dedup: marks the waiting deliveries in the store (one transaction), then records the
    /// new ones, stamped after the commit, and hands every token back (a repeat's too: it was
    /// processed before).
    fn mark(&mut self) -> Result<(), mq_dedup::StoreError> {
        let Some(mut d) = self.dedup.take() else {
            return Ok(());
        };
        let marked = d.mark().map(|verdicts| {
            let at_ns = now_ns();
            for v in verdicts {
                self.done.extend(v.token);
                if v.new {
                    self.record(v.envelope, at_ns);
                }
            }
        });
        self.dedup = Some(d);
        marked
    }
}

/// Decodes deliveries and processes them, here or in the pool.
struct Deliveries<'a> {
    rec: Recorder<'a>,
    run_id: u32,
    /// Work per message before it counts as processed (and is recorded).
    processing: Option<Processing>,
    rng: u64,
    pool: Option<Pool>,
    pool_error: Option<PoolError>,
}

impl Deliveries<'_> {
    /// The processing time of the next message.
    fn work(&mut self) -> Duration {
        let Some(p) = self.processing else {
            return Duration::ZERO;
        };
        // xorshift64: a cheap uniform draw per message
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let unit = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        p.sample(unit)
    }

    /// Hands a delivery to the pool (which must exist).
    fn hand_over(&mut self, payload: &[u8], token: Option<Token>) {
        let job = Job {
            token,
            envelope: Envelope::decode(payload, self.run_id).ok(),
            work: self.work(),
        };
        let rec = &mut self.rec;
        if let Some(pool) = self.pool.as_mut() {
            if let Err(e) = pool.submit(job, &mut |d| rec.processed(d)) {
                self.pool_error.get_or_insert(e);
            }
        }
    }

    /// Records what the threads have finished.
    fn ready(&mut self) {
        let rec = &mut self.rec;
        if let Some(pool) = self.pool.as_mut() {
            pool.ready(&mut |d| rec.processed(d));
        }
    }
}

impl Deliveries<'_> {
    /// Processes a delivery in this thread; stamped `arrived` (when its backend took it with a
    /// batch) unless processing here delays it behind the batch's earlier messages.
    fn process_here(&mut self, payload: &[u8], token: Option<Token>, arrived: Option<u64>) {
        let at_ns = match (arrived, self.processing) {
            (Some(at), None) => at,
            _ => now_ns(),
        };
        if self.processing.is_some() {
            let work = self.work();
            std::thread::sleep(work);
        }
        let envelope = Envelope::decode(payload, self.run_id).ok();
        self.rec.finished(envelope, token, at_ns);
    }

    /// A delivery (stamped `arrived` when it came with a batch): to the pool, or processed here.
    fn take(&mut self, payload: &[u8], token: Token, arrived: Option<u64>) -> Processed {
        if self.pool.is_some() {
            self.hand_over(payload, Some(token));
        } else if self.rec.dedup.is_some() {
            // acknowledged once the store has it
            self.process_here(payload, Some(token), arrived);
        } else {
            self.process_here(payload, None, arrived);
            return Processed::Now;
        }
        Processed::Later
    }
}

impl DeliverySink for Deliveries<'_> {
    fn deliver(&mut self, payload: &[u8], _partition: Partition) {
        if self.pool.is_some() {
            return self.hand_over(payload, None);
        }
        self.process_here(payload, None, None);
    }

    fn deliver_token(&mut self, payload: &[u8], token: Token) -> Processed {
        self.take(payload, token, None)
    }

    fn deliver_token_at(&mut self, payload: &[u8], token: Token, at_ns: u64) -> Processed {
        self.take(payload, token, Some(at_ns))
    }

    /// With processing threads, a poll's worth is what keeps them busy; with dedup alone, the
    /// store's batch (fewer transactions, and fewer acks or commits).
    fn later_batch(&self) -> usize {
        match (&self.pool, &self.rec.dedup) {
            (None, Some(_)) => mq_dedup::MAX_BATCH,
            _ => mq_core::parallel::LATER_BATCH,
        }
    }
}

impl Deliveries<'_> {
    /// At the end: lets the threads finish what they hold, and marks what waits for the store.
    fn finish(&mut self) -> anyhow::Result<()> {
        let mut result = Ok(());
        if let Some(pool) = self.pool.take() {
            let rec = &mut self.rec;
            result = (pool.finish(&mut |d| rec.processed(d)))
                .context("finishing the processing threads");
        }
        if let Some(e) = self.rec.store_error.take() {
            return Err(e.into());
        }
        let marked = self.rec.mark();
        result.and(marked.map_err(anyhow::Error::from))
    }
}

/// Gives the processed tokens back to the backend.
fn acknowledge(
    consumer: &mut dyn mq_core::Consumer,
    done: &mut Vec<Token>,
) -> Result<(), BackendError> {
    if done.is_empty() {
        return Ok(());
    }
    let r = consumer.processed(done);
    done.clear();
    r
}

pub(super) fn run_consumer(
    mut consumer: Box<dyn mq_core::Consumer>,
    spec: &WorkerSpec,
    history: History,
    counters: &Counters,
) -> anyhow::Result<()> {
    let w = &spec.ctx.plan.workload;
    let warmup_ns = w.warmup.0.as_nanos() as u64;
    // Without a warm-up nothing is left out, so the start need not be known: a shard's consumer
    // takes other shards' messages before its own start is written.
    let from_ns = (warmup_ns == 0).then_some(0);
    let latency = LatencyLog::create(&spec.history, END_TO_END, warmup_ns, from_ns)
        .with_context(|| format!("creating the latency log beside {}", spec.history.display()))?;
    let same_shard = match std::env::var(SHARD_ENV) {
        Ok(text) => {
            let shard: Shard = text.parse().map_err(anyhow::Error::msg)?;
            let beside = spec
                .history
                .with_extension(SAME_SHARD_LOG.replace(".hlog", ".hist"));
            let log = LatencyLog::create(&beside, END_TO_END_SAME_SHARD, warmup_ns, from_ns)
                .with_context(|| {
                    format!(
                        "creating the same-shard latency log beside {}",
                        spec.history.display()
                    )
                })?;
            Some((log, shard))
        }
        Err(_) => None,
    };
    let pool = match w.processing_threads {
        0 | 1 => None,
        n => Some(Pool::start(n as usize, w.dispatch).context("starting the processing threads")?),
    };
    let dedup = match &spec.dedup_store {
        Some(path) => Some(Dedup::open(path, spec.ctx.plan.dedup_sync, spec.ctx.index)?),
        None => None,
    };
    let mut sink = Deliveries {
        rec: Recorder {
            history,
            latency,
            same_shard,
            counters,
            seen: Vec::new(),
            unpublished: 0,
            error: None,
            done: Vec::new(),
            dedup,
            store_error: None,
        },
        run_id: spec.ctx.run_id,
        processing: w.processing,
        rng: now_ns() | 1,
        pool,
        pool_error: None,
    };
    let mut assign = AssignLog::new(&spec.history, spec.ctx.index);
    let mut result = consume(consumer.as_mut(), &mut sink, &mut assign, counters);
    let finished = sink.finish();
    sink.rec.publish();
    let acked = acknowledge(consumer.as_mut(), &mut sink.rec.done);
    if result.is_ok() {
        result = finished.and_then(|()| acked.context("acknowledging the last processed messages"));
    }
    counters.stopped.store(true, Relaxed);
    if let Err(e) = consumer.close() {
        if result.is_ok() {
            result = Err(anyhow::Error::from(e).context("closing the consumer"));
        }
    }
    // Leaving the group revokes what the member held.
    if let Err(e) = assign.write(consumer.assignment_changes()) {
        tracing::warn!("recording the assignment changes at close: {e}");
    }
    sink.rec
        .history
        .finish()
        .context("finishing the history file")?;
    sink.rec
        .latency
        .finish()
        .context("finishing the latency log")?;
    if let Some((log, _)) = sink.rec.same_shard {
        log.finish()
            .context("finishing the same-shard latency log")?;
    }
    result
}

/// Polls until the stop signal or an error.
fn consume(
    consumer: &mut dyn mq_core::Consumer,
    sink: &mut Deliveries<'_>,
    assign: &mut AssignLog,
    counters: &Counters,
) -> anyhow::Result<()> {
    while !counters.stop.load(Relaxed) {
        sink.ready();
        sink.rec.mark()?;
        acknowledge(consumer, &mut sink.rec.done).context("acknowledging processed messages")?;
        if counters.paused.load(Relaxed) {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        match consumer.poll(Duration::from_millis(100), sink) {
            Ok(_) | Err(BackendError::Interrupted { .. }) => {}
            Err(e) => return Err(anyhow::Error::from(e).context("receiving")),
        }
        sink.rec.publish();
        assign
            .write(consumer.assignment_changes())
            .context("writing the assignment changes")?;
        if let Some(e) = sink.rec.error.take() {
            anyhow::bail!("writing history: {e}");
        }
        if let Some(e) = sink.pool_error.take() {
            return Err(anyhow::Error::from(e).context("processing"));
        }
        if let Some(e) = sink.rec.store_error.take() {
            return Err(e.into());
        }
    }
    Ok(())
}
