//! The producer's main queue, served directly: delivery reports straight from librdkafka's
//! event API, and a wait for the next one that wakes as soon as it arrives.
//!
//! **Reports.** The rdkafka crate's `BaseProducer::poll` wraps each delivery report in a
//! `BorrowedMessage` holding a reference-counted handle of its event, and hands it to a context
//! behind a lock: about 6 % of the producer worker's time at 100 B, which librdkafka's own
//! `rdkafka_performance` does not spend. [`MainQueue::serve`] reads each reported message's error
//! and delivery opaque (the seq) in place. It also serves what else librdkafka puts on that
//! queue, as the crate's poll does: log lines, errors and statistics go to the producer's
//! context (`ClientContext::log`, `error`, `stats_raw`).
//!
//! **Waits.** librdkafka writes a byte to a pipe when an event lands on the empty main queue
//! (`rd_kafka_queue_io_event_enable`), as `rd_kafka_poll(rk, 10)` wakes in `rdkafka_performance`.
//! The pipe is armed only for the wait itself ([`MainQueue::wait`]): armed all the time,
//! librdkafka's broker thread would write it for nearly every delivery report of a producer that
//! serves its queue every few sends. (The crate's own timed poll converts and re-checks its
//! deadline around every wait, and a fixed sleep wakes late or early.)

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use mq_core::BackendError;
use rdkafka::bindings as rd;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, Producer as _, ProducerContext};

use crate::NAME;

/// How long [`MainQueue::wait`] sleeps when it has no pipe to wake it (`pipe2` failed): short,
/// as room in librdkafka's queue comes with each delivery report.
const NO_PIPE_WAIT: Duration = Duration::from_micros(200);

/// A reference to a producer's main queue; dropped before the producer (field order).
pub struct MainQueue {
    queue: *mut rd::rd_kafka_queue_t,
    /// The wake-up pipe (read end, write end); None when it could not be made.
    pipe: Option<(OwnedFd, OwnedFd)>,
}

// SAFETY: a queue handle may be used from any thread (librdkafka locks the queue itself).
unsafe impl Send for MainQueue {}

impl MainQueue {
    pub fn new<C: ProducerContext>(producer: &BaseProducer<C>) -> Result<MainQueue, BackendError> {
        // SAFETY: a live client handle; the reference taken is destroyed in Drop.
        let queue = unsafe { rd::rd_kafka_queue_get_main(producer.client().native_ptr()) };
        if queue.is_null() {
            return Err(BackendError::other(
                NAME,
                "librdkafka gave the producer no main queue",
            ));
        }
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills both descriptors on success; each is owned once below.
        let pipe =
            match unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } {
                // SAFETY: fresh descriptors from pipe2, owned from here on.
                0 => Some(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }),
                _ => None,
            };
        Ok(MainQueue { queue, pipe })
    }

    /// Serves every event waiting on the queue, without waiting: `report(seq, error)` for each
    /// reported message (error `NoError` when the broker took it), in the order librdkafka
    /// reports them. How many messages were reported.
    pub fn serve<C: ProducerContext>(
        &self,
        producer: &BaseProducer<C>,
        mut report: impl FnMut(u64, RDKafkaErrorCode),
    ) -> usize {
        let mut reported = 0;
        loop {
            // SAFETY: our own live queue reference; a zero timeout never blocks.
            let ev = unsafe { rd::rd_kafka_queue_poll(self.queue, 0) };
            if ev.is_null() {
                return reported;
            }
            // SAFETY: `ev` is a live event until the destroy below; the messages it hands out
            // live as long as it, and are only read here.
            unsafe {
                match rd::rd_kafka_event_type(ev) {
                    rd::RD_KAFKA_EVENT_DR => loop {
                        let m = rd::rd_kafka_event_message_next(ev);
                        if m.is_null() {
                            break;
                        }
                        reported += 1;
                        report((*m)._private as usize as u64, (*m).err.into());
                    },
                    rd::RD_KAFKA_EVENT_LOG => log(producer.context().as_ref(), ev),
                    rd::RD_KAFKA_EVENT_ERROR => {
                        let code: RDKafkaErrorCode = rd::rd_kafka_event_error(ev).into();
                        let reason = text(rd::rd_kafka_event_error_string(ev));
                        producer
                            .context()
                            .error(KafkaError::Global(code), reason.trim());
                    }
                    rd::RD_KAFKA_EVENT_STATS => {
                        let json = rd::rd_kafka_event_stats(ev);
                        if !json.is_null() {
                            producer
                                .context()
                                .stats_raw(CStr::from_ptr(json).to_bytes());
                        }
                    }
                    other => {
                        let name = text(rd::rd_kafka_event_name(ev));
                        tracing::debug!("kafka: producer event {name} ({other}) ignored");
                    }
                }
                rd::rd_kafka_event_destroy(ev);
            }
        }
    }

    /// Sleeps until an event may be waiting on the queue, or `most` has passed; without a pipe,
    /// [`NO_PIPE_WAIT`] at most.
    pub fn wait(&self, most: Duration) {
        let Some((read, write)) = &self.pipe else {
            std::thread::sleep(NO_PIPE_WAIT.min(most));
            return;
        };
        // SAFETY: our own live queue; librdkafka copies the payload. Armed, it writes the pipe
        // when an event lands on the empty queue.
        unsafe {
            rd::rd_kafka_queue_io_event_enable(
                self.queue,
                write.as_raw_fd(),
                b"w".as_ptr().cast(),
                1,
            )
        };
        // An event that landed before the pipe was armed wrote nothing: look first.
        // SAFETY: our own live queue reference.
        if unsafe { rd::rd_kafka_queue_length(self.queue) } == 0 {
            let mut pfd = libc::pollfd {
                fd: read.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = most.as_millis().clamp(1, i32::MAX as u128) as i32;
            // SAFETY: one pollfd of our own pipe.
            unsafe { libc::poll(&mut pfd, 1, ms) };
        }
        // SAFETY: disarming (fd -1) stops the writes; then the pipe is read until empty.
        unsafe {
            rd::rd_kafka_queue_io_event_enable(self.queue, -1, std::ptr::null(), 0);
            let mut buf = [0u8; 64];
            while libc::read(read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) > 0 {}
        }
    }
}

