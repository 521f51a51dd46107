//! Round trips of both versions, crash reads (no `finish`), and what the coalescer makes of
//! in-order streams and of anomalies.

use std::fs::OpenOptions;

use super::writer::GROW_BYTES;
use super::*;

fn header(role: Role) -> FileHeader {
    FileHeader {
        role,
        worker: 3,
        run_id: 42,
    }
}

fn read_all(path: &std::path::Path) -> Vec<Record> {
    HistoryReader::open(path)
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

fn sent(p: u16, seq: u64, keys: u32, t: u64) -> Record {
    Record::Sent {
        producer: ProducerId(p),
        seq: Seq(seq),
        key: key_of(ProducerId(p), Seq(seq), keys),
        intended_ns: t,
    }
}

fn acked(p: u16, seq: u64, t: u64) -> Record {
    Record::Acked {
        producer: ProducerId(p),
        seq: Seq(seq),
        at_ns: t,
        intended_ns: t - 5,
    }
}

fn delivered(p: u16, seq: u64, keys: u32, t: u64) -> Record {
    Record::Delivered {
        producer: ProducerId(p),
        seq: Seq(seq),
        key: key_of(ProducerId(p), Seq(seq), keys),
        sent_ns: t - 7,
        at_ns: t,
    }
}

fn run(p: u16, key: u32, first: u64, count: u32, t1: u64, span: u32) -> Run {
    Run {
        producer: ProducerId(p),
        key: Key(key),
        first: Seq(first),
        count,
        t1,
        span,
    }
}

#[test]
fn writes_and_reads_back_every_kind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p0.hist");
    let recs = vec![
        sent(3, 0, 1, 10),
        acked(3, 0, 20),
        Record::Failed {
            producer: ProducerId(3),
            seq: Seq(1),
            at_ns: 30,
            reason: FailReason::Refused,
        },
        Record::Failed {
            producer: ProducerId(3),
            seq: Seq(2),
            at_ns: 31,
            reason: FailReason::NotSent,
        },
        delivered(3, 0, 1, 40),
        Record::Unexpected { at_ns: 50 },
    ];
    let mut w = HistoryWriter::create(&path, header(Role::Producer)).unwrap();
    for r in &recs {
        w.push(*r).unwrap();
    }
    w.finish().unwrap();
    let r = HistoryReader::open(&path).unwrap();
    assert_eq!((r.header, r.version), (header(Role::Producer), V1));
    assert_eq!(read_all(&path), recs);
}

#[test]
fn unfinished_file_reads_up_to_last_record_and_torn_tail_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p0.hist");
    let mut w = HistoryWriter::create(&path, header(Role::Producer)).unwrap();
    // Cross a grow boundary, then "crash": never call finish.
    let n = GROW_BYTES / RECORD_LEN as u64 + 10;
    for i in 0..n {
        w.push(sent(0, i, 1, i)).unwrap();
    }
    std::mem::forget(w);
    assert_eq!(HistoryReader::open(&path).unwrap().count() as u64, n);

    // A torn final record (file cut mid-record) is not read.
    let len = (HEADER_LEN + 5 * RECORD_LEN + 7) as u64;
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len).unwrap();
    assert_eq!(HistoryReader::open(&path).unwrap().count(), 5);
}

#[test]
fn an_in_order_stream_is_one_run_per_stream_and_cell() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p0.hist");
    let mut h = History::create(&path, header(Role::Producer), HistoryMode::Intervals, 2).unwrap();
    // 100 000 sends and acks 1 µs apart, all inside the first second.
    for i in 0..100_000u64 {
        h.record(sent(1, i, 2, 1_000 + i * 1_000)).unwrap();
        h.record(acked(1, i, 2_000 + i * 1_000)).unwrap();
    }
    assert_eq!(h.records(), 3);
    h.finish().unwrap();
    let r = HistoryReader::open(&path).unwrap();
    assert_eq!((r.version, r.keys), (V2, 2));
    let back = read_all(&path);
    // Producer 1's seq 0 has key 1: the acks of key 1 are seqs 0, 2, 4 …
    assert_eq!(
        back,
        [
            Record::SentRun(run(1, 1, 0, 100_000, 1_000, 99_999_000)),
            Record::AckedRun(run(1, 1, 0, 50_000, 2_000, 99_998_000)),
            Record::AckedRun(run(1, 0, 1, 50_000, 3_000, 99_998_000)),
        ]
    );
    if let Record::SentRun(s) = back[0] {
        assert_eq!(
            (s.seq_at(99_999, 1), s.time_of(99_999)),
            (Seq(99_999), 99_999_000 + 1_000)
        );
        assert_eq!(s.time_of(1), 2_000);
    }
}

