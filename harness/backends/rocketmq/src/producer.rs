//! Worker side: sends to the partition's queue (queue p of the run's topic), many sends in
//! flight, outcomes reported as they come back.
//!
//! `producer_ack = "leader"`: a sync send, acked when the broker answers SEND_OK (with
//! SYNC_FLUSH, after the commit log is fsynced); any other status is a failure, an error (a
//! timeout, the connection lost) leaves the outcome unknown. `"none"`: a oneway send, acked once
//! the client has written it. With `fifo` (the default) each queue has one sender task taking
//! its messages in order, one send at a time: RocketMQ's ordered messages, so a key's messages
//! are stored in the order sent. Without, every send is its own task (normal messages).

use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mq_core::delivery::ProducerAck;
use mq_core::{AckSink, BackendError, Outcome, Outgoing, Producer, Seq, WorkerCtx};
use rocketmq_client_rust::{ClientError, DefaultMQProducer};
use rocketmq_model::common::message::message_single::Message;
use rocketmq_model::result::SendStatus;

use crate::client::{Endpoint, Runtime};
use crate::options::Options;
use crate::NAME;

const START_TIMEOUT: Duration = Duration::from_secs(30);

/// One send: its seq, queue and bytes.
struct Job {
    seq: Seq,
    queue: u32,
    payload: Vec<u8>,
}

/// What sends a job and says how it went (`None`: unknown).
#[derive(Clone)]
struct Sender_ {
    producer: Arc<DefaultMQProducer>,
    ep: Arc<Endpoint>,
    oneway: bool,
    timeout_ms: u64,
    results: Sender<(Seq, Option<Outcome>)>,
}

impl Sender_ {
    async fn send(&self, job: Job) {
        let msg = Message::builder()
            .topic(self.ep.topic.as_str())
            .body_slice(&job.payload)
            .build_unchecked();
        let mq = self.ep.queue(job.queue);
        let outcome = if self.oneway {
            match self.producer.send_oneway_to_queue(msg, mq).await {
                Ok(()) => Some(Outcome::Acked),
                Err(e) => {
                    tracing::debug!("rocketmq oneway send {}: {e}", job.seq.0);
                    outcome_of(&e)
                }
            }
        } else {
            match (self.producer)
                .send_to_queue_with_timeout(msg, mq, self.timeout_ms)
                .await
            {
                Ok(Some(r)) if r.send_status == SendStatus::SendOk => Some(Outcome::Acked),
                Ok(Some(r)) => {
                    tracing::debug!("rocketmq send {}: {}", job.seq.0, r.send_status);
                    Some(Outcome::Failed)
                }
                Ok(None) => None,
                Err(e) => {
                    tracing::debug!("rocketmq send {}: {e}", job.seq.0);
                    outcome_of(&e)
                }
            }
        };
        // The worker gone: nobody to tell.
        let _ = self.results.send((job.seq, outcome));
    }
}

/// What a failed send's error says for sure: the broker answered with an error code (e.g.
/// SYSTEM_BUSY under flow control) → failed; the client refused it before writing it (its
/// transport queue full) → not sent; anything else (a timeout, a connection lost) → unknown.
fn outcome_of(e: &ClientError) -> Option<Outcome> {
    if e.broker_response_code().is_some() {
        Some(Outcome::Failed)
    } else if e.to_string().starts_with("transport.admission.") {
        Some(Outcome::NotSent)
    } else {
        None
    }
}

pub struct RocketProducer {
    sender: Sender_,
    handle: tokio::runtime::Handle,
    /// FIFO: queue p's sender task takes its jobs from `lanes[p]`.
    lanes: Vec<tokio::sync::mpsc::Sender<Job>>,
    results: Receiver<(Seq, Option<Outcome>)>,
    in_flight: usize,
    max_in_flight: usize,
    ack_timeout: Duration,
    done: Vec<(Seq, Outcome)>,
    // Dropped last: the producer above runs on it.
    rt: Option<Runtime>,
}

