//! The small interface a backend implements: describe itself, validate a variant, manage its
//! broker (coordinator side), and make producers and consumers (worker side).
//!
//! Adding a backend is a module implementing [`Backend`] plus one line in the registry the
//! `bench` binary builds. The coordinator, the checker and the reports never name a backend.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::delivery::{ConsumerAck, Delivery, Durability, ProducerAck};
use crate::ids::{Key, Partition, Seq};
pub use crate::parallel::{Processed, Token};
use crate::plan::{BrokerFault, FieldError, VariantPlan};

pub use crate::options::OptionInfo;

/// What a backend supports, shown by `bench list` and used to fill in defaults.
#[derive(Debug, Clone)]
pub struct BackendInfo {
    pub name: &'static str,
    pub summary: &'static str,
    pub producer_ack: Vec<(ProducerAck, &'static str)>,
    pub consumer_ack: Vec<(ConsumerAck, &'static str)>,
    pub durability: Vec<(Durability, &'static str)>,
    pub defaults: Delivery,
    /// From the backend's options struct: [`crate::options::describe`].
    pub options: Vec<OptionInfo>,
}

/// An error from a backend, phrased for the person running the benchmark.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("{backend}: {what}: {source}")]
    Io {
        backend: &'static str,
        what: String,
        source: std::io::Error,
    },
    #[error("{backend}: {message}")]
    Other {
        backend: &'static str,
        message: String,
    },
    #[error("{backend}: interrupted")]
    Interrupted { backend: &'static str },
}

impl BackendError {
    pub fn other(backend: &'static str, message: impl Into<String>) -> BackendError {
        BackendError::Other {
            backend,
            message: message.into(),
        }
    }
    pub fn io(
        backend: &'static str,
        what: impl Into<String>,
        source: std::io::Error,
    ) -> BackendError {
        BackendError::Io {
            backend,
            what: what.into(),
            source,
        }
    }
}

/// A backend cannot run here (e.g. its broker is not installed): the variant is reported as
/// skipped with this reason, never silently dropped.
#[derive(Debug, Clone)]
pub struct Unavailable {
    pub reason: String,
    /// The command that would make it available.
    pub fix: Option<String>,
}

/// Who runs the broker of a variant (`options.mode`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// `bench` starts a private broker with its script in `scripts/brokers/` and stops it at the
    /// end.
    #[default]
    Managed,
    /// A broker that is already running, reached at the address the options give.
    External,
}

/// [`Backend::available`] of a backend whose managed broker needs `scripts/brokers/<script>`:
/// an external broker is always available; a managed one when `missing()` finds nothing missing.
pub fn managed_available(
    mode: Mode,
    script: &str,
    missing: impl FnOnce() -> Option<String>,
) -> Result<(), Unavailable> {
    if mode == Mode::External {
        return Ok(());
    }
    match missing() {
        None => Ok(()),
        Some(reason) => Err(Unavailable {
            reason,
            fix: Some(format!(
                "{} install",
                crate::paths::shown(&crate::script::broker_script(script))
            )),
        }),
    }
}

/// Decodes the endpoint [`Broker::setup`] returned, as a worker receives it in [`WorkerCtx`].
pub fn endpoint<T: serde::de::DeserializeOwned>(
    backend: &'static str,
    v: &serde_json::Value,
) -> Result<T, BackendError> {
    serde_json::from_value(v.clone())
        .map_err(|e| BackendError::other(backend, format!("bad endpoint {v}: {e}")))
}

/// How deep the broker itself says the backlog is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Depth {
    pub messages: u64,
    pub bytes: Option<u64>,
}

/// Everything a worker process needs to open its producer or consumer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerCtx {
    pub plan: VariantPlan,
    /// What [`Broker::setup`] returned: queue ids, addresses, topic names.
    pub endpoint: serde_json::Value,
    /// Worker index within its role.
    pub index: u16,
    /// Partitions this consumer reads (all of them for a producer).
    pub partitions: Vec<Partition>,
    pub run_id: u32,
}

/// The tag of a run for names on a broker: the run folder's name, reduced to characters every
/// broker accepts in a name (ASCII letters, digits, `-`, `_`, `.`; at most 64).
pub fn run_tag(run_dir: &Path) -> String {
    let base = run_dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tag: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if tag.is_empty() {
        "run".into()
    } else {
        tag
    }
}

