//! Worker side: publishes to the variant's direct exchange with the partition as routing key,
//! keeping up to `max_in_flight` publisher confirms outstanding and reporting them as they come.
//!
//! With confirms, `send` does not wait for lapin to write the frames: the publish is polled once
//! (that queues its frames, in order, and registers its confirm) and then kept, with its confirm,
//! in the window. Waiting for each write cost two thread hand-offs per message (worker → lapin's
//! I/O loop → worker) and held bench's 1 KiB / 100 B publish rate under PerfTest's.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures_lite::future::poll_once;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::ShortString;
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use mq_core::delivery::{Durability, ProducerAck};
use mq_core::{AckSink, BackendError, Outcome, Outgoing, Producer, Seq, WorkerCtx};
use tokio::runtime::Runtime;

use crate::conn::{self, bounded, Endpoint};
use crate::options::Options;
use crate::NAME;

/// Sends published inside the open transaction (tx mode).
struct TxBatch {
    size: usize,
    seqs: Vec<Seq>,
    since: Option<Instant>,
}

/// How long a partial transaction waits for more sends before it is committed anyway.
const TX_LINGER: Duration = Duration::from_millis(10);

/// A publish from its first poll (frames queued, confirm registered) to the broker's confirm.
type Pending = Pin<Box<dyn Future<Output = lapin::Result<Confirmation>> + Send>>;

#[derive(Clone, Copy)]
enum Wait {
    No,
    One(Instant),
    All(Instant),
}

pub struct RabbitProducer {
    rt: Runtime,
    conn: Connection,
    channel: Channel,
    exchange: ShortString,
    /// Routing key of partition p.
    keys: Vec<ShortString>,
    props: BasicProperties,
    confirms: bool,
    /// Transaction mode: sends published since the last `tx.commit`, and when the first was.
    tx: Option<TxBatch>,
    in_flight: VecDeque<(Seq, Pending)>,
    max_in_flight: usize,
    /// Longest wait for one confirm when the window is full.
    ack_timeout: Duration,
    shown: String,
}

impl RabbitProducer {
    fn options(&self) -> BasicPublishOptions {
        BasicPublishOptions {
            mandatory: self.confirms,
            ..Default::default()
        }
    }

    /// No confirms: acked once written to the connection (or, in tx mode, at the commit that
    /// covers it).
    fn publish_unconfirmed(
        &mut self,
        msg: &Outgoing<'_>,
        key: ShortString,
        acks: &mut dyn AckSink,
    ) -> Result<(), BackendError> {
        let shown = &self.shown;
        self.rt.block_on(bounded(
            self.ack_timeout,
            || format!("publishing to {shown}"),
            self.channel.basic_publish(
                self.exchange.clone(),
                key,
                self.options(),
                msg.payload,
                self.props.clone(),
            ),
        ))?;
        match self.tx.as_mut() {
            Some(batch) => {
                batch.seqs.push(msg.seq);
                batch.since.get_or_insert_with(Instant::now);
                if batch.seqs.len() >= batch.size {
                    self.commit(acks)?;
                }
            }
            None => acks.ack(msg.seq, Outcome::Acked),
        }
        Ok(())
    }

    /// Publisher confirms: the publish joins the window of unconfirmed ones; a full window
    /// waits for the oldest.
    fn publish_confirmed(
        &mut self,
        msg: &Outgoing<'_>,
        key: ShortString,
        acks: &mut dyn AckSink,
    ) -> Result<(), BackendError> {
        let (channel, exchange, props, opts) = (
            self.channel.clone(),
            self.exchange.clone(),
            self.props.clone(),
            self.options(),
        );
        let payload = msg.payload.to_vec();
        let mut pending: Pending = Box::pin(async move {
            channel
                .basic_publish(exchange, key, opts, &payload, props)
                .await?
                .await
        });
        // The first poll queues the frames and registers the confirm; the write and the confirm
        // are awaited later, through the window.
        match self.rt.block_on(poll_once(&mut pending)) {
            None => {}
            Some(Ok(c)) => pending = Box::pin(std::future::ready(Ok(c))),
            Some(Err(e)) => {
                let shown = &self.shown;
                return Err(BackendError::other(
                    NAME,
                    format!("publishing to {shown}: {e}"),
                ));
            }
        }
        self.in_flight.push_back((msg.seq, pending));
        self.reap(acks, Wait::No)?;
        if self.in_flight.len() >= self.max_in_flight {
            let deadline = Instant::now() + self.ack_timeout;
            while self.in_flight.len() >= self.max_in_flight {
                if Instant::now() >= deadline {
                    return Err(BackendError::other(
                        NAME,
                        format!(
                            "{} publishes unconfirmed by {} after {}s",
                            self.in_flight.len(),
                            self.shown,
                            self.ack_timeout.as_secs()
                        ),
                    ));
                }
                self.reap(acks, Wait::One(deadline))?;
            }
        }
        Ok(())
    }

