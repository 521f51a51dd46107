//! `bench k8s` writes manifests that a Kubernetes schema validator accepts (kubernetes-validate
//! from PyPI, which ships the API's schemas, so no cluster and no network are needed), and the
//! repository's Containerfile builds the image with exactly the pinned release build.

mod common;

use std::path::Path;
use std::process::Command;

use common::write;

const SCENARIO: &str = r#"
name = "Shards_Demo"
[workload]
messages = 1000
producers = 2
consumers = 2
partitions = 2

[[variants]]
name = "log"
backend = "log"
options = { mode = "external", address = "mq-log.bench.svc:7070", keep = true }
"#;

/// kubernetes-validate (installed by scripts/test.sh); None, saying so, when it is missing
/// and not required.
fn validator() -> Option<Command> {
    let ok = Command::new("kubernetes-validate")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("MQ_BENCH_REQUIRE_K8S_VALIDATE").is_none(),
            "kubernetes-validate required but not installed"
        );
        eprintln!(
            "SKIPPED: kubernetes-validate is not installed (pip install kubernetes-validate)"
        );
        return None;
    }
    let mut c = Command::new("kubernetes-validate");
    c.args(["--strict", "--no-warn"]);
    Some(c)
}

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

#[test]
fn the_manifests_pass_the_kubernetes_schemas_and_a_broken_one_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let s = write(tmp.path(), "s.toml", SCENARIO);
    let out = tmp.path().join("k8s");
    let o = common::run(&[
        "k8s",
        s.to_str().unwrap(),
        "--shards",
        "4",
        "--image",
        "registry.example/mq-bench:0.1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let written = files(&out);
    assert_eq!(written.len(), 4);
    let job: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&written[2]).unwrap()).unwrap();
    assert_eq!(job["metadata"]["name"], "shards-demo-shards");
    assert_eq!(job["spec"]["completions"], 4);
    let Some(mut validate) = validator() else {
        return;
    };
    let o = validate.args(&written).output().unwrap();
    let said =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{said}");
    assert_eq!(said.matches("passed").count(), 4, "{said}");
    // The validator can fail: a Job whose completions is not a number.
    let broken = tmp.path().join("broken.json");
    std::fs::write(
        &broken,
        serde_json::to_string(&{
            let mut j = job.clone();
            j["spec"]["completions"] = "four".into();
            j
        })
        .unwrap(),
    )
    .unwrap();
    let o = validator().unwrap().arg(&broken).output().unwrap();
    assert!(!o.status.success(), "a broken Job passed");
}

#[test]
fn k8s_refuses_a_managed_broker_and_a_bad_name_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let managed = write(
        tmp.path(),
        "m.toml",
        &SCENARIO.replace(
            r#"options = { mode = "external", address = "mq-log.bench.svc:7070", keep = true }"#,
            "",
        ),
    );
    let o = common::run(&[
        "k8s",
        managed.to_str().unwrap(),
        "--shards",
        "2",
        "--image",
        "i",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("options.mode: --shard needs an external broker"));
    let s = write(tmp.path(), "s.toml", SCENARIO);
    let o = common::run(&[
        "k8s",
        s.to_str().unwrap(),
        "--shards",
        "2",
        "--image",
        "i",
        "--name",
        "Bad_Name",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--name \"Bad_Name\": valid is"));
}

#[test]
fn the_containerfile_builds_the_release_binary_exactly_as_pinned() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Containerfile");
    let text = std::fs::read_to_string(path).expect("Containerfile at the repository root");
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    let builder = lines
        .iter()
        .position(|l| l.starts_with("FROM ") && l.ends_with(" AS builder"));
    let builder = builder.expect("a builder stage (FROM … AS builder)");
    let build = lines
        .iter()
        .position(|l| *l == "RUN cargo build --release --locked -p mq-bench");
    let build =
        build.expect("the builder runs exactly `cargo build --release --locked -p mq-bench`");
    let last_from = lines.iter().rposition(|l| l.starts_with("FROM ")).unwrap();
    assert!(
        builder < build && build < last_from,
        "the build runs in the builder stage"
    );
    assert!(
        lines[last_from..]
            .iter()
            .any(|l| l.starts_with("COPY --from=builder ") && l.contains("target/release/bench")),
        "the final stage takes bench from the builder"
    );
}
