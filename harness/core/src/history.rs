//! The history: what each worker saw, one fixed-size record per event, one file per worker.
//!
//! A file is a 32-byte header followed by 32-byte records (little endian):
//! `kind u8 | flags u8 | producer u16 | key u32 | seq u64 | t1 u64 | t2 u64`.
//! Writers map the file and store records straight into the page cache, so a worker killed
//! with SIGKILL loses nothing it had written: the kernel owns those pages, not the process.
//! The file is grown ahead of the writer and zero-filled, and a record's `kind` byte is stored
//! last, so a reader stops at the first zero kind: the end of the last whole record.
//! See `docs/history-format.md` for the field meanings per kind.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{compiler_fence, Ordering};

use memmap2::MmapMut;

use crate::ids::{Key, ProducerId, Seq};

pub const HEADER_LEN: usize = 32;
pub const RECORD_LEN: usize = 32;
const FILE_MAGIC: &[u8; 4] = b"MQBH";
const FILE_VERSION: u32 = 1;
const GROW_BYTES: u64 = 8 << 20;

/// Which worker wrote a history file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Producer = 1,
    Consumer = 2,
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

    /// Decodes one record; `None` for the zero record that marks the end.
    #[inline]
    pub fn decode(b: &[u8]) -> Option<Result<Record, (u8, u8)>> {
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        let producer = ProducerId(u16::from_le_bytes([b[2], b[3]]));
        let key = Key(u32::from_le_bytes(b[4..8].try_into().unwrap()));
        let seq = Seq(u64_at(8));
        let (t1, t2) = (u64_at(16), u64_at(24));
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
            other => return Some(Err((other, b[1]))),
        }))
    }
}

/// Header of a history file: who wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    pub role: Role,
    pub worker: u16,
    pub run_id: u32,
}

/// Appends records to a memory-mapped history file.
pub struct HistoryWriter {
    file: File,
    map: MmapMut,
    len: usize,
    path: PathBuf,
}

impl HistoryWriter {
    /// Creates (or truncates) the history file at `path`.
    pub fn create(path: &Path, header: FileHeader) -> io::Result<HistoryWriter> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        file.set_len(GROW_BYTES)?;
        // SAFETY: the file is ours alone while the run lasts; readers open it after the writer ends
        // or read only up to the last whole record.
        let mut map = unsafe { MmapMut::map_mut(&file)? };
        let h = &mut map[..HEADER_LEN];
        h[0..4].copy_from_slice(FILE_MAGIC);
        h[4..8].copy_from_slice(&FILE_VERSION.to_le_bytes());
        h[8] = header.role as u8;
        h[10..12].copy_from_slice(&header.worker.to_le_bytes());
        h[12..16].copy_from_slice(&header.run_id.to_le_bytes());
        Ok(HistoryWriter {
            file,
            map,
            len: HEADER_LEN,
            path: path.to_owned(),
        })
    }

    /// Appends one record. The kind byte is stored after the rest, so a reader never sees half a record.
    #[inline]
    pub fn push(&mut self, r: Record) -> io::Result<()> {
        if self.len + RECORD_LEN > self.map.len() {
            self.grow()?;
        }
        let b = r.encode();
        let dst = &mut self.map[self.len..self.len + RECORD_LEN];
        dst[1..].copy_from_slice(&b[1..]);
        compiler_fence(Ordering::Release);
        dst[0] = b[0];
        self.len += RECORD_LEN;
        Ok(())
    }

    fn grow(&mut self) -> io::Result<()> {
        let new_len = self.map.len() as u64 + GROW_BYTES.max(self.map.len() as u64 / 2);
        self.file.set_len(new_len)?;
        // SAFETY: as in `create`; the old map is dropped when replaced.
        self.map = unsafe { MmapMut::map_mut(&self.file)? };
        Ok(())
    }

    /// Number of records written so far.
    pub fn records(&self) -> u64 {
        ((self.len - HEADER_LEN) / RECORD_LEN) as u64
    }

    /// Trims the zero tail so the file holds exactly the records written.
    pub fn finish(self) -> io::Result<PathBuf> {
        let HistoryWriter {
            file,
            map,
            len,
            path,
        } = self;
        drop(map);
        file.set_len(len as u64)?;
        Ok(path)
    }
}

