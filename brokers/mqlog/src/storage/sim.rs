//! Test-only model of a disk under power loss, fed by the calls in `fs`: per file, the content
//! its last fsync made durable; per folder, the entries its last fsync made durable. A power
//! loss keeps exactly that: every file rolled back to its last fsynced content (empty if never
//! fsynced), every entry dropped whose folder was not fsynced after it appeared. This is what
//! POSIX promises and no more (ext4 usually keeps more). Also: failure injection, per thread.
//!
//! Not modelled: inode numbers reused after a file is deleted (the tests using it delete none).

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::fs::Op;

thread_local! {
    /// Calls left before the injected failure on this thread.
    static FAIL_AFTER: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Makes the `n`-th fs call from now on this thread fail (0: the next one); `None` disarms.
pub(crate) fn fail_nth_call(n: Option<u64>) {
    FAIL_AFTER.with(|f| f.set(n));
}

/// Whether the armed failure has fired (or none was armed).
pub(crate) fn failure_fired() -> bool {
    FAIL_AFTER.with(|f| f.get().is_none())
}

/// The fault-injection point every `fs` call passes.
pub(crate) fn fail_point(op: Op, path: &Path) -> io::Result<()> {
    FAIL_AFTER.with(|f| match f.get() {
        Some(0) => {
            f.set(None);
            Err(io::Error::other(format!(
                "injected failure of {op:?} on {}",
                path.display()
            )))
        }
        Some(n) => {
            f.set(Some(n - 1));
            Ok(())
        }
        None => Ok(()),
    })
}

type Ino = (u64, u64);

#[derive(Debug, Clone)]
struct Entry {
    name: OsString,
    ino: Ino,
    is_dir: bool,
}

#[derive(Default)]
struct Model {
    files: HashMap<Ino, Vec<u8>>,
    dirs: HashMap<Ino, Vec<Entry>>,
}

/// The durable state of one folder tree, updated by the fsyncs made under it.
struct Disk {
    root: PathBuf,
    root_ino: Ino,
    model: Mutex<Model>,
}

impl Disk {
    fn lock(&self) -> MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|e| e.into_inner())
    }
}

static DISKS: Mutex<Vec<Arc<Disk>>> = Mutex::new(Vec::new());

fn disks() -> MutexGuard<'static, Vec<Arc<Disk>>> {
    DISKS.lock().unwrap_or_else(|e| e.into_inner())
}

fn disk_of(path: &Path) -> Option<Arc<Disk>> {
    disks().iter().find(|d| path.starts_with(&d.root)).cloned()
}

fn ino(m: &std::fs::Metadata) -> Ino {
    (m.dev(), m.ino())
}

fn read_whole(file: &File) -> io::Result<Vec<u8>> {
    let len = file.metadata()?.len();
    let mut buf = vec![0u8; len as usize];
    let mut done = 0usize;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], done as u64)? {
            0 => {
                buf.truncate(done);
                break;
            }
            n => done += n,
        }
    }
    Ok(buf)
}

fn list(path: &Path) -> io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(path)? {
        let e = e?;
        let m = e.metadata()?;
        out.push(Entry {
            name: e.file_name(),
            ino: ino(&m),
            is_dir: m.is_dir(),
        });
    }
    Ok(out)
}

/// What an fsync is about to make durable; recorded only if the fsync succeeds.
pub(crate) struct Pending(Option<(Arc<Disk>, Snapshot)>);

enum Snapshot {
    File(Ino, Vec<u8>),
    Dir(Ino, Vec<Entry>),
}

/// Called before fsyncing `file`: its content now is at least what the fsync will cover.
pub(crate) fn before_sync_file(file: &File, path: &Path) -> Pending {
    Pending(disk_of(path).and_then(|d| {
        let m = file.metadata().ok()?;
        let content = read_whole(file).ok()?;
        Some((d, Snapshot::File(ino(&m), content)))
    }))
}

