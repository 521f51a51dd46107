//! The consumers' histories merged into one stream of deliveries in delivery-time order (the
//! shared clock: every worker runs on one machine), so that per-key order is judged across the
//! consumers that competed for a key, and "first delivery" means the earliest one.
//!
//! Order is `(time, consumer, record, position)`: delivery time; at one time, the consumer's
//! number (its header's worker id); then the consumer's own file order. A version 2 run's
//! messages take their spread times ([`Run::time_of`]) and interleave with the records after it.
//!
//! A consumer's file is read once, forward. Records are written when their first message happens,
//! so their start times do not go back; where one does (a clock step, a worker that stamps a
//! time before it records), its start is raised to the latest start read before it in that file
//! (and its run's messages to at least that): the file's order wins over the stamped time.
//!
//! Memory per consumer: its reader's buffer (together at most 32 MiB, at least 64 KiB each), one
//! record read ahead, and the runs still open at the time being merged (runs of one (producer,
//! key) never overlap, so at most one per stream).

use std::cmp::Reverse;
use std::collections::binary_heap::PeekMut;
use std::collections::BinaryHeap;

use mq_core::history::{HistoryReader, Record, Run};
use mq_core::ids::ConsumerId;

use crate::input::CheckError;
use crate::messages::Delivery;

/// One event of the merged stream.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Event {
    /// A delivery; `latency`: whether `sent_ns` is the message's send time (a version 1 record).
    Delivery { d: Delivery, latency: bool },
    /// A payload that is not one of the run's messages.
    Foreign { consumer: ConsumerId, at_ns: u64 },
}

/// What is left to take from one record: a run from `position` on, or a single record.
#[derive(Debug, Clone, Copy)]
enum Item {
    Run { run: Run, position: u64, floor: u64 },
    One(Record),
}

/// A record being taken, ranked by its next message's (time, record, position).
#[derive(Debug, Clone, Copy)]
struct Cursor {
    time: u64,
    record: u64,
    item: Item,
}

impl Cursor {
    fn rank(&self) -> (u64, u64, u64) {
        let position = match self.item {
            Item::Run { position, .. } => position,
            Item::One(_) => 0,
        };
        (self.time, self.record, position)
    }
}

