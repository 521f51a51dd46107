//! One segment: a log file of consecutive batches named by its base offset
//! (`00000000000000000000.log`) and its sparse index (`….index`).
//!
//! Owns appending to the file, opening it (with what `recover.rs` finds: a torn or corrupt tail
//! truncated, a missing or damaged index rebuilt) and reading whole batches from it with `pread`.

use std::fs::File;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::batch::{check_batch, BatchHeader};
use super::error::{IoContext, Result, StorageError};
use super::files::{FileSlot, OpenFiles};
use super::fs;
use super::index::OffsetIndex;
use super::recover::{cut_or_report, read_header_at, reconcile_index, scan, scan_past_index};

/// The log and index file paths of the segment starting at `base_offset` in `dir`.
pub fn segment_paths(dir: &Path, base_offset: u64) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{base_offset:020}.log")),
        dir.join(format!("{base_offset:020}.index")),
    )
}

/// The base offset named by a segment log file name, if it is one.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".log")?;
    if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
        stem.parse().ok()
    } else {
        None
    }
}

/// What recovery cut from the end of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The segment log file.
    pub path: PathBuf,
    /// Where the first bad batch started: the file's new length.
    pub position: u64,
    /// How many bytes were dropped.
    pub dropped_bytes: u64,
    /// Why the batch at `position` was refused.
    pub reason: String,
}

/// One segment: the last of a partition takes appends, every one serves reads. Its log file
/// is opened on demand, within the log's cap on open files.
#[derive(Debug)]
pub struct Segment {
    base_offset: u64,
    log_path: PathBuf,
    index_path: PathBuf,
    file: Arc<FileSlot>,
    size: u64,
    next_offset: u64,
    max_timestamp_ms: u64,
    index: OffsetIndex,
    /// Appended to since the last [`Segment::sync`].
    unsynced: bool,
    /// The index file was written at a roll without an fsync.
    index_unsynced: bool,
}

/// A snapshot of where to read in a segment, taken under the partition lock and used without it.
#[derive(Debug, Clone)]
pub struct ReadView {
    file: Arc<File>,
    path: PathBuf,
    start_position: u64,
    end: u64,
}

impl Segment {
    /// Creates an empty segment file starting at `base_offset`. Its name is durable only once
    /// the folder is fsynced (the caller's job).
    pub(crate) fn create(
        dir: &Path,
        base_offset: u64,
        interval: u32,
        files: &Arc<OpenFiles>,
    ) -> Result<Segment> {
        let (log_path, _) = segment_paths(dir, base_offset);
        let file = fs::open_rw(&log_path, true)?;
        fs::set_len(&file, &log_path, 0)?;
        let mut seg = Segment::empty(dir, base_offset, interval, files);
        seg.file = FileSlot::open(log_path, file, Some(files));
        Ok(seg)
    }

    /// The segment of an empty file that exists at `dir` (a topic just created), without
    /// touching the disk.
    pub(crate) fn empty(
        dir: &Path,
        base_offset: u64,
        interval: u32,
        files: &Arc<OpenFiles>,
    ) -> Segment {
        let (log_path, index_path) = segment_paths(dir, base_offset);
        Segment {
            base_offset,
            file: FileSlot::lazy(log_path.clone(), files),
            log_path,
            index_path,
            size: 0,
            next_offset: base_offset,
            max_timestamp_ms: 0,
            index: OffsetIndex::new(interval, Vec::new()),
            unsynced: false,
            index_unsynced: false,
        }
    }

    /// Opens an existing segment, leaving its file closed until used. The last segment of a
    /// partition (`last`) is fully validated and truncated at its first torn or corrupt batch,
    /// and its index rebuilt in memory; an older one is trusted up to its index and scanned
    /// from its last index entry (reads check CRCs). An older segment's missing or damaged
    /// index is rebuilt.
    pub(crate) fn open(
        dir: &Path,
        base_offset: u64,
        last: bool,
        interval: u32,
        files: &Arc<OpenFiles>,
    ) -> Result<(Segment, Option<Truncation>)> {
        let (log_path, index_path) = segment_paths(dir, base_offset);
        let file = fs::open_rw(&log_path, false)?;
        let len = file
            .metadata()
            .ctx(|| format!("reading size of {}", log_path.display()))?
            .len();
        let segment = |size, next_offset, max_timestamp_ms, index| Segment {
            base_offset,
            file: FileSlot::lazy(log_path.clone(), files),
            log_path: log_path.clone(),
            index_path: index_path.clone(),
            size,
            next_offset,
            max_timestamp_ms,
            index,
            unsynced: false,
            index_unsynced: false,
        };
        // The active segment's index is never written while it is active: do not read it.
        let disk_index = if last {
            None
        } else {
            OffsetIndex::read_entries(&index_path)?
        };

        // An older segment with a plausible index: check its last entry and scan only past it.
        if let Some((entries, true)) = &disk_index {
            if let Some(s) = scan_past_index(&file, &log_path, entries, len, interval, base_offset)?
            {
                let index = OffsetIndex::new(interval, entries.clone());
                return Ok((segment(len, s.next_offset, s.max_timestamp_ms, index), None));
            }
        }

        // Full validation: the last segment always, an older one whose index did not hold up.
        let s = scan(&file, 0, base_offset, len, true, interval, base_offset)
            .ctx(|| format!("validating {}", log_path.display()))?;
        let truncation = match &s.error {
            Some(reason) => Some(cut_or_report(&file, &log_path, &s, len, reason, last)?),
            None => None,
        };
        let mut index = OffsetIndex::new(interval, s.entries);
        index.set_bytes_since_entry(s.bytes_since_entry);
        if !last {
            reconcile_index(&index, disk_index.as_ref(), &index_path, len)?;
        }
        Ok((
            segment(s.valid_end, s.next_offset, s.max_timestamp_ms, index),
            truncation,
        ))
    }

