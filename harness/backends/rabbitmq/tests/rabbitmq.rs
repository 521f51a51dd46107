//! Real RabbitMQ nodes started through scripts/brokers/rabbitmq.sh, driven through the backend
//! traits only: every seq acked once, delivered once and in order per partition, depth back to
//! 0, queues gone after teardown, and an unreachable broker reported within 15 s.

use std::time::{Duration, Instant};

use lapin::options::{ExchangeDeclareOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use mq_backend_rabbitmq::{Endpoint, Node, RabbitMq};
use mq_core::delivery::{ConsumerAck, Durability, ProducerAck};
use mq_core::plan::VariantPlan;
use mq_core::{run_tag, Backend, Broker, Delivery, Partition};
use mq_testkit::{delivery, worker_ctx, NodeGuard, RoundTrip};
use serde_json::json;

const RUN_ID: u32 = 0x5eed_0001;

/// False (after a loud note) when RabbitMQ is not installed and the caller may skip.
fn rabbitmq_installed() -> bool {
    let probe = plan(
        "probe",
        delivery(
            ProducerAck::Leader,
            ConsumerAck::AfterProcess,
            Durability::Persistent,
        ),
        json!({}),
        1,
        1,
    );
    mq_testkit::installed("RabbitMQ", RabbitMq.available(&probe))
}

/// A node on `port`, wiped on drop.
fn start_node(port: u16) -> NodeGuard<Node> {
    NodeGuard::start(
        format!("RabbitMQ on {port}"),
        |dir| Node::new(port, dir),
        Node::run,
        Duration::from_secs(120),
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
        "rabbitmq",
        name,
        delivery,
        options,
        (messages, partitions, "30s"),
    )
}

/// Produces `n` messages, checks acks and depth (after confirms), consumes them, checks order and
/// depth 0. Returns (produce msgs/s, consume msgs/s).
fn round_trip(
    broker: &mut dyn Broker,
    plan: &VariantPlan,
    endpoint: &serde_json::Value,
) -> (f64, f64) {
    let how = RoundTrip {
        run_id: RUN_ID,
        depth_after_acks: plan.delivery.producer_ack != ProducerAck::None,
        depth_every: Duration::from_millis(100),
        quiet: Duration::from_millis(300),
    };
    mq_testkit::round_trip(&RabbitMq, broker, plan, endpoint, &how)
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
    let _node = start_node(port);
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
        let mut broker = mq_testkit::broker(&RabbitMq, &plan, run.path());
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
    let mut broker = mq_testkit::broker(&RabbitMq, &plan, run.path());
    RabbitMq.available(&plan).unwrap();
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

    let endpoint = json!({"exchange": "x", "queues": ["q"], "address": "amqp://127.0.0.1:1//"});
    let ctx = worker_ctx(&plan, &endpoint, vec![Partition(0)], RUN_ID);
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
