//! The log backend's consumer when its position is gone, against an in-process log server
//! whose retention removes the oldest records: `auto_offset_reset` earliest (the default) and
//! latest skip to the log start or end and log the gap (partition, from, to, count); `error`
//! stops the consumer with an error naming the offsets. A server refusal of another kind ends
//! the consumer instead of retrying the same offset forever.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mq_backend_log::LogBackend;
use mq_core::delivery::{ConsumerAck, Durability, ProducerAck};
use mq_core::{Backend, Consumer, DeliverySink, Partition};
use mqlog::client::{Ack, Client, ClientError};
use mqlog::protocol::{decode_request, encode_response, ErrorCode, Request, Response};
use mqlog::storage::{Log, LogConfig};
use serde_json::json;

const T: Duration = Duration::from_secs(10);

/// A log server on a thread of this process, stopped and joined on drop.
struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        let _ = self.thread.take().map(|t| t.join());
    }
}

/// 1 KiB segments, 2 KiB kept per partition, retention applied every 20 ms.
fn start_server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(
        dir.path(),
        LogConfig {
            segment_bytes: 1024,
            retention_bytes: Some(2048),
            retention_check_interval: Duration::from_millis(20),
            ..LogConfig::default()
        },
    )
    .unwrap();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            mqlog::server::run(listener, log.clone(), async {
                let _ = stop_rx.await;
            })
            .await
            .unwrap();
            log.close().unwrap();
        });
    });
    Server {
        addr: addr_rx.recv_timeout(T).unwrap(),
        stop: Some(stop_tx),
        thread: Some(thread),
        _dir: dir,
    }
}

/// Writes `n` records of 100 bytes (`[i; 100]`) one per batch, from record `first` on.
fn produce(c: &mut Client, first: u32, n: u32) {
    for i in first..first + n {
        c.produce("t", 0, &[vec![i as u8; 100]], Ack::Written)
            .unwrap();
    }
}

/// The log start once retention has settled (two equal readings 100 ms apart).
fn settled_start(c: &mut Client) -> (u64, u64) {
    let deadline = Instant::now() + T;
    let mut last = None;
    loop {
        let start = match c.fetch("t", 0, 0, 1024, Duration::ZERO) {
            Err(ClientError::OutOfRange { start, end, .. }) => Some((start, end)),
            _ => None,
        };
        if let Some(settled) = start.filter(|_| start == last) {
            return settled;
        }
        assert!(Instant::now() < deadline, "retention never moved the start");
        last = start;
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Sink(Vec<Vec<u8>>);
impl DeliverySink for Sink {
    fn deliver(&mut self, payload: &[u8], partition: Partition) {
        assert_eq!(partition, Partition(0));
        self.0.push(payload.to_vec());
    }
}

/// What `tracing` writes while `f` runs on this thread (what the worker's log file gets).
fn logged<R>(f: impl FnOnce() -> R) -> (R, String) {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let out = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || out.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let r = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    (r, text)
}

fn consumer(addr: SocketAddr, reset: Option<&str>) -> Box<dyn Consumer> {
    let mut options = json!({ "mode": "external", "address": addr.to_string() });
    if let Some(r) = reset {
        options["auto_offset_reset"] = json!(r);
    }
    let delivery = mq_testkit::delivery(
        ProducerAck::Leader,
        ConsumerAck::AfterProcess,
        Durability::Memory,
    );
    let plan = mq_testkit::plan("log", "v", delivery, options, (100, 1, "30s"));
    assert_eq!(LogBackend.validate(&plan), vec![]);
    let endpoint = json!({ "address": addr.to_string(), "topic": "t", "group": "g" });
    let ctx = mq_testkit::worker_ctx(&plan, &endpoint, vec![Partition(0)], 1);
    LogBackend.consumer(&ctx).unwrap()
}

/// Polls until `want` records arrived (or 10 s passed); returns them.
fn take(c: &mut dyn Consumer, want: usize) -> Vec<Vec<u8>> {
    let mut sink = Sink(Vec::new());
    let deadline = Instant::now() + T;
    while sink.0.len() < want && Instant::now() < deadline {
        c.poll(Duration::from_millis(100), &mut sink).unwrap();
    }
    sink.0
}

#[test]
fn earliest_by_default_skips_to_the_log_start_and_logs_the_gap() {
    let server = start_server();
    let mut c = Client::connect(server.addr, T).unwrap();
    c.create_topic("t", 1).unwrap();
    produce(&mut c, 0, 60);
    let (start, end) = settled_start(&mut c);
    assert!(start > 0 && end == 60, "{start}..{end}");

    let ((got, extra), log) = logged(|| {
        // No committed offset: the consumer starts at 0, which retention removed.
        let mut consumer = consumer(server.addr, None);
        let got = take(consumer.as_mut(), (end - start) as usize);
        let mut sink = Sink(Vec::new());
        consumer
            .poll(Duration::from_millis(200), &mut sink)
            .unwrap();
        consumer.close().unwrap();
        (got, sink.0.len())
    });
    assert_eq!(got.len() as u64, end - start);
    assert_eq!(extra, 0);
    for (i, v) in got.iter().enumerate() {
        assert_eq!(v, &vec![(start as usize + i) as u8; 100]);
    }
    let want = format!(
        "offset 0 of partition 0 is out of range (the log holds {start}..60: retention removed \
         the offsets below {start}); auto_offset_reset = earliest: resuming at {start}, {start} \
         offsets skipped"
    );
    assert!(log.contains(&want), "{log}");
    assert!(log.contains(&format!("skipped {start} offsets")), "{log}");
    assert_eq!(c.committed("g", "t", 0).unwrap(), Some(60));
}

#[test]
fn latest_skips_to_the_log_end() {
    let server = start_server();
    let mut c = Client::connect(server.addr, T).unwrap();
    c.create_topic("t", 1).unwrap();
    produce(&mut c, 0, 60);
    let (start, end) = settled_start(&mut c);
    let ((before, after), log) = logged(|| {
        let mut consumer = consumer(server.addr, Some("latest"));
        let mut sink = Sink(Vec::new());
        consumer
            .poll(Duration::from_millis(200), &mut sink)
            .unwrap();
        let before = sink.0.len();
        // The consumer is at the end now: it gets exactly what comes next.
        produce(&mut c, 60, 3);
        (before, take(consumer.as_mut(), 3))
    });
    assert_eq!(before, 0);
    assert_eq!(after, vec![vec![60u8; 100], vec![61; 100], vec![62; 100]]);
    let want = format!(
        "(the log holds {start}..{end}: retention removed the offsets below {start}); \
         auto_offset_reset = latest: resuming at 60, 60 offsets skipped"
    );
    assert!(log.contains(&want), "{log}");
}

#[test]
fn error_stops_the_consumer_naming_the_offsets() {
    let server = start_server();
    let mut c = Client::connect(server.addr, T).unwrap();
    c.create_topic("t", 1).unwrap();
    produce(&mut c, 0, 60);
    let (start, _) = settled_start(&mut c);
    let mut consumer = consumer(server.addr, Some("error"));
    let mut sink = Sink(Vec::new());
    let e = consumer
        .poll(Duration::from_millis(100), &mut sink)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!(
            "offset 0 of partition 0 of t is out of range: the log holds {start}..60 \
             (retention removed the offsets below {start}); auto_offset_reset = \"error\" stops"
        )),
        "{e}"
    );
    assert!(sink.0.is_empty());
}

