//! Reorder across competing consumers: first deliveries of a (producer, key), whichever
//! consumer took them, in delivery-time order (ties by consumer), each reordered when its seq is
//! below the highest taken before it. Synthetic histories whose counts are known.

mod common;

use common::*;

/// One key, seqs 0..n sent and acked (key 0).
fn one_key(n: u64) -> H {
    H::new().clean_producer(n, 1)
}

#[test]
fn two_consumers_interleaving_a_key_in_order_reorder_nothing() {
    // Consumer 0 takes the even seqs, consumer 1 the odd ones, each at seq ms + 1 ms: merged by
    // time the key's stream is 0, 1, 2, … 9.
    let evens = (0..10).step_by(2).map(|s| delivered(0, s, 0)).collect();
    let odds = (1..10).step_by(2).map(|s| delivered(0, s, 0)).collect();
    let c = one_key(10).consumer(evens).consumer(odds).check(1);
    assert_eq!(
        (c.reordered, c.delivered, c.duplicated, c.lost),
        (0, 10, 0, 0)
    );
}

#[test]
fn two_consumers_out_of_order_by_time_count_each_late_first_delivery() {
    // By time: 0 (c0, 1 ms), 3 (c1, 2 ms), 1 (c0, 3 ms), 2 (c0, 4 ms), 5 (c1, 5 ms),
    // 4 (c1, 6 ms): 1 and 2 come after 3, 4 after 5. Each consumer alone is in order.
    let c0 = vec![
        delivered_when(0, 0, 0, MS),
        delivered_when(0, 1, 0, 3 * MS),
        delivered_when(0, 2, 0, 4 * MS),
    ];
    let c1 = vec![
        delivered_when(0, 3, 0, 2 * MS),
        delivered_when(0, 5, 0, 5 * MS),
        delivered_when(0, 4, 0, 6 * MS),
    ];
    let r = one_key(6).consumer(c0).consumer(c1).report(1);
    assert_eq!((r.counts.reordered, r.counts.delivered), (3, 6));
    let found: Vec<_> = (r.samples.reordered.iter())
        .map(|s| {
            (
                s.seq.map(|q| q.0),
                s.after_seq.map(|a| a.0),
                s.consumer.map(|c| c.0),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (Some(1), Some(3), Some(0)),
            (Some(2), Some(3), Some(0)),
            (Some(4), Some(5), Some(1))
        ]
    );
}

#[test]
fn a_key_delivered_by_both_counts_the_duplicate_and_the_one_reordered() {
    // c0 takes 0 and 2; c1 takes 2 again (a duplicate, later) and then 1, after c0's 2.
    let c0 = vec![delivered_when(0, 0, 0, MS), delivered_when(0, 2, 0, 2 * MS)];
    let c1 = vec![
        delivered_when(0, 2, 0, 3 * MS),
        delivered_when(0, 1, 0, 4 * MS),
    ];
    let c = one_key(3).consumer(c0).consumer(c1).check(1);
    assert_eq!(
        (c.reordered, c.duplicated, c.delivered, c.deliveries, c.lost),
        (1, 1, 3, 4, 0)
    );
}

#[test]
fn the_first_delivery_is_the_earliest_whatever_file_holds_it() {
    // c1 took 1 before c0 did: c1's is the first delivery, c0's the duplicate, and c0's 0
    // (after c1's 1) is reordered.
    let c0 = vec![
        delivered_when(0, 0, 0, 5 * MS),
        delivered_when(0, 1, 0, 6 * MS),
    ];
    let c1 = vec![delivered_when(0, 1, 0, 2 * MS)];
    let r = one_key(2).consumer(c0).consumer(c1).report(1);
    assert_eq!((r.counts.reordered, r.counts.duplicated), (1, 1));
    assert_eq!(r.samples.duplicated[0].consumer.map(|c| c.0), Some(0));
}

#[test]
fn at_one_time_the_lower_numbered_consumer_goes_first() {
    let at = |seq, t| vec![delivered_when(0, seq, 0, t)];
    // Both at 3 ms: c0's 1 first, so c1's 0 is reordered.
    let c = one_key(2).consumer(at(1, 3 * MS)).consumer(at(0, 3 * MS));
    assert_eq!(c.check(1).reordered, 1);
    // c0's 0 first: in order.
    let c = one_key(2).consumer(at(0, 3 * MS)).consumer(at(1, 3 * MS));
    assert_eq!(c.check(1).reordered, 0);
}

#[test]
fn one_consumer_per_key_counts_as_each_consumer_alone() {
    // Two keys, each read by its own consumer: c0 reorders key 0 once (0, 4, 2), c1 keeps key 1
    // in order; their times interleave, which does not matter across keys.
    let c0 = vec![
        delivered_when(0, 0, 0, MS),
        delivered_when(0, 4, 0, 3 * MS),
        delivered_when(0, 2, 0, 5 * MS),
    ];
    let c1 = vec![
        delivered_when(0, 3, 1, 2 * MS),
        delivered_when(0, 1, 1, 4 * MS),
        delivered_when(0, 5, 1, 6 * MS),
    ];
    let c = H::new()
        .clean_producer(6, 2)
        .consumer(c0)
        .consumer(c1)
        .check(2);
    assert_eq!((c.reordered, c.delivered), (2, 6));
}

#[test]
fn a_consumer_whose_times_go_back_keeps_its_file_order() {
    // c0 recorded 2 after 0 but stamped it earlier (5 ms < 10 ms): it is taken as delivered at
    // 10 ms, after 0, so only c0's 0 (after c1's 1 at 7 ms) is reordered; by stamped time alone
    // 1 and 0 would both be.
    let c0 = vec![
        delivered_when(0, 0, 0, 10 * MS),
        delivered_when(0, 2, 0, 5 * MS),
    ];
    let c1 = vec![delivered_when(0, 1, 0, 7 * MS)];
    let c = one_key(3).consumer(c0).consumer(c1).check(1);
    assert_eq!((c.reordered, c.delivered), (1, 3));
}
