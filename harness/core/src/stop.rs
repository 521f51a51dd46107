//! The worker's stop request, visible to backends that wait in loops (reconnecting, waiting
//! for buffer space) so they end promptly instead of at their own timeouts.
//!
//! The worker raises it on `stop` (and its SIGUSR1 handler does, which is why this is one
//! atomic: storing to it is async-signal-safe). A backend that sees it returns
//! `BackendError::Interrupted`.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Asks whatever is waiting in this process to stop.
pub fn request() {
    REQUESTED.store(true, Ordering::Relaxed);
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}