impl Drop for MainQueue {
    fn drop(&mut self) {
        // SAFETY: our own queue reference, released once, while the producer is alive; the pipe
        // is disarmed after every wait.
        unsafe { rd::rd_kafka_queue_destroy(self.queue) };
    }
}

/// A C string from librdkafka, lossily (empty when NULL).
///
/// # Safety
/// `s` is NULL or a NUL-terminated string that lives while the result is used.
unsafe fn text<'a>(s: *const std::ffi::c_char) -> std::borrow::Cow<'a, str> {
    match s.is_null() {
        true => "".into(),
        false => CStr::from_ptr(s).to_string_lossy(),
    }
}

/// Hands a log event to the context, as the crate does.
///
/// # Safety
/// `ev` is a live log event.
unsafe fn log<C: ClientContext>(context: &C, ev: *mut rd::rd_kafka_event_t) {
    let mut fac = std::ptr::null();
    let mut line = std::ptr::null();
    let mut level = 0;
    if rd::rd_kafka_event_log(ev, &mut fac, &mut line, &mut level) == 0 {
        context.log(log_level(level), text(fac).trim(), text(line).trim());
    }
}

/// librdkafka's syslog-style level (0 emergency … 7 debug).
fn log_level(level: i32) -> RDKafkaLogLevel {
    match level {
        i32::MIN..=0 => RDKafkaLogLevel::Emerg,
        1 => RDKafkaLogLevel::Alert,
        2 => RDKafkaLogLevel::Critical,
        3 => RDKafkaLogLevel::Error,
        4 => RDKafkaLogLevel::Warning,
        5 => RDKafkaLogLevel::Notice,
        6 => RDKafkaLogLevel::Info,
        _ => RDKafkaLogLevel::Debug,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use rdkafka::ClientConfig;

    use super::*;
    use crate::topic_handle::TopicHandle;

    /// No broker needed: nobody listens on 127.0.0.1:1, so every record times out after
    /// `message.timeout.ms` and is reported with that error, through the main queue.
    #[test]
    fn each_report_comes_with_its_seq_and_its_error() {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:1")
            .set("message.timeout.ms", "200")
            .set("log_level", "0")
            .create()
            .expect("producer");
        let queue = MainQueue::new(&producer).expect("main queue");
        let topic = TopicHandle::new(&producer, "mqb-events-test").expect("topic handle");
        for seq in [7, 8, 1 << 40] {
            topic.produce(0, b"payload", seq).expect("queued");
        }
        let mut got = Vec::new();
        let start = Instant::now();
        while got.len() < 3 && start.elapsed() < Duration::from_secs(20) {
            queue.wait(Duration::from_millis(500));
            queue.serve(&producer, |seq, code| got.push((seq, code)));
        }
        got.sort_by_key(|&(seq, _)| seq);
        assert_eq!(
            got,
            [7, 8, 1 << 40].map(|seq| (seq, RDKafkaErrorCode::MessageTimedOut)),
        );
        // Each record is reported once.
        assert_eq!(queue.serve(&producer, |_, _| panic!("a second report")), 0);
    }

    #[test]
    fn log_levels_follow_syslog() {
        assert!(matches!(log_level(3), RDKafkaLogLevel::Error));
        assert!(matches!(log_level(7), RDKafkaLogLevel::Debug));
        assert!(matches!(log_level(99), RDKafkaLogLevel::Debug));
        assert!(matches!(log_level(-1), RDKafkaLogLevel::Emerg));
    }
}
