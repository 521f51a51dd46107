//! Tests of [`super::Log`]: segments, retention, group commit, topic creation, offsets.

use super::*;
use crate::storage::{decode_batches, segment_paths};

fn config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

/// A log opened with `cfg` in a fresh temporary directory, with one single-partition topic `t`.
fn open_with_topic_t(cfg: LogConfig) -> (tempfile::TempDir, Log) {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), cfg).unwrap();
    log.create_topic("t", 1).unwrap();
    (dir, log)
}

fn read_all(log: &Log, topic: &str, p: u32) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = log.start_offsets(topic).unwrap()[p as usize];
    loop {
        let r = log.read(topic, p, offset, 1000).unwrap();
        if r.data.is_empty() {
            return out;
        }
        for rec in decode_batches(&r.data, offset).unwrap() {
            assert_eq!(rec.offset, offset, "records are consecutive");
            offset = rec.offset + 1;
            out.push((rec.offset, rec.value.to_vec()));
        }
    }
}

#[test]
fn segments_roll_at_the_size_limit_and_reads_cross_them() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config(1024)).unwrap();
    assert!(log.create_topic("t", 2).unwrap());
    assert!(!log.create_topic("t", 2).unwrap());
    assert!(matches!(
        log.create_topic("t", 3),
        Err(StorageError::TopicExists { .. })
    ));
    // Each batch: 28 header + 2 * (4 + 100) = 236 bytes; 4 fit in 1024, the 5th rolls.
    let rec = vec![7u8; 100];
    for i in 0..10u64 {
        let out = log.append("t", 0, &[&rec[..], &rec[..]]).unwrap();
        assert_eq!(out.base_offset, 2 * i);
        assert_eq!(out.next_offset, 2 * i + 2);
    }
    let p = log.partition("t", 0).unwrap();
    let segs = p.segments();
    assert_eq!(segs, vec![(0, 944), (8, 944), (16, 472)]);
    // Closed segments have their index written; the active one's lives in memory until
    // it closes.
    for (base, index) in [(0u64, true), (8, true), (16, false)] {
        let (l, i) = segment_paths(p.dir(), base);
        assert!(l.exists(), "{}", l.display());
        assert_eq!(i.exists(), index, "{}", i.display());
    }
    let all = read_all(&log, "t", 0);
    assert_eq!(all.len(), 20);
    assert!(all
        .iter()
        .enumerate()
        .all(|(i, (o, v))| *o == i as u64 && *v == rec));
    // Reading from the middle of a batch returns that whole batch; decode filters.
    let r = log.read("t", 0, 9, 1).unwrap();
    let recs = decode_batches(&r.data, 9).unwrap();
    assert_eq!(recs.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![9]);
    assert_eq!(log.end_offsets("t").unwrap(), vec![20, 0]);
    assert!(matches!(
        log.read("t", 0, 21, 10),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert!(log.read("t", 0, 20, 10).unwrap().data.is_empty());
    assert!(matches!(
        log.read("t", 2, 0, 10),
        Err(StorageError::UnknownPartition { .. })
    ));
    log.close().unwrap();
    // Reopen: the same segments, and appends continue.
    let log = Log::open(dir.path(), config(1024)).unwrap();
    assert!(log.recovery_report().is_empty());
    assert_eq!(log.partition("t", 0).unwrap().segments(), segs);
    assert_eq!(log.append("t", 0, &[b"x"]).unwrap().base_offset, 20);
}

#[test]
fn retention_by_bytes_keeps_the_newest_segments() {
    let cfg = LogConfig {
        retention_bytes: Some(2000),
        retention_check_interval: Duration::from_secs(3600),
        ..config(1024)
    };
    let (_dir, log) = open_with_topic_t(cfg);
    let rec = [1u8; 100];
    for _ in 0..10 {
        log.append("t", 0, &[&rec[..], &rec[..]]).unwrap();
    }
    // 944 + 944 + 472 = 2360 > 2000: the oldest segment goes, 1416 remain.
    assert_eq!(log.enforce_retention().unwrap(), 1);
    assert_eq!(log.enforce_retention().unwrap(), 0);
    let p = log.partition("t", 0).unwrap();
    assert_eq!(p.segments(), vec![(8, 944), (16, 472)]);
    assert_eq!(log.start_offsets("t").unwrap(), vec![8]);
    assert!(!segment_paths(p.dir(), 0).0.exists());
    assert!(matches!(
        log.read("t", 0, 7, 10),
        Err(StorageError::OffsetOutOfRange { start: 8, .. })
    ));
    assert_eq!(read_all(&log, "t", 0).len(), 12);
}

#[test]
fn retention_by_age_never_deletes_the_active_segment() {
    let cfg = LogConfig {
        retention_age: Some(Duration::from_millis(1)),
        retention_check_interval: Duration::from_secs(3600),
        ..config(1024)
    };
    let (_dir, log) = open_with_topic_t(cfg);
    let rec = vec![1u8; 300];
    for _ in 0..5 {
        log.append("t", 0, &[&rec[..]]).unwrap();
    }
    std::thread::sleep(Duration::from_millis(20));
    // Three 332-byte batches fit in 1024: segments [0..3), [3..5).
    assert_eq!(log.enforce_retention().unwrap(), 1);
    assert_eq!(log.partition("t", 0).unwrap().segments(), vec![(3, 664)]);
    assert_eq!(log.append("t", 0, &[b"z"]).unwrap().base_offset, 5);
}

#[test]
fn housekeeper_applies_retention_by_itself() {
    let cfg = LogConfig {
        retention_bytes: Some(1),
        retention_check_interval: Duration::from_millis(10),
        ..config(1024)
    };
    let (_dir, log) = open_with_topic_t(cfg);
    for _ in 0..5 {
        log.append("t", 0, &[vec![0u8; 300]]).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while log.start_offsets("t").unwrap()[0] != 3 {
        assert!(Instant::now() < deadline, "retention never ran");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn group_commit_under_always_shares_fsyncs_between_writers() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        fsync: FsyncPolicy::Always,
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), cfg).unwrap();
    log.create_topic("t", 1).unwrap();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    let rec = format!("{w}-{i}");
                    log.append_sync("t", 0, &[rec.as_bytes()], false, Duration::from_secs(10))
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let stats = log.commit_stats();
    assert_eq!(stats.writes, 200);
    assert!(stats.rounds < 200, "no write shared an fsync: {stats:?}");
    assert_eq!(log.end_offsets("t").unwrap(), vec![200]);
}

#[test]
fn durable_append_under_never_forces_an_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.create_topic("t", 1).unwrap();
    let out = log.append("t", 0, &[b"a"]).unwrap();
    assert_eq!(out.ticket, None);
    log.append_sync("t", 0, &[b"b"], true, Duration::from_secs(10))
        .unwrap();
    assert_eq!(log.commit_stats().rounds, 1);
}

