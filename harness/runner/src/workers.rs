//! The worker processes of one variant: spawning `bench worker`, the status lines they send,
//! their exits, and a consistent sum of their counts.
//!
//! Each worker's stdout is read by a thread of its own that forwards [`Event`]s into one channel;
//! the coordinator's loop is the only reader. [`Pool`] kills whatever is still alive when it is
//! dropped, so no worker outlives its variant however the variant ends.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use mq_core::spec::{Control, RoleSpec, Status, Totals, WorkerSpec};
use mq_core::{Partition, WorkerCtx};

use mq_results::{VariantDir, WorkerOutcome};

/// A worker's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Producer,
    Consumer,
    /// A pipeline stage: its counts stay zero (the consumers count the deliveries).
    Stage,
}

impl Role {
    /// As in file names, command lines and results: `producer`, `consumer`, `stage`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Producer => "producer",
            Role::Consumer => "consumer",
            Role::Stage => "stage",
        }
    }
}

/// How many recent progress reports a worker keeps, for [`Pool::consistent_totals`].
const KEPT_REPORTS: usize = 64;

/// One worker process and what it has said.
pub struct Worker {
    pub role: Role,
    pub index: u16,
    child: Child,
    stdin: Option<ChildStdin>,
    pub ready: bool,
    /// Its latest totals.
    pub totals: Totals,
    /// Recent (time, totals) reports, oldest first; a finished worker's last is its final one.
    reports: VecDeque<(u64, Totals)>,
    finished: bool,
    pub exited: Option<String>,
    pub error: Option<String>,
}

impl Worker {
    pub fn send(&mut self, c: Control) {
        if let Some(stdin) = &mut self.stdin {
            if stdin
                .write_all(c.to_line().as_bytes())
                .and_then(|_| stdin.flush())
                .is_err()
            {
                self.stdin = None; // the worker is gone; its exit is reported separately
            }
        }
    }

    pub fn running(&self) -> bool {
        self.exited.is_none()
    }

    pub fn name(&self) -> String {
        format!("{} {}", self.role.as_str(), self.index)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&self) -> Result<(), String> {
        // SAFETY: plain kill(2) of our own child.
        match unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) } {
            0 => Ok(()),
            _ => Err(std::io::Error::last_os_error().to_string()),
        }
    }

    fn outcome(&self) -> WorkerOutcome {
        WorkerOutcome {
            role: self.role.as_str().into(),
            index: self.index,
            pid: self.child.id(),
            exit: self.exited.clone().unwrap_or_else(|| "running".into()),
            error: self.error.clone(),
        }
    }
}

/// What a worker's reader thread forwards.
pub enum Event {
    Status(usize, Status),
    Eof(usize),
}

/// What every worker of a variant shares: the executable, the run, the variant's folder.
pub struct Launch<'a> {
    pub exe: &'a Path,
    pub variant: &'a str,
    pub ctx: WorkerCtx,
    pub role_spec: RoleSpec,
    pub vdir: &'a VariantDir,
}

/// The workers of one variant and the channel their reports arrive on.
pub struct Pool {
    pub workers: Vec<Worker>,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    /// The cost sampler, told of each worker as it starts and read once more as it exits.
    pub resources: Option<crate::resources::Handle>,
}

impl Default for Pool {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel();
        Pool {
            workers: Vec::new(),
            tx,
            rx,
            resources: None,
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for w in &mut self.workers {
            if w.exited.is_none() {
                let _ = w.child.kill();
                let _ = w.child.wait();
            }
        }
    }
}

/// Which partitions consumer `index` of `consumers` reads: every `consumers`-th; with more
/// consumers than partitions (competing consumers, where the backend allows them) partition
/// `index % partitions`, so each partition's consumers are dealt round-robin.
pub fn consumer_partitions(partitions: u32, consumers: u32, index: u16) -> Vec<Partition> {
    if consumers > partitions && partitions > 0 {
        return vec![Partition(u32::from(index) % partitions)];
    }
    (0..partitions)
        .filter(|p| p % consumers == index as u32)
        .map(Partition)
        .collect()
}

