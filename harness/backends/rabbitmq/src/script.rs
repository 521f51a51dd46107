//! Runs `scripts/brokers/rabbitmq.sh` for a managed node, with a bound on every call.
//!
//! The script's output goes to a log file, not a pipe: the node it starts is detached and must
//! not hold our pipe open.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where the Debian package puts the server; the script needs it.
pub const SERVER_BIN: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// A private node as the script knows it: its port, data dir and Erlang node name.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Node {
    pub script: PathBuf,
    pub port: u16,
    pub dir: PathBuf,
    /// `RABBITMQ_NODENAME`: one per port, so nodes on other ports never collide in epmd.
    pub nodename: String,
}

impl Node {
    pub fn new(port: u16, dir: PathBuf) -> Node {
        Node {
            script: script_path(),
            port,
            dir,
            nodename: format!("mqb-{port}@localhost"),
        }
    }

    /// Runs `rabbitmq.sh CMD --port P --dir D`, appending its output to `log`; kills it after
    /// `timeout`. The error carries the end of the output.
    pub fn run(&self, cmd: &str, timeout: Duration, log: &Path) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let args = [
            cmd.to_owned(),
            "--port".into(),
            self.port.to_string(),
            "--dir".into(),
            self.dir.display().to_string(),
            "--timeout".into(),
            timeout.as_secs().saturating_sub(5).max(10).to_string(),
        ];
        let env = [("RABBITMQ_NODENAME", self.nodename.as_str())];
        mq_core::script::run(&self.script, &args, &env, timeout, log)
    }
}

/// `scripts/brokers/rabbitmq.sh`.
pub fn script_path() -> PathBuf {
    mq_core::script::broker_script("rabbitmq.sh")
}

/// Why a managed node cannot run here, if it cannot.
pub fn missing() -> Option<String> {
    let script = script_path();
    if let Some(m) = mq_core::script::not_found(&script) {
        return Some(m);
    }
    if !Path::new(SERVER_BIN).exists() {
        return Some(format!(
            "RabbitMQ is not installed ({SERVER_BIN} is missing)"
        ));
    }
    None
}
