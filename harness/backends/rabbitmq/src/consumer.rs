//! Worker side: one channel and one `basic.consume` per partition queue, taken round-robin.
//!
//! One channel per queue lets an `after-process` consumer ack a whole batch with one
//! `basic.ack(multiple)` per queue without acking deliveries of another queue it has not handed
//! over yet.
//!
//! With processing threads or the dedup store (the sink says [`Processed::Later`]), a delivery
//! is acked once [`Consumer::processed`] reports it done, never before: those done with every
//! delivery before them on their channel go in one `basic.ack(multiple)` (a channel's
//! unfinished deliveries are kept as [`InFlight`] keeps offsets), those done out of order on
//! their own (`multiple = false`). Its token is the queue's partition and
//! `link generation << 40 | delivery tag`: tags are per channel, so a token from a link since
//! lost is dropped (its delivery comes again) rather than acked on the new channel.
//!
//! When the connection is lost (its node killed, or the broker cancels a consumer because its
//! queue's node went down), the consumer reconnects to any node ([`crate::dial`]), declares the
//! exchange and its queues again and consumes anew, within `options.reconnect_timeout_ms`.
//! Deliveries handed over but not acked before the loss are delivered again by the broker: the
//! checker counts them as duplicates.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_lite::future::poll_once;
use futures_lite::Stream;
use lapin::message::Delivery;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use mq_core::delivery::ConsumerAck;
use mq_core::parallel::InFlight;
use mq_core::{BackendError, Consumer, DeliverySink, Partition, Processed, Token, WorkerCtx};
use tokio::runtime::Runtime;

use crate::acks::{ack_handed, ack_processed};
use crate::conn::{self, bounded, Endpoint};
use crate::dial::{pause, unless_stopped, Dialer, Recovery};
use crate::options::Options;
use crate::topology::Topology;
use crate::NAME;

pub(crate) const OP_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Sub {
    pub(crate) channel: Channel,
    consumer: lapin::Consumer,
    partition: Partition,
    /// Highest delivery tag handed to the sink and not acked yet.
    pub(crate) unacked: Option<u64>,
    /// Tags handed over to be processed later, and whether each has finished (as partition 0).
    pub(crate) in_flight: InFlight,
}

/// A connection and its subscriptions.
struct Link {
    conn: Connection,
    subs: Vec<Sub>,
}

pub struct RabbitConsumer {
    rt: Runtime,
    dialer: Dialer,
    /// None from a loss until it is recovered.
    link: Option<Link>,
    /// The loss being recovered; its deadline counts from the loss until a delivery arrives.
    recovering: Option<Recovery>,
    topology: Topology,
    /// (partition, its queue's index in the topology).
    partitions: Vec<(Partition, usize)>,
    index: u16,
    prefetch: u16,
    manual_ack: bool,
    /// Where the next round-robin scan starts.
    next: usize,
    /// Most deliveries handed over in one poll.
    max_batch: usize,
    /// Handed-over deliveries (all queues) that make an after-process consumer ack them.
    ack_every: usize,
    /// Deliveries handed over and not acked yet, and when they must be at the latest.
    since_ack: usize,
    ack_due: Option<Instant>,
    /// Counts the links made: the high bits of a token (see the module doc).
    generation: u64,
}

/// Longest an after-process consumer keeps a delivery it has handed over unacked while more
/// keep coming (see `options.ack_every`).
const ACK_LINGER: Duration = Duration::from_millis(10);

/// Bits of a token's offset that hold the delivery tag.
const TAG_BITS: u32 = 40;

