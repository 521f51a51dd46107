//! What the real-broker tests of the backends share: skipping (or failing) when a broker is not
//! installed, guards that wipe nodes and tear brokers down even when a test fails, plan builders,
//! and a produce-then-consume round trip through the backend traits.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mq_core::delivery::{ConsumerAck, Durability, ProducerAck};
use mq_core::envelope::Envelope;
use mq_core::plan::{VariantPlan, Workload};
use mq_core::{
    AckSink, Backend, Broker, Delivery, DeliverySink, Key, Outcome, Outgoing, Partition,
    ProducerId, Seq, Unavailable, WorkerCtx,
};
use serde_json::json;

/// False (after a loud note) when `broker` is not available and the caller may skip; panics
/// instead when `$MQ_BENCH_REQUIRE_BROKERS` is set.
pub fn installed(broker: &str, available: Result<(), Unavailable>) -> bool {
    let Err(u) = available else {
        return true;
    };
    if std::env::var_os("MQ_BENCH_REQUIRE_BROKERS").is_some() {
        panic!(
            "MQ_BENCH_REQUIRE_BROKERS is set but {broker} is not available: {} (fix: {:?})",
            u.reason, u.fix
        );
    }
    eprintln!(
        "\n!!!!! SKIPPED: {broker} is not available: {} (fix: {:?}) !!!!!\n",
        u.reason, u.fix
    );
    false
}

/// How a broker script runs a command on a node: `Node::run` of a backend.
pub type RunScript<N> = fn(&N, &str, Duration, &Path) -> Result<(), String>;

/// A node run through its broker script; wiped (stopped, data deleted) on drop, even on failure.
pub struct NodeGuard<N> {
    pub node: N,
    run: RunScript<N>,
    log: PathBuf,
    what: String,
    _dir: Option<tempfile::TempDir>,
}

impl<N> NodeGuard<N> {
    /// Makes a node in a fresh temporary folder and starts it within `timeout`.
    pub fn start(
        what: impl Into<String>,
        make: impl FnOnce(PathBuf) -> N,
        run: RunScript<N>,
        timeout: Duration,
    ) -> NodeGuard<N> {
        let dir = tempfile::tempdir().unwrap();
        let guard = NodeGuard {
            node: make(dir.path().join("node")),
            run,
            log: dir.path().join("script.log"),
            what: what.into(),
            _dir: Some(dir),
        };
        (guard.run)(&guard.node, "start", timeout, &guard.log)
            .unwrap_or_else(|e| panic!("starting {}: {e}", guard.what));
        guard
    }

    /// Only wipes `node` on drop: the safety net under a broker that starts it itself.
    pub fn wipe_on_drop(
        what: impl Into<String>,
        node: N,
        run: RunScript<N>,
        log: PathBuf,
    ) -> NodeGuard<N> {
        NodeGuard {
            node,
            run,
            log,
            what: what.into(),
            _dir: None,
        }
    }
}

impl<N> Drop for NodeGuard<N> {
    fn drop(&mut self) {
        if let Err(e) = (self.run)(&self.node, "wipe", Duration::from_secs(90), &self.log) {
            eprintln!("wiping {}: {e}", self.what);
        }
    }
}

/// Calls teardown on drop so a failing test leaves no topic, queue or broker behind.
pub struct BrokerGuard(pub Box<dyn Broker>);

impl Drop for BrokerGuard {
    fn drop(&mut self) {
        let _ = self.0.teardown();
    }
}

/// `backend`'s broker for `plan` (which must validate) in `run_dir`, named after that run.
pub fn broker(backend: &dyn Backend, plan: &VariantPlan, run_dir: &Path) -> BrokerGuard {
    let errors = backend.validate(plan);
    assert!(errors.is_empty(), "{errors:?}");
    BrokerGuard(
        backend
            .broker(plan, run_dir, &mq_core::run_tag(run_dir))
            .unwrap(),
    )
}

/// A plan of `backend` with `messages` of 100 bytes over `partitions` and `ack_timeout`.
pub fn plan(
    backend: &str,
    name: &str,
    delivery: Delivery,
    options: serde_json::Value,
    (messages, partitions, ack_timeout): (u64, u32, &str),
) -> VariantPlan {
    let workload: Workload = serde_json::from_value(json!({
        "messages": messages, "partitions": partitions, "message_size": 100, "ack_timeout": ack_timeout
    }))
    .unwrap();
    VariantPlan::new(name, backend, delivery, options, workload)
}

/// The delivery settings, spelled out.
pub fn delivery(
    producer_ack: ProducerAck,
    consumer_ack: ConsumerAck,
    durability: Durability,
) -> Delivery {
    Delivery {
        producer_ack,
        consumer_ack,
        durability,
        consumer_dedup: Default::default(),
    }
}

/// What a worker of `plan` receives: index 0, reading `partitions`.
pub fn worker_ctx(
    plan: &VariantPlan,
    endpoint: &serde_json::Value,
    partitions: Vec<Partition>,
    run_id: u32,
) -> WorkerCtx {
    WorkerCtx {
        plan: plan.clone(),
        endpoint: endpoint.clone(),
        index: 0,
        partitions,
        run_id,
    }
}

