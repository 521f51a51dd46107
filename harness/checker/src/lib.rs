//! mq-checker: reads a variant's history files and reports what happened to every message.
//!
//! The checker is small checks composed over one pass through the histories, each returning
//! its count and the first few offending messages ([`Samples`]), Jepsen-style: `lost` (the
//! send-side accounting: lost, unacked-lost, recovered, failed), `duplicates`, `order`
//! (reordered) and `unexpected`, beside the [`series`] and the `latency` histograms.
//!
//! Consumers' histories are read together, merged by delivery time on the shared clock
//! (`merge`), so order is judged across the consumers that shared a key and a message's first
//! delivery is its earliest.
//!
//! Histories of version 1 (a record per event) and 2 (runs, read as their messages one by
//! one) give the same counts for the same events; a version 2 history's latency comes from its
//! worker's HdrHistogram interval log beside it.
//!
//! Memory is a few bits per (producer, seq) (sent, acked, failed, not sent, delivered, and for
//! a transactional producer commit started and aborted: `messages`), a highest first-delivered seq per (producer, key), two
//! HdrHistograms, at most a few thousand time bins per series, and [`SAMPLE_SIZE`] samples per
//! check: tens of millions of messages fit easily.

mod depth;
mod duplicates;
mod input;
mod latency;
mod lost;
mod merge;
mod messages;
mod order;
pub mod rebalance;
pub mod report;
mod sample;
pub mod series;
mod unexpected;

use mq_core::history::{Record, Role};
use mq_core::ids::{ConsumerId, ProducerId, Seq};

pub use input::{CheckError, Input};
pub use latency::{decode_histogram, encode_histogram, new_histogram, percentiles, read_log};
pub use report::{
    Counts, Dedup, DepthSample, Latency, Percentiles, Report, Sample, Samples, Series, Throughput,
    SAMPLE_SIZE,
};

use duplicates::Duplicates;
use input::open;
use latency::Latencies;
use lost::Lost;
use merge::{Event, Merge};
use messages::{Class, Delivery, Messages, Outcome};
use order::Order;
use sample::Clock;
use series::{bump, Timeline};
use unexpected::Unexpected;

/// What the consumer histories' read buffers may take together while they are merged (each
/// between 64 KiB and 1 MiB).
const MERGE_BUFFERS: usize = 32 << 20;

/// Reads every history of one variant, once (plus a second read of the producer histories when
/// messages were lost, to sample them), and reports.
pub fn check(input: &Input) -> Result<Report, CheckError> {
    read(input)?.finish(input)
}

/// How many acked messages are not delivered: the count alone, for a caller that asks while
/// the load runs (the coordinator's drain). Only the message bits are kept, a run's at once
/// (no series, latency, order, samples or merge by time): the same count as [`check`]'s at a
/// fraction of its time. With a dedup store, which credits deliveries, it is [`check`]'s pass.
pub fn lost(input: &Input) -> Result<u64, CheckError> {
    if input.consumers == 0 {
        return Ok(0);
    }
    if input.dedup_store.is_some() {
        return Ok(lost::count(&read(input)?.msgs).lost.count);
    }
    let mut msgs = Messages::new(input.producers, input.keys);
    for path in &input.producer_files {
        let mut r = open(path, Role::Producer)?;
        let stride = u64::from(r.keys.max(1));
        while let Some(rec) = r.next_record()? {
            match rec {
                Record::Sent { producer, seq, .. } => _ = msgs.sent(producer, seq),
                Record::Acked { producer, seq, .. } => _ = msgs.acked(producer, seq),
                Record::SentRun(run) => msgs.run_bits(&run, 1, false),
                Record::AckedRun(run) => msgs.run_bits(&run, stride, true),
                _ => {}
            }
        }
    }
    for path in &input.consumer_files {
        let mut r = open(path, Role::Consumer)?;
        let stride = u64::from(r.keys.max(1));
        while let Some(rec) = r.next_record()? {
            match rec {
                Record::Delivered {
                    producer, seq, key, ..
                } => {
                    let d = Delivery {
                        consumer: ConsumerId(r.header.worker),
                        producer,
                        seq,
                        key,
                        sent_ns: 0,
                        at_ns: 0,
                    };
                    msgs.deliver(&d);
                }
                Record::DeliveredRun(run) => msgs.delivered_run(&run, stride),
                _ => {}
            }
        }
    }
    Ok(lost::count(&msgs).lost.count)
}

