//! Worker side: fetches its partitions from their committed offsets (0 when none) and commits
//! each fetch before handling it (`auto`, at-most-once) or after (`after-process`, at-least-once).

use std::time::Duration;

use mq_core::settings::ConsumerAck;
use mq_core::{BackendError, Consumer, DeliverySink, Partition, WorkerCtx};
use mq_log::client::Client;

use crate::{client_err, Endpoint, Options};

pub struct LogConsumer {
    client: Client,
    ep: Endpoint,
    /// (partition, next offset to read)
    positions: Vec<(u32, u64)>,
    next: usize,
    fetch_bytes: u32,
    ack: ConsumerAck,
}

impl LogConsumer {
    pub fn new(
        mut client: Client,
        ep: Endpoint,
        o: &Options,
        ctx: &WorkerCtx,
    ) -> Result<LogConsumer, BackendError> {
        let mut positions = Vec::new();
        for p in &ctx.partitions {
            let committed = client.committed(&ep.group, &ep.topic, p.0).map_err(|e| {
                client_err(
                    &format!("reading the committed offset of {}/{}", ep.topic, p.0),
                    e,
                )
            })?;
            positions.push((p.0, committed.unwrap_or(0)));
        }
        Ok(LogConsumer {
            client,
            ep,
            positions,
            next: 0,
            fetch_bytes: o.fetch_bytes,
            ack: ctx.plan.delivery.consumer_ack,
        })
    }

    fn commit(&mut self, partition: u32, offset: u64) -> Result<(), BackendError> {
        self.client
            .commit(&self.ep.group, &self.ep.topic, partition, offset)
            .map_err(|e| client_err(&format!("committing {}/{partition}", self.ep.topic), e))
    }
}

impl Consumer for LogConsumer {
    fn poll(
        &mut self,
        max_wait: Duration,
        sink: &mut dyn DeliverySink,
    ) -> Result<usize, BackendError> {
        let n = self.positions.len();
        // One partition at a time, round robin; long-poll only when it is the only one.
        let wait = if n == 1 { max_wait } else { Duration::ZERO };
        let mut taken = 0;
        for _ in 0..n {
            let i = self.next;
            self.next = (self.next + 1) % n;
            let (p, offset) = self.positions[i];
            let f = self
                .client
                .fetch(&self.ep.topic, p, offset, self.fetch_bytes, wait)
                .map_err(|e| {
                    client_err(&format!("fetching {}/{p} at {offset}", self.ep.topic), e)
                })?;
            let Some(last) = f.records.last() else {
                continue;
            };
            let next = last.offset + 1;
            if self.ack == ConsumerAck::Auto {
                self.commit(p, next)?;
            }
            for r in &f.records {
                sink.deliver(&r.value, Partition(p));
            }
            if self.ack == ConsumerAck::AfterProcess {
                self.commit(p, next)?;
            }
            self.positions[i].1 = next;
            taken += f.records.len();
        }
        if taken == 0 && n > 1 {
            std::thread::sleep(max_wait.min(Duration::from_millis(2)));
        }
        Ok(taken)
    }
}
