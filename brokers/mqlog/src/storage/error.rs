//! The storage engine's error type: every failure names the topic, partition, offset or file
//! it concerns.

use std::path::PathBuf;

/// What went wrong in the storage engine.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A filesystem call failed; `context` says which and on what.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The topic was never created.
    #[error("unknown topic {0:?}")]
    UnknownTopic(String),
    /// The partition number is past the topic's partition count.
    #[error("topic {topic:?} has {partitions} partitions, no partition {partition}")]
    UnknownPartition {
        topic: String,
        partition: u32,
        partitions: u32,
    },
    /// The topic exists with another partition count.
    #[error("topic {topic:?} already exists with {existing} partitions, not {requested}")]
    TopicExists {
        topic: String,
        existing: u32,
        requested: u32,
    },
    /// A topic or group name the log refuses (empty, too long, or with characters unsafe in a path).
    #[error("invalid name {0:?}: use 1-200 characters from [A-Za-z0-9._-], not starting with '.'")]
    InvalidName(String),
    /// A partition count of zero.
    #[error("invalid partition count {0}: a topic needs at least one partition")]
    InvalidPartitions(u32),
    /// A request past one of the log's limits (partitions per topic, topics per log).
    #[error("{what}: {requested} requested, the limit is {limit} (set by {setting})")]
    LimitExceeded {
        what: &'static str,
        requested: u64,
        limit: u64,
        /// The configuration field and server flag that set the limit.
        setting: &'static str,
    },
    /// The offset is before the first retained record or past the end.
    #[error("offset {offset} of {topic}/{partition} is out of range [{start}, {end}]")]
    OffsetOutOfRange {
        topic: String,
        partition: u32,
        offset: u64,
        start: u64,
        end: u64,
    },
    /// A batch with no records, or records that do not tile it.
    #[error("invalid batch: {0}")]
    InvalidBatch(String),
    /// A batch larger than the configured limit.
    #[error("batch of {size} bytes exceeds the limit of {max} bytes")]
    BatchTooLarge { size: u64, max: u64 },
    /// Bytes on disk that fail validation outside recovery.
    #[error("corrupt data in {path} at byte {position}: {reason}")]
    Corrupt {
        path: PathBuf,
        position: u64,
        reason: String,
    },
    /// An earlier fsync failed; the log refuses further durable writes (their durability is unknown).
    #[error("log failed after an fsync error, restart it: {0}")]
    Failed(String),
    /// Another process, or another open `Log` of this one, holds the log directory.
    #[error("log directory {0} is locked: another process (or another open of it in this one) has it open")]
    Locked(PathBuf),
    /// Waited too long for an fsync to cover a write.
    #[error("timed out after {0:?} waiting for fsync")]
    SyncTimeout(std::time::Duration),
    /// Invalid configuration value.
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl StorageError {
    /// Wraps an I/O error with a sentence saying what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> StorageError {
        StorageError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Result alias for the storage engine.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Extension to attach a context sentence to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn ctx(self, f: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, f: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| StorageError::io(f(), e))
    }
}
