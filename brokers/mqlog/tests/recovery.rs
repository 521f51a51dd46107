//! Recovery property: write batches, damage the last segment (cut it, or flip a byte) at a
//! random point, reopen. Every batch before the damage is intact, nothing after it is served,
//! appends continue at the next offset, and the index is rebuilt when it is missing or garbage.

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use mqlog::storage::{decode_batches, BatchHeader, Log, LogConfig, BATCH_HEADER_LEN};
use proptest::prelude::*;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 512,
        ..LogConfig::default()
    }
}

/// Every record of partition 0 of "t", in order.
fn read_all(log: &Log) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = log.start_offsets("t").unwrap()[0];
    loop {
        let r = log.read("t", 0, offset, 3000).unwrap();
        if r.data.is_empty() {
            return out;
        }
        for rec in decode_batches(&r.data, offset).unwrap() {
            assert_eq!(rec.offset, offset);
            offset += 1;
            out.push((rec.offset, rec.value.to_vec()));
        }
    }
}

fn last_segment(dir: &Path) -> PathBuf {
    let pdir = dir.join("topics/t/0");
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&pdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.pop().unwrap()
}

/// (base offset, start, end) of each batch in a segment file.
fn batch_layout(path: &Path) -> Vec<(u64, u64, u64)> {
    let bytes = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let h = BatchHeader::parse(&bytes[pos..]).unwrap();
        out.push((h.base_offset, pos as u64, pos as u64 + h.total_len()));
        pos += h.total_len() as usize;
    }
    out
}

fn len_after_damage(len: u64, pos: u64, damage: Damage) -> u64 {
    match damage {
        Damage::Cut | Damage::CutAndLoseIndex => pos,
        Damage::Flip | Damage::FlipAndGarbleIndex => len,
    }
}

#[derive(Debug, Clone, Copy)]
enum Damage {
    Cut,
    Flip,
    CutAndLoseIndex,
    FlipAndGarbleIndex,
}

fn run_case(batches: Vec<Vec<Vec<u8>>>, damage: Damage, at: f64) {
    let dir = tempfile::tempdir().unwrap();
    let mut written = Vec::new();
    {
        let log = Log::open(dir.path(), config()).unwrap();
        log.create_topic("t", 1).unwrap();
        for b in &batches {
            let out = log.append("t", 0, b).unwrap();
            for (i, r) in b.iter().enumerate() {
                written.push((out.base_offset + i as u64, r.clone()));
            }
        }
        drop(log);
    }
    let seg = last_segment(dir.path());
    let layout = batch_layout(&seg);
    let len = std::fs::metadata(&seg).unwrap().len();
    assert!(len > 0, "the last segment holds the last batch");
    let pos = ((len as f64 * at) as u64).min(len - 1);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&seg)
        .unwrap();
    match damage {
        Damage::Cut | Damage::CutAndLoseIndex => f.set_len(pos).unwrap(),
        Damage::Flip | Damage::FlipAndGarbleIndex => {
            let mut b = [0u8; 1];
            f.read_exact_at(&mut b, pos).unwrap();
            f.write_all_at(&[b[0] ^ 0xA5], pos).unwrap();
        }
    }
    let index = seg.with_extension("index");
    match damage {
        // The last segment's index is kept in memory, so there is usually no file to lose;
        // a garbage one (left by anything) must still be ignored.
        Damage::CutAndLoseIndex => {
            let _ = std::fs::remove_file(&index);
        }
        Damage::FlipAndGarbleIndex => {
            std::fs::write(&index, b"\xff\xff\xff\xff\0\0\0\x07xyz").unwrap()
        }
        _ => {}
    }
    // The batch holding the damaged byte (or starting at the cut) and all after it are gone.
    let (first_lost, kept_bytes) = layout
        .iter()
        .find(|(_, start, end)| pos < *end && (pos >= *start))
        .map(|(base, start, _)| (*base, *start))
        .expect("damage inside a batch");
    let expected: Vec<_> = written
        .iter()
        .filter(|(o, _)| *o < first_lost)
        .cloned()
        .collect();

    let log = Log::open(dir.path(), config()).unwrap();
    let report = log.recovery_report();
    let clean_cut = matches!(damage, Damage::Cut | Damage::CutAndLoseIndex) && pos == kept_bytes;
    if clean_cut {
        // A cut on a batch boundary leaves nothing torn to report.
        assert!(report.is_empty(), "{report:?}");
    } else {
        assert_eq!(report.len(), 1, "{report:?}");
        assert_eq!(report[0].position, kept_bytes);
        assert_eq!(
            report[0].dropped_bytes,
            len_after_damage(len, pos, damage) - kept_bytes
        );
    }
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), kept_bytes);
    assert_eq!(read_all(&log), expected);
    assert_eq!(log.end_offsets("t").unwrap(), vec![first_lost]);
    // Reads at every surviving offset work through the rebuilt index.
    for (o, v) in expected.iter().rev().take(5) {
        let r = log.read("t", 0, *o, 1).unwrap();
        let recs = decode_batches(&r.data, *o).unwrap();
        assert_eq!(&recs[0].value[..], &v[..]);
    }
    let out = log.append("t", 0, &[b"next"]).unwrap();
    assert_eq!(out.base_offset, first_lost);
    drop(log);

    // A second reopen finds nothing to repair and serves the new record too.
    let log = Log::open(dir.path(), config()).unwrap();
    assert!(
        log.recovery_report().is_empty(),
        "{:?}",
        log.recovery_report()
    );
    let all = read_all(&log);
    assert_eq!(all.len(), expected.len() + 1);
    assert_eq!(all.last().unwrap(), &(first_lost, b"next".to_vec()));
}

