//! Reading a history file of either version, sequentially, in large chunks, up to the last whole
//! record. A record no version has, a run in a version 1 file or a run that cannot be (no
//! messages, seqs past u64) is an error naming the file and the record, never a panic.
//!
//! A producer history names seqs near the messages it records: a producer's seqs are dense
//! from 0, so every seq it names lies below its sends plus [`SEQ_SLACK`] (room for sends
//! recorded out of order). In version 1 an event is recorded as it happens, so that holds for
//! the sends recorded before it; in version 2 a run is written when it opens and grows in
//! place (an ack run can open before the send run of its last messages), so it holds for the
//! file's sends, counted when the file is opened (version 2 files are small). A seq past that
//! (a corrupt or hostile file) is an error, so what a caller sizes by seq grows with the
//! messages the file records, never with a seq alone.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::{
    FileHeader, Record, Role, Txn, FILE_MAGIC, FLAG_TRANSACTIONAL, HEADER_FLAGS, HEADER_LEN,
    RECORD_LEN, V1, V2,
};

/// How far past the sends recorded so far a producer history may name a seq.
pub const SEQ_SLACK: u64 = 1 << 20;

/// Why a history file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("reading history {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is not an mq-bench history file (bad magic, version or role)")]
    NotHistory { path: PathBuf },
    #[error("{path}: record {index} has unknown kind {kind} (flags {flags})")]
    BadRecord {
        path: PathBuf,
        index: u64,
        kind: u8,
        flags: u8,
    },
    #[error("{path}: record {index} is corrupt: {what}")]
    Corrupt {
        path: PathBuf,
        index: u64,
        what: &'static str,
    },
}

/// Reads a history file sequentially, up to the last whole record.
pub struct HistoryReader {
    file: File,
    path: PathBuf,
    pub header: FileHeader,
    /// 1 (a record per event) or 2 (runs).
    pub version: u32,
    /// Version 2: the variant's keys, the stride of acked and delivered runs (0 in version 1).
    pub keys: u32,
    /// A transactional producer's history (header flag [`FLAG_TRANSACTIONAL`]; false in files
    /// written before the flag existed).
    pub transactional: bool,
    buf: Vec<u8>,
    pos: usize,
    filled: usize,
    index: u64,
    done: bool,
    /// Producer histories, per producer id: the messages sent so far (version 1) or in the
    /// whole file (version 2).
    sends: Vec<u64>,
}

