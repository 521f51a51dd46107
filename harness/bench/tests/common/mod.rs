//! Helpers shared by the CLI tests: run `bench` as a user would, read what it wrote, and look
//! for what it may have left behind (queues, processes).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, MutexGuard};

/// Tests that create SysV queues or count them run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn bench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bench"))
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

pub fn run(args: &[&str]) -> Output {
    bench().args(args).output().expect("starting bench")
}

/// `bench run SCENARIO --out OUT --quiet`.
pub fn run_quiet(scenario: &Path, out: &Path) -> Output {
    run(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ])
}

/// [`run_quiet`] that must succeed (the failure shows bench's stderr); its results.json.
pub fn run_ok(scenario: &Path, out: &Path) -> serde_json::Value {
    let o = run_quiet(scenario, out);
    assert!(
        o.status.success(),
        "bench failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    results(out)
}

pub fn results(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("results.json")).expect("results.json written");
    serde_json::from_str(&text).unwrap()
}

/// Ids of the System V message queues on this machine.
pub fn queues() -> Vec<i64> {
    let text = std::fs::read_to_string("/proc/sysvipc/msg").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect()
}

/// Pids of processes whose command line contains every one of `words`.
pub fn processes_with(words: &[&str]) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if words.iter().all(|w| cmd.contains(w)) {
            pids.push(pid);
        }
    }
    pids
}

/// Waits up to `secs` for `f` to give Some.
pub fn wait_for<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    None
}

pub fn counts(results: &serde_json::Value, variant: usize) -> serde_json::Value {
    results["variants"][variant]["report"]["counts"].clone()
}

pub fn u(v: &serde_json::Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} missing in {v}"))
}

/// Recomputes every variant's counts and series from its histories with scripts/recount.py
/// (independent of the checker) and asserts they equal results.json's.
pub fn assert_recount_matches(run_dir: &Path) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/recount.py");
    let o = Command::new("python3")
        .arg(script)
        .arg(run_dir)
        .output()
        .expect("running python3");
    assert!(
        o.status.success(),
        "recount.py: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = results(run_dir);
    let mut n = 0;
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let got: serde_json::Value = serde_json::from_str(line).unwrap();
        let v = r["variants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == got["variant"])
            .unwrap();
        let want = &v["report"]["counts"];
        for (k, val) in got["counts"].as_object().unwrap() {
            assert_eq!(
                &want[k], val,
                "{}: {k} from the histories differs from results.json",
                got["variant"]
            );
        }
        let want = &v["report"]["series"];
        for (k, val) in got["series"].as_object().unwrap() {
            assert_eq!(
                &want[k], val,
                "{}: series.{k} from the histories differs from results.json",
                got["variant"]
            );
        }
        n += 1;
    }
    assert!(n > 0, "recount.py found no variant");
}

/// Starts `bench run SCENARIO --out OUT --quiet` in the background, its stderr captured.
pub fn start_run(scenario: &Path, out: &Path) -> Child {
    bench()
        .arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .arg("--quiet")
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting bench")
}

/// Waits up to `secs` for a run started by [`start_run`]; its exit status and stderr.
pub fn finish(child: &mut Child, secs: u64) -> (ExitStatus, String) {
    let status = wait_for(secs, || child.try_wait().unwrap()).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("bench did not finish within {secs} s")
    });
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    (status, stderr)
}

/// The pid of a `bench worker` of `variant` in `role` of the run `child` (from [`start_run`]
/// writing to `out`), waiting up to `secs` for it to start. Fails at once, with the run's stderr,
/// when the run ends first; on time-out it interrupts the run. Either way the panic shows the
/// run's stderr and the end of each broker log under `out`, so a slow start says where it was.
pub fn worker_pid(child: &mut Child, out: &Path, variant: &str, role: &str, secs: u64) -> u32 {
    let found = wait_for(secs, || {
        if let Some(pid) = processes_with(&["worker", variant, role]).first() {
            return Some(Ok(*pid));
        }
        child.try_wait().unwrap().map(Err)
    });
    let why = match found {
        Some(Ok(pid)) => return pid,
        Some(Err(status)) => format!("the run ended first ({status})"),
        None => {
            // SAFETY: plain kill(2) of our child; SIGINT lets it tear down what it started.
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
            let _ = wait_for(120, || child.try_wait().unwrap());
            let _ = child.kill();
            let _ = child.wait();
            format!("not within {secs} s; the run was interrupted")
        }
    };
    let mut stderr = String::new();
    if let Some(e) = child.stderr.as_mut() {
        let _ = std::io::Read::read_to_string(e, &mut stderr);
    }
    panic!(
        "no {role} of {variant} started: {why}; its stderr:\n{stderr}\n{}",
        log_tails(out, 40)
    )
}

/// The last `lines` lines of every `*.log` file under `dir` (three levels deep), each headed by
/// its path: what a failed test prints to say where a run was.
pub fn log_tails(dir: &Path, lines: usize) -> String {
    fn walk(dir: &Path, depth: u32, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() && depth > 0 {
                walk(&p, depth - 1, found);
            } else if p.extension().is_some_and(|x| x == "log") {
                found.push(p);
            }
        }
    }
    let mut found = Vec::new();
    walk(dir, 3, &mut found);
    found.sort();
    let mut text = String::new();
    for p in found {
        let body = String::from_utf8_lossy(&std::fs::read(&p).unwrap_or_default()).into_owned();
        let all: Vec<&str> = body.lines().collect();
        let tail = all[all.len().saturating_sub(lines)..].join("\n");
        text.push_str(&format!(
            "----- {} (last {lines} lines)\n{tail}\n",
            p.display()
        ));
    }
    text
}

/// Whether `backend`'s broker can run here: Kafka's and RocketMQ's jars (`<backend>.sh libs`),
/// nats-server (`nats.sh bin`), RabbitMQ's Debian package. Without it a test skips, saying so,
/// unless `MQ_BENCH_REQUIRE_BROKERS` is set (scripts/test.sh sets it after installing them).
pub fn installed(backend: &str) -> bool {
    let script = |name: &str, command: &str| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../scripts/brokers")
            .join(name);
        Command::new("bash")
            .arg(path)
            .arg(command)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let ok = match backend {
        "kafka" => script("kafka.sh", "libs"),
        "rocketmq" => script("rocketmq.sh", "libs"),
        "nats" => script("nats.sh", "bin"),
        "rabbitmq" => Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server").exists(),
        other => panic!("no broker named {other}"),
    };
    if !ok {
        assert!(
            std::env::var_os("MQ_BENCH_REQUIRE_BROKERS").is_none(),
            "{backend} is not installed but MQ_BENCH_REQUIRE_BROKERS is set: run scripts/brokers/{backend}.sh install"
        );
        eprintln!("SKIPPED: {backend} is not installed (scripts/brokers/{backend}.sh install)");
    }
    ok
}
