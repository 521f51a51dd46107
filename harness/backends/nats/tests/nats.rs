//! A real nats-server (JetStream) started through scripts/brokers/nats.sh, driven through the
//! backend traits only: every seq acked once, delivered once and in order per partition with
//! every setting, depth back to 0, the stream gone after teardown, and an unreachable server
//! reported within 15 s.

use std::time::{Duration, Instant};

use mq_backend_nats::{Endpoint, Nats, Node};
use mq_core::delivery::{ConsumerAck, Durability, ProducerAck};
use mq_core::plan::VariantPlan;
use mq_core::{run_tag, Backend, Delivery, Partition};
use mq_testkit::{delivery, worker_ctx, NodeGuard, RoundTrip};
use serde_json::json;

const RUN_ID: u32 = 0x5eed_0a75;

/// False (after a loud note) when nats-server is not installed and the caller may skip.
fn nats_installed() -> bool {
    let probe = plan("probe", defaults(), json!({}), 1, 1);
    mq_testkit::installed("NATS", Nats.available(&probe))
}

fn defaults() -> Delivery {
    delivery(
        ProducerAck::Leader,
        ConsumerAck::AfterProcess,
        Durability::Persistent,
    )
}

/// A server on `port`, wiped on drop.
fn start_server(port: u16) -> NodeGuard<Node> {
    NodeGuard::start(
        format!("NATS on {port}"),
        |dir| Node::new(port, dir, None),
        Node::run,
        Duration::from_secs(60),
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
        "nats",
        name,
        delivery,
        options,
        (messages, partitions, "30s"),
    )
}

