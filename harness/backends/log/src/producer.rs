//! Worker side: batches sends per partition and pipelines produce requests.
//!
//! A partition's buffer goes out when it is full, or when a request slot is free and the batch
//! has lingered `linger_ms`; while every slot is busy, messages accumulate into bigger batches
//! (natural batching: the busier the server, the larger the batches). When the server goes
//! away, requests in flight stay unknown, sends while it is unreachable fail, and the producer
//! reconnects every 100 ms.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mq_core::{AckSink, BackendError, Outcome, Outgoing, Producer, Seq, WorkerCtx};
use mq_log::client::{Ack, Client, CorrelationId};

use crate::{Endpoint, Options};

#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    seqs: Vec<Seq>,
    since: Option<Instant>,
}

pub struct LogProducer {
    /// None while the server is unreachable.
    client: Option<Client>,
    address: String,
    /// No reconnect attempt before this.
    retry_at: Instant,
    topic: String,
    ack: Ack,
    batches: Vec<Batch>,
    in_flight: HashMap<CorrelationId, Vec<Seq>>,
    batch_records: usize,
    batch_bytes: usize,
    linger: Duration,
    max_in_flight: usize,
}

/// How often a producer that lost its server tries to reconnect (and how long one try may take).
const RETRY: Duration = Duration::from_millis(100);

/// How long a producer waits for a free request slot before giving up on the server.
const SLOT_TIMEOUT: Duration = Duration::from_secs(30);

impl LogProducer {
    pub fn new(
        client: Client,
        ep: Endpoint,
        o: &Options,
        ack: Ack,
        ctx: &WorkerCtx,
    ) -> LogProducer {
        LogProducer {
            client: Some(client),
            address: ep.address,
            retry_at: Instant::now(),
            topic: ep.topic,
            ack,
            batches: (0..ctx.plan.workload.partitions)
                .map(|_| Batch::default())
                .collect(),
            in_flight: HashMap::new(),
            batch_records: o.batch_records,
            batch_bytes: o.batch_bytes,
            linger: Duration::from_millis(o.linger_ms),
            max_in_flight: o.max_in_flight,
        }
    }

    /// The connection, reconnecting (at most every RETRY) when it was lost.
    fn connection(&mut self) -> Option<&mut Client> {
        if self.client.is_none() && Instant::now() >= self.retry_at {
            self.retry_at = Instant::now() + RETRY;
            if let Ok(c) = Client::connect(self.address.as_str(), RETRY) {
                tracing::warn!("log: producer reconnected to {}", self.address);
                self.client = Some(c);
            }
        }
        self.client.as_mut()
    }

    /// The server went away: what is in flight has no outcome (unknown); reconnect later.
    fn lost(&mut self, e: mq_log::client::ClientError) {
        tracing::warn!(
            "log: producer lost {} ({e}); {} requests in flight stay unknown",
            self.address,
            self.in_flight.len()
        );
        self.client = None;
        self.in_flight.clear();
        self.retry_at = Instant::now() + RETRY;
    }

    fn dispatch(&mut self, p: usize, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        if self.batches[p].seqs.is_empty() {
            return Ok(());
        }
        if self.connection().is_none() {
            // Not connected: these never left the producer.
            let b = &mut self.batches[p];
            for s in std::mem::take(&mut b.seqs) {
                acks.ack(s, Outcome::Failed);
            }
            b.bytes.clear();
            b.ends.clear();
            b.since = None;
            return Ok(());
        }
        let b = &mut self.batches[p];
        let mut start = 0;
        let records: Vec<&[u8]> = b
            .ends
            .iter()
            .map(|&end| {
                let r = &b.bytes[start..end];
                start = end;
                r
            })
            .collect();
        let sent = self.client.as_mut().expect("connected above").send_produce(
            &self.topic,
            p as u32,
            &records,
            self.ack,
        );
        let seqs = std::mem::take(&mut b.seqs);
        b.bytes.clear();
        b.ends.clear();
        b.since = None;
        let id = match sent {
            Ok(id) => id,
            Err(mq_log::client::ClientError::Invalid(m)) => {
                return Err(BackendError::other(
                    crate::NAME,
                    format!("producing to {}/{p}: {m}", self.topic),
                ))
            }
            Err(e) => {
                self.lost(e); // this batch may or may not have arrived: unknown
                return Ok(());
            }
        };
        if self.ack == Ack::None {
            for s in seqs {
                acks.ack(s, Outcome::Acked); // fire and forget: acked when handed over
            }
        } else {
            self.in_flight.insert(id, seqs);
        }
        Ok(())
    }

    fn collect(&mut self, wait: Duration, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        let Some(client) = self.client.as_mut() else {
            return Ok(());
        };
        let got = match client.poll_responses(wait) {
            Ok(got) => got,
            Err(e) => {
                self.lost(e);
                return Ok(());
            }
        };
        for (id, result) in got {
            if let Some(seqs) = self.in_flight.remove(&id) {
                let outcome = if result.is_ok() {
                    Outcome::Acked
                } else {
                    Outcome::Failed
                };
                for s in seqs {
                    acks.ack(s, outcome);
                }
            }
        }
        Ok(())
    }

    /// Sends every batch that is due; `all` sends every non-empty batch regardless.
    fn dispatch_due(&mut self, all: bool, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        for p in 0..self.batches.len() {
            let b = &self.batches[p];
            if b.seqs.is_empty() {
                continue;
            }
            let full = b.seqs.len() >= self.batch_records || b.bytes.len() >= self.batch_bytes;
            let lingered = b.since.is_some_and(|t| t.elapsed() >= self.linger);
            let slot = self.in_flight.len() < self.max_in_flight;
            if all || full || (slot && lingered) {
                self.wait_for_slot(acks)?;
                self.dispatch(p, acks)?;
            }
        }
        Ok(())
    }

    fn wait_for_slot(&mut self, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        let deadline = Instant::now() + SLOT_TIMEOUT;
        while self.in_flight.len() >= self.max_in_flight {
            if Instant::now() > deadline {
                return Err(BackendError::other(
                    crate::NAME,
                    format!(
                        "no produce acknowledgement from {} for {SLOT_TIMEOUT:?}",
                        self.address
                    ),
                ));
            }
            self.collect(Duration::from_millis(100), acks)?;
        }
        Ok(())
    }
}

impl Producer for LogProducer {
    fn send(&mut self, msg: &Outgoing<'_>, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        let b = &mut self.batches[msg.partition.0 as usize];
        b.bytes.extend_from_slice(msg.payload);
        b.ends.push(b.bytes.len());
        b.seqs.push(msg.seq);
        b.since.get_or_insert_with(Instant::now);
        if !self.in_flight.is_empty() {
            self.collect(Duration::ZERO, acks)?;
        }
        self.dispatch_due(false, acks)
    }

    fn poll(&mut self, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        if !self.in_flight.is_empty() {
            self.collect(Duration::ZERO, acks)?;
        }
        self.dispatch_due(false, acks)
    }

    fn flush(&mut self, timeout: Duration, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        self.dispatch_due(true, acks)?;
        let deadline = Instant::now() + timeout;
        while !self.in_flight.is_empty() && self.client.is_some() && Instant::now() < deadline {
            self.collect(
                deadline
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(100)),
                acks,
            )?;
        }
        Ok(()) // what is still in flight stays unknown
    }
}
