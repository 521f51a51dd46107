//! Each check's sample on crafted histories: the exact offenders, in the exact order, and the
//! bound (more offenders than [`SAMPLE_SIZE`]).

mod common;

use common::*;
use mq_checker::{Sample, SAMPLE_SIZE};
use mq_core::history::Record;
use mq_core::ids::{ConsumerId, Key, ProducerId, Seq};

/// (producer, seq) of each sampled message.
fn who(sample: &[Sample]) -> Vec<(u16, u64)> {
    sample
        .iter()
        .map(|s| (s.producer.unwrap().0, s.seq.unwrap().0))
        .collect()
}

/// (consumer, seq) of each sampled delivery.
fn where_(sample: &[Sample]) -> Vec<(u16, u64)> {
    sample
        .iter()
        .map(|s| (s.consumer.unwrap().0, s.seq.unwrap().0))
        .collect()
}

/// Producers 0 and 1 send seqs 0..30 (key seq % 2), each acked half a ms after its send.
fn two_producers() -> H {
    H::new().clean_producer(30, 2).clean_producer(30, 2)
}

#[test]
fn lost_sample_is_the_first_twenty_by_send_time_across_producers() {
    // Producer 0 loses its odd seqs (15), producer 1 its seqs 0..10 (10): 25 lost.
    let d0 = (0..30u64)
        .filter(|s| s % 2 == 0)
        .map(|s| delivered(0, s, (s % 2) as u32));
    let d1 = (10..30u64).map(|s| delivered(1, s, (s % 2) as u32));
    let r = two_producers().consumer(d0.chain(d1).collect()).report(2);
    assert_eq!(r.counts.lost, 25);
    assert_eq!(r.samples.lost.len(), SAMPLE_SIZE);
    // By send time (seq ms); at one time producer 0 first.
    let mut want = vec![(1, 0)];
    for s in 1..10 {
        if s % 2 == 1 {
            want.push((0, s));
        }
        want.push((1, s));
    }
    want.extend((11..20).step_by(2).map(|s| (0, s)));
    assert_eq!(who(&r.samples.lost), want);
    assert_eq!(
        r.samples.lost[1],
        Sample {
            producer: Some(ProducerId(0)),
            seq: Some(Seq(1)),
            key: Some(Key(1)),
            sent_s: Some(secs(MS)),
            acked_s: Some(secs(MS + MS / 2)),
            ..Sample::default()
        }
    );
    assert!(r.samples.unacked_lost.is_empty());
}

#[test]
fn a_small_count_samples_every_offender() {
    let d0 = (0..30u64).filter(|s| *s != 7 && *s != 3);
    let d0 = d0.map(|s| delivered(0, s, (s % 2) as u32));
    let r = two_producers()
        .consumer(d0.chain(all_delivered(1, 30, 2)).collect())
        .report(2);
    assert_eq!(r.counts.lost, 2);
    assert_eq!(who(&r.samples.lost), vec![(0, 3), (0, 7)]);
    assert_eq!(r.samples.lost[0].acked_s, Some(secs(3 * MS + MS / 2)));
}

#[test]
fn a_lost_message_gets_its_ack_time_even_when_the_ack_comes_late_in_the_history() {
    // Every send first, then every ack; nothing delivered: 30 lost.
    let recs = (0..30)
        .map(|s| sent(0, s, 0))
        .chain((0..30).map(|s| acked(0, s)));
    let r = H::new().producer(recs.collect()).report(1);
    assert_eq!(r.counts.lost, 30);
    assert_eq!(
        who(&r.samples.lost),
        (0..20).map(|s| (0, s)).collect::<Vec<_>>()
    );
    for (s, sample) in r.samples.lost.iter().enumerate() {
        assert_eq!(
            sample.acked_s,
            Some(secs(s as u64 * MS + MS / 2)),
            "seq {s}"
        );
        assert_eq!(sample.key, Some(Key(0)));
    }
}

#[test]
fn a_history_whose_send_times_go_back_is_read_to_its_end() {
    // Seqs 20..45 are recorded first, then 0..5 (sent earlier, recorded later); none delivered.
    let recs = (20..45)
        .chain(0..5)
        .flat_map(|s| [sent(0, s, 0), acked(0, s)]);
    let r = H::new().producer(recs.collect()).report(1);
    assert_eq!(r.counts.lost, 30);
    let want: Vec<_> = (0..5).chain(20..35).map(|s| (0, s)).collect();
    assert_eq!(who(&r.samples.lost), want);
}

