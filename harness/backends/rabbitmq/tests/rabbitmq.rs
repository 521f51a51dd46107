//! Real RabbitMQ nodes started through scripts/brokers/rabbitmq.sh, driven through the backend
//! traits only: every seq acked once, delivered once and in order per partition, depth back to
//! 0, queues gone after teardown, and an unreachable broker reported within 15 s.

use std::path::Path;
use std::time::{Duration, Instant};

use lapin::options::{ExchangeDeclareOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use mq_backend_rabbitmq::{Endpoint, Node, RabbitMq};
use mq_core::envelope::Envelope;
use mq_core::scenario::{VariantPlan, Workload};
use mq_core::settings::{ConsumerAck, Durability, ProducerAck};
use mq_core::{
    run_tag, AckSink, Backend, Broker, Delivery, DeliverySink, Key, Outcome, Outgoing, Partition,
    ProducerId, Seq, WorkerCtx,
};
use serde_json::json;

const RUN_ID: u32 = 0x5eed_0001;

/// False (after a loud note) when RabbitMQ is not installed and the caller may skip.
fn rabbitmq_installed() -> bool {
    if Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server").exists() {
        return true;
    }
    if std::env::var_os("MQ_BENCH_REQUIRE_BROKERS").is_some() {
        panic!("MQ_BENCH_REQUIRE_BROKERS is set but RabbitMQ is not installed: run scripts/brokers/rabbitmq.sh install");
    }
    eprintln!(
        "\n!!!!! SKIPPED: RabbitMQ is not installed (scripts/brokers/rabbitmq.sh install) !!!!!\n"
    );
    false
}

