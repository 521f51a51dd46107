//! Shards: a slice of a scenario's producers and consumers run on one host (`bench run
//! --shard I/N`), and what each shard says of itself in `shard.json` so that `bench merge` can
//! tell the shards of one run apart from foreign ones and bound the clocks' disagreement.
//!
//! Producer `p` runs in shard `p mod N + 1`, consumer `c` in shard `c mod N + 1`: worker ids are
//! the scenario's own, so histories of different shards never share a file name, and each
//! consumer reads the partitions it would read unsharded.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The most shards a run may be split into.
pub const MAX_SHARDS: u16 = 1024;

/// The file a shard's partial run folder is marked with.
pub const SHARD_FILE: &str = "shard.json";

/// The environment variable a shard's run id may be derived from (a Kubernetes Job's name).
pub const RUN_NAME_ENV: &str = "MQ_BENCH_RUN_NAME";

/// The environment variable that tells a sharded run's workers their shard (`I/N`).
pub const SHARD_ENV: &str = "MQ_BENCH_SHARD";

/// The end of a consumer's same-shard latency log's name, beside its history
/// (`consumer-0.same-shard.hlog`): messages whose producer ran in the consumer's shard.
pub const SAME_SHARD_LOG: &str = "same-shard.hlog";

/// Shard `index` of `of` (1-based): `--shard 2/3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u16,
    pub of: u16,
}

impl Shard {
    /// Whether worker `worker` (a producer or consumer id) runs in this shard.
    pub fn runs(&self, worker: u32) -> bool {
        worker % u32::from(self.of) == u32::from(self.index - 1)
    }

    /// How many of `workers` workers run in this shard.
    pub fn count(&self, workers: u32) -> u32 {
        (0..workers).filter(|&w| self.runs(w)).count() as u32
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.of)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let valid = format!("valid: I/N with 1 ≤ I ≤ N ≤ {MAX_SHARDS}, e.g. 2/3");
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("--shard {s:?}: not I/N; {valid}"))?;
        let num = |x: &str| x.trim().parse::<u16>().ok();
        match (num(i), num(n)) {
            (Some(i), Some(n)) if (1..=MAX_SHARDS).contains(&n) && (1..=n).contains(&i) => {
                Ok(Shard { index: i, of: n })
            }
            _ => Err(format!("--shard {s:?}: out of range; {valid}")),
        }
    }
}

/// The SHA-256 of a scenario's text, in hex: shards of one run ran the same scenario.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A run id every shard derives alike from the scenario's hash and a name they share (a
/// Kubernetes Job's name): the first 4 bytes of SHA-256(`sha256:name`), never 0.
pub fn derive_run_id(scenario_sha256: &str, name: &str) -> u32 {
    let d = Sha256::digest(format!("{scenario_sha256}:{name}").as_bytes());
    u32::from_le_bytes([d[0], d[1], d[2], d[3]]).max(1)
}

/// What a shard's `shard.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardInfo {
    pub run_id: u32,
    pub scenario_sha256: String,
    pub shard: u16,
    pub of: u16,
    pub host: String,
    /// The kernel's boot id: shards with the same one read one clock (one host).
    pub boot_id: String,
    pub clock: ClockInfo,
}

/// The shard's clock: which one the histories are stamped with, both clocks read at one
/// instant (so monotonic times can be converted), and the kernel's synchronisation figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockInfo {
    /// `realtime` for a sharded run.
    pub clock: String,
    pub realtime_ns: u64,
    pub monotonic_ns: u64,
    pub sync: ClockSync,
}

/// adjtimex(2) read-only: whether NTP (or PTP) disciplines the clock and its error figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockSync {
    /// The kernel says the clock is synchronised (state not TIME_ERROR, no STA_UNSYNC).
    pub synchronized: bool,
    /// Estimated error, µs (`esterror`).
    pub esterror_us: i64,
    /// Maximum error, µs (`maxerror`): the bound this shard's clock is off true time by.
    pub maxerror_us: i64,
    /// adjtimex's return value (clock state) and `status` bits, as read.
    pub state: i32,
    pub status: i32,
}

impl ClockSync {
    /// Reads the kernel's figures (adjtimex with no modes changes nothing).
    pub fn read() -> Result<ClockSync, String> {
        // SAFETY: an all-zero timex is valid input; modes = 0 asks only to read.
        let mut tx: libc::timex = unsafe { std::mem::zeroed() };
        // SAFETY: adjtimex fills the struct we own.
        let state = unsafe { libc::adjtimex(&mut tx) };
        if state < 0 {
            return Err(format!("adjtimex: {}", std::io::Error::last_os_error()));
        }
        Ok(ClockSync {
            synchronized: state != libc::TIME_ERROR && tx.status & libc::STA_UNSYNC == 0,
            esterror_us: tx.esterror,
            maxerror_us: tx.maxerror,
            state,
            status: tx.status,
        })
    }

