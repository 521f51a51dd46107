//! Group commit under fsync=always, 1 KiB records, 1 vs 16 concurrent writers (4 as well),
//! with two kinds of writer:
//!
//! - `tasks`: tokio tasks that append and then await `Log::wait_durable_async`, the way the
//!   server's connection tasks acknowledge `fsync = always` produces (on a multi-thread runtime
//!   built like the server's);
//! - `threads`: OS threads blocking in `Log::append_sync`, the embedded, in-process use.
//!
//! The disk's fsync time drifts by an order of magnitude over tens of seconds, so measuring the
//! configurations one after another mostly measures the drift. Instead the sides alternate in
//! short rounds on one log (one partition file, one committer), and the ratio is taken per pair of
//! adjacent rounds: each pair saw the same disk. The order flips every pair (1,16,4 then 4,16,1)
//! so a trend within a pair does not favour one side. Each round starts its writers, lets them
//! settle for `settle`, then counts records acknowledged (fsynced) during `window`.
//!
//! `cargo bench -p mqlog --bench group_commit`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mqlog::storage::{FsyncPolicy, Log, LogConfig};

struct Plan {
    pairs: usize,
    settle: Duration,
    window: Duration,
}

const FULL: Plan = Plan {
    pairs: 16,
    settle: Duration::from_millis(50),
    window: Duration::from_millis(250),
};

/// Without `--bench` (`cargo test --benches`): one short pair, to check it runs.
const QUICK: Plan = Plan {
    pairs: 1,
    settle: Duration::from_millis(10),
    window: Duration::from_millis(30),
};

const RECORD: usize = 1024;

/// How the concurrent writers wait for their acknowledgement.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Writers {
    Tasks,
    Threads,
}

impl Writers {
    fn label(self) -> &'static str {
        match self {
            Writers::Tasks => "tasks",
            Writers::Threads => "threads",
        }
    }
}

/// One round of one configuration.
#[derive(Clone, Copy, Default)]
struct Side {
    records: u64,
    secs: f64,
    rounds: u64,
    writes: u64,
    fsync_nanos: u64,
}

impl Side {
    fn rate(&self) -> f64 {
        self.records as f64 / self.secs
    }
    fn add(&mut self, o: &Side) {
        self.records += o.records;
        self.secs += o.secs;
        self.rounds += o.rounds;
        self.writes += o.writes;
        self.fsync_nanos += o.fsync_nanos;
    }
    /// Writes covered by one commit round (one fsync of the partition file, two when a
    /// segment rolled).
    fn per_round(&self) -> f64 {
        self.writes as f64 / self.rounds.max(1) as f64
    }
    /// Mean time a commit round spent in fsync, ms.
    fn fsync_ms(&self) -> f64 {
        self.fsync_nanos as f64 / 1e6 / self.rounds.max(1) as f64
    }
    /// Share of the wall time the committer spent inside fsync.
    fn busy(&self) -> f64 {
        self.fsync_nanos as f64 / 1e9 / self.secs
    }
}

/// Counts what `acked` gains during the window, after the settle time.
fn measure(log: &Log, acked: &AtomicU64, plan: &Plan) -> Side {
    std::thread::sleep(plan.settle);
    let (a0, s0, t0) = (
        acked.load(Ordering::Relaxed),
        log.commit_stats(),
        Instant::now(),
    );
    std::thread::sleep(plan.window);
    let (a1, s1, t1) = (
        acked.load(Ordering::Relaxed),
        log.commit_stats(),
        Instant::now(),
    );
    Side {
        records: a1 - a0,
        secs: (t1 - t0).as_secs_f64(),
        rounds: s1.rounds - s0.rounds,
        writes: s1.writes - s0.writes,
        fsync_nanos: s1.fsync_nanos - s0.fsync_nanos,
    }
}

