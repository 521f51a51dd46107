//! Worker side: fetches its partitions from their committed offsets (0 when none) and commits
//! each fetch before handling it (`auto`, at-most-once) or after (`after-process`,
//! at-least-once). With processing threads (the sink says [`Processed::Later`]), `after-process`
//! commits a partition's lowest unfinished offset ([`InFlight`]) as [`Consumer::processed`]
//! reports deliveries done, instead of after the fetch (a fetch is then handed over at most
//! `DeliverySink::later_batch` records per poll, the rest kept for the next). With
//! `commit_interval_ms` those commits are gathered and sent at most that often (and when the
//! share changes, and at close). When the server goes away, the consumer keeps trying to
//! reconnect and then resumes from the committed offsets, as a restarted consumer would.
//!
//! A position the log does not hold (retention removed it, as retention ignores committed
//! offsets) moves per `auto_offset_reset`: to the log start or end, counting and logging the
//! offsets skipped, or ends the consumer with an error. Any other refusal from the server ends
//! the consumer too: retrying the same offset would get the same answer forever.
//!
//! With `assignment = "group"` the partitions are the member's share ([`Member`]): a new
//! share first commits what was processed, keeps the positions of the partitions it keeps and
//! starts the new ones from their committed offsets.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use mq_core::assignment::AssignmentChange;
use mq_core::delivery::ConsumerAck;
use mq_core::parallel::InFlight;
use mq_core::{BackendError, Consumer, DeliverySink, Partition, Processed, Token, WorkerCtx};
use mqlog::client::{Client, ClientError, ErrorCode, Record};

use crate::member::{Assignment, Member};
use crate::{client_err, Endpoint, OffsetReset, Options, NAME};

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
    reset: OffsetReset,
    /// Offsets skipped by resets since the consumer started (the gap retention left).
    skipped: u64,
    /// Handed to processing threads and not finished (`after-process`).
    in_flight: InFlight,
    /// The group membership (`assignment = "group"`).
    member: Option<Member>,
    /// Per partition, the records of a fetch cut at the sink's `later_batch` and not handed
    /// over yet:
    /// the next take of that partition starts with them instead of fetching again.
    rest: HashMap<u32, VecDeque<Record>>,
    /// `after-process` commits not sent yet: (partition, next offset).
    pending: Vec<(u32, u64)>,
    commit_interval: Duration,
    last_commit: Instant,
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

/// Why `offset` is not in a log starting at `start` (for messages).
fn gone(offset: u64, start: u64) -> String {
    if offset < start {
        format!("retention removed the offsets below {start}")
    } else {
        format!("nothing was written at {offset} yet")
    }
}

/// Whether reconnecting and resuming from the committed offsets may get past `e`: the
/// connection failed, or the server was too busy or stopping.
fn worth_reconnecting(e: &ClientError) -> bool {
    e.is_connection_error()
        || matches!(
            e,
            ClientError::Server {
                code: ErrorCode::Timeout | ErrorCode::ShuttingDown,
                ..
            }
        )
}

