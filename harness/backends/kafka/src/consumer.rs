//! Worker side: a consumer manually `assign`ed to its partitions (no group rebalances), or with
//! `assignment = "group"` `subscribe`d as a member of the variant's group, with the run's
//! group id for commits.
//!
//! `auto`: librdkafka stores each offset as it hands the message over and auto-commits every
//! second (commit before processing). `after-process`: offsets are committed after the sink has
//! the messages, asynchronously every `commit_every` messages or 200 ms with at most one such
//! commit awaiting its result (a commit per 1000 messages outran the broker at 1 M msg/s: the
//! queued commits took seconds to settle at close), synchronously at close
//! and, in a group, before partitions are given up (see `group`). With processing threads (the
//! sink says [`Processed::Later`]), a partition's commit is its lowest unfinished offset
//! ([`InFlight`]), moved as [`Consumer::processed`] reports them done.

use std::time::{Duration, Instant};

use mq_core::assignment::AssignmentChange;
use mq_core::delivery::ConsumerAck;
use mq_core::parallel::InFlight;
use mq_core::{BackendError, Consumer, DeliverySink, Partition, Processed, Token, WorkerCtx};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};

use crate::batch::{BatchQueue, Fetched};
use crate::client::{self, base_config, Endpoint};
use crate::group::MemberContext;
use crate::options::Options;
use crate::NAME;

const COMMIT_INTERVAL: Duration = Duration::from_millis(200);
/// After this long without its result, an asynchronous commit no longer holds the next back.
const COMMIT_RESULT_WAIT: Duration = Duration::from_secs(2);
const MAX_BATCH: usize = 4096;

pub struct KafkaConsumer {
    /// Batch fetching of the partitions assigned by hand; dropped before `consumer`.
    batch: Option<BatchQueue>,
    consumer: BaseConsumer<MemberContext>,
    topic: String,
    manual: bool,
    /// A group member (leaves the group when dropped) rather than assigned by hand.
    group: bool,
    /// Handed to processing threads and not finished (`after-process`).
    in_flight: InFlight,
    uncommitted: u32,
    commit_every: u32,
    last_commit: Instant,
    bootstrap: String,
    last_error: Option<Instant>,
    /// A message taken while joining the group, handed over by the first `poll`.
    stash: Option<OwnedMessage>,
}

/// How long a group member waits for its first assignment before it says it is ready.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

impl KafkaConsumer {
    pub fn open(ctx: &WorkerCtx, options: &Options) -> Result<KafkaConsumer, BackendError> {
        let ep = Endpoint::from_value(&ctx.endpoint)?;
        if ctx.partitions.is_empty() && !options.group() {
            return Err(BackendError::other(
                NAME,
                "consumer has no partitions to read",
            ));
        }
        let manual = ctx.plan.delivery.consumer_ack == ConsumerAck::AfterProcess;
        let consumer = create(ctx, options, &ep, manual)?;
        client::reach(consumer.client(), &ep.bootstrap, Some(&ep.topic))?;
        if options.group() {
            consumer.subscribe(&[&ep.topic]).map_err(|e| {
                BackendError::other(
                    NAME,
                    format!("subscribing to {} on {}: {e}", ep.topic, ep.bootstrap),
                )
            })?;
        }
        let batch = match options.group() {
            true => None,
            false => assign(&consumer, &ep, &ctx.partitions, options.batch_fetch)?,
        };
        let mut c = KafkaConsumer {
            batch,
            consumer,
            topic: ep.topic,
            manual,
            group: options.group(),
            in_flight: InFlight::default(),
            uncommitted: 0,
            commit_every: options.commit_every,
            last_commit: Instant::now(),
            bootstrap: ep.bootstrap,
            last_error: None,
            stash: None,
        };
        if c.group {
            c.join();
        }
        Ok(c)
    }

