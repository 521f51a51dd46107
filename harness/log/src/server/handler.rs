//! Serves one connection: decodes each request, applies it to the log and queues its response.
//!
//! Ordering: requests are *applied* in the order they arrive (so pipelined produces to one
//! partition get increasing offsets in send order), but responses are sent when ready, so they
//! may arrive out of order: a long-polling fetch or an fsync wait does not hold back the
//! responses behind it. Clients match responses by correlation id.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{broadcast, mpsc, Semaphore};
use tokio::time::Instant;

use super::connection::{ConnectionError, FrameReader};
use crate::protocol::{
    decode_request, encode_response, Ack, ErrorCode, Request, Response, MAX_FETCH_BYTES,
    MAX_FETCH_WAIT,
};
use crate::storage::{CommitTicket, FsyncPolicy, Log, StorageError};

/// Requests of one connection that may wait at once (fetch long polls, fsync waits).
pub const MAX_IN_FLIGHT: usize = 4096;
/// How long a produce waits for its fsync before answering with a timeout error.
pub const FSYNC_WAIT: Duration = Duration::from_secs(30);

/// The per-connection state.
pub struct Handler {
    pub(crate) log: Log,
    pub(crate) reader: FrameReader<OwnedReadHalf>,
    pub(crate) responses: mpsc::Sender<Vec<u8>>,
    pub(crate) in_flight: Arc<Semaphore>,
    pub(crate) notify_shutdown: broadcast::Sender<()>,
    pub(crate) shutdown: broadcast::Receiver<()>,
}

/// Maps an engine error to a wire error.
pub fn error_response(e: &StorageError) -> Response {
    let code = match e {
        StorageError::UnknownTopic(_) => ErrorCode::UnknownTopic,
        StorageError::UnknownPartition { .. } => ErrorCode::UnknownPartition,
        StorageError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
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

fn frame(corr: u32, kind: u8, resp: &Response) -> Vec<u8> {
    let mut out = Vec::new();
    encode_response(&mut out, corr, kind, resp);
    out
}

impl Handler {
    /// Serves requests until the peer leaves, breaks framing, or the server shuts down.
    pub async fn run(&mut self) -> Result<(), ConnectionError> {
        loop {
            let frame = tokio::select! {
                f = self.reader.read_frame() => f?,
                _ = self.shutdown.recv() => return Ok(()),
            };
            let Some(frame) = frame else { return Ok(()) };
            match decode_request(frame) {
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
                        if !self.send(frame_of(corr, e.kind, &resp)).await {
                            return Ok(());
                        }
                    }
                    None => return Err(ConnectionError::Framing(e)),
                },
            }
        }
    }

    async fn send(&self, frame: Vec<u8>) -> bool {
        self.responses.send(frame).await.is_ok()
    }

    /// Applies one request; false once responses can no longer be sent.
    async fn dispatch(&mut self, corr: u32, req: Request) -> bool {
        let kind = req.kind();
        match req {
            Request::CreateTopic { topic, partitions } => {
                let log = self.log.clone();
                let resp =
                    match tokio::task::spawn_blocking(move || log.create_topic(&topic, partitions))
                        .await
                    {
                        Ok(Ok(created)) => Response::Created(created),
                        Ok(Err(e)) => error_response(&e),
                        Err(e) => Response::Error {
                            code: ErrorCode::Other,
                            message: format!("create topic task failed: {e}"),
                        },
                    };
                self.send(frame(corr, kind, &resp)).await
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
                let log = self.log.clone();
                let tx = self.responses.clone();
                let shutdown = self.notify_shutdown.subscribe();
                tokio::spawn(async move {
                    let resp = fetch(
                        &log, &topic, partition, offset, max_bytes, max_wait, shutdown,
                    )
                    .await;
                    let _ = tx.send(frame(corr, kind, &resp)).await;
                    drop(permit);
                });
                true
            }
            Request::Commit {
                group,
                topic,
                partition,
                offset,
            } => match self.log.commit_offset(&group, &topic, partition, offset) {
                Ok(ticket) => {
                    let wait = ticket.filter(|_| self.log.config().fsync == FsyncPolicy::Always);
                    self.respond_when_durable(corr, kind, wait, Response::OffsetCommitted)
                        .await
                }
                Err(e) => self.send(frame(corr, kind, &error_response(&e))).await,
            },
            Request::Committed {
                group,
                topic,
                partition,
            } => {
                let resp = match self.log.committed(&group, &topic, partition) {
                    Ok(o) => Response::CommittedOffset(o),
                    Err(e) => error_response(&e),
                };
                self.send(frame(corr, kind, &resp)).await
            }
            Request::EndOffsets { topic } => {
                let resp = match self.log.end_offsets(&topic) {
                    Ok(v) => Response::EndOffsets(v),
                    Err(e) => error_response(&e),
                };
                self.send(frame(corr, kind, &resp)).await
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
        let kind = crate::protocol::kind::PRODUCE;
        let result = self
            .log
            .partition(topic, partition)
            .and_then(|p| p.append_framed(&records, count, ack == Ack::Fsynced));
        match (ack, result) {
            (Ack::None, Err(e)) => {
                tracing::debug!(error = %e, "produce with ack none failed");
                true
            }
            (Ack::None, Ok(_)) => true,
            (_, Err(e)) => self.send(frame(corr, kind, &error_response(&e))).await,
            (_, Ok(out)) => {
                let must_wait =
                    ack == Ack::Fsynced || self.log.config().fsync == FsyncPolicy::Always;
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
            return self.send(frame(corr, kind, &resp)).await;
        };
        let Some(permit) = self.permit().await else {
            return false;
        };
        let log = self.log.clone();
        let tx = self.responses.clone();
        tokio::spawn(async move {
            let resp = match tokio::time::timeout(FSYNC_WAIT, log.wait_durable_async(ticket)).await
            {
                Ok(Ok(())) => resp,
                Ok(Err(e)) => error_response(&e),
                Err(_) => error_response(&StorageError::SyncTimeout(FSYNC_WAIT)),
            };
            let _ = tx.send(frame(corr, kind, &resp)).await;
            drop(permit);
        });
        true
    }
}

fn frame_of(corr: u32, kind: Option<u8>, resp: &Response) -> Vec<u8> {
    frame(corr, kind.unwrap_or(0), resp)
}

/// Reads from `offset`; when there is nothing yet, waits for an append (or `max_wait`, or
/// shutdown) and reads again.
async fn fetch(
    log: &Log,
    topic: &str,
    partition: u32,
    offset: u64,
    max_bytes: u32,
    max_wait: Duration,
    mut shutdown: broadcast::Receiver<()>,
) -> Response {
    let p = match log.partition(topic, partition) {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    let max_bytes = u64::from(max_bytes.clamp(1, MAX_FETCH_BYTES));
    let deadline = Instant::now() + max_wait.min(MAX_FETCH_WAIT);
    let mut end = p.subscribe();
    loop {
        // Mark the current end as seen before reading, so an append after the read wakes us.
        end.borrow_and_update();
        let r = match p.read(offset, max_bytes) {
            Ok(r) => r,
            Err(e) => return error_response(&e),
        };
        if !r.data.is_empty() || Instant::now() >= deadline {
            return Response::Fetched {
                end_offset: r.end_offset,
                start_offset: r.start_offset,
                data: r.data,
            };
        }
        tokio::select! {
            _ = tokio::time::timeout_at(deadline, end.changed()) => {}
            _ = shutdown.recv() => {
                return Response::Fetched {
                    end_offset: r.end_offset,
                    start_offset: r.start_offset,
                    data: Bytes::new(),
                };
            }
        }
    }
}
