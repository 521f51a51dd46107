//! Worker side: a consumer manually `assign`ed to its partitions (no group rebalances), with the
//! run's group id for commits.
//!
//! `auto`: librdkafka stores each offset as it hands the message over and auto-commits every
//! second (commit before processing). `after-process`: offsets are committed after the sink has
//! the messages, asynchronously every `commit_every` messages or 200 ms, synchronously at close.
//! With processing threads (the sink says [`Processed::Later`]), a partition's commit is its
//! lowest unfinished offset ([`InFlight`]), moved as [`Consumer::processed`] reports them done.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mq_core::delivery::ConsumerAck;
use mq_core::parallel::InFlight;
use mq_core::{BackendError, Consumer, DeliverySink, Partition, Processed, Token, WorkerCtx};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::client::{self, base_config, Endpoint};
use crate::options::Options;
use crate::NAME;

const COMMIT_INTERVAL: Duration = Duration::from_millis(200);
const MAX_BATCH: usize = 4096;

pub struct KafkaConsumer {
    consumer: BaseConsumer,
    topic: String,
    manual: bool,
    /// Partition → next offset to commit (last handed over + 1), not yet committed.
    pending: BTreeMap<i32, i64>,
    /// Handed to processing threads and not finished (`after-process`).
    in_flight: InFlight,
    uncommitted: u32,
    commit_every: u32,
    last_commit: Instant,
    bootstrap: String,
    last_error: Option<Instant>,
}

impl KafkaConsumer {
    pub fn open(ctx: &WorkerCtx, options: &Options) -> Result<KafkaConsumer, BackendError> {
        let ep = Endpoint::from_value(&ctx.endpoint)?;
        if ctx.partitions.is_empty() {
            return Err(BackendError::other(
                NAME,
                "consumer has no partitions to read",
            ));
        }
        let manual = ctx.plan.delivery.consumer_ack == ConsumerAck::AfterProcess;
        let mut c = base_config(
            &ep.bootstrap,
            &format!("mq-bench-{}-c{}", ctx.plan.name, ctx.index),
        );
        c.set("group.id", &ep.group)
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("enable.auto.commit", (!manual).to_string())
            .set("enable.auto.offset.store", (!manual).to_string())
            .set("auto.commit.interval.ms", "1000");
        client::apply(&mut c, &options.consumer_config);
        let consumer: BaseConsumer = c.create().map_err(|e| {
            BackendError::other(NAME, format!("consumer for {}: {e}", ep.bootstrap))
        })?;
        client::reach(consumer.client(), &ep.bootstrap, Some(&ep.topic))?;
        let tpl = starting_offsets(&consumer, &ep, &ctx.partitions)?;
        consumer.assign(&tpl).map_err(|e| {
            BackendError::other(
                NAME,
                format!("assigning {} on {}: {e}", ep.topic, ep.bootstrap),
            )
        })?;
        Ok(KafkaConsumer {
            consumer,
            topic: ep.topic,
            manual,
            pending: BTreeMap::new(),
            in_flight: InFlight::default(),
            uncommitted: 0,
            commit_every: options.commit_every,
            last_commit: Instant::now(),
            bootstrap: ep.bootstrap,
            last_error: None,
        })
    }

    fn commit(&mut self, mode: CommitMode) -> Result<(), BackendError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for (&p, &next) in &self.pending {
            tpl.add_partition_offset(&self.topic, p, Offset::Offset(next))
                .map_err(|e| BackendError::other(NAME, format!("commit of partition {p}: {e}")))?;
        }
        self.consumer
            .commit(&tpl, mode)
            .map_err(|e| BackendError::other(NAME, format!("commit to {}: {e}", self.bootstrap)))?;
        self.pending.clear();
        self.uncommitted = 0;
        self.last_commit = Instant::now();
        Ok(())
    }

    /// Consumer errors are mostly transient (a broker went away); say so at most once a second.
    fn transient(&mut self, e: &KafkaError) {
        if !matches!(self.last_error, Some(t) if t.elapsed() < Duration::from_secs(1)) {
            tracing::warn!(
                "kafka consumer of {} on {}: {e}",
                self.topic,
                self.bootstrap
            );
            self.last_error = Some(Instant::now());
        }
    }
}

/// How long a consumer waits for the group coordinator of a freshly started broker.
const COORDINATOR_TIMEOUT: Duration = Duration::from_secs(60);

