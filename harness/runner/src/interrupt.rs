//! Ctrl-C and SIGTERM: the first asks the run to stop and write a partial report; a second
//! Ctrl-C exits at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Set when the user asked the run to stop.
#[derive(Clone)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    pub fn install() -> std::io::Result<Interrupt> {
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // Order matters: the conditional exit sees the flag as it was before this signal.
            signal_hook::flag::register_conditional_shutdown(sig, 130, flag.clone())?;
            signal_hook::flag::register(sig, flag.clone())?;
        }
        Ok(Interrupt(flag))
    }

    /// An interrupt that only `trigger` sets (tests, library use).
    pub fn manual() -> Interrupt {
        Interrupt(Arc::new(AtomicBool::new(false)))
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    pub fn trigger(&self) {
        self.0.store(true, Ordering::Relaxed)
    }
}
