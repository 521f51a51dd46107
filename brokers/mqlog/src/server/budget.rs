//! Byte budgets: semaphores whose permits are bytes, bounding what the server holds in memory
//! (large request frames being received, fetch responses not yet written), and the room a fetch
//! response holds until the writer has handed it to the socket.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::registry::ConnState;

/// A budget of bytes shared by its holders.
#[derive(Debug, Clone)]
pub struct ByteBudget {
    sem: Arc<Semaphore>,
    capacity: u64,
    /// Woken whenever a [`ResponseBudget`] gives bytes back (see [`ByteBudget::released`]).
    released: Arc<Notify>,
}

impl ByteBudget {
    /// A budget of `bytes`.
    pub fn new(bytes: u64) -> ByteBudget {
        let capacity = bytes.clamp(1, Semaphore::MAX_PERMITS as u64);
        ByteBudget {
            sem: Arc::new(Semaphore::new(capacity as usize)),
            capacity,
            released: Arc::new(Notify::new()),
        }
    }

    /// How many permits a request for `n` bytes takes: never more than the whole budget (one
    /// holder larger than the budget takes all of it, so it cannot wait forever) and never 0
    /// (so every holder counts).
    pub fn permits_for(&self, n: u64) -> u32 {
        n.clamp(1, self.capacity.min(u64::from(u32::MAX))) as u32
    }

    /// Waits for room for `n` bytes (see [`ByteBudget::permits_for`]); first come, first served.
    pub async fn acquire(&self, n: u64) -> OwnedSemaphorePermit {
        self.sem
            .clone()
            .acquire_many_owned(self.permits_for(n))
            .await
            .expect("budget semaphores are never closed")
    }

    /// Room for `n` bytes if there is some right now (whoever waits in [`ByteBudget::acquire`]).
    pub fn try_acquire(&self, n: u64) -> Option<OwnedSemaphorePermit> {
        self.sem
            .clone()
            .try_acquire_many_owned(self.permits_for(n))
            .ok()
    }

    /// Completes after a [`ResponseBudget`] of this budget gave bytes back. Enable it before
    /// [`ByteBudget::try_acquire`] so that a release in between is not missed.
    pub fn released(&self) -> tokio::sync::futures::Notified<'_> {
        self.released.notified()
    }

    /// Bytes not held by anyone right now.
    pub fn available(&self) -> u64 {
        self.sem.available_permits() as u64
    }

    /// The whole budget.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }
}

/// Room a fetch response holds in its connection's budget and in the server's, until it is
/// dropped (once written, or when the connection closes). Counted in the connection's
/// [`ConnState::held`] so the server can tell which connections sit on the most memory.
pub struct ResponseBudget {
    conn_permit: OwnedSemaphorePermit,
    global_permit: OwnedSemaphorePermit,
    global: ByteBudget,
    conn: Arc<ConnState>,
}

impl ResponseBudget {
    /// Joins the permits taken for one response of `conn`: in its connection's budget and in
    /// `global` (from which `global_permit` came).
    pub fn new(
        conn_permit: OwnedSemaphorePermit,
        global_permit: OwnedSemaphorePermit,
        global: ByteBudget,
        conn: Arc<ConnState>,
    ) -> ResponseBudget {
        conn.held
            .fetch_add(global_permit.num_permits() as u64, Relaxed);
        ResponseBudget {
            conn_permit,
            global_permit,
            global,
            conn,
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.global_permit.num_permits() as u64
    }

    /// Takes room for `bytes` in all if both budgets have it right now.
    pub fn try_grow_to(&mut self, bytes: u64, conn_budget: &ByteBudget) -> bool {
        let extra = bytes.saturating_sub(self.bytes());
        if extra == 0 {
            return true;
        }
        let Some(c) = conn_budget.try_acquire(extra) else {
            return false;
        };
        let Some(g) = self.global.try_acquire(extra) else {
            return false;
        };
        if c.num_permits() as u64 != extra || g.num_permits() as u64 != extra {
            // Clamped: more than a whole budget; not worth holding.
            return false;
        }
        self.conn.held.fetch_add(extra, Relaxed);
        self.conn_permit.merge(c);
        self.global_permit.merge(g);
        true
    }

    /// Gives back what the response turned out not to need.
    pub fn shrink_to(&mut self, bytes: u64) {
        let keep = bytes.clamp(1, self.bytes()) as usize;
        let extra = self.global_permit.num_permits() - keep;
        if extra > 0 {
            drop(self.global_permit.split(extra));
            self.conn.held.fetch_sub(extra as u64, Relaxed);
            self.global.released.notify_waiters();
        }
        let extra = self.conn_permit.num_permits().saturating_sub(keep);
        if extra > 0 {
            drop(self.conn_permit.split(extra));
        }
    }
}

impl Drop for ResponseBudget {
    fn drop(&mut self) {
        let n = self.global_permit.num_permits();
        drop(self.global_permit.split(n));
        self.conn.held.fetch_sub(n as u64, Relaxed);
        self.global.released.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_are_clamped_and_a_response_grows_and_shrinks() {
        let registry = super::super::registry::Registry::new();
        let (conn, _reg) = registry.register("127.0.0.1:1".parse().unwrap());
        let global = ByteBudget::new(1000);
        let local = ByteBudget::new(600);
        assert_eq!(global.permits_for(0), 1);
        assert_eq!(global.permits_for(5000), 1000);
        let c = local.acquire(800).await;
        let g = global.try_acquire(c.num_permits() as u64).unwrap();
        let mut b = ResponseBudget::new(c, g, global.clone(), conn.clone());
        assert_eq!(
            (b.bytes(), local.available(), global.available()),
            (600, 0, 400)
        );
        assert_eq!(conn.held.load(Relaxed), 600);
        b.shrink_to(250);
        assert_eq!(
            (b.bytes(), local.available(), global.available()),
            (250, 350, 750)
        );
        assert_eq!(conn.held.load(Relaxed), 250);
        assert!(b.try_grow_to(500, &local));
        assert_eq!(
            (b.bytes(), local.available(), global.available()),
            (500, 100, 500)
        );
        // Past what the connection's budget has left: refused, nothing taken.
        assert!(!b.try_grow_to(700, &local));
        assert_eq!(
            (b.bytes(), local.available(), global.available()),
            (500, 100, 500)
        );
        let released = global.released();
        tokio::pin!(released);
        released.as_mut().enable();
        drop(b);
        assert_eq!((local.available(), global.available()), (600, 1000));
        assert_eq!(conn.held.load(Relaxed), 0);
        tokio::time::timeout(std::time::Duration::from_secs(1), released)
            .await
            .expect("a release wakes the waiters");
    }
}
