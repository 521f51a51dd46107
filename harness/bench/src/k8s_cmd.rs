//! `bench k8s SCENARIO --shards N --image IMAGE [--out DIR]`: writes the Kubernetes manifests
//! (mq-runner's k8s module) that run the scenario as N shards and merge them.

use std::path::PathBuf;
use std::process::ExitCode;

use mq_core::scenario;
use mq_core::Registry;
use mq_runner::k8s::{self, K8sSpec};
use mq_runner::shard::ShardRun;

#[derive(clap::Args)]
pub struct K8sArgs {
    /// The scenario file (TOML); its variants must use external brokers.
    scenario: PathBuf,
    /// How many shards (pods of the Indexed Job), 1 to 1024.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    shards: u16,
    /// The image holding `bench` (built from the repository's Containerfile).
    #[arg(long)]
    image: String,
    /// Where to write the manifests.
    #[arg(long, default_value = "k8s")]
    out: PathBuf,
    /// The objects' name prefix and the run's name (default: the scenario's name).
    #[arg(long)]
    name: Option<String>,
    /// Size of the shared volume for the partial and merged run folders.
    #[arg(long, default_value = "10Gi")]
    storage: String,
    /// A storage class that offers ReadWriteMany (default: the cluster's default class).
    #[arg(long)]
    storage_class: Option<String>,
    /// How long the merge Job waits for every shard.
    #[arg(long, default_value = "6h")]
    merge_wait: String,
}

/// Exit 0 written, 2 bad input (the scenario, a managed broker, a bad name), 1 a write failed.
pub fn k8s(args: &K8sArgs, registry: &Registry) -> ExitCode {
    let s = match scenario::load(&args.scenario, registry) {
        Ok(s) => s,
        Err(e) => return crate::bad_input(&e),
    };
    let bad = |e: String| {
        eprintln!("error: {}: {e}", args.scenario.display());
        ExitCode::from(2)
    };
    if let Some(why) = s.variants.iter().find_map(ShardRun::refusal) {
        return bad(why);
    }
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| k8s::default_name(&s.name));
    if let Err(e) = k8s::check_name(&name) {
        return bad(e);
    }
    if let Err(e) = humantime::parse_duration(&args.merge_wait) {
        return bad(format!(
            "--merge-wait {:?}: {e}; e.g. \"6h\"",
            args.merge_wait
        ));
    }
    let spec = K8sSpec {
        name,
        scenario_text: s.text.clone(),
        shards: args.shards,
        image: args.image.clone(),
        storage: args.storage.clone(),
        storage_class: args.storage_class.clone(),
        merge_wait: args.merge_wait.clone(),
    };
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("error: creating {}: {e}", args.out.display());
        return ExitCode::FAILURE;
    }
    for (file, text) in k8s::files(&spec) {
        let path = args.out.join(&file);
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("error: writing {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        eprintln!("wrote {}", path.display());
    }
    eprintln!("apply with: kubectl apply -f {}", args.out.display());
    ExitCode::SUCCESS
}
