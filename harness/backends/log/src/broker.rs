//! Coordinator side: starts (managed) or reaches (external) the log server, creates the
//! variant's topic, reports end − committed offsets, and stops the managed server.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mq_core::managed::{Managed, Node};
use mq_core::plan::BrokerFault;
use mq_core::plan::VariantPlan;
use mq_core::{BackendError, Broker, Depth, NodeHit};
use mqlog::client::Client;

use crate::{client_err, connect, Endpoint, Mode, Options, NAME};

/// How long a managed server may take to say where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a depth sample may wait for the server.
const DEPTH_TIMEOUT: Duration = Duration::from_millis(200);
/// How long a clean stop (SIGTERM) may take before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The managed server: `bench log serve` as a child process on a data folder of the run.
pub struct Server {
    data_dir: PathBuf,
    /// `bench log serve` arguments besides the folder and the address.
    args: Vec<String>,
    child: Option<Child>,
    /// Where it listens; a restart reuses it so clients find it again.
    listen: Option<String>,
}

impl Server {
    fn log_file(&self) -> PathBuf {
        self.data_dir.with_extension("log")
    }

    /// Sends `signal` to the running server.
    fn signal(&self, signal: libc::c_int) -> Result<(), String> {
        let Some(child) = &self.child else {
            return Err("no managed server is running".into());
        };
        // SAFETY: plain kill(2) of our own child, which has not been waited for.
        match unsafe { libc::kill(child.id() as i32, signal) } {
            0 => Ok(()),
            _ => Err(format!(
                "signal {signal}: {}",
                std::io::Error::last_os_error()
            )),
        }
    }

    fn stop_child(&mut self, signal: libc::c_int, limit: Duration) -> Result<(), String> {
        // A paused server would not act on SIGTERM until continued.
        let _ = self.signal(libc::SIGCONT);
        let Some(mut child) = self.child.take() else {
            return Err("no managed server is running".into());
        };
        // SAFETY: plain kill(2) of our child.
        unsafe { libc::kill(child.id() as i32, signal) };
        let deadline = Instant::now() + limit;
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.wait();
        Ok(())
    }
}

impl Node for Server {
    fn describe(&self) -> String {
        match &self.listen {
            Some(a) => format!("{a} ({})", self.data_dir.display()),
            None => self.data_dir.display().to_string(),
        }
    }

    fn start(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            return Err("the server is already running".into());
        }
        let exe =
            std::env::current_exe().map_err(|e| format!("finding the bench executable: {e}"))?;
        std::fs::create_dir_all(&self.data_dir)
            .map_err(|e| format!("creating {}: {e}", self.data_dir.display()))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_file())
            .map_err(|e| format!("creating the server log: {e}"))?;
        let listen = self.listen.clone().unwrap_or_else(|| "127.0.0.1:0".into());
        let mut cmd = Command::new(exe);
        cmd.args(["log", "serve", "--listen", &listen])
            .args(&self.args)
            .arg("--dir")
            .arg(&self.data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        mq_core::child::tie_to_parent(&mut cmd);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("starting bench log serve: {e}"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        self.child = Some(child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening ") {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let addr = rx.recv_timeout(START_TIMEOUT).map_err(|_| {
            format!(
                "the server did not say where it listens within {START_TIMEOUT:?} (see {})",
                self.log_file().display()
            )
        })?;
        self.listen = Some(addr);
        Ok(())
    }

    fn kill(&mut self) -> Result<(), String> {
        self.stop_child(libc::SIGKILL, STOP_TIMEOUT)
    }

    fn stop(&mut self) -> Result<(), String> {
        match self.child {
            Some(_) => self.stop_child(libc::SIGTERM, STOP_TIMEOUT),
            None => Ok(()), // killed and never restarted
        }
    }

    fn pause(&mut self) -> Result<(), String> {
        self.signal(libc::SIGSTOP)
    }

    fn resume(&mut self) -> Result<(), String> {
        self.signal(libc::SIGCONT)
    }

    fn wipe(&mut self) -> Result<(), String> {
        self.stop()?;
        match std::fs::remove_dir_all(&self.data_dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(format!("removing {}: {e}", self.data_dir.display()))
            }
            _ => Ok(()),
        }
    }
}

