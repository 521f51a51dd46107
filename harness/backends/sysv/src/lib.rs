//! The `sysv` backend: one System V message queue per variant run, the kernel as the broker.
//!
//! Partitions are message types (partition p = type p + 1); a consumer takes its types with
//! `msgrcv(msgtyp)`. `msgsnd` returning 0 is the acknowledgement. There is no consumer ack: a
//! message taken by `msgrcv` is gone, so only `consumer_ack = "auto"` is honest.

mod queue;

use std::path::Path;
use std::time::Duration;

use mq_core::delivery::{ConsumerAck, Durability, ProducerAck};
use mq_core::plan::BrokerFault;
use mq_core::plan::{FieldError, VariantPlan};
use mq_core::{
    AckSink, Backend, BackendError, BackendInfo, Broker, Consumer, Delivery, DeliverySink, Depth,
    NodeHit, Outcome, Outgoing, Partition, Producer, WorkerCtx,
};
use serde::Deserialize;

pub use queue::{kernel_limit, Queue};

const NAME: &str = "sysv";

/// The System V message-queue backend.
pub struct SysV;

/// `[variants.options]` of a sysv variant.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    /// Queue capacity in bytes, set with `msgctl(IPC_SET, msg_qbytes)` (at least one message);
    /// default: kernel.msgmnb. Above kernel.msgmnb needs CAP_SYS_RESOURCE (root on a plain host).
    #[schemars(range(min = 32, max = 2_147_483_647))]
    msg_qbytes: Option<u64>,
}

#[derive(Debug, serde::Serialize, Deserialize)]
struct Endpoint {
    msqid: i32,
}

impl Backend for SysV {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            name: NAME,
            summary: "System V message queue (msgsnd/msgrcv); the kernel is the broker",
            producer_ack: vec![(
                ProducerAck::Leader,
                "msgsnd returned 0: the kernel holds the message",
            )],
            consumer_ack: vec![(
                ConsumerAck::Auto,
                "msgrcv removes the message as it delivers it (at-most-once)",
            )],
            durability: vec![(
                Durability::Memory,
                "kernel memory: survives process crashes, not a reboot",
            )],
            defaults: Delivery {
                producer_ack: ProducerAck::Leader,
                consumer_ack: ConsumerAck::Auto,
                durability: Durability::Memory,
                consumer_dedup: Default::default(),
            },
            options: mq_core::options::describe::<Options>(),
        }
    }

    /// Several receivers on one message type: each `msgrcv` takes the next message of the
    /// type, whoever asks first.
    fn competing_consumers(&self, _plan: &VariantPlan) -> Result<(), String> {
        Ok(())
    }

    fn validate(&self, plan: &VariantPlan) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let options: Options = match plan.options() {
            Ok(o) => o,
            Err(e) => return vec![e],
        };
        let size = plan.workload.message_size as u64;
        if let Some(msgmax) = kernel_limit("msgmax") {
            if size > msgmax {
                errors.push(FieldError::new(
                    "workload.message_size",
                    format!("message_size = {size} exceeds kernel.msgmax = {msgmax} for backend sysv; valid: 32 to {msgmax}"),
                ));
            }
        }
        if let Some(q) = options.msg_qbytes {
            // Bounds are declared on the option; this is the one that depends on the workload.
            if (32..size).contains(&q) {
                errors.push(FieldError::new(
                    "options.msg_qbytes",
                    format!("msg_qbytes = {q} cannot hold one {size}-byte message; valid: at least message_size"),
                ));
            }
        }
        if plan.delivery.consumer_ack == ConsumerAck::AfterProcess {
            // Caught by the generic check too; this says why.
            errors.push(FieldError::new(
                "consumer_ack",
                "sysv cannot honour after-process: msgrcv removes the message, there is nothing to ack later",
            ));
        }
        errors
    }

    fn broker_faults(&self) -> Vec<BrokerFault> {
        vec![BrokerFault::RemoveQueue]
    }

    fn broker(
        &self,
        plan: &VariantPlan,
        _dir: &Path,
        _run_tag: &str,
    ) -> Result<Box<dyn Broker>, BackendError> {
        let options: Options = plan.backend_options(NAME)?;
        Ok(Box::new(SysVBroker {
            options,
            queue: None,
        }))
    }

    fn producer(&self, ctx: &WorkerCtx) -> Result<Box<dyn Producer>, BackendError> {
        let ep = endpoint(ctx)?;
        Ok(Box::new(SysVProducer {
            queue: Queue::from_id(ep.msqid),
        }))
    }

    fn consumer(&self, ctx: &WorkerCtx) -> Result<Box<dyn Consumer>, BackendError> {
        let ep = endpoint(ctx)?;
        let all = ctx.plan.workload.partitions as usize;
        let mode = match ctx.partitions.as_slice() {
            [] => {
                return Err(BackendError::other(
                    NAME,
                    "consumer has no partitions to read",
                ))
            }
            ps if ps.len() == all => Take::Any,
            [p] => Take::Type(mtype(*p)),
            ps => Take::RoundRobin(ps.iter().map(|p| mtype(*p)).collect(), 0),
        };
        Ok(Box::new(SysVConsumer {
            queue: Queue::from_id(ep.msqid),
            mode,
            buf: vec![0; 8 + ctx.plan.workload.message_size],
        }))
    }
}

