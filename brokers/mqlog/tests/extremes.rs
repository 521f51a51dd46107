//! Extreme values from outside the engine (configuration, request offsets and sizes, waits,
//! batch headers off the wire) never panic and mean what they say: a retention of u64::MAX ms
//! keeps everything, an offset past the end is out of range, a wait of Duration::MAX waits.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use mqlog::storage::{
    decode_batches, encode_batch, encode_records, BatchHeader, FsyncPolicy, Log, LogConfig,
    StorageError,
};
use proptest::prelude::*;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The values arithmetic breaks on, and anything else.
fn extreme_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(u64::MAX),
        Just(u64::MAX - 1),
        Just(i64::MAX as u64),
        Just(u64::from(u32::MAX)),
        any::<u64>(),
    ]
}

fn extreme_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        extreme_u64().prop_map(Duration::from_millis),
        extreme_u64().prop_map(Duration::from_secs),
        Just(Duration::MAX),
        Just(Duration::ZERO),
    ]
}

/// A log with three closed segments and an active one in partition 0 of "t", written between
/// `t_lo` and `t_hi` (ms since the epoch).
struct Fixture {
    _dir: tempfile::TempDir,
    log: Log,
    t_lo: u64,
    t_hi: u64,
}

fn fixture(retention_age: Option<Duration>, retention_bytes: Option<u64>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_bytes: 1024,
        retention_age,
        retention_bytes,
        // Retention runs when the test says so, not from the housekeeper.
        retention_check_interval: Duration::from_secs(3600),
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), cfg).unwrap();
    log.create_topic("t", 1).unwrap();
    let t_lo = now_ms();
    // 332-byte batches: three per 1 KiB segment, so 10 batches make segments 0, 3, 6 and 9.
    for _ in 0..10 {
        log.append("t", 0, &[vec![1u8; 300]]).unwrap();
    }
    let t_hi = now_ms();
    assert_eq!(log.partition("t", 0).unwrap().segments().len(), 4);
    Fixture {
        _dir: dir,
        log,
        t_lo,
        t_hi,
    }
}

