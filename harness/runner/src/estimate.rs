//! How much disk a run's histories will take, estimated before it starts, and how much the run
//! folder's disk has free: `bench run` refuses a run whose estimate exceeds it.
//!
//! Full histories take 96 bytes per message (send, ack, one delivery); interval histories a
//! few runs per stream and second; every worker's latency log about [`HLOG_BYTES_PER_S`] a
//! second. A run "as fast as possible" is assumed to go at [`FASTEST_RATE`]. Anomalies (each a
//! 32-byte record in either mode) are not foreseen.

use std::path::Path;

use mq_core::history::{HistoryMode, RECORD_LEN};
use mq_core::plan::{VariantPlan, Workload};

/// Messages per second assumed for `rate = 0` (above what any backend reaches here).
pub const FASTEST_RATE: u64 = 1_000_000;
/// Bytes a latency log takes per worker and second (one deflated interval: 8 to 12 KB
/// measured at 850k msgs/s on SysV, latencies from µs to ms).
pub const HLOG_BYTES_PER_S: u64 = 16 * 1024;

/// The estimated history bytes of one variant.
pub fn variant_bytes(w: &Workload) -> u64 {
    let rate = if w.rate > 0 { w.rate } else { FASTEST_RATE };
    let (messages, secs) = match (w.messages, w.duration) {
        (Some(m), _) => (m, m.div_ceil(rate)),
        (None, Some(d)) => {
            let secs = d.0.as_secs().max(1);
            (secs.saturating_mul(rate), secs)
        }
        (None, None) => (0, 0),
    };
    let secs = secs + 1; // a partial second at each end
    let (p, k, c) = (
        u64::from(w.producers),
        u64::from(w.keys()),
        u64::from(w.consumers),
    );
    let workers = p + c;
    let hlog = workers * secs * HLOG_BYTES_PER_S;
    let record = RECORD_LEN as u64;
    let histories = match w.history {
        HistoryMode::Full => messages.saturating_mul(3 * record),
        // A sent run per producer and an acked run per (producer, key) each second; a
        // delivered run per (producer, key) each second, spread over the consumers.
        HistoryMode::Intervals => secs * record * (p * (1 + k) + p * k.max(c)),
        HistoryMode::Off => 0,
    };
    histories.saturating_add(hlog)
}

/// The estimate for a run of `variants`: every variant's histories stay, unless
/// `keep_history = false` deletes them after each check (then the largest one counts).
pub fn run_bytes<'a>(variants: impl Iterator<Item = &'a VariantPlan>) -> u64 {
    let (mut kept, mut largest) = (0u64, 0u64);
    for v in variants {
        let b = variant_bytes(&v.workload);
        if v.workload.keep_history {
            kept = kept.saturating_add(b);
        } else {
            largest = largest.max(b);
        }
    }
    kept.saturating_add(largest)
}

/// Free bytes (for an unprivileged user) on the disk holding `path`, or its nearest existing
/// ancestor; None when that cannot be told.
pub fn free_bytes(path: &Path) -> Option<u64> {
    let mut at = path;
    let at = loop {
        // A relative path's last ancestor is "": the current folder.
        let probe = if at.as_os_str().is_empty() {
            Path::new(".")
        } else {
            at
        };
        if probe.exists() {
            break probe;
        }
        at = at.parent()?;
    };
    let c = std::ffi::CString::new(at.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statvfs writes into the zeroed struct we own; the path is NUL-terminated.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut s) };
    (rc == 0).then(|| (s.f_bavail as u64).saturating_mul(s.f_frsize as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(json: &str) -> Workload {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn full_is_96_bytes_a_message_and_intervals_grow_with_time_not_messages() {
        let full = workload(r#"{"messages": 1000000, "rate": 100000, "history": "full"}"#);
        // 96 MB of records, 11 s × 2 workers of latency log.
        assert_eq!(variant_bytes(&full), 96_000_000 + 11 * 2 * HLOG_BYTES_PER_S);
        let intervals = workload(r#"{"messages": 1000000, "rate": 100000}"#);
        assert_eq!(
            variant_bytes(&intervals),
            11 * 32 * 3 + 11 * 2 * HLOG_BYTES_PER_S
        );
        let hour = workload(r#"{"duration": "1h", "rate": 1000000, "history": "full"}"#);
        assert_eq!(
            variant_bytes(&hour),
            3600 * 1_000_000 * 96 + 3601 * 2 * HLOG_BYTES_PER_S
        );
    }

    #[test]
    fn free_bytes_looks_at_the_nearest_existing_folder() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(&dir.path().join("not/yet/there")).unwrap();
        assert!(free > 0);
        assert!(free_bytes(Path::new("relative/not/there")).is_some());
    }
}
