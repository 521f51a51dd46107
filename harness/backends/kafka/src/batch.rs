//! Batch fetching for a consumer assigned its partitions by hand: each partition's fetch queue is
//! forwarded to a queue of our own, read with `rd_kafka_consume_batch_queue` — up to a batch of
//! messages for one lock and one timeout, where the rdkafka crate's `poll` takes one message per
//! call with its own clock reads and lock round trip (measured: half the consumer worker's CPU
//! time per message went there at 100 B).
//!
//! Only fetched messages (and the partitions' consumer errors) reach that queue; everything else
//! (commit results, errors, statistics) stays on the consumer's own queue, which the caller keeps
//! serving with `poll(0)`: the batch call would abort on an event it cannot turn into a message.
//! A group member does not use this (its partitions move at each rebalance).

use std::ffi::CString;
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::RDKafkaErrorCode;

/// One fetched message, as the batch call hands it over.
pub struct Fetched<'a> {
    pub partition: i32,
    pub offset: i64,
    pub payload: &'a [u8],
}

/// The queue our partitions' fetches go to. Dropped before the consumer (field order).
pub struct BatchQueue {
    queue: *mut rd::rd_kafka_queue_t,
    slots: Vec<*mut rd::rd_kafka_message_t>,
}

// SAFETY: a queue handle may be used from any thread (librdkafka locks the queue itself); the
// slots are only pointers filled and emptied within one `take`.
unsafe impl Send for BatchQueue {}

impl BatchQueue {
    /// Forwards `partitions` of `topic` (already assigned) to a new queue; None when librdkafka
    /// does not know one of them (the caller then reads the consumer queue as before).
    pub fn forward<C: ConsumerContext>(
        consumer: &BaseConsumer<C>,
        topic: &str,
        partitions: &[i32],
        batch: usize,
    ) -> Option<BatchQueue> {
        let topic = CString::new(topic).ok()?;
        let rk = consumer.client().native_ptr();
        // SAFETY: `rk` is the live consumer's handle; every queue handle taken is destroyed.
        unsafe {
            let queue = rd::rd_kafka_queue_new(rk);
            if queue.is_null() {
                return None;
            }
            let this = BatchQueue {
                queue,
                slots: vec![std::ptr::null_mut(); batch.max(1)],
            };
            for &p in partitions {
                let pq = rd::rd_kafka_queue_get_partition(rk, topic.as_ptr(), p);
                if pq.is_null() {
                    return None;
                }
                rd::rd_kafka_queue_forward(pq, queue);
                rd::rd_kafka_queue_destroy(pq);
            }
            Some(this)
        }
    }

    /// Waits up to `wait` for messages and hands each over, oldest first; the count handed over,
    /// and the first consumer error met (after the messages before it).
    pub fn take(
        &mut self,
        wait: Duration,
        most: usize,
        each: &mut dyn FnMut(Fetched<'_>),
    ) -> (usize, Option<RDKafkaErrorCode>) {
        let most = most.clamp(1, self.slots.len());
        let ms = wait.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: the slots hold `most` writable pointers; librdkafka fills the first `n`.
        let n = unsafe {
            rd::rd_kafka_consume_batch_queue(self.queue, ms, self.slots.as_mut_ptr(), most)
        };
        let n = usize::try_from(n).unwrap_or(0).min(most);
        let (mut handed, mut error) = (0, None);
        for &m in &self.slots[..n] {
            // SAFETY: each of the first `n` slots is a message librdkafka gave us; it is read,
            // then destroyed once.
            unsafe {
                let msg = &*m;
                if msg.err == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                    let payload = if msg.payload.is_null() {
                        &[][..]
                    } else {
                        std::slice::from_raw_parts(msg.payload as *const u8, msg.len)
                    };
                    each(Fetched {
                        partition: msg.partition,
                        offset: msg.offset,
                        payload,
                    });
                    handed += 1;
                } else if msg.err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__PARTITION_EOF {
                    error.get_or_insert(RDKafkaErrorCode::from(msg.err));
                }
                rd::rd_kafka_message_destroy(m);
            }
        }
        (handed, error)
    }
}

impl Drop for BatchQueue {
    fn drop(&mut self) {
        // SAFETY: our own handle, destroyed once, while the consumer is still alive.
        unsafe { rd::rd_kafka_queue_destroy(self.queue) };
    }
}
