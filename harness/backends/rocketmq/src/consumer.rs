//! Worker side: a lite pull consumer `assign`ed the queues of its partitions (no rebalances),
//! in the variant's consumer group, committing offsets itself (`autoCommit` off).
//!
//! `auto` (at-most-once): a poll's offsets are committed before its messages are handed over, so
//! a consumer killed while handling them loses them. `after-process` (at-least-once): offsets are
//! committed after the sink has the messages, every `commit_every` messages or 200 ms and at
//! close, so a consumer killed before its commit gets them again when it comes back.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mq_core::delivery::ConsumerAck;
use mq_core::{BackendError, Consumer, DeliverySink, Partition, WorkerCtx};
use rocketmq_client_rust::DefaultLitePullConsumer;
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;
use rocketmq_model::common::message::message_queue::MessageQueue;

use crate::client::{Endpoint, Runtime};
use crate::options::Options;
use crate::NAME;

const COMMIT_INTERVAL: Duration = Duration::from_millis(200);
const START_TIMEOUT: Duration = Duration::from_secs(30);
const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct RocketConsumer {
    consumer: Option<DefaultLitePullConsumer>,
    ep: Endpoint,
    commit_first: bool,
    /// The next offset of each queue handed over and not yet committed.
    next: HashMap<MessageQueue, i64>,
    uncommitted: u32,
    commit_every: u32,
    last_commit: Instant,
    // Dropped last: the consumer above runs on it.
    rt: Option<Runtime>,
}

impl RocketConsumer {
    pub fn open(ctx: &WorkerCtx, options: &Options) -> Result<RocketConsumer, BackendError> {
        let ep = Endpoint::from_value(&ctx.endpoint)?;
        if ctx.partitions.is_empty() {
            return Err(BackendError::other(
                NAME,
                "consumer has no partitions to read",
            ));
        }
        let rt = Runtime::new(&format!("c{}", ctx.index))?;
        let consumer = DefaultLitePullConsumer::builder(rt.client.clone())
            .consumer_group(ep.group.clone())
            .name_server_addr(ep.namesrv.clone())
            .auto_commit(false)
            .pull_batch_size(options.pull_batch as i32)
            .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
            .build()
            .map_err(|e| BackendError::other(NAME, format!("building the consumer: {e}")))?;
        let queues: Vec<MessageQueue> = ctx.partitions.iter().map(|p| ep.queue(p.0)).collect();
        let started = rt.block_on(async {
            tokio::time::timeout(START_TIMEOUT, async {
                consumer.start().await?;
                consumer.assign(queues).await
            })
            .await
        });
        let shown = format!("consumer of {} (name server {})", ep.topic, ep.namesrv);
        match started {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(BackendError::other(
                    NAME,
                    format!("starting the {shown}: {e}"),
                ))
            }
            Err(_) => {
                return Err(BackendError::other(
                    NAME,
                    format!(
                        "starting the {shown}: no answer within {}s",
                        START_TIMEOUT.as_secs()
                    ),
                ))
            }
        }
        Ok(RocketConsumer {
            consumer: Some(consumer),
            ep,
            commit_first: ctx.plan.delivery.consumer_ack == ConsumerAck::Auto,
            next: HashMap::new(),
            uncommitted: 0,
            commit_every: options.commit_every,
            last_commit: Instant::now(),
            rt: Some(rt),
        })
    }

    /// Commits what was handed over: into the client's offset store, then to the broker with
    /// one acknowledged request per queue (the client's own `persist` sends them oneway, which
    /// a busy broker may drop). A failure is logged; the next commit carries the offset again.
    fn commit(&mut self) {
        if self.next.is_empty() {
            return;
        }
        let (Some(c), Some(rt)) = (&self.consumer, &self.rt) else {
            return;
        };
        let offsets = std::mem::take(&mut self.next);
        let r = rt.block_on(async {
            tokio::time::timeout(COMMIT_TIMEOUT, async {
                c.commit_sync_with_map(offsets.clone(), false).await;
                let Some(store) = c.offset_store().await else {
                    return Err("the consumer has no offset store".to_owned());
                };
                for (mq, offset) in &offsets {
                    (store
                        .update_consume_offset_to_broker(mq, *offset, false)
                        .await)
                        .map_err(|e| format!("queue {}: {e}", mq.queue_id()))?;
                }
                Ok(())
            })
            .await
        });
        let failed = match r {
            Ok(Ok(())) => None,
            Ok(Err(m)) => Some(m),
            Err(_) => Some(format!("no answer within {}s", COMMIT_TIMEOUT.as_secs())),
        };
        if let Some(m) = failed {
            tracing::warn!("rocketmq: committing offsets of {}: {m}", self.ep.topic);
            // Not committed: keep them for the next commit (newer offsets of a queue win).
            for (mq, offset) in offsets {
                self.next.entry(mq).or_insert(offset);
            }
        }
        self.uncommitted = 0;
        self.last_commit = Instant::now();
    }
}

impl Consumer for RocketConsumer {
    fn poll(
        &mut self,
        max_wait: Duration,
        sink: &mut dyn DeliverySink,
    ) -> Result<usize, BackendError> {
        let (Some(c), Some(rt)) = (&self.consumer, &self.rt) else {
            return Err(BackendError::other(NAME, "the consumer is closed"));
        };
        let wait = max_wait.as_millis().clamp(1, 60_000) as u64;
        let msgs = rt.block_on(c.poll_with_timeout(wait));
        for m in &msgs {
            let mq = self.ep.queue(m.queue_id().max(0) as u32);
            self.next.insert(mq, m.queue_offset() + 1);
        }
        if self.commit_first {
            self.commit();
        }
        for m in &msgs {
            let body = m.body().unwrap_or_default();
            sink.deliver(&body, Partition(m.queue_id().max(0) as u32));
        }
        if !self.commit_first {
            self.uncommitted += msgs.len() as u32;
            if self.uncommitted >= self.commit_every
                || self.last_commit.elapsed() >= COMMIT_INTERVAL
            {
                self.commit();
            }
        }
        Ok(msgs.len())
    }

    fn close(&mut self) -> Result<(), BackendError> {
        self.commit();
        if let (Some(c), Some(rt)) = (self.consumer.take(), &self.rt) {
            rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), c.shutdown()).await })
                .ok();
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown();
        }
        Ok(())
    }
}

impl Drop for RocketConsumer {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
