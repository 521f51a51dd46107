//! Kafka transactions: the options' checks, the consumers' isolation level, and the producer's
//! open transaction (begin, `transaction_size` sends, commit; abort when the commit fails).
//!
//! The producer tells the worker, through [`AckSink::transaction`], that a commit is about to
//! start before it asks for it, and that a transaction was aborted after the abort returned; its
//! messages are acked together once the commit returned (failed once aborted), never one by one
//! from librdkafka's delivery reports: a message delivered to the log is not yet visible to a
//! `read_committed` consumer, and may never be.

use std::time::{Duration, Instant};

use mq_core::delivery::ProducerAck;
use mq_core::plan::FieldError;
use mq_core::{AckSink, BackendError, Delivery, Outcome, Seq, TxnEvent};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, Producer as _, ProducerContext};
use rdkafka::ClientConfig;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::options::Options;
use crate::NAME;

/// Messages per transaction when `transaction_size` is absent.
pub const DEFAULT_SIZE: u32 = 100;
/// `transaction.timeout.ms` when `transaction_timeout_ms` is absent.
pub const DEFAULT_TIMEOUT_MS: u32 = 10_000;
/// How long each poll waits while a transaction's records are delivered before its commit.
const FLUSH_POLL: Duration = Duration::from_millis(1);
/// How often a managed broker's coordinator looks for transactions past their timeout.
pub const CLEANUP_INTERVAL_MS: u32 = 1_000;

/// What a fenced transactional producer does (`options.on_fenced`). A producer is fenced when
/// a newer one with its `transactional.id` registers, or when the coordinator aborted its open
/// transaction after `transaction_timeout_ms` (e.g. through a broker outage longer than that);
/// librdkafka cannot go on with the instance either way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnFenced {
    /// A new instance with the same id (its init aborts what was open), at most
    /// [`MAX_RECREATE`] times per worker; the lost transaction's messages stay unacked.
    #[default]
    Recreate,
    /// The worker ends with the error.
    Fail,
}

/// How many times one worker re-creates its fenced producer before giving up.
pub const MAX_RECREATE: u32 = 10;

/// The consumers' `isolation.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IsolationLevel {
    /// Only messages of committed transactions (and non-transactional ones), up to the last
    /// stable offset: an open transaction holds back what follows it.
    ReadCommitted,
    /// Every message appended, aborted transactions' included.
    ReadUncommitted,
}

impl IsolationLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            IsolationLevel::ReadCommitted => "read_committed",
            IsolationLevel::ReadUncommitted => "read_uncommitted",
        }
    }
}

/// The transaction settings together: transactional sends need acks=all; the sizes and the
/// timeout only mean something to a transactional producer.
pub fn check(o: &Options, delivery: &Delivery, e: &mut Vec<FieldError>) {
    if !o.transactional && o.pipeline.is_none() {
        for (set, field) in [
            (o.transaction_size.is_some(), "transaction_size"),
            (o.transaction_timeout_ms.is_some(), "transaction_timeout_ms"),
            (o.on_fenced.is_some(), "on_fenced"),
        ] {
            if set {
                e.push(FieldError::new(
                    format!("options.{field}"),
                    format!("{field} is a transactional producer's (or a pipeline stage's) setting: set transactional = true or pipeline = \"read-process-write\" (or remove {field})"),
                ));
            }
        }
        return;
    }
    if o.transactional && delivery.producer_ack != ProducerAck::All {
        e.push(FieldError::new(
            "options.transactional",
            format!(
                "transactions need acks=all but producer_ack = \"{}\": set producer_ack = \"all\" or transactional = false",
                delivery.producer_ack
            ),
        ));
    }
}

