//! The send-side accounting: sent, acked, failed, not sent, unknown, and what became of each
//! (lost, unacked-lost, recovered, failed yet delivered), with the first few of each anomaly.
//!
//! The counts come from the bits alone. Recovered and failed-yet-delivered messages are
//! sampled as their first delivery is read; lost and unacked-lost ones are known only once
//! every delivery is, so their samples take a second read of the producer histories, made only
//! when there are some and stopped as soon as the samples are settled.

use std::path::PathBuf;

use mq_core::history::{key_of, Record, Role, Run};
use mq_core::ids::{ProducerId, Seq};

use crate::input::{open, CheckError};
use crate::messages::{Delivery, Messages, Outcome};
use crate::report::SAMPLE_SIZE;
use crate::sample::{Clock, FirstN, Found};

/// Samples rank messages by (intended send time, producer, seq).
type BySend = (u64, ProducerId, Seq);

/// What every send came to.
#[derive(Debug, Default)]
pub(crate) struct Accounting {
    pub sent: u64,
    pub acked: u64,
    pub failed: u64,
    pub not_sent: u64,
    pub unknown: u64,
    pub delivered: u64,
    /// Acked, never delivered.
    pub lost: Found,
    /// Unknown, never delivered.
    pub unacked_lost: Found,
    /// Unknown, yet delivered.
    pub recovered: Found,
    /// Refused or never sent, yet delivered.
    pub failed_delivered: Found,
    /// Of a transaction that was aborted or never committed (transactional producers).
    pub aborted: u64,
    /// Of an aborted transaction, yet delivered.
    pub aborted_visible: Found,
}

/// The check's state during the pass: the samples that deliveries reveal.
pub(crate) struct Lost {
    clock: Clock,
    recovered: FirstN<BySend>,
    failed_delivered: FirstN<BySend>,
    aborted_visible: FirstN<BySend>,
}

impl Lost {
    pub fn new(clock: Clock) -> Lost {
        Lost {
            clock,
            recovered: FirstN::new(),
            failed_delivered: FirstN::new(),
            aborted_visible: FirstN::new(),
        }
    }

    /// The first delivery of a message whose send was never acked.
    pub fn unacked_delivered(&mut self, outcome: Outcome, d: &Delivery) {
        let first = match outcome {
            Outcome::Acked => return,
            Outcome::Failed => &mut self.failed_delivered,
            Outcome::Unknown => &mut self.recovered,
            Outcome::Aborted => &mut self.aborted_visible,
        };
        if let Some(s) = first.entry((d.sent_ns, d.producer, d.seq)) {
            *s = self.clock.delivery(d);
        }
    }

    /// The counts from the final bits, and every sample; `producer_files` are read again only
    /// if some message is lost or unacked-lost (`sorted[i]`: whether the intended send times
    /// of file i never go back). Without consumers (`read_back` false) none is.
    pub fn finish(
        self,
        msgs: &Messages,
        producer_files: &[PathBuf],
        sorted: &[bool],
        read_back: bool,
    ) -> Result<Accounting, CheckError> {
        let mut a = count(msgs);
        if !read_back {
            (a.lost.count, a.unacked_lost.count) = (0, 0);
        }
        a.recovered.sample = self.recovered.into_sample();
        a.failed_delivered.sample = self.failed_delivered.into_sample();
        a.aborted_visible.sample = self.aborted_visible.into_sample();
        if a.lost.count + a.unacked_lost.count > 0 {
            let mut u = Undelivered {
                msgs,
                clock: self.clock,
                lost: FirstN::new(),
                lost_count: a.lost.count,
                unacked_lost: FirstN::new(),
                unacked_lost_count: a.unacked_lost.count,
            };
            u.read(producer_files, sorted)?;
            a.lost.sample = u.lost.into_sample();
            a.unacked_lost.sample = u.unacked_lost.into_sample();
        }
        Ok(a)
    }
}

/// Every count, 64 messages at a time. A message of an aborted transaction is `aborted`, not
/// failed nor unknown: `sent = acked + failed + not_sent + unknown + aborted`.
pub(crate) fn count(msgs: &Messages) -> Accounting {
    let mut a = Accounting::default();
    let n = |bits: u64| u64::from(bits.count_ones());
    for p in msgs.producers() {
        for w in 0..p.sent.words() {
            let sent = p.sent.word(w);
            let delivered = p.delivered.word(w);
            let acked = p.acked.word(w) & sent;
            let aborted = p.aborted_word(w);
            let failed = p.failed.word(w) & sent & !acked & !aborted;
            let not_sent = p.not_sent.word(w) & failed;
            let unknown = sent & !acked & !failed & !aborted;
            a.sent += n(sent);
            a.acked += n(acked);
            a.failed += n(failed & !not_sent);
            a.not_sent += n(not_sent);
            a.unknown += n(unknown);
            a.delivered += n(delivered & sent);
            a.lost.count += n(acked & !delivered);
            a.unacked_lost.count += n(unknown & !delivered);
            a.recovered.count += n(unknown & delivered);
            a.failed_delivered.count += n(failed & delivered);
            a.aborted += n(aborted);
            a.aborted_visible.count += n(aborted & delivered);
        }
    }
    a
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Lost,
    UnackedLost,
}