#[test]
fn an_unknown_option_value_is_a_validation_error() {
    let delivery = mq_testkit::delivery(
        ProducerAck::Leader,
        ConsumerAck::AfterProcess,
        Durability::Memory,
    );
    let options =
        json!({ "mode": "external", "address": "127.0.0.1:1", "auto_offset_reset": "smallest" });
    let plan = mq_testkit::plan("log", "v", delivery, options, (100, 1, "30s"));
    let errors = LogBackend.validate(&plan);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let text = format!("{errors:?}");
    assert!(
        text.contains("smallest") && text.contains("earliest"),
        "{text}"
    );
}

/// A server that answers every committed-offset request with "none" and every fetch with a
/// storage error; counts the fetches.
fn failing_server() -> (SocketAddr, Arc<Mutex<usize>>, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fetches = Arc::new(Mutex::new(0));
    let counted = fetches.clone();
    let thread = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        loop {
            let mut len = [0u8; 4];
            if s.read_exact(&mut len).is_err() {
                return;
            }
            let mut payload = vec![0u8; u32::from_be_bytes(len) as usize];
            if s.read_exact(&mut payload).is_err() {
                return;
            }
            let (corr, req) = decode_request(payload.into()).unwrap();
            let resp = match req {
                Request::Committed { .. } => Response::CommittedOffset(None),
                Request::Fetch { .. } => {
                    *counted.lock().unwrap() += 1;
                    Response::Error {
                        code: ErrorCode::Storage,
                        message: "reading segment 0: Input/output error".into(),
                    }
                }
                other => panic!("unexpected {other:?}"),
            };
            let mut out = Vec::new();
            encode_response(&mut out, corr, req_kind(&resp), &resp);
            if s.write_all(&out).is_err() {
                return;
            }
        }
    });
    (addr, fetches, thread)
}

fn req_kind(resp: &Response) -> u8 {
    match resp {
        Response::CommittedOffset(_) => mqlog::protocol::kind::COMMITTED,
        _ => mqlog::protocol::kind::FETCH,
    }
}

#[test]
fn another_server_error_ends_the_consumer_instead_of_retrying_forever() {
    let (addr, fetches, thread) = failing_server();
    let mut consumer = consumer(addr, None);
    let mut sink = Sink(Vec::new());
    let e = consumer
        .poll(Duration::from_millis(100), &mut sink)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("consuming partition 0 of t at offset 0")
            && e.contains("Storage")
            && e.contains("Input/output error"),
        "{e}"
    );
    assert_eq!(*fetches.lock().unwrap(), 1);
    drop(consumer);
    thread.join().unwrap();
}
