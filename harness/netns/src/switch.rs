//! The switch: one thread moving IPv4 packets between the host's TUN device and each node's,
//! under the rules in effect: a cut link drops, a slow link delays (in order per link, as a
//! netem qdisc with a FIFO does) and loses. This kernel has no netem and no netfilter tools, so
//! the link itself is ours; with no fault in effect a packet is forwarded at once.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::rules::{Endpoint, Rules, Verdict};
use crate::tun::Tun;

/// The longest the switch sleeps without looking at its stop flag and rules.
const TICK: Duration = Duration::from_millis(20);
/// Packets held by slow links at most; past it a packet is dropped, as a full queue drops.
const MAX_QUEUED: usize = 50_000;
/// Packets read from one device per turn, so one busy link cannot starve the others.
const BURST: usize = 256;

/// What the switch did, since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub forwarded: u64,
    /// Dropped because their link was cut.
    pub cut: u64,
    /// Dropped by a slow link's loss.
    pub lost: u64,
    /// Held by a slow link before forwarding.
    pub delayed: u64,
    /// Dropped: not IPv4, not addressed to a member of the network, or no room to hold them.
    pub dropped: u64,
}

/// What the switch thread and its owner share.
#[derive(Default)]
pub(crate) struct Shared {
    pub rules: Mutex<Rules>,
    /// Bumped on every change of `rules`, so the thread copies them only then.
    pub generation: AtomicU64,
    forwarded: AtomicU64,
    cut: AtomicU64,
    lost: AtomicU64,
    delayed: AtomicU64,
    dropped: AtomicU64,
}

impl Shared {
    pub fn stats(&self) -> Stats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            forwarded: g(&self.forwarded),
            cut: g(&self.cut),
            lost: g(&self.lost),
            delayed: g(&self.delayed),
            dropped: g(&self.dropped),
        }
    }

    /// Changes the rules; the switch applies them from its next packet.
    pub fn update(&self, f: impl FnOnce(&mut Rules)) {
        f(&mut self.rules.lock().unwrap_or_else(|e| e.into_inner()));
        self.generation.fetch_add(1, Ordering::Release);
    }

    fn count(a: &AtomicU64) {
        a.fetch_add(1, Ordering::Relaxed);
    }
}

/// One device of the switch and whom it leads to.
pub(crate) struct Port {
    pub end: Endpoint,
    pub tun: Tun,
}

/// The running switch thread.
pub(crate) struct Switch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Switch {
    /// Starts forwarding between `ports` of subnet `a.b.c.0/24` (host `.254`, node k `.k`).
    pub fn start(ports: Vec<Port>, subnet: [u8; 3], shared: Arc<Shared>) -> io::Result<Switch> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name(format!("mq-netns-{}", subnet[2]))
            .spawn({
                let stop = stop.clone();
                move || Forwarder::new(ports, subnet, shared).run(&stop)
            })?;
        Ok(Switch {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread and closes its devices (which removes them); waits at most a tick or two.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::warn!("mq-netns: the switch thread panicked");
            }
        }
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A packet held by a slow link: released at `.0`, in arrival order (`.1`) among equals.
type Held = Reverse<(Instant, u64, usize, Vec<u8>)>;

struct Forwarder {
    ports: Vec<Port>,
    subnet: [u8; 3],
    shared: Arc<Shared>,
    rules: Rules,
    generation: u64,
    held: BinaryHeap<Held>,
    /// Release time of the last packet held per (from, to) port: a link keeps its order.
    last: HashMap<(usize, usize), Instant>,
    arrivals: u64,
    rng: u64,
}

impl Forwarder {
    fn new(ports: Vec<Port>, subnet: [u8; 3], shared: Arc<Shared>) -> Forwarder {
        let seed = (std::process::id() as u64) << 32 ^ u64::from(subnet[2]) ^ 0x9e37_79b9_7f4a_7c15;
        Forwarder {
            ports,
            subnet,
            shared,
            rules: Rules::default(),
            generation: u64::MAX,
            held: BinaryHeap::new(),
            last: HashMap::new(),
            arrivals: 0,
            rng: seed | 1,
        }
    }