/// A paced transactional producer fills a transaction in `transaction_size / rate` seconds: more
/// than half the timeout, and the coordinator may abort transactions the producer is still
/// filling (their commits fail, every message of them failed).
pub fn check_pace(o: &Options, rate_per_producer: f64, e: &mut Vec<FieldError>) {
    if !o.transactional || rate_per_producer <= 0.0 {
        return;
    }
    let size = o.transaction_size.unwrap_or(DEFAULT_SIZE);
    let timeout = o.transaction_timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    let fill_ms = f64::from(size) / rate_per_producer * 1000.0;
    if fill_ms > f64::from(timeout) / 2.0 {
        e.push(FieldError::new(
            "options.transaction_size",
            format!("transaction_size = {size} at {rate_per_producer:.0} msg/s per producer takes {:.1} s to fill, over half of transaction_timeout_ms ({timeout}): the coordinator would abort transactions still being filled; valid is at most {} (or raise transaction_timeout_ms)",
                fill_ms / 1000.0,
                ((rate_per_producer * f64::from(timeout) / 2000.0) as u64).max(1)),
        ));
    }
}

/// The isolation level consumers are given: the option, else `read_committed` for a
/// transactional or pipeline variant, else none (librdkafka's default).
pub fn isolation(o: &Options) -> Option<IsolationLevel> {
    let txns = o.transactional || o.pipeline.is_some();
    o.isolation_level
        .or(txns.then_some(IsolationLevel::ReadCommitted))
}

/// A transactional producer's settings: its `transactional.id` `id` (stable per run, variant and
/// producer or stage index: `<topic>-p<i>`, `<topic>-s<i>`; the topic names the run and the
/// variant) and its timeout.
pub fn configure(c: &mut ClientConfig, o: &Options, id: &str) {
    c.set("transactional.id", id)
        .set("enable.idempotence", "true")
        .set(
            "transaction.timeout.ms",
            o.transaction_timeout_ms
                .unwrap_or(DEFAULT_TIMEOUT_MS)
                .to_string(),
        );
}

/// A transactional producer's open transaction: the seqs sent in it so far.
pub struct Transaction {
    /// Messages per transaction.
    size: u32,
    /// The longest wait for a commit or an abort.
    timeout: Duration,
    /// The first seq of the open transaction and how many seqs it spans; `None` between
    /// transactions.
    open: Option<(u64, u64)>,
    /// The outcomes handed to the worker at a commit or abort (reused: no allocation per
    /// transaction).
    outcomes: Vec<(Seq, Outcome)>,
    /// A fatal error ended this instance (fenced, or a broken state): see [`OnFenced`].
    broken: bool,
}

impl Transaction {
    /// Registers the producer with its coordinator (fencing an earlier one of the same id).
    pub fn init<C: ProducerContext>(
        producer: &BaseProducer<C>,
        o: &Options,
        timeout: Duration,
    ) -> Result<Transaction, BackendError> {
        Transaction::start(
            producer,
            o.transaction_size.unwrap_or(DEFAULT_SIZE),
            timeout,
        )
    }

    fn start<C: ProducerContext>(
        producer: &BaseProducer<C>,
        size: u32,
        timeout: Duration,
    ) -> Result<Transaction, BackendError> {
        producer
            .init_transactions(timeout)
            .map_err(|e| fatal("initialising transactions", &e))?;
        Ok(Transaction {
            size,
            timeout,
            open: None,
            outcomes: Vec::with_capacity(size as usize),
            broken: false,
        })
    }

    /// The same settings on a new instance of the producer (after this one was fenced).
    pub fn renew<C: ProducerContext>(
        &self,
        producer: &BaseProducer<C>,
    ) -> Result<Transaction, BackendError> {
        Transaction::start(producer, self.size, self.timeout)
    }

    /// Whether a fatal error ended this instance.
    pub fn broken(&self) -> bool {
        self.broken
    }

    /// Before sending `seq`: opens a transaction if none is.
    #[inline]
    pub fn before_send<C: ProducerContext>(
        &mut self,
        producer: &BaseProducer<C>,
        seq: Seq,
    ) -> Result<(), BackendError> {
        if self.open.is_none() {
            if let Err(e) = producer.begin_transaction() {
                self.broken = true;
                return Err(fatal("beginning a transaction", &e));
            }
            self.open = Some((seq.0, 0));
        }
        Ok(())
    }