pub struct LogBroker {
    plan: VariantPlan,
    options: Options,
    /// The managed server (None: external).
    managed: Option<Managed<Server>>,
    client: Option<Client>,
    endpoint: Option<Endpoint>,
}

impl LogBroker {
    pub fn new(plan: VariantPlan, options: Options, run_dir: &Path) -> LogBroker {
        let managed = (options.mode == Mode::Managed).then(|| {
            let mut args = vec![
                "--fsync".to_owned(),
                options.fsync(plan.delivery.durability),
            ];
            if let Some(s) = options.segment_bytes {
                args.extend(["--segment-bytes".into(), s.to_string()]);
            }
            let server = Server {
                data_dir: run_dir.join("log-data"),
                args,
                child: None,
                listen: None,
            };
            Managed::new(NAME, server, options.keep)
        });
        LogBroker {
            plan,
            options,
            managed,
            client: None,
            endpoint: None,
        }
    }

    /// Where the managed server listens, once started.
    fn listen(&self) -> Option<String> {
        self.managed.as_ref()?.node().listen.clone()
    }
}

impl Broker for LogBroker {
    fn setup(&mut self) -> Result<serde_json::Value, BackendError> {
        let address = match &mut self.managed {
            Some(m) => {
                m.start()?;
                self.listen().expect("a started server listens")
            }
            None => self
                .options
                .address
                .clone()
                .expect("validated: external has an address"),
        };
        let mut client = connect(&address)?;
        let topic = format!("mqb-{}", mq_core::plan::broker_name(&self.plan.name));
        let partitions = self.plan.workload.partitions;
        client
            .create_topic(&topic, partitions)
            .map_err(|e| client_err(&format!("creating topic {topic} at {address}"), e))?;
        let ep = Endpoint {
            address,
            group: format!("{topic}-{}", std::process::id()),
            topic,
        };
        let value = serde_json::to_value(&ep).expect("endpoint serializes");
        self.client = Some(client);
        self.endpoint = Some(ep);
        Ok(value)
    }

    fn fault(&mut self, fault: BrokerFault) -> Result<Vec<NodeHit>, BackendError> {
        let Some(m) = &mut self.managed else {
            return Err(BackendError::other(
                NAME,
                "an external server: give the variant kill_cmd / restart_cmd",
            ));
        };
        self.client = None; // a killed or restarted server drops its connections
        m.fault(fault).map(|()| Vec::new())
    }

    fn depth_bound(&self) -> Duration {
        DEPTH_TIMEOUT
    }

    fn depth(&mut self) -> Option<Depth> {
        if self.client.is_none() {
            // Reconnect after a restart; a server down or coming up is simply not sampled.
            let addr = match &self.managed {
                Some(m) if m.node().child.is_none() => return None,
                Some(_) => self.listen()?,
                None => self.options.address.clone()?,
            };
            // A paused server still accepts connections (the kernel does) but answers nothing:
            // a short request timeout keeps the sampling from holding up the fault schedule.
            self.client = Client::connect(addr.as_str(), Duration::from_millis(200))
                .ok()
                .map(|mut c| {
                    c.set_request_timeout(DEPTH_TIMEOUT);
                    c
                });
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
        match &mut self.managed {
            Some(m) => m.finish(),
            None => Ok(()),
        }
    }

    fn versions(&mut self) -> Vec<(String, String)> {
        vec![("mqlog".into(), env!("CARGO_PKG_VERSION").into())]
    }

    fn processes(&mut self) -> mq_core::backend::Processes {
        use mq_core::backend::Processes;
        match &self.managed {
            Some(m) => Processes::Pids(
                (m.node().child.iter())
                    .map(|c| ("broker".to_owned(), c.id()))
                    .collect(),
            ),
            None => Processes::Unknown(
                "an external server: its processes are not bench's to measure".into(),
            ),
        }
    }
}
