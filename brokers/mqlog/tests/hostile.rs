//! Hostile clients against a real `mqlog-server` child process, on loopback: connection floods,
//! idle and trickling connections, fetches whose responses are never read, and huge request
//! frames. During each attack a well-behaved client must still be served within 1 s, and under
//! the memory attacks the server's peak RSS (VmHWM of the child) must stay under
//! [`RSS_BOUND_KIB`], the bound the README documents.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::ServerGuard;
use mqlog::client::{Ack, Client};
use mqlog::protocol::{encode_request, Request};

/// The server's peak RSS bound under the memory attacks (README: "The in-house log").
const RSS_BOUND_KIB: u64 = 256 * 1024;
/// How fast a well-behaved client must be served during an attack.
const SERVED_WITHIN: Duration = Duration::from_secs(1);

/// The attacks run one at a time: each measures time and memory, which another attack on the
/// same two cores would distort.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A field of /proc/<pid>/status in KiB (VmRSS: now; VmHWM: the peak).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

fn pid(server: &ServerGuard) -> u32 {
    server.child.as_ref().expect("running").id()
}

/// Connects, produces one record to `ok` and fetches it back; how long that took, or what
/// failed.
fn round_trip(addr: SocketAddr) -> Result<Duration, String> {
    let start = Instant::now();
    let mut c = Client::connect(addr, Duration::from_secs(3)).map_err(|e| e.to_string())?;
    c.set_request_timeout(Duration::from_secs(3));
    let offset = c
        .produce("ok", 0, &[b"ping"], Ack::Written)
        .map_err(|e| format!("a small produce: {e}"))?;
    let f = c
        .fetch("ok", 0, offset, 1024, Duration::ZERO)
        .map_err(|e| format!("a small fetch: {e}"))?;
    assert_eq!(f.records.len(), 1);
    assert_eq!(&f.records[0].value[..], b"ping");
    Ok(start.elapsed())
}

#[track_caller]
fn assert_served(addr: SocketAddr, during: &str) {
    assert_served_within(addr, SERVED_WITHIN, during)
}

/// Right after an attack's connections close, the server is still releasing what they held
/// (hundreds of MiB of budgeted responses): a debug build on a loaded 2-core machine took up
/// to 1.4 s for the next round trip here, so this moment gets its own, wider bound.
const SERVED_AFTER_WITHIN: Duration = Duration::from_secs(3);

#[track_caller]
fn assert_served_within(addr: SocketAddr, within: Duration, during: &str) {
    match round_trip(addr) {
        Ok(took) => assert!(
            took < within,
            "a well-behaved client took {took:?} during {during}"
        ),
        Err(e) => panic!("a well-behaved client failed during {during}: {e}"),
    }
}

/// Round trips every 250 ms for `window`, all asserted only after the peak RSS was: a server
/// that fails both ways shows both.
#[track_caller]
fn served_and_bounded(server: &ServerGuard, window: Duration, during: &str) {
    let before = status_kib(pid(server), "VmRSS");
    let start = Instant::now();
    let mut trips = Vec::new();
    while start.elapsed() < window {
        trips.push(round_trip(server.addr));
        std::thread::sleep(Duration::from_millis(250));
    }
    let peak = status_kib(pid(server), "VmHWM");
    let slowest = trips.iter().filter_map(|t| t.as_ref().ok()).max();
    eprintln!(
        "{during}: server RSS {before} KiB at the start, peak {peak} KiB; slowest of {} round trips {slowest:?}",
        trips.len()
    );
    assert!(
        peak < RSS_BOUND_KIB,
        "peak RSS {peak} KiB during {during} exceeds {RSS_BOUND_KIB} KiB"
    );
    for t in trips {
        match t {
            Ok(took) => assert!(
                took < SERVED_WITHIN,
                "a well-behaved client took {took:?} during {during}"
            ),
            Err(e) => panic!("a well-behaved client failed during {during}: {e}"),
        }
    }
}

fn raw(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).expect("raw connect");
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Waits up to `within` for the server to close `s` (reading and dropping what it sends);
/// when that was seen, or `None`.
fn closed_at(s: &mut TcpStream, within: Duration) -> Option<Instant> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    while start.elapsed() < within {
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return Some(Instant::now()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Some(Instant::now()),
        }
    }
    None
}

