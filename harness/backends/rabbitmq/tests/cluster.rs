//! The managed 3-node RabbitMQ cluster (`nodes = 3`), driven through the backend traits only:
//! a quorum queue with publisher confirms, `fault(Kill)` kills the node holding the queue's
//! leader (node 1, where every client connects first) while a producer sends and a consumer
//! reads; both reconnect to another node, re-declare, the producer republishes what was
//! unconfirmed, `fault(Restart)` brings the node back, and no acked message is lost.
//! Plus the option checks, which need no broker.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mq_backend_rabbitmq::{Endpoint, Node, RabbitMq};
use mq_core::delivery::{ConsumerAck, Durability, ProducerAck};
use mq_core::envelope::Envelope;
use mq_core::plan::{BrokerFault, VariantPlan};
use mq_core::{AckSink, Backend, DeliverySink, NodeHit, Outcome, Partition, Seq};
use mq_testkit::{delivery, message, worker_ctx, NodeGuard};
use serde_json::json;

const RUN_ID: u32 = 0x5eed_0004;
const PARTITIONS: u32 = 1;
/// Node 1's port; apart from the scenario's default cluster (5771) and the single-node tests.
const PORT: u16 = 5781;

fn plan(name: &str, options: serde_json::Value) -> VariantPlan {
    let delivery = delivery(
        ProducerAck::Leader,
        ConsumerAck::AfterProcess,
        Durability::Persistent,
    );
    mq_testkit::plan(
        "rabbitmq",
        name,
        delivery,
        options,
        (1_000_000, PARTITIONS, "30s"),
    )
}

/// Outcome per seq: 0 none yet, 1 acked, 2 failed or not sent.
#[derive(Default)]
struct Outcomes {
    of: Vec<u8>,
    repeated: u64,
}

impl AckSink for Outcomes {
    fn ack(&mut self, seq: Seq, outcome: Outcome) {
        let i = seq.0 as usize;
        if self.of.len() <= i {
            self.of.resize(i + 1, 0);
        }
        if self.of[i] != 0 {
            self.repeated += 1;
        }
        self.of[i] = match outcome {
            Outcome::Acked => 1,
            Outcome::Failed | Outcome::NotSent => 2,
        };
    }
}

/// Deliveries per seq.
#[derive(Default)]
struct Seen {
    count: Vec<u32>,
    foreign: u64,
}

struct SharedSeen(Arc<Mutex<Seen>>);

impl DeliverySink for SharedSeen {
    fn deliver(&mut self, payload: &[u8], _partition: Partition) {
        let mut seen = self.0.lock().unwrap();
        match Envelope::decode(payload, RUN_ID) {
            Ok(e) => {
                let i = e.seq.0 as usize;
                if seen.count.len() <= i {
                    seen.count.resize(i + 1, 0);
                }
                seen.count[i] += 1;
            }
            Err(_) => seen.foreign += 1,
        }
    }
}

/// What the fault thread saw.
struct FaultReport {
    kill: Result<Vec<NodeHit>, String>,
    /// Sends made when the kill returned (the node was down by then).
    sent_at_kill: u64,
    restart: Result<Vec<NodeHit>, String>,
}

/// Reads until `stop`, at most 85 s; the consumer's error, if any.
fn consume(
    ctx: mq_core::WorkerCtx,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
) -> Result<(), String> {
    let mut consumer = RabbitMq.consumer(&ctx).map_err(|e| e.to_string())?;
    let mut sink = SharedSeen(seen);
    let t = Instant::now();
    while !stop.load(Ordering::Acquire) && t.elapsed() < Duration::from_secs(85) {
        consumer
            .poll(Duration::from_millis(100), &mut sink)
            .map_err(|e| e.to_string())?;
    }
    consumer.close().map_err(|e| e.to_string())
}

