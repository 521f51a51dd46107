//! Group commit: one committer thread turns many pending writes into one fsync round.
//!
//! A writer registers the file it wrote after its write completed (and the folder, when the
//! file is new there) and gets a [`CommitTicket`] (a sequence number). The committer takes
//! every file and folder dirty at that moment, fsyncs each once,
//! then marks every ticket up to the snapshot durable and wakes all waiters (blocking ones
//! through a condvar, async ones through a watch channel).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::error::{Result, StorageError};
use super::files::FileSlot;
use super::fs;

/// Longest a round waits to gather writers before its fsync.
const MAX_GATHER: Duration = Duration::from_millis(2);

/// Names one registered write; durable once the committer's synced sequence reaches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CommitTicket(pub(crate) u64);

/// What async waiters watch: the highest durable ticket, and whether an fsync failed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Durable {
    synced: u64,
    failed: Option<String>,
}

/// Counters of the committer, for benchmarks and reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Group-commit rounds run (each fsyncs every file dirty at its start).
    pub rounds: u64,
    /// fsync calls made, over all rounds.
    pub fsyncs: u64,
    /// Writes registered.
    pub writes: u64,
    /// Time spent inside fsync calls, nanoseconds.
    pub fsync_nanos: u64,
}

/// What a round fsyncs: a file written since the last round, or a folder a file was created in.
enum Target {
    File(Arc<FileSlot>),
    Dir(PathBuf),
}

impl Target {
    fn sync(&self) -> Result<()> {
        match self {
            Target::File(f) => f.sync(),
            Target::Dir(path) => fs::sync_dir(path),
        }
    }
}

#[derive(Default)]
struct State {
    synced_seq: u64,
    dirty: Vec<Target>,
    wake: bool,
    /// Whether a writer waiting for its acknowledgement asked for the pending round (not an
    /// interval tick or a flush): only then do released writers come straight back.
    awaited: bool,
    failed: Option<String>,
    shutdown: bool,
    stats: CommitStats,
}

/// The shared group-commit state; [`Committer::run`] is the committer thread's body.
pub struct Committer {
    /// Writes registered so far (the last ticket handed out). Changed only under `state`'s lock,
    /// so it agrees with `synced_seq` there; read without the lock by the committer while it
    /// gathers a batch.
    write_seq: AtomicU64,
    state: Mutex<State>,
    work: Condvar,
    done: Condvar,
    durable: watch::Sender<Durable>,
}

impl Default for Committer {
    fn default() -> Self {
        Committer {
            write_seq: AtomicU64::new(0),
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            done: Condvar::new(),
            durable: watch::Sender::new(Durable::default()),
        }
    }
}

