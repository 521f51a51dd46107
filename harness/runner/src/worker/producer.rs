//! The producer's loop: sends on schedule (from each message's intended time, so a stalled
//! broker shows up as latency), records every send and its outcome in the history.

use std::sync::atomic::Ordering::{Relaxed, Release};
use std::time::Duration;

use anyhow::{bail, Context};
use mq_core::clock::{now_ns, sleep_until};
use mq_core::envelope::Envelope;
use mq_core::history::{key_of, FailReason, History, Record, Txn};
use mq_core::spec::WorkerSpec;
use mq_core::{AckSink, BackendError, Outcome, Outgoing, ProducerId, Seq, TxnEvent};

use super::latency::{LatencyLog, PUBLISH};
use super::pending::Pending;
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
    history: History,
    latency: LatencyLog,
    producer: ProducerId,
    counters: &'a Counters,
    /// The send in progress: its outcome usually arrives during `send` itself.
    current: Option<(u64, u64)>,
    /// Intended send time of sends still waiting for an outcome.
    pending: Pending,
    /// When the send in progress was confirmed, if it was during its own `send` (a synchronous
    /// backend): the clock read an unpaced producer takes as the next send's intended time,
    /// so a message costs one clock read, not two.
    own_ack_ns: Option<u64>,
    /// Acks counted so far: the producer alone writes its counters, so a plain store of each
    /// new total publishes it (no locked read-modify-write per message).
    acked: u64,
    error: Option<std::io::Error>,
}

impl AckSink for Recorder<'_> {
    fn ack(&mut self, seq: Seq, outcome: Outcome) {
        if self.ack_at(seq, outcome, now_ns()) {
            self.count_acked(1);
        }
    }

    /// One clock read and one count for the whole batch.
    fn ack_all(&mut self, outcomes: &[(Seq, Outcome)]) {
        let at_ns = now_ns();
        let mut acked = 0;
        for &(seq, outcome) in outcomes {
            acked += u64::from(self.ack_at(seq, outcome, at_ns));
        }
        if acked > 0 {
            self.count_acked(acked);
        }
    }

    fn transaction(&mut self, event: TxnEvent, first: Seq, count: u64) {
        let txn = Txn {
            producer: self.producer,
            first,
            count,
            at_ns: now_ns(),
        };
        let rec = match event {
            TxnEvent::CommitStarted => Record::CommitStarted(txn),
            TxnEvent::Aborted => Record::Aborted(txn),
        };
        if let Err(e) = self.history.record(rec) {
            self.error.get_or_insert(e);
        }
    }
}

