//! The log: one directory holding topics, consumer offsets, the committer thread and the
//! housekeeper thread (interval fsyncs, retention). This is the engine's entry point.
//!
//! Layout: `DIR/.lock` (flock: one process per directory), `DIR/topics/<topic>/<partition>/`
//! segments, `DIR/consumer_offsets.log`. Segment files are opened on demand within a cap
//! (`files`), so a folder with any number of partitions reopens under any open-file limit.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, RwLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::batch::encode_records;
use super::commit::{CommitStats, CommitTicket, Committer};
use super::config::{FsyncPolicy, LogConfig};
use super::error::{IoContext, Result, StorageError};
use super::files::OpenFiles;
use super::fs;
use super::offsets::OffsetStore;
use super::partition::{now_ms, AppendOutcome, Partition, ReadResult, Shared};
use super::segment::Truncation;
use super::topic::{validate_name, Topic, TMP_PREFIX};

/// A stop flag the background threads wait on.
#[derive(Default)]
struct Stop {
    stopped: Mutex<bool>,
    cv: Condvar,
}

impl Stop {
    fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }

    /// Sleeps up to `d`; true if stopped.
    fn sleep(&self, d: Duration) -> bool {
        let g = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        let (g, _) = self
            .cv
            .wait_timeout_while(g, d, |s| !*s)
            .unwrap_or_else(|e| e.into_inner());
        *g
    }
}

struct Inner {
    dir: PathBuf,
    config: Arc<LogConfig>,
    files: Arc<OpenFiles>,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    create_lock: Mutex<()>,
    committer: Arc<Committer>,
    offsets: OffsetStore,
    recovery: Vec<Truncation>,
    _lock_file: File,
}

/// The committer and housekeeper threads, stopped and joined when the last `Log` handle goes.
/// The housekeeper holds the log for a moment on each tick; joining it first means the
/// directory's lock is free the moment the last handle is dropped, not a tick later.
struct Workers {
    stop: Arc<Stop>,
    committer: Arc<Committer>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Workers {
    fn shutdown(&self) {
        self.stop.stop();
        self.committer.shutdown();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A handle on an open log directory; cheap to clone and share between threads.
#[derive(Clone)]
pub struct Log {
    // Declared (so dropped) before `inner`: the threads let go of the log before this
    // handle's reference to it, perhaps the last, goes.
    workers: Arc<Workers>,
    inner: Arc<Inner>,
}

/// The cap on open segment files: `configured`, but at most half the process's soft
/// RLIMIT_NOFILE, so that connections, the offsets log and the lock keep the other half.
fn open_files_cap(configured: usize) -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if rc != 0 || lim.rlim_cur == libc::RLIM_INFINITY {
        return configured;
    }
    let half = usize::try_from(lim.rlim_cur / 2)
        .unwrap_or(usize::MAX)
        .max(1);
    if half < configured {
        tracing::info!(
            configured,
            cap = half,
            nofile = lim.rlim_cur,
            "open segment files capped at half the open-file limit"
        );
    }
    configured.min(half)
}

fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .ctx(|| format!("opening {}", path.display()))?;
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(StorageError::Locked(dir.to_owned()));
    }
    Ok(file)
}

