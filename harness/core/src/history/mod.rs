//! The history: what each worker saw, one file per worker, fixed-size records.
//!
//! A file is a 32-byte header followed by 32-byte records (little endian):
//! `kind u8 | flags u8 | producer u16 | key u32 | seq u64 | t1 u64 | t2 u64`.
//! Version 1 ("full") holds one record per event. Version 2 ("intervals") holds runs of
//! messages (`seq a, a+stride … sent / acked / delivered at t1 … t1+span`) and records
//! individually only what falls out of a run (a gap, a repeat, a reorder, a failure, a foreign
//! payload), so its size grows with time and anomalies, not with messages.
//!
//! Writers map the file and store records straight into the page cache ([`writer`]), so a
//! worker killed with SIGKILL loses nothing it had written. See `docs/history-format.md`.

mod reader;
mod recorder;
mod writer;

pub use reader::{HistoryError, HistoryReader};
pub use recorder::{History, HistoryMode, CELL_NS, STALL_FACTOR, STALL_NS};
pub use writer::HistoryWriter;

use crate::ids::{Key, ProducerId, Seq};

pub const HEADER_LEN: usize = 32;
pub const RECORD_LEN: usize = 32;
const FILE_MAGIC: &[u8; 4] = b"MQBH";
/// One record per event.
pub const V1: u32 = 1;
/// Runs of messages, anomalies one by one.
pub const V2: u32 = 2;

/// Which worker wrote a history file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Producer = 1,
    Consumer = 2,
}

/// A run of messages of one producer: `first`, `first + stride`, … (`count` of them), the first
/// at `t1`, the last at `t1 + span`, the others in between (times of messages inside a run are
/// not stored: readers spread them evenly, see [`Run::time_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub producer: ProducerId,
    /// The ordering key of the first message.
    pub key: Key,
    pub first: Seq,
    pub count: u32,
    pub t1: u64,
    pub span: u32,
}

impl Run {
    /// The time of the message at `position` (0-based) in the run, spread evenly between its
    /// bounds: `t1 + span × position / (count − 1)`, rounded down.
    #[inline]
    pub fn time_of(&self, position: u64) -> u64 {
        spread_time(self.t1, self.span as u64, self.count as u64, position)
    }
}

impl Run {
    /// The seq of the message at `position`, `stride` apart (1 for sends, the file's keys for
    /// acks and deliveries).
    #[inline]
    pub fn seq_at(&self, position: u64, stride: u64) -> Seq {
        Seq(self.first.0 + position * stride)
    }
}

/// The time of the message at `position` of `count` spread over `[t1, t1 + span]`.
#[inline]
pub fn spread_time(t1: u64, span: u64, count: u64, position: u64) -> u64 {
    if count <= 1 {
        return t1;
    }
    t1 + (u128::from(span) * u128::from(position) / u128::from(count - 1)) as u64
}

/// One event of a worker's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// A send attempt, at its intended send time.
    Sent {
        producer: ProducerId,
        seq: Seq,
        key: Key,
        intended_ns: u64,
    },
    /// The broker confirmed the send; `intended_ns` repeats the send's intended time.
    Acked {
        producer: ProducerId,
        seq: Seq,
        at_ns: u64,
        intended_ns: u64,
    },
    /// The send failed: the broker refused it, or it never reached the broker.
    Failed {
        producer: ProducerId,
        seq: Seq,
        at_ns: u64,
        reason: FailReason,
    },
    /// A consumer took a message of this run.
    Delivered {
        producer: ProducerId,
        seq: Seq,
        key: Key,
        sent_ns: u64,
        at_ns: u64,
    },
    /// A consumer took a payload that is not one of this run's messages.
    Unexpected { at_ns: u64 },
    /// Version 2: consecutive sends (stride 1), at their intended times.
    SentRun(Run),
    /// Version 2: confirmations of one key's consecutive messages (stride: the file's keys).
    AckedRun(Run),
    /// Version 2: one key's messages delivered in order without gaps or repeats (stride: the
    /// file's keys).
    DeliveredRun(Run),
    /// A transactional producer is about to commit the transaction of seqs
    /// `first .. first + count` (written before the commit is asked for).
    CommitStarted(Txn),
    /// A transactional producer aborted the transaction of seqs `first .. first + count`.
    Aborted(Txn),
}

/// The seqs of one transaction of a producer: `first, first + 1, …` (`count` of them), and when
/// the producer recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Txn {
    pub producer: ProducerId,
    pub first: Seq,
    pub count: u64,
    pub at_ns: u64,
}

/// Why a send failed (the `flags` byte of a `failed` record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    /// The broker answered with a refusal (nack, error response).
    Refused = 0,
    /// The client never handed it to the broker (no connection within its delivery timeout).
    NotSent = 1,
}

const K_SENT: u8 = 1;
const K_ACKED: u8 = 2;
const K_FAILED: u8 = 3;
const K_DELIVERED: u8 = 4;
const K_UNEXPECTED: u8 = 5;
const K_SENT_RUN: u8 = 6;
const K_ACKED_RUN: u8 = 7;
const K_DELIVERED_RUN: u8 = 8;
const K_COMMIT_STARTED: u8 = 9;
const K_ABORTED: u8 = 10;

/// Bit 0 of the header's flags byte (byte 9): a transactional producer's history, whose sends
/// count only once a commit of them starts (see [`Record::CommitStarted`]).
pub const FLAG_TRANSACTIONAL: u8 = 1;
/// Where the header's flags byte is.
pub(crate) const HEADER_FLAGS: usize = 9;

