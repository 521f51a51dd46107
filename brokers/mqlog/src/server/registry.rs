//! Every open connection's activity, and the two ways the server closes one to make room: the
//! idlest one when a new client arrives at the connection cap, and the one that has not read
//! its responses for longest when the response budget runs out.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// `waiting_since` when the connection has no response pending.
const NOT_WAITING: u64 = u64::MAX;

/// What the server knows about one connection, shared by its reader, writer and request tasks.
#[derive(Debug)]
pub struct ConnState {
    /// Unique for the life of the server.
    pub id: u64,
    /// The client's address (for logs).
    pub peer: SocketAddr,
    epoch: Instant,
    /// When (ms since `epoch`) a request last arrived or response bytes were last written.
    last_active: AtomicU64,
    /// While responses are pending: when (ms since `epoch`) the socket last took bytes of them.
    waiting_since: AtomicU64,
    /// Requests the server is waiting on for this connection (long polls, fsyncs).
    waits: AtomicUsize,
    /// Bytes of the response budget its unwritten responses hold.
    pub held: AtomicU64,
    close: watch::Sender<bool>,
}

/// Counts one server-side wait (a long poll, an fsync) of a connection while alive.
pub struct Waiting<'a>(&'a ConnState);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waits.fetch_sub(1, Relaxed);
    }
}

impl ConnState {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Marks activity: a request arrived.
    pub fn touch(&self) {
        self.last_active.store(self.now_ms(), Relaxed);
    }

    /// How long since the last request or written response.
    pub fn idle_for(&self) -> Duration {
        Duration::from_millis(self.now_ms().saturating_sub(self.last_active.load(Relaxed)))
    }

    /// Counts a server-side wait until the guard drops: a waiting connection is not idle.
    pub fn waiting(&self) -> Waiting<'_> {
        self.waits.fetch_add(1, Relaxed);
        Waiting(self)
    }

    /// Whether the server is waiting on something for this connection.
    pub fn has_waits(&self) -> bool {
        self.waits.load(Relaxed) > 0
    }

    /// The writer has responses to write: starts the stall clock unless it runs already.
    pub fn output_pending(&self) {
        let now = self.now_ms();
        let _ = self
            .waiting_since
            .compare_exchange(NOT_WAITING, now, Relaxed, Relaxed);
    }

    /// The socket took bytes: the client is reading.
    pub fn output_progress(&self) {
        let now = self.now_ms();
        self.waiting_since.store(now, Relaxed);
        self.last_active.store(now, Relaxed);
    }

    /// Everything queued was written.
    pub fn output_drained(&self) {
        self.last_active.store(self.now_ms(), Relaxed);
        self.waiting_since.store(NOT_WAITING, Relaxed);
    }

    /// How long pending responses have waited for the client to read; `None` when none wait.
    pub fn stalled_for(&self) -> Option<Duration> {
        let since = self.waiting_since.load(Relaxed);
        (since != NOT_WAITING).then(|| Duration::from_millis(self.now_ms().saturating_sub(since)))
    }

    /// Asks the connection's reader, writer and request tasks to stop now (dropping whatever
    /// they hold).
    pub fn close(&self) {
        self.close.send_replace(true);
    }

    /// Whether [`ConnState::close`] was called.
    pub fn is_closed(&self) -> bool {
        *self.close.borrow()
    }

    /// Completes once [`ConnState::close`] is called.
    pub async fn closed(&self) {
        let mut rx = self.close.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }
}

/// The open connections.
#[derive(Debug)]
pub struct Registry {
    epoch: Instant,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
}

/// Removes its connection from the registry when dropped (the connection task ended).
pub struct Registration<'a> {
    registry: &'a Registry,
    id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

