//! mq-dedup: the idempotent consumer's store (`consumer_dedup = "store"`). One SQLite database
//! per variant, shared by all its consumer processes: a row per processed (producer, seq),
//! inserted in the same transaction that decides the message is new, and a count per consumer
//! of the repeats it skipped.
//!
//! A consumer marks one batch of deliveries at a time ([`Store::mark`]): `BEGIN IMMEDIATE`, an
//! `INSERT OR IGNORE` each (a row inserted is new, an ignored one a repeat), `COMMIT`. WAL mode
//! with `synchronous = NORMAL` makes a commit survive the process's kill (what the faults do);
//! `FULL` also fsyncs it, for a power loss. The runner reads the store back ([`read`]) after
//! the variant: a row no history holds is a message processed by a consumer killed before it
//! could record it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mq_core::delivery::DedupSync;
use mq_core::ids::{ConsumerId, Key, ProducerId, Seq};
use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};

/// Most deliveries a consumer marks in one transaction.
pub const MAX_BATCH: usize = 1024;

/// How long a consumer waits for another's transaction before giving up (SQLite's busy
/// timeout): far above any one batch's commit.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

const SCHEMA: &str = "
CREATE TABLE processed(
    producer INTEGER NOT NULL,
    seq      INTEGER NOT NULL,
    key      INTEGER NOT NULL,
    consumer INTEGER NOT NULL,
    sent_ns  INTEGER NOT NULL,
    at_ns    INTEGER NOT NULL,
    PRIMARY KEY(producer, seq)
) WITHOUT ROWID;
CREATE TABLE skipped(consumer INTEGER PRIMARY KEY, n INTEGER NOT NULL);
";

/// Why the store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("dedup store {}: {what}: {source}", path.display())]
    Sql {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("dedup store {}: {what}", path.display())]
    Bad { path: PathBuf, what: String },
}

/// One processed delivery, as its envelope says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Processed {
    pub producer: ProducerId,
    pub seq: Seq,
    pub key: Key,
    pub sent_ns: u64,
}

/// One row of the store: a message processed once, by `consumer`, in a batch marked at `at_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub producer: ProducerId,
    pub seq: Seq,
    pub key: Key,
    pub consumer: ConsumerId,
    pub sent_ns: u64,
    pub at_ns: u64,
}

/// What [`read`] found besides the rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Messages processed (rows).
    pub processed: u64,
    /// Deliveries skipped as repeats, over every consumer.
    pub skipped: u64,
}

/// The files of a store at `path`: the database, its write-ahead log and its shared memory.
fn files(path: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut s = path.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    [path.to_owned(), with("-wal"), with("-shm")]
}

/// A new, empty store at `path` (one left by an earlier run there is removed first): the
/// coordinator makes it before any consumer starts, so that none races to create it.
pub fn create(path: &Path) -> Result<(), StoreError> {
    remove(path).map_err(|e| StoreError::Bad {
        path: path.to_owned(),
        what: format!("removing the store of an earlier run: {e}"),
    })?;
    let sql = |what| {
        move |source| StoreError::Sql {
            path: path.to_owned(),
            what,
            source,
        }
    };
    let conn = Connection::open(path).map_err(sql("creating"))?;
    // WAL is a property of the file: every later connection uses it.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(sql("setting journal_mode = WAL"))?;
    conn.execute_batch(SCHEMA)
        .map_err(sql("creating the tables"))
}

