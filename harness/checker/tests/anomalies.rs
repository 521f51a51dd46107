//! Crafted histories, one anomaly each; every count is asserted exactly.

mod common;

use common::*;
use mq_checker::{check, Counts, Input};
use mq_core::history::{FailReason, FileHeader, HistoryWriter, Record, Role};
use mq_core::ids::{Key, ProducerId, Seq};

#[test]
fn clean_run_has_no_anomalies() {
    let c = H::new()
        .clean_producer(100, 1)
        .consumer(all_delivered(0, 100, 1))
        .check(1);
    assert_eq!(
        c,
        Counts {
            sent: 100,
            acked: 100,
            delivered: 100,
            deliveries: 100,
            ..Counts::default()
        }
    );
}

#[test]
fn without_consumers_nothing_is_lost_and_the_sends_still_count() {
    // 100 acked, 10 unanswered: read back, 100 lost and 10 unacked-lost; producer only, none.
    let mut recs: Vec<Record> = (0..100)
        .flat_map(|s| [sent(0, s, 0), acked(0, s)])
        .collect();
    recs.extend((100..110).map(|s| sent(0, s, 0)));
    let h = H::new().producer(recs);
    let read_back = check(&h.input(1)).unwrap();
    assert_eq!(
        (read_back.counts.lost, read_back.counts.unacked_lost),
        (100, 10)
    );
    let mut input = h.input(1);
    input.consumers = 0;
    let r = check(&input).unwrap();
    assert_eq!(
        r.counts,
        Counts {
            sent: 110,
            acked: 100,
            unknown: 10,
            ..Counts::default()
        }
    );
    assert!(r.samples.lost.is_empty() && r.samples.unacked_lost.is_empty());
    assert_eq!(mq_checker::lost(&input).unwrap(), 0);
}

#[test]
fn acked_but_never_delivered_is_lost() {
    let mut d = all_delivered(0, 10, 1);
    d.retain(|r| {
        !matches!(
            r,
            Record::Delivered {
                seq: Seq(3 | 7),
                ..
            }
        )
    });
    let c = H::new().clean_producer(10, 1).consumer(d).check(1);
    assert_eq!(
        (
            c.lost,
            c.delivered,
            c.unacked_lost,
            c.duplicated,
            c.reordered
        ),
        (2, 8, 0, 0, 0)
    );
}

#[test]
fn unknown_sends_are_unacked_lost_or_recovered() {
    // seq 0 acked; 1 and 2 never answered; 2 still arrives.
    let h = H::new()
        .producer(vec![
            sent(0, 0, 0),
            acked(0, 0),
            sent(0, 1, 0),
            sent(0, 2, 0),
        ])
        .consumer(vec![delivered(0, 0, 0), delivered(0, 2, 0)]);
    let c = h.check(1);
    assert_eq!(
        (
            c.sent,
            c.acked,
            c.unknown,
            c.unacked_lost,
            c.recovered,
            c.lost
        ),
        (3, 1, 2, 1, 1, 0)
    );
    assert_eq!(c.sent, c.acked + c.failed + c.unknown);
}

#[test]
fn failed_sends_are_counted_and_their_deliveries_flagged() {
    let h = H::new()
        .producer(vec![
            sent(0, 0, 0),
            failed(0, 0),
            sent(0, 1, 0),
            failed(0, 1),
            sent(0, 2, 0),
            acked(0, 2),
        ])
        .consumer(vec![delivered(0, 1, 0), delivered(0, 2, 0)]);
    let c = h.check(1);
    assert_eq!(
        (c.failed, c.failed_delivered, c.acked, c.lost, c.unknown),
        (2, 1, 1, 0, 0)
    );
}

#[test]
fn sends_that_never_reached_the_broker_are_not_sent_not_refused() {
    let h = H::new()
        .producer(vec![
            sent(0, 0, 0),
            failed_because(0, 0, FailReason::NotSent),
            sent(0, 1, 0),
            failed(0, 1),
            sent(0, 2, 0),
            failed_because(0, 2, FailReason::NotSent),
            sent(0, 3, 0),
            acked(0, 3),
            sent(0, 4, 0),
        ])
        .consumer(vec![delivered(0, 3, 0)]);
    let c = h.check(1);
    assert_eq!(
        (c.failed, c.not_sent, c.acked, c.unknown, c.lost),
        (1, 2, 1, 1, 0)
    );
    assert_eq!(c.sent, c.acked + c.failed + c.not_sent + c.unknown);
}

#[test]
fn duplicates_are_counted_beyond_the_first_across_consumers() {
    let mut d0 = all_delivered(0, 5, 1);
    d0.push(delivered(0, 4, 0));
    d0.push(delivered(0, 4, 0));
    let d1 = vec![delivered(0, 1, 0)];
    let c = H::new()
        .clean_producer(5, 1)
        .consumer(d0)
        .consumer(d1)
        .check(1);
    assert_eq!(
        (c.duplicated, c.delivered, c.deliveries, c.lost, c.reordered),
        (3, 5, 8, 0, 0)
    );
}