impl Log {
    /// Opens the log in `dir` (creating it), recovering every partition, and starts the
    /// committer and housekeeper threads.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Log> {
        config.validate()?;
        let dir = dir.as_ref().to_owned();
        if fs::create_dir_all(&dir)? {
            // A new log folder's own name must be durable too.
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::sync_dir(parent)?;
            }
        }
        let topics_dir = dir.join("topics");
        fs::create_dir_all(&topics_dir)?;
        let lock_file = lock_dir(&dir)?;
        let shared = Shared {
            files: OpenFiles::new(open_files_cap(config.max_open_files)),
            config: Arc::new(config),
            committer: Arc::new(Committer::default()),
        };
        let (config, committer) = (shared.config.clone(), shared.committer.clone());
        let mut topics = HashMap::new();
        let mut recovery = Vec::new();
        for entry in
            std::fs::read_dir(&topics_dir).ctx(|| format!("listing {}", topics_dir.display()))?
        {
            let entry = entry.ctx(|| format!("listing {}", topics_dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(TMP_PREFIX) {
                // A topic creation that failed or crashed before its rename.
                let _ = fs::remove_dir_all(&entry.path());
                continue;
            }
            if validate_name(&name).is_err() || !entry.path().is_dir() {
                tracing::warn!(entry = %entry.path().display(), "not a topic; ignored");
                continue;
            }
            let (topic, t) = Topic::open(&entry.path(), &name, &shared)?;
            recovery.extend(t);
            topics.insert(name, Arc::new(topic));
        }
        let offsets = OffsetStore::open(&dir)?;
        // `topics/` and `consumer_offsets.log` may have just been created: make their names
        // durable before anything written into them is acknowledged.
        fs::sync_dir(&dir)?;
        let inner = Arc::new(Inner {
            dir,
            config: config.clone(),
            files: shared.files,
            topics: RwLock::new(topics),
            create_lock: Mutex::new(()),
            committer: committer.clone(),
            offsets,
            recovery,
            _lock_file: lock_file,
        });
        // From here on, an early return drops `workers`, which stops and joins whatever
        // was spawned.
        let workers = Arc::new(Workers {
            stop: Arc::new(Stop::default()),
            committer: committer.clone(),
            threads: Mutex::new(Vec::new()),
        });
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| -> Result<()> {
            let t = std::thread::Builder::new()
                .name(format!("mqlog-{name}"))
                .spawn(f)
                .ctx(|| format!("spawning the {name} thread"))?;
            workers
                .threads
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(t);
            Ok(())
        };
        spawn("committer", Box::new(move || committer.run()))?;
        let (weak, stop) = (Arc::downgrade(&inner), workers.stop.clone());
        spawn(
            "housekeeper",
            Box::new(move || housekeeper(weak, stop, config)),
        )?;
        Ok(Log { workers, inner })
    }

    /// The configuration the log runs with.
    pub fn config(&self) -> &LogConfig {
        &self.inner.config
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// What recovery truncated when the log was opened.
    pub fn recovery_report(&self) -> &[Truncation] {
        &self.inner.recovery
    }

    /// Creates a topic; `Ok(false)` if it exists with the same partition count.
    pub fn create_topic(&self, name: &str, partitions: u32) -> Result<bool> {
        let _serial = self
            .inner
            .create_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Ok(t) = self.topic(name) {
            let existing = t.partitions().len() as u32;
            return if existing == partitions {
                Ok(false)
            } else {
                Err(StorageError::TopicExists {
                    topic: name.to_owned(),
                    existing,
                    requested: partitions,
                })
            };
        }
        let limit = self.inner.config.max_topics;
        let topics = self
            .inner
            .topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len();
        if topics >= limit as usize {
            return Err(StorageError::LimitExceeded {
                what: "topics per log",
                requested: topics as u64 + 1,
                limit: u64::from(limit),
                setting: "max_topics, --max-topics",
            });
        }
        let shared = Shared {
            config: self.inner.config.clone(),
            committer: self.inner.committer.clone(),
            files: self.inner.files.clone(),
        };
        let topic = Topic::create(&self.inner.dir.join("topics"), name, partitions, &shared)?;
        self.inner
            .topics
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), Arc::new(topic));
        Ok(true)
    }

    /// A topic by name.
    pub fn topic(&self, name: &str) -> Result<Arc<Topic>> {
        self.inner
            .topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| StorageError::UnknownTopic(name.to_owned()))
    }

    /// Names of every topic (tests look at what a creation left behind).
    #[cfg(test)]
    pub fn topic_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .inner
            .topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// One partition of a topic.
    pub fn partition(&self, topic: &str, partition: u32) -> Result<Arc<Partition>> {
        Ok(self.topic(topic)?.partition(partition)?.clone())
    }

    /// Appends `records` as one batch. Under `always`, pass the ticket to [`Log::wait_durable`]
    /// before acknowledging.
    pub fn append<R: AsRef<[u8]>>(
        &self,
        topic: &str,
        partition: u32,
        records: &[R],
    ) -> Result<AppendOutcome> {
        let mut framed = Vec::new();
        encode_records(&mut framed, records);
        self.partition(topic, partition)?
            .append_framed(&framed, records.len() as u32, false)
    }

    /// Appends and, when the policy is `always` or `durable` is set, blocks until an fsync
    /// covers the write (bounded by `timeout`).
    pub fn append_sync<R: AsRef<[u8]>>(
        &self,
        topic: &str,
        partition: u32,
        records: &[R],
        durable: bool,
        timeout: Duration,
    ) -> Result<AppendOutcome> {
        let mut framed = Vec::new();
        encode_records(&mut framed, records);
        let out = self.partition(topic, partition)?.append_framed(
            &framed,
            records.len() as u32,
            durable,
        )?;
        if durable || self.inner.config.fsync == FsyncPolicy::Always {
            if let Some(t) = out.ticket {
                self.wait_durable(t, timeout)?;
            }
        }
        Ok(out)
    }

    /// Blocks until an fsync covers `ticket`.
    pub fn wait_durable(&self, ticket: CommitTicket, timeout: Duration) -> Result<()> {
        self.inner.committer.wait(ticket, timeout)
    }

    /// Waits (async) until an fsync covers `ticket`; bound it with a timeout.
    pub async fn wait_durable_async(&self, ticket: CommitTicket) -> Result<()> {
        self.inner.committer.wait_async(ticket).await
    }

    /// Reads whole batches from `offset` (see [`Partition::read`]).
    pub fn read(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_bytes: u64,
    ) -> Result<ReadResult> {
        self.partition(topic, partition)?.read(offset, max_bytes)
    }

    /// End offset of each partition of `topic`, by partition number.
    pub fn end_offsets(&self, topic: &str) -> Result<Vec<u64>> {
        Ok(self
            .topic(topic)?
            .partitions()
            .iter()
            .map(|p| p.end_offset())
            .collect())
    }

    /// First retained offset of each partition of `topic`.
    pub fn start_offsets(&self, topic: &str) -> Result<Vec<u64>> {
        Ok(self
            .topic(topic)?
            .partitions()
            .iter()
            .map(|p| p.start_offset())
            .collect())
    }

    /// Commits `offset` for the group; the ticket is set when the policy registers the write
    /// for an fsync (wait on it under `always`).
    pub fn commit_offset(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> Result<Option<CommitTicket>> {
        validate_name(group)?;
        self.topic(topic)?.partition(partition)?;
        let file = self.inner.offsets.commit(group, topic, partition, offset)?;
        Ok(match self.inner.config.fsync {
            FsyncPolicy::Never => None,
            // The offsets log's name was made durable when the log was opened.
            p => Some(
                self.inner
                    .committer
                    .register(&file, None, p == FsyncPolicy::Always),
            ),
        })
    }

    /// The offset the group last committed, if any.
    pub fn committed(&self, group: &str, topic: &str, partition: u32) -> Result<Option<u64>> {
        validate_name(group)?;
        self.topic(topic)?.partition(partition)?;
        Ok(self.inner.offsets.committed(group, topic, partition))
    }

    /// Applies retention to every partition now; returns the segments deleted.
    pub fn enforce_retention(&self) -> Result<usize> {
        self.inner.enforce_retention()
    }

    /// fsyncs every segment, index and the offsets log now, and the folders files were
    /// created in.
    pub fn flush(&self) -> Result<()> {
        for t in self.inner.topics_now() {
            for p in t.partitions() {
                p.sync()?;
            }
        }
        self.inner.offsets.sync()?;
        fs::sync_dir(&self.inner.dir.join("topics"))?;
        fs::sync_dir(&self.inner.dir)
    }

    /// Segment files open now, and the cap on them (the configured one, lowered to half the
    /// process's open-file limit).
    pub fn open_files(&self) -> (usize, usize) {
        (self.inner.files.open(), self.inner.files.cap())
    }

    /// Group-commit counters (rounds, fsyncs, registered writes).
    pub fn commit_stats(&self) -> CommitStats {
        self.inner.committer.stats()
    }

    /// Flushes everything, stops the background threads and waits for them.
    pub fn close(self) -> Result<()> {
        let flushed = self.flush();
        self.workers.shutdown();
        flushed
    }
}

