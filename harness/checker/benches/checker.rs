//! Checker speed: history records per second on one core (target: ≥ 10 M/s), on a clean run and
//! on one that lost a tenth of its messages.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mq_checker::{check, Input};
use mq_core::history::{FileHeader, HistoryWriter, Record, Role};
use mq_core::ids::{Key, ProducerId, Seq};

/// One producer sending `n` messages, all acked; the consumer takes all but every `lose_every`th.
fn histories(dir: &std::path::Path, n: u64, lose_every: Option<u64>) -> Input {
    let p = dir.join("producer-0.hist");
    let c = dir.join("consumer-0.hist");
    let mut w = HistoryWriter::create(
        &p,
        FileHeader {
            role: Role::Producer,
            worker: 0,
            run_id: 1,
        },
    )
    .unwrap();
    for i in 0..n {
        let t = 1_000 + i * 1_000;
        w.push(Record::Sent {
            producer: ProducerId(0),
            seq: Seq(i),
            key: Key((i % 4) as u32),
            intended_ns: t,
        })
        .unwrap();
        w.push(Record::Acked {
            producer: ProducerId(0),
            seq: Seq(i),
            at_ns: t + 20_000,
            intended_ns: t,
        })
        .unwrap();
    }
    w.finish().unwrap();
    let mut w = HistoryWriter::create(
        &c,
        FileHeader {
            role: Role::Consumer,
            worker: 0,
            run_id: 1,
        },
    )
    .unwrap();
    for i in (0..n).filter(|i| lose_every.is_none_or(|k| i % k != 0)) {
        let t = 1_000 + i * 1_000;
        w.push(Record::Delivered {
            producer: ProducerId(0),
            seq: Seq(i),
            key: Key((i % 4) as u32),
            sent_ns: t,
            at_ns: t + 50_000,
        })
        .unwrap();
    }
    w.finish().unwrap();
    Input {
        producer_files: vec![p],
        consumer_files: vec![c],
        depth_file: None,
        dedup_store: None,
        start_ns: 0,
        warmup_ns: 0,
        message_size: 100,
        producers: 1,
        consumers: 1,
        keys: 4,
    }
}

fn bench(c: &mut Criterion) {
    let n = 1_000_000;
    let clean_dir = tempfile::tempdir().unwrap();
    let clean = histories(clean_dir.path(), n, None);
    let lossy_dir = tempfile::tempdir().unwrap();
    let lossy = histories(lossy_dir.path(), n, Some(10));
    let mut g = c.benchmark_group("checker");
    g.throughput(Throughput::Elements(3 * n)); // records: sent + acked + delivered
    g.sample_size(10);
    g.bench_function("check 3M records", |b| b.iter(|| check(&clean).unwrap()));
    g.throughput(Throughput::Elements(3 * n - n / 10));
    g.bench_function("check 2.9M records, 1 in 10 lost", |b| {
        b.iter(|| check(&lossy).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
