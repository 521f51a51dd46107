//! Hot paths of a run, per message: envelope encode and decode (every send and delivery),
//! history write (every send, ack and delivery), latency histogram record (every ack and
//! delivery in the checker). `cargo bench -p mq-report`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mq_core::envelope::Envelope;
use mq_core::history::{FileHeader, HistoryWriter, Record, Role};
use mq_core::ids::{Key, ProducerId, Seq};
use std::hint::black_box;

fn envelope(c: &mut Criterion) {
    // plotters is built with ab_glyph for mq-report; criterion's plots need its font too.
    mq_report::charts::register_font();
    let mut g = c.benchmark_group("envelope");
    g.throughput(Throughput::Elements(1));
    let e = Envelope {
        run_id: 0xdead_beef,
        producer: ProducerId(3),
        key: Key(7),
        seq: Seq(1 << 33),
        send_ns: 123_456_789,
    };
    let mut buf = vec![0u8; 100];
    g.bench_function("encode", |b| {
        b.iter(|| black_box(&e).encode(black_box(&mut buf)))
    });
    e.encode(&mut buf);
    g.bench_function("decode", |b| {
        b.iter(|| Envelope::decode(black_box(&buf), black_box(0xdead_beef)).unwrap())
    });
    g.finish();
}

fn history(c: &mut Criterion) {
    const N: u64 = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("producer-0.hist");
    let mut g = c.benchmark_group("history");
    g.throughput(Throughput::Elements(N));
    g.sample_size(20);
    g.bench_function("push 100k Sent records", |b| {
        b.iter_batched(
            || {
                HistoryWriter::create(
                    &path,
                    FileHeader {
                        role: Role::Producer,
                        worker: 0,
                        run_id: 1,
                    },
                )
                .unwrap()
            },
            |mut w| {
                for i in 0..N {
                    w.push(Record::Sent {
                        producer: ProducerId(0),
                        seq: Seq(i),
                        key: Key((i % 4) as u32),
                        intended_ns: 1_000 + i * 1_000,
                    })
                    .unwrap();
                }
                w
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn histogram(c: &mut Criterion) {
    let mut g = c.benchmark_group("histogram");
    g.throughput(Throughput::Elements(1));
    let mut h = mq_checker::new_histogram();
    let mut v = 1u64;
    g.bench_function("record", |b| {
        b.iter(|| {
            // Latencies spread over 1 µs … 1 s so buckets across the range are touched.
            v = v
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            h.record(black_box(1_000 + (v >> 34))).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, envelope, history, histogram);
criterion_main!(benches);
