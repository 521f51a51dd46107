//! What the checker knows of each message: a few bits per (producer, seq), set while the producer
//! histories are read and then by first deliveries. The checks read these bits; none keeps a
//! struct per message.

use mq_core::bits::Bits;
use mq_core::history::{FailReason, Run};
use mq_core::ids::{ConsumerId, Key, ProducerId, Seq};

/// The bits of one producer's messages.
#[derive(Debug, Default)]
pub(crate) struct Producer {
    pub sent: Bits,
    pub acked: Bits,
    /// Failed, refused by the broker or never sent.
    pub failed: Bits,
    /// Of the failed: never reached the broker.
    pub not_sent: Bits,
    pub delivered: Bits,
    /// A transactional producer's (its history's header says so): its sends count only once a
    /// commit of them starts.
    pub transactional: bool,
    /// Transactional: covered by a commit that started.
    pub commit_started: Bits,
    /// Transactional: covered by an abort.
    pub aborted: Bits,
}

impl Producer {
    /// Of the 64 messages of word `w`: those of aborted transactions (sent, not acked, and
    /// either never in a started commit or in an explicit abort). Always 0 for a producer that
    /// is not transactional.
    #[inline]
    pub fn aborted_word(&self, w: usize) -> u64 {
        if !self.transactional {
            return 0;
        }
        let open = !self.commit_started.word(w) | self.aborted.word(w);
        self.sent.word(w) & !self.acked.word(w) & open
    }

    /// Whether `seq` belongs to an aborted transaction ([`Producer::aborted_word`]).
    #[inline]
    pub fn is_aborted(&self, seq: Seq) -> bool {
        self.aborted_word((seq.0 / 64) as usize) & (1 << (seq.0 % 64)) != 0
    }
}

/// One delivery record, with the consumer whose history holds it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Delivery {
    pub consumer: ConsumerId,
    pub producer: ProducerId,
    pub seq: Seq,
    pub key: Key,
    pub sent_ns: u64,
    pub at_ns: u64,
}

/// What a delivery is, given every producer history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Not a message this run sent (or a key out of range).
    Unexpected,
    /// A delivery beyond the first of the same (producer, seq).
    Duplicate,
    /// The first delivery of a message, and what became of its send.
    First(Outcome),
}

/// How a send ended, as the producer recorded it; an ack outweighs a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Acked,
    Failed,
    /// No answer before the producer ended.
    Unknown,
    /// Its transaction was aborted (or never committed): it should never be delivered.
    Aborted,
}

/// The bits of every producer of a variant.
#[derive(Debug)]
pub(crate) struct Messages {
    producers: Vec<Producer>,
    keys: usize,
}

impl Messages {
    pub fn new(producers: u32, keys: u32) -> Messages {
        Messages {
            producers: (0..producers).map(|_| Producer::default()).collect(),
            keys: keys.max(1) as usize,
        }
    }

    pub fn producers(&self) -> &[Producer] {
        &self.producers
    }

    /// Keys per producer (at least 1).
    pub fn keys(&self) -> usize {
        self.keys
    }

    pub fn get(&self, producer: ProducerId) -> Option<&Producer> {
        self.producers.get(producer.0 as usize)
    }

    /// Records a send; whether it is the first of a known producer's (producer, seq).
    #[inline]
    pub fn sent(&mut self, producer: ProducerId, seq: Seq) -> bool {
        self.producers
            .get_mut(producer.0 as usize)
            .is_some_and(|p| !p.sent.set(seq.0))
    }

    /// Records an ack; whether it is the first.
    #[inline]
    pub fn acked(&mut self, producer: ProducerId, seq: Seq) -> bool {
        self.producers
            .get_mut(producer.0 as usize)
            .is_some_and(|p| !p.acked.set(seq.0))
    }

    /// Records a failure; whether it is the first. The first failure's reason is the one that
    /// counts.
    #[inline]
    pub fn failed(&mut self, producer: ProducerId, seq: Seq, reason: FailReason) -> bool {
        let Some(p) = self.producers.get_mut(producer.0 as usize) else {
            return false;
        };
        if p.failed.set(seq.0) {
            return false;
        }
        if reason == FailReason::NotSent {
            p.not_sent.set(seq.0);
        }
        true
    }

    /// Marks `producer`'s history as transactional.
    pub fn set_transactional(&mut self, producer: ProducerId) {
        if let Some(p) = self.producers.get_mut(producer.0 as usize) {
            p.transactional = true;
        }
    }

    /// Records a transaction's commit start (`aborted` false) or its abort, over the seqs of
    /// `first .. first + count` sent before it (a transaction's messages are sent before it
    /// ends; the bits never grow past what was sent, whatever `count` says).
    pub fn transaction(&mut self, producer: ProducerId, first: Seq, count: u64, aborted: bool) {
        let Some(p) = self.producers.get_mut(producer.0 as usize) else {
            return;
        };
        let mut end = first
            .0
            .saturating_add(count)
            .min(p.sent.words() as u64 * 64);
        while end > first.0 && !p.sent.get(end - 1) {
            end -= 1;
        }
        let bits = match aborted {
            false => &mut p.commit_started,
            true => &mut p.aborted,
        };
        for s in first.0..end {
            bits.set(s);
        }
    }

    /// Records the sends (`acked` false) or acks of a run's messages, `stride` apart, at once:
    /// the bits of [`Messages::sent`] or [`Messages::acked`] one by one, without the answers.
    pub fn run_bits(&mut self, run: &Run, stride: u64, acked: bool) {
        let Some(p) = self.producers.get_mut(run.producer.0 as usize) else {
            return;
        };
        let bits = if acked { &mut p.acked } else { &mut p.sent };
        match stride {
            1 => bits.set_range(run.first.0, u64::from(run.count)),
            _ => (0..u64::from(run.count)).for_each(|i| _ = bits.set(run.seq_at(i, stride).0)),
        }
    }

    /// Records a delivered run's messages at once: the delivered bits [`Messages::deliver`]
    /// would set one by one; call once every producer history has been read.
    pub fn delivered_run(&mut self, run: &Run, stride: u64) {
        let keys = self.keys;
        let Some(p) = self.producers.get_mut(run.producer.0 as usize) else {
            return;
        };
        if run.key.0 as usize >= keys {
            return;
        }
        match stride {
            1 => p
                .delivered
                .set_range_where(run.first.0, u64::from(run.count), &p.sent),
            _ => {
                // Only seqs below the sent bits' end can be sent.
                let end = p.sent.words() as u64 * 64;
                let within = end.saturating_sub(run.first.0).div_ceil(stride);
                for i in 0..u64::from(run.count).min(within) {
                    let seq = run.seq_at(i, stride).0;
                    if p.sent.get(seq) {
                        p.delivered.set(seq);
                    }
                }
            }
        }
    }

    /// Records a delivery; call once every producer history has been read.
    #[inline]
    pub fn deliver(&mut self, d: &Delivery) -> Class {
        let keys = self.keys;
        let Some(p) = self.producers.get_mut(d.producer.0 as usize) else {
            return Class::Unexpected;
        };
        if d.key.0 as usize >= keys || !p.sent.get(d.seq.0) {
            return Class::Unexpected;
        }
        if p.delivered.set(d.seq.0) {
            return Class::Duplicate;
        }
        Class::First(if p.acked.get(d.seq.0) {
            Outcome::Acked
        } else if p.is_aborted(d.seq) {
            Outcome::Aborted
        } else if p.failed.get(d.seq.0) {
            Outcome::Failed
        } else {
            Outcome::Unknown
        })
    }
}
