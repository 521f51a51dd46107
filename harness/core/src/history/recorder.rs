//! What a worker records through: [`History`] takes one event at a time and writes it per the
//! variant's [`HistoryMode`]: every event as a version 1 record ("full"), runs of consecutive
//! messages in a version 2 file ("intervals"), or nothing ("off").
//!
//! Coalescing keeps one open run per stream (sends; acks and deliveries per (producer, key))
//! and moves its bound forward in place; a message that does not continue its run forward
//! (a repeat, a reorder, a key not the producer's own) is written as a record of its own, and a
//! gap, a stall or a new time cell closes the run and opens the next.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{key_of, FileHeader, HistoryWriter, Record, Run, V1, V2};
use crate::ids::{Key, ProducerId, Seq};

/// Runs never cross a boundary of this cell (1 s of the monotonic clock), so per-second counts
/// read from a version 2 history are exact.
pub const CELL_NS: u64 = 1_000_000_000;
/// A pause longer than this and than [`STALL_FACTOR`] times the run's mean spacing ends a run,
/// so a stall inside a cell shows in the times read back.
pub const STALL_NS: u64 = 10_000_000;
pub const STALL_FACTOR: u64 = 4;

/// How much of what it saw a worker writes.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum HistoryMode {
    /// One record per event (version 1): 96 bytes per acked and delivered message.
    Full,
    /// Runs of consecutive messages, anomalies one by one (version 2).
    #[default]
    Intervals,
    /// No history: nothing to check (counts come from the workers' totals only).
    Off,
}

/// The open run of one stream: where its record is, and its last message.
#[derive(Debug, Clone, Copy)]
struct Open {
    at: usize,
    run: Run,
    last_seq: u64,
    last_t: u64,
}

/// The version 2 writer's state.
struct Coalescer {
    w: HistoryWriter,
    keys: u32,
    sent: Option<Open>,
    /// Per (producer, key): `producer × keys + key`.
    acked: Vec<Option<Open>>,
    delivered: Vec<Option<Open>>,
}

enum Sink {
    Off,
    Full(HistoryWriter),
    Intervals(Coalescer),
}

/// A worker's history, written as its [`HistoryMode`] says.
pub struct History {
    sink: Sink,
}

impl History {
    /// Creates the history at `path` (nothing with [`HistoryMode::Off`]); `keys` is the
    /// variant's number of ordering keys.
    pub fn create(
        path: &Path,
        header: FileHeader,
        mode: HistoryMode,
        keys: u32,
    ) -> io::Result<History> {
        let keys = keys.max(1);
        let sink = match mode {
            HistoryMode::Off => Sink::Off,
            HistoryMode::Full => Sink::Full(HistoryWriter::create_version(path, header, V1, 0)?),
            HistoryMode::Intervals => Sink::Intervals(Coalescer {
                w: HistoryWriter::create_version(path, header, V2, keys)?,
                keys,
                sent: None,
                acked: Vec::new(),
                delivered: Vec::new(),
            }),
        };
        Ok(History { sink })
    }

    /// Records one event (a per-message record; runs are this writer's own business).
    #[inline]
    pub fn record(&mut self, r: Record) -> io::Result<()> {
        match &mut self.sink {
            Sink::Off => Ok(()),
            Sink::Full(w) => w.push(r),
            Sink::Intervals(c) => c.record(r),
        }
    }

    /// Marks the history as a transactional producer's (its header's flag): its sends count
    /// once a commit of them starts. Call it before the first send is recorded.
    pub fn mark_transactional(&mut self) {
        match &mut self.sink {
            Sink::Off => {}
            Sink::Full(w) => w.mark_transactional(),
            Sink::Intervals(c) => c.w.mark_transactional(),
        }
    }

    /// Records written so far (runs count one each).
    pub fn records(&self) -> u64 {
        match &self.sink {
            Sink::Off => 0,
            Sink::Full(w) => w.records(),
            Sink::Intervals(c) => c.w.records(),
        }
    }

    /// Trims the file to what was written; the path written, if any.
    pub fn finish(self) -> io::Result<Option<PathBuf>> {
        match self.sink {
            Sink::Off => Ok(None),
            Sink::Full(w) => w.finish().map(Some),
            Sink::Intervals(c) => c.w.finish().map(Some),
        }
    }
}

/// Which run kind a stream writes.
#[derive(Clone, Copy)]
enum Stream {
    Sent,
    Acked,
    Delivered,
}