impl Recorder<'_> {
    /// Send `seq` counted, before it leaves (so no outcome is ever counted above it): seqs run
    /// from 0, one send each, so it is send number `seq + 1`.
    #[inline]
    fn count_sent(&self, seq: Seq) {
        self.counters.sent.store(seq.0 + 1, Release);
    }

    #[inline]
    fn count_acked(&mut self, n: u64) {
        self.acked += n;
        self.counters.acked.store(self.acked, Release);
    }

    /// Records `seq`'s outcome, known at `at_ns`; whether it is a first ack, for the caller to
    /// count in `acked` (failures are counted here).
    fn ack_at(&mut self, seq: Seq, outcome: Outcome, at_ns: u64) -> bool {
        let intended_ns = match self.current {
            Some((s, t)) if s == seq.0 => {
                self.current = None;
                self.own_ack_ns = Some(at_ns);
                t
            }
            _ => match self.pending.remove(seq.0) {
                Some(t) => t,
                None => return false, // a second outcome for one send: keep the first
            },
        };
        let rec = match outcome {
            Outcome::Acked => {
                if let Err(e) = self.latency.record(intended_ns, at_ns) {
                    self.error.get_or_insert(e);
                }
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
        if let Err(e) = self.history.record(rec) {
            self.error.get_or_insert(e);
        }
        outcome == Outcome::Acked
    }
}

/// When each send is due.
struct Schedule {
    start_ns: u64,
    /// Between intended sends; 0 for as fast as possible.
    interval_ns: f64,
    end_ns: Option<u64>,
    messages: Option<u64>,
}

impl Schedule {
    fn new(plan: &ProducerPlan) -> Schedule {
        Schedule {
            start_ns: plan.start_ns,
            interval_ns: if plan.rate > 0.0 {
                1e9 / plan.rate
            } else {
                0.0
            },
            end_ns: plan.duration_ns.map(|d| plan.start_ns + d),
            messages: plan.messages,
        }
    }

    /// Sends are paced at a fixed rate.
    fn paced(&self) -> bool {
        self.interval_ns > 0.0
    }

    /// The intended send time of `seq`; None when the load is over. Unpaced, it is now: `now`
    /// when the caller has just read the clock, else a fresh read.
    fn intended(&self, seq: u64, now: Option<u64>) -> Option<u64> {
        if self.messages.is_some_and(|n| seq >= n) {
            return None;
        }
        let t = if self.paced() {
            self.start_ns + (seq as f64 * self.interval_ns) as u64
        } else {
            now.unwrap_or_else(now_ns)
        };
        self.end_ns.is_none_or(|end| t < end).then_some(t)
    }
}

/// What became of one send.
enum Step {
    Next,
    /// Stopped while sending: the load ends, outstanding confirmations are awaited.
    Interrupted,
    /// The send failed: the load ends with this error, after the confirmations.
    Failed(anyhow::Error),
}

pub(super) fn run_producer(
    mut producer: Box<dyn mq_core::Producer>,
    spec: &WorkerSpec,
    plan: ProducerPlan,
    history: History,
    counters: &Counters,
) -> anyhow::Result<()> {
    let schedule = Schedule::new(&plan);
    let mut buf = Outgoing::buffer(spec.ctx.plan.workload.message_size);
    let warmup_ns = spec.ctx.plan.workload.warmup.0.as_nanos() as u64;
    let from_ns = plan.start_ns + warmup_ns;
    let latency = LatencyLog::create(&spec.history, PUBLISH, warmup_ns, Some(from_ns))
        .with_context(|| format!("creating the latency log beside {}", spec.history.display()))?;
    let mut rec = Recorder {
        history,
        latency,
        producer: ProducerId(spec.ctx.index),
        counters,
        current: None,
        pending: Pending::default(),
        own_ack_ns: None,
        acked: 0,
        error: None,
    };
    if producer.transactional() {
        rec.history.mark_transactional();
    }
    sleep_until(plan.start_ns);

    let mut result = Ok(());
    let mut seq = 0u64;
    while !counters.stop.load(Relaxed) {
        // The last send's own confirmation was the last thing it did: its clock read is now.
        let Some(intended_ns) = schedule.intended(seq, rec.own_ack_ns.take()) else {
            break;
        };
        if schedule.paced() {
            if let Err(e) = await_turn(producer.as_mut(), &mut rec, intended_ns) {
                result = Err(e);
                break;
            }
        }
        match send(
            producer.as_mut(),
            &mut rec,
            spec,
            &mut buf,
            Seq(seq),
            intended_ns,
        )? {
            Step::Next => seq += 1,
            Step::Interrupted => break,
            Step::Failed(e) => {
                result = Err(e);
                break;
            }
        }
    }
    counters.stopped.store(true, Relaxed);
    if let Err(e) = producer.flush(Duration::from_nanos(plan.ack_timeout_ns), &mut rec) {
        if result.is_ok() {
            result = Err(anyhow::Error::from(e).context("waiting for outstanding confirmations"));
        }
    }
    drop(producer);
    rec.history.finish().context("finishing the history file")?;
    rec.latency.finish().context("finishing the latency log")?;
    result
}

/// Waits for the intended send time, recording confirmations as they arrive meanwhile.
fn await_turn(
    producer: &mut dyn mq_core::Producer,
    rec: &mut Recorder<'_>,
    intended_ns: u64,
) -> anyhow::Result<()> {
    while !rec.pending.is_empty() && now_ns() + POLL_EVERY_NS < intended_ns {
        producer
            .poll(rec)
            .map_err(|e| anyhow::Error::from(e).context("polling for confirmations"))?;
        std::thread::sleep(Duration::from_nanos(POLL_EVERY_NS));
    }
    sleep_until(intended_ns);
    Ok(())
}

/// Sends message `seq`, recorded in the history before it leaves. An error is the history's
/// (the worker cannot go on); the send's own failure is a [`Step`].
fn send(
    producer: &mut dyn mq_core::Producer,
    rec: &mut Recorder<'_>,
    spec: &WorkerSpec,
    buf: &mut [u8],
    seq: Seq,
    intended_ns: u64,
) -> anyhow::Result<Step> {
    let w = &spec.ctx.plan.workload;
    let id = rec.producer;
    let key = key_of(id, seq, w.keys());
    let env = Envelope {
        run_id: spec.ctx.run_id,
        producer: id,
        key,
        seq,
        send_ns: intended_ns,
    };
    env.encode(&mut buf[Outgoing::HEADROOM..]);
    rec.history.record(Record::Sent {
        producer: id,
        seq,
        key,
        intended_ns,
    })?;
    rec.count_sent(seq);
    rec.current = Some((seq.0, intended_ns));
    let mut msg = Outgoing::new(seq, key, key.partition(w.partitions), buf);
    match producer.send(&mut msg, rec) {
        Ok(()) => {}
        Err(BackendError::Interrupted { .. }) => return Ok(Step::Interrupted),
        Err(e) => {
            let e = anyhow::Error::from(e).context(format!("sending seq {}", seq.0));
            return Ok(Step::Failed(e));
        }
    }
    if let Some((s, t)) = rec.current.take() {
        rec.pending.insert(s, t);
    }
    if let Some(e) = rec.error.take() {
        bail!("writing history: {e}");
    }
    Ok(Step::Next)
}
