//! Worker side: a read-process-write stage. A `read_committed` consumer of the input topic
//! (group `<group>-stage`, assigned its partitions by hand, no auto commit) and a
//! transactional producer (`transactional.id` `<topic>-s<index>`, so a replacement of the same
//! index fences a killed one and aborts its open transaction). Per transaction: up to
//! `transaction_size` records, each produced unchanged to the same partition of the output
//! topic, then the input positions go in with `send_offsets_to_transaction`, then the commit.
//! An abortable error aborts and rewinds the consumer to the committed offsets; a transaction
//! that cannot even be aborted (e.g. after a broker restart: invalid state) makes the stage
//! open itself again, as a replacement would. Fenced (by a newer stage of its index, or by the
//! coordinator after `transaction_timeout_ms`) is the stage's end.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mq_core::{BackendError, Stage, WorkerCtx};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
use rdkafka::{Offset, TopicPartitionList};

use crate::client::{self, base_config, Endpoint};
use crate::options::Options;
use crate::pipeline::{input_topic, stage_group};
use crate::txn::{self, fatal};
use crate::NAME;

/// Each poll of the producer while a transaction's records are delivered before its commit.
const FLUSH_POLL: Duration = Duration::from_millis(1);

pub struct KafkaStage {
    /// What it was opened with, to open itself again.
    ctx: WorkerCtx,
    options: Options,
    consumer: BaseConsumer,
    producer: BaseProducer,
    input: String,
    output: String,
    partitions: Vec<i32>,
    /// Records per transaction.
    size: usize,
    /// How long a transaction takes records after its first (`stage_commit_interval_ms`).
    fill: Duration,
    /// The longest wait for a commit, an abort, or room in librdkafka's queue.
    timeout: Duration,
    bootstrap: String,
    /// The next input offset of each partition read in the open transaction.
    next: BTreeMap<i32, i64>,
    /// A transaction is begun and not yet committed or aborted.
    open: bool,
}

impl KafkaStage {
    pub fn open(ctx: &WorkerCtx, o: &Options) -> Result<KafkaStage, BackendError> {
        let ep = Endpoint::from_value(&ctx.endpoint)?;
        let input = ep.input.clone().unwrap_or_else(|| input_topic(&ep.topic));
        let name = mq_core::plan::broker_name(&ctx.plan.name);
        let mut c = base_config(&ep.bootstrap, &format!("mq-bench-{name}-s{}", ctx.index));
        c.set("group.id", stage_group(&ep.group))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed");
        client::apply(&mut c, &o.consumer_config);
        let consumer: BaseConsumer = c.create().map_err(|e| {
            BackendError::other(NAME, format!("stage consumer for {}: {e}", ep.bootstrap))
        })?;
        client::reach(consumer.client(), &ep.bootstrap, Some(&input))?;
        let mut p = base_config(&ep.bootstrap, &format!("mq-bench-{name}-s{}", ctx.index));
        p.set("acks", "all")
            .set("compression.type", o.compression.as_str());
        if let Some(l) = o.linger_ms {
            p.set("linger.ms", l.to_string());
        }
        txn::configure(&mut p, o, &format!("{}-s{}", ep.topic, ctx.index));
        client::apply(&mut p, &o.producer_config);
        let producer: BaseProducer = p.create().map_err(|e| {
            BackendError::other(NAME, format!("stage producer for {}: {e}", ep.bootstrap))
        })?;
        let timeout = ctx.plan.workload.ack_timeout.0;
        // Fences an earlier stage of this index and aborts the transaction it left open.
        producer
            .init_transactions(timeout)
            .map_err(|e| fatal("stage: initialising transactions", &e))?;
        let stage = KafkaStage {
            ctx: ctx.clone(),
            options: o.clone(),
            consumer,
            producer,
            input,
            output: ep.topic,
            partitions: ctx.partitions.iter().map(|p| p.0 as i32).collect(),
            size: o.transaction_size.unwrap_or(txn::DEFAULT_SIZE) as usize,
            fill: crate::pipeline::commit_interval(o),
            timeout,
            bootstrap: ep.bootstrap,
            next: BTreeMap::new(),
            open: false,
        };
        stage.rewind()?;
        Ok(stage)
    }

    /// (Re)assigns the stage's partitions from the group's committed offsets: where a killed
    /// stage's last committed transaction left them, or where an aborted one began.
    fn rewind(&self) -> Result<(), BackendError> {
        let mut tpl = TopicPartitionList::new();
        for &p in &self.partitions {
            tpl.add_partition_offset(&self.input, p, Offset::Stored)
                .map_err(|e| BackendError::other(NAME, format!("stage partition {p}: {e}")))?;
        }
        self.consumer.assign(&tpl).map_err(|e| {
            BackendError::other(
                NAME,
                format!("stage: assigning {} on {}: {e}", self.input, self.bootstrap),
            )
        })
    }