/// Why a backend without competing consumers refuses `consumers > partitions`.
pub const NO_COMPETING: &str = "each partition is read by one consumer";

/// The registry of backends, built once by the binary.
pub type Registry = Vec<Box<dyn Backend>>;

/// A pluggable backend.
pub trait Backend: Send + Sync {
    fn info(&self) -> BackendInfo;

    /// Backend-specific checks of a variant, before anything is created. Paths in the errors are
    /// relative to the variant (e.g. `options.msg_qbytes`, `consumer_ack`), or start with
    /// `workload.` for the shared workload.
    fn validate(&self, plan: &VariantPlan) -> Vec<FieldError>;

    /// Whether more consumers than partitions can run: several consumers sharing a partition,
    /// each taking some of its messages (competing consumers; consumer `i` reads partition
    /// `i % partitions`). `Err` says why not, for validation to name; the default refuses.
    fn competing_consumers(&self, _plan: &VariantPlan) -> Result<(), String> {
        Err(NO_COMPETING.into())
    }

    /// Whether this machine can run the variant now; `Err` makes it a reported skip.
    fn available(&self, _plan: &VariantPlan) -> Result<(), Unavailable> {
        Ok(())
    }

    /// Coordinator side: the broker handle for one variant of a run. `dir` is the variant's folder
    /// in the run (logs, a managed broker's data); `run_tag` names the run on a shared broker
    /// (topics, queues: `mqb-<run_tag>-<variant>`), as [`run_tag`] makes it.
    fn broker(
        &self,
        plan: &VariantPlan,
        dir: &Path,
        run_tag: &str,
    ) -> Result<Box<dyn Broker>, BackendError>;

    /// Worker side: a producer.
    fn producer(&self, ctx: &WorkerCtx) -> Result<Box<dyn Producer>, BackendError>;

    /// Worker side: a consumer of `ctx.partitions`.
    fn consumer(&self, ctx: &WorkerCtx) -> Result<Box<dyn Consumer>, BackendError>;

    /// How many pipeline stages the variant runs (worker role `stage`, started before the
    /// producers, stopped after the drain); 0, the default, for no pipeline.
    fn stages(&self, _plan: &VariantPlan) -> u16 {
        0
    }

    /// Worker side: pipeline stage `ctx.index` of [`Backend::stages`].
    fn stage(&self, ctx: &WorkerCtx) -> Result<Box<dyn Stage>, BackendError> {
        let _ = ctx;
        Err(BackendError::other(
            "stage",
            "this backend runs no pipeline stages",
        ))
    }

    /// The broker faults [`Broker::fault`] can carry out (for validation and `bench list`).
    fn broker_faults(&self) -> Vec<BrokerFault> {
        Vec::new()
    }
}

/// Coordinator side of a backend: starts or reaches the broker, creates and removes what the run
/// uses, and reports its depth.
pub trait Broker: Send {
    /// Starts a managed broker if needed and creates queues/topics. Returns the endpoint handed to
    /// every worker.
    fn setup(&mut self) -> Result<serde_json::Value, BackendError>;

    /// The backlog the broker itself reports, if it can.
    fn depth(&mut self) -> Option<Depth> {
        None
    }

    /// The longest [`Broker::depth`] may take (its own time-out): the coordinator takes no
    /// sample this close to a timed fault, so a slow answer cannot make the fault late.
    fn depth_bound(&self) -> Duration {
        Duration::ZERO
    }

    /// Removes what `setup` created and stops a managed broker. Called on success, on error and on
    /// Ctrl-C; must be safe to call twice.
    fn teardown(&mut self) -> Result<(), BackendError>;

    /// Carries out a broker fault (kill -9, restart on the same data, remove the queue), and
    /// says which nodes of a cluster it hit (empty for a single broker).
    fn fault(&mut self, fault: BrokerFault) -> Result<Vec<NodeHit>, BackendError> {
        Err(BackendError::other(
            "broker",
            format!("{fault:?} is not supported"),
        ))
    }

