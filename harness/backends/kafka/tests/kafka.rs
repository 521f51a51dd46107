//! Real Kafka brokers started through scripts/brokers/kafka.sh, driven through the backend
//! traits only: every seq acked once, delivered once and in order per partition, depth back to
//! 0, topic gone after teardown, and an unreachable cluster reported within 15 s.

use std::time::{Duration, Instant};

use mq_backend_kafka::{Endpoint, Kafka, Node};
use mq_core::envelope::Envelope;
use mq_core::scenario::{VariantPlan, Workload};
use mq_core::settings::{ConsumerAck, Durability, ProducerAck};
use mq_core::{
    run_tag, AckSink, Backend, Broker, Delivery, DeliverySink, Key, Outcome, Outgoing, Partition,
    ProducerId, Seq, WorkerCtx,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use serde_json::json;

const RUN_ID: u32 = 0x5eed_0002;

/// False (after a loud note) when Kafka is not installed and the caller may skip.
fn kafka_installed() -> bool {
    let probe = plan(
        "probe",
        delivery(ProducerAck::All, ConsumerAck::AfterProcess),
        json!({}),
        1,
        1,
    );
    let Err(u) = Kafka.available(&probe) else {
        return true;
    };
    if std::env::var_os("MQ_BENCH_REQUIRE_BROKERS").is_some() {
        panic!(
            "MQ_BENCH_REQUIRE_BROKERS is set but Kafka is not available: {} (fix: {:?})",
            u.reason, u.fix
        );
    }
    eprintln!(
        "\n!!!!! SKIPPED: Kafka is not available: {} (fix: {:?}) !!!!!\n",
        u.reason, u.fix
    );
    false
}

/// A broker started through the script; wiped (stopped, data deleted) on drop, even on failure.
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
        let guard = NodeGuard {
            node,
            log,
            _dir: dir,
        };
        guard
            .node
            .run("start", Duration::from_secs(150), &guard.log)
            .unwrap_or_else(|e| panic!("starting Kafka on {port}: {e}"));
        guard
    }
}

impl Drop for NodeGuard {
    fn drop(&mut self) {
        if let Err(e) = self.node.run("wipe", Duration::from_secs(90), &self.log) {
            eprintln!("wiping the test broker: {e}");
        }
    }
}

/// Calls teardown on drop so a failing test leaves no topic behind.
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
    VariantPlan::new(name, "kafka", delivery, options, workload)
}

