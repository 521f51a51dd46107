//! A real network of namespaces, driven as a cluster's faults drive it: TCP between the host and
//! the nodes and between nodes works, a cut stops exactly the links it names, a slow link adds
//! its delay to a round trip, full loss stops it, heal restores all; removal (and a dropped
//! network, and the sweep after a run that died) leaves no namespace, device or process.
//! Skipped, saying why, where this machine lacks network-namespace rights.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mq_netns::{ip, Endpoint, Network, Shape};

const PORT: u16 = 7000;

/// False (after a loud note) without network-namespace rights; panics instead when
/// `$MQ_BENCH_REQUIRE_BROKERS` is set, as the broker tests do.
fn allowed() -> bool {
    match mq_netns::check() {
        Ok(()) => true,
        Err(why) if std::env::var_os("MQ_BENCH_REQUIRE_BROKERS").is_some() => {
            panic!(
                "MQ_BENCH_REQUIRE_BROKERS is set but network namespaces are not available: {why}"
            )
        }
        Err(why) => {
            eprintln!("\n!!!!! SKIPPED: {why} !!!!!\n");
            false
        }
    }
}

/// Runs `f` on a thread inside namespace `ns` (setns affects only the calling thread).
fn spawn_in<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns(2) on a namespace file we hold open, for this thread only.
        let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
}

/// An echo server on `addr:PORT` inside `ns`, for the test's life (its thread is detached).
fn echo_server(ns: &str, addr: Ipv4Addr) {
    let (tx, rx) = mpsc::channel();
    let _ = spawn_in(ns, move || {
        let l = TcpListener::bind((addr, PORT)).unwrap();
        tx.send(()).unwrap();
        for mut c in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut b = [0u8; 64];
                while let Ok(n) = c.read(&mut b) {
                    if n == 0 || c.write_all(&b[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    rx.recv_timeout(Duration::from_secs(5))
        .expect("echo server bound");
}

/// One echo round trip to `to` within `limit`: its time, or why not.
fn round_trip(to: Ipv4Addr, limit: Duration) -> Result<Duration, String> {
    let t = Instant::now();
    let mut s = TcpStream::connect_timeout(&SocketAddr::from((to, PORT)), limit)
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(limit)).unwrap();
    s.write_all(b"ping").map_err(|e| e.to_string())?;
    let mut b = [0u8; 4];
    s.read_exact(&mut b).map_err(|e| format!("read: {e}"))?;
    assert_eq!(&b, b"ping");
    Ok(t.elapsed())
}

/// A round trip made from inside namespace `ns`.
fn round_trip_from(ns: &str, to: Ipv4Addr, limit: Duration) -> Result<Duration, String> {
    spawn_in(ns, move || round_trip(to, limit)).join().unwrap()
}

fn leftovers(tag: &str, device: &str) -> (Vec<String>, bool) {
    let ours: Vec<String> = ip::namespaces()
        .unwrap()
        .into_iter()
        .filter(|n| n.contains(tag))
        .collect();
    let links = ip::ip(&["-o", "link", "show"]).unwrap();
    (ours, links.contains(&format!(": {device}:")))
}

#[test]
fn cuts_slow_links_and_heal_act_on_exactly_the_links_they_name() {
    if !allowed() {
        return;
    }
    let tag = format!("nstest-{}", std::process::id());
    let mut net = Network::create(&tag, 2).unwrap();
    let n1 = net.node_addr(1);
    assert_eq!(net.namespace(1), format!("mqb-{tag}-n1"));
    echo_server(&net.namespace(1), n1);
    let short = Duration::from_millis(700);
    let ns2 = net.namespace(2);

    let base = round_trip(n1, short).expect("host to node 1");
    round_trip_from(&ns2, n1, short).expect("node 2 to node 1");
    assert!(base < Duration::from_millis(100), "{base:?}");

    // Node 1 cut from node 2; the host still reaches node 1.
    net.cut(&[Endpoint::Node(1)], &[Endpoint::Node(2)]);
    let e = round_trip_from(&ns2, n1, short).unwrap_err();
    assert!(e.contains("connect"), "{e}");
    round_trip(n1, short).expect("the host still reaches node 1");
    // The host cut too.
    net.cut(&[Endpoint::Host], &[Endpoint::Node(1)]);
    assert!(round_trip(n1, short).is_err());
    net.heal();
    round_trip(n1, short).expect("healed: host to node 1");
    round_trip_from(&ns2, n1, short).expect("healed: node 2 to node 1");

    // A slow link: 100 ms each way through node 1's link, so a round trip (connect + echo)
    // takes at least two of its delays each way.
    let delay = Duration::from_millis(100);
    net.slow(
        1,
        Shape {
            delay,
            jitter: Duration::from_millis(10),
            loss_percent: 0.0,
        },
    );
    let slow = round_trip(n1, Duration::from_secs(3)).expect("a slow link still works");
    assert!(slow >= Duration::from_millis(360), "{slow:?}");
    assert!(slow < Duration::from_secs(2), "{slow:?}");
    // Full loss: nothing gets through.
    net.slow(
        1,
        Shape {
            loss_percent: 100.0,
            ..Shape::default()
        },
    );
    assert!(round_trip(n1, short).is_err());
    net.heal();
    let healed = round_trip(n1, short).expect("healed after loss");
    assert!(healed < Duration::from_millis(100), "{healed:?}");
    let stats = net.stats();
    assert!(
        stats.cut > 0 && stats.delayed > 0 && stats.lost > 0,
        "{stats:?}"
    );

    let device = net.host_device();
    net.remove().unwrap();
    net.remove().unwrap();
    assert_eq!(leftovers(&tag, &device), (vec![], false));
}

#[test]
fn a_dropped_network_kills_what_runs_in_it_and_leaves_nothing() {
    if !allowed() {
        return;
    }
    let tag = format!("nsdrop-{}", std::process::id());
    let net = Network::create(&tag, 1).unwrap();
    let ns = net.namespace(1);
    let device = net.host_device();
    // A process of the run inside the namespace, as a broker would be (detached: its own session).
    let child = Command::new("ip")
        .args(["netns", "exec", &ns, "setsid", "sleep", "600"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let inside = (0..100).find_map(|_| {
        std::thread::sleep(Duration::from_millis(20));
        ip::pids_in(&ns).ok().filter(|p| p.contains(&pid))
    });
    assert!(inside.is_some(), "sleep {pid} runs in {ns}");
    drop(net); // as on an error path: no remove() call
    assert_eq!(leftovers(&tag, &device), (vec![], false));
    let mut child = child;
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
}

#[test]
fn the_sweep_removes_namespaces_of_runs_that_died_and_spares_live_ones() {
    if !allowed() {
        return;
    }
    let tag = format!("nsstale-{}", std::process::id());
    // What a SIGKILLed run leaves: its namespace (the device died with the process), with its
    // broker still running inside.
    let stale = format!("mqb-{tag}-n1");
    ip::ip(&["netns", "add", &stale]).unwrap();
    let mut child = Command::new("ip")
        .args(["netns", "exec", &stale, "setsid", "sleep", "600"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let live = Network::create(&format!("{tag}-live"), 1).unwrap();
    // create() swept it already; a second sweep finds nothing more of ours and spares `live`.
    assert!(!ip::namespaces().unwrap().contains(&stale));
    let again = mq_netns::sweep_stale().unwrap();
    assert!(!again.iter().any(|n| n.contains(&tag)), "{again:?}");
    assert!(ip::namespaces().unwrap().contains(&live.namespace(1)));
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
}
