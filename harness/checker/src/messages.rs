//! What the checker knows of each message: a few bits per (producer, seq), set while the producer
//! histories are read and then by first deliveries. The checks read these bits; none keeps a
//! struct per message.

use mq_core::bits::Bits;
use mq_core::history::FailReason;
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
        } else if p.failed.get(d.seq.0) {
            Outcome::Failed
        } else {
            Outcome::Unknown
        })
    }
}