    fn commit(&mut self, mode: CommitMode) -> Result<(), BackendError> {
        let waiting = self.consumer.context().committing();
        if matches!(mode, CommitMode::Async)
            && waiting
            && self.last_commit.elapsed() < COMMIT_RESULT_WAIT
        {
            // The offsets stay pending; the next commit takes them with what follows.
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        {
            let pending = self.consumer.context().pending();
            if pending.is_empty() {
                return Ok(());
            }
            for (&p, &next) in pending.iter() {
                tpl.add_partition_offset(&self.topic, p, Offset::Offset(next))
                    .map_err(|e| {
                        BackendError::other(NAME, format!("commit of partition {p}: {e}"))
                    })?;
            }
        }
        self.consumer
            .commit(&tpl, mode)
            .map_err(|e| BackendError::other(NAME, format!("commit to {}: {e}", self.bootstrap)))?;
        if matches!(mode, CommitMode::Async) {
            self.consumer.context().commit_sent();
        }
        self.consumer.context().pending().clear();
        self.uncommitted = 0;
        self.last_commit = Instant::now();
        Ok(())
    }

    /// Gives `m` to the sink; `after-process` notes its offset for the next commit once it is
    /// processed (now, or when a processing thread reports it: [`Consumer::processed`]).
    fn hand_over(
        ctx: &MemberContext,
        manual: bool,
        (uncommitted, in_flight): (&mut u32, &mut InFlight),
        m: Fetched<'_>,
        sink: &mut dyn DeliverySink,
    ) -> Processed {
        let token = Token {
            partition: Partition(m.partition as u32),
            offset: m.offset.max(0) as u64,
        };
        let done = match m.at_ns {
            Some(at) => sink.deliver_token_at(m.payload, token, at),
            None => sink.deliver_token(m.payload, token),
        };
        if manual {
            match done {
                Processed::Now => {
                    ctx.pending().insert(m.partition, m.offset + 1);
                    *uncommitted += 1;
                }
                Processed::Later => in_flight.delivered(token.partition.0, token.offset),
            }
        }
        done
    }

    /// A new member polls until the group has given it its share (which may be none), so that
    /// the group is settled before the load starts; at most [`JOIN_TIMEOUT`]. A message that
    /// arrives meanwhile (a replacement joining mid-run) is kept for the first `poll`.
    fn join(&mut self) {
        let deadline = Instant::now() + JOIN_TIMEOUT;
        while !self.consumer.context().joined() && Instant::now() < deadline {
            match self.consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    self.stash = Some(m.detach());
                    return;
                }
                Some(Err(e)) => self.transient(&e),
                None => {}
            }
        }
        if !self.consumer.context().joined() {
            tracing::warn!(
                "kafka: no assignment from the group of {} within {JOIN_TIMEOUT:?}; going on",
                self.topic
            );
        }
    }

    /// The consumer queue, one `poll` per message, up to [`MAX_BATCH`] in all.
    fn poll_queue(
        &mut self,
        mut wait: Duration,
        mut taken: usize,
        sink: &mut dyn DeliverySink,
    ) -> (usize, Option<KafkaError>) {
        while taken < MAX_BATCH {
            match self.consumer.poll(wait) {
                None => break,
                Some(Ok(m)) => {
                    let ctx = self.consumer.context();
                    let counts = (&mut self.uncommitted, &mut self.in_flight);
                    let done = Self::hand_over(ctx, self.manual, counts, fetched(&m), sink);
                    taken += 1;
                    if done == Processed::Later && taken >= sink.later_batch() {
                        break;
                    }
                }
                Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::PartitionEOF))) => {}
                Some(Err(e)) => return (taken, Some(e)),
            }
            wait = Duration::ZERO;
        }
        (taken, None)
    }

    /// The batch queue, a batch of up to `later_batch` per call, up to [`MAX_BATCH`] in all.
    fn poll_batch(
        &mut self,
        mut wait: Duration,
        mut taken: usize,
        sink: &mut dyn DeliverySink,
    ) -> (usize, Option<KafkaError>) {
        let KafkaConsumer {
            batch: Some(batch),
            consumer,
            manual,
            uncommitted,
            in_flight,
            ..
        } = self
        else {
            return (taken, None);
        };
        let ctx = consumer.context();
        let mut later = false;
        while taken < MAX_BATCH && !(later && taken >= sink.later_batch()) {
            let most = sink.later_batch().clamp(1, MAX_BATCH - taken);
            let (n, error) = batch.take(wait, most, &mut |f| {
                let counts = (&mut *uncommitted, &mut *in_flight);
                later |= Self::hand_over(ctx, *manual, counts, f, sink) == Processed::Later;
            });
            taken += n;
            if let Some(code) = error {
                return (taken, Some(KafkaError::MessageConsumption(code)));
            }
            if n < most {
                break;
            }
            wait = Duration::ZERO;
        }
        (taken, None)
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
        if let Some(m) = self.stash.take() {
            let ctx = self.consumer.context();
            let counts = (&mut self.uncommitted, &mut self.in_flight);
            Self::hand_over(ctx, self.manual, counts, fetched(&m), sink);
            taken += 1;
        }
        // With a batch queue, the consumer queue holds events (commit results, errors) and what
        // was fetched before the forward: served first, without waiting.
        let queue_wait = match self.batch {
            Some(_) => Duration::ZERO,
            None => max_wait,
        };
        let (mut taken, mut error) = self.poll_queue(queue_wait, taken, sink);
        if error.is_none() && self.batch.is_some() {
            let wait = if taken > 0 { Duration::ZERO } else { max_wait };
            (taken, error) = self.poll_batch(wait, taken, sink);
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
        let mut pending = self.consumer.context().pending();
        for (p, next) in self.in_flight.committable() {
            pending.insert(p as i32, next as i64);
        }
        drop(pending);
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
        if !self.group {
            let _ = self.consumer.unassign();
        }
        r
    }

    fn assignment_changes(&mut self) -> Vec<AssignmentChange> {
        self.consumer.context().take_changes()
    }
}