#[test]
fn reordering_counts_per_key_and_consumer() {
    // Key 0: 0, 2, 4 delivered as 0, 4, 2 → one reorder. Key 1: 1, 3 in order.
    let d = vec![
        delivered(0, 0, 0),
        delivered(0, 4, 0),
        delivered(0, 1, 1),
        delivered(0, 2, 0),
        delivered(0, 3, 1),
    ];
    let c = H::new().clean_producer(5, 2).consumer(d).check(2);
    assert_eq!(
        (c.reordered, c.delivered, c.duplicated, c.lost),
        (1, 5, 0, 0)
    );

    // Across keys the order does not matter.
    let d = vec![
        delivered(0, 1, 1),
        delivered(0, 0, 0),
        delivered(0, 3, 1),
        delivered(0, 2, 0),
    ];
    assert_eq!(
        H::new().clean_producer(4, 2).consumer(d).check(2).reordered,
        0
    );

    // Across consumers, order is delivery time: the second consumer took 0 (at 1 ms) before
    // the first took 1 (at 2 ms), whatever the order the files are read in.
    let c = H::new()
        .clean_producer(2, 1)
        .consumer(vec![delivered(0, 1, 0)])
        .consumer(vec![delivered(0, 0, 0)])
        .check(1);
    assert_eq!(c.reordered, 0);

    // A duplicate of an old seq is a duplicate, not a reorder.
    let d = vec![delivered(0, 0, 0), delivered(0, 1, 0), delivered(0, 0, 0)];
    let c = H::new().clean_producer(2, 1).consumer(d).check(1);
    assert_eq!((c.reordered, c.duplicated), (0, 1));
}

#[test]
fn deliveries_never_sent_are_unexpected() {
    let d = vec![
        delivered(0, 0, 0),
        delivered(0, 99, 0),             // seq never sent
        delivered(5, 0, 0),              // no such producer
        delivered(0, 1, 9),              // key out of range
        Record::Unexpected { at_ns: 1 }, // foreign payload
    ];
    let c = H::new().clean_producer(2, 1).consumer(d).check(1);
    assert_eq!(
        (c.unexpected, c.delivered, c.deliveries, c.lost),
        (4, 1, 5, 1)
    );
}

#[test]
fn two_producers_are_accounted_apart() {
    let c = H::new()
        .clean_producer(3, 1)
        .clean_producer(4, 1)
        .consumer(all_delivered(0, 3, 1))
        .consumer(all_delivered(1, 2, 1))
        .check(1);
    assert_eq!((c.sent, c.acked, c.delivered, c.lost), (7, 7, 5, 2));
}

#[test]
fn series_backlog_and_latency_come_out_of_the_same_pass() {
    let h = H::new()
        .clean_producer(3000, 1)
        .consumer(all_delivered(0, 2000, 1));
    let write = |role: Role, recs: &[Record]| {
        let path = h.dir.path().join(format!("{role:?}.hist"));
        let mut w = HistoryWriter::create(
            &path,
            FileHeader {
                role,
                worker: 0,
                run_id: 7,
            },
        )
        .unwrap();
        recs.iter().for_each(|r| w.push(*r).unwrap());
        w.finish().unwrap()
    };
    let input = Input {
        producer_files: vec![write(Role::Producer, &h.producers[0])],
        consumer_files: vec![write(Role::Consumer, &h.consumers[0])],
        depth_file: None,
        dedup_store: None,
        start_ns: 0,
        warmup_ns: 1_000 * MS,
        message_size: 100,
        producers: 1,
        consumers: 1,
        keys: 1,
    };
    let r = check(&input).unwrap();
    // One message per ms for 3 s: 50 ms bins (60 of them), 50 acks each; deliveries (1 ms
    // after each send) stop after 2 s.
    assert_eq!(r.series.bin_s, 0.05);
    assert_eq!(r.series.acked, vec![50; 60]);
    let mut delivered = vec![49];
    delivered.extend([50; 39]);
    delivered.push(1);
    delivered.extend([0; 19]);
    assert_eq!(r.series.delivered, delivered);
    let mut backlog = vec![1; 40];
    backlog.extend((1..=20).map(|k| k * 50));
    assert_eq!(r.series.backlog, backlog);
    assert_eq!(r.backlog_peak, 1000);
    // Warm-up leaves out the first second of sends.
    assert_eq!(r.latency.publish.count, 2000);
    assert_eq!(r.latency.end_to_end.count, 1000);
    assert!(
        (r.latency.publish.p50_us - 500.0).abs() < 1.0,
        "{:?}",
        r.latency.publish
    );
    let back = mq_checker::decode_histogram(&r.latency.publish_hdr).unwrap();
    assert_eq!(back.len(), 2000);
}

const S: u64 = 1_000_000_000;

fn sent_at(seq: u64, t: u64) -> Record {
    Record::Sent {
        producer: ProducerId(0),
        seq: Seq(seq),
        key: Key(0),
        intended_ns: t,
    }
}
fn acked_at(seq: u64, t: u64, sent: u64) -> Record {
    Record::Acked {
        producer: ProducerId(0),
        seq: Seq(seq),
        at_ns: t,
        intended_ns: sent,
    }
}
fn delivered_at(seq: u64, t: u64, sent: u64) -> Record {
    Record::Delivered {
        producer: ProducerId(0),
        seq: Seq(seq),
        key: Key(0),
        sent_ns: sent,
        at_ns: t,
    }
}

