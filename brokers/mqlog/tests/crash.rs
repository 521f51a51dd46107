//! Crash safety through the real binary: producers record every acknowledged offset and
//! payload while the server (fsync=always) is SIGKILLed mid-stream; after a restart on the same
//! directory every acknowledged record must be there byte for byte.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Rng, ServerGuard};
use mqlog::client::{Ack, Client, CorrelationId};

const T: Duration = Duration::from_secs(10);
const PARTITIONS: u32 = 2;

/// What one producer saw acknowledged: partition, base offset, the batch's records.
type Acked = Vec<(u32, u64, Vec<Vec<u8>>)>;

fn producer(addr: std::net::SocketAddr, id: u64, stop: Arc<AtomicBool>) -> Acked {
    let mut rng = Rng::new(id + 1);
    let mut acked = Acked::new();
    let Ok(mut c) = Client::connect(addr, T) else {
        return acked;
    };
    let mut pending: HashMap<CorrelationId, (u32, Vec<Vec<u8>>)> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seq = 0u64;
    'outer: while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        // Keep up to 8 batches in flight; alternate ack levels.
        while pending.len() < 8 {
            let partition = (rng.below(u64::from(PARTITIONS))) as u32;
            let n = 1 + rng.below(20) as usize;
            let batch: Vec<Vec<u8>> = (0..n)
                .map(|_| {
                    seq += 1;
                    let mut r = format!("p{id}-s{seq}-").into_bytes();
                    let pad = rng.below(300) as usize;
                    r.extend(rng.bytes(pad));
                    r
                })
                .collect();
            let ack = if seq & 1 == 0 {
                Ack::Written
            } else {
                Ack::Fsynced
            };
            match c.send_produce("t", partition, &batch, ack) {
                Ok(cid) => {
                    pending.insert(cid, (partition, batch));
                }
                Err(_) => break 'outer,
            }
        }
        match c.poll_responses(Duration::from_millis(200)) {
            Ok(acks) => {
                for (cid, r) in acks {
                    let (partition, batch) = pending.remove(&cid).expect("ack of a sent batch");
                    if let Ok(base) = r {
                        acked.push((partition, base, batch));
                    }
                }
            }
            Err(_) => break,
        }
    }
    acked
}

#[test]
fn every_acknowledged_record_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--fsync", "always", "--segment-bytes", "65536"];
    let mut server = ServerGuard::start(dir.path(), &args);
    Client::connect(server.addr, T)
        .unwrap()
        .create_topic("t", PARTITIONS)
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let producers: Vec<_> = (0..3)
        .map(|id| {
            let (addr, stop) = (server.addr, stop.clone());
            std::thread::spawn(move || producer(addr, id, stop))
        })
        .collect();
    // Kill mid-stream: once enough is acknowledged that segments have rolled.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut probe = Client::connect(server.addr, T).unwrap();
    loop {
        let ends = probe.end_offsets("t").unwrap();
        if ends.iter().sum::<u64>() > 20_000 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill();
    stop.store(true, Ordering::Relaxed);
    drop(probe);
    let acked: Vec<Acked> = producers.into_iter().map(|p| p.join().unwrap()).collect();
    let total: usize = acked.iter().flatten().map(|(_, _, b)| b.len()).sum();
    assert!(
        total > 100,
        "only {total} records acknowledged before the kill"
    );

    let server = ServerGuard::start(dir.path(), &args);
    let mut c = Client::connect(server.addr, T).unwrap();
    let ends = c.end_offsets("t").unwrap();
    let mut stored: Vec<HashMap<u64, Vec<u8>>> = vec![HashMap::new(); PARTITIONS as usize];
    for p in 0..PARTITIONS {
        let mut offset = 0;
        while offset < ends[p as usize] {
            let f = c.fetch("t", p, offset, 4 << 20, Duration::ZERO).unwrap();
            assert!(!f.records.is_empty(), "no progress at {p}/{offset}");
            for r in f.records {
                assert_eq!(r.offset, offset, "offsets are dense");
                stored[p as usize].insert(r.offset, r.value.to_vec());
                offset += 1;
            }
        }
    }
    let mut checked = 0;
    for (partition, base, batch) in acked.iter().flatten() {
        for (i, rec) in batch.iter().enumerate() {
            let offset = base + i as u64;
            let got = stored[*partition as usize].get(&offset);
            assert_eq!(
                got,
                Some(rec),
                "acknowledged record {partition}/{offset} lost or changed"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, total);
    eprintln!("{total} acknowledged records checked after SIGKILL; end offsets {ends:?}");
    // And the log takes appends at its end after the restart.
    let next = c.produce("t", 0, &[b"after"], Ack::Fsynced).unwrap();
    assert_eq!(next, ends[0]);
}
