//! Order: first deliveries of a (producer, key) whose seq is below one the same consumer
//! already took for that (producer, key), with the first few by delivery time and the seq each
//! came after.
//!
//! Memory: one last-seen seq per (producer, key), for the consumer being read.

use mq_core::ids::Seq;

use crate::messages::Delivery;
use crate::report::Sample;
use crate::sample::{ByDelivery, Clock, Found};

const NONE: u64 = u64::MAX;

/// The check's state during the pass.
pub(crate) struct Order {
    keys: usize,
    /// Highest seq delivered so far per (producer, key), for the consumer being read.
    last: Vec<u64>,
    reordered: ByDelivery,
}

impl Order {
    pub fn new(clock: Clock, producers: usize, keys: usize) -> Order {
        Order {
            keys,
            last: vec![NONE; producers * keys],
            reordered: ByDelivery::new(clock),
        }
    }

    /// A new consumer history: each consumer's order is checked on its own.
    pub fn next_consumer(&mut self) {
        self.last.fill(NONE);
    }

    /// A first delivery (of a known producer and key in range: see
    /// [`crate::messages::Messages::deliver`]).
    #[inline]
    pub fn first_delivery(&mut self, d: &Delivery) {
        let slot = &mut self.last[d.producer.0 as usize * self.keys + d.key.0 as usize];
        if *slot == NONE || d.seq.0 >= *slot {
            *slot = d.seq.0;
            return;
        }
        let after = Seq(*slot);
        self.reordered.add(d.at_ns, |clock| Sample {
            after_seq: Some(after),
            ..clock.delivery(d)
        });
    }

    pub fn finish(self) -> Found {
        self.reordered.finish()
    }
}