/// Message `seq` (key `seq % partitions`), its envelope encoded into `buf` (made by
/// [`Outgoing::buffer`]).
pub fn message(buf: &mut [u8], run_id: u32, seq: u64, partitions: u32) -> Outgoing<'_> {
    let key = Key((seq % u64::from(partitions)) as u32);
    Envelope {
        run_id,
        producer: ProducerId(0),
        key,
        seq: Seq(seq),
        send_ns: 0,
    }
    .encode(&mut buf[Outgoing::HEADROOM..]);
    Outgoing::new(Seq(seq), key, key.partition(partitions), buf)
}

struct Acks(Vec<u8>);
impl AckSink for Acks {
    fn ack(&mut self, seq: Seq, outcome: Outcome) {
        assert_eq!(outcome, Outcome::Acked, "seq {} failed", seq.0);
        self.0[seq.0 as usize] += 1;
    }
}

struct Sink {
    run_id: u32,
    seen: Vec<u8>,
    last: Vec<Option<u64>>,
    partitions: u32,
}
impl DeliverySink for Sink {
    fn deliver(&mut self, payload: &[u8], partition: Partition) {
        let e = Envelope::decode(payload, self.run_id).expect("one of our messages");
        assert_eq!(
            e.key.partition(self.partitions),
            partition,
            "seq {} came from the wrong partition",
            e.seq.0
        );
        let last = &mut self.last[partition.0 as usize];
        assert!(
            !matches!(*last, Some(l) if l >= e.seq.0),
            "seq {} after {:?} on partition {}",
            e.seq.0,
            last,
            partition.0
        );
        *last = Some(e.seq.0);
        self.seen[e.seq.0 as usize] += 1;
    }
}

/// Polls `depth()` every `every` until it is `want` or `limit` has passed; the last answer.
pub fn wait_depth(
    broker: &mut dyn Broker,
    want: u64,
    limit: Duration,
    every: Duration,
) -> Option<u64> {
    let deadline = Instant::now() + limit;
    loop {
        let d = broker.depth().map(|d| d.messages);
        if d == Some(want) || Instant::now() >= deadline {
            return d;
        }
        std::thread::sleep(every);
    }
}

/// Asserts that every seq was counted exactly once (`what`: "acked", "delivered").
fn assert_once(counts: &[u8], what: &str, name: &str) {
    let not_once: Vec<_> = counts
        .iter()
        .enumerate()
        .filter(|(_, &c)| c != 1)
        .take(5)
        .collect();
    assert!(
        not_once.is_empty(),
        "{name}: seqs not {what} exactly once: {not_once:?}"
    );
}

/// How a backend's round trip is checked where backends differ.
pub struct RoundTrip {
    pub run_id: u32,
    /// Whether the depth must be every message once the producer has its acks.
    pub depth_after_acks: bool,
    /// Between depth polls.
    pub depth_every: Duration,
    /// How long the consumer must then stay empty.
    pub quiet: Duration,
}

/// Produces the plan's messages, checks acks and depth, consumes them, checks order, exactly
/// once and depth 0. Returns msgs/s both ways.
pub fn round_trip(
    backend: &dyn Backend,
    broker: &mut dyn Broker,
    plan: &VariantPlan,
    endpoint: &serde_json::Value,
    how: &RoundTrip,
) -> (f64, f64) {
    let n = plan.workload.messages.unwrap();
    let parts = plan.workload.partitions;
    let all: Vec<Partition> = (0..parts).map(Partition).collect();
    let ctx = worker_ctx(plan, endpoint, all, how.run_id);

    let mut producer = backend.producer(&ctx).unwrap();
    let mut acks = Acks(vec![0; n as usize]);
    let mut buf = Outgoing::buffer(plan.workload.message_size);
    let t0 = Instant::now();
    for seq in 0..n {
        let mut msg = message(&mut buf, how.run_id, seq, parts);
        producer.send(&mut msg, &mut acks).unwrap();
    }
    producer.flush(Duration::from_secs(30), &mut acks).unwrap();
    let produce_rate = n as f64 / t0.elapsed().as_secs_f64();
    drop(producer);
    assert_once(&acks.0, "acked", &plan.name);
    if how.depth_after_acks {
        assert_eq!(
            wait_depth(broker, n, Duration::from_secs(10), how.depth_every),
            Some(n),
            "{}: depth after acks",
            plan.name
        );
    }

    let mut consumer = backend.consumer(&ctx).unwrap();
    let mut sink = Sink {
        run_id: how.run_id,
        seen: vec![0; n as usize],
        last: vec![None; parts as usize],
        partitions: parts,
    };
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(60);
    let mut taken = 0u64;
    while taken < n && Instant::now() < deadline {
        taken += consumer
            .poll(Duration::from_millis(200), &mut sink)
            .unwrap() as u64;
    }
    let consume_rate = taken as f64 / t0.elapsed().as_secs_f64();
    // Nothing more may arrive.
    assert_eq!(
        consumer.poll(how.quiet, &mut sink).unwrap(),
        0,
        "{}: extra deliveries",
        plan.name
    );
    consumer.close().unwrap();
    drop(consumer);
    assert_eq!(taken, n, "{}: deliveries", plan.name);
    assert_once(&sink.seen, "delivered", &plan.name);
    assert_eq!(
        wait_depth(broker, 0, Duration::from_secs(10), how.depth_every),
        Some(0),
        "{}: depth after consuming",
        plan.name
    );
    (produce_rate, consume_rate)
}