impl LogConsumer {
    pub fn new(
        mut client: Client,
        ep: Endpoint,
        o: &Options,
        ctx: &WorkerCtx,
    ) -> Result<LogConsumer, BackendError> {
        let mut member =
            (o.assignment == Assignment::Group).then(|| Member::new(&ep, o, ctx.index));
        let partitions: Vec<u32> = match member.as_mut() {
            Some(m) => m
                .join(&mut client, &[])
                .map_err(|e| client_err(&format!("joining group {}", ep.group), e))?,
            None => ctx.partitions.iter().map(|p| p.0).collect(),
        };
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
            reset: o.auto_offset_reset,
            skipped: 0,
            in_flight: InFlight::default(),
            member,
            rest: HashMap::new(),
            pending: Vec::new(),
            commit_interval: Duration::from_millis(o.commit_interval_ms),
            last_commit: Instant::now(),
        })
    }

    /// Reconnects and reads the committed offsets again; false when the server is still away.
    fn reconnect(&mut self, max_wait: Duration) -> bool {
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
                // a broker that lost its tail may have written other records at those offsets
                self.rest.clear();
                if let Some(m) = self.member.as_mut() {
                    m.must_rejoin();
                }
                true
            }
            None => {
                std::thread::sleep(max_wait.min(Duration::from_millis(100)));
                false
            }
        }
    }

    /// Heartbeats when due and, told to rebalance, commits what was processed and switches to
    /// the new share.
    fn keep_membership(&mut self) -> Result<(), ClientError> {
        let (Some(m), Some(client)) = (self.member.as_mut(), self.client.as_mut()) else {
            return Ok(());
        };
        if !m.beat_if_due(client)? {
            return Ok(());
        }
        if self.ack == ConsumerAck::AfterProcess {
            for (p, next) in self.in_flight.committable() {
                client.commit(&self.ep.group, &self.ep.topic, p, next)?;
            }
            for &(p, next) in &self.pending {
                client.commit(&self.ep.group, &self.ep.topic, p, next)?;
            }
            self.pending.clear();
        }
        let share = m.join(client, &self.partitions)?;
        let new: Vec<u32> = (share.iter().copied())
            .filter(|p| !self.partitions.contains(p))
            .collect();
        let mut positions: Vec<(u32, u64)> = (self.positions.iter().copied())
            .filter(|(p, _)| share.contains(p))
            .collect();
        positions.extend(committed_positions(client, &self.ep, &new)?);
        positions.sort_unstable();
        self.partitions = share;
        self.positions = positions;
        self.rest.retain(|p, _| self.partitions.contains(p));
        self.next = 0;
        Ok(())
    }

    /// One fetch of partition slot `i` (or what is left of the last one), handed to the sink
    /// and committed per the ack setting.
    fn take(
        &mut self,
        i: usize,
        wait: Duration,
        sink: &mut dyn DeliverySink,
    ) -> Result<usize, ClientError> {
        let (p, offset) = self.positions[i];
        let mut records = match self.rest.remove(&p) {
            Some(rest) if rest.front().is_some_and(|r| r.offset == offset) => rest,
            _ => {
                let client = self.client.as_mut().expect("connected");
                let f = client.fetch(&self.ep.topic, p, offset, self.fetch_bytes, wait)?;
                VecDeque::from(f.records)
            }
        };
        let Some(last) = records.back() else {
            return Ok(0);
        };
        let mut next = last.offset + 1;
        let after = self.ack == ConsumerAck::AfterProcess;
        if !after {
            let client = self.client.as_mut().expect("connected");
            client.commit(&self.ep.group, &self.ep.topic, p, next)?;
        }
        let (mut later, mut taken) = (false, 0);
        while let Some(r) = records.pop_front() {
            let token = Token {
                partition: Partition(p),
                offset: r.offset,
            };
            taken += 1;
            if sink.deliver_token(&r.value, token) == Processed::Later && after {
                later = true;
                self.in_flight.delivered(p, r.offset);
                if taken >= sink.later_batch() {
                    // the worker acks what has finished meanwhile; the rest comes next time
                    next = r.offset + 1;
                    if !records.is_empty() {
                        self.rest.insert(p, records);
                    }
                    break;
                }
            }
        }
        self.positions[i].1 = next;
        if after && !later {
            self.commit_processed(p, next)?;
        }
        Ok(taken)
    }

    /// An `after-process` commit of `next` for partition `p`: sent now, or with the others
    /// once `commit_interval_ms` has passed since the last.
    fn commit_processed(&mut self, p: u32, next: u64) -> Result<(), ClientError> {
        match self.pending.iter_mut().find(|e| e.0 == p) {
            Some(e) => e.1 = next,
            None => self.pending.push((p, next)),
        }
        if self.last_commit.elapsed() >= self.commit_interval {
            self.commit_pending()?;
        }
        Ok(())
    }

    /// Sends the gathered commits (kept when there is no connection: they are sent after the
    /// reconnect, and until then the broker redelivers from the last one it has).
    fn commit_pending(&mut self) -> Result<(), ClientError> {
        let Some(client) = self.client.as_mut() else {
            return Ok(());
        };
        for &(p, next) in &self.pending {
            client.commit(&self.ep.group, &self.ep.topic, p, next)?;
        }
        self.pending.clear();
        self.last_commit = Instant::now();
        Ok(())
    }

    /// Slot `i`'s position is outside the log's `start..=end`: moves it per `auto_offset_reset`
    /// and commits the new position (so a restart resumes there too, and the backlog stops
    /// counting what nobody will read); `Err` when the policy is to stop.
    fn reset_position(
        &mut self,
        i: usize,
        start: u64,
        end: u64,
    ) -> Result<Result<usize, ClientError>, BackendError> {
        let (p, from) = self.positions[i];
        let to = match self.reset {
            OffsetReset::Earliest => start,
            OffsetReset::Latest => end,
            OffsetReset::Error => {
                return Err(BackendError::other(
                    NAME,
                    format!(
                        "offset {from} of partition {p} of {} is out of range: the log holds \
                         {start}..{end} ({}); auto_offset_reset = \"error\" stops the \
                         consumer here (\"earliest\" or \"latest\" would resume at {start} or {end})",
                        self.ep.topic,
                        gone(from, start),
                    ),
                ))
            }
        };
        let client = self.client.as_mut().expect("connected");
        // Counted once committed: a reset interrupted by a lost connection happens again
        // after the reconnect, from the same committed offset.
        if let Err(e) = client.commit(&self.ep.group, &self.ep.topic, p, to) {
            return Ok(Err(e));
        }
        self.positions[i].1 = to;
        let skipped = to.saturating_sub(from);
        self.skipped = self.skipped.saturating_add(skipped);
        tracing::warn!(
            partition = p,
            from,
            to,
            skipped,
            total_skipped = self.skipped,
            "log: offset {from} of partition {p} is out of range (the log holds {start}..{end}: {}); \
             auto_offset_reset = {}: resuming at {to}, {skipped} offsets skipped",
            gone(from, start),
            self.reset.name()
        );
        Ok(Ok(0))
    }
}

