//! Worker side: publishes to the variant's direct exchange with the partition as routing key,
//! keeping up to `max_in_flight` publisher confirms outstanding and reporting them as they come.
//!
//! With confirms, `send` does not wait for lapin to write the frames: the publish is polled once
//! (that queues its frames, in order, and registers its confirm) and then kept, with its confirm,
//! in the window. Waiting for each write cost two thread hand-offs per message (worker → lapin's
//! I/O loop → worker) and held bench's 1 KiB / 100 B publish rate under PerfTest's.
//!
//! When the connection is lost (its node killed), the producer does what a real client does: it
//! reconnects, to any node ([`crate::dial`]), declares the exchange again, and republishes in
//! order what is still unconfirmed (in tx mode: the open transaction). A message that had
//! reached its queue before the loss is then there twice; the checker counts the duplicate.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::ShortString;
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use mq_core::delivery::{Durability, ProducerAck};
use mq_core::{AckSink, BackendError, Outcome, Outgoing, Producer, Seq, WorkerCtx};
use tokio::runtime::Runtime;

mod confirms;

use crate::conn::{self, bounded, Endpoint};
use crate::dial::{retry, unless_stopped, Dialer, Recovery};
use crate::options::Options;
use crate::topology::Topology;
use crate::NAME;

/// How long a partial transaction waits for more sends before it is committed anyway.
const TX_LINGER: Duration = Duration::from_millis(10);

/// A publish from its first poll (frames queued, confirm registered) to the broker's confirm.
type Pending = Pin<Box<dyn Future<Output = lapin::Result<Confirmation>> + Send>>;

/// One message as it may have to be published again.
struct Entry {
    seq: Seq,
    key: ShortString,
    payload: Arc<[u8]>,
}

/// Sends published inside the open transaction (tx mode).
struct TxBatch {
    size: usize,
    entries: Vec<Entry>,
    since: Option<Instant>,
}

#[derive(Clone, Copy)]
enum Wait {
    No,
    One(Instant),
    All(Instant),
}

pub struct RabbitProducer {
    rt: Runtime,
    dialer: Dialer,
    /// The connection and channel in use; None from a loss until it is recovered.
    link: Option<(Connection, Channel)>,
    /// The loss being recovered. Its deadline counts from the first failure until an outcome
    /// shows the link works again, so a link that breaks anew right after each reconnect cannot
    /// hold the worker longer than `reconnect_timeout_ms`.
    recovering: Option<Recovery>,
    topology: Topology,
    /// Routing key of partition p.
    keys: Vec<ShortString>,
    props: BasicProperties,
    confirms: bool,
    tx: bool,
    /// Transaction mode: sends published since the last `tx.commit`, and when the first was.
    batch: TxBatch,
    /// Publishes awaiting their confirm, in publish order.
    in_flight: VecDeque<(Entry, Pending)>,
    max_in_flight: usize,
    /// Longest wait for one confirm when the window is full.
    ack_timeout: Duration,
}

impl RabbitProducer {
    pub fn open(ctx: &WorkerCtx, options: &Options) -> Result<RabbitProducer, BackendError> {
        let ep = Endpoint::from_value(&ctx.endpoint)?;
        let name = format!("mq-bench {} producer {}", ctx.plan.name, ctx.index);
        let mut props = BasicProperties::default();
        if ctx.plan.delivery.durability == Durability::Persistent {
            props = props.with_delivery_mode(2);
        }
        let mut p = RabbitProducer {
            rt: conn::runtime()?,
            dialer: Dialer::new(options, name)?,
            link: None,
            recovering: None,
            topology: Topology::new(&ep.exchange, &ep.queues, &ctx.plan, options),
            keys: (0..ep.queues.len()).map(|i| i.to_string().into()).collect(),
            props,
            confirms: ctx.plan.delivery.producer_ack != ProducerAck::None && !options.tx,
            tx: options.tx,
            batch: TxBatch {
                size: options.tx_batch as usize,
                entries: Vec::new(),
                since: None,
            },
            in_flight: VecDeque::new(),
            max_in_flight: options.max_in_flight as usize,
            ack_timeout: ctx.plan.workload.ack_timeout.0,
        };
        // The first connection is not retried: a broker that is not there is a setup error.
        p.attach()?;
        Ok(p)
    }

    fn options(&self) -> BasicPublishOptions {
        BasicPublishOptions {
            mandatory: self.confirms,
            ..Default::default()
        }
    }