    /// Appends one encoded, validated batch whose header is `h` at the end of the file.
    pub(crate) fn append(&mut self, batch: &[u8], h: &BatchHeader) -> Result<()> {
        debug_assert_eq!(h.base_offset, self.next_offset);
        self.file.write_at(batch, self.size)?;
        let rel = (h.base_offset - self.base_offset) as u32;
        let position = self.size as u32;
        self.size += batch.len() as u64;
        self.next_offset = h.next_offset();
        self.max_timestamp_ms = self.max_timestamp_ms.max(h.timestamp_ms);
        self.unsynced = true;
        self.index.on_append(rel, position, batch.len() as u64);
        Ok(())
    }

    /// Closes the segment to appends (a roll): writes its index file, and with `durable`
    /// fsyncs the index and the log file now.
    pub(crate) fn seal(&mut self, durable: bool) -> Result<()> {
        let index = self.index.write(&self.index_path)?;
        if durable {
            fs::sync_file(&index, &self.index_path)?;
            self.file.sync()?;
            self.unsynced = false;
        } else {
            self.index_unsynced = true;
        }
        Ok(())
    }

    /// Where to start reading for `offset` (which this segment holds); opens the file if it
    /// is closed.
    pub(crate) fn read_view(&self, offset: u64) -> Result<ReadView> {
        let rel = (offset.saturating_sub(self.base_offset)).min(u64::from(u32::MAX)) as u32;
        Ok(ReadView {
            file: self.file.get()?,
            path: self.log_path.clone(),
            start_position: u64::from(self.index.lookup(rel).position),
            end: self.size,
        })
    }

    /// fsyncs the log file and a written index, if either changed since the last call.
    pub(crate) fn sync(&mut self) -> Result<()> {
        if self.unsynced {
            self.file.sync()?;
            self.unsynced = false;
        }
        if self.index_unsynced {
            let index = fs::open_rw(&self.index_path, false)?;
            fs::sync_file(&index, &self.index_path)?;
            self.index_unsynced = false;
        }
        Ok(())
    }

    /// Removes both files (retention). Readers holding a [`ReadView`] keep reading the
    /// unlinked file.
    pub(crate) fn delete(self) -> Result<()> {
        self.file.mark_deleted();
        if !fs::remove_file(&self.log_path)? {
            return Err(StorageError::io(
                format!("deleting segment {}", self.log_path.display()),
                std::io::ErrorKind::NotFound.into(),
            ));
        }
        fs::remove_file(&self.index_path).map(|_| ())
    }

    /// Offset of the first record.
    pub fn base_offset(&self) -> u64 {
        self.base_offset
    }
    /// Offset after the last record.
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }
    /// Bytes of valid batches.
    pub fn size(&self) -> u64 {
        self.size
    }
    /// Newest batch timestamp, ms since the epoch (0 when empty).
    pub fn max_timestamp_ms(&self) -> u64 {
        self.max_timestamp_ms
    }
    /// The log file's slot (what the committer fsyncs).
    pub(crate) fn file(&self) -> &Arc<FileSlot> {
        &self.file
    }
    /// The log file path.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }
}

impl ReadView {
    /// Reads whole batches starting with the one holding `offset`, up to `max_bytes` (at least
    /// one whole batch, so a consumer always progresses), each CRC-checked. Empty if the segment
    /// ends first; [`StorageError::Corrupt`] if the first batch fails its check.
    pub fn read(&self, offset: u64, max_bytes: u64) -> Result<Vec<u8>> {
        let mut pos = self.start_position;
        let first = loop {
            if pos >= self.end {
                return Ok(Vec::new());
            }
            let h = read_header_at(&self.file, &self.path, pos)?;
            if h.next_offset() > offset {
                break h;
            }
            pos += h.total_len();
        };
        let want = (self.end - pos).min(max_bytes.max(first.total_len()));
        let mut buf = vec![0u8; want as usize];
        self.file
            .read_exact_at(&mut buf, pos)
            .ctx(|| format!("reading {} at {pos}", self.path.display()))?;
        // Keep whole batches that pass their CRC: a closed segment is trusted at open without a
        // rescan, so this is where damage on disk is caught. Serve the good batches before a bad
        // one; the read that starts at the bad one gets the error.
        let mut keep = 0usize;
        let mut damage = None;
        while let Some(h) = buf.get(keep..).and_then(BatchHeader::parse) {
            let end = keep as u64 + h.total_len();
            if end > buf.len() as u64 {
                break;
            }
            if let Err(e) = check_batch(&buf[keep..end as usize]) {
                damage = Some(e.to_string());
                break;
            }
            keep = end as usize;
        }
        if keep == 0 {
            return Err(StorageError::Corrupt {
                path: self.path.clone(),
                position: pos,
                reason: damage
                    .unwrap_or_else(|| "batch header does not describe a whole batch".into()),
            });
        }
        buf.truncate(keep);
        Ok(buf)
    }
}
