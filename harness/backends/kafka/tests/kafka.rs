//! Real Kafka brokers started through scripts/brokers/kafka.sh, driven through the backend
//! traits only: every seq acked once, delivered once and in order per partition, depth back to
//! 0, topic gone after teardown, and an unreachable cluster reported within 15 s.

use std::time::{Duration, Instant};

use mq_backend_kafka::{Endpoint, Kafka, Node};
use mq_core::delivery::{ConsumerAck, Durability, ProducerAck};
use mq_core::plan::VariantPlan;
use mq_core::{run_tag, Backend, Broker, Delivery, Partition};
use mq_testkit::{worker_ctx, NodeGuard, RoundTrip};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use serde_json::json;

const RUN_ID: u32 = 0x5eed_0002;
const HOW: RoundTrip = RoundTrip {
    run_id: RUN_ID,
    depth_after_acks: true,
    depth_every: Duration::from_millis(200),
    quiet: Duration::from_millis(500),
};

/// False (after a loud note) when Kafka is not installed and the caller may skip.
fn kafka_installed() -> bool {
    let probe = plan(
        "probe",
        delivery(ProducerAck::All, ConsumerAck::AfterProcess),
        json!({}),
        1,
        1,
    );
    mq_testkit::installed("Kafka", Kafka.available(&probe))
}

/// A single node on `port`, wiped on drop.
fn start_node(port: u16) -> NodeGuard<Node> {
    NodeGuard::start(
        format!("Kafka on {port}"),
        |dir| Node::new(port, dir),
        Node::run,
        Duration::from_secs(150),
    )
}

fn plan(
    name: &str,
    delivery: Delivery,
    options: serde_json::Value,
    messages: u64,
    partitions: u32,
) -> VariantPlan {
    mq_testkit::plan(
        "kafka",
        name,
        delivery,
        options,
        (messages, partitions, "30s"),
    )
}

fn delivery(producer_ack: ProducerAck, consumer_ack: ConsumerAck) -> Delivery {
    mq_testkit::delivery(producer_ack, consumer_ack, Durability::Persistent)
}

fn wait_depth(broker: &mut dyn Broker, want: u64, limit: Duration) -> Option<u64> {
    mq_testkit::wait_depth(broker, want, limit, HOW.depth_every)
}

/// Produces, checks acks and depth, consumes, checks order and depth 0. Returns msgs/s both ways.
fn round_trip(
    broker: &mut dyn Broker,
    plan: &VariantPlan,
    endpoint: &serde_json::Value,
) -> (f64, f64) {
    mq_testkit::round_trip(&Kafka, broker, plan, endpoint, &HOW)
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
    let _node = start_node(port);
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
        let mut broker = mq_testkit::broker(&Kafka, &plan, run.path());
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
    let mut broker = mq_testkit::broker(&Kafka, &plan, run.path());
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
    let endpoint = json!({"topic": "t", "group": "g", "bootstrap": "127.0.0.1:1", "partitions": 1});
    let ctx = worker_ctx(&plan, &endpoint, vec![Partition(0)], RUN_ID);
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