impl RocketProducer {
    pub fn open(ctx: &WorkerCtx, options: &Options) -> Result<RocketProducer, BackendError> {
        let ep = Arc::new(Endpoint::from_value(&ctx.endpoint)?);
        let rt = Runtime::new(&format!("p{}", ctx.index))?;
        let mut producer = DefaultMQProducer::builder(rt.client.clone())
            .producer_group(format!("{}-producers", ep.group))
            .name_server_addr(ep.namesrv.clone())
            .build();
        let started =
            rt.block_on(async { tokio::time::timeout(START_TIMEOUT, producer.start()).await });
        match started {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(BackendError::other(
                    NAME,
                    format!("starting the producer (name server {}): {e}", ep.namesrv),
                ))
            }
            Err(_) => {
                return Err(BackendError::other(
                    NAME,
                    format!(
                        "starting the producer (name server {}): no answer within {}s",
                        ep.namesrv,
                        START_TIMEOUT.as_secs()
                    ),
                ))
            }
        }
        let (tx, results) = channel();
        let ack_timeout = ctx.plan.workload.ack_timeout.0;
        let sender = Sender_ {
            producer: Arc::new(producer),
            ep: ep.clone(),
            oneway: ctx.plan.delivery.producer_ack == ProducerAck::None,
            timeout_ms: ack_timeout.as_millis().clamp(1000, 600_000) as u64,
            results: tx,
        };
        let handle = rt.handle();
        let max_in_flight = options.max_in_flight as usize;
        let lanes = match options.fifo {
            true => (0..ep.queues)
                .map(|_| {
                    let (lane, mut jobs) = tokio::sync::mpsc::channel::<Job>(max_in_flight);
                    let s = sender.clone();
                    handle.spawn(async move {
                        while let Some(job) = jobs.recv().await {
                            s.send(job).await;
                        }
                    });
                    lane
                })
                .collect(),
            false => Vec::new(),
        };
        Ok(RocketProducer {
            sender,
            handle,
            lanes,
            results,
            in_flight: 0,
            max_in_flight,
            ack_timeout,
            done: Vec::new(),
            rt: Some(rt),
        })
    }

    fn take(&mut self, r: (Seq, Option<Outcome>)) {
        self.in_flight -= 1;
        if let (seq, Some(o)) = r {
            self.done.push((seq, o));
        }
    }

    /// Reports what has come back, waiting up to `wait` for the first when `wait` is given.
    fn collect(
        &mut self,
        wait: Option<Duration>,
        acks: &mut dyn AckSink,
    ) -> Result<(), BackendError> {
        if let Some(w) = wait {
            match self.results.recv_timeout(w) {
                Ok(r) => self.take(r),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(BackendError::other(NAME, "the sender tasks are gone"))
                }
            }
        }
        while let Ok(r) = self.results.try_recv() {
            self.take(r);
        }
        if !self.done.is_empty() {
            acks.ack_all(&self.done);
            self.done.clear();
        }
        Ok(())
    }
}

impl Producer for RocketProducer {
    fn send(&mut self, msg: &mut Outgoing<'_>, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        let deadline = Instant::now() + self.ack_timeout;
        while self.in_flight >= self.max_in_flight {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(BackendError::other(
                    NAME,
                    format!(
                        "{} sends without an answer for {:?}",
                        self.in_flight, self.ack_timeout
                    ),
                ));
            }
            self.collect(Some(left.min(Duration::from_millis(100))), acks)?;
        }
        let job = Job {
            seq: msg.seq,
            queue: msg.partition.0 % self.sender.ep.queues.max(1),
            payload: msg.payload().to_vec(),
        };
        self.in_flight += 1;
        if self.lanes.is_empty() {
            let s = self.sender.clone();
            self.handle.spawn(async move { s.send(job).await });
        } else {
            let lane = &self.lanes[job.queue as usize % self.lanes.len()];
            lane.blocking_send(job)
                .map_err(|_| BackendError::other(NAME, "a queue's sender task is gone"))?;
        }
        self.collect(None, acks)
    }

    fn flush(&mut self, timeout: Duration, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        let deadline = Instant::now() + timeout;
        while self.in_flight > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.collect(Some(left.min(Duration::from_millis(100))), acks)?;
        }
        self.collect(None, acks)
    }

    fn poll(&mut self, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        self.collect(None, acks)
    }
}

impl Drop for RocketProducer {
    fn drop(&mut self) {
        // Closing the lanes ends their sender tasks; closing the client runtime closes the
        // connections (the broker forgets the producer with its channel).
        self.lanes.clear();
        if let Some(rt) = self.rt.take() {
            rt.shutdown();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_is_certain_gets_an_outcome() {
        let busy =
            ClientError::broker_operation_failed("send", 2, "[TIMEOUT_CLEAN_QUEUE]broker busy");
        assert_eq!(outcome_of(&busy), Some(Outcome::Failed));
        assert_eq!(outcome_of(&ClientError::timeout("send", 3000)), None);
        assert_eq!(outcome_of(&ClientError::illegal_argument("x")), None);
    }
}