/// Removes the store's files (absent ones are fine).
pub fn remove(path: &Path) -> std::io::Result<()> {
    for f in files(path) {
        match std::fs::remove_file(&f) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// A consumer's connection to the store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    consumer: ConsumerId,
}

impl Store {
    /// Opens the store [`create`] made, for consumer `consumer`.
    pub fn open(path: &Path, sync: DedupSync, consumer: ConsumerId) -> Result<Store, StoreError> {
        let sql = |what| {
            move |source| StoreError::Sql {
                path: path.to_owned(),
                what,
                source,
            }
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(sql("opening"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(sql("setting busy_timeout"))?;
        let sync = match sync {
            DedupSync::Normal => "NORMAL",
            DedupSync::Full => "FULL",
        };
        conn.pragma_update(None, "synchronous", sync)
            .map_err(sql("setting synchronous"))?;
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .map_err(sql("reading journal_mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Bad {
                path: path.to_owned(),
                what: format!("journal_mode is {mode:?}, not \"wal\": not a store made by bench"),
            });
        }
        Ok(Store {
            conn,
            path: path.to_owned(),
            consumer,
        })
    }

    /// Marks `batch` processed in one transaction: `new[i]` says whether `batch[i]` is new
    /// (inserted) or a repeat (already there, or earlier in the batch). Returns the repeats.
    /// Nothing is marked unless the whole batch commits.
    pub fn mark(
        &mut self,
        batch: &[Processed],
        at_ns: u64,
        new: &mut Vec<bool>,
    ) -> Result<u64, StoreError> {
        new.clear();
        let path = &self.path;
        let sql = |what| {
            move |source| StoreError::Sql {
                path: path.clone(),
                what,
                source,
            }
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("beginning a transaction"))?;
        let mut repeats = 0u64;
        {
            let mut insert = tx
                .prepare_cached("INSERT OR IGNORE INTO processed VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
                .map_err(sql("preparing the insert"))?;
            for p in batch {
                let n = insert
                    .execute(params![
                        p.producer.0,
                        int(path, "seq", p.seq.0)?,
                        p.key.0,
                        self.consumer.0,
                        int(path, "sent_ns", p.sent_ns)?,
                        int(path, "at_ns", at_ns)?,
                    ])
                    .map_err(sql("inserting"))?;
                new.push(n == 1);
                repeats += u64::from(n == 0);
            }
        }
        if repeats > 0 {
            tx.execute(
                "INSERT INTO skipped(consumer, n) VALUES (?1, ?2)
                 ON CONFLICT(consumer) DO UPDATE SET n = n + excluded.n",
                params![self.consumer.0, int(path, "repeats", repeats)?],
            )
            .map_err(sql("counting the repeats"))?;
        }
        tx.commit().map_err(sql("committing"))?;
        Ok(repeats)
    }
}

/// `v` as SQLite's integer, or an error naming `field`.
fn int(path: &Path, field: &str, v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Bad {
        path: path.to_owned(),
        what: format!("{field} = {v} does not fit a 64-bit signed integer"),
    })
}

/// Every row of the store at `path`, handed to `each`, and the totals. Reads while consumers
/// may still be writing (WAL readers do not wait for writers).
pub fn read(path: &Path, mut each: impl FnMut(Row)) -> Result<Summary, StoreError> {
    let sql = |what| {
        move |source| StoreError::Sql {
            path: path.to_owned(),
            what,
            source,
        }
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(sql("opening to read"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(sql("setting busy_timeout"))?;
    let mut summary = Summary::default();
    let mut stmt = conn
        .prepare("SELECT producer, seq, key, consumer, sent_ns, at_ns FROM processed")
        .map_err(sql("reading the processed messages"))?;
    let mut rows = stmt
        .query([])
        .map_err(sql("reading the processed messages"))?;
    while let Some(r) = rows.next().map_err(sql("reading a processed message"))? {
        let values: [i64; 6] = std::array::from_fn(|i| r.get(i).unwrap_or(-1));
        let row = to_row(values).ok_or_else(|| StoreError::Bad {
            path: path.to_owned(),
            what: format!(
                "row (producer, seq, key, consumer, sent_ns, at_ns) = {values:?} is out of range"
            ),
        })?;
        summary.processed += 1;
        each(row);
    }
    let skipped: i64 = conn
        .query_row("SELECT coalesce(sum(n), 0) FROM skipped", [], |r| r.get(0))
        .map_err(sql("reading the skipped counts"))?;
    summary.skipped = u64::try_from(skipped).map_err(|_| StoreError::Bad {
        path: path.to_owned(),
        what: format!("skipped counts sum to {skipped}"),
    })?;
    Ok(summary)
}

/// A row from its columns, None when one is out of its type's range.
fn to_row([producer, seq, key, consumer, sent_ns, at_ns]: [i64; 6]) -> Option<Row> {
    Some(Row {
        producer: ProducerId(u16::try_from(producer).ok()?),
        seq: Seq(u64::try_from(seq).ok()?),
        key: Key(u32::try_from(key).ok()?),
        consumer: ConsumerId(u16::try_from(consumer).ok()?),
        sent_ns: u64::try_from(sent_ns).ok()?,
        at_ns: u64::try_from(at_ns).ok()?,
    })
}

#[cfg(test)]
mod tests;
