//! One clock for every process of a run: CLOCK_MONOTONIC in nanoseconds, or CLOCK_REALTIME
//! for a sharded run (`bench run --shard`), whose shards run on several hosts.
//!
//! Workers of one run on one host share the kernel's monotonic clock; it never jumps with NTP,
//! which wall-clock time can. Monotonic clocks of two hosts share nothing, so a sharded run
//! stamps everything (envelopes, histories, latency logs, `start_ns`) with CLOCK_REALTIME,
//! which NTP keeps within the error bound the shard records (`shard.json`). The choice is made
//! once per process, before any time is taken: [`use_realtime`], or [`ENV`] in a worker's
//! environment ([`init_from_env`]).

use std::sync::atomic::{AtomicBool, Ordering};

/// The environment variable that carries the clock to worker processes: `realtime` or
/// `monotonic` (the default).
pub const ENV: &str = "MQ_BENCH_CLOCK";

static REALTIME: AtomicBool = AtomicBool::new(false);

/// Stamps with CLOCK_REALTIME from now on, in this process and (through [`ENV`]) its children.
pub fn use_realtime() {
    REALTIME.store(true, Ordering::Relaxed);
    std::env::set_var(ENV, "realtime");
}

/// Reads [`ENV`]; an unknown value is an error naming it and what is valid.
pub fn init_from_env() -> Result<(), String> {
    match std::env::var(ENV).as_deref() {
        Ok("realtime") => {
            REALTIME.store(true, Ordering::Relaxed);
            Ok(())
        }
        Ok("monotonic") | Err(std::env::VarError::NotPresent) => Ok(()),
        Ok(other) => Err(format!(
            "{ENV}={other:?}: unknown clock; valid: realtime, monotonic"
        )),
        Err(e) => Err(format!("{ENV}: {e}")),
    }
}

/// The clock [`now_ns`] reads: `"realtime"` or `"monotonic"`.
pub fn name() -> &'static str {
    match REALTIME.load(Ordering::Relaxed) {
        true => "realtime",
        false => "monotonic",
    }
}

/// Nanoseconds on `clock` (a `CLOCK_*` id).
pub fn read(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; both clocks used exist on Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Nanoseconds on the run's clock: the host's monotonic clock, or the real-time clock in a
/// sharded run.
#[inline]
pub fn now_ns() -> u64 {
    match REALTIME.load(Ordering::Relaxed) {
        true => read(libc::CLOCK_REALTIME),
        false => read(libc::CLOCK_MONOTONIC),
    }
}

/// Sleeps until the monotonic clock reads `deadline_ns`; spins for the last stretch so fixed
/// rates stay accurate well above the scheduler's sleep granularity.
pub fn sleep_until(deadline_ns: u64) {
    const SPIN_NS: u64 = 60_000;
    loop {
        let now = now_ns();
        if now >= deadline_ns {
            return;
        }
        let left = deadline_ns - now;
        if left > SPIN_NS {
            std::thread::sleep(std::time::Duration::from_nanos(left - SPIN_NS));
        } else {
            std::hint::spin_loop();
        }
    }
}
