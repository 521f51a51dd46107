//! mqlog: mq-bench's in-house append-only log.
//!
//! - [`storage`]: the engine (topics, partitions, segments, group commit, recovery, retention,
//!   consumer offsets), usable without a server.
//! - [`server`]: a tokio TCP server speaking the length-prefixed binary protocol of
//!   [`protocol`]; [`server::serve`] is what `bench log serve` and `mqlog-server` run.
//! - [`client`]: a blocking, pipelining client for workers that are not async.
//!
//! Semantics worth knowing:
//! - Requests on one connection are applied in arrival order (pipelined produces to a partition
//!   get offsets in send order); responses are sent when ready and may arrive out of order.
//! - Ack `written` answers after the write reaches the page cache, except under fsync `always`,
//!   where every ack (and every offset commit) waits for the group commit's fsync. Ack
//!   `fsynced` always waits for an fsync, whatever the policy.
//! - Fetches see every written record, fsynced or not (a process crash keeps the page cache;
//!   only a machine crash could un-write a record a consumer already saw).

pub mod client;
pub mod protocol;
pub mod server;
pub mod storage;
