//! Configuration of a log: fsync policy, segment size, index density, retention, and the
//! limits that bound its resources (open files, partitions per topic, topics).

use std::str::FromStr;
use std::time::Duration;

use super::error::StorageError;
use super::topic::MAX_PARTITIONS;

/// When the log calls fsync on the data it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Only when asked (an `fsynced` produce, shutdown): the page cache decides.
    Never,
    /// Every interval, covering whatever was written since the last one.
    Interval(Duration),
    /// Group commit: every write is covered by an fsync before it is acknowledged.
    Always,
}

impl FromStr for FsyncPolicy {
    type Err = StorageError;

    /// Parses `never`, `always` or `interval:MS`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "never" => Ok(FsyncPolicy::Never),
            "always" => Ok(FsyncPolicy::Always),
            _ => {
                let ms = s
                    .strip_prefix("interval:")
                    .and_then(|ms| ms.parse::<u64>().ok())
                    .filter(|ms| *ms > 0)
                    .ok_or_else(|| {
                        StorageError::Config(format!(
                            "fsync policy {s:?}: expected never, always or interval:MS (MS > 0)"
                        ))
                    })?;
                Ok(FsyncPolicy::Interval(Duration::from_millis(ms)))
            }
        }
    }
}

impl std::fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FsyncPolicy::Never => f.write_str("never"),
            FsyncPolicy::Always => f.write_str("always"),
            FsyncPolicy::Interval(d) => write!(f, "interval:{}", d.as_millis()),
        }
    }
}

/// Largest segment size accepted: index positions are u32.
pub const MAX_SEGMENT_BYTES: u64 = 1 << 30;
/// Largest batch accepted, and so the largest record.
pub const MAX_BATCH_BYTES: u64 = 32 << 20;
/// Default cap on segment files held open at once.
pub const DEFAULT_MAX_OPEN_FILES: usize = 1024;
/// Largest open-file cap a configuration may set.
pub const MAX_OPEN_FILES: usize = 1 << 20;
/// Default limit on the partitions of one topic.
pub const DEFAULT_MAX_PARTITIONS_PER_TOPIC: u32 = 1024;
/// Default limit on the topics of one log.
pub const DEFAULT_MAX_TOPICS: u32 = 256;
/// Largest topics-per-log limit a configuration may set.
pub const MAX_TOPICS: u32 = 1 << 16;

/// Settings of one log directory.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// A segment rolls once appending would take it past this many bytes.
    pub segment_bytes: u64,
    /// One sparse index entry per this many bytes of batches.
    pub index_interval_bytes: u32,
    /// Per partition: delete the oldest segments while the partition is larger.
    pub retention_bytes: Option<u64>,
    /// Delete segments whose newest batch is older than this.
    pub retention_age: Option<Duration>,
    /// When to fsync.
    pub fsync: FsyncPolicy,
    /// How often the housekeeper applies retention.
    pub retention_check_interval: Duration,
    /// Largest batch accepted.
    pub max_batch_bytes: u64,
    /// Most segment files held open at once; the least recently used are closed past it and
    /// reopened on use. At open it is lowered to half the process's open-file limit
    /// (RLIMIT_NOFILE), leaving the rest to connections.
    pub max_open_files: usize,
    /// Most partitions a topic may be created with.
    pub max_partitions_per_topic: u32,
    /// Most topics the log holds; creating more is refused (a folder already holding more
    /// still opens).
    pub max_topics: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 64 << 20,
            index_interval_bytes: 4096,
            retention_bytes: None,
            retention_age: None,
            fsync: FsyncPolicy::Never,
            retention_check_interval: Duration::from_secs(1),
            max_batch_bytes: MAX_BATCH_BYTES,
            max_open_files: DEFAULT_MAX_OPEN_FILES,
            max_partitions_per_topic: DEFAULT_MAX_PARTITIONS_PER_TOPIC,
            max_topics: DEFAULT_MAX_TOPICS,
        }
    }
}

impl LogConfig {
    /// Checks the values before the log starts.
    pub fn validate(&self) -> Result<(), StorageError> {
        if self.segment_bytes < 1024 || self.segment_bytes > MAX_SEGMENT_BYTES {
            return Err(StorageError::Config(format!(
                "segment size {} bytes: use 1 KiB..=1 GiB",
                self.segment_bytes
            )));
        }
        if self.index_interval_bytes == 0 {
            return Err(StorageError::Config("index interval must be > 0".into()));
        }
        if self.max_batch_bytes == 0 || self.max_batch_bytes > MAX_BATCH_BYTES {
            return Err(StorageError::Config(format!(
                "max batch {} bytes: use 1..={MAX_BATCH_BYTES}",
                self.max_batch_bytes
            )));
        }
        if self.max_open_files == 0 || self.max_open_files > MAX_OPEN_FILES {
            return Err(StorageError::Config(format!(
                "max open files {}: use 1..={MAX_OPEN_FILES}",
                self.max_open_files
            )));
        }
        if self.max_partitions_per_topic == 0 || self.max_partitions_per_topic > MAX_PARTITIONS {
            return Err(StorageError::Config(format!(
                "max partitions per topic {}: use 1..={MAX_PARTITIONS}",
                self.max_partitions_per_topic
            )));
        }
        if self.max_topics == 0 || self.max_topics > MAX_TOPICS {
            return Err(StorageError::Config(format!(
                "max topics {}: use 1..={MAX_TOPICS}",
                self.max_topics
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_policies() {
        assert_eq!("never".parse::<FsyncPolicy>().unwrap(), FsyncPolicy::Never);
        assert_eq!(
            "always".parse::<FsyncPolicy>().unwrap(),
            FsyncPolicy::Always
        );
        assert_eq!(
            "interval:250".parse::<FsyncPolicy>().unwrap(),
            FsyncPolicy::Interval(Duration::from_millis(250))
        );
        for bad in ["", "interval", "interval:0", "interval:x", "sometimes"] {
            assert!(bad.parse::<FsyncPolicy>().is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            FsyncPolicy::Interval(Duration::from_millis(5)).to_string(),
            "interval:5"
        );
    }
}