#[test]
fn unacked_lost_sample_has_sends_without_acks() {
    // Seqs 0..30 never answered; the even ones arrive (recovered), the 15 odd ones do not.
    // Seqs 30..40 are acked and never delivered (lost).
    let mut recs: Vec<Record> = (0..30).map(|s| sent(0, s, 0)).collect();
    recs.extend((30..40).flat_map(|s| [sent(0, s, 0), acked(0, s)]));
    let d = (0..30).filter(|s| s % 2 == 0).map(|s| delivered(0, s, 0));
    let r = H::new().producer(recs).consumer(d.collect()).report(1);
    let c = r.counts;
    assert_eq!((c.unacked_lost, c.recovered, c.lost), (15, 15, 10));
    let odd: Vec<_> = (1..30).step_by(2).map(|s| (0, s)).collect();
    assert_eq!(who(&r.samples.unacked_lost), odd);
    assert_eq!(
        r.samples.unacked_lost[0],
        Sample {
            producer: Some(ProducerId(0)),
            seq: Some(Seq(1)),
            key: Some(Key(0)),
            sent_s: Some(secs(MS)),
            ..Sample::default()
        }
    );
    assert_eq!(
        who(&r.samples.lost),
        (30..40).map(|s| (0, s)).collect::<Vec<_>>()
    );
}

#[test]
fn recovered_and_failed_delivered_samples_name_the_delivery() {
    // Seqs 0..25 never answered, all delivered, the later sends first and split between two
    // consumers; seqs 25..28 refused, 25 and 27 delivered anyway.
    let mut recs: Vec<Record> = (0..25).map(|s| sent(0, s, 0)).collect();
    recs.extend((25..28).flat_map(|s| [sent(0, s, 0), failed(0, s)]));
    let late = |s: u64| delivered_when(0, s, 0, 100 * MS - s * MS);
    let c0 = (12..25).rev().map(late).collect();
    let c1 = (0..12)
        .rev()
        .map(late)
        .chain([delivered(0, 27, 0), delivered(0, 25, 0)])
        .collect();
    let r = H::new().producer(recs).consumer(c0).consumer(c1).report(1);
    assert_eq!((r.counts.recovered, r.counts.failed_delivered), (25, 2));
    // By send time, whichever consumer read first.
    assert_eq!(
        who(&r.samples.recovered),
        (0..20).map(|s| (0, s)).collect::<Vec<_>>()
    );
    assert_eq!(
        r.samples.recovered[12],
        Sample {
            producer: Some(ProducerId(0)),
            seq: Some(Seq(12)),
            key: Some(Key(0)),
            sent_s: Some(secs(12 * MS)),
            delivered_s: Some(secs(88 * MS)),
            consumer: Some(ConsumerId(0)),
            ..Sample::default()
        }
    );
    assert_eq!(r.samples.recovered[11].consumer, Some(ConsumerId(1)));
    assert_eq!(who(&r.samples.failed_delivered), vec![(0, 25), (0, 27)]);
    assert_eq!(
        r.samples.failed_delivered[0].delivered_s,
        Some(secs(26 * MS))
    );
}

#[test]
fn duplicated_sample_is_the_first_twenty_redeliveries_by_delivery_time() {
    // Consumer 0 takes seqs 0..30 once; consumer 1 again takes 10..25 at seq + 2 ms (15),
    // consumer 2 takes 0..10 at seq + 3 ms (10): 25 duplicates.
    let c1 = (10..25).map(|s| delivered_when(0, s, 0, s * MS + 2 * MS));
    let c2 = (0..10).map(|s| delivered_when(0, s, 0, s * MS + 3 * MS));
    let r = H::new()
        .clean_producer(30, 1)
        .consumer(all_delivered(0, 30, 1))
        .consumer(c1.collect())
        .consumer(c2.collect())
        .report(1);
    assert_eq!(r.counts.duplicated, 25);
    // 3..11 ms: consumer 2's seqs 0..8; at 12 ms consumer 1's seq 10 and consumer 2's seq 9
    // (consumer 1's history is read first); then consumer 1's 11..19.
    let mut want: Vec<_> = (0..9).map(|s| (2, s)).collect();
    want.extend([(1, 10), (2, 9)]);
    want.extend((11..20).map(|s| (1, s)));
    assert_eq!(where_(&r.samples.duplicated), want);
    assert_eq!(
        r.samples.duplicated[9],
        Sample {
            producer: Some(ProducerId(0)),
            seq: Some(Seq(10)),
            key: Some(Key(0)),
            sent_s: Some(secs(10 * MS)),
            delivered_s: Some(secs(12 * MS)),
            consumer: Some(ConsumerId(1)),
            ..Sample::default()
        }
    );
}