/// Why [`Registry::shed_stalled`] closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shed {
    pub id: u64,
    pub peer: SocketAddr,
    pub held: u64,
    pub stalled_for: Duration,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry {
            epoch: Instant::now(),
            next_id: AtomicU64::new(1),
            conns: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ConnState>>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a connection, active now.
    pub fn register(&self, peer: SocketAddr) -> (Arc<ConnState>, Registration<'_>) {
        let id = self.next_id.fetch_add(1, Relaxed);
        let state = Arc::new(ConnState {
            id,
            peer,
            epoch: self.epoch,
            last_active: AtomicU64::new(0),
            waiting_since: AtomicU64::new(NOT_WAITING),
            waits: AtomicUsize::new(0),
            held: AtomicU64::new(0),
            close: watch::Sender::new(false),
        });
        state.touch();
        self.lock().insert(id, state.clone());
        (state, Registration { registry: self, id })
    }

    /// Open connections.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    /// Closes the connection idle the longest, preferring one the server is not waiting on
    /// for a request (a long poll): that is the one least likely to be doing anything.
    /// Returns its address, or `None` when every connection is closing already.
    pub fn evict_idlest(&self) -> Option<SocketAddr> {
        let conns = self.lock();
        let victim = conns
            .values()
            .filter(|c| !c.is_closed())
            .max_by_key(|c| (!c.has_waits(), c.idle_for()))?;
        victim.close();
        Some(victim.peer)
    }

    /// Closes the connection (other than `except`) whose responses have waited for their
    /// client to read the longest, if that is at least `min_stall` and it holds response
    /// budget. Its unwritten responses are dropped, which frees their budget.
    pub fn shed_stalled(&self, except: u64, min_stall: Duration) -> Option<Shed> {
        let conns = self.lock();
        let (stalled_for, victim) = conns
            .values()
            .filter(|c| c.id != except && !c.is_closed() && c.held.load(Relaxed) > 0)
            .filter_map(|c| c.stalled_for().map(|s| (s, c)))
            .filter(|(s, _)| *s >= min_stall)
            .max_by_key(|(s, c)| (*s, c.held.load(Relaxed)))?;
        victim.close();
        Some(Shed {
            id: victim.id,
            peer: victim.peer,
            held: victim.held.load(Relaxed),
            stalled_for,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn the_idlest_connection_without_a_wait_is_evicted_first() {
        let r = Registry::new();
        let (a, _ra) = r.register(addr(1));
        std::thread::sleep(Duration::from_millis(20));
        let (b, _rb) = r.register(addr(2));
        std::thread::sleep(Duration::from_millis(20));
        let (c, _rc) = r.register(addr(3));
        // `a` is the idlest but long-polling: `b` goes first.
        let _w = a.waiting();
        assert_eq!(r.evict_idlest(), Some(addr(2)));
        assert!(b.is_closed() && !a.is_closed() && !c.is_closed());
        assert_eq!(r.evict_idlest(), Some(addr(3)));
        assert_eq!(r.evict_idlest(), Some(addr(1)));
        assert_eq!(r.evict_idlest(), None);
    }

    #[test]
    fn only_a_stalled_holder_is_shed() {
        let r = Registry::new();
        let (a, _ra) = r.register(addr(1));
        let (b, _rb) = r.register(addr(2));
        let (c, _rc) = r.register(addr(3));
        a.held.store(100, Relaxed);
        a.output_pending();
        b.held.store(500, Relaxed);
        b.output_pending();
        c.output_pending(); // holds nothing: never shed
        std::thread::sleep(Duration::from_millis(50));
        b.output_progress(); // b is reading
        assert_eq!(r.shed_stalled(0, Duration::from_millis(400)), None);
        std::thread::sleep(Duration::from_millis(450));
        // Both have waited 400 ms by now; `a` the longest.
        let shed = r.shed_stalled(0, Duration::from_millis(400)).unwrap();
        assert_eq!((shed.peer, shed.held), (addr(1), 100));
        assert!(a.is_closed() && !b.is_closed());
        // The caller's own connection is never shed.
        assert_eq!(r.shed_stalled(b.id, Duration::ZERO), None);
        drop(_rc);
        assert_eq!(r.len(), 2);
    }
}
