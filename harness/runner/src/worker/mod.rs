//! The worker: one producer, consumer or pipeline stage, its history file, and the control lines from the
//! coordinator.
//!
//! [`main`] is the `bench worker` process: stdin carries a JSON `WorkerSpec` line, then control
//! lines (`go T`, `stop`, `pause`, `resume`; EOF means stop); stdout carries one JSON `Status`
//! per line. A stop interrupts a blocking send or receive with SIGUSR1 (no SA_RESTART),
//! repeated until the role's loop has seen it. [`play`] is the role itself, without the
//! process around it, so tests can run a backend's workers in threads.

mod consumer;
mod dedup;
pub mod latency;
mod pending;
mod pool;
mod producer;
mod stage;

use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Acquire, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use anyhow::Context;
use mq_core::clock::now_ns;
use mq_core::history::{FileHeader, History, Role};
use mq_core::spec::{Control, RoleSpec, Status, Totals, WorkerSpec};
use mq_core::{Backend, Registry};

/// A worker's counts and the flags its controller sets.
#[derive(Default)]
pub struct Counters {
    /// Written by the producer loop alone, which stores each new total (no other writer may
    /// add to these two).
    sent: AtomicU64,
    acked: AtomicU64,
    failed: AtomicU64,
    not_sent: AtomicU64,
    delivered: AtomicU64,
    /// Set by the controller on `stop` or EOF.
    stop: AtomicBool,
    /// Consumers: set between `pause` and `resume`.
    paused: AtomicBool,
    /// Set by the role's loop once it has seen `stop`: no more interrupting signals.
    stopped: AtomicBool,
}

impl Counters {
    /// A consistent snapshot: an outcome is counted after its send, so reading the outcomes
    /// first (acquire, against the release increments) never shows more outcomes than sends.
    pub fn totals(&self) -> Totals {
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

    /// Carries out a control line's `stop`, `pause` or `resume`.
    pub fn control(&self, c: Control) {
        match c {
            Control::Stop => {
                self.stop.store(true, Relaxed);
                mq_core::stop::request();
            }
            Control::Pause => self.paused.store(true, Relaxed),
            Control::Resume => self.paused.store(false, Relaxed),
            Control::Go(_) => {}
        }
    }

    /// Whether the role's loop has ended.
    pub fn stopped(&self) -> bool {
        self.stopped.load(Relaxed)
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
    // SAFETY: installing a handler that only stores an atomic, without SA_RESTART.
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
    // A sharded run's workers stamp with the real-time clock (mq_core::clock).
    mq_core::clock::init_from_env().map_err(anyhow::Error::msg)?;
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
                        Some(c) => counters.control(c),
                        None => {}
                    },
                }
            }
            counters.control(Control::Stop);
            while !counters.stopped() {
                // SAFETY: the main thread lives as long as the process.
                unsafe { libc::pthread_kill(main_thread, libc::SIGUSR1) };
                std::thread::sleep(Duration::from_millis(20));
            }
        });
    }
    {
        let counters = counters.clone();
        // Every 100 ms: the coordinator's drain waits for counts that stopped moving, so the
        // period is part of every variant's end.
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(100));
            say(&Status::Progress {
                at_ns: now_ns(),
                totals: counters.totals(),
            });
        });
    }
    match play(&spec, backend.as_ref(), &counters, &go_rx, &mut || {
        say(&Status::Ready)
    }) {
        Ok(()) => {
            say(&Status::Done {
                totals: counters.totals(),
            });
            Ok(())
        }
        Err(e) => {
            say(&Status::Error {
                message: format!("{e:#}"),
            });
            Err(e)
        }
    }
}

/// Plays the role of `spec` with `backend`: connects, calls `ready`, (producers) waits for the
/// start time on `go`, and runs until done or stopped through `counters`.
pub fn play(
    spec: &WorkerSpec,
    backend: &dyn Backend,
    counters: &Counters,
    go: &mpsc::Receiver<u64>,
    ready: &mut dyn FnMut(),
) -> anyhow::Result<()> {
    let role = match spec.role {
        RoleSpec::Producer { .. } => Role::Producer,
        RoleSpec::Consumer => Role::Consumer,
        RoleSpec::Stage => return stage::play_stage(spec, backend, counters, ready),
    };
    let header = FileHeader {
        role,
        worker: spec.ctx.index,
        run_id: spec.ctx.run_id,
    };
    let result = (|| {
        let w = &spec.ctx.plan.workload;
        let history = History::create(&spec.history, header, w.history, w.keys())
            .with_context(|| format!("creating history file {}", spec.history.display()))?;
        match spec.role {
            RoleSpec::Producer {
                messages,
                duration_ns,
                rate,
                ack_timeout_ns,
            } => {
                let producer = backend.producer(&spec.ctx)?;
                ready();
                let start_ns = match go.recv() {
                    Ok(t) => t,
                    Err(_) => now_ns(), // stopped before the start: send nothing
                };
                let plan = producer::ProducerPlan {
                    messages,
                    duration_ns,
                    rate,
                    ack_timeout_ns,
                    start_ns,
                };
                producer::run_producer(producer, spec, plan, history, counters)
            }
            RoleSpec::Consumer => {
                let consumer = backend.consumer(&spec.ctx)?;
                ready();
                consumer::run_consumer(consumer, spec, history, counters)
            }
            RoleSpec::Stage => Ok(()), // played above: a stage has no history
        }
    })();
    counters.stopped.store(true, Relaxed);
    result
}
