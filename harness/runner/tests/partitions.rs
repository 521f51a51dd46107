//! Which partitions each consumer reads: every `consumers`-th while there are enough
//! partitions, and with competing consumers (more consumers than partitions) partition
//! `index % partitions`, so each partition's consumers are dealt round-robin.

use mq_core::Partition;
use mq_runner::workers::consumer_partitions;

fn of(partitions: u32, consumers: u32) -> Vec<Vec<u32>> {
    (0..consumers as u16)
        .map(|i| {
            consumer_partitions(partitions, consumers, i)
                .into_iter()
                .map(|Partition(p)| p)
                .collect()
        })
        .collect()
}

#[test]
fn each_partition_has_one_consumer_while_partitions_suffice() {
    assert_eq!(of(4, 2), [vec![0, 2], vec![1, 3]]);
    assert_eq!(of(3, 3), [vec![0], vec![1], vec![2]]);
    assert_eq!(of(1, 1), [vec![0]]);
}

#[test]
fn competing_consumers_are_dealt_round_robin_over_the_partitions() {
    assert_eq!(of(1, 2), [vec![0], vec![0]]);
    assert_eq!(of(2, 5), [vec![0], vec![1], vec![0], vec![1], vec![0]]);
}
