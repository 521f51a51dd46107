//! `bench k8s`: the Kubernetes manifests that run a scenario as N shards and merge them: a
//! ConfigMap holding the scenario, a ReadWriteMany PersistentVolumeClaim for the partial run
//! folders, an Indexed Job of N completions (pod index i runs shard i+1), and a merge Job that
//! waits for every shard and writes the merged run folder beside them. Broker addresses and
//! credentials come from the scenario and from an optional Secret (`<name>-broker`, envFrom).
//! Manifests are JSON, which kubectl reads as it reads YAML.

use serde_json::{json, Value};

/// Where the pods mount the scenario and the shared volume.
const SCENARIO_DIR: &str = "/etc/mq-bench";
const RUNS_DIR: &str = "/runs";
/// The image's user (Containerfile), owner of what the pods write on the volume.
const UID: u32 = 10001;

/// What the manifests are made from.
pub struct K8sSpec {
    /// The objects' name prefix and the run's name (a DNS-1123 label).
    pub name: String,
    pub scenario_text: String,
    pub shards: u16,
    pub image: String,
    /// The volume's size request, e.g. "10Gi".
    pub storage: String,
    /// A storage class offering ReadWriteMany (the cluster's default when None).
    pub storage_class: Option<String>,
    /// How long the merge Job waits for the shards, e.g. "6h".
    pub merge_wait: String,
}

/// Why a name cannot name the objects: what a DNS-1123 label allows.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    match ok {
        true => Ok(()),
        false => Err(format!(
            "--name {name:?}: valid is 1 to 40 of a-z, 0-9 and '-', not starting or ending \
             with '-' (it prefixes the objects' names)"
        )),
    }
}

/// A scenario name made into a DNS-1123 label: lower case, other characters as '-'.
pub fn default_name(scenario: &str) -> String {
    let s: String = (scenario.chars())
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .take(40)
        .collect();
    let s = s.trim_matches('-').to_owned();
    if s.is_empty() {
        "mq-bench".into()
    } else {
        s
    }
}

/// The manifests, as (file name, object) in the order to apply them.
pub fn manifests(spec: &K8sSpec) -> Vec<(String, Value)> {
    vec![
        ("00-scenario.json".into(), config_map(spec)),
        ("01-runs-volume.json".into(), volume(spec)),
        ("02-shards-job.json".into(), shards_job(spec)),
        ("03-merge-job.json".into(), merge_job(spec)),
    ]
}

/// The manifests as (file name, text): pretty JSON, one object a file.
pub fn files(spec: &K8sSpec) -> Vec<(String, String)> {
    (manifests(spec).into_iter())
        .map(|(f, v)| {
            (
                f,
                serde_json::to_string_pretty(&v).expect("JSON values serialize") + "\n",
            )
        })
        .collect()
}

fn labels(spec: &K8sSpec, part: &str) -> Value {
    json!({ "app.kubernetes.io/name": "mq-bench", "app.kubernetes.io/instance": spec.name,
            "app.kubernetes.io/component": part })
}

fn config_map(spec: &K8sSpec) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": format!("{}-scenario", spec.name), "labels": labels(spec, "scenario") },
        "data": { "scenario.toml": spec.scenario_text }
    })
}

fn volume(spec: &K8sSpec) -> Value {
    let mut pvc = json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": { "name": format!("{}-runs", spec.name), "labels": labels(spec, "runs") },
        "spec": {
            // Every shard's pod and the merge pod mount it at once, on any node.
            "accessModes": ["ReadWriteMany"],
            "resources": { "requests": { "storage": spec.storage } }
        }
    });
    if let Some(class) = &spec.storage_class {
        pvc["spec"]["storageClassName"] = json!(class);
    }
    pvc
}

