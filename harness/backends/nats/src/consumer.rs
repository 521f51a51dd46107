//! Worker side: one durable pull consumer per partition read (`p<partition>`, filtering
//! `<stream>.<p>`), each consumed as a continuous pull stream of at most `batch` buffered
//! messages. `after-process`: each message is acked (`+ACK`) once the sink has it; `auto`: the
//! consumer's AckPolicy is None, so the server forgets a message as it sends it. A message
//! the sink processes later (processing threads, the dedup store) is acked when its token comes
//! back through `processed`.
//!
//! After each reconnect the stream and consumers are made again if the server lost them. A
//! pull stream that ends, or whose consumer is gone (a memory stream lost with its server), is
//! opened again, creating the stream and consumer if they are missing; messages delivered and
//! not acked come again after `ack_wait` (the checker counts the duplicates). Other errors (a
//! missed heartbeat of a busy or restarting server) are passed over: the pull stream asks again
//! by itself, and dropping it would drop the messages it holds until their `ack_wait` is over
//! (then delivered late: out of order).

use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::pull::MessagesErrorKind;
use async_nats::jetstream::consumer::{pull, PullConsumer};
use async_nats::jetstream::{self, Context};
use futures_lite::future::poll_once;
use futures_lite::Stream;
use mq_core::{BackendError, Consumer, DeliverySink, Partition, Processed, Token, WorkerCtx};
use tokio::runtime::Runtime;

use crate::conn::{self, unless_stopped, Endpoint};
use crate::options::Options;
use crate::NAME;

/// Pause after a failed attempt to open a pull stream.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

struct Part {
    partition: Partition,
    /// None until opened, and again after it failed.
    messages: Option<pull::Stream>,
}

pub struct NatsConsumer {
    rt: Runtime,
    conn: conn::Connection,
    js: Context,
    ep: Endpoint,
    parts: Vec<Part>,
    batch: usize,
    index: u16,
    /// Where the next round-robin scan starts.
    next: usize,
    /// Since when some pull stream could not be opened.
    failing_since: Option<Instant>,
    reconnect_timeout: Duration,
    /// Messages handed over to be processed later, by their token's offset, to ack then.
    later: HashMap<u64, jetstream::Message>,
    /// The offset of the next token (a count of deliveries: tokens only need to be unique).
    next_token: u64,
}

impl NatsConsumer {
    pub fn open(ctx: &WorkerCtx, options: &Options) -> Result<NatsConsumer, BackendError> {
        let ep = Endpoint::from_value(&ctx.endpoint)?;
        if ctx.partitions.is_empty() {
            return Err(BackendError::other(
                NAME,
                "consumer has no partitions to read",
            ));
        }
        let mut parts = Vec::new();
        for &p in &ctx.partitions {
            if p.0 >= ep.partitions {
                return Err(BackendError::other(
                    NAME,
                    format!(
                        "partition {} does not exist (the run has {})",
                        p.0, ep.partitions
                    ),
                ));
            }
            parts.push(Part {
                partition: p,
                messages: None,
            });
        }
        let (urls, shown) = options
            .connect_urls()
            .map_err(|m| BackendError::other(NAME, m))?;
        let rt = conn::runtime()?;
        let name = format!("mq-bench {} consumer {}", ctx.plan.name, ctx.index);
        let conn = rt.block_on(conn::connect(&urls, &shown, &name))?;
        let client = conn.client.clone();
        let js = conn::jetstream(&rt, client.clone(), conn::OP_TIMEOUT, 64);
        let mut c = NatsConsumer {
            rt,
            conn,
            js,
            ep,
            parts,
            batch: options.batch as usize,
            index: ctx.index,
            next: 0,
            failing_since: None,
            reconnect_timeout: Duration::from_millis(u64::from(options.reconnect_timeout_ms)),
            later: HashMap::new(),
            next_token: 0,
        };
        // The first attempt is not retried: a server without the stream is a setup error.
        c.attach()?;
        Ok(c)
    }

    /// Opens the pull streams that are not open, creating stream and consumers if missing.
    fn attach(&mut self) -> Result<(), BackendError> {
        let NatsConsumer {
            rt,
            js,
            ep,
            parts,
            batch,
            ..
        } = self;
        let closed: Vec<u32> = (parts.iter())
            .filter(|p| p.messages.is_none())
            .map(|p| p.partition.0)
            .collect();
        if closed.is_empty() {
            return Ok(());
        }
        let opened = rt.block_on(unless_stopped(async {
            let stream = ep.ensure(js, closed.iter().copied()).await?;
            let mut opened = Vec::new();
            for &p in &closed {
                let consumer: PullConsumer = conn::bounded(
                    || format!("binding consumer {} of {}", ep.consumer(p), ep.stream),
                    stream.get_consumer(&ep.consumer(p)),
                )
                .await?;
                let messages = conn::bounded(
                    || format!("pulling from consumer {} of {}", ep.consumer(p), ep.stream),
                    consumer
                        .stream()
                        .max_messages_per_batch(*batch)
                        .heartbeat(Duration::from_secs(5))
                        .expires(Duration::from_secs(30))
                        .messages(),
                )
                .await?;
                opened.push((p, messages));
            }
            Ok(opened)
        }))?;
        for (p, messages) in opened {
            if let Some(part) = parts.iter_mut().find(|x| x.partition.0 == p) {
                part.messages = Some(messages);
            }
        }
        Ok(())
    }

    /// After a reconnect: the stream and this consumer's consumers made again if the server lost
    /// them (a memory stream); the open pull streams go on pulling from them by name.
    fn ensure_after_reconnect(&mut self) {
        let NatsConsumer {
            rt, js, ep, parts, ..
        } = self;
        let all = parts.iter().map(|p| p.partition.0);
        if let Err(e) = rt.block_on(unless_stopped(ep.ensure(js, all))) {
            tracing::debug!("nats: consumer {} after a reconnect: {e}", self.index);
        }
    }

