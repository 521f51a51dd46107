//! A wait for the producer's next delivery report that wakes as soon as one arrives, as
//! `rd_kafka_poll(rk, 10)` does in librdkafka's own `rdkafka_performance`. librdkafka writes a
//! byte to a pipe whenever an event lands on the empty main queue
//! (`rd_kafka_queue_io_event_enable`); the producer sleeps in `poll(2)` on it, then serves the
//! queue with the rdkafka crate's `poll(0)`. (The crate's own timed poll converts and re-checks
//! its deadline around every wait, and a fixed sleep wakes late or early.)

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::producer::{BaseProducer, Producer as _, ProducerContext};

/// The main queue's wake-up pipe; dropped before the producer (field order).
pub struct Wake {
    queue: *mut rd::rd_kafka_queue_t,
    read: OwnedFd,
    _write: OwnedFd,
}

// SAFETY: a queue handle may be used from any thread (librdkafka locks the queue itself).
unsafe impl Send for Wake {}

impl Wake {
    /// None when the pipe cannot be made (the caller then waits a fixed time instead).
    pub fn new<C: ProducerContext>(producer: &BaseProducer<C>) -> Option<Wake> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills both descriptors on success; each is owned once below.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return None;
        }
        // SAFETY: fresh descriptors from pipe2, owned from here on.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: a live client handle; the queue reference taken is destroyed in Drop. The
        // payload is copied by librdkafka.
        let queue = unsafe {
            let q = rd::rd_kafka_queue_get_main(producer.client().native_ptr());
            if q.is_null() {
                return None;
            }
            rd::rd_kafka_queue_io_event_enable(q, write.as_raw_fd(), b"w".as_ptr().cast(), 1);
            q
        };
        Some(Wake {
            queue,
            read,
            _write: write,
        })
    }

    /// Sleeps until an event may be waiting on the main queue, or `most` has passed.
    pub fn wait(&self, most: Duration) {
        // The pipe is written only when the queue goes from empty to not: an event already
        // there (the crate's poll serves one per call) is served without waiting.
        // SAFETY: our own live queue reference.
        if unsafe { rd::rd_kafka_queue_length(self.queue) } > 0 {
            return;
        }
        let mut pfd = libc::pollfd {
            fd: self.read.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = most.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: one pollfd of our own pipe.
        if unsafe { libc::poll(&mut pfd, 1, ms) } > 0 {
            let mut buf = [0u8; 64];
            // SAFETY: reads into our own buffer from our own non-blocking pipe until it is empty.
            while unsafe { libc::read(pfd.fd, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
        }
    }
}

impl Drop for Wake {
    fn drop(&mut self) {
        // SAFETY: our own queue reference, released once, while the producer is alive; the
        // pipe is no longer written once the io event is disabled (fd -1).
        unsafe {
            rd::rd_kafka_queue_io_event_enable(self.queue, -1, std::ptr::null(), 0);
            rd::rd_kafka_queue_destroy(self.queue);
        }
    }
}