    /// [`Broker::fault`] with the fault's own fields (`node`, `clients`, `delay` …), which the
    /// node faults of a cluster need; by default they are not looked at.
    fn fault_on(
        &mut self,
        fault: BrokerFault,
        spec: &crate::plan::FaultSpec,
    ) -> Result<Vec<NodeHit>, BackendError> {
        let _ = spec;
        self.fault(fault)
    }

    /// The end of a search's round that another will follow on this broker: removes what
    /// `setup` created (topics, queues, groups), leaving a managed broker running. It runs
    /// while the round's histories are checked. `Ok(false)` (the default): not supported, the
    /// broker is torn down instead.
    fn end_round(&mut self) -> Result<bool, BackendError> {
        Ok(false)
    }

    /// The next round of a search on the same broker: removes what `setup` created for the
    /// round before (topics, queues, groups) if [`Broker::end_round`] did not, and takes
    /// `plan`'s names, leaving a managed broker running, so that the next `setup` only creates.
    /// `Ok(false)` (the default): not supported, each round sets up and tears down a broker of
    /// its own.
    fn next_round(&mut self, plan: &VariantPlan, run_tag: &str) -> Result<bool, BackendError> {
        let _ = (plan, run_tag);
        Ok(false)
    }

    /// Versions of the broker and client library, for the report.
    fn versions(&mut self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// The OS processes that are the broker now (every node of a cluster), for the cost
    /// accounting; asked again after each fault, as a restart changes them.
    fn processes(&mut self) -> Processes {
        Processes::Unknown("this backend does not name its broker's processes".into())
    }
}

/// What [`Broker::processes`] knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processes {
    /// The broker's processes running now, each named (`broker`; `node 2` of a cluster) with
    /// its pid (empty while it is down).
    Pids(Vec<(String, u32)>),
    /// Not known to bench (an external broker, the kernel): why, for the report.
    Unknown(String),
}

/// The pids written in `files` (a managed broker's pid files, node 1 first), skipping files
/// that are missing or hold no pid (a node that is down); named `broker` when there is one
/// file, `node N` (N from 1, the file's place) when there are several.
pub fn pids_in(files: &[std::path::PathBuf]) -> Vec<(String, u32)> {
    let name = |i: usize| match files.len() {
        1 => "broker".to_owned(),
        _ => format!("node {}", i + 1),
    };
    (files.iter().enumerate())
        .filter_map(|(i, f)| Some((i, std::fs::read_to_string(f).ok()?)))
        .filter_map(|(i, s)| Some((name(i), s.trim().parse::<u32>().ok()?)))
        .filter(|(_, p)| *p > 1)
        .collect()
}

/// One node of a cluster that a broker fault hit, as it was at that moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeHit {
    /// The node's id in its cluster (Kafka's node.id).
    pub node: u32,
    pub address: String,
    /// Why this node, e.g. "leader of partition 0".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// The outcome of one send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The broker confirmed it.
    Acked,
    /// The broker refused it (nack, error response).
    Failed,
    /// It never reached the broker: no connection within the client's delivery timeout. Certain,
    /// unlike a send in flight when the connection dropped (that one stays unknown).
    NotSent,
}

/// What a transactional producer reports of one of its transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnEvent {
    /// Its commit is about to be asked for: the worker records it before the producer asks.
    CommitStarted,
    /// It was aborted (a failed commit, or an abort asked for).
    Aborted,
}

/// Where a producer reports confirmations; the worker timestamps and records them.
pub trait AckSink {
    fn ack(&mut self, seq: Seq, outcome: Outcome);

    /// Outcomes that arrived together (one poll's delivery reports): the worker reads the clock
    /// once for all of them.
    fn ack_all(&mut self, outcomes: &[(Seq, Outcome)]) {
        for &(seq, outcome) in outcomes {
            self.ack(seq, outcome);
        }
    }

    /// A transactional producer's transaction of seqs `first .. first + count` (see
    /// [`TxnEvent`]); the outcomes of its messages follow through [`AckSink::ack_all`]: acked
    /// once the commit returned, failed once it was aborted.
    fn transaction(&mut self, _event: TxnEvent, _first: Seq, _count: u64) {}
}