#[test]
fn runs_break_at_cells_and_stalls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p0.hist");
    let mut h = History::create(&path, header(Role::Producer), HistoryMode::Intervals, 1).unwrap();
    let ms = 1_000_000;
    // 0..10 every ms, a 50 ms stall, 10..20 every ms, then across the 1 s boundary.
    let times = (0..10)
        .map(|i| 100 * ms + i * ms)
        .chain((10..20).map(|i| 159 * ms + i * ms))
        .chain((20..22).map(|i| 998 * ms + (i - 20) * 3 * ms));
    for (seq, t) in times.enumerate() {
        h.record(sent(0, seq as u64, 1, t)).unwrap();
    }
    h.finish().unwrap();
    assert_eq!(
        read_all(&path),
        [
            Record::SentRun(run(0, 0, 0, 10, 100 * ms, 9 * ms as u32)),
            Record::SentRun(run(0, 0, 10, 10, 169 * ms, 9 * ms as u32)),
            Record::SentRun(run(0, 0, 20, 1, 998 * ms, 0)),
            Record::SentRun(run(0, 0, 21, 1, 1_001 * ms, 0)),
        ]
    );
}

#[test]
fn repeats_and_reorders_are_records_of_their_own_ending_the_run_and_gaps_open_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c0.hist");
    let mut h = History::create(&path, header(Role::Consumer), HistoryMode::Intervals, 1).unwrap();
    let events = [
        delivered(0, 0, 1, 100),
        delivered(0, 1, 1, 110),
        delivered(0, 1, 1, 120), // repeat
        delivered(0, 2, 1, 130),
        delivered(0, 5, 1, 140), // gap: a new run
        delivered(0, 3, 1, 150), // late: reordered
        delivered(0, 6, 1, 160),
        Record::Unexpected { at_ns: 170 },
        Record::Delivered {
            producer: ProducerId(0),
            seq: Seq(7),
            key: Key(4), // not the key the producer gives seq 7
            sent_ns: 1,
            at_ns: 180,
        },
        delivered(1, 0, 1, 190), // another producer: its own run
    ];
    for e in events {
        h.record(e).unwrap();
    }
    h.finish().unwrap();
    assert_eq!(
        read_all(&path),
        [
            Record::DeliveredRun(run(0, 0, 0, 2, 100, 10)),
            events[2],
            Record::DeliveredRun(run(0, 0, 2, 1, 130, 0)),
            Record::DeliveredRun(run(0, 0, 5, 1, 140, 0)),
            events[5],
            Record::DeliveredRun(run(0, 0, 6, 1, 160, 0)),
            events[7],
            events[8],
            Record::DeliveredRun(run(1, 0, 0, 1, 190, 0)),
        ]
    );
}

#[test]
fn a_killed_writer_leaves_its_open_run_with_the_last_bound_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c0.hist");
    let mut h = History::create(&path, header(Role::Consumer), HistoryMode::Intervals, 1).unwrap();
    for i in 0..1_000 {
        h.record(delivered(0, i, 1, 1_000 + i)).unwrap();
    }
    std::mem::forget(h); // SIGKILL: no finish, the zero-filled tail stays
    assert_eq!(
        read_all(&path),
        [Record::DeliveredRun(run(0, 0, 0, 1_000, 1_000, 999))]
    );
}

#[test]
fn off_writes_nothing_and_full_writes_version_1() {
    let dir = tempfile::tempdir().unwrap();
    let off = dir.path().join("off.hist");
    let mut h = History::create(&off, header(Role::Producer), HistoryMode::Off, 1).unwrap();
    h.record(sent(0, 0, 1, 1)).unwrap();
    assert_eq!(h.finish().unwrap(), None);
    assert!(!off.exists());

    let full = dir.path().join("full.hist");
    let mut h = History::create(&full, header(Role::Producer), HistoryMode::Full, 4).unwrap();
    h.record(sent(0, 0, 4, 1)).unwrap();
    h.record(sent(0, 1, 4, 2)).unwrap();
    h.finish().unwrap();
    assert_eq!(HistoryReader::open(&full).unwrap().version, V1);
    assert_eq!(read_all(&full), [sent(0, 0, 4, 1), sent(0, 1, 4, 2)]);
}

