//! Adding a backend is one module plus one registry line. This file is the proof: `mem`, a
//! backend whose "broker" is a queue in this process, is declared below, registered with one
//! line, validated by the scenario parser, run by the worker loops in threads, and checked by
//! the checker, which finds exactly the messages it was built to drop.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use mq_core::spec::{Control, RoleSpec, WorkerSpec};
use mq_core::{Partition, Registry, WorkerCtx};
use mq_runner::worker::{play, Counters};

/// The whole backend.
mod mem {
    use super::*;
    use mq_core::delivery::{ConsumerAck, Delivery, Durability, ProducerAck};
    use mq_core::plan::{FieldError, VariantPlan};
    use mq_core::{
        AckSink, Backend, BackendError, BackendInfo, Broker, Consumer, DeliverySink, NodeHit,
        Outcome, Outgoing, Producer,
    };
    use schemars::JsonSchema;
    use serde::Deserialize;

    /// Queues by name: the "broker" every worker thread of this process shares.
    type Queue = Arc<Mutex<VecDeque<Vec<u8>>>>;
    static QUEUES: Mutex<Option<HashMap<String, Queue>>> = Mutex::new(None);

    fn queue(name: &str) -> Queue {
        let mut all = QUEUES.lock().unwrap();
        all.get_or_insert_with(HashMap::new)
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    /// `[variants.options]` of a mem variant.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Options {
        /// Acknowledge every message but throw away every n-th (0: none): a lossy broker.
        #[serde(default)]
        #[schemars(range(min = 0, max = 1000))]
        drop_every: u64,
    }

    pub struct Mem;

    impl Backend for Mem {
        fn info(&self) -> BackendInfo {
            BackendInfo {
                name: "mem",
                summary: "a queue in this process (tests)",
                producer_ack: vec![(ProducerAck::Leader, "pushed onto the queue")],
                consumer_ack: vec![(ConsumerAck::Auto, "popped from the queue")],
                durability: vec![(Durability::Memory, "this process's memory")],
                defaults: Delivery {
                    producer_ack: ProducerAck::Leader,
                    consumer_ack: ConsumerAck::Auto,
                    durability: Durability::Memory,
                    consumer_dedup: Default::default(),
                },
                options: mq_core::options::describe::<Options>(),
            }
        }

        fn validate(&self, plan: &VariantPlan) -> Vec<FieldError> {
            plan.options::<Options>().err().into_iter().collect()
        }

        fn broker(
            &self,
            plan: &VariantPlan,
            _dir: &Path,
            run_tag: &str,
        ) -> Result<Box<dyn Broker>, BackendError> {
            Ok(Box::new(MemBroker(format!("{run_tag}-{}", plan.name))))
        }

        fn producer(&self, ctx: &WorkerCtx) -> Result<Box<dyn Producer>, BackendError> {
            let o: Options = ctx
                .plan
                .options()
                .map_err(|e| BackendError::other("mem", e.message))?;
            Ok(Box::new(MemProducer {
                queue: queue(ctx.endpoint["queue"].as_str().unwrap_or_default()),
                drop_every: o.drop_every,
                sent: 0,
            }))
        }

        fn consumer(&self, ctx: &WorkerCtx) -> Result<Box<dyn Consumer>, BackendError> {
            Ok(Box::new(MemConsumer(queue(
                ctx.endpoint["queue"].as_str().unwrap_or_default(),
            ))))
        }
    }

    struct MemBroker(String);

    impl Broker for MemBroker {
        fn setup(&mut self) -> Result<serde_json::Value, BackendError> {
            queue(&self.0);
            Ok(serde_json::json!({ "queue": self.0 }))
        }
        fn teardown(&mut self) -> Result<(), BackendError> {
            QUEUES
                .lock()
                .unwrap()
                .get_or_insert_with(HashMap::new)
                .remove(&self.0);
            Ok(())
        }
        fn fault(&mut self, _: mq_core::plan::BrokerFault) -> Result<Vec<NodeHit>, BackendError> {
            Err(BackendError::other("mem", "no faults"))
        }
    }

    struct MemProducer {
        queue: Queue,
        drop_every: u64,
        sent: u64,
    }

    impl Producer for MemProducer {
        fn send(
            &mut self,
            msg: &mut Outgoing<'_>,
            acks: &mut dyn AckSink,
        ) -> Result<(), BackendError> {
            self.sent += 1;
            if self.drop_every == 0 || !self.sent.is_multiple_of(self.drop_every) {
                self.queue.lock().unwrap().push_back(msg.payload().to_vec());
            }
            acks.ack(msg.seq, Outcome::Acked);
            Ok(())
        }
        fn flush(&mut self, _: Duration, _: &mut dyn AckSink) -> Result<(), BackendError> {
            Ok(())
        }
    }

