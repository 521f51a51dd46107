//! Worker side: batches sends per partition and pipelines produce requests.
//!
//! A partition's buffer goes out when it is full, or when a request slot is free and the batch
//! has lingered `linger_ms`; while every slot is busy, messages accumulate into bigger batches
//! (natural batching: the busier the server, the larger the batches). Every round of sends is
//! written to the socket at once, acknowledged or not, so fire-and-forget is prompt too.
//!
//! When the server goes away, as a Kafka producer does: requests in flight stay unknown (they
//! may have arrived; resending them would duplicate), new batches wait in a bounded buffer while
//! the producer reconnects every 100 ms, and a batch that found no connection within
//! `delivery_timeout_ms` of its first message fails as not sent: certain, it never left here.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use mq_core::{AckSink, BackendError, Outcome, Outgoing, Producer, Seq, WorkerCtx};
use mqlog::client::{Ack, Client, ClientError, CorrelationId};

use crate::{Endpoint, Options};

/// One partition's records on their way out.
struct Batch {
    partition: u32,
    bytes: Vec<u8>,
    ends: Vec<usize>,
    seqs: Vec<Seq>,
    /// When its first record was added: linger and the delivery timeout count from here.
    since: Instant,
}

impl Batch {
    fn new(partition: u32) -> Batch {
        Batch {
            partition,
            bytes: Vec::new(),
            ends: Vec::new(),
            seqs: Vec::new(),
            since: Instant::now(),
        }
    }

    fn push(&mut self, payload: &[u8], seq: Seq) {
        if self.seqs.is_empty() {
            self.since = Instant::now();
        }
        self.bytes.extend_from_slice(payload);
        self.ends.push(self.bytes.len());
        self.seqs.push(seq);
    }

    fn records(&self) -> Vec<&[u8]> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let r = &self.bytes[start..end];
                start = end;
                r
            })
            .collect()
    }
}

pub struct LogProducer {
    /// None while the server is unreachable.
    client: Option<Client>,
    address: String,
    /// No reconnect attempt before this.
    retry_at: Instant,
    topic: String,
    ack: Ack,
    /// The batch filling up, per partition.
    open: Vec<Batch>,
    /// Closed batches that found no connection, oldest first (per partition in order).
    waiting: VecDeque<Batch>,
    /// Bytes in `open` and `waiting`.
    buffered: usize,
    /// Sent batches' buffers, kept for the next ones: a batch grows to its full size anew
    /// otherwise, reallocating as it goes.
    spare: Vec<Batch>,
    in_flight: HashMap<CorrelationId, Vec<Seq>>,
    batch_records: usize,
    batch_bytes: usize,
    linger: Duration,
    max_in_flight: usize,
    delivery_timeout: Duration,
    buffer_bytes: usize,
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
            open: (0..ctx.plan.workload.partitions).map(Batch::new).collect(),
            waiting: VecDeque::new(),
            buffered: 0,
            spare: Vec::new(),
            in_flight: HashMap::new(),
            batch_records: o.batch_records,
            batch_bytes: o.batch_bytes,
            linger: Duration::from_millis(o.linger_ms),
            max_in_flight: o.max_in_flight,
            delivery_timeout: Duration::from_millis(o.delivery_timeout_ms),
            buffer_bytes: o.buffer_bytes,
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
    fn lost(&mut self, e: ClientError) {
        tracing::warn!(
            "log: producer lost {} ({e}); {} requests in flight stay unknown",
            self.address,
            self.in_flight.len()
        );
        self.client = None;
        self.in_flight.clear();
        self.retry_at = Instant::now() + RETRY;
    }

    /// Partition `p`'s open batch, replaced by an empty one (recycled when there is one).
    fn take_open(&mut self, p: usize) -> Batch {
        let mut fresh = self.spare.pop().unwrap_or_else(|| Batch::new(p as u32));
        fresh.partition = p as u32;
        std::mem::replace(&mut self.open[p], fresh)
    }

    /// Hands one batch to the connection (buffered until the round is written), or keeps it
    /// waiting when there is none.
    fn dispatch(&mut self, mut b: Batch) -> Result<(), BackendError> {
        if self.connection().is_none() {
            self.waiting.push_back(b);
            return Ok(());
        }
        self.buffered -= b.bytes.len();
        let client = self.client.as_mut().expect("connected above");
        let sent = client.send_produce(&self.topic, b.partition, &b.records(), self.ack);
        let seqs = std::mem::take(&mut b.seqs);
        b.bytes.clear();
        b.ends.clear();
        self.spare.push(b);
        match sent {
            Ok(id) => {
                self.in_flight.insert(id, seqs);
                Ok(())
            }
            Err(ClientError::Invalid(m)) => Err(BackendError::other(
                crate::NAME,
                format!("producing to {}: {m}", self.topic),
            )),
            Err(e) => {
                self.lost(e); // this batch may or may not have arrived: unknown
                Ok(())
            }
        }
    }

