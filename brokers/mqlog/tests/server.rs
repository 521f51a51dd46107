//! The server and client end to end, through the `mqlog-server` binary: every request kind,
//! pipelining, long polls, errors, and a clean SIGTERM shutdown.

mod common;

use std::time::{Duration, Instant};

use common::ServerGuard;
use mqlog::client::{Ack, Client, ClientError, ErrorCode};

const T: Duration = Duration::from_secs(10);

/// Asserts that `result` is the server's refusal with `want`.
#[track_caller]
fn assert_server_error<V: std::fmt::Debug>(result: Result<V, ClientError>, want: ErrorCode) {
    let err = result.unwrap_err();
    assert!(
        matches!(err, ClientError::Server { code, .. } if code == want),
        "{err}"
    );
}

#[test]
fn every_request_kind_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerGuard::start(dir.path(), &["--fsync", "interval:5"]);
    let mut c = Client::connect(server.addr, T).unwrap();
    assert!(c.create_topic("orders", 3).unwrap());
    assert!(!c.create_topic("orders", 3).unwrap());
    assert_server_error(c.create_topic("orders", 4), ErrorCode::TopicExists);

    // Pipelined produces to one partition get offsets in send order.
    let mut ids = Vec::new();
    for i in 0..50u32 {
        let recs = [format!("a{i}"), format!("b{i}")];
        ids.push(c.send_produce("orders", 1, &recs, Ack::Written).unwrap());
    }
    assert_eq!(c.produces_in_flight(), 50);
    let mut acks = c.wait_all(T).unwrap();
    acks.sort_by_key(|(id, _)| *id);
    assert_eq!(acks.len(), 50);
    for (i, (id, r)) in acks.into_iter().enumerate() {
        assert_eq!(id, ids[i]);
        assert_eq!(r.unwrap(), 2 * i as u64);
    }
    assert_eq!(
        c.produce("orders", 1, &[b"last"], Ack::Fsynced).unwrap(),
        100
    );
    assert_eq!(c.end_offsets("orders").unwrap(), vec![0, 101, 0]);

    // Fetch from the middle of a batch: exactly the records from that offset on.
    let f = c.fetch("orders", 1, 5, 1 << 20, Duration::ZERO).unwrap();
    assert_eq!(f.end_offset, 101);
    assert_eq!(f.start_offset, 0);
    assert_eq!(f.records.len(), 96);
    assert_eq!(f.records[0].offset, 5);
    assert_eq!(&f.records[0].value[..], b"b2");
    assert_eq!(&f.records[95].value[..], b"last");
    // A small max_bytes still returns one whole batch.
    let f = c.fetch("orders", 1, 0, 1, Duration::ZERO).unwrap();
    assert_eq!(f.records.len(), 2);

    assert_eq!(c.committed("g", "orders", 1).unwrap(), None);
    c.commit("g", "orders", 1, 42).unwrap();
    assert_eq!(c.committed("g", "orders", 1).unwrap(), Some(42));

    assert_server_error(
        c.fetch("nope", 0, 0, 100, Duration::ZERO),
        ErrorCode::UnknownTopic,
    );
    assert_server_error(
        c.fetch("orders", 7, 0, 100, Duration::ZERO),
        ErrorCode::UnknownPartition,
    );
    let err = c.fetch("orders", 1, 500, 100, Duration::ZERO).unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::OutOfRange {
                start: 0,
                end: 101,
                ..
            }
        ),
        "{err}"
    );
    assert_server_error(
        c.produce("nope", 0, &[b"x"], Ack::Written),
        ErrorCode::UnknownTopic,
    );
    assert_server_error(c.create_topic("bad/name", 1), ErrorCode::InvalidArgument);

    // Ack none: no response, but the record is there.
    c.send_produce("orders", 0, &[b"quiet"], Ack::None).unwrap();
    assert_eq!(c.produces_in_flight(), 0);
    let f = c
        .fetch("orders", 0, 0, 1 << 20, Duration::from_secs(5))
        .unwrap();
    assert_eq!(f.records.len(), 1);
    assert_eq!(&f.records[0].value[..], b"quiet");
}

