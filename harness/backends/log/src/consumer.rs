//! Worker side: fetches its partitions from their committed offsets (0 when none) and commits
//! each fetch before handling it (`auto`, at-most-once) or after (`after-process`,
//! at-least-once). When the server goes away, the consumer keeps trying to reconnect and then
//! resumes from the committed offsets, as a restarted consumer would.

use std::time::Duration;

use mq_core::delivery::ConsumerAck;
use mq_core::{BackendError, Consumer, DeliverySink, Partition, WorkerCtx};
use mq_log::client::{Client, ClientError};

use crate::{client_err, Endpoint, Options};

/// How long one reconnect attempt may take.
const RECONNECT_TIMEOUT: Duration = Duration::from_millis(200);

pub struct LogConsumer {
    client: Option<Client>,
    ep: Endpoint,
    partitions: Vec<u32>,
    /// (partition, next offset to read)
    positions: Vec<(u32, u64)>,
    next: usize,
    fetch_bytes: u32,
    ack: ConsumerAck,
}

fn committed_positions(
    client: &mut Client,
    ep: &Endpoint,
    partitions: &[u32],
) -> Result<Vec<(u32, u64)>, ClientError> {
    partitions
        .iter()
        .map(|&p| Ok((p, client.committed(&ep.group, &ep.topic, p)?.unwrap_or(0))))
        .collect()
}

impl LogConsumer {
    pub fn new(
        mut client: Client,
        ep: Endpoint,
        o: &Options,
        ctx: &WorkerCtx,
    ) -> Result<LogConsumer, BackendError> {
        let partitions: Vec<u32> = ctx.partitions.iter().map(|p| p.0).collect();
        let positions = committed_positions(&mut client, &ep, &partitions).map_err(|e| {
            client_err(&format!("reading the committed offsets of {}", ep.topic), e)
        })?;
        Ok(LogConsumer {
            client: Some(client),
            ep,
            partitions,
            positions,
            next: 0,
            fetch_bytes: o.fetch_bytes,
            ack: ctx.plan.delivery.consumer_ack,
        })
    }

    /// One fetch of partition slot `i`, handed to the sink and committed per the ack setting.
    fn take(
        &mut self,
        i: usize,
        wait: Duration,
        sink: &mut dyn DeliverySink,
    ) -> Result<usize, ClientError> {
        let client = self.client.as_mut().expect("connected");
        let (p, offset) = self.positions[i];
        let f = client.fetch(&self.ep.topic, p, offset, self.fetch_bytes, wait)?;
        let Some(last) = f.records.last() else {
            return Ok(0);
        };
        let next = last.offset + 1;
        if self.ack == ConsumerAck::Auto {
            client.commit(&self.ep.group, &self.ep.topic, p, next)?;
        }
        for r in &f.records {
            sink.deliver(&r.value, Partition(p));
        }
        if self.ack == ConsumerAck::AfterProcess {
            client.commit(&self.ep.group, &self.ep.topic, p, next)?;
        }
        self.positions[i].1 = next;
        Ok(f.records.len())
    }
}

impl Consumer for LogConsumer {
    fn poll(
        &mut self,
        max_wait: Duration,
        sink: &mut dyn DeliverySink,
    ) -> Result<usize, BackendError> {
        if self.client.is_none() {
            let reconnected = Client::connect(self.ep.address.as_str(), RECONNECT_TIMEOUT)
                .ok()
                .and_then(|mut c| {
                    committed_positions(&mut c, &self.ep, &self.partitions)
                        .ok()
                        .map(|pos| (c, pos))
                });
            match reconnected {
                Some((c, positions)) => {
                    tracing::warn!(
                        "log: reconnected to {}; resuming from the committed offsets",
                        self.ep.address
                    );
                    self.client = Some(c);
                    self.positions = positions;
                }
                None => {
                    std::thread::sleep(max_wait.min(Duration::from_millis(100)));
                    return Ok(0);
                }
            }
        }
        let n = self.positions.len();
        // One partition at a time, round robin; long-poll only when it is the only one.
        let wait = if n == 1 { max_wait } else { Duration::ZERO };
        let mut taken = 0;
        for _ in 0..n {
            let i = self.next;
            self.next = (self.next + 1) % n;
            match self.take(i, wait, sink) {
                Ok(k) => taken += k,
                Err(e) => {
                    tracing::warn!("log: {} lost ({e}); reconnecting", self.ep.address);
                    self.client = None;
                    return Ok(taken);
                }
            }
        }
        if taken == 0 && n > 1 {
            std::thread::sleep(max_wait.min(Duration::from_millis(2)));
        }
        Ok(taken)
    }
}