fn round(
    log: &Log,
    rt: &tokio::runtime::Runtime,
    kind: Writers,
    writers: usize,
    plan: &Plan,
) -> Side {
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    match kind {
        Writers::Threads => std::thread::scope(|s| {
            for _ in 0..writers {
                s.spawn(|| {
                    let rec = vec![7u8; RECORD];
                    while !stop.load(Ordering::Relaxed) {
                        log.append_sync("t", 0, &[&rec], false, Duration::from_secs(30))
                            .unwrap();
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            let side = measure(log, &acked, plan);
            stop.store(true, Ordering::Relaxed);
            side
        }),
        Writers::Tasks => {
            let mut framed = Vec::new();
            mqlog::storage::encode_records(&mut framed, &[vec![7u8; RECORD]]);
            let framed: Arc<[u8]> = framed.into();
            let partition = log.partition("t", 0).unwrap();
            let tasks: Vec<_> = (0..writers)
                .map(|_| {
                    let (log, partition, framed) = (log.clone(), partition.clone(), framed.clone());
                    let (stop, acked) = (stop.clone(), acked.clone());
                    rt.spawn(async move {
                        while !stop.load(Ordering::Relaxed) {
                            let out = partition.append_framed(&framed, 1, false).unwrap();
                            let ticket = out.ticket.expect("fsync=always registers every write");
                            log.wait_durable_async(ticket).await.unwrap();
                            acked.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            let side = measure(log, &acked, plan);
            stop.store(true, Ordering::Relaxed);
            rt.block_on(async {
                for t in tasks {
                    t.await.unwrap();
                }
            });
            side
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn describe(label: &str, s: &Side) -> String {
    format!(
        "{label}: {:.0} rec/s, {:.2} records per fsync, {:.3} ms mean fsync, committer in fsync {:.0}% of the time",
        s.rate(),
        s.per_round(),
        s.fsync_ms(),
        s.busy() * 100.0
    )
}

/// Totals and per-pair ratios of one kind of writer.
#[derive(Default)]
struct Tally {
    one: Side,
    four: Side,
    sixteen: Side,
    r16: Vec<f64>,
    r4: Vec<f64>,
}

impl Tally {
    fn report(&mut self, kind: Writers, plan: &Plan) {
        let k = kind.label();
        let (min16, max16) = (
            self.r16.iter().copied().fold(f64::INFINITY, f64::min),
            self.r16.iter().copied().fold(0.0, f64::max),
        );
        let med16 = median(&mut self.r16);
        let med4 = median(&mut self.r4);
        eprintln!(
            "{}",
            describe(&format!("group-commit {k:7}  1 writer "), &self.one)
        );
        eprintln!(
            "{}",
            describe(&format!("group-commit {k:7}  4 writers"), &self.four)
        );
        eprintln!(
            "{}",
            describe(&format!("group-commit {k:7} 16 writers"), &self.sixteen)
        );
        // The ratio decomposes (records acked ~= writes registered) into: records per
        // fsync at 16 writers, times how much more of the wall time the committer spends in
        // fsync at 16 writers (gaps between rounds: wake-ups, gathering, a lone writer's
        // own round trip), times how much faster a 1-writer fsync is than a 16-writer one.
        eprintln!(
            "group-commit {k:7} ratio of totals {:.1}x ~= {:.2} rec/fsync x busy {:.2}/{:.2} x fsync {:.3}/{:.3} ms",
            self.sixteen.rate() / self.one.rate(),
            self.sixteen.per_round(),
            self.sixteen.busy(),
            self.one.busy(),
            self.one.fsync_ms(),
            self.sixteen.fsync_ms(),
        );
        println!(
            "group-commit {k}: 1w={:.0} rec/s 16w={:.0} rec/s ratio median={:.1}x min={:.1}x max={:.1}x records_per_fsync_16w={:.2} fsync_ms_1w={:.3} fsync_ms_16w={:.3} 4w={:.0} rec/s ratio4_median={:.1}x pairs={}",
            self.one.rate(),
            self.sixteen.rate(),
            med16,
            min16,
            max16,
            self.sixteen.per_round(),
            self.one.fsync_ms(),
            self.sixteen.fsync_ms(),
            self.four.rate(),
            med4,
            plan.pairs,
        );
    }
}

fn run(plan: &Plan) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        fsync: FsyncPolicy::Always,
        segment_bytes: 64 << 20,
        // Keep the disk footprint bounded over a long measurement.
        retention_bytes: Some(256 << 20),
        retention_check_interval: Duration::from_millis(50),
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), cfg).unwrap();
    log.create_topic("t", 1).unwrap();
    // Built like the server's runtime (one worker per core).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // Warm up: create the segment's first extents, spawn-path caches, committer state.
    for kind in [Writers::Tasks, Writers::Threads] {
        for w in [1, 16] {
            round(&log, &rt, kind, w, &QUICK);
        }
    }
    let mut tallies = [Tally::default(), Tally::default()];
    let started = Instant::now();
    for i in 0..plan.pairs {
        let (order, kinds): ([usize; 3], [Writers; 2]) = if i % 2 == 0 {
            ([1, 16, 4], [Writers::Tasks, Writers::Threads])
        } else {
            ([4, 16, 1], [Writers::Threads, Writers::Tasks])
        };
        for kind in kinds {
            let mut got = [Side::default(); 3];
            for w in order {
                got[match w {
                    1 => 0,
                    16 => 1,
                    _ => 2,
                }] = round(&log, &rt, kind, w, plan);
            }
            let [one, sixteen, four] = got;
            let t = &mut tallies[kind as usize];
            t.one.add(&one);
            t.sixteen.add(&sixteen);
            t.four.add(&four);
            t.r16.push(sixteen.rate() / one.rate());
            t.r4.push(four.rate() / one.rate());
            eprintln!(
                "group-commit pair {i:2} {:7}: 1w {:6.0} rec/s ({:.3} ms fsync) | 16w {:6.0} rec/s ({:5.2} rec/fsync, {:.3} ms fsync) | 4w {:6.0} rec/s | 16w/1w {:5.1}x",
                kind.label(),
                one.rate(),
                one.fsync_ms(),
                sixteen.rate(),
                sixteen.per_round(),
                sixteen.fsync_ms(),
                four.rate(),
                sixteen.rate() / one.rate(),
            );
        }
    }
    let took = started.elapsed();
    drop(rt);
    drop(log.close());
    tallies[Writers::Tasks as usize].report(Writers::Tasks, plan);
    tallies[Writers::Threads as usize].report(Writers::Threads, plan);
    // The same 16-task figure against the faster of the two single-writer baselines.
    let best_one = tallies[0].one.rate().max(tallies[1].one.rate());
    println!(
        "group-commit: 16 tasks / fastest 1 writer = {:.1}x (ratio of totals)",
        tallies[Writers::Tasks as usize].sixteen.rate() / best_one
    );
    eprintln!(
        "group-commit: {} pairs of each kind in {:.1}s",
        plan.pairs,
        took.as_secs_f64()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("group_commit/interleaved: benchmark");
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` does not.
    if args.iter().any(|a| a == "--bench") {
        run(&FULL);
    } else {
        run(&QUICK);
        println!("Testing group_commit/interleaved\nSuccess");
    }
}
