//! Where the repository's own files are: scripts that install and start brokers.

use std::path::{Path, PathBuf};

/// The `scripts/` folder: `$MQ_BENCH_SCRIPTS`, else the one in the source tree `bench` was built
/// from (without `..` in it, so messages name it plainly).
pub fn scripts_dir() -> PathBuf {
    let dir = std::env::var_os("MQ_BENCH_SCRIPTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts")));
    std::fs::canonicalize(&dir).unwrap_or(dir)
}

/// `path` as a user should type it from here: relative when it is under the current folder
/// (`scripts/brokers/kafka.sh`), else as it is.
pub fn shown(path: &Path) -> String {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    match std::env::current_dir() {
        Ok(cwd) => shown_from(&path, &cwd),
        Err(_) => path.display().to_string(),
    }
}

fn shown_from(path: &Path, cwd: &Path) -> String {
    path.strip_prefix(cwd).unwrap_or(path).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scripts_folder_has_no_dot_dot_and_shows_relative_from_the_repository() {
        let dir = scripts_dir();
        assert!(!dir
            .components()
            .any(|c| c == std::path::Component::ParentDir));
        let repo = dir.parent().unwrap();
        let script = dir.join("brokers/kafka.sh");
        assert_eq!(shown_from(&script, repo), "scripts/brokers/kafka.sh");
        assert_eq!(
            shown_from(&script, Path::new("/elsewhere")),
            script.display().to_string()
        );
    }
}