impl Committer {
    fn write_seq(&self) -> u64 {
        self.write_seq.load(Ordering::Acquire)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves counters only; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a completed write to `file`, and `dir` when the write's file was created in
    /// it since the folder's last fsync. With `wake`, the committer starts a round now; without
    /// it the write waits for the next requested round (interval policy).
    pub(crate) fn register(
        &self,
        file: &Arc<FileSlot>,
        dir: Option<&Path>,
        wake: bool,
    ) -> CommitTicket {
        let mut s = self.lock();
        let seq = self.write_seq() + 1;
        self.write_seq.store(seq, Ordering::Release);
        s.stats.writes += 1;
        let ticket = CommitTicket(seq);
        if !s
            .dirty
            .iter()
            .any(|t| matches!(t, Target::File(f) if Arc::ptr_eq(f, file)))
        {
            s.dirty.push(Target::File(file.clone()));
        }
        if let Some(dir) = dir {
            if !s
                .dirty
                .iter()
                .any(|t| matches!(t, Target::Dir(d) if d == dir))
            {
                s.dirty.push(Target::Dir(dir.to_owned()));
            }
        }
        if wake && !s.wake {
            // The first write of a round wakes the committer (if it sleeps; while it gathers a
            // batch it polls `write_seq` instead).
            s.wake = true;
            self.work.notify_one();
        }
        s.awaited |= wake;
        ticket
    }

    /// Asks for a round covering everything registered so far (interval ticks, flush).
    pub fn request_round(&self) -> Option<CommitTicket> {
        let mut s = self.lock();
        if self.write_seq() == s.synced_seq {
            return None;
        }
        s.wake = true;
        self.work.notify_one();
        Some(CommitTicket(self.write_seq()))
    }

    /// Blocks until `ticket` is durable, an fsync fails, or `timeout` passes.
    pub fn wait(&self, ticket: CommitTicket, timeout: Duration) -> Result<()> {
        // A timeout too large for an Instant (Duration::MAX) means no deadline.
        let deadline = Instant::now().checked_add(timeout);
        let mut s = self.lock();
        loop {
            if let Some(e) = &s.failed {
                return Err(StorageError::Failed(e.clone()));
            }
            if s.synced_seq >= ticket.0 {
                return Ok(());
            }
            let now = Instant::now();
            s = match deadline {
                Some(deadline) if now >= deadline => {
                    return Err(StorageError::SyncTimeout(timeout));
                }
                Some(deadline) => {
                    self.done
                        .wait_timeout(s, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => self.done.wait(s).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }

    /// Waits without blocking a thread until `ticket` is durable or an fsync fails.
    /// The caller bounds it with a timeout.
    pub async fn wait_async(&self, ticket: CommitTicket) -> Result<()> {
        let mut rx = self.durable.subscribe();
        let d = rx
            .wait_for(|d| d.failed.is_some() || d.synced >= ticket.0)
            .await
            .map_err(|_| StorageError::Failed("committer stopped".into()))?;
        match &d.failed {
            Some(e) => Err(StorageError::Failed(e.clone())),
            None => Ok(()),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> CommitStats {
        self.lock().stats
    }

    /// Asks the committer thread to finish pending work and exit.
    pub fn shutdown(&self) {
        let mut s = self.lock();
        s.shutdown = true;
        self.work.notify_all();
    }

    /// The committer thread: waits for a round request, fsyncs every dirty file once, releases
    /// every waiter registered before the round started.
    pub fn run(&self) {
        // After a round that covered several writers: the registration count that completes
        // the next batch, and how long to wait for it.
        let mut gather: Option<(u64, Instant)> = None;
        loop {
            if let Some((complete, deadline)) = gather.take() {
                // The writers that round released are appending again right now. Wait a
                // fraction of an fsync for all of them (and those that registered during its
                // fsync), so rounds stay full instead of alternating small and large. Yield the
                // CPU to them rather than sleep: a sleeping committer needs a wake-up from the
                // writer that completes the batch, which on a small VM costs tens of µs (a cross-
                // CPU wake-up) per round, a tenth of an fsync. A lone writer never waits.
                while self.write_seq() < complete && Instant::now() < deadline {
                    std::thread::yield_now();
                }
            }
            let (target, files, awaited) = {
                let mut s = self.lock();
                while !(s.shutdown || s.wake) {
                    s = self.work.wait(s).unwrap_or_else(|e| e.into_inner());
                }
                if s.shutdown && (self.write_seq() == s.synced_seq || s.failed.is_some()) {
                    return;
                }
                s.wake = false;
                (
                    self.write_seq(),
                    std::mem::take(&mut s.dirty),
                    std::mem::take(&mut s.awaited),
                )
            };
            let mut result = Ok(());
            let started = Instant::now();
            for t in &files {
                if let Err(e) = t.sync() {
                    result = Err(e);
                    break;
                }
            }
            let took = started.elapsed();
            let mut s = self.lock();
            s.stats.rounds += 1;
            s.stats.fsyncs += files.len() as u64;
            s.stats.fsync_nanos += took.as_nanos() as u64;
            match result {
                Ok(()) => {
                    // Writers this round releases come back; those that registered during its
                    // fsync are already waiting for the next one.
                    let expected = self.write_seq() - s.synced_seq.min(target);
                    s.synced_seq = s.synced_seq.max(target);
                    if awaited && expected > 1 && !s.shutdown {
                        gather = Some((
                            s.synced_seq + expected,
                            Instant::now() + (took / 2).min(MAX_GATHER),
                        ));
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "fsync failed; the log refuses further durable writes");
                    s.failed = Some(e.to_string());
                }
            }
            let durable = Durable {
                synced: s.synced_seq,
                failed: s.failed.clone(),
            };
            drop(s);
            self.done.notify_all();
            self.durable.send_replace(durable);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn slot(dir: &std::path::Path) -> Arc<FileSlot> {
        let path = dir.join("f");
        let file = std::fs::File::create(&path).unwrap();
        FileSlot::open(path, file, None)
    }

    fn committer() -> (Arc<Committer>, std::thread::JoinHandle<()>) {
        let c = Arc::new(Committer::default());
        let c2 = c.clone();
        (c, std::thread::spawn(move || c2.run()))
    }

    #[test]
    fn one_round_covers_every_pending_write() {
        let dir = tempfile::tempdir().unwrap();
        let file = slot(dir.path());
        let c = Arc::new(Committer::default());
        // Register many writes before the committer thread exists: one round must cover them all.
        let tickets: Vec<_> = (0..50)
            .map(|_| {
                (&*file.get().unwrap()).write_all(b"x").unwrap();
                c.register(&file, None, true)
            })
            .collect();
        let c2 = c.clone();
        let h = std::thread::spawn(move || c2.run());
        for t in &tickets {
            c.wait(*t, Duration::from_secs(10)).unwrap();
        }
        let stats = c.stats();
        assert_eq!(stats.rounds, 1);
        assert_eq!(stats.fsyncs, 1);
        assert_eq!(stats.writes, 50);
        c.shutdown();
        h.join().unwrap();
    }

    #[test]
    fn concurrent_writers_share_fsyncs() {
        let dir = tempfile::tempdir().unwrap();
        let file = slot(dir.path());
        let (c, h) = committer();
        let writers: Vec<_> = (0..8)
            .map(|_| {
                let (c, file) = (c.clone(), file.clone());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        (&*file.get().unwrap()).write_all(b"y").unwrap();
                        let t = c.register(&file, None, true);
                        c.wait(t, Duration::from_secs(10)).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let stats = c.stats();
        assert_eq!(stats.writes, 160);
        assert!(stats.rounds >= 1 && stats.rounds <= 160, "{stats:?}");
        c.shutdown();
        h.join().unwrap();
    }

    #[test]
    fn wait_times_out_without_a_round() {
        let dir = tempfile::tempdir().unwrap();
        let file = slot(dir.path());
        let c = Committer::default();
        let t = c.register(&file, None, false);
        let err = c.wait(t, Duration::from_millis(20)).unwrap_err();
        assert!(matches!(err, StorageError::SyncTimeout(_)), "{err}");
    }

    #[test]
    fn async_waiters_are_released() {
        let dir = tempfile::tempdir().unwrap();
        let file = slot(dir.path());
        let (c, h) = committer();
        let t = c.register(&file, None, true);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), c.wait_async(t))
                .await
                .expect("released in time")
                .unwrap();
        });
        c.shutdown();
        h.join().unwrap();
    }
}
