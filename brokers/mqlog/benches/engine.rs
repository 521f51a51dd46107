//! Storage engine benchmarks through criterion: append throughput (100 B and 1 KiB records,
//! batches of 1 and 100, fsync=never) and sequential read throughput. Group commit under
//! fsync=always has its own bench, `group_commit`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mqlog::storage::{FsyncPolicy, Log, LogConfig};

fn never_config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 << 20,
        // Keep the disk footprint bounded while criterion writes gigabytes.
        retention_bytes: Some(256 << 20),
        retention_check_interval: Duration::from_millis(50),
        fsync: FsyncPolicy::Never,
        ..LogConfig::default()
    }
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    for (size, label) in [(100usize, "100B"), (1024, "1KiB")] {
        for batch in [1usize, 100] {
            let dir = tempfile::tempdir().unwrap();
            let log = Log::open(dir.path(), never_config()).unwrap();
            log.create_topic("t", 1).unwrap();
            let records: Vec<Vec<u8>> = (0..batch).map(|i| vec![i as u8; size]).collect();
            let partition = log.partition("t", 0).unwrap();
            let mut framed = Vec::new();
            mqlog::storage::encode_records(&mut framed, &records);
            g.throughput(Throughput::Bytes((size * batch) as u64));
            g.bench_function(BenchmarkId::new(label, format!("batch{batch}")), |b| {
                b.iter(|| {
                    black_box(
                        partition
                            .append_framed(&framed, batch as u32, false)
                            .unwrap(),
                    )
                })
            });
            drop(partition);
            log.close().unwrap();
        }
    }
    g.finish();
}

fn read(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        retention_bytes: None,
        ..never_config()
    };
    let log = Log::open(dir.path(), cfg).unwrap();
    log.create_topic("t", 1).unwrap();
    let records: Vec<Vec<u8>> = (0..100).map(|i| vec![i as u8; 1024]).collect();
    // 64 MiB of 1 KiB records, in the page cache.
    for _ in 0..640 {
        log.append("t", 0, &records).unwrap();
    }
    let end = log.end_offsets("t").unwrap()[0];
    let partition = log.partition("t", 0).unwrap();
    let mut g = c.benchmark_group("read");
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    let max_bytes = 1u64 << 20;
    g.throughput(Throughput::Bytes(max_bytes));
    let mut offset = 0;
    g.bench_function("1KiB_records_1MiB_fetches", |b| {
        b.iter(|| {
            let r = partition.read(offset, max_bytes).unwrap();
            // Whole batches of 100 records: the next read starts after the last one.
            let read_records = r.data.len() as u64 / (28 + 100 * 1028) * 100;
            offset = if offset + read_records >= end {
                0
            } else {
                offset + read_records
            };
            black_box(r.data.len())
        })
    });
    g.finish();
}

criterion_group!(benches, append, read);
criterion_main!(benches);
