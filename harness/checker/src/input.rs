//! What the checker reads (a variant's history files, its start and workload figures) and how
//! reading them fails.

use std::path::{Path, PathBuf};

use mq_core::history::{HistoryError, HistoryReader, Role};

/// What the checker reads.
#[derive(Debug, Clone)]
pub struct Input {
    pub producer_files: Vec<PathBuf>,
    pub consumer_files: Vec<PathBuf>,
    /// The broker-depth samples written by the coordinator (JSON lines), if any.
    pub depth_file: Option<PathBuf>,
    /// The idempotent consumers' store (`consumer_dedup = "store"`): a message it holds that no
    /// history has counts as delivered ([`crate::Dedup::credited`]).
    pub dedup_store: Option<PathBuf>,
    /// The variant's start (monotonic ns): series and rates count from here.
    pub start_ns: u64,
    /// Messages scheduled before start + warmup are left out of latency figures.
    pub warmup_ns: u64,
    pub message_size: usize,
    pub producers: u32,
    /// The workload's consumers. With none (producer only) nothing was read back: no message
    /// is lost or unacked-lost, and their sampling pass is not made.
    pub consumers: u32,
    pub keys: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error("{path}: a {found:?} history where a {expected:?} history was expected")]
    WrongRole {
        path: PathBuf,
        expected: Role,
        found: Role,
    },
    #[error("latency log {path}: {what}")]
    Latency { path: PathBuf, what: String },
    #[error(transparent)]
    Store(#[from] mq_dedup::StoreError),
    #[error("reading {path}: {source}")]
    Depth {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Opens a history, refusing one written by the other role.
pub(crate) fn open(path: &Path, expected: Role) -> Result<HistoryReader, CheckError> {
    let r = HistoryReader::open(path)?;
    if r.header.role != expected {
        return Err(CheckError::WrongRole {
            path: path.to_owned(),
            expected,
            found: r.header.role,
        });
    }
    Ok(r)
}