    /// Connects (any node), opens the channel in its mode, declares the exchange, and
    /// republishes what a lost link left unconfirmed (or uncommitted). Returns how many.
    fn attach(&mut self) -> Result<usize, BackendError> {
        let (confirms, tx) = (self.confirms, self.tx);
        let (dialer, topology) = (&mut self.dialer, &self.topology);
        let (c, ch) = self.rt.block_on(unless_stopped(async {
            let c = dialer.connect().await?;
            let shown = dialer.shown();
            let ch = bounded(
                conn::CONNECT_TIMEOUT,
                || format!("opening a channel on {shown}"),
                c.create_channel(),
            )
            .await?;
            if confirms {
                bounded(
                    conn::CONNECT_TIMEOUT,
                    || format!("confirm.select on {shown}"),
                    ch.confirm_select(ConfirmSelectOptions::default()),
                )
                .await?;
            }
            if tx {
                bounded(
                    conn::CONNECT_TIMEOUT,
                    || format!("tx.select on {shown}"),
                    ch.tx_select(),
                )
                .await?;
            }
            topology.declare_exchange(&ch, shown).await?;
            Ok::<_, BackendError>((c, ch))
        }))?;
        self.link = Some((c, ch));
        self.republish()
    }

    /// Publishes again, in order, what is in flight (confirms) or in the open transaction.
    fn republish(&mut self) -> Result<usize, BackendError> {
        let window = std::mem::take(&mut self.in_flight);
        let n = window.len() + self.batch.entries.len();
        for (entry, _) in window {
            let confirm = self.start(&entry)?;
            self.in_flight.push_back((entry, confirm));
        }
        for i in 0..self.batch.entries.len() {
            let e = &self.batch.entries[i];
            let (key, payload) = (e.key.clone(), e.payload.clone());
            self.publish_now(key, &payload)?;
        }
        Ok(n)
    }

    /// Closes and forgets the link (the connection may still stand after a channel error).
    fn drop_link(&mut self) {
        if let Some((c, _)) = self.link.take() {
            if c.status().connected() {
                let _ = self.rt.block_on(conn::within(
                    Duration::from_secs(1),
                    c.close(200, "reconnecting".into()),
                ));
            }
        }
    }

    /// The link broke (`why`): dropped, and its recovery begins unless one is under way.
    fn lose(&mut self, why: &BackendError) {
        self.drop_link();
        match &mut self.recovering {
            Some(rec) => rec.failed(why),
            None => {
                tracing::warn!(
                    "rabbitmq: producer lost {} ({why}); reconnecting",
                    self.dialer.shown()
                );
                self.recovering = Some(Recovery::start(
                    self.dialer.reconnect_timeout,
                    why.to_string(),
                ));
            }
        }
    }

    /// An outcome arrived: the link works, the loss (if any) is over.
    fn progressed(&mut self) {
        if let Some(rec) = self.recovering.take() {
            tracing::warn!(
                "rabbitmq: producer back on {} {:.1}s after the loss",
                self.dialer.shown(),
                rec.took().as_secs_f64()
            );
        }
    }

    /// Reconnects after a loss, within `options.reconnect_timeout_ms` of it (and `deadline`).
    fn recover(&mut self, deadline: Option<Instant>) -> Result<(), BackendError> {
        let mut rec = self
            .recovering
            .take()
            .unwrap_or_else(|| Recovery::start(self.dialer.reconnect_timeout, "the link was lost"));
        let targets = self.dialer.all_shown();
        let r = retry(&mut rec, &targets, deadline, || {
            let r = self.attach();
            if r.is_err() {
                self.drop_link();
            }
            r
        });
        self.recovering = Some(rec);
        let n = r?;
        tracing::warn!(
            "rabbitmq: producer reconnected to {}; republished {n}",
            self.dialer.shown()
        );
        Ok(())
    }

    /// A live channel: the link, recovered first if it was lost.
    fn channel(&mut self) -> Result<Channel, BackendError> {
        if let Some((_, ch)) = &self.link {
            if ch.status().connected() {
                return Ok(ch.clone());
            }
            let e = BackendError::other(
                NAME,
                format!("the channel to {} closed", self.dialer.shown()),
            );
            self.lose(&e);
        }
        self.recover(None)?;
        match &self.link {
            Some((_, ch)) => Ok(ch.clone()),
            None => Err(BackendError::other(NAME, "no channel after reconnecting")),
        }
    }

    /// Publishes without a confirm, waiting for the write.
    fn publish_now(&self, key: ShortString, payload: &[u8]) -> Result<(), BackendError> {
        let Some((_, channel)) = &self.link else {
            return Err(BackendError::other(NAME, "no connection"));
        };
        let shown = self.dialer.shown();
        self.rt.block_on(bounded(
            self.ack_timeout,
            || format!("publishing to {shown}"),
            channel.basic_publish(
                self.topology.exchange.as_str().into(),
                key,
                self.options(),
                payload,
                self.props.clone(),
            ),
        ))?;
        Ok(())
    }