#[test]
fn quorum_leader_kill_reconnecting_clients_lose_no_confirmed_message() {
    let probe = plan("probe", json!({"nodes": 3, "port": PORT}));
    if !mq_testkit::installed("RabbitMQ", RabbitMq.available(&probe)) {
        return;
    }
    let t_test = Instant::now();
    let run = tempfile::tempdir().unwrap();
    let plan = plan(
        "q3",
        json!({"nodes": 3, "port": PORT, "queue_type": "quorum", "max_in_flight": 256}),
    );
    let mut broker = mq_testkit::broker(&RabbitMq, &plan, run.path());
    // The broker's own teardown wipes the cluster too: this is the safety net.
    let _wipe = NodeGuard::wipe_on_drop(
        "the test cluster",
        Node::cluster(PORT, run.path().join("q3.rabbitmq")),
        Node::run,
        run.path().join("wipe.log"),
    );
    let endpoint = broker.0.setup().unwrap();
    let ep: Endpoint = serde_json::from_value(endpoint.clone()).unwrap();
    eprintln!("cluster up after {:?}", t_test.elapsed());
    let node = ep
        .node
        .clone()
        .expect("a managed endpoint names its cluster");
    assert!(node.is_cluster());
    assert_eq!(ep.addresses.len(), 3, "{:?}", ep.addresses);

    let all: Vec<Partition> = (0..PARTITIONS).map(Partition).collect();
    let ctx = worker_ctx(&plan, &endpoint, all, RUN_ID);
    let mut producer = RabbitMq.producer(&ctx).unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop_consumer = Arc::new(AtomicBool::new(false));
    let consumer_thread = std::thread::spawn({
        let (ctx, seen, stop) = (ctx.clone(), seen.clone(), stop_consumer.clone());
        move || consume(ctx, seen, stop)
    });

    // Faults in a thread of their own, so that sends go on while rabbitmq.sh runs. Nothing in
    // it panics: the main thread joins it before any assertion.
    let t0 = Instant::now();
    let sent = Arc::new(AtomicU64::new(0));
    let faults_done = Arc::new(AtomicBool::new(false));
    let fault_thread = std::thread::spawn({
        let (sent, done) = (sent.clone(), faults_done.clone());
        let mut broker = broker;
        move || {
            std::thread::sleep(Duration::from_secs(1));
            let kill = broker.0.fault(BrokerFault::Kill).map_err(|e| e.to_string());
            let sent_at_kill = sent.load(Ordering::Acquire);
            std::thread::sleep(Duration::from_secs(2));
            let restart = broker
                .0
                .fault(BrokerFault::Restart)
                .map_err(|e| e.to_string());
            done.store(true, Ordering::Release);
            let report = FaultReport {
                kill,
                sent_at_kill,
                restart,
            };
            (broker, report)
        }
    });

    // Send continuously (~1000/s) until the faults are over and 2 s more have passed.
    let mut outcomes = Outcomes::default();
    let mut buf = mq_core::Outgoing::buffer(plan.workload.message_size);
    let mut send_error = None;
    let mut done_at = None;
    while t0.elapsed() < Duration::from_secs(70) {
        if faults_done.load(Ordering::Acquire) {
            let at = *done_at.get_or_insert_with(Instant::now);
            if at.elapsed() >= Duration::from_secs(2) {
                break;
            }
        }
        let seq = sent.load(Ordering::Acquire);
        let mut msg = message(&mut buf, RUN_ID, seq, PARTITIONS);
        if let Err(e) = producer.send(&mut msg, &mut outcomes) {
            send_error = Some(e.to_string());
            break;
        }
        sent.store(seq + 1, Ordering::Release);
        let _ = producer.poll(&mut outcomes);
        std::thread::sleep(Duration::from_millis(1));
    }
    let flushed = producer.flush(Duration::from_secs(30), &mut outcomes);
    drop(producer);
    let (mut broker, report) = fault_thread
        .join()
        .expect("the fault thread does not panic");
    let sent = sent.load(Ordering::Acquire);
    let acked: Vec<u64> = (0..sent)
        .filter(|&s| outcomes.of.get(s as usize) == Some(&1))
        .collect();

    // The consumer reads until every acked message is there (or 30 s).
    let missing = |seen: &Seen| {
        acked
            .iter()
            .filter(|&&s| seen.count.get(s as usize).copied().unwrap_or(0) == 0)
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && missing(&seen.lock().unwrap()) > 0 {
        std::thread::sleep(Duration::from_millis(100));
    }
    stop_consumer.store(true, Ordering::Release);
    let consumed = consumer_thread
        .join()
        .expect("the consumer thread does not panic");

    let seen = seen.lock().unwrap();
    let lost = missing(&seen);
    let duplicated = seen.count.iter().filter(|&&c| c > 1).count();
    let after_kill = |s: &u64| *s >= report.sent_at_kill;
    eprintln!(
        "sent {sent}, acked {} ({} sent after the kill), failed/not sent {}, repeated reports {}; \
         kill: {:?} at seq {}; restart: {:?}; consumed {} distinct ({} sent after the kill), \
         {duplicated} duplicated; lost acked {lost}",
        acked.len(),
        acked.iter().filter(|s| after_kill(s)).count(),
        outcomes.of.iter().filter(|&&o| o == 2).count(),
        outcomes.repeated,
        report.kill,
        report.sent_at_kill,
        report.restart,
        seen.count.iter().filter(|&&c| c > 0).count(),
        (report.sent_at_kill as usize..seen.count.len())
            .filter(|&s| seen.count[s] > 0)
            .count(),
    );
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for (i, &o) in outcomes.of.iter().enumerate() {
        if o == 2 {
            match ranges.last_mut() {
                Some(r) if r.1 + 1 == i => r.1 = i,
                _ => ranges.push((i, i)),
            }
        }
    }
    eprintln!("failed ranges: {ranges:?}");
    assert_eq!(send_error, None, "send failed");
    assert!(flushed.is_ok(), "flush: {flushed:?}");
    assert_eq!(consumed, Ok(()), "the consumer ends without an error");
    // Every client connects to node 1 first, and the queue was declared there: its leader.
    let killed = report.kill.expect("fault(Kill)");
    assert_eq!(killed.iter().map(|h| h.node).collect::<Vec<_>>(), [1]);
    assert!(
        killed[0]
            .role
            .as_deref()
            .unwrap_or("")
            .starts_with("leader of queue"),
        "{killed:?}"
    );
    let restarted = report.restart.expect("fault(Restart)");
    assert_eq!(restarted.iter().map(|h| h.node).collect::<Vec<_>>(), [1]);
    // Both clients lost node 1: what they did after the kill they did through another node.
    assert!(
        acked.iter().filter(|s| after_kill(s)).count() > 100,
        "the producer's sends after the kill are confirmed"
    );
    assert!(
        (report.sent_at_kill as usize..seen.count.len()).any(|s| seen.count[s] > 0),
        "the consumer reads messages sent after the kill"
    );
    assert_eq!(outcomes.repeated, 0, "one outcome per send");
    assert_eq!(lost, 0, "confirmed messages lost from the quorum queue");
    assert_eq!(seen.foreign, 0);

    broker.0.teardown().unwrap();
    for id in 1..=3u8 {
        let addr = node.address(id);
        assert!(
            std::net::TcpStream::connect(&addr).is_err(),
            "node {id} still listens on {addr}"
        );
    }
    assert!(!node.dir.exists(), "{} was not wiped", node.dir.display());
    eprintln!("whole test: {:?}", t_test.elapsed());
    assert!(
        t_test.elapsed() < Duration::from_secs(120),
        "took {:?}",
        t_test.elapsed()
    );
}

#[test]
fn cluster_options_are_checked() {
    let paths = |o: serde_json::Value| -> Vec<(String, String)> {
        RabbitMq
            .validate(&plan("v", o))
            .into_iter()
            .map(|e| (e.path, e.message))
            .collect()
    };
    assert!(paths(json!({"nodes": 3})).is_empty());
    let e = paths(json!({"nodes": 2}));
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, "options.nodes");
    assert!(
        e[0].1.contains("valid are 1") && e[0].1.contains('3'),
        "{e:?}"
    );
    let e = paths(json!({"mode": "external", "uri": "amqp://127.0.0.1:5672/%2f", "nodes": 3}));
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, "options.nodes");
    let e = paths(json!({"reconnect_timeout_ms": "soon"}));
    assert_eq!(e.len(), 1, "{e:?}");
}
