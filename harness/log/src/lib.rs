//! mq-log: mq-bench's in-house append-only log.
//!
//! - [`storage`]: the engine (topics, partitions, segments, group commit, recovery, retention,
//!   consumer offsets), usable without a server.
//! - [`server`]: a tokio TCP server speaking a length-prefixed binary protocol ([`protocol`]).
//! - [`client`]: a blocking, pipelining client for workers that are not async.

pub mod client;
pub mod protocol;
pub mod server;
pub mod storage;