impl RabbitConsumer {
    pub fn open(ctx: &WorkerCtx, options: &Options) -> Result<RabbitConsumer, BackendError> {
        let ep = Endpoint::from_value(&ctx.endpoint)?;
        if ctx.partitions.is_empty() {
            return Err(BackendError::other(
                NAME,
                "consumer has no partitions to read",
            ));
        }
        let mut partitions = Vec::new();
        for &p in &ctx.partitions {
            let i = p.0 as usize;
            if i >= ep.queues.len() {
                return Err(BackendError::other(
                    NAME,
                    format!(
                        "partition {} does not exist (the run has {} queues)",
                        p.0,
                        ep.queues.len()
                    ),
                ));
            }
            partitions.push((p, i));
        }
        let name = format!("mq-bench {} consumer {}", ctx.plan.name, ctx.index);
        let mut c = RabbitConsumer {
            rt: conn::runtime()?,
            dialer: Dialer::new(options, name)?,
            link: None,
            recovering: None,
            topology: Topology::new(&ep.exchange, &ep.queues, &ctx.plan, options),
            partitions,
            index: ctx.index,
            prefetch: options.prefetch,
            manual_ack: ctx.plan.delivery.consumer_ack == ConsumerAck::AfterProcess,
            next: 0,
            max_batch: (options.prefetch as usize).max(64),
            ack_every: options.ack_every(),
            since_ack: 0,
            ack_due: None,
            generation: 0,
        };
        // The first connection is not retried: a broker that is not there is a setup error.
        c.attach()?;
        Ok(c)
    }

    /// Connects (any node), declares the exchange and the queues (a restarted node may have
    /// lost transient ones), and consumes each queue on its own channel.
    fn attach(&mut self) -> Result<(), BackendError> {
        let RabbitConsumer {
            rt,
            dialer,
            topology,
            partitions,
            index,
            prefetch,
            manual_ack,
            ..
        } = self;
        let link = rt.block_on(unless_stopped(async {
            let conn = dialer.connect().await?;
            let shown = dialer.shown();
            let mut subs = Vec::new();
            for &(p, i) in partitions.iter() {
                let channel = bounded(
                    OP_TIMEOUT,
                    || format!("opening a channel on {shown}"),
                    conn.create_channel(),
                )
                .await?;
                if subs.is_empty() {
                    topology.declare_exchange(&channel, shown).await?;
                }
                topology.declare_queue(&channel, i, shown).await?;
                let consumer = subscribe(
                    &channel,
                    &topology.queues[i],
                    *index,
                    p,
                    *prefetch,
                    *manual_ack,
                    shown,
                )
                .await?;
                subs.push(Sub {
                    channel,
                    consumer,
                    partition: p,
                    unacked: None,
                    in_flight: InFlight::default(),
                });
            }
            Ok(Link { conn, subs })
        }));
        self.link = Some(link?);
        self.generation += 1;
        Ok(())
    }

    /// The link broke (`why`): closed and forgotten, and its recovery begins unless one is
    /// under way.
    fn lose(&mut self, why: &BackendError) {
        // What was handed over and not acked comes again on the next link.
        (self.since_ack, self.ack_due) = (0, None);
        if let Some(l) = self.link.take() {
            if l.conn.status().connected() {
                let _ = self.rt.block_on(conn::within(
                    Duration::from_secs(1),
                    l.conn.close(200, "reconnecting".into()),
                ));
            }
        }
        match &mut self.recovering {
            Some(rec) => rec.failed(why),
            None => {
                tracing::warn!(
                    "rabbitmq: consumer {} lost {} ({why}); reconnecting",
                    self.index,
                    self.dialer.shown()
                );
                self.recovering = Some(Recovery::start(
                    self.dialer.reconnect_timeout,
                    why.to_string(),
                ));
            }
        }
    }

    /// One attempt to get the link back; an error only once the recovery has taken too long
    /// (or the worker is stopped). A failed attempt pauses up to `max_wait`.
    fn recover(&mut self, max_wait: Duration) -> Result<(), BackendError> {
        let Some(rec) = &self.recovering else {
            return self.attach();
        };
        if rec.expired() {
            return Err(rec.gave_up(&self.dialer.all_shown()));
        }
        match self.attach() {
            Ok(()) => {
                tracing::warn!(
                    "rabbitmq: consumer {} reconnected to {}",
                    self.index,
                    self.dialer.shown()
                );
                Ok(())
            }
            Err(e @ BackendError::Interrupted { .. }) => Err(e),
            Err(e) => {
                if let Some(rec) = &mut self.recovering {
                    rec.failed(&e);
                }
                pause(max_wait);
                Ok(())
            }
        }
    }