impl PartialEq for Cursor {
    fn eq(&self, other: &Cursor) -> bool {
        self.rank() == other.rank()
    }
}
impl Eq for Cursor {}
impl PartialOrd for Cursor {
    fn partial_cmp(&self, other: &Cursor) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Cursor {
    fn cmp(&self, other: &Cursor) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

/// One consumer's history, read forward and handed out in time order.
struct Source {
    reader: HistoryReader,
    consumer: ConsumerId,
    v1: bool,
    /// The seq step of delivered runs (the file's keys).
    stride: u64,
    /// The next record, read ahead, with its (raised) start time.
    ahead: Option<(u64, Record)>,
    /// Records read so far (the index of the next one).
    read: u64,
    /// The latest record start read so far.
    floor: u64,
    live: BinaryHeap<Reverse<Cursor>>,
}

impl Source {
    /// Reads ahead to the next record that holds a delivery (counting every record read).
    fn read_ahead(&mut self, records: &mut u64) -> Result<(), CheckError> {
        self.ahead = None;
        while let Some(rec) = self.reader.next_record()? {
            *records += 1;
            let start = match rec {
                Record::Delivered { at_ns, .. } | Record::Unexpected { at_ns } => at_ns,
                Record::DeliveredRun(run) => run.t1,
                _ => continue,
            };
            self.floor = self.floor.max(start);
            self.ahead = Some((self.floor, rec));
            return Ok(());
        }
        Ok(())
    }

    /// Opens every record that starts before the earliest open message (one that starts at its
    /// time comes after it anyway, being later in the file: so a batch stamped with one time
    /// is opened one record at a time); the time of the earliest message left, if any.
    fn head(&mut self, records: &mut u64) -> Result<Option<u64>, CheckError> {
        while let Some((start, rec)) = self.ahead {
            if self.live.peek().is_some_and(|c| c.0.time <= start) {
                break;
            }
            let item = match rec {
                Record::DeliveredRun(run) => Item::Run {
                    run,
                    position: 0,
                    floor: start,
                },
                other => Item::One(other),
            };
            self.live.push(Reverse(Cursor {
                time: start,
                record: self.read,
                item,
            }));
            self.read += 1;
            self.read_ahead(records)?;
        }
        Ok(self.live.peek().map(|c| c.0.time))
    }

    /// Takes the earliest message (after [`Source::head`] said there is one). A run's cursor
    /// moves forward in place (one sift instead of a pop and a push).
    fn take(&mut self) -> Option<Event> {
        let consumer = self.consumer;
        let mut top = self.live.peek_mut()?;
        let c = top.0;
        let Item::Run {
            run,
            position,
            floor,
        } = c.item
        else {
            PeekMut::pop(top);
            return Some(single(consumer, c, self.v1));
        };
        let next = position + 1;
        if next < u64::from(run.count) {
            top.0.time = run.time_of(next).max(floor);
            top.0.item = Item::Run {
                run,
                position: next,
                floor,
            };
        } else {
            PeekMut::pop(top);
        }
        // No send time in a run: the delivery time stands in its place. The stamped time, not
        // the raised one, is what the series count.
        let at_ns = run.time_of(position);
        Some(Event::Delivery {
            d: Delivery {
                consumer,
                producer: run.producer,
                seq: run.seq_at(position, self.stride),
                key: run.key,
                sent_ns: at_ns,
                at_ns,
            },
            latency: false,
        })
    }
}

/// The event of a single record (a delivery or a foreign payload).
fn single(consumer: ConsumerId, c: Cursor, v1: bool) -> Event {
    match c.item {
        Item::One(Record::Delivered {
            producer,
            seq,
            key,
            sent_ns,
            at_ns,
        }) => Event::Delivery {
            d: Delivery {
                consumer,
                producer,
                seq,
                key,
                sent_ns,
                at_ns,
            },
            latency: v1,
        },
        _ => Event::Foreign {
            consumer,
            at_ns: c.time,
        },
    }
}

/// Every consumer history of a variant, merged by delivery time.
pub(crate) struct Merge {
    sources: Vec<Source>,
    /// Each source's next time, ranked (time, consumer, source).
    heads: BinaryHeap<Reverse<(u64, u16, usize)>>,
    /// Records read from the consumer histories.
    pub records: u64,
}

impl Merge {
    /// Starts the merge over opened consumer histories.
    pub fn new(readers: Vec<HistoryReader>) -> Result<Merge, CheckError> {
        let mut m = Merge {
            sources: Vec::with_capacity(readers.len()),
            heads: BinaryHeap::with_capacity(readers.len()),
            records: 0,
        };
        for reader in readers {
            let mut s = Source {
                consumer: ConsumerId(reader.header.worker),
                v1: reader.version == 1,
                stride: u64::from(reader.keys.max(1)),
                reader,
                ahead: None,
                read: 0,
                floor: 0,
                live: BinaryHeap::new(),
            };
            s.read_ahead(&mut m.records)?;
            m.sources.push(s);
            m.push_head(m.sources.len() - 1)?;
        }
        Ok(m)
    }

    fn push_head(&mut self, i: usize) -> Result<(), CheckError> {
        let s = &mut self.sources[i];
        if let Some(t) = s.head(&mut self.records)? {
            self.heads.push(Reverse((t, s.consumer.0, i)));
        }
        Ok(())
    }

    /// The next event in delivery-time order, or None when every history is read.
    pub fn next_event(&mut self) -> Result<Option<Event>, CheckError> {
        let Some(mut top) = self.heads.peek_mut() else {
            return Ok(None);
        };
        let i = top.0 .2;
        let s = &mut self.sources[i];
        let e = s.take();
        match s.head(&mut self.records)? {
            Some(t) => top.0 .0 = t,
            None => {
                PeekMut::pop(top);
            }
        }
        Ok(e)
    }
}
