//! The cost sampler: one thread reading /proc/<pid>/stat and /proc/<pid>/io of every broker
//! process and worker of a variant every [`INTERVAL`], plus once more as a worker exits (before
//! it is reaped) and before the broker is faulted or stopped. [`account`] turns the readings
//! into the variant's `cost` (docs/results-schema.md).
//!
//! Each process is one entry from its first reading to its last: a restarted broker, or a pid
//! that comes back as another process, is a new entry. A process that vanishes (SIGKILL) keeps
//! its last reading. CPU and I/O count from the load's start ([`Handle::go`]) for processes
//! running then, and from their own start for those started later (a restart's start-up is a
//! cost of the fault).

mod account;
pub mod proc;

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

pub use account::{account, Load};
use mq_results::cost::Part;
use proc::Reading;

/// How often every process is read.
pub const INTERVAL: Duration = Duration::from_millis(250);

/// One process (incarnation) as read so far.
#[derive(Debug, Clone)]
struct Tracked {
    part: Part,
    label: String,
    pid: u32,
    /// Its first reading and the one its figures count from (zero when it started after the
    /// load's start).
    first: Reading,
    base: Reading,
    last: Reading,
    peak_rss: u64,
    rss_sum: u128,
    rss_samples: u32,
    samples: u32,
    /// Vanished (or the pid now names another process): no longer read.
    gone: bool,
    /// Its last reading was taken as it exited.
    final_sample: bool,
}

impl Tracked {
    /// Takes `r` as its newest reading (a reading of a zombie has no memory: RSS stands).
    fn update(&mut self, r: Reading) {
        self.last = r;
        self.samples += 1;
        if r.rss_bytes > 0 {
            self.peak_rss = self.peak_rss.max(r.rss_bytes);
            self.rss_sum += u128::from(r.rss_bytes);
            self.rss_samples += 1;
        }
    }
}

/// The sums at one turn of the sampler: CPU ticks since each process's first reading, RSS and
/// whether any process was alive, per part (broker, producers, consumers).
#[derive(Debug, Clone, Copy, Default)]
struct Turn {
    at_ns: u64,
    cpu: [u64; 3],
    rss: [u64; 3],
    alive: [bool; 3],
}

fn slot(part: Part) -> usize {
    match part {
        Part::Broker => 0,
        Part::Producer => 1,
        Part::Consumer => 2,
    }
}

#[derive(Debug, Default)]
struct State {
    tracked: Vec<Tracked>,
    turns: Vec<Turn>,
    /// The load's start (monotonic ns), once the producers were told to go.
    go_ns: Option<u64>,
    /// CPU seconds the sampling thread used, once it has stopped.
    sampler_cpu_s: f64,
}

struct Shared {
    state: Mutex<State>,
    stopped: Mutex<bool>,
    wake: Condvar,
}

/// What the coordinator and the worker pool tell the sampler; cheap to clone.
#[derive(Clone)]
pub struct Handle(Arc<Shared>);

/// The sampling thread of one variant; [`Sampler::finish`] stops it.
pub struct Sampler {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl Handle {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding it leaves readings that are still whole.
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts reading `pid` as `label` of `part` (a no-op when it is already read, or gone).
    pub fn track(&self, part: Part, label: &str, pid: u32) {
        let Some(r) = proc::read(pid) else { return };
        let mut s = self.state();
        let known = s
            .tracked
            .iter()
            .any(|t| t.pid == pid && t.first.started == r.started);
        if known {
            return;
        }
        let base = match s.go_ns {
            Some(_) => Reading {
                started: r.started,
                ..Reading::default()
            },
            None => r,
        };
        let mut t = Tracked {
            part,
            label: label.to_owned(),
            pid,
            first: r,
            base,
            last: r,
            peak_rss: 0,
            rss_sum: 0,
            rss_samples: 0,
            samples: 0,
            gone: false,
            final_sample: false,
        };
        t.update(r);
        s.tracked.push(t);
    }