/// Assigns `partitions` from their starting offsets; their batch queue when `batch_fetch`.
fn assign(
    consumer: &BaseConsumer<MemberContext>,
    ep: &Endpoint,
    partitions: &[Partition],
    batch_fetch: bool,
) -> Result<Option<BatchQueue>, BackendError> {
    let tpl = starting_offsets(consumer, ep, partitions)?;
    consumer.assign(&tpl).map_err(|e| {
        BackendError::other(
            NAME,
            format!("assigning {} on {}: {e}", ep.topic, ep.bootstrap),
        )
    })?;
    if !batch_fetch {
        return Ok(None);
    }
    let ids: Vec<i32> = partitions.iter().map(|p| p.0 as i32).collect();
    let batch = BatchQueue::forward(consumer, &ep.topic, &ids, MAX_BATCH);
    if batch.is_none() {
        tracing::warn!(
            "kafka: no batch queue for {}: one poll per message",
            ep.topic
        );
    }
    Ok(batch)
}

/// A message as [`KafkaConsumer::hand_over`] takes it.
fn fetched<M: Message>(m: &M) -> Fetched<'_> {
    Fetched {
        partition: m.partition(),
        offset: m.offset(),
        payload: m.payload().unwrap_or(&[]),
        at_ns: None,
    }
}

/// The rdkafka consumer: the run's group, offsets as `after-process` (`manual`) wants them,
/// and in a group the options' strategy and timeouts.
fn create(
    ctx: &WorkerCtx,
    options: &Options,
    ep: &Endpoint,
    manual: bool,
) -> Result<BaseConsumer<MemberContext>, BackendError> {
    let mut c = base_config(
        &ep.bootstrap,
        &format!(
            "mq-bench-{}-c{}",
            mq_core::plan::broker_name(&ctx.plan.name),
            ctx.index
        ),
    );
    c.set("group.id", &ep.group)
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("enable.auto.commit", (!manual).to_string())
        .set("enable.auto.offset.store", (!manual).to_string())
        .set("auto.commit.interval.ms", "1000");
    if let Some(level) = crate::txn::isolation(options) {
        c.set("isolation.level", level.as_str());
    }
    if options.group() {
        let strategy = options.partition_assignment_strategy.unwrap_or_default();
        c.set("partition.assignment.strategy", strategy.as_str());
        if let Some(ms) = options.session_timeout_ms {
            c.set("session.timeout.ms", ms.to_string());
        }
        if let Some(ms) = options.heartbeat_interval_ms {
            c.set("heartbeat.interval.ms", ms.to_string());
        }
    }
    client::apply(&mut c, &options.consumer_config);
    c.create_with_context(MemberContext::new(&ep.topic))
        .map_err(|e| BackendError::other(NAME, format!("consumer for {}: {e}", ep.bootstrap)))
}

/// Where each of `partitions` starts: the group's committed offset, else the beginning.
/// Resolved here rather than by librdkafka: on a fresh broker the group coordinator may not be
/// up yet (NotCoordinator), and librdkafka does not retry that for a manual assignment.
fn starting_offsets(
    consumer: &BaseConsumer<MemberContext>,
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
