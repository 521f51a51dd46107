//! The consumer's loop: takes what the backend delivers, decodes each envelope, spends the
//! configured processing time, and records the delivery in the history (and the backend's
//! assignment changes beside it, `<history>.assign.jsonl`).

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
use mq_core::{BackendError, DeliverySink, Partition};

use super::latency::{LatencyLog, END_TO_END};
use super::Counters;

/// Decodes, timestamps and records deliveries.
struct Deliveries<'a> {
    history: History,
    latency: LatencyLog,
    run_id: u32,
    counters: &'a Counters,
    /// Work per message before it counts as processed (and is recorded).
    processing: Option<Processing>,
    rng: u64,
    /// (producer, seq) seen by this consumer: `delivered` counts each once.
    seen: Vec<Bits>,
    error: Option<std::io::Error>,
}

impl DeliverySink for Deliveries<'_> {
    fn deliver(&mut self, payload: &[u8], _partition: Partition) {
        let at_ns = now_ns();
        if let Some(p) = self.processing {
            // xorshift64: a cheap uniform draw per message
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            let unit = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
            std::thread::sleep(p.sample(unit));
        }
        let rec = match Envelope::decode(payload, self.run_id) {
            Ok(e) => {
                let p = e.producer.0 as usize;
                if p >= self.seen.len() {
                    self.seen.resize_with(p + 1, Bits::default);
                }
                if !self.seen[p].set(e.seq.0) {
                    self.counters.delivered.fetch_add(1, Release);
                    if let Err(err) = self.latency.record(e.send_ns, at_ns) {
                        self.error.get_or_insert(err);
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
            Err(_) => Record::Unexpected { at_ns },
        };
        if let Err(e) = self.history.record(rec) {
            self.error.get_or_insert(e);
        }
    }
}

pub(super) fn run_consumer(
    mut consumer: Box<dyn mq_core::Consumer>,
    spec: &WorkerSpec,
    history: History,
    counters: &Counters,
) -> anyhow::Result<()> {
    let warmup_ns = spec.ctx.plan.workload.warmup.0.as_nanos() as u64;
    let latency = LatencyLog::create(&spec.history, END_TO_END, warmup_ns, None)
        .with_context(|| format!("creating the latency log beside {}", spec.history.display()))?;
    let mut sink = Deliveries {
        history,
        latency,
        run_id: spec.ctx.run_id,
        counters,
        processing: spec.ctx.plan.workload.processing,
        rng: now_ns() | 1,
        seen: Vec::new(),
        error: None,
    };
    let mut assign = AssignLog::new(&spec.history, spec.ctx.index);
    let mut result = Ok(());
    while !counters.stop.load(Relaxed) {
        if counters.paused.load(Relaxed) {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        match consumer.poll(Duration::from_millis(100), &mut sink) {
            Ok(_) | Err(BackendError::Interrupted { .. }) => {}
            Err(e) => {
                result = Err(anyhow::Error::from(e).context("receiving"));
                break;
            }
        }
        if let Err(e) = assign.write(consumer.assignment_changes()) {
            sink.error.get_or_insert(e);
        }
        if let Some(e) = sink.error.take() {
            result = Err(anyhow::anyhow!("writing history: {e}"));
            break;
        }
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
    sink.history
        .finish()
        .context("finishing the history file")?;
    sink.latency.finish().context("finishing the latency log")?;
    result
}