impl Consumer for KafkaConsumer {
    fn poll(
        &mut self,
        max_wait: Duration,
        sink: &mut dyn DeliverySink,
    ) -> Result<usize, BackendError> {
        let mut taken = 0;
        let mut wait = max_wait;
        let mut error = None;
        while taken < MAX_BATCH {
            match self.consumer.poll(wait) {
                None => break,
                Some(Ok(m)) => {
                    let token = Token {
                        partition: Partition(m.partition() as u32),
                        offset: m.offset().max(0) as u64,
                    };
                    let done = sink.deliver_token(m.payload().unwrap_or(&[]), token);
                    if self.manual {
                        match done {
                            Processed::Now => {
                                self.pending.insert(m.partition(), m.offset() + 1);
                                self.uncommitted += 1;
                            }
                            Processed::Later => {
                                self.in_flight.delivered(token.partition.0, token.offset)
                            }
                        }
                    }
                    taken += 1;
                    if done == Processed::Later && taken >= mq_core::parallel::LATER_BATCH {
                        break;
                    }
                }
                Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::PartitionEOF))) => {}
                Some(Err(e)) => {
                    error = Some(e);
                    break;
                }
            }
            wait = Duration::ZERO;
        }
        if let Some(e) = error {
            self.transient(&e);
        }
        if self.manual
            && self.uncommitted > 0
            && (self.uncommitted >= self.commit_every
                || self.last_commit.elapsed() >= COMMIT_INTERVAL)
        {
            self.commit(CommitMode::Async)?;
        }
        Ok(taken)
    }

    fn processed(&mut self, tokens: &[Token]) -> Result<(), BackendError> {
        if !self.manual {
            return Ok(());
        }
        for t in tokens {
            self.in_flight.finished(t.partition.0, t.offset);
        }
        for (p, next) in self.in_flight.committable() {
            self.pending.insert(p as i32, next as i64);
        }
        self.uncommitted = self.uncommitted.saturating_add(tokens.len() as u32);
        Ok(())
    }

    fn close(&mut self) -> Result<(), BackendError> {
        let r = if self.manual {
            self.commit(CommitMode::Sync)
        } else {
            Ok(())
        };
        if !self.manual {
            // Commit what auto-commit has stored but not sent yet.
            let _ = self.consumer.commit_consumer_state(CommitMode::Sync);
        }
        let _ = self.consumer.unassign();
        r
    }
}

/// Where each of `partitions` starts: the group's committed offset, else the beginning.
/// Resolved here rather than by librdkafka: on a fresh broker the group coordinator may not be
/// up yet (NotCoordinator), and librdkafka does not retry that for a manual assignment.
fn starting_offsets(
    consumer: &BaseConsumer,
    ep: &Endpoint,
    partitions: &[Partition],
) -> Result<TopicPartitionList, BackendError> {
    let assigning = |p: i32, e: rdkafka::error::KafkaError| {
        BackendError::other(NAME, format!("assigning partition {p}: {e}"))
    };
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        if p.0 >= ep.partitions {
            return Err(BackendError::other(
                NAME,
                format!(
                    "partition {} does not exist (topic {} has {})",
                    p.0, ep.topic, ep.partitions
                ),
            ));
        }
        tpl.add_partition_offset(&ep.topic, p.0 as i32, Offset::Stored)
            .map_err(|e| assigning(p.0 as i32, e))?;
    }
    let deadline = Instant::now() + COORDINATOR_TIMEOUT;
    let committed = loop {
        match consumer.committed_offsets(tpl.clone(), Duration::from_secs(5)) {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                tracing::debug!(
                    "kafka: committed offsets of {} not available yet: {e}",
                    ep.group
                );
                std::thread::sleep(Duration::from_millis(250));
            }
            Err(e) => {
                return Err(BackendError::other(
                    NAME,
                    format!(
                    "the group coordinator on {} did not answer for {COORDINATOR_TIMEOUT:?}: {e}",
                    ep.bootstrap
                ),
                ))
            }
        }
    };
    let mut tpl = TopicPartitionList::new();
    for e in committed.elements() {
        let start = match e.offset() {
            Offset::Offset(n) if n >= 0 => Offset::Offset(n),
            _ => Offset::Beginning,
        };
        tpl.add_partition_offset(e.topic(), e.partition(), start)
            .map_err(|err| assigning(e.partition(), err))?;
    }
    Ok(tpl)
}
