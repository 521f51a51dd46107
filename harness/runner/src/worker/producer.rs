//! The producer's loop: sends on schedule (from each message's intended time, so a stalled
//! broker shows up as latency), records every send and its outcome in the history.

use std::collections::HashMap;
use std::sync::atomic::Ordering::{Relaxed, Release};
use std::time::Duration;

use anyhow::{bail, Context};
use mq_core::clock::{now_ns, sleep_until};
use mq_core::envelope::Envelope;
use mq_core::history::{FailReason, HistoryWriter, Record};
use mq_core::spec::WorkerSpec;
use mq_core::{AckSink, BackendError, Key, Outcome, Outgoing, ProducerId, Seq};

use super::Counters;

/// How often a rate-limited producer polls for confirmations between sends.
const POLL_EVERY_NS: u64 = 100_000;

pub(super) struct ProducerPlan {
    pub messages: Option<u64>,
    pub duration_ns: Option<u64>,
    pub rate: f64,
    pub ack_timeout_ns: u64,
    pub start_ns: u64,
}

/// Records outcomes with their time and the send's intended time.
struct Recorder<'a> {
    history: HistoryWriter,
    producer: ProducerId,
    counters: &'a Counters,
    /// The send in progress: its outcome usually arrives during `send` itself.
    current: Option<(u64, u64)>,
    /// Intended send time of sends still waiting for an outcome.
    pending: HashMap<u64, u64>,
    error: Option<std::io::Error>,
}

impl AckSink for Recorder<'_> {
    fn ack(&mut self, seq: Seq, outcome: Outcome) {
        let intended_ns = match self.current {
            Some((s, t)) if s == seq.0 => {
                self.current = None;
                t
            }
            _ => match self.pending.remove(&seq.0) {
                Some(t) => t,
                None => return, // a second outcome for one send: keep the first
            },
        };
        let at_ns = now_ns();
        let rec = match outcome {
            Outcome::Acked => {
                self.counters.acked.fetch_add(1, Release);
                Record::Acked {
                    producer: self.producer,
                    seq,
                    at_ns,
                    intended_ns,
                }
            }
            Outcome::Failed | Outcome::NotSent => {
                let reason = if outcome == Outcome::Failed {
                    self.counters.failed.fetch_add(1, Release);
                    FailReason::Refused
                } else {
                    self.counters.not_sent.fetch_add(1, Release);
                    FailReason::NotSent
                };
                Record::Failed {
                    producer: self.producer,
                    seq,
                    at_ns,
                    reason,
                }
            }
        };
        if let Err(e) = self.history.push(rec) {
            self.error.get_or_insert(e);
        }
    }
}

pub(super) fn run_producer(
    mut producer: Box<dyn mq_core::Producer>,
    spec: &WorkerSpec,
    plan: ProducerPlan,
    history: HistoryWriter,
    counters: &Counters,
) -> anyhow::Result<()> {
    let w = &spec.ctx.plan.workload;
    let id = ProducerId(spec.ctx.index);
    let keys = w.keys() as u64;
    let mut payload = vec![b'x'; w.message_size];
    let interval_ns = if plan.rate > 0.0 {
        1e9 / plan.rate
    } else {
        0.0
    };
    let end_ns = plan.duration_ns.map(|d| plan.start_ns + d);
    let mut rec = Recorder {
        history,
        producer: id,
        counters,
        current: None,
        pending: HashMap::new(),
        error: None,
    };
    sleep_until(plan.start_ns);

    let mut result = Ok(());
    let mut seq = 0u64;
    loop {
        if plan.messages.is_some_and(|n| seq >= n) || counters.stop.load(Relaxed) {
            break;
        }
        let intended_ns = if interval_ns > 0.0 {
            plan.start_ns + (seq as f64 * interval_ns) as u64
        } else {
            now_ns()
        };
        if end_ns.is_some_and(|end| intended_ns >= end) {
            break;
        }
        if interval_ns > 0.0 {
            // Outcomes that arrive while waiting are recorded as they arrive.
            while !rec.pending.is_empty() && now_ns() + POLL_EVERY_NS < intended_ns {
                if let Err(e) = producer.poll(&mut rec) {
                    result = Err(anyhow::Error::from(e).context("polling for confirmations"));
                    break;
                }
                std::thread::sleep(Duration::from_nanos(POLL_EVERY_NS));
            }
            if result.is_err() {
                break;
            }
            sleep_until(intended_ns);
        }
        let key = Key(((seq + id.0 as u64) % keys) as u32);
        let env = Envelope {
            run_id: spec.ctx.run_id,
            producer: id,
            key,
            seq: Seq(seq),
            send_ns: intended_ns,
        };
        env.encode(&mut payload);
        rec.history.push(Record::Sent {
            producer: id,
            seq: Seq(seq),
            key,
            intended_ns,
        })?;
        counters.sent.fetch_add(1, Release);
        rec.current = Some((seq, intended_ns));
        let msg = Outgoing {
            seq: Seq(seq),
            key,
            partition: key.partition(w.partitions),
            payload: &payload,
        };
        match producer.send(&msg, &mut rec) {
            Ok(()) => {}
            Err(BackendError::Interrupted { .. }) => break,
            Err(e) => {
                result = Err(anyhow::Error::from(e).context(format!("sending seq {seq}")));
                break;
            }
        }
        if let Some((s, t)) = rec.current.take() {
            rec.pending.insert(s, t);
        }
        if let Some(e) = rec.error.take() {
            bail!("writing history: {e}");
        }
        seq += 1;
    }
    counters.stopped.store(true, Relaxed);
    if let Err(e) = producer.flush(Duration::from_nanos(plan.ack_timeout_ns), &mut rec) {
        if result.is_ok() {
            result = Err(anyhow::Error::from(e).context("waiting for outstanding confirmations"));
        }
    }
    drop(producer);
    rec.history.finish().context("finishing the history file")?;
    result
}