    /// The bound on this clock's offset from true time, µs; None when unsynchronised.
    pub fn bound_us(&self) -> Option<i64> {
        self.synchronized.then_some(self.maxerror_us.max(0))
    }
}

impl ClockInfo {
    /// The clocks now. A kernel that will not say gives an unsynchronised reading.
    pub fn now(clock: &str) -> ClockInfo {
        let sync = ClockSync::read().unwrap_or(ClockSync {
            synchronized: false,
            esterror_us: -1,
            maxerror_us: -1,
            state: -1,
            status: 0,
        });
        ClockInfo {
            clock: clock.to_owned(),
            realtime_ns: crate::clock::read(libc::CLOCK_REALTIME),
            monotonic_ns: crate::clock::read(libc::CLOCK_MONOTONIC),
            sync,
        }
    }
}

/// The kernel's boot id (empty when unreadable).
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// The bound on how far two shards' clocks may disagree, µs: 0 when every shard ran on one
/// host (one boot: one clock), else the sum of the two largest per-shard bounds; None when
/// some shard's clock was not synchronised (no bound at all).
pub fn offset_bound_us(shards: &[ShardInfo]) -> Option<i64> {
    let first = shards.first()?;
    if !first.boot_id.is_empty() && shards.iter().all(|s| s.boot_id == first.boot_id) {
        return Some(0);
    }
    let mut bounds = shards
        .iter()
        .map(|s| s.clock.sync.bound_us())
        .collect::<Option<Vec<i64>>>()?;
    bounds.sort_unstable_by(|a, b| b.cmp(a));
    Some(bounds.iter().take(2).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_bad_ones_name_what_is_valid() {
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, of: 3 }));
        assert_eq!("1024/1024".parse::<Shard>().unwrap().of, 1024);
        for bad in ["0/3", "4/3", "1/0", "1/1025", "x", "1/", "/2", "-1/3"] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains("valid: I/N"), "{bad}: {e}");
        }
    }

    #[test]
    fn every_worker_runs_in_exactly_one_shard() {
        let shards: Vec<Shard> = (1..=3).map(|i| Shard { index: i, of: 3 }).collect();
        for w in 0..10 {
            assert_eq!(shards.iter().filter(|s| s.runs(w)).count(), 1, "worker {w}");
        }
        assert!(shards[0].runs(0) && shards[1].runs(4) && shards[2].runs(5));
        assert_eq!([4, 3, 3], [0, 1, 2].map(|i| shards[i].count(10)));
    }

    #[test]
    fn run_ids_are_shared_by_name_and_differ_across_names() {
        let h = sha256_hex(b"name = \"x\"");
        assert_eq!(h.len(), 64);
        assert_eq!(derive_run_id(&h, "job-a"), derive_run_id(&h, "job-a"));
        assert_ne!(derive_run_id(&h, "job-a"), derive_run_id(&h, "job-b"));
    }

    fn info(boot: &str, synced: bool, maxerror_us: i64) -> ShardInfo {
        ShardInfo {
            run_id: 1,
            scenario_sha256: "h".into(),
            shard: 1,
            of: 2,
            host: "h".into(),
            boot_id: boot.into(),
            clock: ClockInfo {
                clock: "realtime".into(),
                realtime_ns: 0,
                monotonic_ns: 0,
                sync: ClockSync {
                    synchronized: synced,
                    esterror_us: 0,
                    maxerror_us,
                    state: 0,
                    status: 0,
                },
            },
        }
    }

    #[test]
    fn the_offset_bound_is_zero_on_one_host_and_the_two_worst_across_hosts() {
        assert_eq!(
            offset_bound_us(&[info("a", false, 0), info("a", false, 0)]),
            Some(0)
        );
        let hosts = [
            info("a", true, 300),
            info("b", true, 900),
            info("c", true, 50),
        ];
        assert_eq!(offset_bound_us(&hosts), Some(1200));
        assert_eq!(
            offset_bound_us(&[info("a", true, 1), info("b", false, 1)]),
            None
        );
    }

    #[test]
    fn the_kernel_answers_adjtimex() {
        let s = ClockSync::read().unwrap();
        assert!(s.state >= 0);
    }
}
