//! One partition: a folder of segments, the last one taking appends.
//!
//! Owns offset assignment, segment rolling, retention (by bytes and by age), reads by offset
//! and the end-offset watch that long-polling fetches wait on. Appends hold the partition lock
//! for the write; reads take a [`ReadView`] under the lock and `pread` without it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::watch;

use super::batch::{encode_batch, validate_records, BatchHeader, BATCH_HEADER_LEN};
use super::commit::{CommitTicket, Committer};
use super::config::{FsyncPolicy, LogConfig};
use super::error::{IoContext, Result, StorageError};
use super::files::OpenFiles;
use super::fs;
use super::segment::{parse_segment_name, Segment, Truncation};

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Offset of the first record appended.
    pub base_offset: u64,
    /// Offset after the last record appended.
    pub next_offset: u64,
    /// Durability ticket, when the write was registered with the committer.
    pub ticket: Option<CommitTicket>,
}

/// Whole batches read from a partition.
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// Consecutive whole batches, exactly as stored; may start before the requested offset.
    pub data: Bytes,
    /// The partition's end offset when the read started.
    pub end_offset: u64,
    /// The first offset retention kept.
    pub start_offset: u64,
}

struct State {
    segments: Vec<Segment>,
    scratch: Vec<u8>,
    /// A segment file was created in the folder since the folder was last fsynced (or
    /// registered with the committer for an fsync): a durable write must fsync the folder too,
    /// or a power loss can drop the file's name with its fsynced data.
    dir_dirty: bool,
}

impl State {
    fn active(&mut self) -> &mut Segment {
        self.segments.last_mut().expect("a partition has a segment")
    }
    fn end_offset(&self) -> u64 {
        self.segments.last().expect("a segment").next_offset()
    }
    fn start_offset(&self) -> u64 {
        self.segments[0].base_offset()
    }
}

/// What every partition of a log shares: its configuration, committer and open-file cap.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) config: Arc<LogConfig>,
    pub(crate) committer: Arc<Committer>,
    pub(crate) files: Arc<OpenFiles>,
}

