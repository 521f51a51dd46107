//! The storage engine's file-system calls that durability depends on (create, rename, remove,
//! write, truncate, fsync of a file or a folder), in one place. Each error names its path; in
//! test builds each call passes through `sim`, which can inject a failure and records what
//! every fsync made durable, so a test can compute what a power loss would leave.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::error::{IoContext, Result};

/// What a call does, for fault injection in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) enum Op {
    CreateDir,
    OpenFile,
    Rename,
    Remove,
    Write,
    SetLen,
    SyncFile,
    SyncDir,
}

/// Runs `f`; in test builds, after the fault-injection point for `op` on `path`.
#[inline(always)]
fn call<T>(_op: Op, _path: &Path, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    #[cfg(test)]
    super::sim::fail_point(_op, _path)?;
    f()
}

/// Opens `path` for reading and writing, creating it (empty) when `create` is set.
pub(crate) fn open_rw(path: &Path, create: bool) -> Result<File> {
    call(Op::OpenFile, path, || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)
    })
    .ctx(|| format!("opening {}", path.display()))
}

/// Creates (or truncates) `path` and writes `bytes` as its whole content.
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<File> {
    let file = call(Op::OpenFile, path, || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
    })
    .ctx(|| format!("creating {}", path.display()))?;
    write_at(&file, path, bytes, 0)?;
    Ok(file)
}

/// Creates the folder `path` (its parent must exist).
pub(crate) fn create_dir(path: &Path) -> Result<()> {
    call(Op::CreateDir, path, || std::fs::create_dir(path))
        .ctx(|| format!("creating folder {}", path.display()))
}

/// Creates the folder `path` and its missing parents; true if `path` did not exist.
pub(crate) fn create_dir_all(path: &Path) -> Result<bool> {
    if path.is_dir() {
        return Ok(false);
    }
    call(Op::CreateDir, path, || std::fs::create_dir_all(path))
        .ctx(|| format!("creating folder {}", path.display()))?;
    Ok(true)
}

/// Renames `from` to `to`.
pub(crate) fn rename(from: &Path, to: &Path) -> Result<()> {
    call(Op::Rename, from, || std::fs::rename(from, to))
        .ctx(|| format!("renaming {} to {}", from.display(), to.display()))
}

/// Removes the file `path`; false if it was already gone.
pub(crate) fn remove_file(path: &Path) -> Result<bool> {
    match call(Op::Remove, path, || std::fs::remove_file(path)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).ctx(|| format!("removing {}", path.display())),
    }
}

/// Removes the folder `path` and everything in it; nothing to do if it is gone.
pub(crate) fn remove_dir_all(path: &Path) -> Result<()> {
    match call(Op::Remove, path, || std::fs::remove_dir_all(path)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(e).ctx(|| format!("removing folder {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Writes all of `buf` at `pos` in `file` (stored at `path`).
#[inline]
pub(crate) fn write_at(file: &File, path: &Path, buf: &[u8], pos: u64) -> Result<()> {
    call(Op::Write, path, || file.write_all_at(buf, pos))
        .ctx(|| format!("writing {} at {pos}", path.display()))
}

/// Sets the length of `file` (stored at `path`).
pub(crate) fn set_len(file: &File, path: &Path, len: u64) -> Result<()> {
    call(Op::SetLen, path, || file.set_len(len))
        .ctx(|| format!("truncating {} to {len} bytes", path.display()))
}

/// fsyncs the data (and the size) of `file`, stored at `path`.
pub(crate) fn sync_file(file: &File, path: &Path) -> Result<()> {
    #[cfg(test)]
    let pending = super::sim::before_sync_file(file, path);
    call(Op::SyncFile, path, || file.sync_data()).ctx(|| format!("fsyncing {}", path.display()))?;
    #[cfg(test)]
    super::sim::after_sync(pending);
    Ok(())
}

/// fsyncs the folder `path`: its entries (files created, renamed or removed in it) become
/// durable.
pub(crate) fn sync_dir(path: &Path) -> Result<()> {
    #[cfg(test)]
    let pending = super::sim::before_sync_dir(path);
    call(Op::SyncDir, path, || {
        File::open(path).and_then(|d| d.sync_all())
    })
    .ctx(|| format!("fsyncing folder {}", path.display()))?;
    #[cfg(test)]
    super::sim::after_sync(pending);
    Ok(())
}