/// One message to send: its payload behind [`Outgoing::HEADROOM`] bytes of room a backend may
/// write its own header into, so that header and payload leave in one piece without a copy.
#[derive(Debug)]
pub struct Outgoing<'a> {
    pub seq: Seq,
    pub key: Key,
    pub partition: Partition,
    /// `HEADROOM` bytes of room, then the payload (envelope plus padding, `message_size` bytes).
    buf: &'a mut [u8],
}

/// See [`Outgoing::HEADROOM`] (an associated const cannot size an array in a signature).
const ROOM: usize = 8;

impl<'a> Outgoing<'a> {
    /// Bytes of room in front of the payload: a System V message's type, for one.
    pub const HEADROOM: usize = ROOM;

    /// A buffer for payloads of `message_size` bytes, with the room in front ('x' padding).
    pub fn buffer(message_size: usize) -> Vec<u8> {
        vec![b'x'; Self::HEADROOM + message_size]
    }

    /// The message in `buf`: room first, the payload after it (as [`Outgoing::buffer`] makes).
    ///
    /// # Panics
    /// If `buf` is shorter than the room.
    pub fn new(seq: Seq, key: Key, partition: Partition, buf: &'a mut [u8]) -> Self {
        assert!(
            buf.len() >= Self::HEADROOM,
            "no room in front of the payload"
        );
        Outgoing {
            seq,
            key,
            partition,
            buf,
        }
    }

    /// Envelope plus padding, `message_size` bytes.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buf[Self::HEADROOM..]
    }

    /// The payload with `head` written in the room in front of it, as one slice.
    #[inline]
    pub fn with_head(&mut self, head: [u8; ROOM]) -> &[u8] {
        self.buf[..Self::HEADROOM].copy_from_slice(&head);
        self.buf
    }
}

/// Worker side: sends messages and reports their outcome.
pub trait Producer {
    /// Sends one message. Outcomes (of this or earlier sends) go to `acks` as they are known.
    /// `Err` means the producer cannot go on; sends without an outcome then count as unknown.
    /// `Err(Interrupted)` means a blocking send was interrupted by the worker's stop signal.
    fn send(&mut self, msg: &mut Outgoing<'_>, acks: &mut dyn AckSink) -> Result<(), BackendError>;

    /// Waits up to `timeout` for the outcomes of every send so far.
    fn flush(&mut self, timeout: Duration, acks: &mut dyn AckSink) -> Result<(), BackendError>;

    /// Called while the worker waits for the next scheduled send: report outcomes that have
    /// arrived (so they are timed when they arrive, not at the next send) and send what is due.
    /// Must not block.
    fn poll(&mut self, _acks: &mut dyn AckSink) -> Result<(), BackendError> {
        Ok(())
    }

    /// Whether sends count only once their transaction commits: the worker marks its history
    /// transactional, and the producer reports each transaction ([`AckSink::transaction`]).
    fn transactional(&self) -> bool {
        false
    }
}

/// Worker side: a pipeline stage, moving messages from the producers' topic to the consumers'
/// one unchanged (the envelope passes through, so the checker judges end to end).
pub trait Stage {
    /// Moves what is available, waiting up to about `max_wait` when nothing is; returns how
    /// many messages it moved. `Err` means the stage cannot go on.
    fn step(&mut self, max_wait: Duration) -> Result<u64, BackendError>;

    /// Leaves cleanly (nothing half done is left open).
    fn close(&mut self) -> Result<(), BackendError> {
        Ok(())
    }
}

/// Where a consumer hands what it took; the worker decodes, timestamps and records it.
pub trait DeliverySink {
    fn deliver(&mut self, payload: &[u8], partition: Partition);

    /// [`DeliverySink::deliver`] with the delivery's token, for a consumer that can acknowledge
    /// deliveries out of order. `Later`: processing goes on in another thread, and the token
    /// comes back through [`Consumer::processed`] once it has finished; until then the delivery
    /// must not be acknowledged (nor an offset committed past it). By default it is processed
    /// at once (`deliver`).
    fn deliver_token(&mut self, payload: &[u8], token: Token) -> Processed {
        self.deliver(payload, token.partition);
        Processed::Now
    }

