//! Fuzz-style robustness, seeded and bounded: random and mutated bytes through the protocol
//! decoders, and at a live server connection. Nothing panics, and the server still serves a
//! well-behaved client afterwards.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Rng, ServerGuard};
use mqlog::client::{Ack, Client};
use mqlog::protocol::{
    decode_request, decode_response, encode_produce, encode_request, encode_response, kind,
    Request, Response,
};

/// Valid frames to mutate, so the fuzzing reaches past the first length check.
fn seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut f = Vec::new();
    encode_produce(
        &mut f,
        1,
        "t",
        0,
        Ack::Written,
        &[&b"hello"[..], &b"world!"[..]],
    );
    out.push(f);
    for req in [
        Request::CreateTopic {
            topic: "t".into(),
            partitions: 2,
        },
        Request::Fetch {
            topic: "t".into(),
            partition: 0,
            offset: 0,
            max_bytes: 100,
            max_wait: Duration::from_millis(1),
        },
        Request::Commit {
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
            offset: 1,
        },
        Request::Committed {
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
        },
        Request::EndOffsets { topic: "t".into() },
    ] {
        let mut f = Vec::new();
        encode_request(&mut f, 2, &req);
        out.push(f);
    }
    out
}

fn mutate(rng: &mut Rng, frame: &[u8]) -> Vec<u8> {
    let mut f = frame.to_vec();
    match rng.below(4) {
        0 => {
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(f.len() as u64) as usize;
                f[i] = rng.next() as u8;
            }
        }
        1 => f.truncate(rng.below(f.len() as u64) as usize),
        2 => {
            let n = rng.below(16) as usize;
            f.extend(rng.bytes(n));
        }
        _ => {
            let i = rng.below(f.len() as u64) as usize;
            f.insert(i, rng.next() as u8);
        }
    }
    f
}

#[test]
fn decoders_never_panic_on_random_or_mutated_bytes() {
    let mut rng = Rng::new(42);
    let seeds = seeds();
    let mut decoded = 0;
    for i in 0..200_000u32 {
        let bytes = if i % 2 == 0 {
            let n = rng.below(64) as usize;
            rng.bytes(n)
        } else {
            let s = &seeds[rng.below(seeds.len() as u64) as usize];
            mutate(&mut rng, &s[4..])
        };
        let b = Bytes::from(bytes);
        if decode_request(b.clone()).is_ok() {
            decoded += 1;
        }
        let _ = decode_response(b);
    }
    // Some mutations (a changed offset, say) are still valid requests.
    assert!(decoded > 0);
    let mut out = Vec::new();
    encode_response(
        &mut out,
        1,
        kind::END_OFFSETS,
        &Response::EndOffsets(vec![1; 3]),
    );
    // A response claiming a huge count must fail cleanly, not allocate for it.
    out[10..14].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(decode_response(Bytes::copy_from_slice(&out[4..])).is_err());
}

fn good_client_works(addr: std::net::SocketAddr, topic: &str) {
    let mut c = Client::connect(addr, Duration::from_secs(10)).unwrap();
    c.create_topic(topic, 1).unwrap();
    let base = c
        .produce(topic, 0, &[b"still alive"], Ack::Written)
        .unwrap();
    let f = c.fetch(topic, 0, base, 1024, Duration::ZERO).unwrap();
    assert_eq!(&f.records[0].value[..], b"still alive");
}

#[test]
fn live_server_survives_garbage_connections() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerGuard::start(dir.path(), &[]);
    good_client_works(server.addr, "t");
    let mut rng = Rng::new(7);
    let seeds = seeds();
    let started = Instant::now();
    let mut conns = 0;
    while conns < 300 && started.elapsed() < Duration::from_secs(20) {
        conns += 1;
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut payload = Vec::new();
        for _ in 0..1 + rng.below(5) {
            match rng.below(4) {
                // Hostile length: must be refused without allocating it.
                0 => payload.extend_from_slice(&(0xF000_0000u32 | rng.next() as u32).to_be_bytes()),
                // Random bytes.
                1 => {
                    let n = rng.below(200) as usize;
                    payload.extend(rng.bytes(n));
                }
                // A well-framed but mutated request.
                _ => {
                    let s = &seeds[rng.below(seeds.len() as u64) as usize];
                    let body = mutate(&mut rng, &s[4..]);
                    payload.extend_from_slice(&(body.len() as u32).to_be_bytes());
                    payload.extend(body);
                }
            }
        }
        let _ = s.write_all(&payload);
        let mut sink = [0u8; 4096];
        let _ = s.read(&mut sink);
    }
    assert!(server.alive(), "the server died");
    good_client_works(server.addr, "t2");
    // A huge declared frame followed by silence must not stall other clients either.
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(&(60u32 << 20).to_be_bytes()).unwrap();
    s.write_all(&[0u8; 1000]).unwrap();
    good_client_works(server.addr, "t3");
    assert!(server.alive());
}
