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
    stop: Arc<Stop>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    _lock_file: File,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.stop();
        self.committer.shutdown();
    }
}

/// A handle on an open log directory; cheap to clone and share between threads.
#[derive(Clone)]
pub struct Log {
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
        let stop = Arc::new(Stop::default());
        let inner = Arc::new(Inner {
            dir,
            config: config.clone(),
            files: shared.files,
            topics: RwLock::new(topics),
            create_lock: Mutex::new(()),
            committer: committer.clone(),
            offsets,
            recovery,
            stop: stop.clone(),
            threads: Mutex::new(Vec::new()),
            _lock_file: lock_file,
        });
        let mut threads = Vec::new();
        let c = committer.clone();
        threads.push(
            std::thread::Builder::new()
                .name("mqlog-committer".into())
                .spawn(move || c.run())
                .ctx(|| "spawning the committer thread".into())?,
        );
        let weak = Arc::downgrade(&inner);
        threads.push(
            std::thread::Builder::new()
                .name("mqlog-housekeeper".into())
                .spawn(move || housekeeper(weak, stop, config))
                .ctx(|| "spawning the housekeeper thread".into())?,
        );
        *inner.threads.lock().unwrap_or_else(|e| e.into_inner()) = threads;
        Ok(Log { inner })
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
        let topics: Vec<Arc<Topic>> = self
            .inner
            .topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        let now = now_ms();
        let mut n = 0;
        for t in topics {
            for p in t.partitions() {
                n += p.enforce_retention(now)?;
            }
        }
        Ok(n)
    }

    /// fsyncs every segment, index and the offsets log now, and the folders files were
    /// created in.
    pub fn flush(&self) -> Result<()> {
        let topics: Vec<Arc<Topic>> = self
            .inner
            .topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for t in topics {
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
        self.inner.stop.stop();
        self.inner.committer.shutdown();
        let threads =
            std::mem::take(&mut *self.inner.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for t in threads {
            let _ = t.join();
        }
        flushed
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
            let log = Log { inner };
            if let Err(e) = log.enforce_retention() {
                tracing::warn!(error = %e, "retention failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{decode_batches, segment_paths};

    fn config(segment_bytes: u64) -> LogConfig {
        LogConfig {
            segment_bytes,
            index_interval_bytes: 256,
            ..LogConfig::default()
        }
    }

    /// A log opened with `cfg` in a fresh temporary directory, with one single-partition topic `t`.
    fn open_with_topic_t(cfg: LogConfig) -> (tempfile::TempDir, Log) {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), cfg).unwrap();
        log.create_topic("t", 1).unwrap();
        (dir, log)
    }

    fn read_all(log: &Log, topic: &str, p: u32) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        let mut offset = log.start_offsets(topic).unwrap()[p as usize];
        loop {
            let r = log.read(topic, p, offset, 1000).unwrap();
            if r.data.is_empty() {
                return out;
            }
            for rec in decode_batches(&r.data, offset).unwrap() {
                assert_eq!(rec.offset, offset, "records are consecutive");
                offset = rec.offset + 1;
                out.push((rec.offset, rec.value.to_vec()));
            }
        }
    }

    #[test]
    fn segments_roll_at_the_size_limit_and_reads_cross_them() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), config(1024)).unwrap();
        assert!(log.create_topic("t", 2).unwrap());
        assert!(!log.create_topic("t", 2).unwrap());
        assert!(matches!(
            log.create_topic("t", 3),
            Err(StorageError::TopicExists { .. })
        ));
        // Each batch: 28 header + 2 * (4 + 100) = 236 bytes; 4 fit in 1024, the 5th rolls.
        let rec = vec![7u8; 100];
        for i in 0..10u64 {
            let out = log.append("t", 0, &[&rec[..], &rec[..]]).unwrap();
            assert_eq!(out.base_offset, 2 * i);
            assert_eq!(out.next_offset, 2 * i + 2);
        }
        let p = log.partition("t", 0).unwrap();
        let segs = p.segments();
        assert_eq!(segs, vec![(0, 944), (8, 944), (16, 472)]);
        // Closed segments have their index written; the active one's lives in memory until
        // it closes.
        for (base, index) in [(0u64, true), (8, true), (16, false)] {
            let (l, i) = segment_paths(p.dir(), base);
            assert!(l.exists(), "{}", l.display());
            assert_eq!(i.exists(), index, "{}", i.display());
        }
        let all = read_all(&log, "t", 0);
        assert_eq!(all.len(), 20);
        assert!(all
            .iter()
            .enumerate()
            .all(|(i, (o, v))| *o == i as u64 && *v == rec));
        // Reading from the middle of a batch returns that whole batch; decode filters.
        let r = log.read("t", 0, 9, 1).unwrap();
        let recs = decode_batches(&r.data, 9).unwrap();
        assert_eq!(recs.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![9]);
        assert_eq!(log.end_offsets("t").unwrap(), vec![20, 0]);
        assert!(matches!(
            log.read("t", 0, 21, 10),
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        assert!(log.read("t", 0, 20, 10).unwrap().data.is_empty());
        assert!(matches!(
            log.read("t", 2, 0, 10),
            Err(StorageError::UnknownPartition { .. })
        ));
        log.close().unwrap();
        // Reopen: the same segments, and appends continue.
        let log = Log::open(dir.path(), config(1024)).unwrap();
        assert!(log.recovery_report().is_empty());
        assert_eq!(log.partition("t", 0).unwrap().segments(), segs);
        assert_eq!(log.append("t", 0, &[b"x"]).unwrap().base_offset, 20);
    }

    #[test]
    fn retention_by_bytes_keeps_the_newest_segments() {
        let cfg = LogConfig {
            retention_bytes: Some(2000),
            retention_check_interval: Duration::from_secs(3600),
            ..config(1024)
        };
        let (_dir, log) = open_with_topic_t(cfg);
        let rec = [1u8; 100];
        for _ in 0..10 {
            log.append("t", 0, &[&rec[..], &rec[..]]).unwrap();
        }
        // 944 + 944 + 472 = 2360 > 2000: the oldest segment goes, 1416 remain.
        assert_eq!(log.enforce_retention().unwrap(), 1);
        assert_eq!(log.enforce_retention().unwrap(), 0);
        let p = log.partition("t", 0).unwrap();
        assert_eq!(p.segments(), vec![(8, 944), (16, 472)]);
        assert_eq!(log.start_offsets("t").unwrap(), vec![8]);
        assert!(!segment_paths(p.dir(), 0).0.exists());
        assert!(matches!(
            log.read("t", 0, 7, 10),
            Err(StorageError::OffsetOutOfRange { start: 8, .. })
        ));
        assert_eq!(read_all(&log, "t", 0).len(), 12);
    }

    #[test]
    fn retention_by_age_never_deletes_the_active_segment() {
        let cfg = LogConfig {
            retention_age: Some(Duration::from_millis(1)),
            retention_check_interval: Duration::from_secs(3600),
            ..config(1024)
        };
        let (_dir, log) = open_with_topic_t(cfg);
        let rec = vec![1u8; 300];
        for _ in 0..5 {
            log.append("t", 0, &[&rec[..]]).unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
        // Three 332-byte batches fit in 1024: segments [0..3), [3..5).
        assert_eq!(log.enforce_retention().unwrap(), 1);
        assert_eq!(log.partition("t", 0).unwrap().segments(), vec![(3, 664)]);
        assert_eq!(log.append("t", 0, &[b"z"]).unwrap().base_offset, 5);
    }

    #[test]
    fn housekeeper_applies_retention_by_itself() {
        let cfg = LogConfig {
            retention_bytes: Some(1),
            retention_check_interval: Duration::from_millis(10),
            ..config(1024)
        };
        let (_dir, log) = open_with_topic_t(cfg);
        for _ in 0..5 {
            log.append("t", 0, &[vec![0u8; 300]]).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while log.start_offsets("t").unwrap()[0] != 3 {
            assert!(Instant::now() < deadline, "retention never ran");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn group_commit_under_always_shares_fsyncs_between_writers() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig {
            fsync: FsyncPolicy::Always,
            ..LogConfig::default()
        };
        let log = Log::open(dir.path(), cfg).unwrap();
        log.create_topic("t", 1).unwrap();
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        let rec = format!("{w}-{i}");
                        log.append_sync("t", 0, &[rec.as_bytes()], false, Duration::from_secs(10))
                            .unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let stats = log.commit_stats();
        assert_eq!(stats.writes, 200);
        assert!(stats.rounds < 200, "no write shared an fsync: {stats:?}");
        assert_eq!(log.end_offsets("t").unwrap(), vec![200]);
    }

    #[test]
    fn durable_append_under_never_forces_an_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        log.create_topic("t", 1).unwrap();
        let out = log.append("t", 0, &[b"a"]).unwrap();
        assert_eq!(out.ticket, None);
        log.append_sync("t", 0, &[b"b"], true, Duration::from_secs(10))
            .unwrap();
        assert_eq!(log.commit_stats().rounds, 1);
    }

    #[test]
    fn interval_policy_fsyncs_without_being_asked() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig {
            fsync: FsyncPolicy::Interval(Duration::from_millis(5)),
            ..LogConfig::default()
        };
        let log = Log::open(dir.path(), cfg).unwrap();
        log.create_topic("t", 1).unwrap();
        let out = log.append("t", 0, &[b"a"]).unwrap();
        log.wait_durable(out.ticket.unwrap(), Duration::from_secs(10))
            .unwrap();
        assert!(log.commit_stats().rounds >= 1);
    }

    /// Whichever file-system call of a topic creation fails, nothing is left behind, the topic
    /// is unknown, and a retry creates it.
    #[test]
    fn topic_creation_is_all_or_nothing_whichever_call_fails() {
        use crate::storage::sim;
        let dir = tempfile::tempdir().unwrap();
        let topics = dir.path().join("topics");
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        let mut k = 0u64;
        loop {
            let name = format!("t{k}");
            sim::fail_nth_call(Some(k));
            let result = log.create_topic(&name, 3);
            let fired = sim::failure_fired();
            sim::fail_nth_call(None);
            if !fired {
                assert!(result.unwrap());
                break;
            }
            let err = result.expect_err("an injected failure is reported");
            assert!(err.to_string().contains("injected failure"), "{err}");
            assert!(!topics.join(&name).exists(), "call {k} left the topic");
            assert!(
                !topics.join(format!(".tmp-{name}")).exists(),
                "call {k} left the temp folder"
            );
            assert!(matches!(
                log.topic(&name),
                Err(StorageError::UnknownTopic(_))
            ));
            assert!(log.create_topic(&name, 3).unwrap(), "retry after call {k}");
            log.append_sync(&name, 2, &[b"x"], true, Duration::from_secs(10))
                .unwrap();
            k += 1;
        }
        // Remove a leftover temp folder, create it, 3 × (partition folder, first segment),
        // fsync it, rename it, fsync topics/: 11 calls, each failed once.
        assert_eq!(k, 11);
        drop(log);
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        let mut want: Vec<String> = (0..=k).map(|i| format!("t{i}")).collect();
        want.sort();
        assert_eq!(log.topic_names(), want);
        for i in 0..k {
            assert_eq!(log.end_offsets(&format!("t{i}")).unwrap(), vec![0, 0, 1]);
        }
        assert_eq!(log.end_offsets(&format!("t{k}")).unwrap(), vec![0, 0, 0]);
    }

    #[test]
    fn leftover_temp_folder_of_a_crashed_creation_is_removed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        Log::open(dir.path(), LogConfig::default())
            .unwrap()
            .create_topic("a", 1)
            .unwrap();
        let tmp = dir.path().join("topics/.tmp-b");
        std::fs::create_dir_all(tmp.join("0")).unwrap();
        std::fs::write(tmp.join("0/00000000000000000000.log"), b"junk").unwrap();
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        assert!(!tmp.exists());
        assert_eq!(log.topic_names(), vec!["a".to_owned()]);
        assert!(log.create_topic("b", 2).unwrap());
    }

    /// 40 partitions rolling segments, durable writes, reads of everything, a flush: never
    /// more segment files open than the cap; none at all right after open.
    #[test]
    fn open_segment_files_stay_within_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = || LogConfig {
            max_open_files: 8,
            ..config(1024)
        };
        let log = Log::open(dir.path(), cfg()).unwrap();
        log.create_topic("t", 40).unwrap();
        assert_eq!(log.open_files(), (0, 8));
        // 632-byte batches: every one after the first rolls its partition's segment.
        for round in 0..3u8 {
            for p in 0..40u32 {
                let rec = vec![round; 600];
                log.append_sync("t", p, &[&rec], p % 5 == 0, Duration::from_secs(10))
                    .unwrap();
                assert!(log.open_files().0 <= 8, "{:?}", log.open_files());
            }
        }
        let check = |log: &Log| {
            for p in 0..40u32 {
                let all = read_all(log, "t", p);
                assert_eq!(all.len(), 3);
                for (o, v) in all {
                    assert_eq!(v, vec![o as u8; 600]);
                }
                assert!(log.open_files().0 <= 8, "{:?}", log.open_files());
            }
        };
        check(&log);
        log.flush().unwrap();
        assert!(log.open_files().0 <= 8);
        log.close().unwrap();
        let log = Log::open(dir.path(), cfg()).unwrap();
        assert_eq!(log.open_files(), (0, 8));
        check(&log);
    }

    #[test]
    fn second_open_of_a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        assert!(matches!(
            Log::open(dir.path(), LogConfig::default()),
            Err(StorageError::Locked(_))
        ));
        drop(log);
        Log::open(dir.path(), LogConfig::default()).unwrap();
    }

    #[test]
    fn offsets_commit_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        log.create_topic("t", 2).unwrap();
        assert_eq!(log.committed("g", "t", 1).unwrap(), None);
        log.commit_offset("g", "t", 1, 42).unwrap();
        assert!(matches!(
            log.commit_offset("g", "u", 0, 1),
            Err(StorageError::UnknownTopic(_))
        ));
        assert!(matches!(
            log.commit_offset("g/x", "t", 0, 1),
            Err(StorageError::InvalidName(_))
        ));
        log.close().unwrap();
        let log = Log::open(dir.path(), LogConfig::default()).unwrap();
        assert_eq!(log.committed("g", "t", 1).unwrap(), Some(42));
        assert_eq!(log.committed("g", "t", 0).unwrap(), None);
    }
}
