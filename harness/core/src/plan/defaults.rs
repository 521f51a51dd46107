//! The defaults of the workload's fields (serde `default = …`, `skip_serializing_if = …`).

use super::Dur;
use std::time::Duration;
pub fn message_size() -> usize {
    100
}
pub fn yes() -> bool {
    true
}
pub fn is_yes(b: &bool) -> bool {
    *b
}
pub fn one() -> u32 {
    1
}
pub fn is_one(n: &u32) -> bool {
    *n == 1
}
pub fn is_by_key(d: &crate::parallel::Dispatch) -> bool {
    *d == crate::parallel::Dispatch::ByKey
}
pub fn drain_timeout() -> Dur {
    Dur(Duration::from_secs(10))
}
pub fn ack_timeout() -> Dur {
    Dur(Duration::from_secs(30))
}
