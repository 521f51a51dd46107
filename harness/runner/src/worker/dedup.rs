//! The idempotent consumer (`consumer_dedup = "store"`): processed deliveries wait here, at
//! most [`MAX_BATCH`], until the worker marks them in the store in one transaction. Then the
//! new ones are recorded in the history, the repeats skipped, and only after that are their
//! tokens acknowledged to the broker: a kill before the commit redelivers them as new, a kill
//! after it redelivers them as repeats (skipped), and a kill between the commit and the history
//! write leaves them in the store alone, where the checker credits them.

use std::path::Path;

use mq_core::clock::now_ns;
use mq_core::delivery::DedupSync;
use mq_core::envelope::Envelope;
use mq_core::ids::ConsumerId;
use mq_core::Token;
use mq_dedup::{Processed, Store, StoreError, MAX_BATCH};

/// A processed delivery and what the store said of it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Verdict {
    /// `None`: not one of this run's messages (never in the store; recorded as unexpected).
    pub envelope: Option<Envelope>,
    pub token: Option<Token>,
    /// Whether it is processed for the first time (a repeat is skipped).
    pub new: bool,
}

pub(super) struct Dedup {
    store: Store,
    waiting: Vec<(Option<Envelope>, Option<Token>)>,
    batch: Vec<Processed>,
    new: Vec<bool>,
    verdicts: Vec<Verdict>,
}

impl Dedup {
    pub fn open(path: &Path, sync: DedupSync, consumer: u16) -> Result<Dedup, StoreError> {
        Ok(Dedup {
            store: Store::open(path, sync, ConsumerId(consumer))?,
            waiting: Vec::with_capacity(MAX_BATCH),
            batch: Vec::with_capacity(MAX_BATCH),
            new: Vec::with_capacity(MAX_BATCH),
            verdicts: Vec::with_capacity(MAX_BATCH),
        })
    }

    /// A processed delivery waits for the next [`Dedup::mark`].
    pub fn push(&mut self, envelope: Option<Envelope>, token: Option<Token>) {
        self.waiting.push((envelope, token));
    }

    /// Whether the batch is full: mark it before taking more.
    pub fn full(&self) -> bool {
        self.waiting.len() >= MAX_BATCH
    }

    /// Marks what waits in the store in one transaction; the verdicts, in processing order.
    /// On error nothing was marked (and nothing waits any more: the worker ends, and the
    /// broker redelivers what it had not acknowledged).
    pub fn mark(&mut self) -> Result<&[Verdict], StoreError> {
        self.verdicts.clear();
        if self.waiting.is_empty() {
            return Ok(&self.verdicts);
        }
        self.batch.clear();
        self.batch.extend(
            self.waiting
                .iter()
                .filter_map(|(e, _)| e.as_ref())
                .map(|e| Processed {
                    producer: e.producer,
                    seq: e.seq,
                    key: e.key,
                    sent_ns: e.send_ns,
                }),
        );
        let marked = self.store.mark(&self.batch, now_ns(), &mut self.new);
        if let Err(e) = marked {
            self.waiting.clear();
            return Err(e);
        }
        let mut new = self.new.iter();
        for &(envelope, token) in &self.waiting {
            let new = envelope.is_none() || new.next().copied().unwrap_or(false);
            self.verdicts.push(Verdict {
                envelope,
                token,
                new,
            });
        }
        self.waiting.clear();
        Ok(&self.verdicts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mq_core::{Key, Partition, ProducerId, Seq};

    fn envelope(seq: u64) -> Option<Envelope> {
        Some(Envelope {
            run_id: 1,
            producer: ProducerId(0),
            key: Key(0),
            seq: Seq(seq),
            send_ns: seq,
        })
    }

    fn token(offset: u64) -> Option<Token> {
        Some(Token {
            partition: Partition(0),
            offset,
        })
    }

    #[test]
    fn verdicts_keep_processing_order_with_foreign_payloads_between() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dedup.sqlite");
        mq_dedup::create(&path).unwrap();
        let mut d = Dedup::open(&path, DedupSync::Normal, 0).unwrap();
        d.push(envelope(1), token(10));
        assert_eq!(d.mark().unwrap().len(), 1);
        // a foreign payload, a repeat of 1, a new 2, another foreign one, 2 again
        for (e, t) in [
            (None, token(11)),
            (envelope(1), token(12)),
            (envelope(2), token(13)),
            (None, None),
            (envelope(2), token(14)),
        ] {
            d.push(e, t);
        }
        let v: Vec<(Option<u64>, Option<u64>, bool)> = (d.mark().unwrap().iter())
            .map(|v| {
                (
                    v.envelope.map(|e| e.seq.0),
                    v.token.map(|t| t.offset),
                    v.new,
                )
            })
            .collect();
        assert_eq!(
            v,
            [
                (None, Some(11), true),
                (Some(1), Some(12), false),
                (Some(2), Some(13), true),
                (None, None, true),
                (Some(2), Some(14), false),
            ]
        );
        assert!(d.mark().unwrap().is_empty(), "nothing waits any more");
    }
}
