//! The memory-mapped writer: records are stored straight into the page cache, so a worker killed
//! with SIGKILL loses nothing it had written (the kernel owns those pages, not the process).
//!
//! The file is grown ahead of the writer with `fallocate`, so a full disk is an error at the
//! grow (ENOSPC) rather than a SIGBUS at a store into a page the disk cannot hold. A record's
//! `kind` byte is stored last, so a reader stops at the first zero kind: the end of the last
//! whole record. A version 2 run's bound is one aligned u64 ([`HistoryWriter::set_bound`]).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{compiler_fence, Ordering};

use memmap2::MmapMut;

use super::{
    bound, FileHeader, Record, FLAG_TRANSACTIONAL, HEADER_FLAGS, HEADER_LEN, RECORD_LEN, V1,
};

pub(super) const GROW_BYTES: u64 = 8 << 20;

/// Appends records to a memory-mapped history file.
pub struct HistoryWriter {
    file: File,
    map: MmapMut,
    len: usize,
    path: PathBuf,
}

impl HistoryWriter {
    /// Creates (or truncates) a version 1 history file at `path`.
    pub fn create(path: &Path, header: FileHeader) -> io::Result<HistoryWriter> {
        HistoryWriter::create_version(path, header, V1, 0)
    }

    /// Creates (or truncates) a history file of `version`; `keys` is the variant's (version 2
    /// records it as the stride of acked and delivered runs).
    pub fn create_version(
        path: &Path,
        header: FileHeader,
        version: u32,
        keys: u32,
    ) -> io::Result<HistoryWriter> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        reserve(&file, GROW_BYTES)?;
        // SAFETY: the file is ours alone while the run lasts; readers open it after the writer ends
        // or read only up to the last whole record.
        let mut map = unsafe { MmapMut::map_mut(&file)? };
        map[..HEADER_LEN].copy_from_slice(&header.encode(version, keys));
        Ok(HistoryWriter {
            file,
            map,
            len: HEADER_LEN,
            path: path.to_owned(),
        })
    }

    /// Appends one record. The kind byte is stored after the rest, so a reader never sees half
    /// a record.
    #[inline]
    pub fn push(&mut self, r: Record) -> io::Result<()> {
        self.push_at(r).map(drop)
    }

    /// Appends one record and returns where it is (for [`HistoryWriter::set_bound`]).
    #[inline]
    pub fn push_at(&mut self, r: Record) -> io::Result<usize> {
        if self.len + RECORD_LEN > self.map.len() {
            self.grow()?;
        }
        let b = r.encode();
        let at = self.len;
        let dst = &mut self.map[at..at + RECORD_LEN];
        dst[1..].copy_from_slice(&b[1..]);
        compiler_fence(Ordering::Release);
        dst[0] = b[0];
        self.len += RECORD_LEN;
        Ok(at)
    }

    /// Moves the bound of the run record at `at` (as [`HistoryWriter::push_at`] returned it) to
    /// `count` messages over `span` ns: one aligned 8-byte store, so a SIGKILL leaves either the
    /// old bound or the new one, never half of each.
    #[inline]
    pub fn set_bound(&mut self, at: usize, count: u32, span: u32) {
        let field = &mut self.map[at + 24..at + 32];
        let ptr = field.as_mut_ptr() as *mut u64;
        debug_assert_eq!(ptr as usize % 8, 0, "records are 8-byte aligned in the map");
        // SAFETY: `at` is a record's offset within the map (8-aligned: the map is page-aligned
        // and records are 32 bytes from a 32-byte header); the slice bounds the 8 bytes.
        unsafe { std::ptr::write_volatile(ptr, bound(count, span).to_le()) };
    }

    fn grow(&mut self) -> io::Result<()> {
        let new_len = self.map.len() as u64 + GROW_BYTES.max(self.map.len() as u64 / 2);
        reserve(&self.file, new_len)?;
        // SAFETY: as in `create`; the old map is dropped when replaced.
        self.map = unsafe { MmapMut::map_mut(&self.file)? };
        Ok(())
    }

    /// Sets the header's transactional flag (a transactional producer's history); call it
    /// before the first send is recorded.
    pub fn mark_transactional(&mut self) {
        self.map[HEADER_FLAGS] |= FLAG_TRANSACTIONAL;
    }

    /// Number of records written so far.
    pub fn records(&self) -> u64 {
        ((self.len - HEADER_LEN) / RECORD_LEN) as u64
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
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

/// Makes `file` `len` bytes long with its blocks allocated, so stores into the map never meet a
/// full disk. Filesystems without `fallocate` get a sparse extension instead.
fn reserve(file: &File, len: u64) -> io::Result<()> {
    // SAFETY: plain posix_fallocate on a file descriptor we own.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len as libc::off_t) };
    match rc {
        0 => Ok(()),
        libc::EOPNOTSUPP | libc::EINVAL => file.set_len(len),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}