    /// Produces one record to the output topic, waiting for room in librdkafka's queue.
    fn forward(
        &self,
        payload: &[u8],
        key: Option<&[u8]>,
        partition: i32,
    ) -> Result<(), KafkaError> {
        let mut record = BaseRecord::<[u8], [u8]>::to(&self.output)
            .payload(payload)
            .partition(partition);
        if let Some(k) = key {
            record = record.key(k);
        }
        let deadline = Instant::now() + self.timeout;
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r))
                    if Instant::now() < deadline =>
                {
                    self.producer.poll(Duration::from_millis(10));
                    record = r;
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// Takes up to `size` records (the first within `max_wait`, the rest within `fill`),
    /// forwarding each in the transaction it begins; how many it forwarded.
    fn fill(&mut self, max_wait: Duration) -> Result<usize, KafkaError> {
        let mut n = 0;
        let mut until = Instant::now() + max_wait;
        while n < self.size {
            let left = until.saturating_duration_since(Instant::now());
            let m = match self.consumer.poll(left) {
                None => break,
                Some(m) => m?,
            };
            if n == 0 {
                self.producer.begin_transaction()?;
                self.open = true;
                until = Instant::now() + self.fill;
            }
            self.forward(m.payload().unwrap_or(&[]), m.key(), m.partition())?;
            self.next.insert(m.partition(), m.offset() + 1);
            n += 1;
        }
        Ok(n)
    }

    /// Sends the input positions with the transaction and commits it (retrying what may be
    /// retried within the timeout).
    fn commit(&mut self) -> Result<(), KafkaError> {
        let mut tpl = TopicPartitionList::new();
        for (&p, &next) in &self.next {
            tpl.add_partition_offset(&self.input, p, Offset::Offset(next))?;
        }
        let cgm = self
            .consumer
            .group_metadata()
            .ok_or(KafkaError::ConsumerCommit(RDKafkaErrorCode::InvalidGroupId))?;
        let deadline = Instant::now() + self.timeout;
        // As the producers do: deliver first in short polls, or the commit's flush waits 100 ms.
        while self.producer.in_flight_count() > 0 && Instant::now() < deadline {
            self.producer.poll(FLUSH_POLL);
        }
        self.producer
            .send_offsets_to_transaction(&tpl, &cgm, self.timeout)?;
        loop {
            match self.producer.commit_transaction(self.timeout) {
                Err(KafkaError::Transaction(e))
                    if e.is_retriable() && !e.txn_requires_abort() && Instant::now() < deadline =>
                {
                    tracing::debug!("kafka stage: commit: {e}; retrying");
                }
                r => return r,
            }
        }
    }

    /// After an error in an open transaction: abort it and rewind to the committed offsets, so
    /// its records are read and forwarded again. A transaction that cannot be aborted (or a
    /// fatal error) makes the stage open itself again, unless it was fenced.
    fn recover(&mut self, e: KafkaError) -> Result<(), BackendError> {
        let fatal_now = matches!(&e, KafkaError::Transaction(t) if t.is_fatal());
        self.open = false;
        if !fatal_now {
            tracing::warn!("kafka stage: transaction failed ({e}); aborting it and rewinding");
            match self.producer.abort_transaction(self.timeout) {
                Ok(()) => return self.rewind(),
                Err(abort) => return self.reopen("aborting a transaction", abort),
            }
        }
        self.reopen("a transaction", e)
    }

    /// New clients, as a replacement would have (`init_transactions` aborts what the old
    /// producer left open), unless fenced: a newer stage of its index runs, or the coordinator
    /// gave up on this one after `transaction_timeout_ms`.
    fn reopen(&mut self, what: &str, e: KafkaError) -> Result<(), BackendError> {
        if txn::fenced(&e) {
            return Err(fatal(&format!("stage: {what}"), &e));
        }
        tracing::warn!("kafka stage: {what}: {e}; opening the stage again");
        *self = KafkaStage::open(&self.ctx, &self.options)?;
        Ok(())
    }
}

impl Stage for KafkaStage {
    fn step(&mut self, max_wait: Duration) -> Result<u64, BackendError> {
        self.next.clear();
        let n = match self.fill(max_wait) {
            Ok(0) => return Ok(0),
            Ok(n) => n,
            Err(e) if !self.open => {
                // A consumer error before any record was taken: nothing is open.
                tracing::debug!("kafka stage: poll: {e}");
                return Ok(0);
            }
            Err(e) => return self.recover(e).map(|()| 0),
        };
        match self.commit() {
            Ok(()) => {
                self.open = false;
                Ok(n as u64)
            }
            Err(e) => self.recover(e).map(|()| 0),
        }
    }
}