/// Background threads of an attack; stopped and joined on drop, even when the test fails.
struct Attack {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Attack {
    fn new() -> Attack {
        Attack {
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
        }
    }
    fn spawn(&mut self, f: impl FnOnce(Arc<AtomicBool>) + Send + 'static) {
        let stop = self.stop.clone();
        self.threads.push(std::thread::spawn(move || f(stop)));
    }
}

impl Drop for Attack {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn server_with_topic(dir: &std::path::Path, extra: &[&str]) -> ServerGuard {
    let server = ServerGuard::start(dir, extra);
    let mut c = Client::connect(server.addr, Duration::from_secs(5)).unwrap();
    c.create_topic("ok", 1).unwrap();
    server
}

/// Defect 2: 1024 connections, half idle and half trickling a frame a byte a second, used to
/// take every slot; a new client then waited forever in the accept backlog.
#[test]
fn a_flood_of_idle_and_trickling_connections_does_not_lock_out_a_client() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_topic(dir.path(), &[]);
    let addr = server.addr;
    let mut idle = Vec::new();
    let mut trickling = Vec::new();
    for i in 0..1024 {
        let mut s = raw(addr);
        if i % 2 == 1 {
            // The start of a 100-byte frame; the rest comes a byte a second.
            s.write_all(&[0, 0, 0, 100, 0]).unwrap();
            trickling.push(s);
        } else {
            idle.push(s);
        }
    }
    let mut attack = Attack::new();
    attack.spawn(move |stop| {
        let start = Instant::now();
        while !stop.load(Relaxed) && start.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(1000));
            for s in &mut trickling {
                let _ = s.write_all(&[0]);
            }
        }
    });
    // Let the server accept the flood.
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..3 {
        assert_served(addr, "a flood of 1024 idle and trickling connections");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(attack);
    drop(idle);
}

/// Defect 2: idle connections and frames trickled a byte at a time are closed after their
/// timeouts, while a client that long-polls back to back, longer in total than the idle
/// timeout, is not.
#[test]
fn idle_and_trickling_connections_are_closed_but_long_polls_are_not() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_topic(
        dir.path(),
        &[
            "--idle-timeout-ms",
            "1500",
            "--max-fetch-wait-ms",
            "1000",
            "--frame-timeout-ms",
            "1000",
        ],
    );
    let addr = server.addr;
    let opened = Instant::now();
    let mut idle = raw(addr);
    let mut trickle = raw(addr);
    trickle.write_all(&[0, 0, 0, 100]).unwrap();
    let mut attack = Attack::new();
    {
        let mut t = trickle.try_clone().unwrap();
        attack.spawn(move |stop| {
            while !stop.load(Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                if t.write_all(&[0]).is_err() {
                    return;
                }
            }
        });
    }
    let poller = std::thread::spawn(move || {
        let mut c = Client::connect(addr, Duration::from_secs(3)).unwrap();
        // Four long polls back to back, 4 s in all: longer than the idle timeout.
        for _ in 0..4 {
            // Asks for 10 s: the server shortens it to its 1 s cap.
            let t = Instant::now();
            let f = c.fetch("ok", 0, 0, 1024, Duration::from_secs(10)).unwrap();
            assert!(f.records.is_empty());
            let waited = t.elapsed();
            assert!(
                waited >= Duration::from_millis(950) && waited < Duration::from_secs(3),
                "{waited:?}"
            );
        }
    });
    let at = closed_at(&mut trickle, Duration::from_secs(5)).expect("trickler not closed");
    let t = at - opened;
    assert!(
        t >= Duration::from_millis(950) && t < Duration::from_millis(2500),
        "{t:?}"
    );
    let at = closed_at(&mut idle, Duration::from_secs(5)).expect("idle connection not closed");
    let t = at - opened;
    assert!(
        t >= Duration::from_millis(1450) && t < Duration::from_millis(3000),
        "{t:?}"
    );
    poller.join().unwrap();
    assert_served(addr, "nothing");
}

/// Defect 2: at the cap, the connection idle the longest makes room, not a long-polling one.
#[test]
fn at_the_cap_the_idlest_connection_makes_room() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_topic(dir.path(), &["--max-connections", "3"]);
    let addr = server.addr;
    let mut oldest = raw(addr);
    std::thread::sleep(Duration::from_millis(100));
    let mut newer = raw(addr);
    std::thread::sleep(Duration::from_millis(100));
    let poller = std::thread::spawn(move || {
        let mut c = Client::connect(addr, Duration::from_secs(3)).unwrap();
        c.fetch("ok", 0, 0, 1024, Duration::from_secs(2)).unwrap()
    });
    std::thread::sleep(Duration::from_millis(300));
    // The fourth connection: `oldest` goes.
    assert_served(addr, "a full server");
    assert!(closed_at(&mut oldest, Duration::from_secs(2)).is_some());
    assert!(closed_at(&mut newer, Duration::from_millis(200)).is_none());
    // The long poll was not cut: it ends with the record the round trip wrote.
    let f = poller.join().unwrap();
    assert_eq!(f.records.len(), 1);
}

