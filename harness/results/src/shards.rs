//! results.json's account of shards: a shard's partial run (`shard`) and a run merged from
//! shards by `bench merge` (`merged`): which shards, on which hosts, how far their clocks may
//! disagree, and each shard's own end-to-end latency (producer and consumer in that shard).

use mq_checker::Percentiles;
use serde::{Deserialize, Serialize};

/// What `bench merge` joined, in results.json `merged`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Merged {
    /// N: every shard 1..=N was merged.
    pub shards: u16,
    pub partials: Vec<MergedShard>,
    pub clock: MergedClock,
    /// Per variant and shard: end-to-end latency of messages produced and consumed in that
    /// shard (one host, one clock).
    pub same_shard: Vec<SameShard>,
}

/// One merged shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergedShard {
    pub shard: u16,
    pub host: String,
    /// The partial run folder, as given to `bench merge`.
    pub dir: String,
    pub started_at: String,
}

/// How far the shards' clocks may disagree, and what that makes of cross-host latency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergedClock {
    /// µs: 0 when every shard ran on one host (one clock); the sum of the two largest
    /// per-shard adjtimex `maxerror`s across hosts; null when some clock was unsynchronised.
    pub offset_bound_us: Option<i64>,
    /// The bound above which end-to-end latency across hosts is unreliable (`--clock-limit`).
    pub limit_us: i64,
    /// Whether the merged end-to-end latency can be trusted (bound known and within limit).
    pub end_to_end_reliable: bool,
    pub note: String,
}

/// One shard's same-shard end-to-end latency for one variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SameShard {
    pub variant: String,
    pub shard: u16,
    pub end_to_end: Percentiles,
    /// The whole HdrHistogram (ns), V2 + deflate, base64.
    pub end_to_end_hdr: String,
}
