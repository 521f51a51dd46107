//! mq-checker: reads a variant's history files and reports what happened to every message.
//!
//! Memory is a few bits per (producer, seq) (sent, acked, failed, delivered), a last-seen seq
//! per (consumer, producer, key), two HdrHistograms and at most a few thousand time bins per
//! series ([`series`]): tens of millions of messages fit easily.

mod depth;
mod input;
mod latency;
pub mod report;
pub mod series;

use mq_core::bits::Bits;
use mq_core::history::{FailReason, Record, Role};

pub use input::{CheckError, Input};
pub use latency::{decode_histogram, encode_histogram, new_histogram, percentiles};
pub use report::{Counts, DepthSample, Latency, Percentiles, Report, Series, Throughput};

use depth::read_depth;
use input::open;
use latency::record;
use series::{bump, Timeline};

const NONE: u64 = u64::MAX;

struct Producer {
    sent: Bits,
    acked: Bits,
    /// Failed, refused by the broker or never sent.
    failed: Bits,
    /// Of the failed: never reached the broker.
    not_sent: Bits,
    delivered: Bits,
}

/// Reads every history of one variant and counts.
pub fn check(input: &Input) -> Result<Report, CheckError> {
    let mut producers: Vec<Producer> = (0..input.producers)
        .map(|_| Producer {
            sent: Bits::default(),
            acked: Bits::default(),
            failed: Bits::default(),
            not_sent: Bits::default(),
            delivered: Bits::default(),
        })
        .collect();
    let mut c = Counts::default();
    let mut s = Timeline::new(input.start_ns);
    let mut publish = new_histogram();
    let mut e2e = new_histogram();
    let latency_from = input.start_ns + input.warmup_ns;
    let mut last_ack = input.start_ns;
    let mut last_delivery = input.start_ns;
    let mut records = 0u64;

    for path in &input.producer_files {
        let mut r = open(path, Role::Producer)?;
        while let Some(rec) = r.next_record()? {
            records += 1;
            match rec {
                Record::Sent {
                    producer,
                    seq,
                    intended_ns,
                    ..
                } => {
                    if let Some(p) = producers.get_mut(producer.0 as usize) {
                        if !p.sent.set(seq.0) {
                            c.sent += 1;
                            let i = s.bin(intended_ns);
                            bump(&mut s.sent, i);
                        }
                    }
                }
                Record::Acked {
                    producer,
                    seq,
                    at_ns,
                    intended_ns,
                } => {
                    if let Some(p) = producers.get_mut(producer.0 as usize) {
                        if !p.acked.set(seq.0) {
                            let i = s.bin(at_ns);
                            bump(&mut s.acked, i);
                            last_ack = last_ack.max(at_ns);
                            if intended_ns >= latency_from {
                                record(&mut publish, at_ns.saturating_sub(intended_ns));
                            }
                        }
                    }
                }
                Record::Failed {
                    producer,
                    seq,
                    at_ns,
                    reason,
                } => {
                    if let Some(p) = producers.get_mut(producer.0 as usize) {
                        if !p.failed.set(seq.0) {
                            let i = s.bin(at_ns);
                            bump(&mut s.failed, i);
                            if reason == FailReason::NotSent {
                                p.not_sent.set(seq.0);
                            }
                        }
                    }
                }
                Record::Delivered { .. } | Record::Unexpected { .. } => {}
            }
        }
    }

    let keys = input.keys.max(1) as usize;
    for path in &input.consumer_files {
        let mut r = open(path, Role::Consumer)?;
        // Highest seq delivered so far per (producer, key), for this consumer.
        let mut last = vec![NONE; producers.len() * keys];
        while let Some(rec) = r.next_record()? {
            records += 1;
            match rec {
                Record::Delivered {
                    producer,
                    seq,
                    key,
                    sent_ns,
                    at_ns,
                } => {
                    c.deliveries += 1;
                    let pi = producer.0 as usize;
                    let known = pi < producers.len()
                        && (key.0 as usize) < keys
                        && producers[pi].sent.get(seq.0);
                    if !known {
                        c.unexpected += 1;
                        continue;
                    }
                    if producers[pi].delivered.set(seq.0) {
                        c.duplicated += 1;
                        continue;
                    }
                    let i = s.bin(at_ns);
                    bump(&mut s.delivered, i);
                    // The backlog holds acked messages: a delivery of one never acked
                    // (unknown, refused) does not take anything out of it.
                    if producers[pi].acked.get(seq.0) {
                        bump(&mut s.delivered_acked, i);
                    }
                    last_delivery = last_delivery.max(at_ns);
                    if sent_ns >= latency_from {
                        record(&mut e2e, at_ns.saturating_sub(sent_ns));
                    }
                    let slot = &mut last[pi * keys + key.0 as usize];
                    if *slot != NONE && seq.0 < *slot {
                        c.reordered += 1;
                    } else {
                        *slot = seq.0;
                    }
                }
                Record::Unexpected { .. } => {
                    c.deliveries += 1;
                    c.unexpected += 1;
                }
                _ => {}
            }
        }
    }

    for p in &producers {
        let words = p.sent.words();
        for w in 0..words {
            let (sent, acked, failed, not_sent, delivered) = (
                p.sent.word(w),
                p.acked.word(w),
                p.failed.word(w),
                p.not_sent.word(w),
                p.delivered.word(w),
            );
            let acked = acked & sent;
            let failed = failed & sent & !acked;
            let not_sent = not_sent & failed;
            let unknown = sent & !acked & !failed;
            c.acked += u64::from(acked.count_ones());
            c.failed += u64::from((failed & !not_sent).count_ones());
            c.not_sent += u64::from(not_sent.count_ones());
            c.unknown += u64::from(unknown.count_ones());
            c.delivered += u64::from((delivered & sent).count_ones());
            c.lost += u64::from((acked & !delivered).count_ones());
            c.unacked_lost += u64::from((unknown & !delivered).count_ones());
            c.recovered += u64::from((unknown & delivered).count_ones());
            c.failed_delivered += u64::from((failed & delivered).count_ones());
        }
    }

    let series = s.finish();

    let secs = |end: u64| (end.saturating_sub(input.start_ns)) as f64 / 1e9;
    let rate = |n: u64, end: u64| {
        if secs(end) > 0.0 {
            n as f64 / secs(end)
        } else {
            0.0
        }
    };
    let mb = input.message_size as f64 / 1e6;
    let throughput = Throughput {
        seconds: secs(last_ack.max(last_delivery)),
        acked_msgs_per_s: rate(c.acked, last_ack),
        acked_mb_per_s: rate(c.acked, last_ack) * mb,
        delivered_msgs_per_s: rate(c.delivered, last_delivery),
        delivered_mb_per_s: rate(c.delivered, last_delivery) * mb,
    };

    let broker_depth = match &input.depth_file {
        Some(p) => read_depth(p, input.start_ns)?,
        None => Vec::new(),
    };
    Ok(Report {
        counts: c,
        throughput,
        latency: Latency {
            publish: percentiles(&publish),
            end_to_end: percentiles(&e2e),
            publish_hdr: encode_histogram(&publish),
            end_to_end_hdr: encode_histogram(&e2e),
        },
        backlog_peak: series.backlog.iter().copied().max().unwrap_or(0),
        broker_depth_peak: broker_depth.iter().map(|d| d.messages).max(),
        series,
        broker_depth,
        records,
    })
}
