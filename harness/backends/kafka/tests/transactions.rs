//! A transactional Kafka producer against a real broker, driven through the backend traits:
//! nothing is acked before its transaction's commit, each commit is reported as started before
//! its messages are acked (all of them, together), the last partial transaction is committed by
//! `flush`, and a producer fenced by another with its transactional.id ends with an error that
//! says so instead of a panic.

use std::time::Duration;

use mq_backend_kafka::{Kafka, Node};
use mq_core::delivery::{ConsumerAck, Durability, ProducerAck};
use mq_core::{AckSink, Backend, Outcome, Producer, Seq, TxnEvent};
use mq_testkit::{message, worker_ctx, NodeGuard};
use serde_json::json;

const RUN_ID: u32 = 0x5eed_0007;
const PORT: u16 = 19140;

/// What the producer reported, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Txn(TxnEvent, u64, u64),
    Ack(u64, Outcome),
}

#[derive(Default)]
struct Events(Vec<Event>);

impl AckSink for Events {
    fn ack(&mut self, seq: Seq, outcome: Outcome) {
        self.0.push(Event::Ack(seq.0, outcome));
    }
    fn transaction(&mut self, event: TxnEvent, first: Seq, count: u64) {
        self.0.push(Event::Txn(event, first.0, count));
    }
}

/// A committed transaction as the producer reports it: started, then every message acked.
fn committed(first: u64, count: u64) -> Vec<Event> {
    let mut e = vec![Event::Txn(TxnEvent::CommitStarted, first, count)];
    e.extend((first..first + count).map(|s| Event::Ack(s, Outcome::Acked)));
    e
}

#[test]
fn commits_ack_whole_transactions_and_a_fenced_producer_errs() {
    let probe = mq_testkit::plan(
        "kafka",
        "probe",
        mq_testkit::delivery(
            ProducerAck::All,
            ConsumerAck::AfterProcess,
            Durability::Persistent,
        ),
        json!({}),
        (1, 1, "30s"),
    );
    if !mq_testkit::installed("Kafka", Kafka.available(&probe)) {
        return;
    }
    let _node = NodeGuard::start(
        format!("Kafka on {PORT}"),
        |dir| Node::new(PORT, dir),
        Node::run,
        Duration::from_secs(150),
    );
    let run = tempfile::tempdir().unwrap();
    let options = json!({"mode": "external", "bootstrap": format!("127.0.0.1:{PORT}"),
        "transactional": true, "transaction_size": 100, "on_fenced": "fail"});
    let plan = mq_testkit::plan(
        "kafka",
        "txn",
        mq_testkit::delivery(
            ProducerAck::All,
            ConsumerAck::AfterProcess,
            Durability::Persistent,
        ),
        options,
        (250, 2, "30s"),
    );
    let mut broker = mq_testkit::broker(&Kafka, &plan, run.path());
    let endpoint = broker.0.setup().unwrap();
    let ctx = worker_ctx(&plan, &endpoint, vec![], RUN_ID);

    let mut p = Kafka.producer(&ctx).unwrap();
    assert!(p.transactional());
    let mut events = Events::default();
    let mut buf = mq_core::Outgoing::buffer(100);
    let mut send = |p: &mut Box<dyn Producer>, events: &mut Events, seq: u64| {
        p.send(&mut message(&mut buf, RUN_ID, seq, 2), events)
    };
    for seq in 0..99 {
        send(&mut p, &mut events, seq).unwrap();
    }
    p.poll(&mut events).unwrap();
    assert_eq!(events.0, [], "nothing is acked before its commit");
    send(&mut p, &mut events, 99).unwrap();
    assert_eq!(events.0, committed(0, 100));
    for seq in 100..250 {
        send(&mut p, &mut events, seq).unwrap();
    }
    p.flush(Duration::from_secs(30), &mut events).unwrap();
    let mut want = committed(0, 100);
    want.extend(committed(100, 100));
    want.extend(committed(200, 50));
    assert_eq!(
        events.0, want,
        "the last, partial transaction is committed by flush"
    );

    // Another producer with the same transactional.id (same run, variant and index) fences
    // the first: its next commit is a clear error, its messages never acked.
    let mut events = Events::default();
    for seq in 250..260 {
        send(&mut p, &mut events, seq).unwrap();
    }
    let _usurper = Kafka.producer(&ctx).unwrap();
    let err = p
        .flush(Duration::from_secs(30), &mut events)
        .expect_err("a fenced producer cannot commit");
    let text = err.to_string();
    assert!(text.contains("transactional producer"), "{text}");
    assert!(
        text.contains("fenced: a newer producer with the same transactional.id"),
        "{text}"
    );
    assert_eq!(
        events.0,
        [Event::Txn(TxnEvent::CommitStarted, 250, 10)],
        "started, never acked: {text}"
    );

    // With on_fenced = "recreate" (the default) a fenced producer makes itself again: the
    // transaction it had open is lost (started, never acked), the next ones commit.
    let plan = mq_testkit::plan(
        "kafka",
        "txn-recreate",
        mq_testkit::delivery(
            ProducerAck::All,
            ConsumerAck::AfterProcess,
            Durability::Persistent,
        ),
        json!({"mode": "external", "bootstrap": format!("127.0.0.1:{PORT}"),
            "transactional": true, "transaction_size": 10}),
        (20, 2, "30s"),
    );
    let mut broker2 = mq_testkit::broker(&Kafka, &plan, run.path());
    let endpoint = broker2.0.setup().unwrap();
    let ctx = worker_ctx(&plan, &endpoint, vec![], RUN_ID);
    let mut q = Kafka.producer(&ctx).unwrap();
    let mut events = Events::default();
    for seq in 0..5 {
        send(&mut q, &mut events, seq).unwrap();
    }
    drop(Kafka.producer(&ctx).unwrap());
    for seq in 5..20 {
        send(&mut q, &mut events, seq).expect("the fenced producer is made again");
    }
    q.flush(Duration::from_secs(30), &mut events).unwrap();
    let mut want = vec![Event::Txn(TxnEvent::CommitStarted, 0, 10)];
    want.extend(committed(10, 10));
    assert_eq!(
        events.0, want,
        "the fenced transaction lost, the next committed"
    );
    broker2.0.teardown().unwrap();
    broker.0.teardown().unwrap();
}