/// The single pass over a variant's histories.
fn read(input: &Input) -> Result<Pass, CheckError> {
    let mut pass = Pass::new(input);
    for path in &input.producer_files {
        let mut r = open(path, Role::Producer)?;
        pass.next_producer(r.keys, r.version);
        if r.transactional {
            pass.msgs.set_transactional(ProducerId(r.header.worker));
            pass.transactional = true;
        }
        if !pass.v1 {
            pass.latency.add_log(&path.with_extension("hlog"), true)?;
        }
        while let Some(rec) = r.next_record()? {
            pass.producer_record(rec);
        }
    }
    // Deliveries are judged against every send, so consumers are read after all producers,
    // all at once, merged by delivery time (see `merge`).
    let mut readers = Vec::with_capacity(input.consumer_files.len());
    let chunk = (MERGE_BUFFERS / input.consumer_files.len().max(1)).clamp(64 << 10, 1 << 20);
    for path in &input.consumer_files {
        let r = open(path, Role::Consumer)?.with_buffer(chunk);
        if r.version != 1 {
            pass.latency.add_log(&path.with_extension("hlog"), false)?;
        }
        readers.push(r);
    }
    let mut merge = Merge::new(readers)?;
    while let Some(event) = merge.next_event()? {
        pass.consumer_event(event);
    }
    pass.records += merge.records;
    // After every history: a message the store holds counts as delivered only when none had it.
    if let Some(path) = &input.dedup_store {
        let mut credited = 0;
        let summary = mq_dedup::read(path, |row| credited += u64::from(pass.stored(&row)))?;
        pass.dedup = Some(Dedup {
            processed: summary.processed,
            skipped: summary.skipped,
            credited,
        });
    }
    Ok(pass)
}

/// The state of the pass: the message bits, the series and latency figures, and each check.
struct Pass {
    msgs: Messages,
    timeline: Timeline,
    latency: Latencies,
    lost: Lost,
    duplicates: Duplicates,
    order: Order,
    unexpected: Unexpected,
    last_ack: u64,
    last_delivery: u64,
    records: u64,
    deliveries: u64,
    /// Per producer history, whether its intended send times never go back (lets the second
    /// read for lost messages stop early).
    sorted: Vec<bool>,
    /// The latest intended send time in the producer history being read.
    last_intended: u64,
    /// The seq step of acked and delivered runs in the history being read (its keys).
    stride: u64,
    /// Whether the history being read is version 1, whose records carry latency (a version 2
    /// history's latency is its worker's interval log).
    v1: bool,
    /// Whether some producer history was a transactional producer's.
    transactional: bool,
    /// What the idempotent consumers' store says (`consumer_dedup = "store"`).
    dedup: Option<Dedup>,
}

impl Pass {
    fn new(input: &Input) -> Pass {
        let clock = Clock {
            start_ns: input.start_ns,
        };
        let msgs = Messages::new(input.producers, input.keys);
        Pass {
            timeline: Timeline::new(input.start_ns),
            latency: Latencies::new(input.start_ns + input.warmup_ns),
            lost: Lost::new(clock),
            duplicates: Duplicates::new(clock),
            order: Order::new(clock, msgs.producers().len(), msgs.keys()),
            unexpected: Unexpected::new(clock),
            msgs,
            last_ack: input.start_ns,
            last_delivery: input.start_ns,
            records: 0,
            deliveries: 0,
            sorted: Vec::with_capacity(input.producer_files.len()),
            last_intended: 0,
            stride: 1,
            v1: true,
            transactional: false,
            dedup: None,
        }
    }