    /// Writes what was dispatched and takes the acknowledgements that arrived, waiting up to
    /// `wait` for one. Fire-and-forget sends count as acked once written to the socket.
    fn collect(&mut self, wait: Duration, acks: &mut dyn AckSink) {
        let Some(client) = self.client.as_mut() else {
            return;
        };
        let got = match client.poll_responses(wait) {
            Ok(got) => got,
            Err(e) => return self.lost(e),
        };
        if self.ack == Ack::None {
            for (_, seqs) in self.in_flight.drain() {
                for s in seqs {
                    acks.ack(s, Outcome::Acked);
                }
            }
            return;
        }
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
    }

    /// Sends the waiting batches, then every open batch that is due (`all`: every non-empty
    /// one), and writes them out.
    fn dispatch_due(&mut self, all: bool, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        self.expire(acks);
        let connected = self.connection().is_some();
        let mut dispatched = false;
        while !self.waiting.is_empty() && self.client.is_some() {
            self.wait_for_slot(acks)?;
            let b = self.waiting.pop_front().expect("not empty");
            self.dispatch(b)?;
            dispatched = true;
        }
        for p in 0..self.open.len() {
            let b = &self.open[p];
            if b.seqs.is_empty() {
                continue;
            }
            let full = b.seqs.len() >= self.batch_records || b.bytes.len() >= self.batch_bytes;
            let lingered = b.since.elapsed() >= self.linger;
            // Without a connection a batch keeps filling until it is full.
            let slot = connected && self.in_flight.len() < self.max_in_flight;
            // A partition's waiting batches go first: its order is kept.
            let behind = self.waiting.iter().any(|w| w.partition == p as u32);
            if all || full || behind || (slot && lingered) {
                if self.client.is_some() {
                    self.wait_for_slot(acks)?;
                }
                let b = self.take_open(p);
                self.dispatch(b)?;
                dispatched = true;
            }
        }
        if dispatched {
            self.collect(Duration::ZERO, acks);
        }
        Ok(())
    }

    /// Fails, as not sent, the batches whose first message has waited longer than the delivery
    /// timeout for a connection.
    fn expire(&mut self, acks: &mut dyn AckSink) {
        let timeout = self.delivery_timeout;
        let late = move |b: &Batch| !b.seqs.is_empty() && b.since.elapsed() >= timeout;
        while self.waiting.front().is_some_and(late) {
            let b = self.waiting.pop_front().expect("not empty");
            self.fail_unsent(b, acks);
        }
        if self.client.is_none() {
            for p in 0..self.open.len() {
                if late(&self.open[p]) {
                    let b = self.take_open(p);
                    self.fail_unsent(b, acks);
                }
            }
        }
    }

    fn fail_unsent(&mut self, b: Batch, acks: &mut dyn AckSink) {
        self.buffered -= b.bytes.len();
        for s in b.seqs {
            acks.ack(s, Outcome::NotSent);
        }
    }

    fn wait_for_slot(&mut self, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        let deadline = Instant::now() + SLOT_TIMEOUT;
        while self.client.is_some() && self.in_flight.len() >= self.max_in_flight {
            if Instant::now() > deadline {
                return Err(BackendError::other(
                    crate::NAME,
                    format!(
                        "no produce acknowledgement from {} for {SLOT_TIMEOUT:?}",
                        self.address
                    ),
                ));
            }
            self.collect(Duration::from_millis(100), acks);
        }
        Ok(())
    }

    /// While the buffer is over its bound (no connection for a while), waits: reconnecting,
    /// sending, expiring batches past the delivery timeout, or until the worker is stopped.
    fn wait_for_buffer(&mut self, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        while self.buffered > self.buffer_bytes {
            if mq_core::stop::requested() {
                return Err(BackendError::Interrupted {
                    backend: crate::NAME,
                });
            }
            self.dispatch_due(false, acks)?;
            if self.buffered > self.buffer_bytes {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Ok(())
    }
}

impl Producer for LogProducer {
    fn send(&mut self, msg: &mut Outgoing<'_>, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        self.open[msg.partition.0 as usize].push(msg.payload(), msg.seq);
        self.buffered += msg.payload().len();
        if !self.in_flight.is_empty() {
            self.collect(Duration::ZERO, acks);
        }
        self.dispatch_due(false, acks)?;
        self.wait_for_buffer(acks)
    }

    fn poll(&mut self, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        if !self.in_flight.is_empty() {
            self.collect(Duration::ZERO, acks);
        }
        self.dispatch_due(false, acks)
    }

    fn flush(&mut self, timeout: Duration, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        let deadline = Instant::now() + timeout;
        loop {
            self.dispatch_due(true, acks)?;
            let left = deadline.saturating_duration_since(Instant::now());
            let waiting = !self.waiting.is_empty();
            if left.is_zero() || (!waiting && (self.in_flight.is_empty() || self.client.is_none()))
            {
                break;
            }
            match self.client.is_some() && !self.in_flight.is_empty() {
                true => self.collect(left.min(Duration::from_millis(100)), acks),
                false => std::thread::sleep(left.min(RETRY)),
            }
        }
        // Batches that never found a connection did not leave this process; what is still in
        // flight stays unknown.
        while let Some(b) = self.waiting.pop_front() {
            self.fail_unsent(b, acks);
        }
        Ok(())
    }
}
