//! One reading of one process from /proc (through the `procfs` crate): its CPU time, resident
//! memory and storage I/O, and its start time, which tells a process from a later one that
//! got the same pid.

use std::sync::OnceLock;

/// What /proc/<pid>/stat and /proc/<pid>/io said at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reading {
    /// Monotonic ns ([`mq_core::clock::now_ns`]).
    pub at_ns: u64,
    /// utime + stime of the whole process (every thread), clock ticks.
    pub cpu_ticks: u64,
    pub rss_bytes: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
    /// Clock ticks after boot the process started at: with the pid, its identity.
    pub started: u64,
}

/// Clock ticks per second and the page size, read once.
fn units() -> (u64, u64) {
    static UNITS: OnceLock<(u64, u64)> = OnceLock::new();
    *UNITS.get_or_init(|| (procfs::ticks_per_second().max(1), procfs::page_size()))
}

/// Clock ticks per second (`_SC_CLK_TCK`).
pub fn ticks_per_s() -> f64 {
    units().0 as f64
}

/// Seconds of `ticks` clock ticks.
pub fn ticks_to_s(ticks: u64) -> f64 {
    ticks as f64 / ticks_per_s()
}

/// Reads `pid` now; None when it is gone (or not readable). A zombie (exited, not yet
/// reaped) still reads, with its final CPU and I/O figures and no memory.
pub fn read(pid: u32) -> Option<Reading> {
    let p = procfs::process::Process::new(i32::try_from(pid).ok()?).ok()?;
    let stat = p.stat().ok()?;
    let at_ns = mq_core::clock::now_ns();
    // /proc/<pid>/io is missing on kernels without task I/O accounting: CPU and memory stand.
    let io = p.io().ok();
    Some(Reading {
        at_ns,
        cpu_ticks: stat.utime + stat.stime,
        rss_bytes: stat.rss.saturating_mul(units().1),
        read_bytes: io.as_ref().map_or(0, |io| io.read_bytes),
        write_bytes: io.as_ref().map_or(0, |io| io.write_bytes),
        started: stat.starttime,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_process_reads_and_a_missing_pid_does_not() {
        let me = read(std::process::id()).expect("this process reads");
        assert!(me.rss_bytes > 0);
        assert!(me.started > 0);
        // pid_max is at most 2^22: this pid cannot exist.
        assert_eq!(read(u32::MAX / 2), None);
    }
}