    /// [`DeliverySink::deliver_token`] for a message taken with others in one call that
    /// returned at `at_ns` (the run's clock, [`crate::clock::now_ns`]): the backend reads the
    /// clock once per batch and the sink stamps each of its messages with that, not with a clock
    /// read of its own as it gets to it (a read per message was a tenth of Kafka's consumer
    /// worker's CPU time at 100 B, and the later messages' stamps grew by the harness's own work
    /// on the earlier ones). By default the stamp is not used.
    fn deliver_token_at(&mut self, payload: &[u8], token: Token, at_ns: u64) -> Processed {
        let _ = at_ns;
        self.deliver_token(payload, token)
    }

    /// Most deliveries a backend hands over in one `poll` once this sink says `Later`: the
    /// worker gives them back between polls. [`crate::parallel::LATER_BATCH`] unless the sink
    /// takes bigger batches (the dedup store marks a poll's deliveries in one transaction).
    fn later_batch(&self) -> usize {
        crate::parallel::LATER_BATCH
    }
}

/// Worker side: takes messages of its partitions.
pub trait Consumer {
    /// Takes what is available, waiting up to about `max_wait` when nothing is. Each message goes
    /// to `sink` before it is acknowledged when the consumer-ack setting is `after-process`, after
    /// when it is `auto`. Returns how many were taken. A backend whose wait cannot time out may
    /// block longer: the worker interrupts it with a signal (then `Err(Interrupted)`).
    fn poll(
        &mut self,
        max_wait: Duration,
        sink: &mut dyn DeliverySink,
    ) -> Result<usize, BackendError>;

    /// The deliveries of these tokens (given to [`DeliverySink::deliver_token`], which said
    /// `Later`) have been processed: with `after-process`, acknowledge them now (RabbitMQ: each
    /// delivery tag on its own; Kafka and the log: commit up to the lowest unfinished offset of
    /// each partition, see [`crate::parallel`]). A consumer that never says `Later`'s tokens
    /// (it calls only `deliver`) gets none.
    fn processed(&mut self, tokens: &[Token]) -> Result<(), BackendError> {
        let _ = tokens;
        Ok(())
    }

    /// Leaves cleanly (commits, closes channels).
    fn close(&mut self) -> Result<(), BackendError> {
        Ok(())
    }

    /// Assignment changes since the last call (a group member given or losing partitions), for
    /// the worker to record; backends that assign partitions by hand have none.
    fn assignment_changes(&mut self) -> Vec<crate::assignment::AssignmentChange> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outgoing_puts_a_head_in_front_of_its_payload_without_touching_it() {
        let mut buf = Outgoing::buffer(4);
        buf[Outgoing::HEADROOM..].copy_from_slice(b"body");
        let mut msg = Outgoing::new(Seq(7), Key(1), Partition(0), &mut buf);
        assert_eq!(msg.payload(), b"body");
        assert_eq!(msg.with_head(*b"12345678"), b"12345678body");
        assert_eq!(msg.payload(), b"body");
        assert_eq!(Outgoing::buffer(0).len(), Outgoing::HEADROOM);
    }

    #[test]
    fn run_tags_keep_only_name_safe_characters() {
        assert_eq!(
            run_tag(Path::new("/r/20250101T120000Z-kafka acks")),
            "20250101T120000Z-kafka_acks"
        );
        assert_eq!(run_tag(Path::new("/r/a.b_c-d")), "a.b_c-d");
        assert_eq!(run_tag(Path::new("/")), "run");
        assert_eq!(run_tag(Path::new(&"x".repeat(100))).len(), 64);
    }

    #[test]
    fn pid_files_name_their_nodes_and_a_node_down_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let f = |n: &str| dir.path().join(n);
        std::fs::write(f("1.pid"), "4242\n").unwrap();
        std::fs::write(f("3.pid"), "not a pid").unwrap();
        std::fs::write(f("4.pid"), "777").unwrap();
        let files = [f("1.pid"), f("2.pid"), f("3.pid"), f("4.pid")];
        assert_eq!(
            pids_in(&files),
            [("node 1".to_owned(), 4242), ("node 4".to_owned(), 777)]
        );
        assert_eq!(pids_in(&files[..1]), [("broker".to_owned(), 4242)]);
        assert_eq!(pids_in(&files[1..2]), []);
    }
}