#[test]
fn long_poll_waits_then_wakes_on_append() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerGuard::start(dir.path(), &[]);
    let mut c = Client::connect(server.addr, T).unwrap();
    c.create_topic("t", 1).unwrap();

    // Nothing arrives: the fetch returns empty after about max_wait.
    let start = Instant::now();
    let f = c
        .fetch("t", 0, 0, 1024, Duration::from_millis(300))
        .unwrap();
    let waited = start.elapsed();
    assert!(f.records.is_empty());
    assert!(waited >= Duration::from_millis(290), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");

    // A producer appends while the fetch waits: it returns early with the record.
    let addr = server.addr;
    let producer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        let mut p = Client::connect(addr, T).unwrap();
        p.produce("t", 0, &[b"wake"], Ack::Written).unwrap()
    });
    let start = Instant::now();
    let f = c.fetch("t", 0, 0, 1024, Duration::from_secs(20)).unwrap();
    assert_eq!(producer.join().unwrap(), 0);
    assert_eq!(f.records.len(), 1);
    assert_eq!(&f.records[0].value[..], b"wake");
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn produce_acks_overtake_a_waiting_fetch_on_one_connection() {
    use mqlog::protocol::{self, Request, Response};
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let server = ServerGuard::start(dir.path(), &[]);
    Client::connect(server.addr, T)
        .unwrap()
        .create_topic("t", 2)
        .unwrap();
    let mut s = std::net::TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let mut out = Vec::new();
    // A long poll on partition 1 first, then a produce to partition 0.
    protocol::encode_request(
        &mut out,
        1,
        &Request::Fetch {
            topic: "t".into(),
            partition: 1,
            offset: 0,
            max_bytes: 1024,
            max_wait: Duration::from_secs(3),
        },
    );
    protocol::encode_produce(&mut out, 2, "t", 0, Ack::Written, &[b"x"]);
    let start = Instant::now();
    s.write_all(&out).unwrap();
    let mut read_one = || {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).unwrap();
        let mut payload = vec![0u8; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut payload).unwrap();
        protocol::decode_response(payload.into()).unwrap()
    };
    let (corr, _, resp) = read_one();
    assert_eq!((corr, resp), (2, Response::Produced { base_offset: 0 }));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    let (corr, _, resp) = read_one();
    assert_eq!(corr, 1);
    assert!(
        matches!(resp, Response::Fetched { end_offset: 0, .. }),
        "{resp:?}"
    );
    assert!(start.elapsed() >= Duration::from_millis(2900));
}

#[test]
fn sigterm_shuts_down_cleanly_and_data_survives() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerGuard::start(dir.path(), &["--segment-bytes", "4096"]);
    {
        let mut c = Client::connect(server.addr, T).unwrap();
        c.create_topic("t", 1).unwrap();
        for i in 0..100u32 {
            c.send_produce("t", 0, &[vec![i as u8; 100]], Ack::Written)
                .unwrap();
        }
        assert_eq!(c.wait_all(T).unwrap().len(), 100);
    }
    assert!(
        server.terminate(Duration::from_secs(15)),
        "server did not exit 0 on SIGTERM"
    );
    let server = ServerGuard::start(dir.path(), &["--segment-bytes", "4096"]);
    let mut c = Client::connect(server.addr, T).unwrap();
    assert_eq!(c.end_offsets("t").unwrap(), vec![100]);
    let mut offset = 0;
    while offset < 100 {
        let f = c.fetch("t", 0, offset, 1 << 20, Duration::ZERO).unwrap();
        for r in f.records {
            assert_eq!(r.offset, offset);
            assert_eq!(&r.value[..], &vec![offset as u8; 100][..]);
            offset += 1;
        }
    }
}

#[test]
fn connect_to_a_closed_port_says_where() {
    // Port 1 (tcpmux, privileged): nothing of ours listens there. A port freed by dropping a
    // listener was taken by a server of a test running beside this one (a CI failure).
    let addr: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
    let err = Client::connect(addr, Duration::from_secs(2)).err().unwrap();
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[test]
fn client_timeouts_too_long_for_the_clock_do_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerGuard::start(dir.path(), &[]);
    let mut c = Client::connect(server.addr, T).unwrap();
    assert!(c.create_topic("t", 1).unwrap());
    c.send_produce("t", 0, &[b"x"], Ack::Written).unwrap();
    let acks = c.wait_all(Duration::MAX).unwrap();
    assert_eq!(acks.len(), 1);
    assert!(c.poll_responses(Duration::MAX).unwrap().is_empty());
}