    /// Hands over what has arrived (waiting up to `max_wait` for the first) and acks it.
    fn receive(
        &mut self,
        max_wait: Duration,
        sink: &mut dyn DeliverySink,
    ) -> Result<usize, BackendError> {
        let RabbitConsumer {
            rt,
            link,
            manual_ack,
            next,
            max_batch,
            ack_every,
            since_ack,
            ack_due,
            dialer,
            generation,
            ..
        } = self;
        let Some(Link { subs, .. }) = link else {
            return Ok(0);
        };
        let (manual_ack, max_batch, shown) = (*manual_ack, *max_batch, dialer.shown());
        let generation = *generation << TAG_BITS;
        rt.block_on(async {
            let err = |m: String| BackendError::other(NAME, format!("{m} (broker {shown})"));
            // Unacked deliveries wait for the next ones at most until they are due.
            let wait = match *ack_due {
                Some(due) => max_wait.min(due.saturating_duration_since(Instant::now())),
                None => max_wait,
            };
            let first =
                tokio::time::timeout(wait, std::future::poll_fn(|cx| poll_any(subs, next, cx)))
                    .await;
            let mut item = match first {
                Err(_) => {
                    if ack_due.take().is_some() {
                        *since_ack = 0;
                        ack_handed(subs, shown).await?;
                    }
                    return Ok(0);
                }
                Ok(r) => r.map_err(err)?,
            };
            let mut taken = 0;
            loop {
                let (i, d) = item;
                let s = &mut subs[i];
                let token = Token {
                    partition: s.partition,
                    offset: generation | d.delivery_tag,
                };
                let later = sink.deliver_token(&d.data, token) == Processed::Later;
                match (later, manual_ack) {
                    (false, true) => {
                        s.unacked = Some(d.delivery_tag);
                        *since_ack += 1;
                    }
                    (true, true) => s.in_flight.delivered(0, d.delivery_tag),
                    (_, false) => {}
                }
                taken += 1;
                if taken >= max_batch || (later && taken >= sink.later_batch()) {
                    break;
                }
                item = match poll_once(std::future::poll_fn(|cx| poll_any(subs, next, cx))).await {
                    None => break,
                    Some(r) => r.map_err(err)?,
                };
            }
            if *since_ack > 0 {
                // Acked once enough are handed over or the first of them has waited long
                // enough; until then the next poll may bring more to ack with them.
                let now = Instant::now();
                let due = *ack_due.get_or_insert(now + ACK_LINGER);
                if *since_ack >= *ack_every || now >= due {
                    (*since_ack, *ack_due) = (0, None);
                    ack_handed(subs, shown).await?;
                }
            }
            Ok(taken)
        })
    }
}

/// `basic.qos` and `basic.consume` of `queue` on `channel`.
async fn subscribe(
    channel: &Channel,
    queue: &str,
    index: u16,
    p: Partition,
    prefetch: u16,
    manual_ack: bool,
    shown: &str,
) -> Result<lapin::Consumer, BackendError> {
    bounded(
        OP_TIMEOUT,
        || format!("basic.qos on {shown}"),
        channel.basic_qos(prefetch, BasicQosOptions::default()),
    )
    .await?;
    bounded(
        OP_TIMEOUT,
        || format!("consuming {queue} on {shown}"),
        channel.basic_consume(
            queue.into(),
            format!("mqb-c{index}-p{}", p.0).into(),
            BasicConsumeOptions {
                no_ack: !manual_ack,
                ..Default::default()
            },
            FieldTable::default(),
        ),
    )
    .await
}

