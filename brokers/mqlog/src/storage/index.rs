//! The sparse offset index of one segment: `relative offset u32 | file position u32` entries,
//! one per `index_interval_bytes` of batches, each pointing at a batch header.
//!
//! The index lives in memory; it is written to its file (`….index`) whole when its segment
//! closes (a roll) or is rebuilt at open, never on the write path, so the active segment holds
//! no index file open. It is a hint that recovery can always rebuild from the log file (the
//! last segment is always rescanned); a lookup gives a position to scan forward from.

use std::fs::File;
use std::path::Path;

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

/// A segment's index entries, and how far the last append is from the last entry.
#[derive(Debug)]
pub struct OffsetIndex {
    entries: Vec<IndexEntry>,
    interval: u32,
    bytes_since_entry: u64,
}

impl OffsetIndex {
    /// An index of `entries`, adding one per `interval` bytes of appends.
    pub fn new(interval: u32, entries: Vec<IndexEntry>) -> OffsetIndex {
        OffsetIndex {
            entries,
            interval,
            bytes_since_entry: 0,
        }
    }

    /// Reads the entries of an index file; `None` if it is missing. Entries are not validated;
    /// the flag says whether the file held whole entries only.
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

    /// Writes every entry to `path` (created or truncated); returns the file, for an fsync.
    pub fn write(&self, path: &Path) -> Result<File> {
        let mut buf = Vec::with_capacity(self.entries.len() * INDEX_ENTRY_LEN);
        for e in &self.entries {
            buf.extend_from_slice(&e.rel_offset.to_be_bytes());
            buf.extend_from_slice(&e.position.to_be_bytes());
        }
        fs::write_file(path, &buf)
    }

    /// Notes a batch appended at `position`; adds an entry once enough bytes passed since the
    /// last one.
    pub fn on_append(&mut self, rel_offset: u32, position: u32, batch_len: u64) {
        if self.entries.is_empty() || self.bytes_since_entry >= u64::from(self.interval) {
            self.entries.push(IndexEntry {
                rel_offset,
                position,
            });
            self.bytes_since_entry = 0;
        }
        self.bytes_since_entry += batch_len;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_entries_and_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut idx = OffsetIndex::new(100, Vec::new());
        // Batches of 60 bytes with 2 records each: an entry every second batch.
        for i in 0..6u32 {
            idx.on_append(i * 2, i * 60, 60);
        }
        let rels: Vec<u32> = idx.entries().iter().map(|e| e.rel_offset).collect();
        assert_eq!(rels, vec![0, 4, 8]);
        assert_eq!(idx.lookup(0).position, 0);
        assert_eq!(idx.lookup(5).position, 120);
        assert_eq!(idx.lookup(100).position, 240);
        assert_eq!(OffsetIndex::read_entries(&path).unwrap(), None);
        idx.write(&path).unwrap();
        let (read, whole) = OffsetIndex::read_entries(&path).unwrap().unwrap();
        assert!(whole);
        assert_eq!(read, idx.entries());
    }
}