    fn run(mut self, stop: &AtomicBool) {
        let mut buf = vec![0u8; 65_536];
        let mut fds: Vec<libc::pollfd> = self
            .ports
            .iter()
            .map(|p| libc::pollfd {
                fd: p.tun.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        while !stop.load(Ordering::Acquire) {
            self.refresh();
            let now = Instant::now();
            let wait = match self.held.peek() {
                Some(Reverse((t, ..))) => t.saturating_duration_since(now).min(TICK),
                None => TICK,
            };
            let ms = wait.as_millis().max(u128::from(!wait.is_zero())) as libc::c_int;
            // SAFETY: `fds` is a valid array of pollfd of its length.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
            // Rules changed while we slept apply to what woke us.
            self.refresh();
            if n > 0 {
                let ready: Vec<usize> = (fds.iter().enumerate())
                    .filter(|(_, f)| f.revents & libc::POLLIN != 0)
                    .map(|(i, _)| i)
                    .collect();
                for i in ready {
                    self.drain(i, &mut buf);
                }
            }
            self.release(Instant::now());
        }
    }

    /// Takes the rules anew when they changed; once no link is slow, what slow links still
    /// hold goes out at once (a healed link has no delay left).
    fn refresh(&mut self) {
        let g = self.shared.generation.load(Ordering::Acquire);
        if g == self.generation {
            return;
        }
        self.generation = g;
        self.rules = self
            .shared
            .rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if self.rules.is_clear() {
            let far = Instant::now() + Duration::from_secs(3600);
            self.release(far);
            self.last.clear();
        }
    }

    /// Reads up to [`BURST`] packets from port `i` and routes each.
    fn drain(&mut self, i: usize, buf: &mut [u8]) {
        for _ in 0..BURST {
            match self.ports[i].tun.read(buf) {
                Ok(n) => self.route(i, &buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::debug!("mq-netns: reading {}: {e}", self.ports[i].tun.name());
                    return;
                }
            }
        }
    }

    /// The port an IPv4 packet is addressed to, if it is one of ours.
    fn destination(&self, packet: &[u8]) -> Option<usize> {
        if packet.len() < 20 || packet[0] >> 4 != 4 || packet[16..19] != self.subnet {
            return None;
        }
        let end = match packet[19] {
            254 => Endpoint::Host,
            k => Endpoint::Node(k),
        };
        self.ports.iter().position(|p| p.end == end)
    }

    fn route(&mut self, from: usize, packet: &[u8]) {
        let Some(to) = self.destination(packet) else {
            Shared::count(&self.shared.dropped);
            return;
        };
        let (a, b) = (self.ports[from].end, self.ports[to].end);
        let verdict = {
            let rng = &mut self.rng;
            self.rules.verdict(a, b, &mut || next_unit(rng))
        };
        match verdict {
            Verdict::Cut => Shared::count(&self.shared.cut),
            Verdict::Lost => Shared::count(&self.shared.lost),
            Verdict::Pass(d) if d.is_zero() && !self.last.contains_key(&(from, to)) => {
                self.send(to, packet)
            }
            Verdict::Pass(d) => self.hold(from, to, d, packet),
        }
    }

    fn hold(&mut self, from: usize, to: usize, delay: Duration, packet: &[u8]) {
        if self.held.len() >= MAX_QUEUED {
            Shared::count(&self.shared.dropped);
            return;
        }
        let mut at = Instant::now() + delay;
        if let Some(&prev) = self.last.get(&(from, to)) {
            at = at.max(prev);
        }
        self.last.insert((from, to), at);
        self.arrivals += 1;
        self.held
            .push(Reverse((at, self.arrivals, to, packet.to_vec())));
        Shared::count(&self.shared.delayed);
    }

    /// Sends every held packet due by `now`, in order.
    fn release(&mut self, now: Instant) {
        while self.held.peek().is_some_and(|Reverse((t, ..))| *t <= now) {
            let Some(Reverse((_, _, to, packet))) = self.held.pop() else {
                break;
            };
            self.send(to, &packet);
        }
        let now = Instant::now();
        self.last.retain(|_, t| *t > now);
    }

    fn send(&self, to: usize, packet: &[u8]) {
        match self.ports[to].tun.write(packet) {
            Ok(()) => Shared::count(&self.shared.forwarded),
            // A full device queue drops, as a full link would.
            Err(_) => Shared::count(&self.shared.dropped),
        }
    }
}

/// xorshift64*: a uniform number in [0, 1). No statistics rest on it beyond "about loss %".
fn next_unit(state: &mut u64) -> f64 {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_random_numbers_are_uniform_enough_for_a_loss_rate() {
        let mut s = 0x1234_5678_9abc_def1;
        let n = 100_000;
        let below: usize = (0..n).filter(|_| next_unit(&mut s) < 0.1).count();
        assert!((9_000..11_000).contains(&below), "{below}");
        assert!((0..1000).all(|_| (0.0..1.0).contains(&next_unit(&mut s))));
    }
}