impl Pool {
    /// Starts worker `index` of `role`; a replacement (`generation` > 0) writes a history of
    /// its own (`consumer-0-r1.hist`).
    pub fn spawn(
        &mut self,
        role: Role,
        index: u16,
        generation: u32,
        launch: &Launch<'_>,
    ) -> anyhow::Result<()> {
        let prefix = role.as_str();
        let spec = WorkerSpec {
            role: launch.role_spec.clone(),
            ctx: launch.ctx.clone(),
            history: launch.vdir.worker_history(prefix, index, generation),
            dedup_store: (role == Role::Consumer
                && launch.ctx.plan.delivery.consumer_dedup.is_store())
            .then(|| launch.vdir.dedup_store()),
        };
        let log = std::fs::File::create(launch.vdir.worker_log(prefix, index, generation))?;
        let mut cmd = Command::new(launch.exe);
        // The arguments only name the worker for `ps`; everything it needs is in the spec.
        cmd.args(["worker", launch.variant, prefix, &index.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        mq_core::child::tie_to_parent(&mut cmd);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting worker {}", launch.exe.display()))?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let mut line = serde_json::to_vec(&spec)?;
        line.push(b'\n');
        stdin
            .write_all(&line)
            .context("handing the worker its spec")?;
        let stdout = child.stdout.take().expect("piped stdout");
        let slot = self.workers.len();
        let tx = self.tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(s) = serde_json::from_str::<Status>(&line) {
                    if tx.send(Event::Status(slot, s)).is_err() {
                        return;
                    }
                }
            }
            let _ = tx.send(Event::Eof(slot));
        });
        if let Some(r) = &self.resources {
            r.worker(role == Role::Producer, index, generation, child.id());
        }
        self.workers.push(Worker {
            role,
            index,
            child,
            stdin: Some(stdin),
            ready: false,
            totals: Totals::default(),
            reports: VecDeque::new(),
            finished: false,
            exited: None,
            error: None,
        });
        Ok(())
    }

    /// Takes every report that arrived, waiting up to `wait` for the first.
    pub fn pump(&mut self, wait: Duration, on_exit: &mut dyn FnMut(&Worker)) {
        if let Ok(ev) = self.rx.recv_timeout(wait) {
            self.handle(ev, on_exit);
        }
        while let Ok(ev) = self.rx.try_recv() {
            self.handle(ev, on_exit);
        }
    }

    fn handle(&mut self, ev: Event, on_exit: &mut dyn FnMut(&Worker)) {
        match ev {
            Event::Status(i, s) => {
                let w = &mut self.workers[i];
                match s {
                    Status::Ready => w.ready = true,
                    Status::Progress { at_ns, totals } => {
                        w.totals = totals;
                        if w.reports.len() == KEPT_REPORTS {
                            w.reports.pop_front();
                        }
                        w.reports.push_back((at_ns, totals));
                    }
                    Status::Done { totals } => {
                        w.totals = totals;
                        w.finished = true;
                    }
                    Status::Error { message } => w.error = Some(message),
                }
            }
            Event::Eof(i) => {
                let w = &mut self.workers[i];
                if let Some(r) = &self.resources {
                    // Its final figures, read before the reaping frees its pid.
                    if crate::resources::await_exit_unreaped(w.child.id()) {
                        r.final_sample(w.child.id());
                    }
                }
                let status = w.child.wait();
                w.stdin = None;
                w.finished = true;
                w.exited = Some(match status {
                    Ok(s) if s.success() => "ok".to_owned(),
                    Ok(s) => match (s.code(), s.signal()) {
                        (Some(c), _) => format!("exit {c}"),
                        (_, Some(sig)) => format!("signal {sig}"),
                        _ => "unknown".to_owned(),
                    },
                    Err(e) => format!("wait failed: {e}"),
                });
                tracing::debug!("{} exited: {}", w.name(), w.exited.as_deref().unwrap_or(""));
                on_exit(w);
            }
        }
    }

    /// Every worker's latest totals summed: the freshest figures, for decisions.
    pub fn totals(&self) -> Totals {
        self.workers.iter().map(|w| w.totals).sum()
    }

    /// Totals as of one moment, for display: the producers' latest, and each consumer's latest
    /// report no newer than the oldest of those, so nothing shows as delivered before it shows
    /// as sent (each process reports on its own schedule).
    pub fn consistent_totals(&self) -> Totals {
        consistent_totals(self.workers.iter().map(|w| WorkerReports {
            producer: w.role == Role::Producer,
            finished: w.finished,
            latest: w.totals,
            reports: &w.reports,
        }))
    }

    pub fn any_running(&self, role: Role) -> bool {
        self.workers.iter().any(|w| w.role == role && w.running())
    }

    pub fn of(&mut self, role: Role) -> impl Iterator<Item = &mut Worker> {
        self.workers.iter_mut().filter(move |w| w.role == role)
    }

    pub fn send_all(&mut self, role: Option<Role>, c: Control) {
        for w in &mut self.workers {
            if role.is_none_or(|r| r == w.role) {
                w.send(c);
            }
        }
    }

    /// Waits until every worker in `range` is ready; false when interrupted first.
    pub fn await_ready(
        &mut self,
        range: std::ops::Range<usize>,
        timeout: Duration,
        interrupted: &dyn Fn() -> bool,
        on_exit: &mut dyn FnMut(&Worker),
    ) -> anyhow::Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            let ws = &self.workers[range.clone()];
            if ws.iter().all(|w| w.ready) {
                return Ok(true);
            }
            if let Some(w) = ws.iter().find(|w| !w.running() && !w.ready) {
                return Err(anyhow!(
                    "{} failed to start: {}",
                    w.name(),
                    w.error
                        .clone()
                        .unwrap_or_else(|| w.exited.clone().unwrap_or_default())
                ));
            }
            if interrupted() {
                return Ok(false);
            }
            if Instant::now() > deadline {
                let waiting: Vec<_> = ws.iter().filter(|w| !w.ready).map(Worker::name).collect();
                return Err(anyhow!(
                    "workers not ready after {timeout:?}: {}",
                    waiting.join(", ")
                ));
            }
            self.pump(Duration::from_millis(50), on_exit);
        }
    }

    /// Waits up to `limit` for every worker to exit.
    pub fn wait_exit(&mut self, limit: Duration, on_exit: &mut dyn FnMut(&Worker)) {
        let deadline = Instant::now() + limit;
        while self.workers.iter().any(Worker::running) && Instant::now() < deadline {
            self.pump(Duration::from_millis(50), on_exit);
        }
    }

    /// Stops every worker: `stop`, up to `grace` to finish, then SIGKILL.
    pub fn stop(&mut self, grace: Duration, on_exit: &mut dyn FnMut(&Worker)) {
        self.send_all(None, Control::Stop);
        self.wait_exit(grace, on_exit);
        for w in self.workers.iter_mut().filter(|w| w.running()) {
            let _ = w.child.kill();
        }
        self.wait_exit(Duration::from_secs(2), on_exit);
    }

    pub fn outcomes(&self) -> Vec<WorkerOutcome> {
        self.workers.iter().map(Worker::outcome).collect()
    }

    /// The first error a worker reported, as "producer 0 failed: …".
    pub fn first_error(&self) -> Option<String> {
        self.workers.iter().find_map(|w| {
            w.error
                .as_ref()
                .map(|e| format!("{} failed: {e}", w.name()))
        })
    }

    /// Workers that died for good without finishing normally, e.g. "consumer 0: signal 9".
    pub fn dead(&self, role: Role) -> Vec<String> {
        self.workers
            .iter()
            .filter(|w| w.role == role)
            .filter_map(|w| match w.exited.as_deref() {
                None | Some("ok") => None,
                Some(how) => Some(format!("{}: {how}", w.name())),
            })
            .collect()
    }
}

