//! The worker process: one producer or consumer, its history file, and the control lines from
//! the coordinator.
//!
//! stdin: a JSON `WorkerSpec` line, then control lines (`go T`, `stop`); EOF means stop.
//! stdout: one JSON `Status` per line. A stop interrupts a blocking send or receive with SIGUSR1
//! (no SA_RESTART), repeated until the main loop has seen it.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::sync::atomic::{
    AtomicBool, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use anyhow::{bail, Context};
use mq_core::bits::Bits;
use mq_core::clock::{now_ns, sleep_until};
use mq_core::envelope::Envelope;
use mq_core::history::FailReason;
use mq_core::history::{FileHeader, HistoryWriter, Record, Role};
use mq_core::plan::Processing;
use mq_core::spec::{Control, RoleSpec, Status, Totals, WorkerSpec};
use mq_core::{
    AckSink, BackendError, DeliverySink, Key, Outcome, Outgoing, Partition, ProducerId, Registry,
    Seq,
};

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    acked: AtomicU64,
    failed: AtomicU64,
    not_sent: AtomicU64,
    delivered: AtomicU64,
    /// Set by the control thread on `stop` or EOF.
    stop: AtomicBool,
    /// Consumers: set between `pause` and `resume`.
    paused: AtomicBool,
    /// Set by the main loop once it has seen `stop`: no more interrupting signals.
    stopped: AtomicBool,
}

impl Counters {
    /// A consistent snapshot: an outcome is counted after its send, so reading the outcomes
    /// first (acquire, against the release increments) never shows more outcomes than sends.
    fn totals(&self) -> Totals {
        let delivered = self.delivered.load(Acquire);
        let not_sent = self.not_sent.load(Acquire);
        let failed = self.failed.load(Acquire);
        let acked = self.acked.load(Acquire);
        Totals {
            sent: self.sent.load(Acquire),
            acked,
            failed,
            not_sent,
            delivered,
        }
    }
}

fn say(status: &Status) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, status);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

extern "C" fn on_interrupt(_: libc::c_int) {
    mq_core::stop::request(); // an atomic store: async-signal-safe
}

/// SIGUSR1 makes a blocking syscall return EINTR and raises [`mq_core::stop`] for backends
/// that wait in loops.
fn install_interrupt_handler() {
    // SAFETY: installing a no-op handler without SA_RESTART.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_interrupt as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = 0;
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
    }
}

/// Runs `bench worker`: reads the spec from stdin and plays the role until done or stopped.
pub fn main(registry: &Registry) -> anyhow::Result<()> {
    install_interrupt_handler();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the worker spec from stdin")?;
    let spec: WorkerSpec = serde_json::from_str(&line).context("parsing the worker spec")?;
    let backend = registry
        .iter()
        .find(|b| b.info().name == spec.ctx.plan.backend)
        .with_context(|| format!("unknown backend {:?}", spec.ctx.plan.backend))?;

    let counters = Arc::new(Counters::default());
    let (go_tx, go_rx) = mpsc::channel::<u64>();
    // SAFETY: pthread_self of the calling (main) thread, used only for pthread_kill below.
    let main_thread = unsafe { libc::pthread_self() };
    {
        let counters = counters.clone();
        std::thread::spawn(move || {
            let mut rest = std::io::stdin().lock();
            let mut line = String::new();
            loop {
                line.clear();
                match rest.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => match Control::parse(&line) {
                        Some(Control::Go(t)) => {
                            let _ = go_tx.send(t);
                        }
                        Some(Control::Stop) => break,
                        Some(Control::Pause) => counters.paused.store(true, Relaxed),
                        Some(Control::Resume) => counters.paused.store(false, Relaxed),
                        None => {}
                    },
                }
            }
            counters.stop.store(true, Relaxed);
            mq_core::stop::request();
            while !counters.stopped.load(Relaxed) {
                // SAFETY: the main thread lives as long as the process.
                unsafe { libc::pthread_kill(main_thread, libc::SIGUSR1) };
                std::thread::sleep(Duration::from_millis(20));
            }
        });
    }

    let role = match spec.role {
        RoleSpec::Producer { .. } => Role::Producer,
        RoleSpec::Consumer => Role::Consumer,
    };
    let header = FileHeader {
        role,
        worker: spec.ctx.index,
        run_id: spec.ctx.run_id,
    };
    let history = HistoryWriter::create(&spec.history, header)
        .with_context(|| format!("creating history file {}", spec.history.display()))?;

    {
        let counters = counters.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(200));
            say(&Status::Progress {
                at_ns: now_ns(),
                totals: counters.totals(),
            });
        });
    }

    let outcome = match spec.role {
        RoleSpec::Producer {
            messages,
            duration_ns,
            rate,
            ack_timeout_ns,
        } => {
            let producer = backend.producer(&spec.ctx).map_err(anyhow::Error::from);
            let producer = match producer {
                Ok(p) => p,
                Err(e) => return fail(&counters, e),
            };
            say(&Status::Ready);
            let start_ns = match go_rx.recv() {
                Ok(t) => t,
                Err(_) => now_ns(), // stopped before the start: send nothing
            };
            let plan = ProducerPlan {
                messages,
                duration_ns,
                rate,
                ack_timeout_ns,
                start_ns,
            };
            run_producer(producer, &spec, plan, history, &counters)
        }
        RoleSpec::Consumer => {
            let consumer = match backend.consumer(&spec.ctx) {
                Ok(c) => c,
                Err(e) => return fail(&counters, e.into()),
            };
            say(&Status::Ready);
            run_consumer(consumer, &spec, history, &counters)
        }
    };
    counters.stopped.store(true, Relaxed);
    match outcome {
        Ok(()) => {
            say(&Status::Done {
                totals: counters.totals(),
            });
            Ok(())
        }
        Err(e) => fail(&counters, e),
    }
}

fn fail(counters: &Counters, e: anyhow::Error) -> anyhow::Result<()> {
    counters.stopped.store(true, Relaxed);
    say(&Status::Error {
        message: format!("{e:#}"),
    });
    Err(e)
}

/// How often a rate-limited producer polls for confirmations between sends.
const POLL_EVERY_NS: u64 = 100_000;

struct ProducerPlan {
    messages: Option<u64>,
    duration_ns: Option<u64>,
    rate: f64,
    ack_timeout_ns: u64,
    start_ns: u64,
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

fn run_producer(
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

/// Decodes, timestamps and records deliveries.
struct Deliveries<'a> {
    history: HistoryWriter,
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
        if let Err(e) = self.history.push(rec) {
            self.error.get_or_insert(e);
        }
    }
}

fn run_consumer(
    mut consumer: Box<dyn mq_core::Consumer>,
    spec: &WorkerSpec,
    history: HistoryWriter,
    counters: &Counters,
) -> anyhow::Result<()> {
    let mut sink = Deliveries {
        history,
        run_id: spec.ctx.run_id,
        counters,
        processing: spec.ctx.plan.workload.processing,
        rng: now_ns() | 1,
        seen: Vec::new(),
        error: None,
    };
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
    sink.history
        .finish()
        .context("finishing the history file")?;
    result
}