/// Closed segments whose newest record is older than `age` at `now`: all, none, or unknown
/// (`None`) when `now` falls inside the few ms the fixture took to write.
fn expected_age_deletions(f: &Fixture, age: Duration, now: u64) -> Option<usize> {
    let age = age.as_millis();
    if u128::from(f.t_hi) + age < u128::from(now) {
        Some(3)
    } else if u128::from(f.t_lo) + age >= u128::from(now) {
        Some(0)
    } else {
        None
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// Retention by age at any `now`, with any age: deletes exactly the closed segments older
    /// than the age, never the active one, and never because a sum wrapped.
    #[test]
    fn retention_age_extremes_delete_exactly_what_is_older(age in extreme_duration(), now in extreme_u64()) {
        let f = fixture(Some(age), None);
        let p = f.log.partition("t", 0).unwrap();
        let deleted = p.enforce_retention(now).unwrap();
        if let Some(want) = expected_age_deletions(&f, age, now) {
            prop_assert_eq!(deleted, want, "age {:?} now {}", age, now);
        }
        prop_assert!(!p.segments().is_empty());
        // Through the housekeeper's path (the real clock): only a tiny age can delete anything.
        let deleted_now = f.log.enforce_retention().unwrap();
        if age >= Duration::from_secs(3600) {
            prop_assert_eq!(deleted_now, 0);
        }
    }

    /// Retention by bytes with any limit: keeps the newest segments within the limit.
    #[test]
    fn retention_bytes_extremes(limit in extreme_u64()) {
        let f = fixture(None, Some(limit));
        let deleted = f.log.enforce_retention().unwrap();
        // Segments of 996, 996, 996 and 332 bytes; the active one always stays.
        let sizes = [996u64, 996, 996, 332];
        let mut total: u64 = sizes.iter().sum();
        let mut want = 0;
        while want < 3 && total > limit {
            total -= sizes[want];
            want += 1;
        }
        prop_assert_eq!(deleted, want);
    }

    /// Reads at any offset with any size: data, an empty end-of-log answer, or out of range with
    /// the exact bounds.
    #[test]
    fn read_extremes(offset in extreme_u64(), max_bytes in extreme_u64()) {
        let f = fixture(None, None);
        match f.log.read("t", 0, offset, max_bytes) {
            Ok(r) => {
                prop_assert!(offset <= 10);
                prop_assert_eq!(r.end_offset, 10);
                prop_assert_eq!(r.data.is_empty(), offset == 10);
                if offset < 10 {
                    let recs = decode_batches(&r.data, offset).unwrap();
                    prop_assert_eq!(recs[0].offset, offset);
                }
            }
            Err(StorageError::OffsetOutOfRange { offset: o, start, end, .. }) => {
                prop_assert!(offset > 10);
                prop_assert_eq!((o, start, end), (offset, 0, 10));
            }
            Err(e) => prop_assert!(false, "unexpected error {}", e),
        }
    }

    /// Durable appends with any wait bound: a long one succeeds, a zero one succeeds or says it
    /// timed out; none panics computing a deadline.
    #[test]
    fn durable_append_with_any_timeout(timeout in extreme_duration()) {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        log.create_topic("t", 1).unwrap();
        match log.append_sync("t", 0, &[b"x"], true, timeout) {
            Ok(out) => prop_assert_eq!(out.base_offset, 0),
            Err(StorageError::SyncTimeout(t)) => prop_assert!(timeout < Duration::from_secs(10), "{:?}", t),
            Err(e) => prop_assert!(false, "unexpected error {}", e),
        }
    }

    /// A batch whose offsets would run past u64::MAX is refused as implausible, and decoding
    /// from any offset never overflows.
    #[test]
    fn batch_offsets_near_u64_max(base in extreme_u64(), count in 1u32..4, min_offset in extreme_u64()) {
        let records: Vec<Vec<u8>> = (0..count).map(|i| vec![i as u8; 3]).collect();
        let mut framed = Vec::new();
        encode_records(&mut framed, &records);
        let mut batch = Vec::new();
        encode_batch(&mut batch, base, 7, count, &framed);
        let fits = base.checked_add(u64::from(count)).is_some();
        prop_assert_eq!(BatchHeader::parse(&batch).is_some(), fits);
        match decode_batches(&Bytes::from(batch), min_offset) {
            Ok(recs) => {
                prop_assert!(fits);
                let want = (0..u64::from(count)).filter(|i| base + i >= min_offset).count();
                prop_assert_eq!(recs.len(), want);
            }
            Err(_) => prop_assert!(!fits),
        }
    }
}

/// The reproduction: `--retention-ms 18446744073709551615` must keep closed segments.
#[test]
fn retention_of_u64_max_ms_keeps_every_segment() {
    let f = fixture(Some(Duration::from_millis(u64::MAX)), None);
    assert_eq!(f.log.enforce_retention().unwrap(), 0);
    assert_eq!(f.log.partition("t", 0).unwrap().segments().len(), 4);
    assert_eq!(f.log.start_offsets("t").unwrap(), vec![0]);
}

/// An interval of u64::MAX ms parses, displays, and a log runs with it (the housekeeper's
/// tick is bounded by the retention check interval).
#[test]
fn fsync_interval_of_u64_max_ms_runs() {
    let policy: FsyncPolicy = format!("interval:{}", u64::MAX).parse().unwrap();
    assert_eq!(policy.to_string(), format!("interval:{}", u64::MAX));
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        fsync: policy,
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), cfg).unwrap();
    log.create_topic("t", 1).unwrap();
    log.append_sync("t", 0, &[b"x"], true, Duration::from_secs(10))
        .unwrap();
    log.close().unwrap();
}
