//! Unexpected deliveries: messages this run never sent (an unknown producer or seq, a key out of
//! range) and payloads that are not this run's messages at all. Must be 0.

use mq_core::ids::ConsumerId;

use crate::messages::Delivery;
use crate::report::Sample;
use crate::sample::{ByDelivery, Clock, Found};

/// The check's state during the pass.
pub(crate) struct Unexpected(ByDelivery);

impl Unexpected {
    pub fn new(clock: Clock) -> Unexpected {
        Unexpected(ByDelivery::new(clock))
    }

    /// A delivery whose envelope names a message this run never sent.
    pub fn never_sent(&mut self, d: &Delivery) {
        self.0.add(d.at_ns, |clock| clock.delivery(d));
    }

    /// A payload that is not one of this run's messages: only who took it and when is known.
    pub fn foreign(&mut self, consumer: ConsumerId, at_ns: u64) {
        self.0.add(at_ns, |clock| Sample {
            delivered_s: Some(clock.secs(at_ns)),
            consumer: Some(consumer),
            ..Sample::default()
        });
    }

    pub fn finish(self) -> Found {
        self.0.finish()
    }
}
