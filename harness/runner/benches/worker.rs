//! The workers' own cost per message, without a broker: the producer loop (envelope, history,
//! clock reads, outcome bookkeeping, publish latency) against a producer that confirms each send
//! at once (as SysV does) or in batches of 32 per poll (as librdkafka's delivery reports come),
//! and the consumer loop (decode, dedup bits, end-to-end latency, history) over pre-encoded
//! messages. A change that adds per-message work to a worker shows up here as lower
//! throughput; `.ci/run` runs it in `--quick` mode and prints the figures (noise is not a
//! failure there). `cargo bench -p mq-runner --bench worker` for the full measurement.

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mq_core::delivery::{ConsumerAck, Delivery, Durability, ProducerAck};
use mq_core::envelope::Envelope;
use mq_core::plan::{FieldError, VariantPlan};
use mq_core::spec::{Control, RoleSpec, WorkerSpec};
use mq_core::{
    AckSink, Backend, BackendError, BackendInfo, Broker, Consumer, DeliverySink, Key, Outcome,
    Outgoing, Partition, Producer, ProducerId, Registry, Seq, WorkerCtx,
};
use mq_runner::worker::{play, Counters};

/// Messages per measured run of a worker.
const MESSAGES: u64 = 200_000;
const SIZE: usize = 100;
/// Sends per batch of confirmations in the batched producer (librdkafka's, as polled).
const BATCH: usize = 32;

/// A backend with no broker: confirms at once or in batches, delivers pre-encoded messages.
struct Null {
    batched: bool,
    /// What the consumer hands out, in order.
    payloads: std::sync::Arc<Vec<Vec<u8>>>,
}

impl Backend for Null {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: "null",
            summary: "no broker (benchmarks)",
            producer_ack: vec![(ProducerAck::Leader, "at once")],
            consumer_ack: vec![(ConsumerAck::Auto, "at once")],
            durability: vec![(Durability::Memory, "none")],
            defaults: Delivery {
                producer_ack: ProducerAck::Leader,
                consumer_ack: ConsumerAck::Auto,
                durability: Durability::Memory,
                consumer_dedup: Default::default(),
            },
            options: Vec::new(),
        }
    }
    fn validate(&self, _: &VariantPlan) -> Vec<FieldError> {
        Vec::new()
    }
    fn broker(&self, _: &VariantPlan, _: &Path, _: &str) -> Result<Box<dyn Broker>, BackendError> {
        Err(BackendError::other("null", "no broker"))
    }
    fn producer(&self, _: &WorkerCtx) -> Result<Box<dyn Producer>, BackendError> {
        Ok(Box::new(NullProducer {
            batched: self.batched,
            unconfirmed: Vec::with_capacity(BATCH),
        }))
    }
    fn consumer(&self, _: &WorkerCtx) -> Result<Box<dyn Consumer>, BackendError> {
        Ok(Box::new(NullConsumer {
            payloads: self.payloads.clone(),
            next: 0,
        }))
    }
}

struct NullProducer {
    batched: bool,
    unconfirmed: Vec<(Seq, Outcome)>,
}

impl Producer for NullProducer {
    fn send(&mut self, msg: &mut Outgoing<'_>, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        std::hint::black_box(msg.payload());
        if !self.batched {
            acks.ack(msg.seq, Outcome::Acked);
            return Ok(());
        }
        self.unconfirmed.push((msg.seq, Outcome::Acked));
        if self.unconfirmed.len() == BATCH {
            acks.ack_all(&self.unconfirmed);
            self.unconfirmed.clear();
        }
        Ok(())
    }
    fn flush(&mut self, _: Duration, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        acks.ack_all(&self.unconfirmed);
        self.unconfirmed.clear();
        Ok(())
    }
}

struct NullConsumer {
    payloads: std::sync::Arc<Vec<Vec<u8>>>,
    next: usize,
}

impl Consumer for NullConsumer {
    fn poll(&mut self, _: Duration, sink: &mut dyn DeliverySink) -> Result<usize, BackendError> {
        let end = (self.next + 500).min(self.payloads.len());
        for p in &self.payloads[self.next..end] {
            sink.deliver(p, Partition(0));
        }
        let taken = end - self.next;
        self.next = end;
        if taken == 0 {
            std::thread::sleep(Duration::from_micros(100));
        }
        Ok(taken)
    }
}