    /// Starts reading a worker: `producer 0`, `consumer 1`, a replacement `consumer 1 (r1)`.
    pub fn worker(&self, producer: bool, index: u16, generation: u32, pid: u32) {
        let (part, role) = match producer {
            true => (Part::Producer, "producer"),
            false => (Part::Consumer, "consumer"),
        };
        let label = match generation {
            0 => format!("{role} {index}"),
            g => format!("{role} {index} (r{g})"),
        };
        self.track(part, &label, pid);
    }

    /// The broker's processes now ([`mq_core::Broker::processes`]): new ones are read from now
    /// on under their names (`broker`, `node 2`).
    pub fn brokers(&self, processes: &[(String, u32)]) {
        for (label, pid) in processes {
            self.track(Part::Broker, label, *pid);
        }
    }

    /// Reads every live process now and records the turn.
    pub fn sample_now(&self) {
        let mut s = self.state();
        let mut turn = Turn {
            at_ns: mq_core::clock::now_ns(),
            ..Turn::default()
        };
        for t in s.tracked.iter_mut() {
            if !t.gone {
                match proc::read(t.pid) {
                    Some(r) if r.started == t.first.started => {
                        t.update(r);
                        turn.rss[slot(t.part)] += r.rss_bytes;
                        turn.alive[slot(t.part)] |= r.rss_bytes > 0;
                    }
                    _ => t.gone = true,
                }
            }
            turn.cpu[slot(t.part)] += t.last.cpu_ticks.saturating_sub(t.first.cpu_ticks);
        }
        s.turns.push(turn);
    }

    /// The last reading of `pid`, which has exited and is not reaped yet (so its pid is still
    /// its own): its final CPU and I/O figures.
    pub fn final_sample(&self, pid: u32) {
        let r = proc::read(pid);
        let mut s = self.state();
        let Some(t) = (s.tracked.iter_mut()).find(|t| t.pid == pid && !t.gone) else {
            return;
        };
        if let Some(r) = r.filter(|r| r.started == t.first.started) {
            t.update(r);
            t.final_sample = true;
        }
        t.gone = true;
    }

    /// The producers are told to go at `at_ns`: figures count from the readings taken now.
    pub fn go(&self, at_ns: u64) {
        self.sample_now();
        let mut s = self.state();
        s.go_ns = Some(at_ns);
        for t in s.tracked.iter_mut() {
            t.base = t.last;
        }
    }
}

impl Sampler {
    /// Starts the sampling thread.
    pub fn start() -> Sampler {
        let handle = Handle(Arc::new(Shared {
            state: Mutex::new(State::default()),
            stopped: Mutex::new(false),
            wake: Condvar::new(),
        }));
        let h = handle.clone();
        let thread = std::thread::Builder::new()
            .name("cost-sampler".into())
            .spawn(move || loop {
                let stopped = h.0.stopped.lock().unwrap_or_else(|e| e.into_inner());
                let (stopped, _) = (h.0.wake)
                    .wait_timeout_while(stopped, INTERVAL, |s| !*s)
                    .unwrap_or_else(|e| e.into_inner());
                if *stopped {
                    drop(stopped);
                    h.state().sampler_cpu_s = thread_cpu_s();
                    return;
                }
                drop(stopped);
                h.sample_now();
            })
            .ok();
        if thread.is_none() {
            tracing::warn!("cannot start the cost sampler thread: only explicit samples are taken");
        }
        Sampler { handle, thread }
    }

    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Stops the thread after a last reading of every live process.
    pub fn finish(mut self) -> Handle {
        self.stop();
        self.handle.sample_now();
        self.handle.clone()
    }

    fn stop(&mut self) {
        *self
            .handle
            .0
            .stopped
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = true;
        self.handle.0.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop();
    }
}

/// CPU seconds of the calling thread.
fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only the timespec we pass.
    match unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } {
        0 => ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9,
        _ => 0.0,
    }
}

/// Waits until child `pid` has exited without reaping it (waitid with WNOWAIT), so that its
/// /proc entry still holds its final figures; false if it cannot be waited for.
pub fn await_exit_unreaped(pid: u32) -> bool {
    // SAFETY: siginfo_t is plain data, zeroed is a valid value; waitid only writes to it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waitid(2) on our own child, WNOWAIT leaves it for Child::wait to reap.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 {
            return true;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return false;
        }
    }
}