#[test]
fn interval_policy_fsyncs_without_being_asked() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        fsync: FsyncPolicy::Interval(Duration::from_millis(5)),
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), cfg).unwrap();
    log.create_topic("t", 1).unwrap();
    let out = log.append("t", 0, &[b"a"]).unwrap();
    log.wait_durable(out.ticket.unwrap(), Duration::from_secs(10))
        .unwrap();
    assert!(log.commit_stats().rounds >= 1);
}

/// Whichever file-system call of a topic creation fails, nothing is left behind, the topic
/// is unknown, and a retry creates it.
#[test]
fn topic_creation_is_all_or_nothing_whichever_call_fails() {
    use crate::storage::sim;
    let dir = tempfile::tempdir().unwrap();
    let topics = dir.path().join("topics");
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let mut k = 0u64;
    loop {
        let name = format!("t{k}");
        sim::fail_nth_call(Some(k));
        let result = log.create_topic(&name, 3);
        let fired = sim::failure_fired();
        sim::fail_nth_call(None);
        if !fired {
            assert!(result.unwrap());
            break;
        }
        let err = result.expect_err("an injected failure is reported");
        assert!(err.to_string().contains("injected failure"), "{err}");
        assert!(!topics.join(&name).exists(), "call {k} left the topic");
        assert!(
            !topics.join(format!(".tmp-{name}")).exists(),
            "call {k} left the temp folder"
        );
        assert!(matches!(
            log.topic(&name),
            Err(StorageError::UnknownTopic(_))
        ));
        assert!(log.create_topic(&name, 3).unwrap(), "retry after call {k}");
        log.append_sync(&name, 2, &[b"x"], true, Duration::from_secs(10))
            .unwrap();
        k += 1;
    }
    // Remove a leftover temp folder, create it, 3 × (partition folder, first segment),
    // fsync it, rename it, fsync topics/: 11 calls, each failed once.
    assert_eq!(k, 11);
    drop(log);
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let mut want: Vec<String> = (0..=k).map(|i| format!("t{i}")).collect();
    want.sort();
    assert_eq!(log.topic_names(), want);
    for i in 0..k {
        assert_eq!(log.end_offsets(&format!("t{i}")).unwrap(), vec![0, 0, 1]);
    }
    assert_eq!(log.end_offsets(&format!("t{k}")).unwrap(), vec![0, 0, 0]);
}