    /// A new producer history (`keys`: its runs' stride, 0 in version 1).
    fn next_producer(&mut self, keys: u32, version: u32) {
        self.v1 = version == 1;
        self.sorted.push(true);
        self.last_intended = 0;
        self.stride = u64::from(keys.max(1));
    }

    /// Only the first record of a send, ack or failure counts. A run is its messages, one by
    /// one, at their spread times. Latency comes from version 1 records only (a version 2
    /// history's is its worker's interval log).
    #[inline]
    fn producer_record(&mut self, rec: Record) {
        self.records += 1;
        match rec {
            Record::Sent {
                producer,
                seq,
                intended_ns,
                ..
            } => self.sent(producer, seq, intended_ns),
            Record::Acked {
                producer,
                seq,
                at_ns,
                intended_ns,
            } => self.acked(producer, seq, at_ns, self.v1.then_some(intended_ns)),
            Record::Failed {
                producer,
                seq,
                at_ns,
                reason,
            } => {
                if self.msgs.failed(producer, seq, reason) {
                    let t = &mut self.timeline;
                    let i = t.bin(at_ns);
                    bump(&mut t.failed, i);
                }
            }
            Record::SentRun(run) => {
                for i in 0..u64::from(run.count) {
                    self.sent(run.producer, run.seq_at(i, 1), run.time_of(i));
                }
            }
            Record::AckedRun(run) => {
                for i in 0..u64::from(run.count) {
                    let seq = run.seq_at(i, self.stride);
                    self.acked(run.producer, seq, run.time_of(i), None);
                }
            }
            Record::CommitStarted(t) => self.msgs.transaction(t.producer, t.first, t.count, false),
            Record::Aborted(t) => self.msgs.transaction(t.producer, t.first, t.count, true),
            Record::Delivered { .. } | Record::Unexpected { .. } | Record::DeliveredRun(_) => {}
        }
    }

    #[inline]
    fn sent(&mut self, producer: ProducerId, seq: Seq, intended_ns: u64) {
        if intended_ns < self.last_intended {
            if let Some(s) = self.sorted.last_mut() {
                *s = false;
            }
        }
        self.last_intended = intended_ns;
        if self.msgs.sent(producer, seq) {
            let t = &mut self.timeline;
            let i = t.bin(intended_ns);
            bump(&mut t.sent, i);
        }
    }

    #[inline]
    fn acked(&mut self, producer: ProducerId, seq: Seq, at_ns: u64, intended_ns: Option<u64>) {
        if self.msgs.acked(producer, seq) {
            let t = &mut self.timeline;
            let i = t.bin(at_ns);
            bump(&mut t.acked, i);
            self.last_ack = self.last_ack.max(at_ns);
            if let Some(intended_ns) = intended_ns {
                self.latency.acked(intended_ns, at_ns);
            }
        }
    }

    #[inline]
    fn consumer_event(&mut self, event: Event) {
        match event {
            Event::Delivery { d, latency } => self.delivery(&d, latency),
            Event::Foreign { consumer, at_ns } => {
                self.deliveries += 1;
                self.unexpected.foreign(consumer, at_ns);
            }
        }
    }

    /// One delivery; `latency`: whether `d.sent_ns` is the message's send time.
    #[inline]
    fn delivery(&mut self, d: &Delivery, latency: bool) {
        self.deliveries += 1;
        match self.msgs.deliver(d) {
            Class::First(outcome) => self.first_delivery(outcome, d, latency),
            Class::Duplicate => self.duplicates.duplicate(d),
            Class::Unexpected => self.unexpected.never_sent(d),
        }
    }

    #[inline]
    fn first_delivery(&mut self, outcome: Outcome, d: &Delivery, latency: bool) {
        self.count_first(outcome, d);
        if latency {
            self.latency.delivered(d.sent_ns, d.at_ns);
        }
        self.order.first_delivery(d);
    }

