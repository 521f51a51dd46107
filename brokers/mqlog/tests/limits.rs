//! The log's limits through the server binary: open files stay bounded whatever the number of
//! partitions (the server runs under a low RLIMIT_NOFILE), a restart always reopens the folder,
//! and partitions per topic and topics per server are refused past their limits, by name.

mod common;

use std::time::Duration;

use common::ServerGuard;
use mqlog::client::{Ack, Client, ClientError, ErrorCode};

const T: Duration = Duration::from_secs(20);
/// The server's open-file limit: far fewer descriptors than segment files.
const NOFILE: u64 = 128;
const PARTITIONS: u32 = 200;
const TOPICS: [&str; 2] = ["wide-a", "wide-b"];
/// Batches per partition; each (532 bytes) rolls a 1 KiB segment, so 3 segment files each.
const BATCHES: u64 = 3;

fn record(topic: &str, partition: u32, i: u64) -> Vec<u8> {
    let mut r = format!("{topic}/{partition}/{i}/").into_bytes();
    r.resize(500, b'.');
    r
}

/// Every partition of every topic holds exactly its `BATCHES` records, in order.
fn assert_all_there(c: &mut Client) {
    for topic in TOPICS {
        assert_eq!(
            c.end_offsets(topic).unwrap(),
            vec![BATCHES; PARTITIONS as usize],
            "{topic}"
        );
        for p in 0..PARTITIONS {
            let f = c.fetch(topic, p, 0, 1 << 20, Duration::ZERO).unwrap();
            let mut got: Vec<_> = f.records.iter().map(|r| r.value.to_vec()).collect();
            // One fetch stops at a segment's end: read on until the partition's end.
            while (got.len() as u64) < BATCHES {
                let f = c
                    .fetch(topic, p, got.len() as u64, 1 << 20, Duration::ZERO)
                    .unwrap();
                assert!(!f.records.is_empty(), "{topic}/{p} stops at {}", got.len());
                got.extend(f.records.iter().map(|r| r.value.to_vec()));
            }
            let want: Vec<_> = (0..BATCHES).map(|i| record(topic, p, i)).collect();
            assert_eq!(got, want, "{topic}/{p}");
        }
    }
}

/// 400 partitions, 1 200 segment files, 128 descriptors: topics are created whole, every
/// partition takes writes and serves reads, and the server reopens its folder after a
/// SIGKILL and after a clean SIGTERM (whose flush stays within the limit too).
#[test]
fn partitions_beyond_the_open_file_limit_are_created_served_and_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--segment-bytes", "1024"];
    let mut server = ServerGuard::start_limited(dir.path(), &args, Some(NOFILE));
    let mut c = Client::connect(server.addr, T).unwrap();
    for topic in TOPICS {
        assert!(c.create_topic(topic, PARTITIONS).unwrap(), "{topic}");
    }
    for i in 0..BATCHES {
        for topic in TOPICS {
            for p in 0..PARTITIONS {
                // Some fsynced: their segment files and folders are fsynced through the cap.
                let ack = if p % 10 == 0 {
                    Ack::Fsynced
                } else {
                    Ack::Written
                };
                c.send_produce(topic, p, &[record(topic, p, i)], ack)
                    .unwrap();
            }
            for (_, r) in c.wait_all(T).unwrap() {
                r.unwrap();
            }
        }
    }
    assert_all_there(&mut c);
    drop(c);

    server.kill();
    let mut server = ServerGuard::start_limited(dir.path(), &args, Some(NOFILE));
    let mut c = Client::connect(server.addr, T).unwrap();
    assert_all_there(&mut c);
    drop(c);
    assert!(
        server.terminate(Duration::from_secs(20)),
        "no clean exit on SIGTERM"
    );

    let server = ServerGuard::start_limited(dir.path(), &args, Some(NOFILE));
    let mut c = Client::connect(server.addr, T).unwrap();
    assert_all_there(&mut c);
}

#[track_caller]
fn assert_refused<V: std::fmt::Debug>(result: Result<V, ClientError>, names: &str) {
    match result {
        Err(ClientError::Server {
            code: ErrorCode::InvalidArgument,
            message,
        }) => assert!(message.contains(names), "{message}"),
        other => panic!("not refused by {names}: {other:?}"),
    }
}

/// Past `--max-partitions-per-topic` or `--max-topics`, creation is refused with an error
/// naming the limit; a restart with a lower limit still opens every topic it has.
#[test]
fn partitions_and_topics_past_their_limits_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let limits = ["--max-partitions-per-topic", "8", "--max-topics", "2"];
    let server = ServerGuard::start(dir.path(), &limits);
    let mut c = Client::connect(server.addr, T).unwrap();
    assert_refused(c.create_topic("a", 9), "--max-partitions-per-topic");
    assert!(c.create_topic("a", 8).unwrap());
    assert!(c.create_topic("b", 1).unwrap());
    assert_refused(c.create_topic("c", 1), "--max-topics");
    // An existing topic is still answered as such.
    assert!(!c.create_topic("b", 1).unwrap());
    c.produce("a", 7, &[b"x"], Ack::Fsynced).unwrap();
    drop(c);
    drop(server);

    let server = ServerGuard::start(dir.path(), &["--max-topics", "1"]);
    let mut c = Client::connect(server.addr, T).unwrap();
    assert_eq!(c.end_offsets("a").unwrap(), [0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(c.end_offsets("b").unwrap(), [0]);
    assert_refused(c.create_topic("d", 1), "--max-topics");
}
