//! Produce through librdkafka's topic handle: `rd_kafka_produce(rkt, …)`, as librdkafka's own
//! `rdkafka_performance` does. The rdkafka crate's `BaseProducer::send` makes a `CString` of the
//! topic name for every record (an allocation and a free) and `rd_kafka_producev` looks the name up
//! under the client's lock each time: a tenth of the producer worker's time at 100 B.
//!
//! The record's delivery opaque is the seq cast to a pointer, exactly as the crate's `usize`
//! opaque is, so its delivery reports reach [`super::producer`]'s context unchanged.

use std::ffi::CString;

use mq_core::BackendError;
use rdkafka::bindings as rd;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{BaseProducer, Producer as _, ProducerContext};

use crate::NAME;

/// A topic handle of one producer instance; drop it before the producer (field order).
pub struct TopicHandle(*mut rd::rd_kafka_topic_t);

// SAFETY: librdkafka's topic handles are thread-safe (refcounted, locked inside).
unsafe impl Send for TopicHandle {}

impl TopicHandle {
    pub fn new<C: ProducerContext>(
        producer: &BaseProducer<C>,
        topic: &str,
    ) -> Result<TopicHandle, BackendError> {
        let name = CString::new(topic)
            .map_err(|_| BackendError::other(NAME, format!("topic name {topic:?} has a NUL")))?;
        // SAFETY: a live client handle; a NULL conf takes the topic defaults.
        let rkt = unsafe {
            rd::rd_kafka_topic_new(
                producer.client().native_ptr(),
                name.as_ptr(),
                std::ptr::null_mut(),
            )
        };
        if rkt.is_null() {
            // SAFETY: reads this thread's last librdkafka error.
            let code = RDKafkaErrorCode::from(unsafe { rd::rd_kafka_last_error() });
            return Err(BackendError::other(
                NAME,
                format!("topic handle for {topic}: {code}"),
            ));
        }
        Ok(TopicHandle(rkt))
    }

    /// Queues a copy of `payload` for `partition` with `seq` as its delivery opaque; the
    /// refusal's code when librdkafka did not take it (e.g. `QueueFull`).
    pub fn produce(
        &self,
        partition: i32,
        payload: &[u8],
        seq: u64,
    ) -> Result<(), RDKafkaErrorCode> {
        // SAFETY: F_COPY: librdkafka copies the payload before returning; the opaque is a plain
        // integer it hands back untouched.
        let r = unsafe {
            rd::rd_kafka_produce(
                self.0,
                partition,
                rd::RD_KAFKA_MSG_F_COPY,
                payload.as_ptr() as *mut std::ffi::c_void,
                payload.len(),
                std::ptr::null(),
                0,
                seq as usize as *mut std::ffi::c_void,
            )
        };
        match r {
            0 => Ok(()),
            // SAFETY: reads this thread's last librdkafka error, set by the call above.
            _ => Err(RDKafkaErrorCode::from(unsafe { rd::rd_kafka_last_error() })),
        }
    }
}

impl Drop for TopicHandle {
    fn drop(&mut self) {
        // SAFETY: our own reference, released once, while the producer is alive.
        unsafe { rd::rd_kafka_topic_destroy(self.0) };
    }
}