    struct MemConsumer(Queue);

    impl Consumer for MemConsumer {
        fn poll(
            &mut self,
            max_wait: Duration,
            sink: &mut dyn DeliverySink,
        ) -> Result<usize, BackendError> {
            let taken: Vec<_> = self.0.lock().unwrap().drain(..).collect();
            if taken.is_empty() {
                std::thread::sleep(max_wait.min(Duration::from_millis(5)));
            }
            for m in &taken {
                sink.deliver(m, Partition(0));
            }
            Ok(taken.len())
        }
    }
}

/// The one registry line.
fn registry() -> Registry {
    vec![Box::new(mem::Mem)]
}

/// Validates `scenario`, runs its only variant with one producer and one consumer in threads,
/// and checks the histories.
fn run(scenario: &str) -> mq_checker::Report {
    let registry = registry();
    let dir = tempfile::tempdir().unwrap();
    let s = mq_core::scenario::parse(Path::new("mem.toml"), scenario.into(), &registry)
        .unwrap_or_else(|e| panic!("{e}"));
    let plan = s.variants[0].clone();
    let backend = registry[0].as_ref();
    // Each test's queue is its own: tests run in parallel threads of one process.
    let tag = dir
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let mut broker = backend.broker(&plan, dir.path(), &tag).unwrap();
    let endpoint = broker.setup().unwrap();
    let w = &plan.workload;
    let spec = |role: RoleSpec, name: &str| WorkerSpec {
        role,
        ctx: WorkerCtx {
            plan: plan.clone(),
            endpoint: endpoint.clone(),
            index: 0,
            partitions: vec![Partition(0)],
            run_id: 7,
        },
        history: dir.path().join(format!("{name}-0.hist")),
        dedup_store: None,
    };
    let producer = spec(
        RoleSpec::Producer {
            messages: w.messages_for(0),
            duration_ns: None,
            rate: w.rate_per_producer(),
            ack_timeout_ns: 1_000_000_000,
        },
        "producer",
    );
    let consumer = spec(RoleSpec::Consumer, "consumer");
    let start_ns = mq_core::clock::now_ns();
    std::thread::scope(|t| {
        let (c_counters, p_counters) = (Arc::new(Counters::default()), Counters::default());
        let (go_tx, go) = mpsc::channel();
        let (_never, no_go) = mpsc::channel();
        let c = c_counters.clone();
        let consumer_thread = t.spawn(move || play(&consumer, backend, &c, &no_go, &mut || {}));
        go_tx.send(start_ns).unwrap();
        play(&producer, backend, &p_counters, &go, &mut || {}).unwrap();
        // The consumer takes what the queue holds, then is stopped as the coordinator would.
        let sent = p_counters.totals();
        let deadline = Instant::now() + Duration::from_secs(10);
        while c_counters.totals().delivered < sent.acked * 9 / 10 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(50));
        c_counters.control(Control::Stop);
        consumer_thread.join().unwrap().unwrap();
    });
    broker.teardown().unwrap();
    mq_checker::check(&mq_checker::Input {
        producer_files: vec![dir.path().join("producer-0.hist")],
        consumer_files: vec![dir.path().join("consumer-0.hist")],
        depth_file: None,
        dedup_store: None,
        start_ns,
        warmup_ns: 0,
        message_size: w.message_size,
        producers: w.producers,
        consumers: w.consumers,
        keys: w.keys(),
    })
    .unwrap()
}

const SCENARIO: &str = r#"
name = "plug-in"
[workload]
messages = 5000
[[variants]]
name = "mem"
backend = "mem"
"#;

#[test]
fn a_new_backend_runs_through_validation_workers_and_the_checker() {
    let r = run(SCENARIO);
    let c = r.counts;
    assert_eq!(
        (c.sent, c.acked, c.delivered, c.lost),
        (5000, 5000, 5000, 0)
    );
    assert_eq!((c.duplicated, c.reordered, c.unexpected), (0, 0, 0));
}

#[test]
fn the_checker_finds_exactly_what_a_lossy_backend_dropped() {
    let r = run(&format!("{SCENARIO}options = {{ drop_every = 10 }}\n"));
    let c = r.counts;
    assert_eq!((c.acked, c.delivered, c.lost), (5000, 4500, 500));
}

#[test]
fn the_new_backend_s_options_are_validated_from_their_declaration() {
    let text = format!("{SCENARIO}options = {{ drop_every = 5000 }}\n");
    let e = mq_core::scenario::parse(Path::new("mem.toml"), text, &registry())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(
            "variants[0].options.drop_every: drop_every = 5000 is out of range: valid is 0 to 1000"
        ),
        "{e}"
    );
}