    pub fn open(ctx: &WorkerCtx, options: &Options) -> Result<RabbitProducer, BackendError> {
        let ep = Endpoint::from_value(&ctx.endpoint)?;
        let (uri, shown) = options
            .connect_uri()
            .map_err(|m| BackendError::other(NAME, m))?;
        let tx = options.tx;
        let confirms = ctx.plan.delivery.producer_ack != ProducerAck::None && !tx;
        let rt = conn::runtime()?;
        let name = format!("mq-bench {} producer {}", ctx.plan.name, ctx.index);
        let (conn, channel) = rt.block_on(async {
            let c = conn::connect(&uri, &shown, &name).await?;
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
            Ok::<_, BackendError>((c, ch))
        })?;
        let mut props = BasicProperties::default();
        if ctx.plan.delivery.durability == Durability::Persistent {
            props = props.with_delivery_mode(2);
        }
        Ok(RabbitProducer {
            rt,
            conn,
            channel,
            exchange: ep.exchange.as_str().into(),
            keys: (0..ep.queues.len()).map(|i| i.to_string().into()).collect(),
            props,
            confirms,
            tx: tx.then(|| TxBatch {
                size: options.tx_batch as usize,
                seqs: Vec::new(),
                since: None,
            }),
            in_flight: VecDeque::new(),
            max_in_flight: options.max_in_flight as usize,
            ack_timeout: ctx.plan.workload.ack_timeout.0,
            shown,
        })
    }

    /// Commits the open transaction: its sends are acked when the broker answers `tx.commit-ok`
    /// (for persistent messages, once they are on disk) and failed when it refuses.
    fn commit(&mut self, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        let Some(batch) = self.tx.as_mut() else {
            return Ok(());
        };
        if batch.seqs.is_empty() {
            return Ok(());
        }
        let seqs = std::mem::take(&mut batch.seqs);
        batch.since = None;
        let shown = &self.shown;
        // On an error the commit's fate is unknown (the channel may have broken mid-way): the
        // batch's sends stay unknown.
        self.rt.block_on(bounded(
            self.ack_timeout,
            || format!("tx.commit on {shown}"),
            self.channel.tx_commit(),
        ))?;
        seqs.into_iter().for_each(|s| acks.ack(s, Outcome::Acked));
        Ok(())
    }

    /// Reports the confirms at the front of the window that have arrived, in publish order,
    /// waiting for none, the first, or all of them until a deadline.
    fn reap(&mut self, acks: &mut dyn AckSink, mut wait: Wait) -> Result<(), BackendError> {
        let in_flight = &mut self.in_flight;
        let shown = &self.shown;
        self.rt.block_on(async {
            while let Some((seq, confirm)) = in_flight.front_mut() {
                let seq = *seq;
                let r = match wait {
                    Wait::No => match poll_once(&mut *confirm).await {
                        Some(r) => r,
                        None => return Ok(()),
                    },
                    Wait::One(deadline) | Wait::All(deadline) => {
                        match tokio::time::timeout(
                            deadline.saturating_duration_since(Instant::now()),
                            &mut *confirm,
                        )
                        .await
                        {
                            Ok(r) => r,
                            Err(_) => return Ok(()),
                        }
                    }
                };
                in_flight.pop_front();
                if let Wait::One(_) = wait {
                    wait = Wait::No;
                }
                match r {
                    Ok(Confirmation::Ack(None)) | Ok(Confirmation::NotRequested) => {
                        acks.ack(seq, Outcome::Acked)
                    }
                    // Returned as unroutable, or refused: the broker does not have it.
                    Ok(Confirmation::Ack(Some(_))) | Ok(Confirmation::Nack(_)) => {
                        acks.ack(seq, Outcome::Failed)
                    }
                    Err(e) => {
                        // The channel is gone: what is still in flight stays unknown.
                        return Err(BackendError::other(
                            NAME,
                            format!("waiting for confirms from {shown}: {e}"),
                        ));
                    }
                }
            }
            Ok(())
        })
    }
}

impl Producer for RabbitProducer {
    fn send(&mut self, msg: &Outgoing<'_>, acks: &mut dyn AckSink) -> Result<(), BackendError> {
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
        let key = key.clone();
        if self.confirms {
            self.publish_confirmed(msg, key, acks)
        } else {
            self.publish_unconfirmed(msg, key, acks)
        }
    }

    fn poll(&mut self, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        if self
            .tx
            .as_ref()
            .and_then(|b| b.since)
            .is_some_and(|t| t.elapsed() >= TX_LINGER)
        {
            self.commit(acks)?;
        }
        self.reap(acks, Wait::No)
    }

    fn flush(&mut self, timeout: Duration, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        self.commit(acks)?;
        let deadline = Instant::now() + timeout;
        self.reap(acks, Wait::All(deadline))?;
        if !self.in_flight.is_empty() {
            tracing::warn!(
                "rabbitmq: {} publishes still unconfirmed by {} after {:?}; they count as unknown",
                self.in_flight.len(),
                self.shown,
                timeout
            );
        }
        Ok(())
    }
}

impl Drop for RabbitProducer {
    fn drop(&mut self) {
        let _ = self.rt.block_on(conn::within(
            Duration::from_secs(2),
            self.conn.close(200, "bye".into()),
        ));
    }
}
