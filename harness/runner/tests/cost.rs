//! The cost sampler against independent measurements: a child that burns a known CPU time (by
//! its own clock, CLOCK_PROCESS_CPUTIME_ID), a child that writes and fsyncs a known number of
//! bytes, and a child killed mid-run, whose last periodic reading must stand.
//!
//! The children are this test binary run again with an environment variable saying what to do
//! (the `child_*` tests below do nothing without it).

use std::io::Write;
use std::process::{Child, Command};

use mq_results::cost::{Cost, Part, ProcessCost};
use mq_runner::resources::{self, await_exit_unreaped, Load, Sampler};

const BURN_S: f64 = 0.5;
const WRITE_BYTES: usize = 8 << 20;

/// This process's CPU time by its own clock.
fn own_cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// Burns CPU until its own clock says `seconds`; with `report`, printing that clock every
/// 10 ms of CPU.
fn burn(seconds: f64, report: bool) {
    let mut x = 0u64;
    let mut next = 0.0;
    loop {
        let now = own_cpu_s();
        if now >= seconds {
            break;
        }
        if report && now >= next {
            println!("{now}");
            next = now + 0.01;
        }
        for i in 0..10_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
    }
}

#[test]
fn child_burn() {
    if let Ok(s) = std::env::var("MQ_COST_BURN") {
        burn(
            s.parse().unwrap(),
            std::env::var_os("MQ_COST_REPORT").is_some(),
        );
    }
}

#[test]
fn child_write() {
    if let Ok(path) = std::env::var("MQ_COST_WRITE") {
        let mut f = std::fs::File::create(path).unwrap();
        let block = vec![0x5au8; 1 << 20];
        for _ in 0..WRITE_BYTES / block.len() {
            f.write_all(&block).unwrap();
        }
        f.sync_all().unwrap();
    }
}

/// This test binary running only `test`, with `env` set (stdout piped with `MQ_COST_REPORT`).
fn spawn(test: &str, env: &[(&str, &str)]) -> Child {
    let piped = env.iter().any(|(k, _)| *k == "MQ_COST_REPORT");
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            test,
            "--test-threads",
            "1",
            "--quiet",
            "--nocapture",
        ])
        .envs(env.iter().copied())
        .stdout(if piped {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .spawn()
        .unwrap()
}

/// Samples `child` (from its start) until it exits, with a final reading before reaping it;
/// with `kill_at`, kills it once it reports that much CPU time of its own.
fn account_child(mut child: Child, kill_at: Option<f64>) -> Cost {
    let sampler = Sampler::start();
    let h = sampler.handle();
    h.go(mq_core::clock::now_ns());
    h.track(Part::Producer, "child", child.id());
    if let Some(at) = kill_at {
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        for line in std::io::BufRead::lines(out) {
            if line.unwrap().trim().parse::<f64>().is_ok_and(|s| s >= at) {
                break;
            }
        }
        child.kill().unwrap();
    } else if await_exit_unreaped(child.id()) {
        h.final_sample(child.id());
    }
    let status = child.wait().unwrap();
    assert!(kill_at.is_some() || status.success(), "{status}");
    let h = sampler.finish();
    let load = Load {
        acked: Some(1000),
        message_size: 100,
        cores: 2,
        broker_unknown: Some("none in this test"),
    };
    resources::account(&h, &load).expect("the load started")
}

fn only(cost: &Cost) -> &ProcessCost {
    assert_eq!(cost.processes.len(), 1, "{:?}", cost.processes);
    &cost.processes[0]
}

#[test]
fn a_child_burning_half_a_second_is_accounted_half_a_second() {
    let cost = account_child(spawn("child_burn", &[("MQ_COST_BURN", "0.5")]), None);
    let p = only(&cost);
    assert!(p.final_sample);
    // Its own clock said 0.5 s when it stopped; start-up adds a little, ticks are 10 ms.
    assert!(
        p.cpu_s >= BURN_S - 0.02 && p.cpu_s <= BURN_S + 0.15,
        "accounted {} s",
        p.cpu_s
    );
    assert!(p.peak_rss_bytes > 0 && p.mean_rss_bytes <= p.peak_rss_bytes);
    assert_eq!(cost.producers.processes, 1);
    assert_eq!(cost.producers.cpu_s, p.cpu_s);
    assert!(cost.broker.is_none());
    let per = cost.per_message.as_ref().unwrap();
    assert!((per.clients_cpu_us - p.cpu_s * 1e6 / 1000.0).abs() < 1e-6);
    // The series adds up to the CPU time it covers.
    let in_series: f64 = cost.series.clients.iter().sum::<f64>() * cost.series.bin_s;
    assert!(in_series > BURN_S * 0.8, "series sums to {in_series} s");
    // The sampler's own thread: some CPU, far less than what it measured.
    assert!(
        cost.sampler_cpu_s > 0.0 && cost.sampler_cpu_s < p.cpu_s / 5.0,
        "sampler used {} s",
        cost.sampler_cpu_s
    );
}

#[test]
fn a_child_writing_and_fsyncing_8_mib_is_accounted_at_least_8_mib_written() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("written");
    let child = spawn("child_write", &[("MQ_COST_WRITE", path.to_str().unwrap())]);
    let cost = account_child(child, None);
    let p = only(&cost);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), WRITE_BYTES as u64);
    assert!(
        p.write_bytes >= WRITE_BYTES as u64 && p.write_bytes < 2 * WRITE_BYTES as u64,
        "accounted {} bytes written",
        p.write_bytes
    );
    assert_eq!(cost.producers.write_bytes, p.write_bytes);
}

#[test]
fn a_killed_child_keeps_its_last_periodic_reading() {
    let child = spawn(
        "child_burn",
        &[("MQ_COST_BURN", "30"), ("MQ_COST_REPORT", "1")],
    );
    let began = std::time::Instant::now();
    let cost = account_child(child, Some(1.0));
    let life_s = began.elapsed().as_secs_f64();
    let p = only(&cost);
    assert!(!p.final_sample);
    // It had burned 1 s by its own clock when killed; the last periodic reading came at most
    // an interval or so (of wall time) before: well over half of it stands, never more than
    // its life.
    assert!(
        p.cpu_s >= 0.5 && p.cpu_s <= life_s,
        "accounted {} s of {life_s} s",
        p.cpu_s
    );
    assert!(p.samples >= 2, "{} samples", p.samples);
}
