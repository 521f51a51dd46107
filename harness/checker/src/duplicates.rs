//! Duplicates: deliveries beyond the first of the same (producer, seq), across every consumer,
//! with the first few by delivery time.

use crate::messages::Delivery;
use crate::sample::{ByDelivery, Clock, Found};

/// The check's state during the pass.
pub(crate) struct Duplicates(ByDelivery);

impl Duplicates {
    pub fn new(clock: Clock) -> Duplicates {
        Duplicates(ByDelivery::new(clock))
    }

    /// A delivery of a message already delivered.
    #[inline]
    pub fn duplicate(&mut self, d: &Delivery) {
        self.0.add(d.at_ns, |clock| clock.delivery(d));
    }

    pub fn finish(self) -> Found {
        self.0.finish()
    }
}
