//! Offsets outside a partition, through the `mqlog-server` binary: a fetch below the log start
//! (retention removed it) or past the end, and a commit past the end, are refused with a typed
//! out-of-range error carrying the partition's start and end; the connection stays usable.
//! Retention ignores committed offsets (as Kafka's does), so a commit below the start is kept.

mod common;

use std::time::{Duration, Instant};

use common::ServerGuard;
use mqlog::client::{Ack, Client, ClientError};

const T: Duration = Duration::from_secs(10);

/// The start and end an out-of-range error carries; panics on any other result.
#[track_caller]
fn out_of_range<V: std::fmt::Debug>(r: Result<V, ClientError>) -> (u64, u64) {
    match r {
        Err(ClientError::OutOfRange { start, end, .. }) => (start, end),
        other => panic!("expected an out-of-range error, got {other:?}"),
    }
}

#[test]
fn offsets_outside_the_log_are_typed_out_of_range_errors() {
    let dir = tempfile::tempdir().unwrap();
    // 1 KiB segments, 2 KiB kept: retention soon drops the oldest segments.
    let server = ServerGuard::start(
        dir.path(),
        &["--segment-bytes", "1024", "--retention-bytes", "2048"],
    );
    let mut c = Client::connect(server.addr, T).unwrap();
    c.create_topic("t", 1).unwrap();
    for i in 0..60u32 {
        let base = c
            .produce("t", 0, &[vec![i as u8; 100]], Ack::Written)
            .unwrap();
        assert_eq!(base, u64::from(i));
    }
    c.commit("g", "t", 0, 3).unwrap();

    // Retention runs every second: wait for it to move the start.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (start, end) = loop {
        match c.fetch("t", 0, 0, 1 << 20, Duration::ZERO) {
            Ok(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            r => break out_of_range(r),
        }
    };
    assert!(start > 3 && start < 60, "start {start}");
    assert_eq!(end, 60);

    // Past the end, as a fetch or a commit (u64::MAX used to be accepted as a commit).
    assert_eq!(
        out_of_range(c.fetch("t", 0, 61, 1024, Duration::ZERO)),
        (start, 60)
    );
    assert_eq!(out_of_range(c.commit("g", "t", 0, u64::MAX)), (start, 60));
    assert_eq!(out_of_range(c.commit("g", "t", 0, 61)), (start, 60));
    // The committed offset did not move; it is below the start now, and stays there.
    assert_eq!(c.committed("g", "t", 0).unwrap(), Some(3));

    // The connection is still good: read from the start, commit the end.
    let f = c.fetch("t", 0, start, 1 << 20, Duration::ZERO).unwrap();
    assert_eq!(f.records.first().map(|r| r.offset), Some(start));
    assert_eq!(&f.records[0].value[..], &[start as u8; 100][..]);
    assert_eq!((f.start_offset, f.end_offset), (start, 60));
    c.commit("g", "t", 0, 60).unwrap();
    assert_eq!(c.committed("g", "t", 0).unwrap(), Some(60));
    // At the end exactly is not out of range: an empty fetch (a long poll).
    assert!(c
        .fetch("t", 0, 60, 1024, Duration::ZERO)
        .unwrap()
        .records
        .is_empty());
}