#[test]
fn reordered_sample_names_the_seq_each_came_after() {
    // Keys: seq % 2. Consumer 0 takes the even seqs as 28, 0, 2 … 26 (14 reorders after 28),
    // consumer 1 the odd ones as 29, 1, 3 … 27 (14 after 29); their i-th deliveries at 2i and
    // 2i + 1 ms.
    let take = |first: u64, consumer: u64| {
        std::iter::once(first)
            .chain((consumer..first).step_by(2))
            .enumerate()
            .map(|(i, s)| delivered_when(0, s, (s % 2) as u32, (2 * i as u64 + consumer) * MS))
            .collect()
    };
    let r = H::new()
        .clean_producer(30, 2)
        .consumer(take(28, 0))
        .consumer(take(29, 1))
        .report(2);
    assert_eq!((r.counts.reordered, r.counts.delivered), (28, 30));
    let want: Vec<_> = (0..20).map(|s| ((s % 2) as u16, s)).collect();
    assert_eq!(where_(&r.samples.reordered), want);
    let after: Vec<_> = r.samples.reordered.iter().map(|s| s.after_seq).collect();
    let want: Vec<_> = (0..20).map(|s| Some(Seq(28 + s % 2))).collect();
    assert_eq!(after, want);
    assert_eq!(
        r.samples.reordered[3],
        Sample {
            producer: Some(ProducerId(0)),
            seq: Some(Seq(3)),
            key: Some(Key(1)),
            sent_s: Some(secs(3 * MS)),
            delivered_s: Some(secs(5 * MS)),
            consumer: Some(ConsumerId(1)),
            after_seq: Some(Seq(29)),
            ..Sample::default()
        }
    );
}

#[test]
fn unexpected_sample_has_unsent_messages_and_foreign_payloads() {
    // 22 deliveries of seqs never sent (100.., at 100 + k ms), and 3 foreign payloads at 0.5,
    // 104.5 and 200 ms.
    let mut d: Vec<Record> = (0..22)
        .map(|k| delivered_when(0, 100 + k, 0, (100 + k) * MS))
        .collect();
    d.insert(
        5,
        Record::Unexpected {
            at_ns: 104 * MS + MS / 2,
        },
    );
    d.insert(0, Record::Unexpected { at_ns: MS / 2 });
    d.push(Record::Unexpected { at_ns: 200 * MS });
    let r = H::new().clean_producer(2, 1).consumer(d).report(1);
    assert_eq!((r.counts.unexpected, r.counts.deliveries), (25, 25));
    let s = &r.samples.unexpected;
    assert_eq!(s.len(), SAMPLE_SIZE);
    assert_eq!(
        s[0],
        Sample {
            delivered_s: Some(secs(MS / 2)),
            consumer: Some(ConsumerId(0)),
            ..Sample::default()
        }
    );
    let seqs: Vec<_> = s.iter().map(|x| x.seq.map(|q| q.0)).collect();
    let mut want = vec![None];
    want.extend((100..105).map(Some));
    want.push(None);
    want.extend((105..118).map(Some));
    assert_eq!(seqs, want);
    assert_eq!(s[1].producer, Some(ProducerId(0)));
    assert_eq!(s[1].delivered_s, Some(secs(100 * MS)));
}

#[test]
fn a_clean_run_has_empty_samples() {
    let r = two_producers()
        .consumer(all_delivered(0, 30, 2))
        .consumer(all_delivered(1, 30, 2))
        .report(2);
    assert_eq!(r.samples, mq_checker::Samples::default());
}

#[test]
fn the_drain_s_lost_count_equals_the_report_s_without_sampling() {
    let h = H::new()
        .clean_producer(100, 1)
        .consumer(all_delivered(0, 60, 1));
    let input = h.input(1);
    assert_eq!(mq_checker::lost(&input).unwrap(), 40);
    assert_eq!(mq_checker::check(&input).unwrap().counts.lost, 40);
}