/// A node started through the script; wiped (stopped, data deleted) on drop, even on failure.
struct NodeGuard {
    node: Node,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl NodeGuard {
    fn start(port: u16) -> NodeGuard {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::new(port, dir.path().join("node"));
        let log = dir.path().join("script.log");
        node.run("start", Duration::from_secs(120), &log)
            .unwrap_or_else(|e| panic!("starting RabbitMQ on {port}: {e}"));
        NodeGuard {
            node,
            log,
            _dir: dir,
        }
    }
}

impl Drop for NodeGuard {
    fn drop(&mut self) {
        if let Err(e) = self.node.run("wipe", Duration::from_secs(90), &self.log) {
            eprintln!("wiping the test node: {e}");
        }
    }
}

/// Calls teardown on drop so a failing test leaves no queues behind.
struct BrokerGuard(Box<dyn Broker>);

impl Drop for BrokerGuard {
    fn drop(&mut self) {
        let _ = self.0.teardown();
    }
}

fn plan(
    name: &str,
    delivery: Delivery,
    options: serde_json::Value,
    messages: u64,
    partitions: u32,
) -> VariantPlan {
    let workload: Workload = serde_json::from_value(json!({
        "messages": messages, "partitions": partitions, "message_size": 100, "ack_timeout": "30s"
    }))
    .unwrap();
    VariantPlan::new(name, "rabbitmq", delivery, options, workload)
}

fn delivery(
    producer_ack: ProducerAck,
    consumer_ack: ConsumerAck,
    durability: Durability,
) -> Delivery {
    Delivery {
        producer_ack,
        consumer_ack,
        durability,
    }
}

struct Acks(Vec<u8>);
impl AckSink for Acks {
    fn ack(&mut self, seq: Seq, outcome: Outcome) {
        assert_eq!(outcome, Outcome::Acked, "seq {} failed", seq.0);
        self.0[seq.0 as usize] += 1;
    }
}

struct Sink {
    seen: Vec<u8>,
    last: Vec<Option<u64>>,
    partitions: u32,
}
impl DeliverySink for Sink {
    fn deliver(&mut self, payload: &[u8], partition: Partition) {
        let e = Envelope::decode(payload, RUN_ID).expect("one of our messages");
        assert_eq!(
            e.key.partition(self.partitions),
            partition,
            "seq {} came from the wrong queue",
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

fn wait_depth(broker: &mut dyn Broker, want: u64, limit: Duration) -> u64 {
    let deadline = Instant::now() + limit;
    loop {
        let d = broker.depth().map(|d| d.messages);
        if d == Some(want) || Instant::now() >= deadline {
            return d.unwrap_or(u64::MAX);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Produces `n` messages, checks acks and depth, consumes them, checks order and depth 0.
/// Returns (produce msgs/s, consume msgs/s).
fn round_trip(
    broker: &mut dyn Broker,
    plan: &VariantPlan,
    endpoint: &serde_json::Value,
) -> (f64, f64) {
    let n = plan.workload.messages.unwrap();
    let parts = plan.workload.partitions;
    let ctx = |partitions: Vec<Partition>| WorkerCtx {
        plan: plan.clone(),
        endpoint: endpoint.clone(),
        index: 0,
        partitions,
        run_id: RUN_ID,
    };
    let all: Vec<Partition> = (0..parts).map(Partition).collect();

    let mut producer = RabbitMq.producer(&ctx(all.clone())).unwrap();
    let mut acks = Acks(vec![0; n as usize]);
    let mut payload = vec![0u8; plan.workload.message_size];
    let t0 = Instant::now();
    for seq in 0..n {
        let key = Key((seq % u64::from(parts)) as u32);
        Envelope {
            run_id: RUN_ID,
            producer: ProducerId(0),
            key,
            seq: Seq(seq),
            send_ns: 0,
        }
        .encode(&mut payload);
        let msg = Outgoing {
            seq: Seq(seq),
            key,
            partition: key.partition(parts),
            payload: &payload,
        };
        producer.send(&msg, &mut acks).unwrap();
    }
    producer.flush(Duration::from_secs(30), &mut acks).unwrap();
    let produce_rate = n as f64 / t0.elapsed().as_secs_f64();
    drop(producer);
    let not_once: Vec<_> = acks
        .0
        .iter()
        .enumerate()
        .filter(|(_, &c)| c != 1)
        .take(5)
        .collect();
    assert!(
        not_once.is_empty(),
        "{}: seqs not acked exactly once: {not_once:?}",
        plan.name
    );

    if plan.delivery.producer_ack != ProducerAck::None {
        assert_eq!(
            wait_depth(broker, n, Duration::from_secs(10)),
            n,
            "{}: depth after confirms",
            plan.name
        );
    }

    let mut consumer = RabbitMq.consumer(&ctx(all)).unwrap();
    let mut sink = Sink {
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
        consumer
            .poll(Duration::from_millis(300), &mut sink)
            .unwrap(),
        0,
        "{}: extra deliveries",
        plan.name
    );
    consumer.close().unwrap();
    drop(consumer);
    assert_eq!(taken, n, "{}: deliveries", plan.name);
    let not_once: Vec<_> = sink
        .seen
        .iter()
        .enumerate()
        .filter(|(_, &c)| c != 1)
        .take(5)
        .collect();
    assert!(
        not_once.is_empty(),
        "{}: seqs not delivered exactly once: {not_once:?}",
        plan.name
    );
    assert_eq!(
        wait_depth(broker, 0, Duration::from_secs(10)),
        0,
        "{}: depth after consuming",
        plan.name
    );
    (produce_rate, consume_rate)
}

/// Whether `name` exists on the node, by passive declare (queue or exchange).
fn exists(uri: &str, name: &str, queue: bool) -> bool {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = Connection::connect(uri, ConnectionProperties::default())
            .await
            .unwrap();
        let ch = c.create_channel().await.unwrap();
        let r = if queue {
            ch.queue_declare(
                name.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map(|_| ())
        } else {
            ch.exchange_declare(
                name.into(),
                ExchangeKind::Direct,
                ExchangeDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
        };
        let _ = c.close(200, "bye".into()).await;
        match r {
            Ok(()) => true,
            Err(e) if e.to_string().contains("NOT_FOUND") || e.to_string().contains("404") => false,
            Err(e) => panic!("passive declare of {name}: {e}"),
        }
    })
}

#[test]
fn external_round_trips_with_every_setting_and_teardown_removes_queues() {
    if !rabbitmq_installed() {
        return;
    }
    let port = 5682;
    let _node = NodeGuard::start(port);
    let uri = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
    let run = tempfile::tempdir().unwrap();
    let cases = [
        (
            "confirms-manual-persistent",
            delivery(
                ProducerAck::Leader,
                ConsumerAck::AfterProcess,
                Durability::Persistent,
            ),
            "classic",
        ),
        (
            "none-auto-memory",
            delivery(ProducerAck::None, ConsumerAck::Auto, Durability::Memory),
            "classic",
        ),
        (
            "all-manual-quorum",
            delivery(
                ProducerAck::All,
                ConsumerAck::AfterProcess,
                Durability::Persistent,
            ),
            "quorum",
        ),
        (
            "all-tx-persistent",
            delivery(
                ProducerAck::All,
                ConsumerAck::AfterProcess,
                Durability::Persistent,
            ),
            "classic",
        ),
    ];
    for (name, d, queue_type) in cases {
        let mut options = json!({"mode": "external", "uri": uri, "queue_type": queue_type});
        if name.contains("-tx-") {
            // Transactions instead of confirms: each tx.commit acknowledges its batch.
            options["tx"] = json!(true);
            options["tx_batch"] = json!(64);
        }
        let plan = plan(name, d, options, 10_000, 4);
        assert!(
            RabbitMq.validate(&plan).is_empty(),
            "{:?}",
            RabbitMq.validate(&plan)
        );
        let mut broker = BrokerGuard(
            RabbitMq
                .broker(&plan, run.path(), &run_tag(run.path()))
                .unwrap(),
        );
        let endpoint = broker.0.setup().unwrap();
        let ep: Endpoint = serde_json::from_value(endpoint.clone()).unwrap();
        assert!(
            !endpoint.to_string().contains("guest"),
            "credentials leaked into the endpoint: {endpoint}"
        );
        assert_eq!(ep.queues.len(), 4);
        assert!(ep.queues[0].starts_with(&format!("mqb-{}-{name}-", run_tag(run.path()))));
        assert!(ep.queues.iter().all(|q| exists(&uri, q, true)));
        assert_eq!(broker.0.depth().map(|d| d.messages), Some(0));

        let (p, c) = round_trip(broker.0.as_mut(), &plan, &endpoint);
        eprintln!(
            "{name}: produced {p:.0} msgs/s, consumed {c:.0} msgs/s (10000 x 100 B, 4 queues)"
        );

        broker.0.teardown().unwrap();
        broker.0.teardown().unwrap(); // twice is fine
        for q in &ep.queues {
            assert!(!exists(&uri, q, true), "{q} still exists after teardown");
        }
        assert!(
            !exists(&uri, &ep.exchange, false),
            "{} still exists after teardown",
            ep.exchange
        );
    }
}

#[test]
fn managed_node_is_started_and_stopped_by_the_broker() {
    if !rabbitmq_installed() {
        return;
    }
    let port = 5692;
    let run = tempfile::tempdir().unwrap();
    let plan = plan(
        "managed",
        delivery(
            ProducerAck::Leader,
            ConsumerAck::AfterProcess,
            Durability::Persistent,
        ),
        json!({"port": port}),
        1000,
        2,
    );
    assert!(
        RabbitMq.validate(&plan).is_empty(),
        "{:?}",
        RabbitMq.validate(&plan)
    );
    RabbitMq.available(&plan).unwrap();
    let mut broker = BrokerGuard(
        RabbitMq
            .broker(&plan, run.path(), &run_tag(run.path()))
            .unwrap(),
    );
    let endpoint = broker.0.setup().unwrap();
    let ep: Endpoint = serde_json::from_value(endpoint.clone()).unwrap();
    let node = ep.node.clone().expect("managed endpoint names its node");
    assert_eq!(node.port, port);
    assert!(broker
        .0
        .versions()
        .iter()
        .any(|(k, _)| k == "rabbitmq-server"));
    round_trip(broker.0.as_mut(), &plan, &endpoint);
    broker.0.teardown().unwrap();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the managed node still listens on {port}"
    );
    assert!(
        !node.dir.exists(),
        "the managed node's data dir {} was not wiped",
        node.dir.display()
    );
}

#[test]
fn unreachable_broker_fails_within_15s_naming_the_address() {
    // Nothing listens on port 1 of 127.0.0.1.
    let run = tempfile::tempdir().unwrap();
    let d = delivery(
        ProducerAck::Leader,
        ConsumerAck::AfterProcess,
        Durability::Persistent,
    );
    let plan = plan(
        "unreachable",
        d,
        json!({"mode": "external", "uri": "amqp://127.0.0.1:1/%2f"}),
        10,
        1,
    );
    let t0 = Instant::now();
    let mut broker = RabbitMq
        .broker(&plan, run.path(), &run_tag(run.path()))
        .unwrap();
    let err = broker.setup().unwrap_err().to_string();
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "took {:?}",
        t0.elapsed()
    );
    assert!(
        err.contains("rabbitmq") && err.contains("127.0.0.1:1"),
        "{err}"
    );
    broker.teardown().unwrap();

    let ctx = WorkerCtx {
        plan: plan.clone(),
        endpoint: json!({"exchange": "x", "queues": ["q"], "address": "amqp://127.0.0.1:1//"}),
        index: 0,
        partitions: vec![Partition(0)],
        run_id: RUN_ID,
    };
    let t0 = Instant::now();
    let err = RabbitMq
        .producer(&ctx)
        .err()
        .expect("no broker")
        .to_string();
    assert!(
        t0.elapsed() < Duration::from_secs(15) && err.contains("127.0.0.1:1"),
        "{err}"
    );
    let err = RabbitMq
        .consumer(&ctx)
        .err()
        .expect("no broker")
        .to_string();
    assert!(err.contains("127.0.0.1:1"), "{err}");
}

#[test]
fn validation_names_the_field_and_what_is_valid() {
    let d = delivery(ProducerAck::All, ConsumerAck::Auto, Durability::Memory);
    let p = plan(
        "v",
        d,
        json!({"queue_type": "quorum", "port": 70000}),
        10,
        1,
    );
    let errs = RabbitMq.validate(&p);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].path, "options.port");

    let p = plan("v", d, json!({"queue_type": "quorum"}), 10, 1);
    let tx = plan(
        "v",
        delivery(
            ProducerAck::Leader,
            ConsumerAck::Auto,
            Durability::Persistent,
        ),
        json!({"tx": true}),
        10,
        1,
    );
    let e = RabbitMq.validate(&tx);
    assert!(
        e.iter()
            .any(|e| e.path == "options.tx" && e.message.contains("producer_ack = \"all\"")),
        "{e:?}"
    );
    let paths: Vec<_> = RabbitMq.validate(&p).into_iter().map(|e| e.path).collect();
    assert_eq!(paths, ["durability", "producer_ack"]);

    let p = plan("v", d, json!({"prefetch_count": 3}), 10, 1);
    let errs = RabbitMq.validate(&p);
    assert_eq!(errs.len(), 1);
    assert!(errs[0].path.starts_with("options"), "{errs:?}");
    assert!(errs[0].message.contains("prefetch_count"), "{errs:?}");

    let d = delivery(
        ProducerAck::Leader,
        ConsumerAck::Auto,
        Durability::Persistent,
    );
    let p = plan(
        "v",
        d,
        json!({"mode": "external", "uri": "amqps://h"}),
        10,
        1,
    );
    let errs = RabbitMq.validate(&p);
    if std::env::var_os(mq_backend_rabbitmq::URI_ENV).is_none() {
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].path, "options.uri");
    }
}