impl HistoryReader {
    pub fn open(path: &Path) -> Result<HistoryReader, HistoryError> {
        let io_err = |source| HistoryError::Io {
            path: path.to_owned(),
            source,
        };
        let not_history = || HistoryError::NotHistory {
            path: path.to_owned(),
        };
        let mut file = File::open(path).map_err(io_err)?;
        let mut h = [0u8; HEADER_LEN];
        file.read_exact(&mut h).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => not_history(),
            _ => io_err(e),
        })?;
        let version = u32::from_le_bytes(h[4..8].try_into().unwrap());
        if &h[0..4] != FILE_MAGIC || !(V1..=V2).contains(&version) {
            return Err(not_history());
        }
        let role = match h[8] {
            1 => Role::Producer,
            2 => Role::Consumer,
            _ => return Err(not_history()),
        };
        let keys = u32::from_le_bytes(h[16..20].try_into().unwrap());
        if version == V2 && keys == 0 {
            return Err(not_history());
        }
        let header = FileHeader {
            role,
            worker: u16::from_le_bytes([h[10], h[11]]),
            run_id: u32::from_le_bytes(h[12..16].try_into().unwrap()),
        };
        Ok(HistoryReader {
            file,
            path: path.to_owned(),
            header,
            version,
            keys,
            transactional: h[HEADER_FLAGS] & FLAG_TRANSACTIONAL != 0,
            buf: vec![0; 1 << 20],
            pos: 0,
            filled: 0,
            index: 0,
            done: false,
            sends: match (role, version) {
                (Role::Producer, V2) => sends_of(path).map_err(io_err)?,
                _ => Vec::new(),
            },
        })
    }

    /// The next record, or `None` at the end (the file's end, a torn tail or the zero record).
    #[inline]
    pub fn next_record(&mut self) -> Result<Option<Record>, HistoryError> {
        if self.filled - self.pos < RECORD_LEN && !self.refill()? {
            return Ok(None);
        }
        let b = &self.buf[self.pos..self.pos + RECORD_LEN];
        self.pos += RECORD_LEN;
        self.index += 1;
        let r = match Record::decode(b) {
            None => {
                self.done = true;
                self.pos = self.filled;
                return Ok(None);
            }
            Some(Ok(r)) if r.is_run() => self.check_run(r)?,
            Some(Ok(r @ (Record::CommitStarted(t) | Record::Aborted(t)))) => {
                self.check_txn(t).map(|()| r)?
            }
            Some(Ok(r)) => r,
            Some(Err((kind, flags))) => Err(HistoryError::BadRecord {
                path: self.path.clone(),
                index: self.index - 1,
                kind,
                flags,
            })?,
        };
        if self.header.role == Role::Producer {
            self.check_reach(&r)?;
        }
        Ok(Some(r))
    }

    /// Reads in chunks of `bytes` (at least one record) instead of 1 MiB, for a caller that
    /// keeps many readers open at once. Call it before the first record is read.
    pub fn with_buffer(mut self, bytes: usize) -> HistoryReader {
        if self.pos == 0 && self.filled == 0 {
            self.buf = vec![0; bytes.max(RECORD_LEN)];
        }
        self
    }

    /// A run must be in a version 2 file, hold a message, and end within the seq range.
    #[cold]
    fn check_run(&self, r: Record) -> Result<Record, HistoryError> {
        let corrupt = |what| HistoryError::Corrupt {
            path: self.path.clone(),
            index: self.index - 1,
            what,
        };
        let (run, stride) = match r {
            Record::SentRun(run) => (run, 1),
            Record::AckedRun(run) | Record::DeliveredRun(run) => (run, u64::from(self.keys)),
            _ => return Ok(r),
        };
        if self.version < V2 {
            return Err(corrupt("a run in a version 1 file"));
        }
        if run.count == 0 {
            return Err(corrupt("a run of no messages"));
        }
        let last = u64::from(run.count - 1)
            .checked_mul(stride)
            .and_then(|d| run.first.0.checked_add(d));
        if last.is_none() || run.t1.checked_add(u64::from(run.span)).is_none() {
            return Err(corrupt("a run past the largest seq or time"));
        }
        Ok(r)
    }

    /// A transaction holds a message and ends within the seq range.
    #[cold]
    fn check_txn(&self, t: Txn) -> Result<(), HistoryError> {
        let corrupt = |what| HistoryError::Corrupt {
            path: self.path.clone(),
            index: self.index - 1,
            what,
        };
        if t.count == 0 {
            return Err(corrupt("a transaction of no messages"));
        }
        if t.first.0.checked_add(t.count).is_none() {
            return Err(corrupt("a transaction past the largest seq"));
        }
        Ok(())
    }

    /// A producer history names no seq past its sends so far plus [`SEQ_SLACK`].
    #[inline]
    fn check_reach(&mut self, r: &Record) -> Result<(), HistoryError> {
        // (producer, messages sent, the last seq named)
        let (producer, sent, last) = match *r {
            Record::Sent { producer, seq, .. } => (producer, 1, seq.0),
            Record::SentRun(run) => {
                let last = run.first.0 + u64::from(run.count - 1);
                (run.producer, u64::from(run.count), last)
            }
            Record::Acked { producer, seq, .. } | Record::Failed { producer, seq, .. } => {
                (producer, 0, seq.0)
            }
            Record::AckedRun(run) => {
                let last = run.first.0 + u64::from(run.count - 1) * u64::from(self.keys);
                (run.producer, 0, last)
            }
            Record::CommitStarted(t) | Record::Aborted(t) => {
                (t.producer, 0, t.first.0 + (t.count - 1))
            }
            Record::Delivered { .. } | Record::DeliveredRun(_) | Record::Unexpected { .. } => {
                return Ok(())
            }
        };
        let i = usize::from(producer.0);
        if i >= self.sends.len() {
            self.sends.resize(i + 1, 0);
        }
        let sends = &mut self.sends[i];
        if self.version == V1 {
            *sends = sends.saturating_add(sent);
        }
        if last >= sends.saturating_add(SEQ_SLACK) {
            return Err(self.seq_too_far());
        }
        Ok(())
    }

    #[cold]
    fn seq_too_far(&self) -> HistoryError {
        HistoryError::Corrupt {
            path: self.path.clone(),
            index: self.index - 1,
            what: "a seq far past the sends its producer has recorded (a producer's seqs are dense from 0)",
        }
    }

    fn refill(&mut self) -> Result<bool, HistoryError> {
        if self.done {
            return Ok(false);
        }
        let rest = self.filled - self.pos;
        self.buf.copy_within(self.pos..self.filled, 0);
        self.pos = 0;
        self.filled = rest;
        while self.filled < RECORD_LEN {
            let n = self
                .file
                .read(&mut self.buf[self.filled..])
                .map_err(|source| HistoryError::Io {
                    path: self.path.clone(),
                    source,
                })?;
            if n == 0 {
                self.done = true;
                return Ok(false); // a torn last record is not a record
            }
            self.filled += n;
        }
        Ok(true)
    }
}

/// A version 2 producer history's sends per producer id: its sends and send runs, counted.
/// What cannot be decoded is left to the read that follows, which names it.
fn sends_of(path: &Path) -> io::Result<Vec<u64>> {
    let mut file = io::BufReader::with_capacity(1 << 16, File::open(path)?);
    let mut record = [0u8; RECORD_LEN];
    file.read_exact(&mut [0u8; HEADER_LEN])?;
    let mut sends = Vec::new();
    loop {
        match file.read_exact(&mut record) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(sends),
            Err(e) => return Err(e),
        }
        let (producer, n) = match Record::decode(&record) {
            None => return Ok(sends),
            Some(Ok(Record::Sent { producer, .. })) => (producer, 1),
            Some(Ok(Record::SentRun(run))) => (run.producer, u64::from(run.count)),
            Some(_) => continue,
        };
        let i = usize::from(producer.0);
        if i >= sends.len() {
            sends.resize(i + 1, 0);
        }
        sends[i] = u64::saturating_add(sends[i], n);
    }
}

impl Iterator for HistoryReader {
    type Item = Result<Record, HistoryError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}