impl Inner {
    /// The topics there are now (the map's lock is not held while they are worked on).
    fn topics_now(&self) -> Vec<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn enforce_retention(&self) -> Result<usize> {
        let now = now_ms();
        let mut n = 0;
        for t in self.topics_now() {
            for p in t.partitions() {
                n += p.enforce_retention(now)?;
            }
        }
        Ok(n)
    }
}

/// Requests interval fsync rounds and applies retention until the log is dropped or closed.
fn housekeeper(log: Weak<Inner>, stop: Arc<Stop>, config: Arc<LogConfig>) {
    let retention = config.retention_bytes.is_some() || config.retention_age.is_some();
    let flush_every = match config.fsync {
        FsyncPolicy::Interval(d) => Some(d),
        _ => None,
    };
    let tick = flush_every
        .unwrap_or(config.retention_check_interval)
        .min(config.retention_check_interval)
        .max(Duration::from_millis(1));
    let mut last_retention = Instant::now();
    loop {
        if stop.sleep(tick) {
            return;
        }
        let Some(inner) = log.upgrade() else { return };
        if flush_every.is_some() {
            inner.committer.request_round();
        }
        if retention && last_retention.elapsed() >= config.retention_check_interval {
            last_retention = Instant::now();
            if let Err(e) = inner.enforce_retention() {
                tracing::warn!(error = %e, "retention failed");
            }
        }
    }
}

#[cfg(test)]
#[path = "log_tests.rs"]
mod tests;