#[test]
fn impossible_runs_are_errors_naming_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p0.hist");
    // A run in a version 1 file.
    let mut w = HistoryWriter::create(&path, header(Role::Producer)).unwrap();
    w.push(Record::SentRun(run(0, 0, 0, 2, 1, 1))).unwrap();
    w.finish().unwrap();
    let err = HistoryReader::open(&path)
        .unwrap()
        .next()
        .unwrap()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("record 0 is corrupt: a run in a version 1 file"),
        "{err}"
    );
    // A run of no messages, and one past the last seq, in a version 2 file.
    let mut w = HistoryWriter::create_version(&path, header(Role::Producer), V2, 1).unwrap();
    w.push(Record::SentRun(run(0, 0, 0, 1, 1, 1))).unwrap();
    w.push(Record::SentRun(run(0, 0, 5, 0, 1, 1))).unwrap();
    w.push(Record::AckedRun(run(0, 0, u64::MAX, 2, 1, 1)))
        .unwrap();
    w.finish().unwrap();
    let mut r = HistoryReader::open(&path).unwrap();
    assert!(r.next().unwrap().is_ok());
    let err = r.next().unwrap().unwrap_err().to_string();
    assert!(
        err.contains("record 1 is corrupt: a run of no messages"),
        "{err}"
    );
    let err = r.next().unwrap().unwrap_err().to_string();
    assert!(
        err.contains("record 2 is corrupt: a run past the largest seq"),
        "{err}"
    );
}

fn txn(p: u16, first: u64, count: u64, at_ns: u64) -> Txn {
    Txn {
        producer: ProducerId(p),
        first: Seq(first),
        count,
        at_ns,
    }
}

#[test]
fn transactions_round_trip_in_both_versions_and_the_flag_is_read_back() {
    let dir = tempfile::tempdir().unwrap();
    for mode in [HistoryMode::Full, HistoryMode::Intervals] {
        let path = dir.path().join(format!("{mode:?}.hist"));
        let mut h = History::create(&path, header(Role::Producer), mode, 1).unwrap();
        h.mark_transactional();
        for s in 0..4 {
            h.record(sent(3, s, 1, 100 + s)).unwrap();
        }
        h.record(Record::CommitStarted(txn(3, 0, 2, 200))).unwrap();
        h.record(acked(3, 0, 210)).unwrap();
        h.record(acked(3, 1, 210)).unwrap();
        h.record(Record::CommitStarted(txn(3, 2, 2, 300))).unwrap();
        h.record(Record::Aborted(txn(3, 2, 2, 310))).unwrap();
        h.finish().unwrap();
        let r = HistoryReader::open(&path).unwrap();
        assert!(r.transactional, "{mode:?}");
        let recs = read_all(&path);
        let want_txns = [
            Record::CommitStarted(txn(3, 0, 2, 200)),
            Record::CommitStarted(txn(3, 2, 2, 300)),
            Record::Aborted(txn(3, 2, 2, 310)),
        ];
        let txns: Vec<_> = (recs.iter().copied())
            .filter(|r| matches!(r, Record::CommitStarted(_) | Record::Aborted(_)))
            .collect();
        assert_eq!(txns, want_txns, "{mode:?}");
        match mode {
            HistoryMode::Full => assert_eq!(recs.len(), 4 + 2 + 3),
            _ => assert_eq!(
                recs,
                [
                    Record::SentRun(run(3, 0, 0, 4, 100, 3)),
                    want_txns[0],
                    Record::AckedRun(run(3, 0, 0, 2, 210, 0)),
                    want_txns[1],
                    want_txns[2],
                ]
            ),
        }
    }
    // A history without the flag (as every file written before it) is not transactional.
    let plain = dir.path().join("plain.hist");
    let mut h = History::create(&plain, header(Role::Producer), HistoryMode::Full, 1).unwrap();
    h.record(sent(3, 0, 1, 1)).unwrap();
    h.finish().unwrap();
    assert!(!HistoryReader::open(&plain).unwrap().transactional);
}

#[test]
fn impossible_transactions_are_errors_naming_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p0.hist");
    let mut w = HistoryWriter::create(&path, header(Role::Producer)).unwrap();
    w.push(Record::CommitStarted(txn(0, 0, 1, 1))).unwrap();
    w.push(Record::CommitStarted(txn(0, 5, 0, 1))).unwrap();
    w.push(Record::Aborted(txn(0, u64::MAX, 2, 1))).unwrap();
    w.finish().unwrap();
    let mut r = HistoryReader::open(&path).unwrap();
    assert_eq!(
        r.next().unwrap().unwrap(),
        Record::CommitStarted(txn(0, 0, 1, 1))
    );
    let err = r.next().unwrap().unwrap_err().to_string();
    assert!(
        err.contains("record 1 is corrupt: a transaction of no messages"),
        "{err}"
    );
    let err = r.next().unwrap().unwrap_err().to_string();
    assert!(
        err.contains("record 2 is corrupt: a transaction past the largest seq"),
        "{err}"
    );
}