    /// Opens what is closed; an error only once that has failed for `reconnect_timeout_ms`.
    fn reattach(&mut self, max_wait: Duration) -> Result<(), BackendError> {
        match self.attach() {
            Ok(()) => {
                if let Some(t) = self.failing_since.take() {
                    tracing::warn!(
                        "nats: consumer {} pulling again {:.1}s after the loss",
                        self.index,
                        t.elapsed().as_secs_f64()
                    );
                }
                Ok(())
            }
            Err(e @ BackendError::Interrupted { .. }) => Err(e),
            Err(e) => {
                let since = *self.failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= self.reconnect_timeout {
                    return Err(BackendError::other(
                        NAME,
                        format!(
                            "consumer {} gave up after {:.0}s without its pull subscription: {e}",
                            self.index,
                            since.elapsed().as_secs_f64()
                        ),
                    ));
                }
                tracing::debug!("nats: consumer {}: {e}", self.index);
                std::thread::sleep(max_wait.min(RETRY_PAUSE));
                Ok(())
            }
        }
    }

    /// Hands over what has arrived (waiting up to `max_wait` for the first), acking each
    /// message after the sink has processed it when acks are explicit.
    fn receive(&mut self, max_wait: Duration, sink: &mut dyn DeliverySink) -> usize {
        let NatsConsumer {
            rt,
            parts,
            next,
            batch,
            ep,
            index,
            later,
            next_token,
            ..
        } = self;
        let (explicit, max_batch, index) = (ep.explicit, (*batch).max(64), *index);
        rt.block_on(async {
            let first = tokio::time::timeout(
                max_wait,
                std::future::poll_fn(|cx| poll_any(parts, next, cx)),
            )
            .await;
            let Ok(mut item) = first else {
                return 0;
            };
            let (mut taken, mut held) = (0, 0);
            loop {
                if let Some((partition, m)) = item {
                    let offset = *next_token;
                    *next_token += 1;
                    let token = Token { partition, offset };
                    taken += 1;
                    match (sink.deliver_token(&m.payload, token), explicit) {
                        (Processed::Now, true) => ack(&m, index).await,
                        (Processed::Later, true) => {
                            later.insert(offset, m);
                            held += 1;
                        }
                        (Processed::Later, false) => held += 1,
                        (Processed::Now, false) => {}
                    }
                }
                if taken >= max_batch || (held > 0 && held >= sink.later_batch()) {
                    break;
                }
                item = match poll_once(std::future::poll_fn(|cx| poll_any(parts, next, cx))).await {
                    None => break,
                    Some(i) => i,
                };
            }
            taken
        })
    }
}

/// `+ACK` of one message; one that fails comes again after `ack_wait`.
async fn ack(m: &jetstream::Message, index: u16) {
    if let Err(e) = m.ack().await {
        tracing::debug!("nats: consumer {index}: ack: {e}");
    }
}

/// The next message of any open pull stream, scanning from `next` so that none starves;
/// `Ready(None)` when a stream reported an error (closed, to be opened again, if it ended or its
/// consumer is gone).
fn poll_any(
    parts: &mut [Part],
    next: &mut usize,
    cx: &mut TaskContext<'_>,
) -> Poll<Option<(Partition, jetstream::Message)>> {
    let n = parts.len();
    for k in 0..n {
        let i = (*next + k) % n;
        let Some(messages) = parts[i].messages.as_mut() else {
            continue;
        };
        match Pin::new(messages).poll_next(cx) {
            Poll::Ready(Some(Ok(m))) => {
                *next = (i + 1) % n;
                return Poll::Ready(Some((parts[i].partition, m)));
            }
            Poll::Ready(Some(Err(e))) => {
                tracing::debug!(
                    "nats: pull stream of partition {}: {e}",
                    parts[i].partition.0
                );
                if matches!(
                    e.kind(),
                    MessagesErrorKind::ConsumerDeleted
                        | MessagesErrorKind::NoResponders
                        | MessagesErrorKind::RequestLimitExceeded
                ) {
                    parts[i].messages = None;
                }
                return Poll::Ready(None);
            }
            Poll::Ready(None) => {
                parts[i].messages = None;
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
    }
    Poll::Pending
}

impl Consumer for NatsConsumer {
    fn poll(
        &mut self,
        max_wait: Duration,
        sink: &mut dyn DeliverySink,
    ) -> Result<usize, BackendError> {
        if self.conn.reconnected() {
            self.ensure_after_reconnect();
        }
        if self.parts.iter().any(|p| p.messages.is_none()) {
            self.reattach(max_wait)?;
            if self.parts.iter().all(|p| p.messages.is_none()) {
                return Ok(0);
            }
        }
        Ok(self.receive(max_wait, sink))
    }

    fn processed(&mut self, tokens: &[Token]) -> Result<(), BackendError> {
        let NatsConsumer {
            rt, later, index, ..
        } = self;
        let done: Vec<jetstream::Message> = (tokens.iter())
            .filter_map(|t| later.remove(&t.offset))
            .collect();
        rt.block_on(async {
            for m in &done {
                ack(m, *index).await;
            }
        });
        Ok(())
    }

    fn close(&mut self) -> Result<(), BackendError> {
        for p in &mut self.parts {
            p.messages = None;
        }
        // The acks are queued in the client: written before we leave.
        let client = &self.conn.client;
        let _ = self
            .rt
            .block_on(async { tokio::time::timeout(conn::OP_TIMEOUT, client.flush()).await });
        Ok(())
    }
}
