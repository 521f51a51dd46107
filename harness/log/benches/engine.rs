//! Storage engine benchmarks: append throughput (100 B and 1 KiB records, batches of 1 and 100,
//! fsync=never), sequential read throughput, and group commit with 1, 4 and 16 concurrent
//! writers under fsync=always (records/s from criterion, fsyncs/s printed per run).

use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mq_log::storage::{FsyncPolicy, Log, LogConfig};

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
            mq_log::storage::encode_records(&mut framed, &records);
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

fn group_commit(c: &mut Criterion) {
    let mut g = c.benchmark_group("group_commit");
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(4));
    g.sample_size(10);
    let summary = Arc::new(Mutex::new(Vec::new()));
    for writers in [1usize, 4, 16] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig {
            fsync: FsyncPolicy::Always,
            ..never_config()
        };
        let log = Log::open(dir.path(), cfg).unwrap();
        log.create_topic("t", 1).unwrap();
        let per_writer = 40usize;
        let mut elapsed_total = Duration::ZERO;
        let mut records_total = 0u64;
        let mut rounds_total = 0u64;
        let mut fsync_nanos_total = 0u64;
        g.throughput(Throughput::Elements((writers * per_writer) as u64));
        g.bench_function(BenchmarkId::new("writers", writers), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let before = log.commit_stats();
                    let start = Instant::now();
                    let handles: Vec<_> = (0..writers)
                        .map(|_| {
                            let log = log.clone();
                            std::thread::spawn(move || {
                                let rec = vec![7u8; 1024];
                                for _ in 0..per_writer {
                                    log.append_sync(
                                        "t",
                                        0,
                                        &[&rec],
                                        false,
                                        Duration::from_secs(30),
                                    )
                                    .unwrap();
                                }
                            })
                        })
                        .collect();
                    for h in handles {
                        h.join().unwrap();
                    }
                    let took = start.elapsed();
                    spent += took;
                    elapsed_total += took;
                    records_total += (writers * per_writer) as u64;
                    let after = log.commit_stats();
                    rounds_total += after.rounds - before.rounds;
                    fsync_nanos_total += after.fsync_nanos - before.fsync_nanos;
                }
                spent
            })
        });
        let secs = elapsed_total.as_secs_f64();
        summary.lock().unwrap().push(format!(
            "group_commit writers={writers}: {:.0} records/s, {:.0} fsync rounds/s, {:.1} records per fsync, {:.2} ms mean fsync",
            records_total as f64 / secs,
            rounds_total as f64 / secs,
            records_total as f64 / rounds_total.max(1) as f64,
            fsync_nanos_total as f64 / 1e6 / rounds_total.max(1) as f64
        ));
        log.close().unwrap();
    }
    g.finish();
    for line in summary.lock().unwrap().iter() {
        eprintln!("{line}");
    }
}

criterion_group!(benches, append, read, group_commit);
criterion_main!(benches);
