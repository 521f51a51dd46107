//! A blocking client of the log server for workers that are not async (std::net only).
//!
//! One connection, pipelined: [`Client::send_produce`] queues a request and returns its
//! correlation id at once; [`Client::poll_responses`] flushes and collects the acknowledgements
//! that arrived. A background reader thread decodes responses into a bounded channel, so the
//! caller's thread only encodes and writes. The request-response calls (`fetch`, `commit`, …)
//! share the connection; produce acks that arrive while they wait are kept for the next poll.

use std::collections::VecDeque;
use std::io::{BufWriter, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod error;
mod group;
mod reader;

use error::{deadline_after, server_error};
pub use error::{ClientError, Result};
pub use group::Joined;
use reader::{read_loop, Incoming, INCOMING_QUEUE};

use crate::protocol::{encode_produce, encode_request, kind, Request, Response};
pub use crate::protocol::{Ack, ErrorCode};
use crate::storage::decode_batches;
pub use crate::storage::Record;

/// Identifies one request on a connection; responses carry it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CorrelationId(pub u32);

/// Records fetched from a partition.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Records at or after the requested offset, in offset order.
    pub records: Vec<Record>,
    /// The partition's end offset when the server read.
    pub end_offset: u64,
    /// The first retained offset.
    pub start_offset: u64,
}

/// One produce acknowledgement: the batch's base offset, or why it failed.
pub type ProduceAck = (CorrelationId, Result<u64>);

/// A connection to the log server.
pub struct Client {
    addr: SocketAddr,
    stream: TcpStream,
    writer: BufWriter<TcpStream>,
    incoming: Receiver<Incoming>,
    reader: Option<JoinHandle<()>>,
    next_id: u32,
    acks: VecDeque<ProduceAck>,
    produces_in_flight: usize,
    request_timeout: Duration,
    scratch: Vec<u8>,
    broken: Option<String>,
}

