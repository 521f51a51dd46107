//! The idempotent consumer's store as the checker reads it: a processed message that no
//! history has (its consumer was killed between the store's commit and its history write)
//! counts as delivered, once, without a latency sample; one a history has is not counted again.

mod common;

use common::*;
use mq_checker::check;
use mq_core::delivery::DedupSync;
use mq_core::ids::{ConsumerId, Key, ProducerId, Seq};
use mq_dedup::{Processed, Store};

fn processed(seq: u64) -> Processed {
    Processed {
        producer: ProducerId(0),
        seq: Seq(seq),
        key: Key(0),
        sent_ns: seq * MS,
    }
}

#[test]
fn a_message_only_the_store_holds_is_credited_as_delivered_without_latency() {
    // 10 acked; the consumer recorded 0..6 and was killed after the store took 6..9.
    let h = H::new()
        .clean_producer(10, 1)
        .consumer(all_delivered(0, 6, 1));
    let mut input = h.input(1);
    let without = check(&input).unwrap();
    assert_eq!((without.counts.lost, without.counts.delivered), (4, 6));
    assert_eq!(without.dedup, None);

    let path = h.dir.path().join("dedup.sqlite");
    mq_dedup::create(&path).unwrap();
    let mut store = Store::open(&path, DedupSync::Normal, ConsumerId(0)).unwrap();
    let mut new = Vec::new();
    // 0..6 as the consumer marked them before recording them, then 6..9 (9 never processed),
    // and a redelivery of 3 the replacement skipped.
    let first: Vec<_> = (0..6).map(processed).collect();
    store.mark(&first, 6 * MS, &mut new).unwrap();
    let second: Vec<_> = [6, 7, 8, 3].into_iter().map(processed).collect();
    store.mark(&second, 20 * MS, &mut new).unwrap();
    drop(store);

    input.dedup_store = Some(path);
    let r = check(&input).unwrap();
    let c = r.counts;
    assert_eq!((c.delivered, c.lost, c.duplicated), (9, 1, 0), "{c:?}");
    assert_eq!(c.deliveries, 9, "six recorded, three credited");
    let d = r.dedup.expect("the store was read");
    assert_eq!((d.processed, d.skipped, d.credited), (9, 1, 3));
    assert_eq!(
        r.latency.end_to_end.count, 6,
        "credited messages have no latency sample"
    );
    assert_eq!(r.samples.lost.len(), 1);
    assert_eq!(r.samples.lost[0].seq, Some(Seq(9)));
    let delivered: u64 = r.series.delivered.iter().sum();
    assert_eq!(
        delivered, 9,
        "credited messages are in the delivered series too"
    );
}