/// Whether a message is lost or unacked-lost, once every bit is final.
fn undelivered(msgs: &Messages, producer: ProducerId, seq: Seq) -> Option<Fate> {
    let p = msgs.get(producer)?;
    if !p.sent.get(seq.0) || p.delivered.get(seq.0) {
        None
    } else if p.acked.get(seq.0) {
        Some(Fate::Lost)
    } else if p.failed.get(seq.0) || p.is_aborted(seq) {
        None
    } else {
        Some(Fate::UnackedLost)
    }
}

/// The first lost and unacked-lost messages by intended send time, from a second read of the
/// producer histories.
///
/// A message's send and ack records carry the same intended time, so each lands on the same
/// entry and fills in what it knows (the key from the send, the ack time from the ack). The read
/// stops as soon as no later record can change the samples: when every offender is in them
/// (count ≤ [`SAMPLE_SIZE`]), or, within a history whose intended send times never go back (as
/// the producer worker writes them; the first pass checks), when both samples are full of
/// messages sent before the current send; and only once every lost message sampled has its ack.
struct Undelivered<'a> {
    msgs: &'a Messages,
    clock: Clock,
    lost: FirstN<BySend>,
    lost_count: u64,
    unacked_lost: FirstN<BySend>,
    unacked_lost_count: u64,
}

impl Undelivered<'_> {
    /// `sorted[i]`: whether the intended send times of `files[i]` never go back.
    fn read(&mut self, files: &[PathBuf], sorted: &[bool]) -> Result<(), CheckError> {
        for (i, path) in files.iter().enumerate() {
            if self.settled(None) {
                break;
            }
            let sorted = sorted.get(i).copied().unwrap_or(false);
            let mut r = open(path, Role::Producer)?;
            let keys = r.keys;
            let mut sends = SentRuns::default();
            while let Some(rec) = r.next_record()? {
                let intended = match rec {
                    Record::Sent { intended_ns, .. } => Some(intended_ns),
                    Record::SentRun(run) => Some(run.t1),
                    _ => None,
                };
                if sorted && intended.is_some_and(|t| self.settled(Some(t))) {
                    break;
                }
                for rec in sends.expand(rec, keys) {
                    self.offer(rec);
                }
            }
        }
        Ok(())
    }

    /// Whether no later record can change the samples, given that none is sent before
    /// `from_ns` (when known).
    fn settled(&self, from_ns: Option<u64>) -> bool {
        let done = |first: &FirstN<BySend>, count: u64| {
            first.len() as u64 == count
                || (first.len() == SAMPLE_SIZE
                    && from_ns.is_some_and(|t| first.last_key().is_some_and(|k| k.0 < t)))
        };
        done(&self.lost, self.lost_count)
            && done(&self.unacked_lost, self.unacked_lost_count)
            && self.lost.samples().all(|s| s.acked_s.is_some())
    }

    fn offer(&mut self, rec: Record) {
        let (producer, seq, intended_ns) = match rec {
            Record::Sent {
                producer,
                seq,
                intended_ns,
                ..
            }
            | Record::Acked {
                producer,
                seq,
                intended_ns,
                ..
            } => (producer, seq, intended_ns),
            _ => return,
        };
        let first = match undelivered(self.msgs, producer, seq) {
            Some(Fate::Lost) => &mut self.lost,
            Some(Fate::UnackedLost) => &mut self.unacked_lost,
            None => return,
        };
        let Some(s) = first.entry((intended_ns, producer, seq)) else {
            return;
        };
        s.producer = Some(producer);
        s.seq = Some(seq);
        s.sent_s = Some(self.clock.secs(intended_ns));
        match rec {
            Record::Sent { key, .. } => s.key = Some(key),
            Record::Acked { at_ns, .. } => {
                s.acked_s.get_or_insert(self.clock.secs(at_ns));
            }
            _ => {}
        }
    }
}

/// The sent runs of the producer history being read again, so the messages of its acked runs
/// find their intended send time (and their sample entry); as many as the history has runs.
#[derive(Default)]
struct SentRuns {
    runs: Vec<Run>,
}

impl SentRuns {
    /// `rec` as per-message records: a run's messages at their spread times.
    fn expand(&mut self, rec: Record, keys: u32) -> Box<dyn Iterator<Item = Record> + '_> {
        let stride = u64::from(keys.max(1));
        match rec {
            Record::SentRun(run) => {
                self.runs.push(run);
                Box::new((0..u64::from(run.count)).map(move |i| {
                    let seq = run.seq_at(i, 1);
                    Record::Sent {
                        producer: run.producer,
                        seq,
                        key: key_of(run.producer, seq, keys),
                        intended_ns: run.time_of(i),
                    }
                }))
            }
            Record::AckedRun(run) => Box::new((0..u64::from(run.count)).filter_map(move |i| {
                let seq = run.seq_at(i, stride);
                Some(Record::Acked {
                    producer: run.producer,
                    seq,
                    at_ns: run.time_of(i),
                    intended_ns: self.intended(run.producer, seq)?,
                })
            })),
            other => Box::new(std::iter::once(other)),
        }
    }

    /// The spread intended time of `seq`, from the sent run that holds it.
    fn intended(&self, producer: ProducerId, seq: Seq) -> Option<u64> {
        let i = self
            .runs
            .partition_point(|r| r.first <= seq)
            .checked_sub(1)?;
        let r = &self.runs[i];
        let pos = seq.0 - r.first.0;
        (r.producer == producer && pos < u64::from(r.count)).then(|| r.time_of(pos))
    }
}
