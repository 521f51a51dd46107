//! Serves one connection: decodes each request, applies it to the log and queues its response.
//!
//! Ordering: requests are *applied* in the order they arrive (so pipelined produces to one
//! partition get increasing offsets in send order), but responses are sent when ready, so they
//! may arrive out of order: a long-polling fetch or an fsync wait does not hold back the
//! responses behind it. Clients match responses by correlation id.
//!
//! Memory: a fetch reads its batches only once it has room for them in its connection's and the
//! server's response budgets; a connection whose client does not read its responses is not read
//! from either, and when the server's budget runs out the connection stalled the longest is
//! closed to make room.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{broadcast, mpsc, Semaphore};
use tokio::time::Instant;

use super::budget::ByteBudget;
use super::connection::{ConnectionError, FrameReader, Outgoing};
use super::fetch::Fetch;
use super::group::Groups;
use super::limits::Limits;
use super::registry::{ConnState, Registry};
use crate::protocol::{
    decode_request, encode_response, kind, Ack, ErrorCode, Request, Response, FETCHED_HEAD_LEN,
};
use crate::storage::{CommitTicket, FsyncPolicy, Log, StorageError};

/// Requests of one connection that may wait at once (fetch long polls, fsync waits); past
/// this the connection is not read until one finishes.
pub const MAX_IN_FLIGHT: usize = 256;
/// How long a produce waits for its fsync before answering with a timeout error.
pub const FSYNC_WAIT: Duration = Duration::from_secs(30);

/// What every connection shares.
pub struct Shared {
    pub(crate) log: Log,
    pub(crate) limits: Limits,
    pub(crate) registry: Arc<Registry>,
    /// Bytes of fetch responses built and not yet written, all connections together.
    pub(crate) responses: ByteBudget,
    /// Consumer groups' membership.
    pub(crate) groups: Groups,
}

/// The per-connection state.
pub struct Handler {
    pub(crate) shared: Arc<Shared>,
    pub(crate) conn: Arc<ConnState>,
    /// Bytes of this connection's fetch responses built and not yet written.
    pub(crate) conn_budget: ByteBudget,
    pub(crate) reader: FrameReader<OwnedReadHalf>,
    pub(crate) responses: mpsc::Sender<Outgoing>,
    pub(crate) in_flight: Arc<Semaphore>,
    pub(crate) notify_shutdown: broadcast::Sender<()>,
    pub(crate) shutdown: broadcast::Receiver<()>,
}

/// Maps an engine error to a wire error.
pub fn error_response(e: &StorageError) -> Response {
    let code = match e {
        StorageError::UnknownTopic(_) => ErrorCode::UnknownTopic,
        StorageError::UnknownPartition { .. } => ErrorCode::UnknownPartition,
        StorageError::OffsetOutOfRange { start, end, .. } => {
            return Response::OutOfRange {
                message: e.to_string(),
                start: *start,
                end: *end,
            }
        }
        StorageError::TopicExists { .. } => ErrorCode::TopicExists,
        StorageError::InvalidName(_)
        | StorageError::InvalidPartitions(_)
        | StorageError::InvalidBatch(_)
        | StorageError::BatchTooLarge { .. }
        | StorageError::LimitExceeded { .. }
        | StorageError::Config(_) => ErrorCode::InvalidArgument,
        StorageError::SyncTimeout(_) => ErrorCode::Timeout,
        StorageError::Corrupt { .. } => ErrorCode::Corrupt,
        _ => ErrorCode::Storage,
    };
    Response::Error {
        code,
        message: e.to_string(),
    }
}

pub(crate) fn encoded(corr: u32, kind: u8, resp: &Response) -> Outgoing {
    let mut out = Vec::new();
    encode_response(&mut out, corr, kind, resp);
    Outgoing::frame(out)
}