    /// After sending `seq` (handed to librdkafka or refused): commits once the transaction
    /// holds `transaction_size` messages.
    #[inline]
    pub fn after_send<C: ProducerContext>(
        &mut self,
        producer: &BaseProducer<C>,
        seq: Seq,
        acks: &mut dyn AckSink,
    ) -> Result<(), BackendError> {
        if let Some((first, count)) = &mut self.open {
            *count = (seq.0 + 1).saturating_sub(*first);
            if *count >= u64::from(self.size) {
                return self.end(producer, acks);
            }
        }
        Ok(())
    }

    /// Commits the open transaction, if any: recorded as started first, its messages acked once
    /// the commit returned. A commit that fails is aborted (its messages failed); a fatal error
    /// (the producer fenced by another of its id, a broken state) is the producer's end.
    pub fn end<C: ProducerContext>(
        &mut self,
        producer: &BaseProducer<C>,
        acks: &mut dyn AckSink,
    ) -> Result<(), BackendError> {
        let Some((first, count)) = self.open.take() else {
            return Ok(());
        };
        if count == 0 {
            // Begun, but its first send failed or was interrupted: nothing to commit or record.
            return producer.abort_transaction(self.timeout).map_err(|e| {
                self.broken = true;
                fatal("aborting an empty transaction", &e)
            });
        }
        acks.transaction(TxnEvent::CommitStarted, Seq(first), count);
        let deadline = Instant::now() + self.timeout;
        // The commit flushes first, but rdkafka's flush polls in whole 100 ms waits: every
        // commit would cost 100 ms. Delivering the transaction's records in short polls first
        // leaves the commit nothing to wait for.
        while producer.in_flight_count() > 0 && Instant::now() < deadline {
            producer.poll(FLUSH_POLL);
        }
        let err = loop {
            match producer.commit_transaction(self.timeout) {
                Ok(()) => {
                    self.report(first, count, Outcome::Acked, acks);
                    return Ok(());
                }
                Err(KafkaError::Transaction(e)) if e.is_fatal() => {
                    self.broken = true;
                    return Err(fatal(
                        "committing a transaction",
                        &KafkaError::Transaction(e),
                    ));
                }
                Err(KafkaError::Transaction(e))
                    if e.is_retriable() && !e.txn_requires_abort() && Instant::now() < deadline =>
                {
                    tracing::debug!("kafka: commit of seqs {first}+{count}: {e}; retrying");
                }
                Err(e) => break e,
            }
        };
        tracing::warn!(
            "kafka: commit of seqs {first}..{} failed ({err}); aborting it",
            first + count
        );
        if let Err(e) = producer.abort_transaction(self.timeout) {
            self.broken = true;
            return Err(fatal("aborting a transaction whose commit failed", &e));
        }
        acks.transaction(TxnEvent::Aborted, Seq(first), count);
        self.report(first, count, Outcome::Failed, acks);
        Ok(())
    }

    /// Hands the outcome of every message of the transaction to the worker, as one batch.
    fn report(&mut self, first: u64, count: u64, outcome: Outcome, acks: &mut dyn AckSink) {
        self.outcomes.clear();
        self.outcomes
            .extend((first..first + count).map(|s| (Seq(s), outcome)));
        acks.ack_all(&self.outcomes);
    }
}

/// Whether `e` says the producer was fenced (a newer one of its `transactional.id`, or the
/// coordinator's abort after the timeout bumped its epoch).
pub(crate) fn fenced(e: &KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode::{Fenced, ProducerFenced};
    matches!(e.rdkafka_error_code(), Some(Fenced | ProducerFenced))
}

/// An error a transactional producer cannot go on after: its open transaction's messages stay
/// undecided (the coordinator aborts them after `transaction.timeout.ms`).
pub(crate) fn fatal(what: &str, e: &KafkaError) -> BackendError {
    let why = match fenced(e) {
        true => {
            ": fenced: a newer producer with the same transactional.id, or the coordinator aborted the open transaction after transaction_timeout_ms (e.g. a broker outage longer than that)"
        }
        false => "",
    };
    BackendError::other(NAME, format!("transactional producer: {what}: {e}{why}"))
}
