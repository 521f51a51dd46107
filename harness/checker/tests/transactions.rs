//! Transactional producers: messages outside every started commit, or in an aborted
//! transaction, are `aborted`; those delivered anyway are `aborted_visible`; a started commit
//! without its acks leaves its messages unknown. Both history versions give the same counts.

mod common;

use common::*;
use mq_checker::{check, Counts};
use mq_core::history::{FileHeader, History, HistoryMode, Record, Role, Txn};
use mq_core::ids::{ProducerId, Seq};

fn txn(p: u16, first: u64, count: u64) -> Txn {
    Txn {
        producer: ProducerId(p),
        first: Seq(first),
        count,
        at_ns: (first + count) * MS,
    }
}

/// Producer 0, transactional: 0..5 committed and acked; 5..8 commit started, no ack (the
/// producer died in the commit); 8..10 committed, the commit failed and was aborted; 10..14
/// sent, never committed (died in the transaction).
fn transactional() -> Vec<Record> {
    let mut r: Vec<Record> = (0..10).map(|s| sent(0, s, 0)).collect();
    r.push(Record::CommitStarted(txn(0, 0, 5)));
    r.extend((0..5).map(|s| acked(0, s)));
    r.push(Record::CommitStarted(txn(0, 5, 3)));
    r.push(Record::CommitStarted(txn(0, 8, 2)));
    r.push(Record::Aborted(txn(0, 8, 2)));
    r.extend((8..10).map(|s| failed(0, s)));
    r.extend((10..14).map(|s| sent(0, s, 0)));
    r
}

/// Producer 1, not transactional: sends 0..3 without an answer (a commit record in a history
/// without the flag means nothing).
fn plain() -> Vec<Record> {
    let mut r: Vec<Record> = (0..3).map(|s| sent(1, s, 0)).collect();
    r.push(Record::CommitStarted(txn(1, 0, 3)));
    r
}

fn deliveries() -> Vec<Record> {
    let mut d: Vec<Record> = (0..5).map(|s| delivered(0, s, 0)).collect();
    d.extend([6, 9, 12].map(|s| delivered(0, s, 0)));
    d.push(delivered(1, 1, 0));
    d
}

fn expected() -> Counts {
    Counts {
        sent: 14 + 3,
        acked: 5,
        unknown: 3 + 3,
        aborted: 2 + 4,
        aborted_visible: 2,
        delivered: 5 + 3 + 1,
        deliveries: 9,
        unacked_lost: 2 + 2,
        recovered: 1 + 1,
        ..Counts::default()
    }
}

#[test]
fn aborted_and_uncommitted_messages_are_aborted_and_visible_ones_are_counted() {
    let h = H::new()
        .transactional_producer(transactional())
        .producer(plain())
        .consumer(deliveries());
    let r = h.report(1);
    assert!(r.transactional);
    assert_eq!(r.counts, expected());
    let seqs: Vec<_> = (r.samples.aborted_visible.iter())
        .map(|s| (s.producer.unwrap().0, s.seq.unwrap().0))
        .collect();
    assert_eq!(seqs, [(0, 9), (0, 12)]);
    assert!(
        r.samples.unacked_lost.iter().all(|s| s.seq != Some(Seq(9))),
        "an aborted message is not unacked-lost"
    );
}

#[test]
fn without_the_flag_the_same_records_are_unknown_not_aborted() {
    let r = H::new()
        .producer(transactional())
        .producer(plain())
        .consumer(deliveries())
        .report(1);
    assert!(!r.transactional);
    let c = r.counts;
    assert_eq!(c.aborted, 0);
    assert_eq!(c.aborted_visible, 0);
    // 10..14 unknown; 8..10 failed (refused), 9 delivered anyway.
    assert_eq!((c.unknown, c.failed, c.failed_delivered), (3 + 4 + 3, 2, 1));
}

#[test]
fn version_2_histories_count_the_same() {
    let h = H::new()
        .transactional_producer(transactional())
        .producer(plain())
        .consumer(deliveries());
    let mut input = h.input(1);
    let write = |role, i: usize, recs: &[Record], txn: bool| {
        let path = h.dir.path().join(format!("v2-{role:?}-{i}.hist"));
        let header = FileHeader {
            role,
            worker: i as u16,
            run_id: 7,
        };
        let mut w = History::create(&path, header, HistoryMode::Intervals, 1).unwrap();
        if txn {
            w.mark_transactional();
        }
        for r in recs {
            w.record(*r).unwrap();
        }
        w.finish().unwrap().unwrap()
    };
    input.producer_files = vec![
        write(Role::Producer, 0, &transactional(), true),
        write(Role::Producer, 1, &plain(), false),
    ];
    input.consumer_files = vec![write(Role::Consumer, 0, &deliveries(), false)];
    assert_eq!(check(&input).unwrap().counts, expected());
}
