//! Batch fetching for a consumer assigned its partitions by hand: each partition's fetch queue is
//! forwarded to a queue of our own, read with `rd_kafka_consume_batch_queue` — what is queued, up
//! to a batch of messages, in one call with one timeout and one clock read (see
//! [`BatchQueue::take`] for the wait), where the rdkafka crate's `poll` takes one message per
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
    /// When the call that took it returned (the run's clock), for a message taken with a batch.
    pub at_ns: Option<u64>,
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

    /// Takes up to `most` messages, waiting up to `wait` for the first when none is there, and
    /// hands each over, oldest first; the count handed over, and the first consumer error met
    /// (after the messages before it).
    ///
    /// `rd_kafka_consume_batch_queue` waits until it has filled the whole batch or its timeout
    /// ran out. Asked for a batch with a wait, it held the first messages back until the rest
    /// came: at 1000 msg/s, batches of 64 measured an end-to-end p50 of 33 ms where publishing
    /// took 3 ms. So the wait is only ever for one message; the rest is what is already there.
    pub fn take(
        &mut self,
        wait: Duration,
        most: usize,
        each: &mut dyn FnMut(Fetched<'_>),
    ) -> (usize, Option<RDKafkaErrorCode>) {
        let most = most.clamp(1, self.slots.len());
        let ms = wait.as_millis().min(i32::MAX as u128) as i32;
        let mut n = self.fill(0, 0, most);
        if n == 0 && ms > 0 {
            n = self.fill(ms, 0, 1);
            if n == 1 {
                n += self.fill(0, 1, most - 1);
            }
        }
        // one clock read for the batch: its messages reached us together
        let at_ns = (n > 0).then(mq_core::clock::now_ns);
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
                        at_ns,
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

    /// One batch call: up to `count` messages into the slots from `from` on, waiting up to
    /// `ms` for all of them; how many it gave.
    fn fill(&mut self, ms: i32, from: usize, count: usize) -> usize {
        let count = count.min(self.slots.len().saturating_sub(from));
        if count == 0 {
            return 0;
        }
        // SAFETY: slots[from..from + count] are writable pointers we own; librdkafka fills the
        // first of them and says how many (or -1).
        let n = unsafe {
            rd::rd_kafka_consume_batch_queue(
                self.queue,
                ms,
                self.slots.as_mut_ptr().add(from),
                count,
            )
        };
        usize::try_from(n).unwrap_or(0).min(count)
    }
}

impl Drop for BatchQueue {
    fn drop(&mut self) {
        // SAFETY: our own handle, destroyed once, while the consumer is still alive.
        unsafe { rd::rd_kafka_queue_destroy(self.queue) };
    }
}