    /// No confirms: acked once written to the connection (or, in tx mode, at the commit that
    /// covers it).
    fn publish_unconfirmed(
        &mut self,
        entry: Entry,
        acks: &mut dyn AckSink,
    ) -> Result<(), BackendError> {
        while let Err(e) = self.publish_now(entry.key.clone(), &entry.payload) {
            self.lose(&e);
            self.recover(None)?;
        }
        if !self.tx {
            self.progressed();
            acks.ack(entry.seq, Outcome::Acked);
            return Ok(());
        }
        self.batch.since.get_or_insert_with(Instant::now);
        self.batch.entries.push(entry);
        if self.batch.entries.len() >= self.batch.size {
            self.commit(acks)?;
        }
        Ok(())
    }

    /// Commits the open transaction: its sends are acked when the broker answers `tx.commit-ok`
    /// (for persistent messages, once they are on disk). A commit whose answer the loss of the
    /// link swallowed is published and committed again on the next link.
    fn commit(&mut self, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        while !self.batch.entries.is_empty() {
            let ch = self.channel()?;
            let shown = self.dialer.shown();
            let r = self.rt.block_on(bounded(
                self.ack_timeout,
                || format!("tx.commit on {shown}"),
                ch.tx_commit(),
            ));
            match r {
                Ok(()) => {
                    self.progressed();
                    self.batch.since = None;
                    for e in self.batch.entries.drain(..) {
                        acks.ack(e.seq, Outcome::Acked);
                    }
                }
                Err(e) => {
                    self.lose(&e);
                    self.recover(None)?;
                }
            }
        }
        Ok(())
    }

    /// `flush` until `deadline`: the open transaction committed and every confirm reported,
    /// reconnecting on the way if the link is lost.
    fn settle(&mut self, deadline: Instant, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        while Instant::now() < deadline {
            if self.link.is_none() {
                self.recover(Some(deadline))?;
            }
            if self.tx {
                return self.commit(acks);
            }
            match self.reap(acks, Wait::All(deadline)) {
                Ok(()) => return Ok(()),
                Err(e) => self.lose(&e),
            }
        }
        Ok(())
    }
}

impl Producer for RabbitProducer {
    fn send(&mut self, msg: &mut Outgoing<'_>, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        let Some(key) = self.keys.get(msg.partition.0 as usize) else {
            return Err(BackendError::other(
                NAME,
                format!(
                    "partition {} does not exist (the run has {} queues)",
                    msg.partition.0,
                    self.keys.len()
                ),
            ));
        };
        let entry = Entry {
            seq: msg.seq,
            key: key.clone(),
            payload: Arc::from(msg.payload()),
        };
        if self.link.is_none() {
            // Nothing of this send has left yet: if no link comes back, it was never sent.
            if let Err(e) = self.recover(None) {
                acks.ack(msg.seq, Outcome::NotSent);
                return Err(e);
            }
        }
        if self.confirms {
            self.publish_confirmed(entry, acks)
        } else {
            self.publish_unconfirmed(entry, acks)
        }
    }

    fn poll(&mut self, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        if self.link.is_none() {
            return Ok(()); // the next send or the flush reconnects; poll must not block
        }
        if self.tx {
            if self.batch.since.is_some_and(|t| t.elapsed() >= TX_LINGER) {
                self.commit(acks)?;
            }
            return Ok(());
        }
        if let Err(e) = self.reap(acks, Wait::No) {
            self.lose(&e);
        }
        Ok(())
    }

    fn flush(&mut self, timeout: Duration, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        let deadline = Instant::now() + timeout;
        match self.settle(deadline, acks) {
            Ok(()) => {}
            // Stopped, or out of time: what is unconfirmed stays unknown, as without a loss.
            Err(BackendError::Interrupted { .. }) => {}
            Err(_) if Instant::now() >= deadline => {}
            Err(e) => return Err(e),
        }
        let left = self.in_flight.len() + self.batch.entries.len();
        if left > 0 {
            tracing::warn!(
                "rabbitmq: {left} publishes still unconfirmed by {} after {timeout:?}; they count as unknown",
                self.dialer.shown(),
            );
        }
        Ok(())
    }
}

impl Drop for RabbitProducer {
    fn drop(&mut self) {
        if let Some((c, _)) = &self.link {
            let _ = self.rt.block_on(conn::within(
                Duration::from_secs(2),
                c.close(200, "bye".into()),
            ));
        }
    }
}
