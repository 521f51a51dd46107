//! The consumer's acknowledgements after processing: a poll's deliveries processed at once are
//! acked with one `basic.ack(multiple)` per queue ([`ack_handed`]); deliveries processed later
//! (processing threads, the dedup store) once done, in one `multiple` ack up to the highest done
//! with every earlier one, the rest each on its own ([`acks_for`]).

use lapin::options::BasicAckOptions;
use mq_core::parallel::InFlight;
use mq_core::BackendError;

use crate::conn::bounded;
use crate::consumer::{Sub, OP_TIMEOUT};

/// Acks, per queue, everything handed over so far.
pub(crate) async fn ack_handed(subs: &mut [Sub], shown: &str) -> Result<(), BackendError> {
    for s in subs.iter_mut() {
        if let Some(tag) = s.unacked.take() {
            bounded(
                OP_TIMEOUT,
                || format!("basic.ack to {shown}"),
                s.channel.basic_ack(tag, BasicAckOptions { multiple: true }),
            )
            .await?;
        }
    }
    Ok(())
}

/// Acks the processed deliveries `tags` of `s` (see [`acks_for`]).
pub(crate) async fn ack_processed(
    s: &mut Sub,
    tags: &[u64],
    shown: &str,
) -> Result<(), BackendError> {
    for (tag, multiple) in acks_for(&mut s.in_flight, tags) {
        bounded(
            OP_TIMEOUT,
            || format!("basic.ack to {shown}"),
            s.channel.basic_ack(tag, BasicAckOptions { multiple }),
        )
        .await?;
    }
    Ok(())
}

/// The acks (tag, multiple) for the processed deliveries `tags` of one channel, whose
/// deliveries handed over for later are in `in_flight` (as partition 0): one `multiple` ack up
/// to the highest of them that every delivery before it on the channel has finished before
/// (every tag up to it is then done, and it names a tag never acked, as the broker wants), the
/// others on their own.
fn acks_for(in_flight: &mut InFlight, tags: &[u64]) -> Vec<(u64, bool)> {
    if tags.is_empty() {
        return Vec::new();
    }
    for &tag in tags {
        in_flight.finished(0, tag);
    }
    // One past the highest tag whose predecessors have all finished.
    let done_below = in_flight.committable_of(0).unwrap_or(0);
    let mut acks: Vec<(u64, bool)> = (tags.iter())
        .filter(|&&t| t >= done_below)
        .map(|&t| (t, false))
        .collect();
    if let Some(&top) = tags.iter().filter(|&&t| t < done_below).max() {
        acks.push((top, true));
    }
    acks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_done_in_order_share_one_multiple_ack_and_the_rest_go_alone() {
        let mut f = InFlight::default();
        for tag in 1..=6 {
            f.delivered(0, tag);
        }
        // 1, 2 and 3 done in order: one ack of 3 with multiple
        assert_eq!(acks_for(&mut f, &[1, 3, 2]), [(3, true)]);
        // 5 and 6 before 4: each on its own (4 still being processed)
        assert_eq!(acks_for(&mut f, &[6, 5]), [(6, false), (5, false)]);
        // 4 done: everything up to 6 is; 4 is the only tag never acked to name
        assert_eq!(acks_for(&mut f, &[4]), [(4, true)]);
        assert_eq!(acks_for(&mut f, &[]), []);
        f.delivered(0, 7);
        f.delivered(0, 8);
        assert_eq!(acks_for(&mut f, &[8]), [(8, false)], "7 is not done");
    }
}