/// Called before fsyncing the folder `path`: its entries now.
pub(crate) fn before_sync_dir(path: &Path) -> Pending {
    Pending(disk_of(path).and_then(|d| {
        let m = std::fs::metadata(path).ok()?;
        Some((d, Snapshot::Dir(ino(&m), list(path).ok()?)))
    }))
}

/// Called after a successful fsync.
pub(crate) fn after_sync(p: Pending) {
    let Some((disk, snap)) = p.0 else { return };
    let mut m = disk.lock();
    match snap {
        Snapshot::File(i, content) => {
            m.files.insert(i, content);
        }
        Snapshot::Dir(i, entries) => {
            m.dirs.insert(i, entries);
        }
    }
}

/// Records the fsyncs made under `root` from now on; everything already there counts as
/// durable. Stops recording when dropped.
pub(crate) struct Recorder {
    disk: Arc<Disk>,
}

impl Recorder {
    pub(crate) fn start(root: &Path) -> io::Result<Recorder> {
        let root = root.canonicalize()?;
        let mut model = Model::default();
        fn walk(m: &mut Model, dir: &Path) -> io::Result<()> {
            let entries = list(dir)?;
            for e in &entries {
                let p = dir.join(&e.name);
                if e.is_dir {
                    walk(m, &p)?;
                } else {
                    m.files.insert(e.ino, std::fs::read(&p)?);
                }
            }
            m.dirs.insert(ino(&std::fs::metadata(dir)?), entries);
            Ok(())
        }
        walk(&mut model, &root)?;
        let disk = Arc::new(Disk {
            root_ino: ino(&std::fs::metadata(&root)?),
            root,
            model: Mutex::new(model),
        });
        disks().push(disk.clone());
        Ok(Recorder { disk })
    }

