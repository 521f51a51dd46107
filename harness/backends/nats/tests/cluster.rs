//! The managed 3-node JetStream cluster (`nats.sh --nodes 3`), through the backend traits: a
//! stream of 3 replicas; `kill-broker` SIGKILLs the stream's leader, publishing goes on with a
//! new leader, `restart-broker` brings the node back, and every PubAcked message is delivered.

use std::time::{Duration, Instant};

use mq_backend_nats::{Endpoint, Nats};
use mq_core::delivery::{ConsumerAck, Durability, ProducerAck};
use mq_core::plan::BrokerFault;
use mq_core::{AckSink, Backend, DeliverySink, Outcome, Partition, Seq};
use mq_testkit::{delivery, message, worker_ctx};
use serde_json::json;

const RUN_ID: u32 = 0x5eed_c1a5;

/// Counts each seq's outcomes.
struct Outcomes(Vec<Option<Outcome>>);
impl AckSink for Outcomes {
    fn ack(&mut self, seq: Seq, outcome: Outcome) {
        self.0[seq.0 as usize] = Some(outcome);
    }
}

struct Seen(Vec<u32>);
impl DeliverySink for Seen {
    fn deliver(&mut self, payload: &[u8], _partition: Partition) {
        let e = mq_core::envelope::Envelope::decode(payload, RUN_ID).expect("one of ours");
        self.0[e.seq.0 as usize] += 1;
    }
}

#[test]
fn killing_the_stream_leader_of_a_3_node_cluster_loses_no_pub_acked_message() {
    let d = delivery(
        ProducerAck::Leader,
        ConsumerAck::AfterProcess,
        Durability::Persistent,
    );
    let port = 14234;
    let plan = mq_testkit::plan(
        "nats",
        "cluster",
        d,
        json!({"port": port, "nodes": 3}),
        (50_000, 1, "20s"),
    );
    if !mq_testkit::installed("NATS", Nats.available(&plan)) {
        return;
    }
    let run = tempfile::tempdir().unwrap();
    let mut broker = mq_testkit::broker(&Nats, &plan, run.path());
    let endpoint = broker.0.setup().unwrap();
    let ep: Endpoint = serde_json::from_value(endpoint.clone()).unwrap();
    assert_eq!(ep.replicas, 3);
    let node = ep.node.clone().expect("managed");
    assert_eq!(node.pid_files().len(), 3);

    let n = 50_000u64;
    let ctx = worker_ctx(&plan, &endpoint, vec![Partition(0)], RUN_ID);
    let mut producer = Nats.producer(&ctx).unwrap();
    let mut acks = Outcomes(vec![None; n as usize]);
    let mut buf = mq_core::Outgoing::buffer(100);
    for seq in 0..1000 {
        producer
            .send(&mut message(&mut buf, RUN_ID, seq, 1), &mut acks)
            .unwrap();
    }
    producer.flush(Duration::from_secs(20), &mut acks).unwrap();
    assert!(acks.0[..1000].iter().all(|o| *o == Some(Outcome::Acked)));

    let hit = broker.0.fault(BrokerFault::Kill).unwrap();
    assert_eq!(hit.len(), 1, "{hit:?}");
    assert!((1..=3).contains(&hit[0].node), "{hit:?}");
    assert_eq!(
        hit[0].role.as_deref(),
        Some(&*format!("leader of stream {}", ep.stream))
    );
    // Publishing goes on, in rounds of 100, until 500 more are PubAcked by the new leader.
    let t0 = Instant::now();
    let mut next = 1000;
    let acked_after = |acks: &Outcomes| {
        (acks.0[1000..].iter())
            .filter(|o| **o == Some(Outcome::Acked))
            .count()
    };
    while acked_after(&acks) < 500 && next < n && t0.elapsed() < Duration::from_secs(40) {
        for seq in next..next + 100 {
            producer
                .send(&mut message(&mut buf, RUN_ID, seq, 1), &mut acks)
                .unwrap();
        }
        next += 100;
        let before = acked_after(&acks);
        producer.flush(Duration::from_secs(20), &mut acks).unwrap();
        if acked_after(&acks) == before {
            // Nothing got through (the client reconnecting, a leader being elected): wait a bit.
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let outcomes = |want: Option<Outcome>| {
        acks.0[1000..next as usize]
            .iter()
            .filter(|o| **o == want)
            .count()
    };
    eprintln!(
        "after the kill: failed {}, not sent {}, unknown {}",
        outcomes(Some(Outcome::Failed)),
        outcomes(Some(Outcome::NotSent)),
        outcomes(None)
    );
    eprintln!(
        "after the leader's kill: {} of {} acked in {:?}",
        acked_after(&acks),
        next - 1000,
        t0.elapsed()
    );
    assert!(
        acked_after(&acks) >= 500,
        "publishing went on with a new leader"
    );
    let acked: Vec<u64> = (0..n)
        .filter(|&s| acks.0[s as usize] == Some(Outcome::Acked))
        .collect();
    broker.0.fault(BrokerFault::Restart).unwrap();
    drop(producer);

    let mut consumer = Nats.consumer(&ctx).unwrap();
    let mut seen = Seen(vec![0; n as usize]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.iter().any(|&s| seen.0[s as usize] == 0) && Instant::now() < deadline {
        consumer
            .poll(Duration::from_millis(200), &mut seen)
            .unwrap();
    }
    consumer.close().unwrap();
    let lost: Vec<u64> = acked
        .iter()
        .copied()
        .filter(|&s| seen.0[s as usize] == 0)
        .collect();
    assert!(lost.is_empty(), "PubAcked but never delivered: {lost:?}");

    broker.0.teardown().unwrap();
    for id in 1..=3u16 {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port + id - 1)).is_err(),
            "node {id} still listens"
        );
    }
    assert!(!node.dir.exists(), "{} was not wiped", node.dir.display());
}