impl Coalescer {
    #[inline]
    fn record(&mut self, r: Record) -> io::Result<()> {
        let keys = self.keys;
        let continued = match r {
            Record::Sent {
                producer,
                seq,
                key,
                intended_ns,
            } if key == key_of(producer, seq, keys) => {
                let open = &mut self.sent;
                extend(
                    &mut self.w,
                    open,
                    Stream::Sent,
                    producer,
                    key,
                    seq,
                    intended_ns,
                    1,
                )?
            }
            Record::Acked {
                producer,
                seq,
                at_ns,
                ..
            } => {
                let key = key_of(producer, seq, keys);
                let open = slot(&mut self.acked, producer, key, keys);
                extend(
                    &mut self.w,
                    open,
                    Stream::Acked,
                    producer,
                    key,
                    seq,
                    at_ns,
                    keys,
                )?
            }
            Record::Delivered {
                producer,
                seq,
                key,
                at_ns,
                ..
            } if key == key_of(producer, seq, keys) => {
                let open = slot(&mut self.delivered, producer, key, keys);
                let s = Stream::Delivered;
                extend(&mut self.w, open, s, producer, key, seq, at_ns, keys)?
            }
            Record::Sent { .. } => {
                self.sent = None;
                false
            }
            Record::Delivered {
                producer, seq, key, ..
            } => {
                // A key not the producer's own: the runs of both keys it touches end here.
                let own = key_of(producer, seq, keys);
                *slot(&mut self.delivered, producer, own, keys) = None;
                if key.0 < keys {
                    *slot(&mut self.delivered, producer, key, keys) = None;
                }
                false
            }
            Record::Failed { .. } | Record::Unexpected { .. } => false,
            Record::SentRun(_) | Record::AckedRun(_) | Record::DeliveredRun(_) => false,
            // Transactions are recorded one by one; they end no run (acks follow their commit).
            Record::CommitStarted(_) | Record::Aborted(_) => false,
        };
        if !continued {
            self.w.push(r)?;
        }
        Ok(())
    }
}

/// The open run of (producer, key), growing the table as producers appear.
#[inline]
fn slot(
    table: &mut Vec<Option<Open>>,
    producer: ProducerId,
    key: Key,
    keys: u32,
) -> &mut Option<Open> {
    let i = producer.0 as usize * keys as usize + key.0 as usize;
    if i >= table.len() {
        table.resize(i + 1, None);
    }
    &mut table[i]
}

/// Continues the open run with message `seq` at `t`, or closes it and opens a new one when
/// `seq` lies past it; `false` when `seq` is at or behind the run (a repeat or a reorder): the
/// run ends and the caller writes the message as a record of its own.
#[allow(clippy::too_many_arguments)]
#[inline]
fn extend(
    w: &mut HistoryWriter,
    open: &mut Option<Open>,
    stream: Stream,
    producer: ProducerId,
    key: Key,
    seq: Seq,
    t: u64,
    stride: u32,
) -> io::Result<bool> {
    if let Some(o) = open {
        if seq.0 <= o.last_seq {
            // The run ends here: its messages all came before this one, so a reader that
            // takes them where the run's record stands still sees this stream's order.
            *open = None;
            return Ok(false);
        }
        if continues(o, seq.0, t, stride) {
            o.run.count += 1;
            o.run.span = (t - o.run.t1) as u32;
            o.last_seq = seq.0;
            o.last_t = t;
            w.set_bound(o.at, o.run.count, o.run.span);
            return Ok(true);
        }
    }
    let run = Run {
        producer,
        key,
        first: seq,
        count: 1,
        t1: t,
        span: 0,
    };
    let at = w.push_at(match stream {
        Stream::Sent => Record::SentRun(run),
        Stream::Acked => Record::AckedRun(run),
        Stream::Delivered => Record::DeliveredRun(run),
    })?;
    *open = Some(Open {
        at,
        run,
        last_seq: seq.0,
        last_t: t,
    });
    Ok(true)
}

/// Whether `seq` at `t` is the run's next message, in its cell, without a stall before it.
#[inline]
fn continues(o: &Open, seq: u64, t: u64, stride: u32) -> bool {
    let r = &o.run;
    let pause = t.wrapping_sub(o.last_t);
    seq == o.last_seq.wrapping_add(u64::from(stride))
        && t >= o.last_t
        && t / CELL_NS == r.t1 / CELL_NS
        && t - r.t1 <= u64::from(u32::MAX)
        && r.count < u32::MAX
        && !(r.count >= 2
            && pause > STALL_NS
            && u128::from(pause) * u128::from(r.count - 1)
                > u128::from(STALL_FACTOR) * u128::from(r.span))
}
