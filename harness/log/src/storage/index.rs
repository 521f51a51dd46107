//! The sparse offset index of one segment: `relative offset u32 | file position u32` entries,
//! one per `index_interval_bytes` of batches, each pointing at a batch header.
//!
//! The index is a hint that recovery can always rebuild from the log file, so it is never
//! fsynced on the write path; a lookup gives a position to scan forward from.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::error::{IoContext, Result};
use super::fs;

/// Bytes per index entry.
pub const INDEX_ENTRY_LEN: usize = 8;

/// One index entry: the batch whose base offset is `base + rel_offset` starts at `position`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// Base offset of the batch, relative to the segment's base offset.
    pub rel_offset: u32,
    /// Byte position of the batch header in the log file.
    pub position: u32,
}

/// The in-memory copy of a segment's index and the file it is persisted to.
#[derive(Debug)]
pub struct OffsetIndex {
    path: PathBuf,
    file: File,
    entries: Vec<IndexEntry>,
    interval: u32,
    bytes_since_entry: u64,
}

impl OffsetIndex {
    /// Creates or truncates the index file and starts it with `entries`.
    pub fn create(path: &Path, interval: u32, entries: Vec<IndexEntry>) -> Result<OffsetIndex> {
        let mut buf = Vec::with_capacity(entries.len() * INDEX_ENTRY_LEN);
        for e in &entries {
            buf.extend_from_slice(&e.rel_offset.to_be_bytes());
            buf.extend_from_slice(&e.position.to_be_bytes());
        }
        let file = fs::write_file(path, &buf)?;
        Ok(OffsetIndex {
            path: path.to_owned(),
            file,
            entries,
            interval,
            bytes_since_entry: 0,
        })
    }

    /// Opens an existing index file as is, with entries the caller has validated.
    pub fn open(path: &Path, interval: u32, entries: Vec<IndexEntry>) -> Result<OffsetIndex> {
        let file = fs::open_rw(path, false)?;
        Ok(OffsetIndex {
            path: path.to_owned(),
            file,
            entries,
            interval,
            bytes_since_entry: 0,
        })
    }

    /// Reads the entries of an index file; `None` if it is missing. Entries are not validated.
    pub fn read_entries(path: &Path) -> Result<Option<(Vec<IndexEntry>, bool)>> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).ctx(|| format!("reading index {}", path.display())),
        };
        let whole = bytes.len() % INDEX_ENTRY_LEN == 0;
        let entries = bytes
            .chunks_exact(INDEX_ENTRY_LEN)
            .map(|c| IndexEntry {
                rel_offset: u32::from_be_bytes(c[0..4].try_into().expect("4 bytes")),
                position: u32::from_be_bytes(c[4..8].try_into().expect("4 bytes")),
            })
            .collect();
        Ok(Some((entries, whole)))
    }

    /// Notes a batch appended at `position`; adds an entry once enough bytes passed since the
    /// last one.
    pub fn on_append(&mut self, rel_offset: u32, position: u32, batch_len: u64) -> Result<()> {
        if self.entries.is_empty() || self.bytes_since_entry >= u64::from(self.interval) {
            let at = (self.entries.len() * INDEX_ENTRY_LEN) as u64;
            let mut buf = [0u8; INDEX_ENTRY_LEN];
            buf[0..4].copy_from_slice(&rel_offset.to_be_bytes());
            buf[4..8].copy_from_slice(&position.to_be_bytes());
            fs::write_at(&self.file, &self.path, &buf, at)?;
            self.entries.push(IndexEntry {
                rel_offset,
                position,
            });
            self.bytes_since_entry = 0;
        }
        self.bytes_since_entry += batch_len;
        Ok(())
    }

    /// The last entry at or before `rel_offset`: where to start scanning for it.
    pub fn lookup(&self, rel_offset: u32) -> IndexEntry {
        let i = self.entries.partition_point(|e| e.rel_offset <= rel_offset);
        if i == 0 {
            IndexEntry {
                rel_offset: 0,
                position: 0,
            }
        } else {
            self.entries[i - 1]
        }
    }

    /// Sets how many bytes were appended since the last entry (after a recovery scan).
    pub fn set_bytes_since_entry(&mut self, bytes: u64) {
        self.bytes_since_entry = bytes;
    }

    /// The entries, in order.
    pub fn entries(&self) -> &[IndexEntry] {
        &self.entries
    }

    /// fsyncs the index file.
    pub fn sync(&self) -> Result<()> {
        fs::sync_file(&self.file, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_entries_and_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut idx = OffsetIndex::create(&path, 100, Vec::new()).unwrap();
        // Batches of 60 bytes with 2 records each: an entry every second batch.
        for i in 0..6u32 {
            idx.on_append(i * 2, i * 60, 60).unwrap();
        }
        let rels: Vec<u32> = idx.entries().iter().map(|e| e.rel_offset).collect();
        assert_eq!(rels, vec![0, 4, 8]);
        assert_eq!(idx.lookup(0).position, 0);
        assert_eq!(idx.lookup(5).position, 120);
        assert_eq!(idx.lookup(100).position, 240);
        let (read, whole) = OffsetIndex::read_entries(&path).unwrap().unwrap();
        assert!(whole);
        assert_eq!(read, idx.entries());
    }
}