/// Why a history file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("reading history {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is not an mq-bench history file (bad magic or version)")]
    NotHistory { path: PathBuf },
    #[error("{path}: record {index} has unknown kind {kind} (flags {flags})")]
    BadRecord {
        path: PathBuf,
        index: u64,
        kind: u8,
        flags: u8,
    },
}

/// Reads a history file sequentially, in large chunks, up to the last whole record.
pub struct HistoryReader {
    file: File,
    path: PathBuf,
    pub header: FileHeader,
    buf: Vec<u8>,
    pos: usize,
    filled: usize,
    index: u64,
    done: bool,
}

impl HistoryReader {
    pub fn open(path: &Path) -> Result<HistoryReader, HistoryError> {
        let io_err = |source| HistoryError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = File::open(path).map_err(io_err)?;
        let mut h = [0u8; HEADER_LEN];
        file.read_exact(&mut h).map_err(io_err)?;
        if &h[0..4] != FILE_MAGIC || u32::from_le_bytes(h[4..8].try_into().unwrap()) != FILE_VERSION
        {
            return Err(HistoryError::NotHistory {
                path: path.to_owned(),
            });
        }
        let role = match h[8] {
            1 => Role::Producer,
            2 => Role::Consumer,
            _ => {
                return Err(HistoryError::NotHistory {
                    path: path.to_owned(),
                })
            }
        };
        let header = FileHeader {
            role,
            worker: u16::from_le_bytes([h[10], h[11]]),
            run_id: u32::from_le_bytes(h[12..16].try_into().unwrap()),
        };
        Ok(HistoryReader {
            file,
            path: path.to_owned(),
            header,
            buf: vec![0; 1 << 20],
            pos: 0,
            filled: 0,
            index: 0,
            done: false,
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
        match Record::decode(b) {
            None => {
                self.done = true;
                self.pos = self.filled;
                Ok(None)
            }
            Some(Ok(r)) => Ok(Some(r)),
            Some(Err((kind, flags))) => Err(HistoryError::BadRecord {
                path: self.path.clone(),
                index: self.index - 1,
                kind,
                flags,
            }),
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
        // Keep whole records only in view; a partial one stays for the next refill.
        Ok(true)
    }
}

impl Iterator for HistoryReader {
    type Item = Result<Record, HistoryError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> FileHeader {
        FileHeader {
            role: Role::Producer,
            worker: 3,
            run_id: 42,
        }
    }

    #[test]
    fn writes_and_reads_back_every_kind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p0.hist");
        let recs = vec![
            Record::Sent {
                producer: ProducerId(3),
                seq: Seq(0),
                key: Key(9),
                intended_ns: 10,
            },
            Record::Acked {
                producer: ProducerId(3),
                seq: Seq(0),
                at_ns: 20,
                intended_ns: 10,
            },
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
            Record::Delivered {
                producer: ProducerId(3),
                seq: Seq(0),
                key: Key(9),
                sent_ns: 10,
                at_ns: 40,
            },
            Record::Unexpected { at_ns: 50 },
        ];
        let mut w = HistoryWriter::create(&path, header()).unwrap();
        for r in &recs {
            w.push(*r).unwrap();
        }
        w.finish().unwrap();
        let r = HistoryReader::open(&path).unwrap();
        assert_eq!(r.header, header());
        let back: Vec<Record> = r.map(|r| r.unwrap()).collect();
        assert_eq!(back, recs);
    }

    #[test]
    fn unfinished_file_reads_up_to_last_record_and_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p0.hist");
        let mut w = HistoryWriter::create(&path, header()).unwrap();
        // Cross a grow boundary, then "crash": never call finish.
        let n = GROW_BYTES / RECORD_LEN as u64 + 10;
        for i in 0..n {
            w.push(Record::Sent {
                producer: ProducerId(0),
                seq: Seq(i),
                key: Key(0),
                intended_ns: i,
            })
            .unwrap();
        }
        std::mem::forget(w);
        assert_eq!(HistoryReader::open(&path).unwrap().count() as u64, n);

        // A torn final record (file cut mid-record) is not read.
        let len = (HEADER_LEN + 5 * RECORD_LEN + 7) as u64;
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len)
            .unwrap();
        assert_eq!(HistoryReader::open(&path).unwrap().count(), 5);
    }
}
