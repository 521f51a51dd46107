//! Worker side: publishes partition p's messages to subject `<stream>.<p>`.
//!
//! `producer_ack = none` is a core NATS publish: acked once handed to the client's connection
//! (no reply from the server). Otherwise it is a JetStream publish: acked when the PubAck
//! arrives, up to `max_in_flight` outstanding, kept in publish order and polled from the
//! oldest (one stream answers in the order it stores; polling in place costs no task and no
//! channel per message). While the oldest waits (its PubAck lost with a killed server, say),
//! every outstanding one is polled too, every [`SCAN_EVERY`], so that later PubAcks are timed
//! within that of their arrival, not behind it.
//!
//! The client reconnects by itself after losing the server; a publish left without a PubAck
//! (timed out, or the connection dropped) stays unknown; "no responders" (nothing stored the
//! message: its stream is gone, e.g. a memory stream after a restart) counts as failed, and
//! the stream is created again so the next publishes land; so it is after each reconnect.

use std::collections::VecDeque;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::Context;
use bytes::Bytes;
use futures_lite::future::poll_once;
use mq_core::delivery::ProducerAck;
use mq_core::{AckSink, BackendError, Outcome, Outgoing, Producer, Seq, WorkerCtx};
use tokio::runtime::Runtime;

use crate::conn::{self, unless_stopped, Endpoint};
use crate::options::Options;
use crate::NAME;

/// A publish awaiting its PubAck.
type Pending = Pin<Box<dyn Future<Output = Result<PublishAck, PublishError>> + Send>>;

/// While the oldest publish has waited this long, every outstanding one is polled this often
/// (a few µs per thousand in flight), not only the oldest.
const SCAN_EVERY: Duration = Duration::from_millis(5);

/// Least time between two attempts to create a stream that a publish found missing.
const ENSURE_EVERY: Duration = Duration::from_secs(1);

pub struct NatsProducer {
    rt: Runtime,
    conn: conn::Connection,
    js: Context,
    ep: Endpoint,
    /// Subject of partition p.
    subjects: Vec<String>,
    /// JetStream publish (PubAck) rather than core publish.
    confirms: bool,
    /// Publishes awaiting their PubAck, oldest first, with when each was published.
    in_flight: VecDeque<(Seq, Instant, Pending)>,
    /// When every outstanding publish was last polled.
    scanned: Instant,
    max_in_flight: usize,
    ack_timeout: Duration,
    /// When the stream was last found missing and created again.
    ensured: Option<Instant>,
}

impl NatsProducer {
    pub fn open(ctx: &WorkerCtx, options: &Options) -> Result<NatsProducer, BackendError> {
        let ep = Endpoint::from_value(&ctx.endpoint)?;
        let (urls, shown) = options
            .connect_urls()
            .map_err(|m| BackendError::other(NAME, m))?;
        let rt = conn::runtime()?;
        let name = format!("mq-bench {} producer {}", ctx.plan.name, ctx.index);
        let conn = rt.block_on(conn::connect(&urls, &shown, &name))?;
        let client = conn.client.clone();
        let ack_timeout = ctx.plan.workload.ack_timeout.0;
        let max_in_flight = options.max_in_flight as usize;
        let js = conn::jetstream(&rt, client.clone(), ack_timeout, max_in_flight + 1);
        Ok(NatsProducer {
            rt,
            conn,
            js,
            subjects: (0..ep.partitions).map(|p| ep.subject(p)).collect(),
            ep,
            confirms: ctx.plan.delivery.producer_ack != ProducerAck::None,
            in_flight: VecDeque::new(),
            scanned: Instant::now(),
            max_in_flight,
            ack_timeout,
            ensured: None,
        })
    }

