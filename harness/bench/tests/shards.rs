//! A scenario run as 3 shards (3 `bench run --shard I/3` processes, each in its own network
//! namespace with its own address when this machine allows it, else on loopback) against one
//! log server, merged with `bench merge`, against the same scenario run unsharded: the same
//! messages, the same anomalies under a consumer kill, counts summed without double counting,
//! the merged p99 equal to the p99 of the raw latencies; and a missing, repeated or foreign
//! shard refused with exit 2 naming it.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{counts, results, u, write};
use mq_core::history::{HistoryReader, Record};

/// Ports of this test (the range given to shard tests).
const PORT_UNSHARDED: u16 = 21011;
const PORT_SHARDED: u16 = 21012;

/// A log server this test started; killed and its folder removed on drop.
struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(dir: &Path, listen: &str) -> Server {
    let mut child = common::bench()
        .args(["log", "serve", "--dir"])
        .arg(dir)
        .args(["--listen", listen])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting bench log serve");
    let mut line = String::new();
    let out = child.stdout.as_mut().unwrap();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).unwrap();
    assert!(line.starts_with("listening"), "log serve said {line:?}");
    Server(child)
}

fn scenario(address: &str) -> String {
    format!(
        r#"
name = "shards"
[workload]
messages = 30000
message_size = 100
producers = 3
consumers = 3
partitions = 3
rate = 10000
drain_timeout = "4s"

[[variants]]
name = "clean"
backend = "log"
consumer_ack = "after-process"
workload = {{ history = "full" }}
options = {{ mode = "external", address = "{address}", keep = true }}

[[variants]]
name = "kill"
backend = "log"
consumer_ack = "auto"
faults = [ {{ action = "kill-consumer", target = 1, at = "1s" }} ]
options = {{ mode = "external", address = "{address}", keep = true }}
"#
    )
}

/// Where the shards run: namespaces of a private network (the server on its host side), or
/// loopback when this machine cannot make namespaces.
struct Place {
    net: Option<mq_netns::Network>,
}

impl Place {
    fn new() -> Place {
        let net = match mq_netns::check() {
            Ok(()) => Some(
                mq_netns::Network::create(&format!("shard-{}", std::process::id()), 3)
                    .expect("creating the shards' namespaces"),
            ),
            Err(why) => {
                eprintln!("shards run on loopback: no network namespaces here ({why})");
                None
            }
        };
        Place { net }
    }

    fn server_address(&self) -> String {
        match &self.net {
            Some(n) => format!("{}:{PORT_SHARDED}", n.host_addr()),
            None => format!("127.0.0.1:{PORT_SHARDED}"),
        }
    }

    fn shard(&self, i: u8, args: &[&str]) -> Command {
        let mut c = match &self.net {
            Some(n) => {
                let mut c = Command::new("ip");
                c.args([
                    "netns",
                    "exec",
                    &n.namespace(i),
                    env!("CARGO_BIN_EXE_bench"),
                ]);
                c
            }
            None => common::bench(),
        };
        c.args(args);
        c
    }
}

/// Every first delivery's latency (ns) in the consumer histories of `dirs`' variant `variant`.
fn raw_latencies(dirs: &[PathBuf], variant: &str) -> Vec<u64> {
    let mut first: HashMap<(u16, u64), u64> = HashMap::new();
    for d in dirs {
        let vdir = mq_results::RunDir::new(d).variant(variant);
        for f in vdir.histories("consumer") {
            for rec in HistoryReader::open(&f).unwrap() {
                if let Record::Delivered {
                    producer,
                    seq,
                    sent_ns,
                    at_ns,
                    ..
                } = rec.unwrap()
                {
                    let l = at_ns.saturating_sub(sent_ns);
                    let e = first.entry((producer.0, seq.0)).or_insert(l);
                    *e = (*e).min(l);
                }
            }
        }
    }
    let mut v: Vec<u64> = first.into_values().collect();
    v.sort_unstable();
    v
}

fn variant<'a>(r: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    (r["variants"].as_array().unwrap().iter())
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no variant {name}"))
}