    /// Writes into the empty folder `dest` what a power loss now would leave of the tree.
    pub(crate) fn power_loss(&self, dest: &Path) -> io::Result<()> {
        let m = self.disk.lock();
        fn build(m: &Model, dir: Ino, dest: &Path) -> io::Result<()> {
            for e in m.dirs.get(&dir).map(Vec::as_slice).unwrap_or_default() {
                let p = dest.join(&e.name);
                if e.is_dir {
                    std::fs::create_dir(&p)?;
                    build(m, e.ino, &p)?;
                } else {
                    let content = m.files.get(&e.ino).map(Vec::as_slice).unwrap_or_default();
                    std::fs::write(&p, content)?;
                }
            }
            Ok(())
        }
        build(&m, self.disk.root_ino, dest)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        disks().retain(|d| !Arc::ptr_eq(d, &self.disk));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use super::Recorder;
    use crate::storage::{decode_batches, FsyncPolicy, Log, LogConfig};

    const WAIT: Duration = Duration::from_secs(20);
    const CYCLES: u32 = 24;
    const WRITERS: u64 = 3;

    /// A record whose fsynced acknowledgement was returned.
    #[derive(Debug, Clone)]
    struct Acked {
        topic: String,
        partition: u32,
        offset: u64,
        value: Vec<u8>,
    }

    /// What the writers had acknowledged when the power went.
    #[derive(Default)]
    struct Acks {
        records: Vec<Acked>,
        /// Records written without waiting for an fsync: only a clean close makes them durable.
        unacked: Vec<Acked>,
        /// Per writer's group: the last offset commit acknowledged after its fsync.
        commits: HashMap<String, u64>,
    }

    fn config(cycle: u32) -> LogConfig {
        let fsync = match cycle % 3 {
            0 => FsyncPolicy::Never,
            1 => FsyncPolicy::Interval(Duration::from_millis(3)),
            _ => FsyncPolicy::Always,
        };
        LogConfig {
            // Small segments and index intervals: many rolls, many new files per cycle.
            segment_bytes: 1024,
            index_interval_bytes: 128,
            // Far fewer than the segment files: fsyncs go through closed and reopened files.
            max_open_files: 4,
            fsync,
            ..LogConfig::default()
        }
    }

    /// xorshift64*, seeded: reproducible choices.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
        }
    }

    /// Appends until stopped: two thirds of the batches acknowledged after an fsync (under
    /// `never` the produce asks for it), the rest written without waiting; under `interval`
    /// and `always` an offset commit every few batches, acknowledged after its fsync.
    fn writer(
        log: Log,
        id: u64,
        cycle: u32,
        topics: Vec<(String, u32)>,
        acks: Arc<Mutex<Acks>>,
        stop: Arc<AtomicBool>,
    ) {
        let mut rng =
            Rng(((u64::from(cycle) + 1) << 8 | id).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let group = format!("g{id}");
        let durable_commits = log.config().fsync != FsyncPolicy::Never;
        let mut seq = 0u64;
        while !stop.load(Ordering::Relaxed) {
            seq += 1;
            let (topic, partitions) = &topics[rng.below(topics.len() as u64) as usize];
            let partition = rng.below(u64::from(*partitions)) as u32;
            let records: Vec<Vec<u8>> = (0..1 + rng.below(4))
                .map(|i| {
                    let mut r = format!("c{cycle}-w{id}-s{seq}-r{i}-").into_bytes();
                    r.resize(r.len() + rng.below(150) as usize, b'a' + (seq % 26) as u8);
                    r
                })
                .collect();
            let waited = rng.below(3) != 0;
            let out = if waited {
                log.append_sync(topic, partition, &records, true, WAIT)
            } else {
                log.append(topic, partition, &records)
            }
            .unwrap();
            let mut a = acks.lock().unwrap();
            let into = if waited {
                &mut a.records
            } else {
                &mut a.unacked
            };
            for (i, value) in records.into_iter().enumerate() {
                into.push(Acked {
                    topic: topic.clone(),
                    partition,
                    offset: out.base_offset + i as u64,
                    value,
                });
            }
            drop(a);
            if durable_commits && seq.is_multiple_of(4) {
                let value = u64::from(cycle) << 32 | seq;
                if let Some(t) = log.commit_offset(&group, "base", 0, value).unwrap() {
                    log.wait_durable(t, WAIT).unwrap();
                    acks.lock().unwrap().commits.insert(group.clone(), value);
                }
            }
        }
    }

    /// Every acknowledged record that is not at its offset with its bytes, as a sentence.
    fn missing(log: &Log, acked: &Acks) -> Vec<String> {
        let mut out = Vec::new();
        for a in &acked.records {
            let found = log
                .read(&a.topic, a.partition, a.offset, 1)
                .map_err(|e| e.to_string())
                .and_then(|r| decode_batches(&r.data, a.offset).map_err(|e| e.to_string()))
                .map(|recs| {
                    recs.into_iter()
                        .find(|r| r.offset == a.offset)
                        .map(|r| r.value.to_vec())
                });
            match found {
                Ok(Some(v)) if v == a.value => {}
                Ok(Some(_)) => out.push(format!(
                    "{}/{}@{}: other bytes",
                    a.topic, a.partition, a.offset
                )),
                Ok(None) => out.push(format!("{}/{}@{}: absent", a.topic, a.partition, a.offset)),
                Err(e) => out.push(format!("{}/{}@{}: {e}", a.topic, a.partition, a.offset)),
            }
        }
        for (group, want) in &acked.commits {
            match log.committed(group, "base", 0) {
                Ok(Some(got)) if got >= *want => {}
                other => out.push(format!("commit of {group}: {other:?}, acknowledged {want}")),
            }
        }
        out
    }

    /// Power loss in the middle of produces, over many cycles and every fsync policy: the
    /// folder a power loss leaves (only what fsyncs of files and folders made durable) reopens,
    /// and holds every record and offset commit whose fsynced acknowledgement was returned.
    /// Every fourth cycle closes the log cleanly first: then every record written survives.
    #[test]
    fn power_loss_loses_no_fsync_acknowledged_record() {
        let mut root = tempfile::tempdir().unwrap();
        let mut acked = Acks::default();
        let mut rng = Rng(0x5eed);
        let mut lost_total = 0usize;
        for cycle in 0..CYCLES {
            let path = root.path().canonicalize().unwrap();
            let recorder = Recorder::start(&path).unwrap();
            let log = Log::open(&path, config(cycle))
                .unwrap_or_else(|e| panic!("cycle {cycle}: the log does not reopen: {e}"));
            let lost = missing(&log, &acked);
            lost_total += lost.len();
            assert!(
                lost.is_empty(),
                "cycle {cycle} ({}): {} of {} acknowledged records or commits lost, e.g. {:?}",
                config(cycle.saturating_sub(1)).fsync,
                lost.len(),
                acked.records.len() + acked.commits.len(),
                &lost[..lost.len().min(5)]
            );
            log.create_topic("base", 3).unwrap();
            // A topic created this cycle: its folders must be durable before its records are.
            let fresh = format!("c{cycle}");
            let fresh_partitions = 1 + cycle % 3;
            log.create_topic(&fresh, fresh_partitions).unwrap();
            let topics = vec![("base".to_owned(), 3), (fresh, fresh_partitions)];
            let acks = Arc::new(Mutex::new(Acks::default()));
            let stop = Arc::new(AtomicBool::new(false));
            let mut writers: Vec<_> = (0..WRITERS)
                .map(|id| {
                    let (log, topics) = (log.clone(), topics.clone());
                    let (acks, stop) = (acks.clone(), stop.clone());
                    std::thread::spawn(move || writer(log, id, cycle, topics, acks, stop))
                })
                .collect();
            // Cut the power after a random number of acknowledgements, writers still running.
            let target = 10 + rng.below(50) as usize;
            let deadline = Instant::now() + WAIT;
            while acks.lock().unwrap().records.len() < target {
                assert!(Instant::now() < deadline, "cycle {cycle}: writers stalled");
                std::thread::sleep(Duration::from_millis(1));
            }
            let next = tempfile::tempdir().unwrap();
            let clean = cycle % 4 == 3;
            let cut = if clean {
                stop.store(true, Ordering::Relaxed);
                for w in writers.drain(..) {
                    w.join().expect("writer panicked");
                }
                // A new segment in every partition holding only unacknowledged records: the
                // close must make their files and names durable.
                let mut a = acks.lock().unwrap();
                for (topic, partitions) in &topics {
                    for partition in 0..*partitions {
                        let value = format!("c{cycle}-closing-{topic}-{partition}").into_bytes();
                        let value = [value, vec![b'z'; 1000]].concat();
                        let out = log.append(topic, partition, &[&value]).unwrap();
                        a.unacked.push(Acked {
                            topic: topic.clone(),
                            partition,
                            offset: out.base_offset,
                            value,
                        });
                    }
                }
                log.clone().close().unwrap();
                let unacked = std::mem::take(&mut a.unacked);
                a.records.extend(unacked);
                (a.records.clone(), a.commits.clone())
            } else {
                let a = acks.lock().unwrap();
                (a.records.clone(), a.commits.clone())
            };
            recorder.power_loss(next.path()).unwrap();
            stop.store(true, Ordering::Relaxed);
            for w in writers {
                w.join().expect("writer panicked");
            }
            // The process dies with the power: no close, no flush (unless it closed cleanly).
            drop(log);
            drop(recorder);
            acked.records.extend(cut.0);
            acked.commits.extend(cut.1);
            root = next;
        }
        let path = root.path().canonicalize().unwrap();
        let log = Log::open(&path, config(CYCLES)).unwrap();
        let lost = missing(&log, &acked);
        lost_total += lost.len();
        assert!(lost.is_empty(), "after the last cycle: {lost:?}");
        assert_eq!(lost_total, 0);
        // The cycles did real work: at least the minimum acknowledged per cycle.
        assert!(acked.records.len() >= 10 * CYCLES as usize);
        assert!(!acked.commits.is_empty());
    }
}
