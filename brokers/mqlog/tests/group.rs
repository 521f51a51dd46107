//! Consumer groups through the `mqlog-server` binary: two members share a topic, one stops
//! heartbeating, and after its session timeout the other is told to rebalance and gets every
//! partition; a partition still held is handed over only once its holder joins again; a
//! leave moves partitions at once.

mod common;

use std::time::{Duration, Instant};

use common::ServerGuard;
use mqlog::client::{Client, ClientError, ErrorCode};

const T: Duration = Duration::from_secs(10);
const SESSION_MS: u32 = 1000;

#[test]
fn a_silent_member_s_partitions_move_to_the_other_after_its_session() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerGuard::start(dir.path(), &[]);
    let mut c = Client::connect(server.addr, T).unwrap();
    c.create_topic("t", 4).unwrap();
    let a = c.join_group("g", "t", "a", SESSION_MS).unwrap();
    assert_eq!(a.partitions, vec![0, 1, 2, 3]);
    // b's half is still a's: b gets it once a has given it up.
    let b = c.join_group("g", "t", "b", SESSION_MS).unwrap();
    assert_eq!(b.partitions, Vec::<u32>::new());
    // a learns of b at its next heartbeat and joins again for its half.
    assert!(c.heartbeat("g", "a", a.generation).unwrap());
    let a = c.join_group("g", "t", "a", SESSION_MS).unwrap();
    assert_eq!(
        (a.generation, a.partitions.clone()),
        (b.generation, vec![0, 1])
    );
    assert!(c.heartbeat("g", "b", b.generation).unwrap());
    let b = c.join_group("g", "t", "b", SESSION_MS).unwrap();
    assert_eq!(b.partitions, vec![2, 3]);
    // b stops; a heartbeats every 200 ms and is told to rebalance once b's session is over.
    let silent_from = Instant::now();
    let mut rebalance_after = None;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(200));
        if c.heartbeat("g", "a", a.generation).unwrap() {
            rebalance_after = Some(silent_from.elapsed());
            break;
        }
    }
    let after = rebalance_after.expect("a was never told to rebalance");
    assert!(
        after >= Duration::from_millis(u64::from(SESSION_MS)) && after < Duration::from_secs(5),
        "{after:?}"
    );
    let a2 = c.join_group("g", "t", "a", SESSION_MS).unwrap();
    assert_eq!(a2.partitions, vec![0, 1, 2, 3]);
    assert!(a2.generation != a.generation);
    // The dead member is told to rebalance too if it comes back.
    assert!(c.heartbeat("g", "b", b.generation).unwrap());
    // A leave moves the partitions at once.
    let b = c.join_group("g", "t", "b", SESSION_MS).unwrap();
    assert_eq!(b.partitions, Vec::<u32>::new(), "a holds them all");
    c.leave_group("g", "b").unwrap();
    assert!(c.heartbeat("g", "a", b.generation).unwrap());
    assert_eq!(
        c.join_group("g", "t", "a", SESSION_MS).unwrap().partitions,
        vec![0, 1, 2, 3]
    );
}

#[test]
fn bad_group_requests_are_refused_with_the_valid_values() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerGuard::start(dir.path(), &[]);
    let mut c = Client::connect(server.addr, T).unwrap();
    c.create_topic("t", 2).unwrap();
    let err = c.join_group("g", "t", "a", 10).unwrap_err();
    assert!(
        matches!(
            &err,
            ClientError::Server {
                code: ErrorCode::InvalidArgument,
                ..
            }
        ) && err.to_string().contains("1000..=300000"),
        "{err}"
    );
    let err = c.join_group("g", "nope", "a", 1000).unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Server {
                code: ErrorCode::UnknownTopic,
                ..
            }
        ),
        "{err}"
    );
    let err = c.join_group("", "t", "a", 1000).unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Server {
                code: ErrorCode::InvalidArgument,
                ..
            }
        ),
        "{err}"
    );
    // The connection still serves.
    assert_eq!(
        c.join_group("g", "t", "a", 1000).unwrap().partitions,
        vec![0, 1]
    );
}
