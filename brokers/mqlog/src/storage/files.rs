//! The bounded set of open files: each segment's log file is reached through a [`FileSlot`]
//! that opens it on first use, and [`OpenFiles`] closes the least recently used ones past its
//! cap (the clock algorithm: a slot used since the hand last passed gets a second chance). So a
//! log with any number of partitions and segments holds at most `cap` segment files open, plus
//! those a read or an fsync is using at that moment.

use std::collections::VecDeque;
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError, Weak};

use super::error::{Result, StorageError};
use super::fs;

struct Ring {
    /// Slots that opened a file, oldest first; entries of dropped or closed slots are skipped.
    slots: VecDeque<Weak<FileSlot>>,
    /// Files the slots hold open.
    open: usize,
}

/// The cap on open segment files, shared by every slot of a log.
pub(crate) struct OpenFiles {
    cap: usize,
    ring: Mutex<Ring>,
}

impl OpenFiles {
    /// Keeps at most `cap` (at least 1) files open.
    pub(crate) fn new(cap: usize) -> Arc<OpenFiles> {
        Arc::new(OpenFiles {
            cap: cap.max(1),
            ring: Mutex::new(Ring {
                slots: VecDeque::new(),
                open: 0,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Files held open now.
    pub(crate) fn open(&self) -> usize {
        self.lock().open
    }

    /// The cap.
    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    /// Counts a file a slot opened; called under the slot's lock, so a close of that file
    /// (which takes the slot's lock first) always comes after the count.
    fn opened(&self) {
        self.lock().open += 1;
    }

    /// Puts `slot`, which just opened its file, in the ring, then closes others until the
    /// count is within the cap.
    fn admit(&self, slot: &Arc<FileSlot>) {
        // Slots upgraded below are dropped after the ring's lock: the last reference to a slot
        // dropping here would run its Drop, which takes that lock.
        let mut upgraded = Vec::new();
        let mut ring = self.lock();
        ring.slots.push_back(Arc::downgrade(slot));
        // Each slot gets at most one second chance and one busy skip per pass; past that the
        // cap is exceeded for a moment rather than waiting on a slot in use.
        let mut budget = 2 * ring.slots.len();
        while ring.open > self.cap && budget > 0 {
            budget -= 1;
            let Some(weak) = ring.slots.pop_front() else {
                break;
            };
            let Some(s) = weak.upgrade() else { continue };
            upgraded.push(s.clone());
            if s.used.swap(false, Ordering::Relaxed) {
                ring.slots.push_back(weak);
                continue;
            }
            // Never wait for a slot here: its holder may be waiting for this ring.
            let mut file = match s.file.try_lock() {
                Ok(f) => f,
                Err(TryLockError::Poisoned(e)) => e.into_inner(),
                Err(TryLockError::WouldBlock) => {
                    ring.slots.push_back(weak);
                    continue;
                }
            };
            // A closed slot's entry is stale: drop it. Readers holding the Arc keep their fd.
            if file.take().is_some() {
                ring.open -= 1;
            }
        }
        // Entries of dropped slots are skipped only when the hand passes; bound the ring.
        if ring.slots.len() > 2 * self.cap + 64 {
            ring.slots.retain(|w| w.strong_count() > 0);
        }
    }

    fn release(&self) {
        let mut ring = self.lock();
        ring.open = ring.open.saturating_sub(1);
    }
}

/// One file, opened on demand and closed by [`OpenFiles`] when others are used more recently.
pub(crate) struct FileSlot {
    path: PathBuf,
    /// `None`: not counted and never closed behind the owner's back (the offsets log).
    files: Option<Arc<OpenFiles>>,
    file: Mutex<Option<Arc<File>>>,
    used: AtomicBool,
    deleted: AtomicBool,
}

impl FileSlot {
    /// A slot for the file at `path`, opened on first use and counted in `files`.
    pub(crate) fn lazy(path: PathBuf, files: &Arc<OpenFiles>) -> Arc<FileSlot> {
        Arc::new(FileSlot {
            path,
            files: Some(files.clone()),
            file: Mutex::new(None),
            used: AtomicBool::new(false),
            deleted: AtomicBool::new(false),
        })
    }

    /// A slot holding `file`, already open (just created), counted in `files` when given.
    pub(crate) fn open(path: PathBuf, file: File, files: Option<&Arc<OpenFiles>>) -> Arc<FileSlot> {
        let slot = Arc::new(FileSlot {
            path,
            files: files.cloned(),
            file: Mutex::new(Some(Arc::new(file))),
            used: AtomicBool::new(true),
            deleted: AtomicBool::new(false),
        });
        if let Some(files) = &slot.files {
            files.opened();
            files.admit(&slot);
        }
        slot
    }

    fn lock(&self) -> MutexGuard<'_, Option<Arc<File>>> {
        self.file.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens the file into `guard` if it is closed; true if it did (the caller admits it once
    /// the guard is dropped).
    fn ensure_open(&self, guard: &mut Option<Arc<File>>) -> Result<bool> {
        if guard.is_some() {
            return Ok(false);
        }
        if self.deleted.load(Ordering::Relaxed) {
            return Err(StorageError::io(
                format!("opening {}: deleted by retention", self.path.display()),
                std::io::ErrorKind::NotFound.into(),
            ));
        }
        *guard = Some(Arc::new(fs::open_rw(&self.path, false)?));
        if let Some(files) = &self.files {
            files.opened();
        }
        Ok(true)
    }

    fn admit_if(self: &Arc<Self>, opened: bool) {
        if opened {
            if let Some(files) = &self.files {
                files.admit(self);
            }
        }
    }

    /// The open file (opening it if needed), for a read or an fsync that runs without the slot.
    pub(crate) fn get(self: &Arc<Self>) -> Result<Arc<File>> {
        let mut guard = self.lock();
        let opened = self.ensure_open(&mut guard)?;
        self.used.store(true, Ordering::Relaxed);
        let file = guard.as_ref().expect("opened above").clone();
        drop(guard);
        self.admit_if(opened);
        Ok(file)
    }

    /// Writes all of `buf` at `pos`, holding the slot (no reference count traffic: appends).
    pub(crate) fn write_at(self: &Arc<Self>, buf: &[u8], pos: u64) -> Result<()> {
        let mut guard = self.lock();
        let opened = self.ensure_open(&mut guard)?;
        self.used.store(true, Ordering::Relaxed);
        let result = fs::write_at(guard.as_ref().expect("opened above"), &self.path, buf, pos);
        drop(guard);
        self.admit_if(opened);
        result
    }

    /// fsyncs the file's data. A file deleted by retention has nothing left to make durable.
    /// Reopening a closed file to fsync it is sound on Linux: fsync flushes the inode's dirty
    /// pages whichever descriptor wrote them, and a writeback error nobody has seen yet is
    /// reported to a descriptor opened after it.
    pub(crate) fn sync(self: &Arc<Self>) -> Result<()> {
        match self.get() {
            Ok(file) => fs::sync_file(&file, &self.path),
            Err(_) if self.deleted.load(Ordering::Relaxed) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Closes the file; the next use reopens it by path (after a rename over it).
    pub(crate) fn close(&self) {
        let closed = self.lock().take().is_some();
        if closed {
            if let Some(files) = &self.files {
                files.release();
            }
        }
    }

    /// Marks the file deleted (retention) and closes it; later uses fail, fsyncs are no-ops.
    pub(crate) fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Relaxed);
        self.close();
    }
}

impl std::fmt::Debug for FileSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSlot")
            .field("path", &self.path)
            .field("open", &self.lock().is_some())
            .finish()
    }
}

impl Drop for FileSlot {
    fn drop(&mut self) {
        let open = self
            .file
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .is_some();
        if open {
            if let Some(files) = &self.files {
                files.release();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(dir: &std::path::Path, n: usize, files: &Arc<OpenFiles>) -> Vec<Arc<FileSlot>> {
        (0..n)
            .map(|i| {
                let path = dir.join(format!("{i}"));
                std::fs::write(&path, format!("file {i}")).unwrap();
                FileSlot::lazy(path, files)
            })
            .collect()
    }

    #[test]
    fn open_files_stay_within_the_cap_and_reopen_on_use() {
        let dir = tempfile::tempdir().unwrap();
        let files = OpenFiles::new(3);
        let s = slots(dir.path(), 10, &files);
        for round in 0..3 {
            for (i, slot) in s.iter().enumerate() {
                let f = slot.get().unwrap();
                let mut buf = vec![0u8; 6];
                std::os::unix::fs::FileExt::read_exact_at(&*f, &mut buf, 0).unwrap();
                assert_eq!(buf, format!("file {i}").as_bytes()[..6], "round {round}");
                drop(f);
                assert!(files.open() <= 3, "{} open", files.open());
            }
        }
        // Writes through a slot that was closed reopen it and land in the file.
        s[0].write_at(b"FILE", 0).unwrap();
        assert_eq!(std::fs::read(dir.path().join("0")).unwrap(), b"FILE 0");
        assert!(files.open() <= 3);
        // Dropping slots gives their count back.
        drop(s);
        assert_eq!(files.open(), 0);
    }

    fn open_set(s: &[Arc<FileSlot>]) -> Vec<usize> {
        (0..s.len()).filter(|i| s[*i].lock().is_some()).collect()
    }

    #[test]
    fn a_file_used_since_the_last_pass_gets_a_second_chance() {
        let dir = tempfile::tempdir().unwrap();
        let files = OpenFiles::new(2);
        let s = slots(dir.path(), 4, &files);
        s[0].get().unwrap();
        s[1].get().unwrap();
        // Both used since opening: the pass clears their marks and closes the oldest.
        s[2].get().unwrap();
        assert_eq!(open_set(&s), vec![1, 2]);
        // 1 is used again, 2 is not: 2 goes.
        s[1].get().unwrap();
        s[3].get().unwrap();
        assert_eq!(open_set(&s), vec![1, 3]);
        assert_eq!(files.open(), 2);
    }

    #[test]
    fn deleted_files_fsync_as_no_ops_and_refuse_reads() {
        let dir = tempfile::tempdir().unwrap();
        let files = OpenFiles::new(2);
        let s = slots(dir.path(), 1, &files);
        s[0].get().unwrap();
        s[0].mark_deleted();
        std::fs::remove_file(dir.path().join("0")).unwrap();
        assert_eq!(files.open(), 0);
        s[0].sync().unwrap();
        assert!(s[0].get().is_err());
    }
}