#[test]
fn leftover_temp_folder_of_a_crashed_creation_is_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    Log::open(dir.path(), LogConfig::default())
        .unwrap()
        .create_topic("a", 1)
        .unwrap();
    let tmp = dir.path().join("topics/.tmp-b");
    std::fs::create_dir_all(tmp.join("0")).unwrap();
    std::fs::write(tmp.join("0/00000000000000000000.log"), b"junk").unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert!(!tmp.exists());
    assert_eq!(log.topic_names(), vec!["a".to_owned()]);
    assert!(log.create_topic("b", 2).unwrap());
}

/// 40 partitions rolling segments, durable writes, reads of everything, a flush: never
/// more segment files open than the cap; none at all right after open.
#[test]
fn open_segment_files_stay_within_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = || LogConfig {
        max_open_files: 8,
        ..config(1024)
    };
    let log = Log::open(dir.path(), cfg()).unwrap();
    log.create_topic("t", 40).unwrap();
    assert_eq!(log.open_files(), (0, 8));
    // 632-byte batches: every one after the first rolls its partition's segment.
    for round in 0..3u8 {
        for p in 0..40u32 {
            let rec = vec![round; 600];
            log.append_sync("t", p, &[&rec], p % 5 == 0, Duration::from_secs(10))
                .unwrap();
            assert!(log.open_files().0 <= 8, "{:?}", log.open_files());
        }
    }
    let check = |log: &Log| {
        for p in 0..40u32 {
            let all = read_all(log, "t", p);
            assert_eq!(all.len(), 3);
            for (o, v) in all {
                assert_eq!(v, vec![o as u8; 600]);
            }
            assert!(log.open_files().0 <= 8, "{:?}", log.open_files());
        }
    };
    check(&log);
    log.flush().unwrap();
    assert!(log.open_files().0 <= 8);
    log.close().unwrap();
    let log = Log::open(dir.path(), cfg()).unwrap();
    assert_eq!(log.open_files(), (0, 8));
    check(&log);
}

#[test]
fn second_open_of_a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert!(matches!(
        Log::open(dir.path(), LogConfig::default()),
        Err(StorageError::Locked(_))
    ));
    drop(log);
    Log::open(dir.path(), LogConfig::default()).unwrap();
}

/// The housekeeper thread holds the log for a moment on each tick; the lock must still be
/// free the moment the last handle is dropped, not when the housekeeper lets go.
#[test]
fn the_directory_is_free_as_soon_as_the_last_handle_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = || LogConfig {
        retention_bytes: Some(1 << 30),
        retention_check_interval: Duration::from_millis(1),
        fsync: FsyncPolicy::Interval(Duration::from_millis(1)),
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), cfg()).unwrap();
    log.create_topic("t", 64).unwrap();
    drop(log);
    for round in 0..300 {
        let log = Log::open(dir.path(), cfg()).unwrap_or_else(|e| panic!("round {round}: {e}"));
        // Drop at a different point of the housekeeper's 1 ms tick each round (a tick walks
        // 64 partitions).
        std::thread::sleep(Duration::from_micros(round * 37 % 3000));
        drop(log);
    }
}

#[test]
fn offsets_commit_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    log.create_topic("t", 2).unwrap();
    assert_eq!(log.committed("g", "t", 1).unwrap(), None);
    log.commit_offset("g", "t", 1, 42).unwrap();
    assert!(matches!(
        log.commit_offset("g", "u", 0, 1),
        Err(StorageError::UnknownTopic(_))
    ));
    assert!(matches!(
        log.commit_offset("g/x", "t", 0, 1),
        Err(StorageError::InvalidName(_))
    ));
    log.close().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(log.committed("g", "t", 1).unwrap(), Some(42));
    assert_eq!(log.committed("g", "t", 0).unwrap(), None);
}
