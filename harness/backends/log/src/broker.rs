//! Coordinator side: starts (managed) or reaches (external) the log server, creates the
//! variant's topic, reports end − committed offsets, and stops the managed server.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use mq_core::plan::BrokerFault;
use mq_core::plan::VariantPlan;
use mq_core::{BackendError, Broker, Depth, NodeHit};
use mq_log::client::Client;

use crate::{client_err, connect, Endpoint, Mode, Options, NAME};

/// How long a managed server may take to say where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(15);

pub struct LogBroker {
    plan: VariantPlan,
    options: Options,
    data_dir: PathBuf,
    server: Option<Child>,
    /// Where the managed server listens; a restart reuses it so clients find it again.
    listen: Option<String>,
    client: Option<Client>,
    endpoint: Option<Endpoint>,
}

impl LogBroker {
    pub fn new(plan: VariantPlan, options: Options, run_dir: &Path) -> LogBroker {
        LogBroker {
            data_dir: run_dir.join("log-data"),
            plan,
            options,
            server: None,
            listen: None,
            client: None,
            endpoint: None,
        }
    }

    fn start_server(&mut self) -> Result<String, BackendError> {
        let exe = std::env::current_exe()
            .map_err(|e| BackendError::io(NAME, "finding the bench executable", e))?;
        std::fs::create_dir_all(&self.data_dir).map_err(|e| {
            BackendError::io(NAME, format!("creating {}", self.data_dir.display()), e)
        })?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.with_extension("log"))
            .map_err(|e| BackendError::io(NAME, "creating the server log", e))?;
        // A restart listens where the first start did, so clients find the server again.
        let listen = self.listen.clone().unwrap_or_else(|| "127.0.0.1:0".into());
        let mut cmd = Command::new(exe);
        cmd.args([
            "log",
            "serve",
            "--listen",
            &listen,
            "--fsync",
            &self.options.fsync(self.plan.delivery.durability),
        ])
        .arg("--dir")
        .arg(&self.data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log));
        if let Some(s) = self.options.segment_bytes {
            cmd.args(["--segment-bytes", &s.to_string()]);
        }
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_IGN);
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| BackendError::io(NAME, "starting bench log serve", e))?;
        let stdout = child.stdout.take().expect("piped stdout");
        self.server = Some(child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening ") {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let addr = rx.recv_timeout(START_TIMEOUT).map_err(|_| {
            BackendError::other(
                NAME,
                format!(
                    "the managed log server did not say where it listens within {START_TIMEOUT:?} (see {})",
                    self.data_dir.with_extension("log").display()
                ),
            )
        })?;
        self.listen = Some(addr.clone());
        Ok(addr)
    }

    fn kill_server(&mut self) -> Result<(), BackendError> {
        let Some(mut child) = self.server.take() else {
            return Err(BackendError::other(NAME, "no managed server is running"));
        };
        child
            .kill()
            .map_err(|e| BackendError::io(NAME, "SIGKILL of the log server", e))?;
        let _ = child.wait();
        self.client = None;
        Ok(())
    }
}

impl Broker for LogBroker {
    fn setup(&mut self) -> Result<serde_json::Value, BackendError> {
        let address = match self.options.mode {
            Mode::Managed => self.start_server()?,
            Mode::External => self
                .options
                .address
                .clone()
                .expect("validated: external has an address"),
        };
        let mut client = connect(&address)?;
        let topic = format!("mqb-{}", self.plan.name);
        let partitions = self.plan.workload.partitions;
        client
            .create_topic(&topic, partitions)
            .map_err(|e| client_err(&format!("creating topic {topic} at {address}"), e))?;
        let ep = Endpoint {
            address,
            topic,
            group: format!("mqb-{}-{}", self.plan.name, std::process::id()),
        };
        let value = serde_json::to_value(&ep).expect("endpoint serializes");
        self.client = Some(client);
        self.endpoint = Some(ep);
        Ok(value)
    }

    fn fault(&mut self, fault: BrokerFault) -> Result<Vec<NodeHit>, BackendError> {
        if self.options.mode == Mode::External {
            return Err(BackendError::other(
                NAME,
                "an external server: give the variant kill_cmd / restart_cmd",
            ));
        }
        match fault {
            BrokerFault::Kill => self.kill_server().map(|()| Vec::new()),
            BrokerFault::Restart => {
                if self.server.is_some() {
                    return Err(BackendError::other(NAME, "the server is already running"));
                }
                self.start_server().map(|_| Vec::new())
            }
            BrokerFault::RemoveQueue => {
                Err(BackendError::other(NAME, "the log has no queue to remove"))
            }
        }
    }

    fn depth(&mut self) -> Option<Depth> {
        if self.client.is_none() && self.server.is_some() {
            // Reconnect after a restart; a server still coming up is simply not sampled.
            let addr = self.listen.clone()?;
            self.client = Client::connect(addr.as_str(), Duration::from_millis(200)).ok();
        }
        let (client, ep) = (self.client.as_mut()?, self.endpoint.as_ref()?);
        let ends = match client.end_offsets(&ep.topic) {
            Ok(e) => e,
            Err(_) => {
                self.client = None;
                return None;
            }
        };
        let mut messages = 0;
        for (p, end) in ends.iter().enumerate() {
            let committed = client
                .committed(&ep.group, &ep.topic, p as u32)
                .ok()?
                .unwrap_or(0);
            messages += end.saturating_sub(committed);
        }
        Some(Depth {
            messages,
            bytes: None,
        })
    }

    fn teardown(&mut self) -> Result<(), BackendError> {
        self.client = None;
        if let Some(mut child) = self.server.take() {
            // SAFETY: plain kill(2) of our child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() {
                if std::time::Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if !self.options.keep {
                let _ = std::fs::remove_dir_all(&self.data_dir);
            }
        }
        Ok(())
    }

    fn versions(&mut self) -> Vec<(String, String)> {
        vec![("mq-log".into(), env!("CARGO_PKG_VERSION").into())]
    }
}

impl Drop for LogBroker {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}
