//! Consumer-group offsets: the committed offset per (group, topic, partition).
//!
//! Stored as an append-only offsets log (`consumer_offsets.log`) of CRC-framed entries
//! `len u32 | crc32c u32 | group_len u16 | group | topic_len u16 | topic | partition u32 | offset u64`,
//! replayed on open (a torn or corrupt tail is cut) and compacted by writing a snapshot to a
//! temp file, fsyncing it and renaming it over the log. Durability of each commit follows the
//! fsync policy through the committer, like appends.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::error::{IoContext, Result};
use super::files::FileSlot;
use super::fs;

const FILE_NAME: &str = "consumer_offsets.log";
const TMP_NAME: &str = "consumer_offsets.log.tmp";
/// Compact once the log holds this many entries and four times as many as live keys.
const COMPACT_AFTER: u64 = 10_000;

type Key = (String, String, u32);

struct State {
    /// Not counted in the open-file cap: one file, always open.
    file: Arc<FileSlot>,
    size: u64,
    entries: u64,
    map: HashMap<Key, u64>,
}

/// The committed offsets of every consumer group of a log.
pub struct OffsetStore {
    dir: PathBuf,
    state: Mutex<State>,
}

fn encode_entry(out: &mut Vec<u8>, group: &str, topic: &str, partition: u32, offset: u64) {
    let start = out.len();
    let len = 4 + 2 + group.len() + 2 + topic.len() + 4 + 8;
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(group.len() as u16).to_be_bytes());
    out.extend_from_slice(group.as_bytes());
    out.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    out.extend_from_slice(topic.as_bytes());
    out.extend_from_slice(&partition.to_be_bytes());
    out.extend_from_slice(&offset.to_be_bytes());
    let crc = crc32c::crc32c(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
}

/// Decodes one entry at the start of `buf`: `(key, offset, entry length)`.
fn decode_entry(buf: &[u8]) -> Option<(Key, u64, usize)> {
    let len = u32::from_be_bytes(buf.get(0..4)?.try_into().ok()?) as usize;
    let total = 4 + len;
    let body = buf.get(8..total)?;
    let crc = u32::from_be_bytes(buf.get(4..8)?.try_into().ok()?);
    if len < 4 + 2 + 2 + 4 + 8 || crc32c::crc32c(body) != crc {
        return None;
    }
    let glen = u16::from_be_bytes(body.get(0..2)?.try_into().ok()?) as usize;
    let group = std::str::from_utf8(body.get(2..2 + glen)?).ok()?;
    let rest = body.get(2 + glen..)?;
    let tlen = u16::from_be_bytes(rest.get(0..2)?.try_into().ok()?) as usize;
    let topic = std::str::from_utf8(rest.get(2..2 + tlen)?).ok()?;
    let rest = rest.get(2 + tlen..)?;
    if rest.len() != 12 {
        return None;
    }
    let partition = u32::from_be_bytes(rest[0..4].try_into().ok()?);
    let offset = u64::from_be_bytes(rest[4..12].try_into().ok()?);
    Some((
        (group.to_owned(), topic.to_owned(), partition),
        offset,
        total,
    ))
}

