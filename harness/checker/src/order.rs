//! Order: first deliveries of a (producer, key) whose seq is below the highest seq first-delivered
//! earlier for that (producer, key) by any consumer, with the first few by delivery time and the
//! seq each came after.
//!
//! "Earlier" is delivery time on the shared clock, ties by consumer: the consumers' histories
//! come merged in that order (`merge`). So competing consumers that share a key are judged as
//! one stream, and with one consumer per partition (each key read by one consumer) the count is
//! each consumer's own, as it was before consumers could compete.
//!
//! Memory: one highest seq per (producer, key).

use mq_core::ids::Seq;

use crate::messages::Delivery;
use crate::report::Sample;
use crate::sample::{ByDelivery, Clock, Found};

const NONE: u64 = u64::MAX;

/// The check's state during the pass.
pub(crate) struct Order {
    keys: usize,
    /// Highest seq first-delivered so far per (producer, key), by any consumer.
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