impl Client {
    /// Connects within `timeout` (per address tried).
    pub fn connect(addr: impl ToSocketAddrs, timeout: Duration) -> Result<Client> {
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|source| ClientError::Connect {
                addr: "?".into(),
                source,
            })?
            .collect();
        let mut last = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, timeout) {
                Ok(s) => return Client::from_stream(s, a),
                Err(e) => last = Some((a, e)),
            }
        }
        let (a, source) = last.unwrap_or_else(|| {
            (
                SocketAddr::from(([0, 0, 0, 0], 0)),
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address"),
            )
        });
        Err(ClientError::Connect {
            addr: a.to_string(),
            source,
        })
    }

    fn from_stream(stream: TcpStream, addr: SocketAddr) -> Result<Client> {
        let io = |context: &str| {
            let context = format!("{context} ({addr})");
            move |source| ClientError::Io { context, source }
        };
        stream
            .set_nodelay(true)
            .map_err(io("setting TCP_NODELAY"))?;
        let request_timeout = Duration::from_secs(30);
        stream
            .set_write_timeout(Some(request_timeout))
            .map_err(io("setting the write timeout"))?;
        let read_half = stream.try_clone().map_err(io("cloning the socket"))?;
        let write_half = stream.try_clone().map_err(io("cloning the socket"))?;
        let (tx, rx) = mpsc::sync_channel(INCOMING_QUEUE);
        let reader = std::thread::Builder::new()
            .name("mqlog-client-reader".into())
            .spawn(move || read_loop(read_half, tx))
            .map_err(io("spawning the reader thread"))?;
        Ok(Client {
            addr,
            stream,
            writer: BufWriter::with_capacity(1 << 20, write_half),
            incoming: rx,
            reader: Some(reader),
            next_id: 0,
            acks: VecDeque::new(),
            produces_in_flight: 0,
            request_timeout,
            scratch: Vec::new(),
            broken: None,
        })
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How long request-response calls wait (default 30 s); fetch adds its `max_wait`.
    pub fn set_request_timeout(&mut self, timeout: Duration) {
        self.request_timeout = timeout;
        let _ = self.stream.set_write_timeout(Some(timeout));
    }

    /// Produce requests sent whose acknowledgement has not been collected yet.
    pub fn produces_in_flight(&self) -> usize {
        self.produces_in_flight
    }

    fn next_id(&mut self) -> u32 {
        self.next_id = self.next_id.wrapping_add(1);
        self.next_id
    }

    fn check_broken(&self) -> Result<()> {
        match &self.broken {
            Some(e) => Err(ClientError::Disconnected(e.clone())),
            None => Ok(()),
        }
    }

    fn write_scratch(&mut self) -> Result<()> {
        self.check_broken()?;
        let r = self.writer.write_all(&self.scratch);
        self.scratch.clear();
        r.map_err(|source| ClientError::Io {
            context: format!("sending a request to {}", self.addr),
            source,
        })
    }

    /// Sends buffered requests to the server.
    pub fn flush(&mut self) -> Result<()> {
        self.check_broken()?;
        self.writer.flush().map_err(|source| ClientError::Io {
            context: format!("sending requests to {}", self.addr),
            source,
        })
    }

    /// Queues one produce request of `records` as a batch (sent when the buffer fills or on
    /// the next flush or poll). With [`Ack::None`] no acknowledgement will come for it.
    pub fn send_produce<R: AsRef<[u8]>>(
        &mut self,
        topic: &str,
        partition: u32,
        records: &[R],
        ack: Ack,
    ) -> Result<CorrelationId> {
        if records.is_empty() {
            return Err(ClientError::Invalid(
                "a produce needs at least one record".into(),
            ));
        }
        let id = self.next_id();
        self.scratch.clear();
        encode_produce(&mut self.scratch, id, topic, partition, ack, records);
        if self.scratch.len() - 4 > crate::protocol::MAX_FRAME_LEN as usize {
            self.scratch.clear();
            return Err(ClientError::Invalid(format!(
                "a produce of {} records is larger than the frame cap",
                records.len()
            )));
        }
        self.write_scratch()?;
        if ack != Ack::None {
            self.produces_in_flight += 1;
        }
        Ok(CorrelationId(id))
    }

    /// Flushes, then returns the produce acknowledgements that arrived, waiting up to
    /// `timeout` for the first one. Empty when none arrived in time (or none are in flight).
    pub fn poll_responses(&mut self, timeout: Duration) -> Result<Vec<ProduceAck>> {
        self.flush()?;
        self.drain_incoming(None)?;
        if self.acks.is_empty() && self.produces_in_flight > 0 {
            match self.incoming.recv_timeout(timeout) {
                Ok(msg) => {
                    self.accept(msg, None)?;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(self.disconnected("the reader thread ended"))
                }
            };
            self.drain_incoming(None)?;
        }
        Ok(self.acks.drain(..).collect())
    }

    /// Waits until every produce sent so far is acknowledged, or `timeout` passes.
    pub fn wait_all(&mut self, timeout: Duration) -> Result<Vec<ProduceAck>> {
        let deadline = deadline_after(timeout);
        let mut out = Vec::new();
        loop {
            out.extend(self.poll_responses(deadline.saturating_duration_since(Instant::now()))?);
            if self.produces_in_flight == 0 {
                return Ok(out);
            }
            if Instant::now() >= deadline {
                return Err(ClientError::Timeout {
                    what: format!(
                        "acknowledgements of {} produce requests from {}",
                        self.produces_in_flight, self.addr
                    ),
                    after: timeout,
                });
            }
        }
    }

    fn disconnected(&mut self, why: &str) -> ClientError {
        self.broken = Some(why.to_owned());
        ClientError::Disconnected(why.to_owned())
    }

    /// Takes what the reader thread already decoded, without waiting.
    fn drain_incoming(&mut self, want: Option<u32>) -> Result<Option<Response>> {
        loop {
            match self.incoming.try_recv() {
                Ok(msg) => {
                    if let Some(r) = self.accept(msg, want)? {
                        return Ok(Some(r));
                    }
                }
                Err(mpsc::TryRecvError::Empty) => return Ok(None),
                Err(mpsc::TryRecvError::Disconnected) => {
                    return Err(self.disconnected("the reader thread ended"))
                }
            }
        }
    }

    /// Files one decoded response: a produce ack is queued; the awaited response is returned.
    fn accept(&mut self, msg: Incoming, want: Option<u32>) -> Result<Option<Response>> {
        let (corr, k, resp) = match msg {
            Ok(m) => m,
            Err(e) => {
                self.broken = Some(e.to_string());
                return Err(e);
            }
        };
        if Some(corr) == want {
            return Ok(Some(resp));
        }
        if k == kind::PRODUCE || (k == 0 && matches!(resp, Response::Error { .. })) {
            self.produces_in_flight = self.produces_in_flight.saturating_sub(1);
            let r = match resp {
                Response::Produced { base_offset } => Ok(base_offset),
                other => Err(server_error(other)),
            };
            self.acks.push_back((CorrelationId(corr), r));
        } else {
            tracing::warn!(corr, kind = k, "response to no pending request dropped");
        }
        Ok(None)
    }

    /// Sends one request and waits for its response (keeping produce acks for later polls).
    fn call(&mut self, req: &Request, what: &str, timeout: Duration) -> Result<Response> {
        let id = self.next_id();
        self.scratch.clear();
        encode_request(&mut self.scratch, id, req);
        self.write_scratch()?;
        self.flush()?;
        let deadline = deadline_after(timeout);
        if let Some(r) = self.drain_incoming(Some(id))? {
            return Ok(r);
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.incoming.recv_timeout(left) {
                Ok(msg) => {
                    if let Some(r) = self.accept(msg, Some(id))? {
                        return Ok(r);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(ClientError::Timeout {
                        what: format!("the response to {what} from {}", self.addr),
                        after: timeout,
                    })
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(self.disconnected("the reader thread ended"))
                }
            }
        }
    }

    /// Creates a topic; `false` if it already existed with this partition count.
    pub fn create_topic(&mut self, topic: &str, partitions: u32) -> Result<bool> {
        let req = Request::CreateTopic {
            topic: topic.to_owned(),
            partitions,
        };
        match self.call(
            &req,
            &format!("create topic {topic:?}"),
            self.request_timeout,
        )? {
            Response::Created(c) => Ok(c),
            other => Err(server_error(other)),
        }
    }

    /// Produces one batch and waits for its acknowledgement; returns its base offset.
    /// Acknowledgements of earlier pipelined produces stay queued for [`Client::poll_responses`].
    pub fn produce<R: AsRef<[u8]>>(
        &mut self,
        topic: &str,
        partition: u32,
        records: &[R],
        ack: Ack,
    ) -> Result<u64> {
        if ack == Ack::None {
            return Err(ClientError::Invalid(
                "produce waits for an acknowledgement; use send_produce for ack none".into(),
            ));
        }
        let id = self.send_produce(topic, partition, records, ack)?;
        self.flush()?;
        let deadline = deadline_after(self.request_timeout);
        loop {
            if let Some(i) = self.acks.iter().position(|(c, _)| *c == id) {
                let (_, r) = self.acks.remove(i).expect("index in range");
                return r;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::Timeout {
                    what: format!("the acknowledgement of a produce to {topic}/{partition}"),
                    after: self.request_timeout,
                });
            }
            match self.incoming.recv_timeout(left) {
                Ok(msg) => {
                    self.accept(msg, None)?;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(self.disconnected("the reader thread ended"))
                }
            }
        }
    }

    /// Fetches records from `offset`, waiting up to `max_wait` on the server when there are
    /// none yet. An empty result means nothing arrived in `max_wait`.
    pub fn fetch(
        &mut self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_bytes: u32,
        max_wait: Duration,
    ) -> Result<Fetched> {
        let req = Request::Fetch {
            topic: topic.to_owned(),
            partition,
            offset,
            max_bytes,
            max_wait,
        };
        let what = format!("a fetch of {topic}/{partition} at offset {offset}");
        match self.call(&req, &what, self.request_timeout + max_wait)? {
            Response::Fetched {
                end_offset,
                start_offset,
                data,
            } => {
                let records = decode_batches(&data, offset)
                    .map_err(|e| ClientError::Protocol(format!("{what}: {e}")))?;
                Ok(Fetched {
                    records,
                    end_offset,
                    start_offset,
                })
            }
            other => Err(server_error(other)),
        }
    }

    /// Commits `offset` (the next offset to consume) for the group.
    pub fn commit(&mut self, group: &str, topic: &str, partition: u32, offset: u64) -> Result<()> {
        let req = Request::Commit {
            group: group.to_owned(),
            topic: topic.to_owned(),
            partition,
            offset,
        };
        let what = format!("commit of {group}@{topic}/{partition}");
        match self.call(&req, &what, self.request_timeout)? {
            Response::OffsetCommitted => Ok(()),
            other => Err(server_error(other)),
        }
    }

    /// The group's committed offset for the partition, if any.
    pub fn committed(&mut self, group: &str, topic: &str, partition: u32) -> Result<Option<u64>> {
        let req = Request::Committed {
            group: group.to_owned(),
            topic: topic.to_owned(),
            partition,
        };
        let what = format!("the committed offset of {group}@{topic}/{partition}");
        match self.call(&req, &what, self.request_timeout)? {
            Response::CommittedOffset(o) => Ok(o),
            other => Err(server_error(other)),
        }
    }

    /// The end offset of every partition of `topic`, by partition number.
    pub fn end_offsets(&mut self, topic: &str) -> Result<Vec<u64>> {
        let req = Request::EndOffsets {
            topic: topic.to_owned(),
        };
        match self.call(
            &req,
            &format!("end offsets of {topic}"),
            self.request_timeout,
        )? {
            Response::EndOffsets(v) => Ok(v),
            other => Err(server_error(other)),
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.writer.flush();
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(h) = self.reader.take() {
            // The reader may be blocked handing a response to a full channel: empty it.
            let deadline = Instant::now() + Duration::from_secs(5);
            while !h.is_finished() && Instant::now() < deadline {
                while self.incoming.try_recv().is_ok() {}
                std::thread::sleep(Duration::from_millis(1));
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
    }
}