impl OffsetStore {
    /// Opens (replaying and repairing) or creates the offsets log in `dir`.
    pub fn open(dir: &Path) -> Result<OffsetStore> {
        let path = dir.join(FILE_NAME);
        let _ = fs::remove_file(&dir.join(TMP_NAME));
        let file = fs::open_rw(&path, true)?;
        let bytes = std::fs::read(&path).ctx(|| format!("reading {}", path.display()))?;
        let mut map = HashMap::new();
        let mut pos = 0usize;
        let mut entries = 0u64;
        while pos < bytes.len() {
            match decode_entry(&bytes[pos..]) {
                Some((key, offset, len)) => {
                    map.insert(key, offset);
                    pos += len;
                    entries += 1;
                }
                None => {
                    tracing::warn!(
                        file = %path.display(),
                        position = pos,
                        dropped_bytes = bytes.len() - pos,
                        "offsets log: torn or corrupt tail truncated"
                    );
                    fs::set_len(&file, &path, pos as u64)?;
                    break;
                }
            }
        }
        Ok(OffsetStore {
            dir: dir.to_owned(),
            state: Mutex::new(State {
                file: FileSlot::open(path, file, None),
                size: pos as u64,
                entries,
                map,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `offset` as committed; returns the file to register for durability.
    pub(crate) fn commit(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> Result<Arc<FileSlot>> {
        let mut s = self.lock();
        let mut buf = Vec::with_capacity(32 + group.len() + topic.len());
        encode_entry(&mut buf, group, topic, partition, offset);
        let at = s.size;
        s.file.write_at(&buf, at)?;
        s.size += buf.len() as u64;
        s.entries += 1;
        s.map
            .insert((group.to_owned(), topic.to_owned(), partition), offset);
        if s.entries > COMPACT_AFTER && s.entries > 4 * s.map.len() as u64 {
            self.compact(&mut s)?;
        }
        Ok(s.file.clone())
    }

    /// Rewrites the log as one entry per key: temp file, fsync, rename, fsync the folder.
    fn compact(&self, s: &mut State) -> Result<()> {
        let tmp = self.dir.join(TMP_NAME);
        let path = self.dir.join(FILE_NAME);
        let mut buf = Vec::new();
        for ((g, t, p), o) in &s.map {
            encode_entry(&mut buf, g, t, *p, *o);
        }
        let file = fs::write_file(&tmp, &buf)?;
        fs::sync_file(&file, &tmp)?;
        drop(file);
        fs::rename(&tmp, &path)?;
        fs::sync_dir(&self.dir)?;
        s.file = FileSlot::open(path.clone(), fs::open_rw(&path, true)?, None);
        s.size = buf.len() as u64;
        s.entries = s.map.len() as u64;
        Ok(())
    }

    /// The committed offset, if the group ever committed one for this partition.
    pub fn committed(&self, group: &str, topic: &str, partition: u32) -> Option<u64> {
        self.lock()
            .map
            .get(&(group.to_owned(), topic.to_owned(), partition))
            .copied()
    }

    /// fsyncs the offsets log.
    pub fn sync(&self) -> Result<()> {
        let file = self.lock().file.clone();
        file.sync()
    }

    /// Entries in the current log file (tests).
    pub fn entries_on_disk(&self) -> u64 {
        self.lock().entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = OffsetStore::open(dir.path()).unwrap();
        assert_eq!(store.committed("g", "t", 0), None);
        store.commit("g", "t", 0, 5).unwrap();
        store.commit("g", "t", 0, 9).unwrap();
        store.commit("g", "t", 1, 3).unwrap();
        store.commit("h", "t", 0, 1).unwrap();
        drop(store);
        let store = OffsetStore::open(dir.path()).unwrap();
        assert_eq!(store.committed("g", "t", 0), Some(9));
        assert_eq!(store.committed("g", "t", 1), Some(3));
        assert_eq!(store.committed("h", "t", 0), Some(1));
        assert_eq!(store.committed("h", "t", 1), None);
    }

    #[test]
    fn torn_tail_is_cut_and_earlier_commits_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = OffsetStore::open(dir.path()).unwrap();
        store.commit("g", "t", 0, 1).unwrap();
        store.commit("g", "t", 0, 2).unwrap();
        drop(store);
        let path = dir.path().join(FILE_NAME);
        let len = std::fs::metadata(&path).unwrap().len();
        // Cut the second entry in half: the first commit must be what is left.
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 7).unwrap();
        let store = OffsetStore::open(dir.path()).unwrap();
        assert_eq!(store.committed("g", "t", 0), Some(1));
        store.commit("g", "t", 0, 3).unwrap();
        drop(store);
        let store = OffsetStore::open(dir.path()).unwrap();
        assert_eq!(store.committed("g", "t", 0), Some(3));
        assert_eq!(store.entries_on_disk(), 2);
    }

    #[test]
    fn compaction_keeps_latest_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let store = OffsetStore::open(dir.path()).unwrap();
        for i in 0..(COMPACT_AFTER + 10) {
            store.commit("g", "t", (i % 3) as u32, i).unwrap();
        }
        assert!(store.entries_on_disk() < 20, "{}", store.entries_on_disk());
        drop(store);
        assert!(!dir.path().join(TMP_NAME).exists());
        let store = OffsetStore::open(dir.path()).unwrap();
        let last = COMPACT_AFTER + 9;
        for p in 0..3u32 {
            let want = (0..=last).filter(|i| i % 3 == u64::from(p)).max();
            assert_eq!(store.committed("g", "t", p), want);
        }
    }
}