const RUN_ID: u32 = 7;

fn plan(registry: &Registry) -> VariantPlan {
    let text = format!(
        "name = \"worker-bench\"\n[workload]\nmessages = {MESSAGES}\nmessage_size = {SIZE}\n\
         [[variants]]\nname = \"null\"\nbackend = \"null\"\n"
    );
    let s = mq_core::scenario::parse(Path::new("worker-bench.toml"), text, registry)
        .unwrap_or_else(|e| panic!("{e}"));
    s.variants[0].clone()
}

/// The worker's spec; its folder holds the load's start as the coordinator writes it.
fn spec(plan: &VariantPlan, role: RoleSpec, dir: &Path) -> WorkerSpec {
    std::fs::write(dir.join("start_ns"), "0").unwrap();
    WorkerSpec {
        role,
        ctx: WorkerCtx {
            plan: plan.clone(),
            endpoint: serde_json::Value::Null,
            index: 0,
            partitions: vec![Partition(0)],
            run_id: RUN_ID,
        },
        history: dir.join(format!("w-{}.hist", mq_core::clock::now_ns())),
        dedup_store: None,
    }
}

/// One producer worker sending MESSAGES as fast as it can; its wall time.
fn produce(backend: &Null, plan: &VariantPlan, dir: &Path) -> Duration {
    let role = RoleSpec::Producer {
        messages: Some(MESSAGES),
        duration_ns: None,
        rate: 0.0,
        ack_timeout_ns: 1_000_000_000,
    };
    let spec = spec(plan, role, dir);
    let (go_tx, go) = mpsc::channel();
    go_tx.send(mq_core::clock::now_ns()).unwrap();
    let t0 = Instant::now();
    play(&spec, backend, &Counters::default(), &go, &mut || {}).unwrap();
    let took = t0.elapsed();
    cleanup(&spec);
    took
}

/// One consumer worker taking MESSAGES; its wall time to the last one.
fn consume(backend: &Null, plan: &VariantPlan, dir: &Path) -> Duration {
    let spec = spec(plan, RoleSpec::Consumer, dir);
    let counters = std::sync::Arc::new(Counters::default());
    let t0 = Instant::now();
    std::thread::scope(|t| {
        let c = counters.clone();
        let spec = &spec;
        let worker = t.spawn(move || {
            let (_never, no_go) = mpsc::channel();
            play(spec, backend, &c, &no_go, &mut || {})
        });
        while counters.totals().delivered < MESSAGES {
            std::thread::sleep(Duration::from_micros(200));
        }
        let took = t0.elapsed();
        counters.control(Control::Stop);
        worker.join().unwrap().unwrap();
        cleanup(spec);
        took
    })
}

fn cleanup(spec: &WorkerSpec) {
    for p in [spec.history.clone(), spec.history.with_extension("hlog")] {
        let _ = std::fs::remove_file(p);
    }
}

fn payloads() -> Vec<Vec<u8>> {
    (0..MESSAGES)
        .map(|i| {
            let mut p = vec![b'x'; SIZE];
            Envelope {
                run_id: RUN_ID,
                producer: ProducerId(0),
                key: Key(0),
                seq: Seq(i),
                send_ns: mq_core::clock::now_ns(),
            }
            .encode(&mut p);
            p
        })
        .collect()
}

fn workers(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let payloads = std::sync::Arc::new(payloads());
    let mut g = c.benchmark_group("worker");
    g.throughput(Throughput::Elements(MESSAGES));
    g.sample_size(10);
    for (name, batched) in [
        ("producer, each send confirmed", false),
        ("producer, confirmed 32 at a time", true),
    ] {
        let backend = Null {
            batched,
            payloads: payloads.clone(),
        };
        let registry: Registry = vec![Box::new(Null {
            batched,
            payloads: payloads.clone(),
        })];
        let plan = plan(&registry);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| produce(&backend, &plan, dir.path()))
                    .sum()
            })
        });
    }
    let backend = Null {
        batched: false,
        payloads: payloads.clone(),
    };
    let registry: Registry = vec![Box::new(Null {
        batched: false,
        payloads: payloads.clone(),
    })];
    let plan = plan(&registry);
    g.bench_function("consumer", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| consume(&backend, &plan, dir.path()))
                .sum()
        })
    });
    g.finish();
}

criterion_group!(benches, workers);
criterion_main!(benches);