fn endpoint(ctx: &WorkerCtx) -> Result<Endpoint, BackendError> {
    serde_json::from_value(ctx.endpoint.clone())
        .map_err(|e| BackendError::other(NAME, format!("bad endpoint: {e}")))
}

fn mtype(p: Partition) -> i64 {
    p.0 as i64 + 1
}

struct SysVBroker {
    options: Options,
    queue: Option<Queue>,
}

impl Broker for SysVBroker {
    fn setup(&mut self) -> Result<serde_json::Value, BackendError> {
        let q = Queue::create().map_err(|e| BackendError::io(NAME, "msgget(IPC_PRIVATE)", e))?;
        self.queue = Some(q);
        if let Some(bytes) = self.options.msg_qbytes {
            q.set_qbytes(bytes).map_err(|e| {
                let hint = if e.raw_os_error() == Some(libc::EPERM) {
                    format!(
                        " (raising a queue above kernel.msgmnb = {} needs CAP_SYS_RESOURCE: run as root or lower options.msg_qbytes)",
                        kernel_limit("msgmnb").unwrap_or(0)
                    )
                } else {
                    String::new()
                };
                BackendError::other(NAME, format!("msgctl(IPC_SET, msg_qbytes = {bytes}) failed: {e}{hint}"))
            })?;
        }
        Ok(serde_json::to_value(Endpoint { msqid: q.id() }).expect("endpoint serializes"))
    }

    fn depth(&mut self) -> Option<Depth> {
        let s = self.queue?.stat().ok()?;
        Some(Depth {
            messages: s.messages,
            bytes: Some(s.bytes),
        })
    }

    fn processes(&mut self) -> mq_core::backend::Processes {
        mq_core::backend::Processes::Unknown(
            "the kernel: its work shows as the workers' system CPU time".into(),
        )
    }

    fn teardown(&mut self) -> Result<(), BackendError> {
        match self.queue.take() {
            Some(q) => q.remove().map_err(|e| {
                BackendError::io(NAME, format!("msgctl(IPC_RMID) of queue {}", q.id()), e)
            }),
            None => Ok(()),
        }
    }

    fn fault(&mut self, fault: BrokerFault) -> Result<Vec<NodeHit>, BackendError> {
        match (fault, self.queue) {
            // The queue id stays: workers see EIDRM/EINVAL, teardown finds it gone.
            (BrokerFault::RemoveQueue, Some(q)) => q.remove().map(|()| Vec::new()).map_err(|e| {
                BackendError::io(NAME, format!("msgctl(IPC_RMID) of queue {}", q.id()), e)
            }),
            (BrokerFault::RemoveQueue, None) => {
                Err(BackendError::other(NAME, "no queue to remove"))
            }
            (other, _) => Err(BackendError::other(
                NAME,
                format!("the kernel broker cannot {other:?}"),
            )),
        }
    }

