//! Where the repository's own files are: scripts that install and start brokers.

use std::path::PathBuf;

/// The `scripts/` folder: `$MQ_BENCH_SCRIPTS`, else the one in the source tree `bench` was built from.
pub fn scripts_dir() -> PathBuf {
    std::env::var_os("MQ_BENCH_SCRIPTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts")))
}