    /// A row of the dedup store: a message a consumer processed. Credited as delivered (no
    /// latency, no order: its consumer was killed before it recorded it) when no history has
    /// it; whether it was.
    fn stored(&mut self, row: &mq_dedup::Row) -> bool {
        let d = Delivery {
            consumer: row.consumer,
            producer: row.producer,
            seq: row.seq,
            key: row.key,
            sent_ns: row.sent_ns,
            at_ns: row.at_ns,
        };
        // A row never sent was recorded as unexpected by its consumer, if it lived to.
        match self.msgs.deliver(&d) {
            Class::First(outcome) => {
                self.deliveries += 1;
                self.count_first(outcome, &d);
                true
            }
            Class::Duplicate | Class::Unexpected => false,
        }
    }

    /// The counts and series of a first delivery.
    #[inline]
    fn count_first(&mut self, outcome: Outcome, d: &Delivery) {
        let t = &mut self.timeline;
        let i = t.bin(d.at_ns);
        bump(&mut t.delivered, i);
        // The backlog holds acked messages: a delivery of one never acked (unknown, refused)
        // does not take anything out of it.
        if outcome == Outcome::Acked {
            bump(&mut t.delivered_acked, i);
        } else {
            self.lost.unacked_delivered(outcome, d);
        }
        self.last_delivery = self.last_delivery.max(d.at_ns);
    }

    /// Composes the checks' findings into the report.
    fn finish(self, input: &Input) -> Result<Report, CheckError> {
        let a = self.lost.finish(
            &self.msgs,
            &input.producer_files,
            &self.sorted,
            input.consumers > 0,
        )?;
        let (duplicated, reordered, unexpected) = (
            self.duplicates.finish(),
            self.order.finish(),
            self.unexpected.finish(),
        );
        let counts = Counts {
            sent: a.sent,
            acked: a.acked,
            failed: a.failed,
            not_sent: a.not_sent,
            unknown: a.unknown,
            delivered: a.delivered,
            deliveries: self.deliveries,
            lost: a.lost.count,
            unacked_lost: a.unacked_lost.count,
            recovered: a.recovered.count,
            failed_delivered: a.failed_delivered.count,
            duplicated: duplicated.count,
            reordered: reordered.count,
            unexpected: unexpected.count,
            aborted: a.aborted,
            aborted_visible: a.aborted_visible.count,
        };
        let samples = Samples {
            lost: a.lost.sample,
            unacked_lost: a.unacked_lost.sample,
            recovered: a.recovered.sample,
            failed_delivered: a.failed_delivered.sample,
            duplicated: duplicated.sample,
            reordered: reordered.sample,
            unexpected: unexpected.sample,
            aborted_visible: a.aborted_visible.sample,
        };
        let series = self.timeline.finish();
        let broker_depth = match &input.depth_file {
            Some(p) => depth::read_depth(p, input.start_ns)?,
            None => Vec::new(),
        };
        Ok(Report {
            throughput: throughput(input, &counts, self.last_ack, self.last_delivery),
            counts,
            samples,
            latency: self.latency.finish(),
            backlog_peak: series.backlog.iter().copied().max().unwrap_or(0),
            broker_depth_peak: broker_depth.iter().map(|d| d.messages).max(),
            series,
            broker_depth,
            records: self.records,
            transactional: self.transactional,
            dedup: self.dedup,
        })
    }
}

/// Rates from the variant's start to its last ack and to its last first delivery.
fn throughput(input: &Input, c: &Counts, last_ack: u64, last_delivery: u64) -> Throughput {
    let secs = |end: u64| (end.saturating_sub(input.start_ns)) as f64 / 1e9;
    let rate = |n: u64, end: u64| {
        if secs(end) > 0.0 {
            n as f64 / secs(end)
        } else {
            0.0
        }
    };
    let mb = input.message_size as f64 / 1e6;
    Throughput {
        seconds: secs(last_ack.max(last_delivery)),
        acked_msgs_per_s: rate(c.acked, last_ack),
        acked_mb_per_s: rate(c.acked, last_ack) * mb,
        delivered_msgs_per_s: rate(c.delivered, last_delivery),
        delivered_mb_per_s: rate(c.delivered, last_delivery) * mb,
    }
}