/// Writes `n` MiB of 1 KiB records (batches of 1 MiB) to `topic`.
fn fill(addr: SocketAddr, topic: &str, mib: usize) {
    let mut c = Client::connect(addr, Duration::from_secs(5)).unwrap();
    c.create_topic(topic, 1).unwrap();
    let records: Vec<Vec<u8>> = (0..1000).map(|i| vec![i as u8; 1024]).collect();
    for _ in 0..mib {
        c.send_produce(topic, 0, &records, Ack::Written).unwrap();
    }
    let acks = c.wait_all(Duration::from_secs(30)).unwrap();
    assert_eq!(acks.len(), mib);
}

/// Defect 3: 96 fetches of 16 MiB whose responses are never read (34 bytes each) used to take
/// the server past 1.6 GB.
#[test]
fn unread_fetch_responses_stay_within_the_memory_bound() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_topic(dir.path(), &[]);
    let addr = server.addr;
    fill(addr, "big", 20);
    let mut hostile = Vec::new();
    for _ in 0..6 {
        let mut s = raw(addr);
        let mut out = Vec::new();
        for corr in 0..16 {
            encode_request(
                &mut out,
                corr,
                &Request::Fetch {
                    topic: "big".into(),
                    partition: 0,
                    offset: 0,
                    max_bytes: u32::MAX,
                    max_wait: Duration::ZERO,
                },
            );
        }
        s.write_all(&out).unwrap();
        hostile.push(s);
    }
    std::thread::sleep(Duration::from_millis(300));
    served_and_bounded(&server, Duration::from_secs(3), "96 unread 16 MiB fetches");
    drop(hostile);
    assert_served_within(addr, SERVED_AFTER_WITHIN, "the end of the attack");
}

/// Defect 9: request frames of 63 MiB on several connections at once used to be buffered
/// whole on each (4 took the server to 265 MB; these 8, past 400 MB).
#[test]
fn huge_request_frames_stay_within_the_memory_bound() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_topic(dir.path(), &[]);
    let addr = server.addr;
    let mut attack = Attack::new();
    for _ in 0..8 {
        attack.spawn(move |stop| {
            let mut s = raw(addr);
            let len: u32 = 63 << 20;
            // A produce whose records do not decode: the server must read it all to know.
            let mut head = len.to_be_bytes().to_vec();
            head.extend([0, 0, 0, 1, 2]);
            if s.write_all(&head).is_err() {
                return;
            }
            let chunk = vec![0u8; 1 << 20];
            let mut left = len as usize - 5;
            while left > 0 && !stop.load(Relaxed) {
                let n = left.min(chunk.len());
                if s.write_all(&chunk[..n]).is_err() {
                    return;
                }
                left -= n;
            }
            // The answer (a malformed request); then this attacker is done.
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = s.read(&mut [0u8; 64]);
        });
    }
    std::thread::sleep(Duration::from_millis(200));
    served_and_bounded(
        &server,
        Duration::from_secs(3),
        "eight 63 MiB request frames",
    );
    drop(attack);
    assert_served_within(addr, SERVED_AFTER_WITHIN, "the end of the attack");
}

/// Defect 9: huge frames written slowly hold their room in the frame budget only until the
/// frame timeout; the ones that find no room are refused, and small requests go on meanwhile.
#[test]
fn slow_huge_frames_are_dropped_at_the_frame_timeout() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let server = server_with_topic(dir.path(), &["--frame-timeout-ms", "1000"]);
    let addr = server.addr;
    let mut slow = Vec::new();
    let sent = Instant::now();
    for _ in 0..4 {
        let mut s = raw(addr);
        let mut head = (63u32 << 20).to_be_bytes().to_vec();
        head.extend([0, 0, 0, 1, 2]);
        head.extend(vec![0u8; 100 << 10]);
        s.write_all(&head).unwrap();
        slow.push(s);
    }
    assert_served(addr, "four slow 63 MiB frames");
    for s in &mut slow {
        let at =
            closed_at(s, Duration::from_secs(4)).expect("a slow huge frame kept its connection");
        assert!(at - sent < Duration::from_millis(2500), "{:?}", at - sent);
    }
    assert_served_within(addr, SERVED_AFTER_WITHIN, "the end of the attack");
}