#[test]
fn a_producer_seq_far_past_its_sends_is_an_error_and_a_consumer_seq_is_not_bounded_here() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p0.hist");
    let far = 10 + reader::SEQ_SLACK;
    let cases: [(&str, Vec<Record>); 4] = [
        ("send", vec![sent(0, 9, 1, 1), sent(0, far, 1, 2)]),
        ("ack", vec![sent(0, 0, 1, 1), acked(0, far, 9)]),
        ("run", vec![Record::SentRun(run(0, 0, far, 3, 1, 1))]),
        (
            "transaction",
            vec![sent(0, 0, 1, 1), Record::Aborted(txn(0, far - 5, 9, 3))],
        ),
    ];
    for (what, recs) in cases {
        let version = if what == "run" { V2 } else { V1 };
        let mut w =
            HistoryWriter::create_version(&path, header(Role::Producer), version, 1).unwrap();
        recs.iter().for_each(|r| w.push(*r).unwrap());
        w.finish().unwrap();
        let got: Vec<_> = HistoryReader::open(&path).unwrap().collect();
        let err = got.last().unwrap().as_ref().unwrap_err().to_string();
        let index = recs.len() - 1;
        assert!(
            err.contains(&format!(
                "record {index} is corrupt: a seq far past the sends"
            )),
            "{what}: {err}"
        );
        assert!(got[..index].iter().all(Result::is_ok), "{what}");
    }
    // Within the slack (sends recorded out of order) and after many sends: read.
    let mut w = HistoryWriter::create(&path, header(Role::Producer)).unwrap();
    w.push(sent(0, reader::SEQ_SLACK - 1, 1, 1)).unwrap();
    (0..10).for_each(|s| w.push(sent(0, s, 1, 2)).unwrap());
    w.push(acked(0, reader::SEQ_SLACK + 9, 9)).unwrap();
    w.finish().unwrap();
    assert_eq!(read_all(&path).len(), 12);
    // Version 2: an ack run opens (and is written) before the send run of its last messages.
    let mut w = HistoryWriter::create_version(&path, header(Role::Producer), V2, 1).unwrap();
    w.push(Record::SentRun(run(0, 0, 0, 5, 1, 1))).unwrap();
    w.push(Record::AckedRun(run(0, 0, 3, 10, 2, 1))).unwrap();
    w.push(Record::SentRun(run(0, 0, 5, 10, 3, 1))).unwrap();
    w.push(Record::AckedRun(run(0, 0, 13, 2, 4, 1))).unwrap();
    w.finish().unwrap();
    assert_eq!(read_all(&path).len(), 4);
    let mut w = HistoryWriter::create_version(&path, header(Role::Producer), V2, 1).unwrap();
    w.push(Record::SentRun(run(0, 0, 0, 5, 1, 1))).unwrap();
    w.push(Record::AckedRun(run(0, 0, 3, 10, 2, 1))).unwrap();
    w.push(Record::AckedRun(run(0, 0, far, 2, 4, 1))).unwrap();
    w.finish().unwrap();
    let err = HistoryReader::open(&path)
        .unwrap()
        .nth(2)
        .unwrap()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("record 2 is corrupt: a seq far past"),
        "{err}"
    );
    // A consumer's deliveries name any seq: the checker judges them against the sends.
    let mut w = HistoryWriter::create(&path, header(Role::Consumer)).unwrap();
    w.push(delivered(0, u64::MAX, 1, 9)).unwrap();
    w.finish().unwrap();
    assert_eq!(read_all(&path).len(), 1);
}

#[test]
fn an_ack_run_ahead_of_the_send_run_it_acks_reads_back() {
    // Acks of cell 1 open their run before the sends of cell 1 open theirs; the ack run then
    // grows past every send recorded before it by more than the slack (a fast producer).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.hist");
    let mut h = History::create(&path, header(Role::Producer), HistoryMode::Intervals, 1).unwrap();
    let n = reader::SEQ_SLACK + 10;
    h.record(sent(0, 0, 1, 1)).unwrap();
    h.record(acked(0, 0, CELL_NS + 10)).unwrap();
    for s in 1..n {
        h.record(sent(0, s, 1, CELL_NS + 10 + s)).unwrap();
        h.record(acked(0, s, CELL_NS + 11 + s)).unwrap();
    }
    h.finish().unwrap();
    let recs = read_all(&path);
    assert_eq!(
        recs,
        [
            Record::SentRun(run(0, 0, 0, 1, 1, 0)),
            Record::AckedRun(run(0, 0, 0, n as u32, CELL_NS + 10, n as u32)),
            Record::SentRun(run(0, 0, 1, n as u32 - 1, CELL_NS + 11, n as u32 - 2)),
        ]
    );
}