impl Consumer for LogConsumer {
    fn poll(
        &mut self,
        max_wait: Duration,
        sink: &mut dyn DeliverySink,
    ) -> Result<usize, BackendError> {
        if self.client.is_none() && !self.reconnect(max_wait) {
            return Ok(0);
        }
        if !self.pending.is_empty() && self.last_commit.elapsed() >= self.commit_interval {
            match self.commit_pending() {
                Ok(()) => {}
                Err(e) if worth_reconnecting(&e) => {
                    tracing::warn!("log: {} lost ({e}); reconnecting", self.ep.address);
                    self.client = None;
                    return Ok(0);
                }
                Err(e) => {
                    let what = format!("committing the processed offsets of {}", self.ep.topic);
                    return Err(client_err(&what, e));
                }
            }
        }
        match self.keep_membership() {
            Ok(()) => {}
            Err(e) if worth_reconnecting(&e) => {
                tracing::warn!("log: {} lost ({e}); reconnecting", self.ep.address);
                self.client = None;
                return Ok(0);
            }
            Err(e) => {
                return Err(client_err(
                    &format!("keeping the membership of group {}", self.ep.group),
                    e,
                ))
            }
        }
        if self.positions.is_empty() {
            // A member without partitions waits for a rebalance.
            std::thread::sleep(max_wait.min(Duration::from_millis(50)));
            return Ok(0);
        }
        let n = self.positions.len();
        // One partition at a time, round robin; long-poll only when it is the only one.
        let wait = if n == 1 { max_wait } else { Duration::ZERO };
        let mut taken = 0;
        for _ in 0..n {
            let i = self.next;
            self.next = (self.next + 1) % n;
            let result = match self.take(i, wait, sink) {
                Err(ClientError::OutOfRange { start, end, .. }) => {
                    self.reset_position(i, start, end)?
                }
                other => other,
            };
            match result {
                Ok(k) => taken += k,
                Err(e) if worth_reconnecting(&e) => {
                    tracing::warn!("log: {} lost ({e}); reconnecting", self.ep.address);
                    self.client = None;
                    return Ok(taken);
                }
                Err(e) => {
                    let (p, offset) = self.positions[i];
                    return Err(BackendError::other(
                        NAME,
                        format!(
                            "consuming partition {p} of {} at offset {offset} from {}: {e}",
                            self.ep.topic, self.ep.address
                        ),
                    ));
                }
            }
        }
        if taken == 0 && n > 1 {
            std::thread::sleep(max_wait.min(Duration::from_millis(2)));
        }
        Ok(taken)
    }

    fn processed(&mut self, tokens: &[Token]) -> Result<(), BackendError> {
        if self.ack != ConsumerAck::AfterProcess {
            return Ok(());
        }
        for t in tokens {
            self.in_flight.finished(t.partition.0, t.offset);
        }
        let moved: Vec<(u32, u64)> = self.in_flight.committable().collect();
        for (p, next) in moved {
            // Without a connection it waits: resumed from the last commit after the
            // reconnect, delivered again, not lost.
            if let Err(e) = self.commit_processed(p, next) {
                if worth_reconnecting(&e) {
                    tracing::warn!("log: {} lost ({e}); reconnecting", self.ep.address);
                    self.client = None;
                    return Ok(());
                }
                return Err(client_err(
                    &format!("committing partition {p} of {} at {next}", self.ep.topic),
                    e,
                ));
            }
        }
        Ok(())
    }

    fn assignment_changes(&mut self) -> Vec<AssignmentChange> {
        self.member
            .as_mut()
            .map(Member::take_changes)
            .unwrap_or_default()
    }

    fn close(&mut self) -> Result<(), BackendError> {
        if let Err(e) = self.commit_pending() {
            tracing::warn!("log: committing the processed offsets at close: {e}");
        }
        if let (Some(m), Some(client)) = (self.member.as_mut(), self.client.as_mut()) {
            // Its partitions move at once rather than after the session timeout.
            if let Err(e) = m.leave(client) {
                tracing::warn!("log: leaving group {}: {e}", self.ep.group);
            }
        }
        if self.skipped > 0 {
            tracing::warn!(
                skipped = self.skipped,
                "log: this consumer skipped {} offsets the log no longer held (auto_offset_reset = {})",
                self.skipped,
                self.reset.name()
            );
        }
        Ok(())
    }
}
