//! The storage engine: topics of partitions of segment files, batches framed with a CRC32C,
//! sparse offset indexes, group commit, recovery, retention and consumer-group offsets.
//! Usable on its own through [`Log`].

mod batch;
mod commit;
mod config;
mod error;
mod files;
mod fs;
mod index;
mod log;
mod offsets;
mod partition;
mod recover;
mod segment;
#[cfg(test)]
mod sim;
mod topic;

pub use batch::{
    check_batch, decode_batches, encode_batch, encode_records, validate_records, BatchError,
    BatchHeader, Record, BATCH_HEADER_LEN, RECORD_OVERHEAD,
};
pub use commit::{CommitStats, CommitTicket, Committer};
pub use config::{
    FsyncPolicy, LogConfig, DEFAULT_MAX_OPEN_FILES, DEFAULT_MAX_PARTITIONS_PER_TOPIC,
    DEFAULT_MAX_TOPICS, MAX_BATCH_BYTES, MAX_OPEN_FILES, MAX_SEGMENT_BYTES, MAX_TOPICS,
};
pub use error::{Result, StorageError};
pub use index::{IndexEntry, OffsetIndex, INDEX_ENTRY_LEN};
pub use log::Log;
pub use offsets::OffsetStore;
pub use partition::{AppendOutcome, Partition, ReadResult};
pub use segment::{parse_segment_name, segment_paths, Segment, Truncation};
pub use topic::{validate_name, Topic, MAX_PARTITIONS};