#[test]
fn backlog_counts_acked_messages_not_yet_delivered_and_is_never_negative() {
    // A run of 60 s, so its series are per second (60 bins). Times in ms.
    let ms = |v: u64| v * MS;
    let producer = vec![
        // 0: acked at 0.5 s, delivered at 2.5 s: in the backlog at the ends of seconds 0 and 1.
        sent_at(0, 0),
        acked_at(0, ms(500), 0),
        // 1: never answered (the producer died), delivered anyway: recovered, never in the
        // backlog, and its delivery must not take an acked message out of it.
        sent_at(1, S),
        // 2: never answered, delivered twice.
        sent_at(2, 3 * S),
        // 3: delivered at 4.9 s, before its ack at 5.2 s was recorded: never in the backlog.
        sent_at(3, 4 * S),
        acked_at(3, ms(5200), 4 * S),
        // 4: refused, delivered anyway.
        sent_at(4, 6 * S),
        Record::Failed {
            producer: ProducerId(0),
            seq: Seq(4),
            at_ns: ms(6100),
            reason: FailReason::Refused,
        },
        // 5: acked at 7.5 s, never delivered: lost, in the backlog to the end.
        sent_at(5, 7 * S),
        acked_at(5, ms(7500), 7 * S),
        // 6: acked and delivered within the last second.
        sent_at(6, 59 * S),
        acked_at(6, ms(59_500), 59 * S),
    ];
    let consumer = vec![
        delivered_at(1, ms(1500), S),
        delivered_at(0, ms(2500), 0),
        delivered_at(2, ms(3200), 3 * S),
        delivered_at(2, ms(3400), 3 * S),
        delivered_at(3, ms(4900), 4 * S),
        delivered_at(4, ms(6500), 6 * S),
        delivered_at(6, ms(59_900), 59 * S),
    ];
    let r = H::new().producer(producer).consumer(consumer).report(1);
    let c = r.counts;
    assert_eq!(
        (
            c.acked,
            c.unknown,
            c.failed,
            c.recovered,
            c.failed_delivered
        ),
        (4, 2, 1, 2, 1)
    );
    assert_eq!((c.lost, c.duplicated, c.delivered), (1, 1, 6));
    let mut want = vec![1, 1, 0, 0, 0, 0, 0];
    want.extend([1; 53]);
    assert_eq!(r.series.backlog, want);
    assert_eq!(r.backlog_peak, 1);
    // Throughput still counts every first delivery, acked or not.
    assert_eq!(r.series.delivered.iter().sum::<u64>(), 6);
    assert_eq!(r.series.acked.iter().sum::<u64>(), 4);
}

/// Producer 0 sends a message every `every_ns`, acked at once; consumer 0 gets each `every_ns
/// / 2` later.
fn paced(n: u64, every_ns: u64) -> H {
    let producer = (0..n)
        .flat_map(|k| {
            [
                sent_at(k, k * every_ns),
                acked_at(k, k * every_ns, k * every_ns),
            ]
        })
        .collect();
    let consumer = (0..n)
        .map(|k| delivered_at(k, k * every_ns + every_ns / 2, k * every_ns))
        .collect();
    H::new().producer(producer).consumer(consumer)
}

#[test]
fn a_sub_second_run_gets_ten_millisecond_bins_and_at_least_fifty_points() {
    // 600 messages over 0.6 s: per-second series had one point.
    let r = paced(600, MS).report(1);
    assert_eq!(r.series.bin_s, 0.01);
    assert_eq!(r.series.acked, vec![10; 60]);
    assert_eq!(r.series.delivered, vec![10; 60]);
    assert_eq!(r.series.sent, vec![10; 60]);
    // Each message waits half a millisecond: no bin ends with one outstanding.
    assert_eq!(r.series.backlog, vec![0; 60]);
}

#[test]
fn a_long_run_gets_per_second_bins_up_to_two_hours_then_a_bounded_count() {
    // One message every 100 ms for two minutes: 1 s bins of 10 messages.
    let r = paced(1200, 100 * MS).report(1);
    assert_eq!(r.series.bin_s, 1.0);
    assert_eq!(r.series.acked, vec![10; 120]);
    assert_eq!(r.series.delivered, vec![10; 120]);
    // An hour, a message every 10 s: still a point per second (the charts downsample).
    let r = paced(360, 10 * S).report(1);
    assert_eq!(r.series.bin_s, 1.0);
    assert_eq!(r.series.acked.len(), 3596); // the last delivery at 3595.5 s
    assert_eq!(r.series.acked.iter().sum::<u64>(), 360);
    // Four hours: 2 s bins, at most 7200 of them.
    let r = paced(1440, 10 * S).report(1);
    assert_eq!(r.series.bin_s, 2.0);
    assert!(r.series.acked.len() <= 7200);
}
