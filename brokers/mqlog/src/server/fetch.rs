//! One fetch, served in a task of its own: it long-polls for records holding no memory, then
//! reserves room for its answer in its connection's and the server's response budgets before it
//! reads, so an attacker's unread fetches cannot grow the server.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::budget::{ByteBudget, ResponseBudget};
use super::connection::Outgoing;
use super::handler::{encoded, error_response, Shared};
use super::limits::{RESPONSE_BUDGET_WAIT, SHED_EVERY, SHED_STALLED_FOR};
use super::registry::ConnState;
use crate::protocol::{encode_fetched_head, kind, ErrorCode, Response, FETCHED_HEAD_LEN};
use crate::storage::{ReadResult, StorageError};

/// One fetch request, served in a task of its own.
pub(crate) struct Fetch {
    pub(crate) shared: Arc<Shared>,
    pub(crate) conn: Arc<ConnState>,
    pub(crate) conn_budget: ByteBudget,
    pub(crate) corr: u32,
    pub(crate) topic: String,
    pub(crate) partition: u32,
    pub(crate) offset: u64,
    pub(crate) max_bytes: u32,
    pub(crate) max_wait: Duration,
}

impl Fetch {
    fn error(&self, resp: &Response) -> Outgoing {
        encoded(self.corr, kind::FETCH, resp)
    }

    fn fetched(&self, r: ReadResult, budget: Option<ResponseBudget>) -> Outgoing {
        let mut head = Vec::with_capacity(FETCHED_HEAD_LEN);
        encode_fetched_head(
            &mut head,
            self.corr,
            r.end_offset,
            r.start_offset,
            r.data.len(),
        );
        Outgoing {
            head,
            body: r.data,
            budget,
        }
    }

    /// Waits until there are records at `offset` (or `max_wait`, or shutdown) holding no
    /// memory, then reserves room for the answer and reads it.
    pub(crate) async fn run(self, mut shutdown: broadcast::Receiver<()>) -> Outgoing {
        let log = &self.shared.log;
        let p = match log.partition(&self.topic, self.partition) {
            Ok(p) => p,
            Err(e) => return self.error(&error_response(&e)),
        };
        let max_bytes = u64::from(self.max_bytes.clamp(1, self.shared.limits.max_fetch_bytes));
        let deadline = Instant::now() + self.max_wait.min(self.shared.limits.max_fetch_wait());
        let mut end = p.subscribe();
        let empty = |start_offset, end_offset| ReadResult {
            data: Bytes::new(),
            end_offset,
            start_offset,
        };
        {
            let _waiting = self.conn.waiting();
            loop {
                // Mark the current end as seen before looking, so an append after it wakes us.
                end.borrow_and_update();
                let (start, end_now) = (p.start_offset(), p.end_offset());
                if self.offset < start || self.offset > end_now {
                    return self.error(&error_response(&StorageError::OffsetOutOfRange {
                        topic: self.topic.clone(),
                        partition: self.partition,
                        offset: self.offset,
                        start,
                        end: end_now,
                    }));
                }
                if self.offset < end_now {
                    break;
                }
                if Instant::now() >= deadline {
                    return self.fetched(empty(start, end_now), None);
                }
                tokio::select! {
                    _ = tokio::time::timeout_at(deadline, end.changed()) => {}
                    _ = shutdown.recv() => return self.fetched(empty(start, end_now), None),
                }
            }
        }
        let mut budget = match self.reserve(FETCHED_HEAD_LEN as u64 + max_bytes).await {
            Ok(b) => b,
            Err(resp) => return self.error(&resp),
        };
        let mut r = match p.read(self.offset, max_bytes) {
            Ok(r) => r,
            Err(e) => return self.error(&error_response(&e)),
        };
        let mut need = (FETCHED_HEAD_LEN + r.data.len()) as u64;
        if !budget.try_grow_to(need, &self.conn_budget) {
            // The answer starts with a batch larger than `max_bytes`. Hold it only with room for
            // it: drop it, wait for room for its size, and read it again (the batches are
            // immutable, so the same bytes, or fewer if retention took them). Unbudgeted bytes
            // thus live only between a read and this check, with no await in between.
            drop(r);
            drop(budget);
            budget = match self.reserve(need).await {
                Ok(b) => b,
                Err(resp) => return self.error(&resp),
            };
            r = match p.read(self.offset, max_bytes) {
                Ok(r) => r,
                Err(e) => return self.error(&error_response(&e)),
            };
            need = (FETCHED_HEAD_LEN + r.data.len()) as u64;
        }
        budget.shrink_to(need);
        self.fetched(r, Some(budget))
    }

    /// Room for `bytes` of response: first in this connection's budget (a client that does not
    /// read waits here, in line behind its own responses), then in the server's, taken as soon
    /// as it has room, whoever else waits (so a small fetch does not queue behind large ones).
    /// While the server's is full, closes the connection that has not read its responses for
    /// longest, every [`SHED_EVERY`], until there is room or [`RESPONSE_BUDGET_WAIT`] passes
    /// ("busy").
    async fn reserve(&self, bytes: u64) -> Result<ResponseBudget, Response> {
        let conn_permit = self.conn_budget.acquire(bytes).await;
        let bytes = conn_permit.num_permits() as u64;
        let global = &self.shared.responses;
        let started = Instant::now();
        let mut shed_at = started + SHED_EVERY;
        loop {
            let released = global.released();
            tokio::pin!(released);
            released.as_mut().enable();
            if let Some(permit) = global.try_acquire(bytes) {
                return Ok(ResponseBudget::new(
                    conn_permit,
                    permit,
                    global.clone(),
                    self.conn.clone(),
                ));
            }
            tokio::select! {
                _ = released => {}
                _ = tokio::time::sleep_until(shed_at) => {
                    shed_at += SHED_EVERY;
                    if let Some(shed) = self.shared.registry.shed_stalled(self.conn.id, SHED_STALLED_FOR) {
                        tracing::info!(
                            peer = %shed.peer, held = shed.held, stalled = ?shed.stalled_for,
                            "response budget exhausted: closed the connection that stopped reading its responses"
                        );
                    }
                    if started.elapsed() >= RESPONSE_BUDGET_WAIT {
                        return Err(Response::Error {
                            code: ErrorCode::Timeout,
                            message: format!(
                                "server busy: no room for a fetch response of {bytes} bytes within \
                                 {RESPONSE_BUDGET_WAIT:?} ({} bytes of responses are waiting to be \
                                 written); retry",
                                global.capacity()
                            ),
                        });
                    }
                }
            }
        }
    }
}
