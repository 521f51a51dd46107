//! One clock for every process of a run: CLOCK_MONOTONIC in nanoseconds.
//!
//! Workers are separate processes on one host, so the kernel's monotonic clock is shared by all
//! of them; it never jumps with NTP, which wall-clock time can.

/// Nanoseconds on the host's monotonic clock.
#[inline]
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
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