fn delivery(producer_ack: ProducerAck, consumer_ack: ConsumerAck) -> Delivery {
    Delivery {
        producer_ack,
        consumer_ack,
        durability: Durability::Persistent,
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

fn wait_depth(broker: &mut dyn Broker, want: u64, limit: Duration) -> Option<u64> {
    let deadline = Instant::now() + limit;
    loop {
        let d = broker.depth().map(|d| d.messages);
        if d == Some(want) || Instant::now() >= deadline {
            return d;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Produces, checks acks and depth, consumes, checks order and depth 0. Returns msgs/s both ways.
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

    let mut producer = Kafka.producer(&ctx(all.clone())).unwrap();
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
    assert_eq!(
        wait_depth(broker, n, Duration::from_secs(10)),
        Some(n),
        "{}: depth after acks",
        plan.name
    );

    let mut consumer = Kafka.consumer(&ctx(all)).unwrap();
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
    assert_eq!(
        consumer
            .poll(Duration::from_millis(500), &mut sink)
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
        Some(0),
        "{}: depth after consuming",
        plan.name
    );
    (produce_rate, consume_rate)
}

fn topics(bootstrap: &str) -> Vec<String> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let md = c.fetch_metadata(None, Duration::from_secs(10)).unwrap();
    md.topics().iter().map(|t| t.name().to_owned()).collect()
}

#[test]
fn external_round_trips_with_every_setting_and_teardown_removes_the_topic() {
    if !kafka_installed() {
        return;
    }
    let port = 9492;
    let _node = NodeGuard::start(port);
    let bootstrap = format!("127.0.0.1:{port}");
    let run = tempfile::tempdir().unwrap();
    let cases = [
        (
            "all-idempotent-lz4",
            delivery(ProducerAck::All, ConsumerAck::AfterProcess),
            json!({"idempotence": true, "compression": "lz4", "producer_config": {"queue.buffering.max.messages": 20000}}),
        ),
        (
            "leader-auto",
            delivery(ProducerAck::Leader, ConsumerAck::Auto),
            json!({"linger_ms": 2}),
        ),
        (
            "none-after-process",
            delivery(ProducerAck::None, ConsumerAck::AfterProcess),
            json!({"commit_every": 100}),
        ),
    ];
    for (name, d, mut options) in cases {
        options["mode"] = json!("external");
        options["bootstrap"] = json!(bootstrap);
        let plan = plan(name, d, options, 10_000, 4);
        assert!(
            Kafka.validate(&plan).is_empty(),
            "{:?}",
            Kafka.validate(&plan)
        );
        let mut broker = BrokerGuard(
            Kafka
                .broker(&plan, run.path(), &run_tag(run.path()))
                .unwrap(),
        );
        let endpoint = broker.0.setup().unwrap();
        let ep: Endpoint = serde_json::from_value(endpoint.clone()).unwrap();
        assert_eq!(ep.topic, format!("mqb-{}-{name}", run_tag(run.path())));
        assert!(topics(&bootstrap).contains(&ep.topic));
        // The first group lookup creates __consumer_offsets: depth may need a moment.
        assert_eq!(
            wait_depth(broker.0.as_mut(), 0, Duration::from_secs(20)),
            Some(0)
        );

        let (p, c) = round_trip(broker.0.as_mut(), &plan, &endpoint);
        eprintln!(
            "{name}: produced {p:.0} msgs/s, consumed {c:.0} msgs/s (10000 x 100 B, 4 partitions)"
        );

        broker.0.teardown().unwrap();
        broker.0.teardown().unwrap(); // twice is fine
        let deadline = Instant::now() + Duration::from_secs(15);
        while topics(&bootstrap).contains(&ep.topic) {
            assert!(
                Instant::now() < deadline,
                "topic {} still exists after teardown",
                ep.topic
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn managed_broker_is_started_and_stopped_by_the_broker() {
    if !kafka_installed() {
        return;
    }
    let port = 9592;
    let run = tempfile::tempdir().unwrap();
    let plan = plan(
        "managed",
        delivery(ProducerAck::All, ConsumerAck::AfterProcess),
        json!({"port": port}),
        1000,
        2,
    );
    assert!(
        Kafka.validate(&plan).is_empty(),
        "{:?}",
        Kafka.validate(&plan)
    );
    let mut broker = BrokerGuard(
        Kafka
            .broker(&plan, run.path(), &run_tag(run.path()))
            .unwrap(),
    );
    let endpoint = broker.0.setup().unwrap();
    let ep: Endpoint = serde_json::from_value(endpoint.clone()).unwrap();
    let node = ep.node.clone().expect("managed endpoint names its broker");
    assert_eq!(node.port, port);
    assert!(broker.0.versions().iter().any(|(k, _)| k == "librdkafka"));
    round_trip(broker.0.as_mut(), &plan, &endpoint);
    broker.0.teardown().unwrap();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the managed broker still listens on {port}"
    );
    assert!(
        !node.dir.exists(),
        "the managed broker's data dir {} was not wiped",
        node.dir.display()
    );
}

#[test]
fn unreachable_cluster_fails_within_15s_naming_the_address() {
    // Nothing listens on port 1 of 127.0.0.1.
    let run = tempfile::tempdir().unwrap();
    let d = delivery(ProducerAck::All, ConsumerAck::AfterProcess);
    let plan = plan(
        "unreachable",
        d,
        json!({"mode": "external", "bootstrap": "127.0.0.1:1"}),
        10,
        1,
    );
    let ctx = WorkerCtx {
        plan: plan.clone(),
        endpoint: json!({"topic": "t", "group": "g", "bootstrap": "127.0.0.1:1", "partitions": 1}),
        index: 0,
        partitions: vec![Partition(0)],
        run_id: RUN_ID,
    };
    let workers = std::thread::spawn({
        let ctx = ctx.clone();
        move || {
            let t0 = Instant::now();
            let p = Kafka.producer(&ctx).err().expect("no cluster").to_string();
            let c = Kafka.consumer(&ctx).err().expect("no cluster").to_string();
            (p, c, t0.elapsed())
        }
    });
    let t0 = Instant::now();
    let mut broker = Kafka
        .broker(&plan, run.path(), &run_tag(run.path()))
        .unwrap();
    let err = broker.setup().unwrap_err().to_string();
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "took {:?}",
        t0.elapsed()
    );
    assert!(
        err.contains("kafka") && err.contains("127.0.0.1:1"),
        "{err}"
    );
    broker.teardown().unwrap();
    let (p, c, took) = workers.join().unwrap();
    assert!(
        took < Duration::from_secs(30),
        "producer + consumer took {took:?}"
    );
    assert!(
        p.contains("127.0.0.1:1") && c.contains("127.0.0.1:1"),
        "{p} / {c}"
    );
}

#[test]
fn validation_names_the_field_and_what_is_valid() {
    let p = plan(
        "v",
        delivery(ProducerAck::Leader, ConsumerAck::Auto),
        json!({"idempotence": true}),
        10,
        1,
    );
    let errs = Kafka.validate(&p);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].path, "options.idempotence");
    assert!(
        errs[0].message.contains("producer_ack = \"all\""),
        "{errs:?}"
    );

    let d = delivery(ProducerAck::All, ConsumerAck::Auto);
    let p = plan(
        "v",
        d,
        json!({"replication_factor": 3, "producer_config": {"no.such.property": 1}}),
        10,
        1,
    );
    let paths: Vec<_> = Kafka.validate(&p).into_iter().map(|e| e.path).collect();
    assert_eq!(
        paths,
        ["options.replication_factor", "options.producer_config"]
    );

    let p = plan("v", d, json!({"consumer_config": {"group.id": "x"}}), 10, 1);
    let paths: Vec<_> = Kafka.validate(&p).into_iter().map(|e| e.path).collect();
    assert_eq!(paths, ["options.consumer_config.group.id"]);

    let p = plan("v", d, json!({"mode": "external"}), 10, 1);
    let paths: Vec<_> = Kafka.validate(&p).into_iter().map(|e| e.path).collect();
    assert_eq!(paths, ["options.bootstrap"]);

    let p = plan("v", d, json!({"lingerms": 3}), 10, 1);
    let errs = Kafka.validate(&p);
    assert!(
        errs.len() == 1
            && errs[0].path.starts_with("options")
            && errs[0].message.contains("lingerms"),
        "{errs:?}"
    );

    // Kafka cannot keep messages in memory only: the generic check refuses durability = memory.
    assert!(Kafka
        .info()
        .durability
        .iter()
        .all(|(d, _)| *d == Durability::Persistent));
}