fn batches() -> impl Strategy<Value = Vec<Vec<Vec<u8>>>> {
    prop::collection::vec(
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..8),
        1..40,
    )
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        Just(Damage::Cut),
        Just(Damage::Flip),
        Just(Damage::CutAndLoseIndex),
        Just(Damage::FlipAndGarbleIndex),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn damage_to_the_last_segment_loses_only_what_follows_it(
        batches in batches(),
        damage in damage(),
        at in 0.0f64..1.0,
    ) {
        run_case(batches, damage, at);
    }
}

/// Every cut point of one small log, exhaustively: the property at each byte.
#[test]
fn every_cut_point_of_a_small_segment() {
    let mut rng = common::Rng::new(7);
    let batches: Vec<Vec<Vec<u8>>> = (0..6)
        .map(|_| {
            (0..3)
                .map(|_| {
                    let n = rng.below(20) as usize;
                    rng.bytes(n)
                })
                .collect()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), config()).unwrap();
        log.create_topic("t", 1).unwrap();
        for b in &batches {
            log.append("t", 0, b).unwrap();
        }
        drop(log);
    }
    let len = std::fs::metadata(last_segment(dir.path())).unwrap().len();
    for pos in 0..len {
        let at = (pos as f64 + 0.5) / len as f64;
        run_case(batches.clone(), Damage::Cut, at);
        run_case(batches.clone(), Damage::Flip, at);
    }
    assert!(len > BATCH_HEADER_LEN as u64 * 6);
}

/// Closed segments keep a missing index recoverable too, and reads use it.
#[test]
fn missing_index_of_a_closed_segment_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let records: Vec<Vec<u8>> = (0..200u32).map(|i| i.to_be_bytes().repeat(25)).collect();
    {
        let log = Log::open(dir.path(), config()).unwrap();
        log.create_topic("t", 1).unwrap();
        for r in &records {
            log.append("t", 0, &[r]).unwrap();
        }
        assert!(log.partition("t", 0).unwrap().segments().len() > 3);
        drop(log);
    }
    let first = dir.path().join("topics/t/0/00000000000000000000.index");
    std::fs::remove_file(&first).unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    assert!(first.exists());
    assert!(log.recovery_report().is_empty());
    let all = read_all(&log);
    assert_eq!(all.len(), 200);
    for (o, v) in &all {
        assert_eq!(v, &records[*o as usize]);
    }
    let r = log.read("t", 0, 17, 1).unwrap();
    let recs = decode_batches(&Bytes::clone(&r.data), 17).unwrap();
    assert_eq!(recs[0].value, Bytes::from(records[17].clone()));
}

/// A flipped byte inside a closed segment whose index still looks right: open trusts the
/// segment (it is not rescanned), so the read itself must check the CRC and refuse to serve
/// the damaged batch; the engine says where, and the server answers with `Corrupt`.
#[test]
fn corrupt_batch_in_a_closed_segment_is_an_error_not_data() {
    use mqlog::client::{Client, ClientError, ErrorCode};
    use mqlog::storage::StorageError;
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let cfg = || LogConfig {
        segment_bytes: 1024,
        ..LogConfig::default()
    };
    {
        let log = Log::open(dir.path(), cfg()).unwrap();
        log.create_topic("t", 1).unwrap();
        // 332-byte batches, three per segment: segments 0, 3, 6, 9.
        for i in 0..10u8 {
            log.append("t", 0, &[vec![i; 300]]).unwrap();
        }
        log.close().unwrap();
    }
    let seg = dir.path().join("topics/t/0/00000000000000000000.log");
    // A payload byte of the batch at offset 1 (bytes 332..664).
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&seg)
        .unwrap();
    f.write_all_at(&[0xEE], 332 + 28 + 4 + 10).unwrap();
    drop(f);

    let log = Log::open(dir.path(), cfg()).unwrap();
    assert!(log.recovery_report().is_empty());
    match log.read("t", 0, 1, 1 << 20) {
        Err(StorageError::Corrupt { path, position, .. }) => {
            assert_eq!((path, position), (seg.clone(), 332));
        }
        other => panic!("corrupt batch served: {other:?}"),
    }
    // From offset 0: the good batch before the damage, and nothing after it.
    let r = log.read("t", 0, 0, 1 << 20).unwrap();
    assert_eq!(r.data.len(), 332);
    let recs = decode_batches(&r.data, 0).unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(&recs[0].value[..], &[0u8; 300][..]);
    // The other segments are untouched.
    let r = log.read("t", 0, 3, 1 << 20).unwrap();
    assert_eq!(decode_batches(&r.data, 3).unwrap()[0].offset, 3);
    drop(log);

    let server = common::ServerGuard::start(dir.path(), &["--segment-bytes", "1024"]);
    let mut c = Client::connect(server.addr, Duration::from_secs(10)).unwrap();
    let err = c
        .fetch("t", 0, 1, 1 << 20, Duration::ZERO)
        .expect_err("corrupt batch fetched");
    assert!(
        matches!(
            err,
            ClientError::Server {
                code: ErrorCode::Corrupt,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        c.fetch("t", 0, 0, 1 << 20, Duration::ZERO)
            .unwrap()
            .records
            .len(),
        1
    );
}