/// The next delivery of any queue, scanning from `next` so that no queue starves.
fn poll_any(
    subs: &mut [Sub],
    next: &mut usize,
    cx: &mut Context<'_>,
) -> Poll<Result<(usize, Delivery), String>> {
    let n = subs.len();
    for k in 0..n {
        let i = (*next + k) % n;
        match Pin::new(&mut subs[i].consumer).poll_next(cx) {
            Poll::Ready(Some(Ok(d))) => {
                *next = (i + 1) % n;
                return Poll::Ready(Ok((i, d)));
            }
            Poll::Ready(Some(Err(e))) => {
                return Poll::Ready(Err(format!("consuming {}: {e}", subs[i].consumer.queue())))
            }
            Poll::Ready(None) => {
                return Poll::Ready(Err(format!(
                    "the broker cancelled the consumer of {}",
                    subs[i].consumer.queue()
                )))
            }
            Poll::Pending => {}
        }
    }
    Poll::Pending
}

impl Consumer for RabbitConsumer {
    fn poll(
        &mut self,
        max_wait: Duration,
        sink: &mut dyn DeliverySink,
    ) -> Result<usize, BackendError> {
        if self.link.is_none() {
            self.recover(max_wait)?;
            if self.link.is_none() {
                return Ok(0);
            }
        }
        match self.receive(max_wait, sink) {
            Ok(n) => {
                if n > 0 {
                    if let Some(rec) = self.recovering.take() {
                        tracing::warn!(
                            "rabbitmq: consumer {} receiving again from {} {:.1}s after the loss",
                            self.index,
                            self.dialer.shown(),
                            rec.took().as_secs_f64()
                        );
                    }
                }
                Ok(n)
            }
            Err(e @ BackendError::Interrupted { .. }) => Err(e),
            Err(e) => {
                // What was handed over and not acked comes again on the next link.
                self.lose(&e);
                Ok(0)
            }
        }
    }

    fn processed(&mut self, tokens: &[Token]) -> Result<(), BackendError> {
        let current = self.generation;
        let (Some(link), true) = (&mut self.link, self.manual_ack) else {
            return Ok(());
        };
        let shown = self.dialer.shown();
        let mut tags = Vec::with_capacity(tokens.len());
        let acked = self.rt.block_on(async {
            for s in link.subs.iter_mut() {
                tags.clear();
                tags.extend(
                    (tokens.iter())
                        .filter(|t| t.offset >> TAG_BITS == current && t.partition == s.partition)
                        .map(|t| t.offset & ((1 << TAG_BITS) - 1)),
                );
                ack_processed(s, &tags, shown).await?;
            }
            Ok(())
        });
        if let Err(e) = acked {
            // Not acked: the broker delivers them again on the next link.
            self.lose(&e);
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), BackendError> {
        let Some(Link { conn, mut subs }) = self.link.take() else {
            return Ok(());
        };
        let shown = self.dialer.shown();
        if !conn.status().connected() {
            // Lost at the end: what was handed over and not acked is the broker's to redeliver.
            tracing::warn!(
                "rabbitmq: consumer {} closes after losing {shown}",
                self.index
            );
            return Ok(());
        }
        self.rt.block_on(async {
            let acked = ack_handed(&mut subs, shown).await;
            for s in subs.iter() {
                let _ = tokio::time::timeout(
                    OP_TIMEOUT,
                    s.channel
                        .basic_cancel(s.consumer.tag(), BasicCancelOptions::default()),
                )
                .await;
            }
            // Closing returns what was prefetched and not acked to the queues.
            let _ = tokio::time::timeout(OP_TIMEOUT, conn.close(200, "bye".into())).await;
            acked
        })
    }
}

impl Drop for RabbitConsumer {
    fn drop(&mut self) {
        if let Some(l) = &self.link {
            if l.conn.status().connected() {
                let _ = self.rt.block_on(conn::within(
                    Duration::from_secs(2),
                    l.conn.close(200, "bye".into()),
                ));
            }
        }
    }
}