/// What [`consistent_totals`] needs of one worker.
#[derive(Clone, Copy)]
pub struct WorkerReports<'a> {
    pub producer: bool,
    /// Its final totals are in (done or exited): they hold at every later moment.
    pub finished: bool,
    pub latest: Totals,
    pub reports: &'a VecDeque<(u64, Totals)>,
}

/// See [`Pool::consistent_totals`]. A consumer's delivered count only covers messages sent
/// before its report; showing it beside a producer's older report would show more delivered
/// than sent.
pub fn consistent_totals<'a>(workers: impl Iterator<Item = WorkerReports<'a>> + Clone) -> Totals {
    // The moment: the oldest latest report of a producer still running.
    let moment = workers
        .clone()
        .filter(|w| w.producer && !w.finished)
        .map(|w| w.reports.back().map_or(0, |r| r.0))
        .min();
    workers
        .map(|w| match (moment, w.producer) {
            (Some(t), false) => w
                .reports
                .iter()
                .rev()
                .find(|r| r.0 <= t)
                .map_or(Totals::default(), |r| r.1),
            _ => w.latest,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(sent: u64, acked: u64, delivered: u64) -> Totals {
        Totals {
            sent,
            acked,
            delivered,
            ..Totals::default()
        }
    }

    #[test]
    fn consistent_totals_never_show_a_consumer_ahead_of_a_stale_producer() {
        // The producer last reported at t=100 (sent 3929); the consumer has reported since,
        // at 110, delivering 3933 that were sent after the producer's report.
        let producer: VecDeque<_> = [(90, t(3800, 3800, 0)), (100, t(3929, 3929, 0))].into();
        let consumer: VecDeque<_> = [(95, t(0, 0, 3850)), (110, t(0, 0, 3933))].into();
        let workers = [
            WorkerReports {
                producer: true,
                finished: false,
                latest: t(3929, 3929, 0),
                reports: &producer,
            },
            WorkerReports {
                producer: false,
                finished: false,
                latest: t(0, 0, 3933),
                reports: &consumer,
            },
        ];
        let shown = consistent_totals(workers.into_iter());
        assert_eq!(shown, t(3929, 3929, 3850));
        assert!(shown.delivered <= shown.sent);
    }

    #[test]
    fn finished_producers_let_consumers_show_their_latest() {
        let producer: VecDeque<_> = [(100, t(5000, 5000, 0))].into();
        let consumer: VecDeque<_> = [(300, t(0, 0, 5000))].into();
        let shown = consistent_totals(
            [
                WorkerReports {
                    producer: true,
                    finished: true,
                    latest: t(5000, 5000, 0),
                    reports: &producer,
                },
                WorkerReports {
                    producer: false,
                    finished: false,
                    latest: t(0, 0, 5000),
                    reports: &consumer,
                },
            ]
            .into_iter(),
        );
        assert_eq!(shown, t(5000, 5000, 5000));
    }
}
