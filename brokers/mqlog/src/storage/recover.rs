//! What a segment file holds after a crash: scanning its batches (CRC, offsets), trusting a
//! closed segment's index when it holds up, cutting the last segment's torn tail, and rebuilding
//! a missing or damaged index from the log.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::batch::{check_batch, BatchHeader, BATCH_HEADER_LEN};
use super::error::{IoContext, Result, StorageError};
use super::fs;
use super::index::{IndexEntry, OffsetIndex};
use super::segment::Truncation;

/// Result of scanning a run of batches.
pub(super) struct Scan {
    pub(super) valid_end: u64,
    pub(super) next_offset: u64,
    pub(super) max_timestamp_ms: u64,
    pub(super) entries: Vec<IndexEntry>,
    pub(super) bytes_since_entry: u64,
    pub(super) error: Option<String>,
}

/// Reads batches from `from` up to `len` in `file`, checking that each starts at the expected
/// offset (and its CRC when `verify`), and builds the index entries an appender would have made.
pub(super) fn scan(
    file: &File,
    from: u64,
    expect_offset: u64,
    len: u64,
    verify: bool,
    interval: u32,
    base_offset: u64,
) -> std::io::Result<Scan> {
    let mut reader = BufReader::with_capacity(256 << 10, file);
    reader.seek(SeekFrom::Start(from))?;
    let mut out = Scan {
        valid_end: from,
        next_offset: expect_offset,
        max_timestamp_ms: 0,
        entries: Vec::new(),
        bytes_since_entry: 0,
        error: None,
    };
    let mut buf = vec![0u8; BATCH_HEADER_LEN];
    let mut pos = from;
    while pos < len {
        let remaining = len - pos;
        if remaining < BATCH_HEADER_LEN as u64 {
            out.error = Some(format!("torn batch header: {remaining} bytes left"));
            break;
        }
        buf.resize(BATCH_HEADER_LEN, 0);
        reader.read_exact(&mut buf)?;
        let Some(h) = BatchHeader::parse(&buf) else {
            out.error = Some("implausible batch header".into());
            break;
        };
        if h.total_len() > remaining {
            out.error = Some(format!(
                "torn batch: {} bytes promised, {remaining} left",
                h.total_len()
            ));
            break;
        }
        if h.base_offset != out.next_offset {
            out.error = Some(format!(
                "batch base offset {} where {} was expected",
                h.base_offset, out.next_offset
            ));
            break;
        }
        let rel = h.base_offset - base_offset;
        if rel > u64::from(u32::MAX) {
            out.error = Some("offset too far from the segment base".into());
            break;
        }
        if verify {
            buf.resize(h.total_len() as usize, 0);
            reader.read_exact(&mut buf[BATCH_HEADER_LEN..])?;
            if let Err(e) = check_batch(&buf) {
                out.error = Some(e.to_string());
                break;
            }
        } else {
            reader.seek_relative((h.total_len() - BATCH_HEADER_LEN as u64) as i64)?;
        }
        if out.entries.is_empty() || out.bytes_since_entry >= u64::from(interval) {
            out.entries.push(IndexEntry {
                rel_offset: rel as u32,
                position: pos as u32,
            });
            out.bytes_since_entry = 0;
        }
        out.bytes_since_entry += h.total_len();
        pos += h.total_len();
        out.valid_end = pos;
        out.next_offset = h.next_offset();
        out.max_timestamp_ms = out.max_timestamp_ms.max(h.timestamp_ms);
    }
    Ok(out)
}

/// Whether index entries are plausible for a log file of `len` bytes.
fn entries_plausible(entries: &[IndexEntry], len: u64) -> bool {
    entries
        .first()
        .is_none_or(|e| e.position == 0 && e.rel_offset == 0)
        && entries
            .windows(2)
            .all(|w| w[0].rel_offset < w[1].rel_offset && w[0].position < w[1].position)
        && entries.iter().all(|e| u64::from(e.position) < len)
}

pub(super) fn read_header_at(file: &File, path: &Path, pos: u64) -> Result<BatchHeader> {
    let mut buf = [0u8; BATCH_HEADER_LEN];
    file.read_exact_at(&mut buf, pos)
        .ctx(|| format!("reading batch header in {} at {pos}", path.display()))?;
    BatchHeader::parse(&buf).ok_or_else(|| StorageError::Corrupt {
        path: path.to_owned(),
        position: pos,
        reason: "implausible batch header".into(),
    })
}

/// A closed segment whose index looks plausible: if its last entry points at the batch it
/// names, only what follows it is scanned. None when the index does not hold up (or the tail
/// after it is damaged): the caller validates the whole file.
pub(super) fn scan_past_index(
    file: &File,
    log_path: &Path,
    entries: &[IndexEntry],
    len: u64,
    interval: u32,
    base_offset: u64,
) -> Result<Option<Scan>> {
    if !entries_plausible(entries, len) {
        return Ok(None);
    }
    let start = entries.last().copied().unwrap_or(IndexEntry {
        rel_offset: 0,
        position: 0,
    });
    // Saturating: the base comes from a file name, the entry from disk.
    let start_offset = base_offset.saturating_add(u64::from(start.rel_offset));
    let ok = len == 0
        || read_header_at(file, log_path, u64::from(start.position))
            .map(|h| h.base_offset == start_offset)
            .unwrap_or(false);
    if !ok {
        return Ok(None);
    }
    let s = scan(
        file,
        u64::from(start.position),
        start_offset,
        len,
        false,
        interval,
        base_offset,
    )
    .ctx(|| format!("scanning {}", log_path.display()))?;
    Ok(s.error.is_none().then_some(s))
}

/// A damaged tail: the last segment is cut at the end of its last whole batch (a torn write);
/// an older one is left as it is and served up to the damage (cutting it would leave an offset
/// gap before the next segment).
pub(super) fn cut_or_report(
    file: &File,
    log_path: &Path,
    s: &Scan,
    len: u64,
    reason: &str,
    last: bool,
) -> Result<Truncation> {
    let t = Truncation {
        path: log_path.to_owned(),
        position: s.valid_end,
        dropped_bytes: len - s.valid_end,
        reason: reason.to_owned(),
    };
    if last {
        tracing::warn!(
            segment = %log_path.display(),
            position = t.position,
            dropped_bytes = t.dropped_bytes,
            next_offset = s.next_offset,
            reason = %reason,
            "recovery truncated a torn or corrupt tail"
        );
        fs::set_len(file, log_path, s.valid_end)?;
        fs::sync_file(file, log_path)?;
    } else {
        tracing::warn!(
            segment = %log_path.display(),
            position = t.position,
            unreadable_bytes = t.dropped_bytes,
            reason = %reason,
            "corrupt batch in a closed segment; records after it are not served"
        );
    }
    Ok(t)
}

/// A closed segment's index file, made to match what scanning its log found.
pub(super) fn reconcile_index(
    index: &OffsetIndex,
    on_disk: Option<&(Vec<IndexEntry>, bool)>,
    index_path: &Path,
    len: u64,
) -> Result<()> {
    match on_disk {
        Some((entries, true)) if entries.as_slice() == index.entries() => return Ok(()),
        Some((entries, _)) if index.entries().starts_with(entries) => {
            tracing::debug!(index = %index_path.display(), "index behind its log; extended");
        }
        Some(_) => {
            tracing::warn!(index = %index_path.display(), "damaged index rebuilt from its log")
        }
        None if len > 0 => {
            tracing::warn!(index = %index_path.display(), "missing index rebuilt from its log")
        }
        None => {}
    }
    index.write(index_path).map(drop)
}
