//! Crafted histories for the checker's tests: records at times derived from their seq, written
//! to history files in a temporary folder, then checked.
// Each test file uses only some of the helpers.
#![allow(dead_code)]

use mq_checker::{check, Counts, Input, Report};
use mq_core::history::{FailReason, FileHeader, HistoryWriter, Record, Role};
use mq_core::ids::{Key, ProducerId, Seq};

pub const MS: u64 = 1_000_000;

pub struct H {
    pub dir: tempfile::TempDir,
    pub producers: Vec<Vec<Record>>,
    pub consumers: Vec<Vec<Record>>,
    /// Producers whose history carries the transactional flag.
    pub transactional: Vec<usize>,
}

pub fn sent(p: u16, seq: u64, key: u32) -> Record {
    Record::Sent {
        producer: ProducerId(p),
        seq: Seq(seq),
        key: Key(key),
        intended_ns: seq * MS,
    }
}
pub fn acked(p: u16, seq: u64) -> Record {
    Record::Acked {
        producer: ProducerId(p),
        seq: Seq(seq),
        at_ns: seq * MS + MS / 2,
        intended_ns: seq * MS,
    }
}
pub fn failed(p: u16, seq: u64) -> Record {
    failed_because(p, seq, FailReason::Refused)
}
pub fn failed_because(p: u16, seq: u64, reason: FailReason) -> Record {
    Record::Failed {
        producer: ProducerId(p),
        seq: Seq(seq),
        at_ns: seq * MS + MS / 2,
        reason,
    }
}
pub fn delivered(p: u16, seq: u64, key: u32) -> Record {
    Record::Delivered {
        producer: ProducerId(p),
        seq: Seq(seq),
        key: Key(key),
        sent_ns: seq * MS,
        at_ns: seq * MS + MS,
    }
}

impl H {
    pub fn new() -> H {
        H {
            dir: tempfile::tempdir().unwrap(),
            producers: vec![],
            consumers: vec![],
            transactional: vec![],
        }
    }
    /// Producer `p` sends and gets acks for seqs `0..n`, key = seq % keys.
    pub fn clean_producer(mut self, n: u64, keys: u32) -> H {
        let p = self.producers.len() as u16;
        self.producers.push(
            (0..n)
                .flat_map(|s| [sent(p, s, (s % keys as u64) as u32), acked(p, s)])
                .collect(),
        );
        self
    }
    pub fn producer(mut self, recs: Vec<Record>) -> H {
        self.producers.push(recs);
        self
    }
    /// A transactional producer's history (the header's flag set).
    pub fn transactional_producer(mut self, recs: Vec<Record>) -> H {
        self.transactional.push(self.producers.len());
        self.producers.push(recs);
        self
    }
    pub fn consumer(mut self, recs: Vec<Record>) -> H {
        self.consumers.push(recs);
        self
    }
    pub fn check(&self, keys: u32) -> Counts {
        self.report(keys).counts
    }
    pub fn report(&self, keys: u32) -> Report {
        check(&self.input(keys)).unwrap()
    }
    /// The histories written to files, as the checker reads them.
    pub fn input(&self, keys: u32) -> Input {
        let write = |role: Role, i: usize, recs: &[Record]| {
            let path = self.dir.path().join(format!("{role:?}-{i}.hist"));
            let mut w = HistoryWriter::create(
                &path,
                FileHeader {
                    role,
                    worker: i as u16,
                    run_id: 7,
                },
            )
            .unwrap();
            if role == Role::Producer && self.transactional.contains(&i) {
                w.mark_transactional();
            }
            for r in recs {
                w.push(*r).unwrap();
            }
            w.finish().unwrap()
        };
        Input {
            producer_files: self
                .producers
                .iter()
                .enumerate()
                .map(|(i, r)| write(Role::Producer, i, r))
                .collect(),
            consumer_files: self
                .consumers
                .iter()
                .enumerate()
                .map(|(i, r)| write(Role::Consumer, i, r))
                .collect(),
            depth_file: None,
            dedup_store: None,
            start_ns: 0,
            warmup_ns: 0,
            message_size: 100,
            producers: self.producers.len() as u32,
            // Loss is judged (a test may give no consumer history: nothing delivered).
            consumers: self.consumers.len().max(1) as u32,
            keys,
        }
    }
}

pub fn all_delivered(p: u16, n: u64, keys: u32) -> Vec<Record> {
    (0..n)
        .map(|s| delivered(p, s, (s % keys as u64) as u32))
        .collect()
}

/// A delivery of producer `p`'s `seq` (sent at seq ms) recorded at `at_ns`.
pub fn delivered_when(p: u16, seq: u64, key: u32, at_ns: u64) -> Record {
    Record::Delivered {
        producer: ProducerId(p),
        seq: Seq(seq),
        key: Key(key),
        sent_ns: seq * MS,
        at_ns,
    }
}

/// Seconds since the start (0 in these histories) of a time in ns, as the checker writes it.
pub fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}