/// One partition of a topic.
pub struct Partition {
    topic: String,
    id: u32,
    dir: PathBuf,
    config: Arc<LogConfig>,
    committer: Arc<Committer>,
    files: Arc<OpenFiles>,
    state: Mutex<State>,
    end: watch::Sender<u64>,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Partition {
    fn new(
        topic: &str,
        id: u32,
        dir: &Path,
        shared: &Shared,
        segments: Vec<Segment>,
        dir_dirty: bool,
    ) -> Partition {
        let end = segments.last().expect("a segment").next_offset();
        Partition {
            topic: topic.to_owned(),
            id,
            dir: dir.to_owned(),
            config: shared.config.clone(),
            committer: shared.committer.clone(),
            files: shared.files.clone(),
            state: Mutex::new(State {
                segments,
                scratch: Vec::new(),
                dir_dirty,
            }),
            end: watch::Sender::new(end),
        }
    }

    /// The partition of a topic just created, whose folder `dir` holds one empty segment file
    /// not yet made durable in it; touches no file.
    pub(crate) fn created(topic: &str, id: u32, dir: &Path, shared: &Shared) -> Partition {
        let seg = Segment::empty(dir, 0, shared.config.index_interval_bytes, &shared.files);
        Partition::new(topic, id, dir, shared, vec![seg], true)
    }

    /// Opens (recovering) the partition stored in `dir`, creating its first segment if it has
    /// none. Segment files stay closed until used.
    pub(crate) fn open(
        topic: &str,
        id: u32,
        dir: &Path,
        shared: &Shared,
    ) -> Result<(Partition, Vec<Truncation>)> {
        let (config, files) = (&shared.config, &shared.files);
        let mut bases = Vec::new();
        let mut indexes = Vec::new();
        for entry in std::fs::read_dir(dir).ctx(|| format!("listing {}", dir.display()))? {
            let entry = entry.ctx(|| format!("listing {}", dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(base) = parse_segment_name(&name) {
                bases.push(base);
            } else if let Some(stem) = name.strip_suffix(".index") {
                indexes.push((stem.to_owned(), entry.path()));
            }
        }
        bases.sort_unstable();
        // An index whose log is gone (a crash mid-retention) is garbage.
        for (stem, path) in indexes {
            if !bases.iter().any(|b| format!("{b:020}") == stem) {
                let _ = fs::remove_file(&path);
            }
        }
        let mut segments = Vec::new();
        let mut truncations = Vec::new();
        for (i, &base) in bases.iter().enumerate() {
            let last = i + 1 == bases.len();
            let (seg, t) = Segment::open(dir, base, last, config.index_interval_bytes, files)?;
            truncations.extend(t);
            segments.push(seg);
        }
        let dir_dirty = segments.is_empty();
        if dir_dirty {
            segments.push(Segment::create(dir, 0, config.index_interval_bytes, files)?);
        }
        let p = Partition::new(topic, id, dir, shared, segments, dir_dirty);
        Ok((p, truncations))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends one batch whose records section (`len u32 | bytes` per record) is `records`.
    /// With `durable`, the write is registered for an fsync even under `never`.
    pub fn append_framed(
        &self,
        records: &[u8],
        count: u32,
        durable: bool,
    ) -> Result<AppendOutcome> {
        if count == 0 {
            return Err(StorageError::InvalidBatch(
                "a batch needs at least one record".into(),
            ));
        }
        let size = (BATCH_HEADER_LEN + records.len()) as u64;
        if size > self.config.max_batch_bytes {
            return Err(StorageError::BatchTooLarge {
                size,
                max: self.config.max_batch_bytes,
            });
        }
        validate_records(records, count).map_err(|e| StorageError::InvalidBatch(e.to_string()))?;
        let policy = self.config.fsync;
        let mut guard = self.lock();
        let state = &mut *guard;
        let base_offset = state.end_offset();
        let mut scratch = std::mem::take(&mut state.scratch);
        encode_batch(&mut scratch, base_offset, now_ms(), count, records);
        let header = BatchHeader::parse(&scratch).expect("freshly encoded header");
        let active = state.active();
        if active.size() > 0 && active.size() + size > self.config.segment_bytes {
            if let Err(e) = self.roll(state, base_offset) {
                state.scratch = scratch;
                return Err(e);
            }
        }
        let result = state.active().append(&scratch, &header);
        state.scratch = scratch;
        // A failed write may have left bytes past `size`; the next append overwrites them and
        // recovery would cut them, so the offset is simply not assigned.
        result?;
        let next_offset = header.next_offset();
        let ticket = if durable || policy != FsyncPolicy::Never {
            let wake = durable || policy == FsyncPolicy::Always;
            // The folder rides along with the first registered write after a roll.
            let dir = std::mem::take(&mut state.dir_dirty).then_some(self.dir.as_path());
            let active = state.segments.last().expect("a partition has a segment");
            Some(self.committer.register(active.file(), dir, wake))
        } else {
            None
        };
        drop(guard);
        self.end.send_replace(next_offset);
        Ok(AppendOutcome {
            base_offset,
            next_offset,
            ticket,
        })
    }

    fn roll(&self, state: &mut State, base_offset: u64) -> Result<()> {
        // Under interval/always the old file's data is covered by the committer, its index
        // (written now) is not: fsync both here, as a closed segment is not written again.
        state
            .active()
            .seal(self.config.fsync != FsyncPolicy::Never)?;
        let seg = Segment::create(
            &self.dir,
            base_offset,
            self.config.index_interval_bytes,
            &self.files,
        )?;
        // The new file's name is not durable until the folder is fsynced: the next registered
        // write (a durable produce under any policy) carries the folder to the committer.
        state.dir_dirty = true;
        tracing::debug!(topic = %self.topic, partition = self.id, base_offset, "segment rolled");
        state.segments.push(seg);
        Ok(())
    }

    /// Reads whole batches from the one holding `offset`, up to `max_bytes` (at least one batch),
    /// each CRC-checked: a damaged batch is [`StorageError::Corrupt`], never data. Empty at the
    /// end of the partition.
    pub fn read(&self, offset: u64, max_bytes: u64) -> Result<ReadResult> {
        let (view, start_offset, end_offset, from) = {
            let state = self.lock();
            let start = state.start_offset();
            let end = state.end_offset();
            if offset < start || offset > end {
                return Err(self.out_of_range(offset, start, end));
            }
            if offset == end {
                return Ok(ReadResult {
                    data: Bytes::new(),
                    end_offset: end,
                    start_offset: start,
                });
            }
            let segs = &state.segments;
            let mut i = segs.partition_point(|s| s.base_offset() <= offset) - 1;
            // Skip past the unreadable tail of a damaged closed segment.
            while i + 1 < segs.len() && offset >= segs[i].next_offset() {
                i += 1;
            }
            let from = offset.max(segs[i].base_offset());
            (segs[i].read_view(from)?, start, end, from)
        };
        let data = view.read(from, max_bytes)?;
        Ok(ReadResult {
            data: Bytes::from(data),
            end_offset,
            start_offset,
        })
    }

    fn out_of_range(&self, offset: u64, start: u64, end: u64) -> StorageError {
        StorageError::OffsetOutOfRange {
            topic: self.topic.clone(),
            partition: self.id,
            offset,
            start,
            end,
        }
    }

    /// Offset the next append gets.
    pub fn end_offset(&self) -> u64 {
        self.lock().end_offset()
    }

    /// First offset still retained.
    pub fn start_offset(&self) -> u64 {
        self.lock().start_offset()
    }

    /// A receiver of the end offset, changed after every append (for long polls).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.end.subscribe()
    }

    /// Deletes the oldest closed segments past the byte or age limit; returns how many.
    pub fn enforce_retention(&self, now_ms: u64) -> Result<usize> {
        let (bytes, age) = (self.config.retention_bytes, self.config.retention_age);
        if bytes.is_none() && age.is_none() {
            return Ok(0);
        }
        let mut removed = Vec::new();
        {
            let mut state = self.lock();
            let mut total: u64 = state.segments.iter().map(|s| s.size()).sum();
            while state.segments.len() > 1 {
                let oldest = &state.segments[0];
                let too_big = bytes.is_some_and(|b| total > b);
                // Saturating: an age of u64::MAX ms (or Duration::MAX) means "keep forever",
                // not a sum that wraps to the past.
                let too_old = age.is_some_and(|a| {
                    let age_ms = u64::try_from(a.as_millis()).unwrap_or(u64::MAX);
                    oldest.max_timestamp_ms().saturating_add(age_ms) < now_ms
                });
                if !(too_big || too_old) {
                    break;
                }
                total -= oldest.size();
                removed.push(state.segments.remove(0));
            }
        }
        let n = removed.len();
        for seg in removed {
            tracing::debug!(topic = %self.topic, partition = self.id, base = seg.base_offset(), "retention deleted segment");
            seg.delete()?;
        }
        Ok(n)
    }

    /// fsyncs every segment and index of the partition, and its folder when a segment was
    /// created since (shutdown, explicit flush).
    pub fn sync(&self) -> Result<()> {
        let mut state = self.lock();
        for s in &mut state.segments {
            s.sync()?;
        }
        if state.dir_dirty {
            fs::sync_dir(&self.dir)?;
            state.dir_dirty = false;
        }
        Ok(())
    }

    /// Base offsets and sizes of the segments, oldest first (tests, inspection).
    pub fn segments(&self) -> Vec<(u64, u64)> {
        self.lock()
            .segments
            .iter()
            .map(|s| (s.base_offset(), s.size()))
            .collect()
    }

    /// The partition number.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The partition folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