impl Handler {
    /// Serves requests until the peer leaves, breaks framing, idles out, or the server shuts
    /// down (or closes this connection to make room).
    pub async fn run(&mut self) -> Result<(), ConnectionError> {
        let idle = self.shared.limits.idle_timeout();
        loop {
            if !self.wait_for_room().await {
                return Ok(());
            }
            // Idle is judged from the last request or written response; while the server
            // waits on a request of this connection (a long poll) it is not idle.
            let left = idle.saturating_sub(self.conn.idle_for());
            let idle_at = Instant::now() + if left.is_zero() { idle } else { left };
            let frame = tokio::select! {
                f = self.reader.read_frame(Some(idle_at)) => f,
                _ = self.shutdown.recv() => return Ok(()),
                _ = self.conn.closed() => return Ok(()),
            };
            let frame = match frame {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(()),
                Err(ConnectionError::Idle) => {
                    if self.conn.has_waits() || self.conn.idle_for() < idle {
                        continue;
                    }
                    tracing::debug!(peer = %self.conn.peer, ?idle, "closing an idle connection");
                    self.conn.close();
                    return Ok(());
                }
                Err(
                    e @ ConnectionError::NoBudget {
                        correlation_id: Some(corr),
                        kind,
                        ..
                    },
                ) => {
                    // Tell the client why its request failed before the connection closes.
                    let resp = Response::Error {
                        code: ErrorCode::Timeout,
                        message: e.to_string(),
                    };
                    self.send(encoded(corr, kind.unwrap_or(0), &resp)).await;
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            self.conn.touch();
            // The frame's budget is held until the request is applied: a produce's records
            // are slices of the frame until they are written.
            let (payload, _budget) = (frame.payload, frame.budget);
            match decode_request(payload) {
                Ok((corr, req)) => {
                    if !self.dispatch(corr, req).await {
                        return Ok(());
                    }
                }
                Err(e) => match e.correlation_id {
                    // Framing is intact: answer the bad request and keep serving.
                    Some(corr) => {
                        let resp = Response::Error {
                            code: ErrorCode::Malformed,
                            message: e.reason.clone(),
                        };
                        if !self.send(encoded(corr, e.kind.unwrap_or(0), &resp)).await {
                            return Ok(());
                        }
                    }
                    None => return Err(ConnectionError::Framing(e)),
                },
            }
        }
    }

    /// Back-pressure: reads no further request while this connection's unwritten fetch
    /// responses leave no room for one more, so a client that does not read its responses is
    /// not read from either. False when the connection ends meanwhile (closed, shut down, or
    /// idle: no response bytes taken by the socket for the idle timeout).
    async fn wait_for_room(&mut self) -> bool {
        let largest = u64::from(self.shared.limits.max_fetch_bytes) + FETCHED_HEAD_LEN as u64;
        let need = self.conn_budget.permits_for(largest);
        if self.conn_budget.available() >= u64::from(need) {
            return true;
        }
        let idle = self.shared.limits.idle_timeout();
        loop {
            tokio::select! {
                room = self.conn_budget.acquire(need.into()) => {
                    drop(room);
                    return true;
                }
                _ = self.shutdown.recv() => return false,
                _ = self.conn.closed() => return false,
                _ = tokio::time::sleep(idle) => {
                    if self.conn.idle_for() >= idle {
                        tracing::debug!(peer = %self.conn.peer, "closing a connection that reads no responses");
                        self.conn.close();
                        return false;
                    }
                }
            }
        }
    }

    async fn send(&self, out: Outgoing) -> bool {
        self.responses.send(out).await.is_ok()
    }

    /// Applies one request; false once responses can no longer be sent.
    async fn dispatch(&mut self, corr: u32, req: Request) -> bool {
        let kind = req.kind();
        match req {
            Request::CreateTopic { topic, partitions } => {
                let resp = self.create_topic(topic, partitions).await;
                self.send(encoded(corr, kind, &resp)).await
            }
            Request::Produce {
                topic,
                partition,
                ack,
                count,
                records,
            } => {
                self.produce(corr, &topic, partition, ack, count, records)
                    .await
            }
            Request::Fetch {
                topic,
                partition,
                offset,
                max_bytes,
                max_wait,
            } => {
                let Some(permit) = self.permit().await else {
                    return false;
                };
                let fetch = Fetch {
                    shared: self.shared.clone(),
                    conn: self.conn.clone(),
                    conn_budget: self.conn_budget.clone(),
                    corr,
                    topic,
                    partition,
                    offset,
                    max_bytes,
                    max_wait,
                };
                self.spawn_fetch(fetch, permit);
                true
            }
            Request::Commit {
                group,
                topic,
                partition,
                offset,
            } => self.commit(corr, &group, &topic, partition, offset).await,
            Request::Committed {
                group,
                topic,
                partition,
            } => {
                let resp = match self.shared.log.committed(&group, &topic, partition) {
                    Ok(o) => Response::CommittedOffset(o),
                    Err(e) => error_response(&e),
                };
                self.send(encoded(corr, kind, &resp)).await
            }
            Request::EndOffsets { topic } => {
                let resp = match self.shared.log.end_offsets(&topic) {
                    Ok(v) => Response::EndOffsets(v),
                    Err(e) => error_response(&e),
                };
                self.send(encoded(corr, kind, &resp)).await
            }
            req @ (Request::Join { .. } | Request::Heartbeat { .. } | Request::Leave { .. }) => {
                let resp = self.group_request(req);
                self.send(encoded(corr, kind, &resp)).await
            }
        }
    }

    /// A join, heartbeat or leave, answered at once.
    fn group_request(&self, req: Request) -> Response {
        let groups = &self.shared.groups;
        match req {
            Request::Join {
                group,
                topic,
                member,
                session_ms,
            } => match self.shared.log.end_offsets(&topic) {
                Ok(v) => groups.join(&group, &topic, &member, session_ms, v.len() as u32),
                Err(e) => error_response(&e),
            },
            Request::Heartbeat {
                group,
                member,
                generation,
            } => groups.heartbeat(&group, &member, generation),
            Request::Leave { group, member } => groups.leave(&group, &member),
            other => Response::Error {
                code: ErrorCode::Other,
                message: format!("request kind {} is not a group request", other.kind()),
            },
        }
    }

    /// Creates a topic off the runtime's threads (it creates and fsyncs files).
    async fn create_topic(&self, topic: String, partitions: u32) -> Response {
        let log = self.shared.log.clone();
        match tokio::task::spawn_blocking(move || log.create_topic(&topic, partitions)).await {
            Ok(Ok(created)) => Response::Created(created),
            Ok(Err(e)) => error_response(&e),
            Err(e) => Response::Error {
                code: ErrorCode::Other,
                message: format!("create topic task failed: {e}"),
            },
        }
    }

    /// Runs a fetch in its own task; a closed connection drops it wherever it is, budget
    /// included.
    fn spawn_fetch(&self, fetch: Fetch, permit: tokio::sync::OwnedSemaphorePermit) {
        let tx = self.responses.clone();
        let shutdown = self.notify_shutdown.subscribe();
        let conn = self.conn.clone();
        tokio::spawn(async move {
            tokio::select! {
                out = fetch.run(shutdown) => {
                    let _ = tx.send(out).await;
                }
                _ = conn.closed() => {}
            }
            drop(permit);
        });
    }

    /// Commits a group's offset, answering once it is durable under `fsync = always`.
    async fn commit(
        &mut self,
        corr: u32,
        group: &str,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> bool {
        let log = &self.shared.log;
        let committed = commit_in_range(log, topic, partition, offset)
            .and_then(|()| log.commit_offset(group, topic, partition, offset));
        match committed {
            Ok(ticket) => {
                let wait = ticket.filter(|_| log.config().fsync == FsyncPolicy::Always);
                self.respond_when_durable(corr, kind::COMMIT, wait, Response::OffsetCommitted)
                    .await
            }
            Err(e) => {
                let resp = error_response(&e);
                self.send(encoded(corr, kind::COMMIT, &resp)).await
            }
        }
    }

    async fn permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.in_flight.clone().acquire_owned().await.ok()
    }

    async fn produce(
        &mut self,
        corr: u32,
        topic: &str,
        partition: u32,
        ack: Ack,
        count: u32,
        records: Bytes,
    ) -> bool {
        let kind = kind::PRODUCE;
        let log = &self.shared.log;
        let result = log
            .partition(topic, partition)
            .and_then(|p| p.append_framed(&records, count, ack == Ack::Fsynced));
        match (ack, result) {
            (Ack::None, Err(e)) => {
                tracing::debug!(error = %e, "produce with ack none failed");
                true
            }
            (Ack::None, Ok(_)) => true,
            (_, Err(e)) => self.send(encoded(corr, kind, &error_response(&e))).await,
            (_, Ok(out)) => {
                let must_wait = ack == Ack::Fsynced || log.config().fsync == FsyncPolicy::Always;
                let wait = out.ticket.filter(|_| must_wait);
                let resp = Response::Produced {
                    base_offset: out.base_offset,
                };
                self.respond_when_durable(corr, kind, wait, resp).await
            }
        }
    }

    /// Sends `resp` now, or once an fsync covers `ticket` (in a task, so later requests proceed).
    async fn respond_when_durable(
        &self,
        corr: u32,
        kind: u8,
        ticket: Option<CommitTicket>,
        resp: Response,
    ) -> bool {
        let Some(ticket) = ticket else {
            return self.send(encoded(corr, kind, &resp)).await;
        };
        let Some(permit) = self.permit().await else {
            return false;
        };
        let log = self.shared.log.clone();
        let tx = self.responses.clone();
        let conn = self.conn.clone();
        tokio::spawn(async move {
            let resp = {
                let _waiting = conn.waiting();
                match tokio::time::timeout(FSYNC_WAIT, log.wait_durable_async(ticket)).await {
                    Ok(Ok(())) => resp,
                    Ok(Err(e)) => error_response(&e),
                    Err(_) => error_response(&StorageError::SyncTimeout(FSYNC_WAIT)),
                }
            };
            let _ = tx.send(encoded(corr, kind, &resp)).await;
            drop(permit);
        });
        true
    }
}

/// Refuses a commit past the partition's end: a consumer resuming there would wait for records
/// never written (and a committed `u64::MAX` makes the backlog meaningless). A commit below the
/// log start is fine: retention ignores committed offsets, as Kafka's does.
fn commit_in_range(
    log: &Log,
    topic: &str,
    partition: u32,
    offset: u64,
) -> Result<(), StorageError> {
    let p = log.partition(topic, partition)?;
    let end = p.end_offset();
    if offset > end {
        return Err(StorageError::OffsetOutOfRange {
            topic: topic.to_owned(),
            partition,
            offset,
            start: p.start_offset(),
            end,
        });
    }
    Ok(())
}