    fn versions(&mut self) -> Vec<(String, String)> {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        vec![("linux".into(), kernel.trim().to_owned())]
    }
}

impl Drop for SysVBroker {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

struct SysVProducer {
    queue: Queue,
}

impl Producer for SysVProducer {
    fn send(&mut self, msg: &mut Outgoing<'_>, acks: &mut dyn AckSink) -> Result<(), BackendError> {
        let frame = msg.with_head(mtype(msg.partition).to_ne_bytes());
        match self.queue.send_framed(frame) {
            Ok(()) => {
                acks.ack(msg.seq, Outcome::Acked);
                Ok(())
            }
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {
                Err(BackendError::Interrupted { backend: NAME })
            }
            Err(e) => {
                acks.ack(msg.seq, Outcome::Failed);
                Err(BackendError::io(
                    NAME,
                    format!("msgsnd to queue {}", self.queue.id()),
                    e,
                ))
            }
        }
    }

    fn flush(&mut self, _timeout: Duration, _acks: &mut dyn AckSink) -> Result<(), BackendError> {
        Ok(()) // every send is acknowledged synchronously
    }
}

enum Take {
    /// All partitions: the first message of any type.
    Any,
    /// One partition: blocking on its type.
    Type(i64),
    /// Several (not all) partitions: each type in turn without blocking.
    RoundRobin(Vec<i64>, usize),
}

struct SysVConsumer {
    queue: Queue,
    mode: Take,
    buf: Vec<u8>,
}

/// Messages taken per poll once the first one has arrived.
const BATCH: usize = 1024;

impl Consumer for SysVConsumer {
    fn poll(
        &mut self,
        max_wait: Duration,
        sink: &mut dyn DeliverySink,
    ) -> Result<usize, BackendError> {
        let err = |q: Queue, e: std::io::Error| {
            if e.raw_os_error() == Some(libc::EINTR) {
                BackendError::Interrupted { backend: NAME }
            } else {
                BackendError::io(NAME, format!("msgrcv from queue {}", q.id()), e)
            }
        };
        let q = self.queue;
        let mut taken = 0;
        match &mut self.mode {
            Take::Any | Take::Type(_) => {
                let t = if let Take::Type(t) = self.mode { t } else { 0 };
                // Block for the first; the worker's stop signal interrupts this (EINTR).
                let (mtype, len) = q
                    .recv(t, &mut self.buf, true)
                    .map_err(|e| err(q, e))?
                    .expect("blocking msgrcv");
                sink.deliver(&self.buf[8..8 + len], Partition((mtype - 1) as u32));
                taken += 1;
                while taken < BATCH {
                    match q.recv(t, &mut self.buf, false).map_err(|e| err(q, e))? {
                        Some((mtype, len)) => {
                            sink.deliver(&self.buf[8..8 + len], Partition((mtype - 1) as u32))
                        }
                        None => break,
                    }
                    taken += 1;
                }
            }
            Take::RoundRobin(types, next) => {
                let deadline = std::time::Instant::now() + max_wait;
                let mut idle = Duration::from_micros(20);
                loop {
                    let mut empty = 0;
                    while empty < types.len() && taken < BATCH {
                        let t = types[*next];
                        match q.recv(t, &mut self.buf, false).map_err(|e| err(q, e))? {
                            Some((mtype, len)) => {
                                sink.deliver(&self.buf[8..8 + len], Partition((mtype - 1) as u32));
                                taken += 1;
                                empty = 0;
                            }
                            None => {
                                empty += 1;
                                *next = (*next + 1) % types.len();
                            }
                        }
                    }
                    if taken > 0 || std::time::Instant::now() >= deadline {
                        break;
                    }
                    std::thread::sleep(idle);
                    idle = (idle * 2).min(Duration::from_millis(1));
                }
            }
        }
        Ok(taken)
    }
}