    /// Reports the outcomes that have arrived; with `wait`, first waits up to it for one.
    fn reap(&mut self, acks: &mut dyn AckSink, wait: Option<Duration>) -> Result<(), BackendError> {
        if self.in_flight.is_empty() {
            return Ok(());
        }
        let mut got = Vec::new();
        let deadline = wait.map(|limit| Instant::now() + limit);
        loop {
            self.collect(&mut got);
            let Some(deadline) = deadline else { break };
            if !got.is_empty() || self.in_flight.is_empty() || Instant::now() >= deadline {
                break;
            }
            if mq_core::stop::requested() {
                return Err(BackendError::Interrupted { backend: NAME });
            }
            // In slices, so that a stop request is seen and later PubAcks are taken too.
            let slice = deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(50));
            if let Some((seq, _, first)) = self.in_flight.front_mut() {
                let r = self
                    .rt
                    .block_on(async { tokio::time::timeout(slice, first).await });
                if let Ok(r) = r {
                    got.push((*seq, outcome(r)));
                    self.in_flight.pop_front();
                }
            }
        }
        let mut missing_stream = false;
        let outcomes: Vec<(Seq, Outcome)> = got
            .into_iter()
            .filter_map(|(seq, o)| {
                missing_stream |= o == Some(Outcome::Failed);
                Some((seq, o?))
            })
            .collect();
        acks.ack_all(&outcomes);
        if missing_stream {
            self.recreate_stream();
        }
        Ok(())
    }

    /// Takes the outcomes that have come without waiting: from the oldest on, in order, and, at
    /// most every [`SCAN_EVERY`] while the oldest has waited that long, all of them.
    fn collect(&mut self, got: &mut Vec<(Seq, Option<Outcome>)>) {
        let scan = self.scanned.elapsed() >= SCAN_EVERY;
        let (in_flight, scanned) = (&mut self.in_flight, &mut self.scanned);
        self.rt.block_on(async {
            while let Some((seq, _, next)) = in_flight.front_mut() {
                let Some(r) = poll_once(next).await else {
                    break;
                };
                got.push((*seq, outcome(r)));
                in_flight.pop_front();
            }
            let waited = |(_, at, _): &(Seq, Instant, Pending)| at.elapsed() >= SCAN_EVERY;
            if scan && in_flight.front().is_some_and(waited) {
                *scanned = Instant::now();
                got.extend(std::future::poll_fn(|cx| Poll::Ready(take_ready(in_flight, cx))).await);
            }
        });
    }

    /// Creates the stream again (at most once per [`ENSURE_EVERY`]) after a publish found no
    /// stream to store it: a memory stream does not survive its server's restart.
    fn recreate_stream(&mut self) {
        if self.ensured.is_some_and(|t| t.elapsed() < ENSURE_EVERY) {
            return;
        }
        self.ensured = Some(Instant::now());
        let (ep, js) = (&self.ep, &self.js);
        if let Err(e) = self.rt.block_on(ep.ensure(js, std::iter::empty())) {
            tracing::debug!("nats: producer could not create stream {}: {e}", ep.stream);
        }
    }

    /// A JetStream publish, kept with its PubAck to come; the outcome if it is known now (it
    /// did not leave, or it was answered at once).
    fn publish_confirmed(&mut self, seq: Seq, subject: String, payload: Bytes) -> Option<Outcome> {
        let js = &self.js;
        let sent: Result<Result<(Pending, _), _>, _> = self.rt.block_on(async {
            let sent = tokio::time::timeout(self.ack_timeout, js.publish(subject, payload)).await;
            match sent {
                // Polled once now: its own timeout (ack_timeout) starts with the publish, not
                // when the publishes before it are answered.
                Ok(Ok(pending)) => {
                    let mut pending: Pending = pending.into_future();
                    let ready = poll_once(&mut pending).await;
                    Ok(Ok((pending, ready)))
                }
                Ok(Err(e)) => Ok(Err(e)),
                Err(e) => Err(e),
            }
        });
        match sent {
            // Answered at once (or unknown at once: then never reported).
            Ok(Ok((_, Some(r)))) => outcome(r),
            Ok(Ok((pending, None))) => {
                self.in_flight.push_back((seq, Instant::now(), pending));
                None
            }
            Ok(Err(e)) => {
                tracing::debug!("nats: publish of seq {} refused: {e}", seq.0);
                Some(Outcome::Failed)
            }
            // Still in the client's queue, waiting for the connection: it never left.
            Err(_) => Some(Outcome::NotSent),
        }
    }
}

/// Removes from `in_flight` every publish whose PubAck (or error) has come, with its outcome.
fn take_ready(
    in_flight: &mut VecDeque<(Seq, Instant, Pending)>,
    cx: &mut TaskContext<'_>,
) -> Vec<(Seq, Option<Outcome>)> {
    let mut ready = Vec::new();
    in_flight.retain_mut(|(seq, _, pending)| match pending.as_mut().poll(cx) {
        Poll::Ready(r) => {
            ready.push((*seq, outcome(r)));
            false
        }
        Poll::Pending => true,
    });
    ready
}

/// What a PubAck (or its absence) says: None when unknown (no answer, the connection lost).
fn outcome(r: Result<PublishAck, PublishError>) -> Option<Outcome> {
    match r {
        Ok(_) => Some(Outcome::Acked),
        Err(e) => match e.kind() {
            // "no responders": nothing stored it.
            PublishErrorKind::StreamNotFound => Some(Outcome::Failed),
            PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe => None,
            _ => Some(Outcome::Failed),
        },
    }
}

impl Producer for NatsProducer {
    fn send(&mut self, msg: &mut Outgoing<'_>, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        let Some(subject) = self.subjects.get(msg.partition.0 as usize).cloned() else {
            return Err(BackendError::other(
                NAME,
                format!(
                    "partition {} does not exist (the run has {} subjects)",
                    msg.partition.0,
                    self.subjects.len()
                ),
            ));
        };
        let payload = Bytes::copy_from_slice(msg.payload());
        if self.conn.reconnected() {
            // The server may have restarted without the stream (a memory stream).
            self.ensured = None;
            self.recreate_stream();
        }
        if !self.confirms {
            let client = &self.conn.client;
            let sent = self.rt.block_on(unless_stopped(async {
                Ok(tokio::time::timeout(self.ack_timeout, client.publish(subject, payload)).await)
            }))?;
            let outcome = match sent {
                Ok(Ok(())) => Outcome::Acked,
                Ok(Err(_)) => Outcome::Failed,
                Err(_) => Outcome::NotSent,
            };
            acks.ack(msg.seq, outcome);
            return Ok(());
        }
        while self.in_flight.len() >= self.max_in_flight {
            self.reap(acks, Some(self.ack_timeout))?;
        }
        if let Some(o) = self.publish_confirmed(msg.seq, subject, payload) {
            acks.ack(msg.seq, o);
        }
        self.reap(acks, None)
    }

    fn poll(&mut self, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        self.reap(acks, None)
    }

    fn flush(&mut self, timeout: Duration, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        let deadline = Instant::now() + timeout;
        if !self.confirms {
            let client = &self.conn.client;
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(timeout, client.flush()).await });
            return Ok(());
        }
        while !self.in_flight.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.reap(acks, Some(left)) {
                Ok(()) => {}
                Err(BackendError::Interrupted { .. }) => break,
                Err(e) => return Err(e),
            }
        }
        if !self.in_flight.is_empty() {
            tracing::warn!(
                "nats: {} publishes without a PubAck after {:.1}s: unknown",
                self.in_flight.len(),
                timeout.as_secs_f64()
            );
        }
        Ok(())
    }
}
