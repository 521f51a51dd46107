//! Worker side: one channel and one `basic.consume` per partition queue, taken round-robin.
//!
//! One channel per queue lets an `after-process` consumer ack a whole batch with one
//! `basic.ack(multiple)` per queue without acking deliveries of another queue it has not handed
//! over yet.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::future::poll_once;
use futures_lite::Stream;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use mq_core::delivery::ConsumerAck;
use mq_core::{BackendError, Consumer, DeliverySink, Partition, WorkerCtx};
use tokio::runtime::Runtime;

use crate::conn::{self, bounded, Endpoint};
use crate::options::Options;
use crate::NAME;

const OP_TIMEOUT: Duration = Duration::from_secs(10);

struct Sub {
    channel: Channel,
    consumer: lapin::Consumer,
    partition: Partition,
    /// Highest delivery tag handed to the sink and not acked yet.
    unacked: Option<u64>,
}

pub struct RabbitConsumer {
    rt: Runtime,
    conn: Connection,
    subs: Vec<Sub>,
    manual_ack: bool,
    /// Where the next round-robin scan starts.
    next: usize,
    /// Most deliveries handed over in one poll.
    max_batch: usize,
    shown: String,
}

impl RabbitConsumer {
    pub fn open(ctx: &WorkerCtx, options: &Options) -> Result<RabbitConsumer, BackendError> {
        let ep = Endpoint::from_value(&ctx.endpoint)?;
        let (uri, shown) = options
            .connect_uri()
            .map_err(|m| BackendError::other(NAME, m))?;
        if ctx.partitions.is_empty() {
            return Err(BackendError::other(
                NAME,
                "consumer has no partitions to read",
            ));
        }
        let manual_ack = ctx.plan.delivery.consumer_ack == ConsumerAck::AfterProcess;
        let rt = conn::runtime()?;
        let name = format!("mq-bench {} consumer {}", ctx.plan.name, ctx.index);
        let (conn, subs) = rt.block_on(async {
            let c = conn::connect(&uri, &shown, &name).await?;
            let mut subs = Vec::new();
            for &p in &ctx.partitions {
                let Some(queue) = ep.queues.get(p.0 as usize) else {
                    return Err(BackendError::other(
                        NAME,
                        format!(
                            "partition {} does not exist (the run has {} queues)",
                            p.0,
                            ep.queues.len()
                        ),
                    ));
                };
                let ch = bounded(
                    OP_TIMEOUT,
                    || format!("opening a channel on {shown}"),
                    c.create_channel(),
                )
                .await?;
                bounded(
                    OP_TIMEOUT,
                    || format!("basic.qos on {shown}"),
                    ch.basic_qos(options.prefetch, BasicQosOptions::default()),
                )
                .await?;
                let consumer = bounded(
                    OP_TIMEOUT,
                    || format!("consuming {queue} on {shown}"),
                    ch.basic_consume(
                        queue.as_str().into(),
                        format!("mqb-c{}-p{}", ctx.index, p.0).into(),
                        BasicConsumeOptions {
                            no_ack: !manual_ack,
                            ..Default::default()
                        },
                        FieldTable::default(),
                    ),
                )
                .await?;
                subs.push(Sub {
                    channel: ch,
                    consumer,
                    partition: p,
                    unacked: None,
                });
            }
            Ok((c, subs))
        })?;
        Ok(RabbitConsumer {
            rt,
            conn,
            max_batch: (options.prefetch as usize).max(64),
            subs,
            manual_ack,
            next: 0,
            shown,
        })
    }

    /// Acks, per queue, everything handed over so far.
    async fn ack_handed(subs: &mut [Sub], shown: &str) -> Result<(), BackendError> {
        for s in subs.iter_mut() {
            if let Some(tag) = s.unacked.take() {
                bounded(
                    OP_TIMEOUT,
                    || format!("basic.ack to {shown}"),
                    s.channel.basic_ack(tag, BasicAckOptions { multiple: true }),
                )
                .await?;
            }
        }
        Ok(())
    }
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
        let RabbitConsumer {
            rt,
            subs,
            manual_ack,
            next,
            max_batch,
            shown,
            ..
        } = self;
        let manual_ack = *manual_ack;
        let max_batch = *max_batch;
        rt.block_on(async {
            let err = |m: String| BackendError::other(NAME, format!("{m} (broker {shown})"));
            let first = tokio::time::timeout(
                max_wait,
                std::future::poll_fn(|cx| poll_any(subs, next, cx)),
            )
            .await;
            let mut item = match first {
                Err(_) => return Ok(0),
                Ok(r) => r.map_err(err)?,
            };
            let mut taken = 0;
            loop {
                let (i, d) = item;
                let s = &mut subs[i];
                sink.deliver(&d.data, s.partition);
                if manual_ack {
                    s.unacked = Some(d.delivery_tag);
                }
                taken += 1;
                if taken >= max_batch {
                    break;
                }
                item = match poll_once(std::future::poll_fn(|cx| poll_any(subs, next, cx))).await {
                    None => break,
                    Some(r) => r.map_err(err)?,
                };
            }
            if manual_ack {
                Self::ack_handed(subs, shown).await?;
            }
            Ok(taken)
        })
    }

    fn close(&mut self) -> Result<(), BackendError> {
        let RabbitConsumer {
            rt,
            conn,
            subs,
            shown,
            ..
        } = self;
        rt.block_on(async {
            let acked = Self::ack_handed(subs, shown).await;
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
            subs.clear();
            acked
        })
    }
}

impl Drop for RabbitConsumer {
    fn drop(&mut self) {
        if self.conn.status().connected() {
            let _ = self.rt.block_on(conn::within(
                Duration::from_secs(2),
                self.conn.close(200, "bye".into()),
            ));
        }
    }
}