#[test]
fn three_shards_merge_to_the_unsharded_counts_and_a_missing_or_foreign_shard_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    // The same scenario unsharded, on a server of its own (the log's topics are per variant).
    let unsharded = t.join("unsharded");
    {
        let _server = serve(&t.join("log-a"), &format!("127.0.0.1:{PORT_UNSHARDED}"));
        let s = write(
            t,
            "unsharded.toml",
            &scenario(&format!("127.0.0.1:{PORT_UNSHARDED}")),
        );
        let o = common::run_quiet(&s, &unsharded);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let place = Place::new();
    let _server = serve(&t.join("log-b"), &place.server_address());
    let s = write(t, "sharded.toml", &scenario(&place.server_address()));
    let parts: Vec<PathBuf> = (1..=3).map(|i| t.join(format!("part-{i}"))).collect();
    let mut children: Vec<Child> = (1..=3u8)
        .map(|i| {
            let (sh, out) = (format!("{i}/3"), parts[i as usize - 1].to_str().unwrap());
            let barrier = t.join("barrier");
            let args = [
                "run",
                s.to_str().unwrap(),
                "--shard",
                &sh,
                "--run-id",
                "77",
                "--barrier",
                barrier.to_str().unwrap(),
            ];
            place
                .shard(i, &args)
                .args(["--out", out, "--quiet"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, c) in children.iter_mut().enumerate() {
        let (status, err) = common::finish(c, 90);
        assert!(status.success(), "shard {}: {err}", i + 1);
    }
    let merged = t.join("merged");
    let o = common::run(&[
        "merge",
        parts[0].to_str().unwrap(),
        parts[1].to_str().unwrap(),
        parts[2].to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let (m, un) = (results(&merged), results(&unsharded));
    assert_eq!(m["merged"]["shards"], 3);
    assert_eq!(
        m["merged"]["clock"]["offset_bound_us"], 0,
        "one host, one clock"
    );
    let shards: Vec<serde_json::Value> = parts.iter().map(|p| results(p)).collect();
    for name in ["clean", "kill"] {
        let mc = &variant(&m, name)["report"]["counts"];
        let uc = &variant(&un, name)["report"]["counts"];
        // Nothing double counted: each send and each delivery is in exactly one shard.
        for field in ["sent", "acked", "deliveries"] {
            let sum: u64 = shards
                .iter()
                .map(|r| u(&variant(r, name)["report"]["counts"], field))
                .sum();
            assert_eq!(
                u(mc, field),
                sum,
                "{name}: merged {field} = the shards' sum"
            );
        }
        assert_eq!(u(mc, "sent"), 30000, "{name}");
        assert_eq!(u(mc, "sent"), u(uc, "sent"), "{name}");
        assert_eq!(u(mc, "acked"), u(uc, "acked"), "{name}");
        assert_eq!(
            u(mc, "unexpected"),
            0,
            "{name}: a message of another shard is no stranger"
        );
        eprintln!("{name}: merged {mc}\n{name}: unsharded {uc}");
    }
    let (mc, uc) = (counts(&m, 0), counts(&un, 0));
    for field in ["delivered", "lost", "duplicated", "reordered"] {
        assert_eq!(u(&mc, field), u(&uc, field), "clean: {field}");
    }
    assert_eq!(u(&mc, "delivered"), 30000);
    // The consumer kill loses its partition's rest in both (at-most-once, no restart).
    let (ml, ul) = (u(&counts(&m, 1), "lost"), u(&counts(&un, 1), "lost"));
    assert!(ml > 0 && ul > 0, "lost merged {ml}, unsharded {ul}");
    assert!(
        ml.abs_diff(ul) * 5 <= ul,
        "lost merged {ml} vs unsharded {ul}: more than 20 % apart"
    );
    common::assert_recount_matches(&merged);

    // Merged p99 = the p99 of the raw latencies of every shard's records, within the
    // histogram's precision.
    let raw = raw_latencies(&parts, "clean");
    assert_eq!(raw.len(), 30000);
    let p99_raw = raw[(raw.len() * 99).div_ceil(100) - 1] as f64 / 1e3;
    let p99 = variant(&m, "clean")["report"]["latency"]["end_to_end"]["p99_us"]
        .as_f64()
        .unwrap();
    assert!(
        (p99 - p99_raw).abs() <= p99_raw * 0.01 + 1.0,
        "merged p99 {p99} µs, raw {p99_raw} µs"
    );
    eprintln!("merged p99 {p99} µs, raw {p99_raw} µs");

    refusals(t, &parts);
}

/// A missing shard, a repeated one and a foreign one: exit 2, each named.
fn refusals(t: &Path, parts: &[PathBuf]) {
    let merge = |dirs: &[&Path]| {
        let mut args: Vec<String> = vec!["merge".into()];
        args.extend(dirs.iter().map(|d| d.display().to_string()));
        args.extend(["--out".into(), t.join("refused").display().to_string()]);
        let o = common::bench().args(&args).output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, err) = merge(&[&parts[0], &parts[2]]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("missing shard(s) 2/3"), "{err}");
    let (code, err) = merge(&[&parts[0], &parts[1], &parts[1], &parts[2]]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("shard 2/3 given twice"), "{err}");
    let foreign = t.join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    for f in ["results.json", "scenario.toml"] {
        std::fs::copy(parts[2].join(f), foreign.join(f)).unwrap();
    }
    let info = std::fs::read_to_string(parts[2].join("shard.json")).unwrap();
    std::fs::write(
        foreign.join("shard.json"),
        info.replace("\"scenario_sha256\": \"", "\"scenario_sha256\": \"0"),
    )
    .unwrap();
    let (code, err) = merge(&[&parts[0], &parts[1], &foreign]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "{}: a foreign shard: scenario sha256",
            foreign.display()
        )),
        "{err}"
    );
    assert!(!t.join("refused").join("results.json").exists());
}

#[test]
fn bad_shard_arguments_exit_2_naming_what_is_valid_and_create_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let s = write(t, "s.toml", &scenario("127.0.0.1:21013"));
    let out = t.join("out");
    let run = |args: &[&str]| {
        let mut all = vec!["run", s.to_str().unwrap(), "--out", out.to_str().unwrap()];
        all.extend(args);
        let o = common::bench()
            .args(&all)
            .env_remove(mq_core::shard::RUN_NAME_ENV)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    for (args, says) in [
        (
            &["--shard", "4/3", "--run-id", "1"][..],
            "valid: I/N with 1 ≤ I ≤ N ≤ 1024",
        ),
        (&["--shard", "1/3"][..], "--run-id ID"),
        (&["--run-id", "5"][..], "give --shard I/N with them"),
    ] {
        let (code, err) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let kept = s.to_str().unwrap().to_owned();
    std::fs::write(
        &kept,
        scenario("127.0.0.1:21013").replace(", keep = true", ""),
    )
    .unwrap();
    let (code, err) = run(&["--shard", "1/3", "--run-id", "1"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("options.keep: a sharded variant needs keep = true"),
        "{err}"
    );
    let managed = write(t, "m.toml", "name = \"m\"\n[workload]\nmessages = 10\n[[variants]]\nname = \"sysv\"\nbackend = \"sysv\"\n");
    let o = common::run(&[
        "run",
        managed.to_str().unwrap(),
        "--shard",
        "1/2",
        "--run-id",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("options.mode: --shard needs an external broker"));
    assert!(!out.exists(), "nothing is created on bad input");
}

/// A single Kafka broker this test started (scripts/brokers/kafka.sh), wiped on drop.
struct Kafka {
    dir: PathBuf,
}
const KAFKA_PORT: &str = "22094"; // and its controller 22095

impl Kafka {
    fn script() -> Command {
        let mut c = Command::new("bash");
        c.arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/brokers/kafka.sh"
        ));
        c
    }
    fn start(dir: PathBuf) -> Kafka {
        let k = Kafka { dir };
        let o = Kafka::script()
            .args(["start", "--port", KAFKA_PORT, "--dir"])
            .arg(&k.dir)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "kafka start: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        k
    }
}
impl Drop for Kafka {
    fn drop(&mut self) {
        let _ = Kafka::script()
            .args(["wipe", "--port", KAFKA_PORT, "--dir"])
            .arg(&self.dir)
            .output();
    }
}

#[test]
fn three_kafka_shards_merge_to_the_unsharded_counts() {
    if !common::installed("kafka") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let _kafka = Kafka::start(t.join("kafka"));
    let text = format!(
        r#"
name = "kafka-shards"
[workload]
messages = 20000
producers = 3
consumers = 3
partitions = 3
drain_timeout = "4s"

[[variants]]
name = "kafka"
backend = "kafka"
producer_ack = "all"
consumer_ack = "after-process"
options = {{ mode = "external", bootstrap = "127.0.0.1:{KAFKA_PORT}", keep = true }}
"#
    );
    let s = write(t, "k.toml", &text);
    let unsharded = t.join("unsharded");
    let o = common::run_quiet(&s, &unsharded);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // On loopback: the broker listens on 127.0.0.1 only.
    let parts: Vec<PathBuf> = (1..=3).map(|i| t.join(format!("part-{i}"))).collect();
    let mut children: Vec<Child> = (1..=3)
        .map(|i| {
            common::bench()
                .args([
                    "run",
                    s.to_str().unwrap(),
                    "--shard",
                    &format!("{i}/3"),
                    "--run-id",
                    "78",
                ])
                .args(["--barrier", t.join("barrier").to_str().unwrap()])
                .args(["--out", parts[i - 1].to_str().unwrap(), "--quiet"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, c) in children.iter_mut().enumerate() {
        let (status, err) = common::finish(c, 120);
        assert!(status.success(), "shard {}: {err}", i + 1);
    }
    let merged = t.join("merged");
    let mut args = vec!["merge".to_owned()];
    args.extend(parts.iter().map(|p| p.display().to_string()));
    args.extend(["--out".into(), merged.display().to_string()]);
    let o = common::bench().args(&args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (mc, uc) = (
        counts(&results(&merged), 0),
        counts(&results(&unsharded), 0),
    );
    eprintln!("kafka merged {mc}\nkafka unsharded {uc}");
    for field in ["sent", "acked", "delivered", "lost", "unexpected"] {
        assert_eq!(u(&mc, field), u(&uc, field), "{field}");
    }
    assert_eq!(u(&mc, "delivered"), 20000);
}