/// A run's bound as stored in bytes 24..32: `count u32 | span u32`, one aligned u64, so the
/// writer moves it forward with a single store.
#[inline]
pub(crate) fn bound(count: u32, span: u32) -> u64 {
    u64::from(count) | (u64::from(span) << 32)
}

impl Record {
    fn encode(&self) -> [u8; RECORD_LEN] {
        let mut flags = 0u8;
        let (kind, producer, key, seq, t1, t2) = match *self {
            Record::Sent {
                producer,
                seq,
                key,
                intended_ns,
            } => (K_SENT, producer, key, seq, intended_ns, 0),
            Record::Acked {
                producer,
                seq,
                at_ns,
                intended_ns,
            } => (K_ACKED, producer, Key(0), seq, at_ns, intended_ns),
            Record::Failed {
                producer,
                seq,
                at_ns,
                reason,
            } => {
                flags = reason as u8;
                (K_FAILED, producer, Key(0), seq, at_ns, 0)
            }
            Record::Delivered {
                producer,
                seq,
                key,
                sent_ns,
                at_ns,
            } => (K_DELIVERED, producer, key, seq, sent_ns, at_ns),
            Record::Unexpected { at_ns } => (K_UNEXPECTED, ProducerId(0), Key(0), Seq(0), at_ns, 0),
            Record::SentRun(r) | Record::AckedRun(r) | Record::DeliveredRun(r) => {
                let kind = match self {
                    Record::SentRun(_) => K_SENT_RUN,
                    Record::AckedRun(_) => K_ACKED_RUN,
                    _ => K_DELIVERED_RUN,
                };
                (
                    kind,
                    r.producer,
                    r.key,
                    r.first,
                    r.t1,
                    bound(r.count, r.span),
                )
            }
            Record::CommitStarted(t) => (
                K_COMMIT_STARTED,
                t.producer,
                Key(0),
                t.first,
                t.at_ns,
                t.count,
            ),
            Record::Aborted(t) => (K_ABORTED, t.producer, Key(0), t.first, t.at_ns, t.count),
        };
        let mut b = [0u8; RECORD_LEN];
        b[0] = kind;
        b[1] = flags;
        b[2..4].copy_from_slice(&producer.0.to_le_bytes());
        b[4..8].copy_from_slice(&key.0.to_le_bytes());
        b[8..16].copy_from_slice(&seq.0.to_le_bytes());
        b[16..24].copy_from_slice(&t1.to_le_bytes());
        b[24..32].copy_from_slice(&t2.to_le_bytes());
        b
    }

    /// Decodes one record; `None` for the zero record that marks the end, `Err((kind, flags))`
    /// for a record no version has.
    #[inline]
    pub fn decode(b: &[u8]) -> Option<Result<Record, (u8, u8)>> {
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        let producer = ProducerId(u16::from_le_bytes([b[2], b[3]]));
        let key = Key(u32::from_le_bytes(b[4..8].try_into().unwrap()));
        let seq = Seq(u64_at(8));
        let (t1, t2) = (u64_at(16), u64_at(24));
        let txn = || Txn {
            producer,
            first: seq,
            count: t2,
            at_ns: t1,
        };
        let run = || Run {
            producer,
            key,
            first: seq,
            count: t2 as u32,
            t1,
            span: (t2 >> 32) as u32,
        };
        Some(Ok(match b[0] {
            0 => return None,
            K_SENT => Record::Sent {
                producer,
                seq,
                key,
                intended_ns: t1,
            },
            K_ACKED => Record::Acked {
                producer,
                seq,
                at_ns: t1,
                intended_ns: t2,
            },
            K_FAILED => Record::Failed {
                producer,
                seq,
                at_ns: t1,
                reason: match b[1] {
                    0 => FailReason::Refused,
                    1 => FailReason::NotSent,
                    _ => return Some(Err((b[0], b[1]))),
                },
            },
            K_DELIVERED => Record::Delivered {
                producer,
                seq,
                key,
                sent_ns: t1,
                at_ns: t2,
            },
            K_UNEXPECTED => Record::Unexpected { at_ns: t1 },
            K_SENT_RUN => Record::SentRun(run()),
            K_ACKED_RUN => Record::AckedRun(run()),
            K_DELIVERED_RUN => Record::DeliveredRun(run()),
            K_COMMIT_STARTED => Record::CommitStarted(txn()),
            K_ABORTED => Record::Aborted(txn()),
            other => return Some(Err((other, b[1]))),
        }))
    }

    /// Whether only a version 2 file may hold this record.
    pub fn is_run(&self) -> bool {
        matches!(
            self,
            Record::SentRun(_) | Record::AckedRun(_) | Record::DeliveredRun(_)
        )
    }
}

/// Header of a history file: who wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    pub role: Role,
    pub worker: u16,
    pub run_id: u32,
}

impl FileHeader {
    /// The header's bytes for a file of `version`; version 2 also records the variant's keys
    /// (the stride of acked and delivered runs).
    fn encode(&self, version: u32, keys: u32) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..4].copy_from_slice(FILE_MAGIC);
        h[4..8].copy_from_slice(&version.to_le_bytes());
        h[8] = self.role as u8;
        h[10..12].copy_from_slice(&self.worker.to_le_bytes());
        h[12..16].copy_from_slice(&self.run_id.to_le_bytes());
        if version >= V2 {
            h[16..20].copy_from_slice(&keys.to_le_bytes());
        }
        h
    }
}

/// The ordering key the producer worker gives its message `seq`: consecutive seqs go round the
/// keys, each producer starting at a different one.
#[inline]
pub fn key_of(producer: ProducerId, seq: Seq, keys: u32) -> Key {
    Key(((seq.0 + producer.0 as u64) % keys.max(1) as u64) as u32)
}

#[cfg(test)]
mod tests;