/// The server's own JetStream report (monitoring endpoint `/jsz`, streams listed).
fn jsz(port: u16) -> String {
    let url = format!(
        "http://127.0.0.1:{}/jsz?accounts=true&streams=true",
        port + 4000
    );
    let out = std::process::Command::new("curl")
        .args(["-sf", "--max-time", "5", &url])
        .output()
        .expect("running curl");
    assert!(out.status.success(), "curl {url} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether the server on `port` has a stream named `name`.
fn stream_exists(port: u16, name: &str) -> bool {
    jsz(port).contains(&format!("\"{name}\""))
}

#[test]
fn external_round_trips_with_every_setting_and_teardown_removes_the_stream() {
    if !nats_installed() {
        return;
    }
    let port = 14232;
    let _server = start_server(port);
    let url = format!("nats://127.0.0.1:{port}");
    let run = tempfile::tempdir().unwrap();
    let cases = [
        ("pubAck-explicit-file", defaults()),
        (
            "core-none-memory",
            delivery(ProducerAck::None, ConsumerAck::Auto, Durability::Memory),
        ),
        (
            "pubAck-none-file",
            delivery(
                ProducerAck::Leader,
                ConsumerAck::Auto,
                Durability::Persistent,
            ),
        ),
        (
            "core-explicit-file",
            delivery(
                ProducerAck::None,
                ConsumerAck::AfterProcess,
                Durability::Persistent,
            ),
        ),
        (
            "pubAck-explicit-memory",
            delivery(
                ProducerAck::Leader,
                ConsumerAck::AfterProcess,
                Durability::Memory,
            ),
        ),
    ];
    for (name, d) in cases {
        let plan = plan(name, d, json!({"mode": "external", "url": url}), 10_000, 4);
        let mut broker = mq_testkit::broker(&Nats, &plan, run.path());
        let endpoint = broker.0.setup().unwrap();
        let ep: Endpoint = serde_json::from_value(endpoint.clone()).unwrap();
        assert!(ep.stream.starts_with("mqb-"), "{}", ep.stream);
        assert_eq!(ep.file, d.durability == Durability::Persistent);
        assert!(stream_exists(port, &ep.stream), "{} not created", ep.stream);
        assert_eq!(broker.0.depth().map(|d| d.messages), Some(0));

        let how = RoundTrip {
            run_id: RUN_ID,
            // Core publishes are stored once the server has read them: asked for after the flush.
            depth_after_acks: true,
            depth_every: Duration::from_millis(100),
            quiet: Duration::from_millis(300),
        };
        let (p, c) = mq_testkit::round_trip(&Nats, broker.0.as_mut(), &plan, &endpoint, &how);
        eprintln!(
            "{name}: produced {p:.0} msgs/s, consumed {c:.0} msgs/s (10000 x 100 B, 4 subjects)"
        );

        broker.0.teardown().unwrap();
        broker.0.teardown().unwrap(); // twice is fine
        assert!(
            !stream_exists(port, &ep.stream),
            "{} still exists after teardown",
            ep.stream
        );
    }
}

#[test]
fn managed_server_is_started_with_fsync_always_and_wiped_by_the_broker() {
    if !nats_installed() {
        return;
    }
    let port = 14242;
    let run = tempfile::tempdir().unwrap();
    let d = delivery(
        ProducerAck::All,
        ConsumerAck::AfterProcess,
        Durability::Persistent,
    );
    let plan = plan("managed", d, json!({"port": port}), 1000, 2);
    let mut broker = mq_testkit::broker(&Nats, &plan, run.path());
    let endpoint = broker.0.setup().unwrap();
    let ep: Endpoint = serde_json::from_value(endpoint.clone()).unwrap();
    let node = ep
        .node
        .clone()
        .expect("a managed endpoint names its server");
    assert_eq!((node.port, node.sync.as_deref()), (port, Some("always")));
    let conf = std::fs::read_to_string(node.dir.join("nats.conf")).unwrap();
    assert!(conf.contains("sync_interval: always"), "{conf}");
    let js = jsz(port);
    assert!(
        js.contains("\"sync_always\": true"),
        "the server says: {js}"
    );
    assert!(broker
        .0
        .versions()
        .iter()
        .any(|(k, v)| k == "nats-server" && v.starts_with('v')));
    let how = RoundTrip {
        run_id: RUN_ID,
        depth_after_acks: true,
        depth_every: Duration::from_millis(100),
        quiet: Duration::from_millis(300),
    };
    mq_testkit::round_trip(&Nats, broker.0.as_mut(), &plan, &endpoint, &how);
    broker.0.teardown().unwrap();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the managed server still listens on {port}"
    );
    assert!(!node.dir.exists(), "{} was not wiped", node.dir.display());
}

#[test]
fn unreachable_server_fails_within_15s_naming_the_address() {
    let run = tempfile::tempdir().unwrap();
    let plan = plan(
        "unreachable",
        defaults(),
        json!({"mode": "external", "url": "nats://127.0.0.1:1"}),
        10,
        1,
    );
    let t0 = Instant::now();
    let mut broker = Nats
        .broker(&plan, run.path(), &run_tag(run.path()))
        .unwrap();
    let err = broker.setup().unwrap_err().to_string();
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "took {:?}",
        t0.elapsed()
    );
    assert!(err.contains("nats") && err.contains("127.0.0.1:1"), "{err}");
    broker.teardown().unwrap();

    let endpoint = json!({"stream": "s", "file": true, "explicit": true, "ack_wait_ms": 1000,
        "max_ack_pending": 10, "partitions": 1, "address": "nats://127.0.0.1:1"});
    let ctx = worker_ctx(&plan, &endpoint, vec![Partition(0)], RUN_ID);
    let err = Nats.producer(&ctx).err().expect("no server").to_string();
    assert!(err.contains("127.0.0.1:1"), "{err}");
    let err = Nats.consumer(&ctx).err().expect("no server").to_string();
    assert!(err.contains("127.0.0.1:1"), "{err}");
}

#[test]
fn validation_names_the_field_and_what_is_valid() {
    let all_memory = delivery(ProducerAck::All, ConsumerAck::Auto, Durability::Memory);
    let errs = Nats.validate(&plan("v", all_memory, json!({}), 10, 1));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].path, "producer_ack");
    assert!(errs[0].message.contains("persistent"), "{errs:?}");

    let errs = Nats.validate(&plan("v", defaults(), json!({"batch_size": 3}), 10, 1));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].message.contains("batch_size"), "{errs:?}");

    if std::env::var_os(mq_backend_nats::URL_ENV).is_none() {
        let ext = |url: &str| json!({"mode": "external", "url": url});
        let errs = Nats.validate(&plan("v", defaults(), ext("tls://h:1"), 10, 1));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].path, "options.url");
        let all = delivery(ProducerAck::All, ConsumerAck::Auto, Durability::Persistent);
        let errs = Nats.validate(&plan("v", all, ext("nats://h:1"), 10, 1));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].message.contains("sync_interval: always"),
            "{errs:?}"
        );
        let errs = Nats.validate(&plan("v", defaults(), json!({"mode": "external"}), 10, 1));
        assert_eq!(errs[0].path, "options.url");
    }
    let errs = Nats.validate(&plan("v", defaults(), json!({"nodes": 2}), 10, 1));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].path, "options.nodes");
    assert!(errs[0].message.contains("valid are 1"), "{errs:?}");
    let errs = Nats.validate(&plan("v", defaults(), json!({"url": "nats://h:1"}), 10, 1));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].path, "options.url");
}