/// A pod template running `command` with the scenario and the shared volume mounted.
fn pod(spec: &K8sSpec, part: &str, command: Value) -> Value {
    json!({
        "metadata": { "labels": labels(spec, part) },
        "spec": {
            "restartPolicy": "Never",
            "securityContext": { "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID },
            "containers": [{
                "name": part,
                "image": spec.image,
                "imagePullPolicy": "IfNotPresent",
                "command": command,
                "env": [
                    // Every shard derives the same run id from it and the scenario's hash.
                    { "name": mq_core::shard::RUN_NAME_ENV, "value": spec.name }
                ],
                // Broker credentials (e.g. MQ_BENCH_RABBITMQ_URI), when the Secret exists.
                "envFrom": [{ "secretRef": { "name": format!("{}-broker", spec.name), "optional": true } }],
                "volumeMounts": [
                    { "name": "scenario", "mountPath": SCENARIO_DIR, "readOnly": true },
                    { "name": "runs", "mountPath": RUNS_DIR }
                ]
            }],
            "volumes": [
                { "name": "scenario", "configMap": { "name": format!("{}-scenario", spec.name) } },
                { "name": "runs", "persistentVolumeClaim": { "claimName": format!("{}-runs", spec.name) } }
            ]
        }
    })
}

fn shards_job(spec: &K8sSpec) -> Value {
    let n = spec.shards;
    // JOB_COMPLETION_INDEX is 0-based; shards are 1-based.
    let script = format!(
        "i=$((JOB_COMPLETION_INDEX + 1)); exec bench run {SCENARIO_DIR}/scenario.toml \
         --shard \"$i/{n}\" --out \"{RUNS_DIR}/{name}/shard-$i\" \
         --barrier {RUNS_DIR}/{name}/barrier --quiet",
        name = spec.name
    );
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": { "name": format!("{}-shards", spec.name), "labels": labels(spec, "shard") },
        "spec": {
            "completionMode": "Indexed",
            "completions": n,
            "parallelism": n,
            // A shard run twice would measure twice into one folder: no retries.
            "backoffLimit": 0,
            "template": pod(spec, "shard", json!(["/bin/sh", "-c", script]))
        }
    })
}

fn merge_job(spec: &K8sSpec) -> Value {
    let mut command = vec!["bench".to_owned(), "merge".to_owned()];
    command.extend((1..=spec.shards).map(|i| format!("{RUNS_DIR}/{}/shard-{i}", spec.name)));
    command.extend([
        "--out".into(),
        format!("{RUNS_DIR}/{}/merged", spec.name),
        "--wait".into(),
        spec.merge_wait.clone(),
    ]);
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": { "name": format!("{}-merge", spec.name), "labels": labels(spec, "merge") },
        "spec": { "backoffLimit": 0, "template": pod(spec, "merge", json!(command)) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(n: u16) -> K8sSpec {
        K8sSpec {
            name: "demo".into(),
            scenario_text: "name = \"demo\"\n".into(),
            shards: n,
            image: "registry.example/mq-bench:1".into(),
            storage: "10Gi".into(),
            storage_class: None,
            merge_wait: "6h".into(),
        }
    }

    #[test]
    fn the_indexed_job_runs_n_shards_and_the_merge_names_every_one() {
        let m = manifests(&spec(3));
        let job = &m[2].1;
        assert_eq!(job["spec"]["completionMode"], "Indexed");
        assert_eq!(job["spec"]["completions"], 3);
        let sh = job["spec"]["template"]["spec"]["containers"][0]["command"][2]
            .as_str()
            .unwrap();
        assert!(
            sh.contains("--shard \"$i/3\"") && sh.contains("JOB_COMPLETION_INDEX + 1"),
            "{sh}"
        );
        let merge = m[3].1["spec"]["template"]["spec"]["containers"][0]["command"].clone();
        let args: Vec<&str> = merge
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(
            &args[..5],
            [
                "bench",
                "merge",
                "/runs/demo/shard-1",
                "/runs/demo/shard-2",
                "/runs/demo/shard-3"
            ]
        );
        assert_eq!(m[1].1["spec"]["accessModes"][0], "ReadWriteMany");
        assert_eq!(m[0].1["data"]["scenario.toml"], "name = \"demo\"\n");
    }

    #[test]
    fn names_are_dns_labels() {
        assert_eq!(default_name("Kafka_acks.all"), "kafka-acks-all");
        assert_eq!(default_name("__"), "mq-bench");
        assert!(check_name("demo-1").is_ok());
        for bad in ["", "-a", "a-", "A", "a_b", &"a".repeat(41)] {
            assert!(check_name(bad).unwrap_err().contains("valid is"), "{bad}");
        }
    }
}
