//! A worker's latency, kept in an HdrHistogram and written once a second as one interval of
//! an HdrHistogram interval log (`<history>.hlog`, readable by HdrHistogram's own log tools):
//! the producer's publish latency (intended send → ack, tag `publish`), the consumer's
//! end-to-end latency (send → first delivery to it, tag `end-to-end`). Messages scheduled
//! before the variant's start + warm-up are left out, as the checker does.
//!
//! Each interval is one `write` of a whole line, so a killed worker loses at most the second
//! in progress. Interval timestamps are seconds on the histories' clock (`CLOCK_MONOTONIC`, or
//! `CLOCK_REALTIME` in a sharded run).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;
use mq_core::clock::now_ns;

/// How long each interval of the log lasts.
pub const INTERVAL_NS: u64 = 1_000_000_000;

/// The tag of a producer's intervals.
pub const PUBLISH: &str = "publish";
/// The tag of a consumer's intervals.
pub const END_TO_END: &str = "end-to-end";

/// The tag of a sharded consumer's same-shard intervals.
pub const END_TO_END_SAME_SHARD: &str = "end-to-end-same-shard";

/// One worker's latency log.
pub(super) struct LatencyLog {
    file: File,
    path: PathBuf,
    tag: &'static str,
    hist: Histogram<u64>,
    /// Messages scheduled before this are warm-up; None until the start is known.
    from_ns: Option<u64>,
    /// Where the start is written (`start_ns` beside the history), for a consumer.
    start_file: PathBuf,
    /// No new look at `start_file` before this (a missing file is not read per message).
    next_look_ns: u64,
    warmup_ns: u64,
    interval_start: u64,
    line: Vec<u8>,
    serializer: V2DeflateSerializer,
}

impl LatencyLog {
    /// Creates the log beside `history`; `from_ns` when the start is known already (a
    /// producer), else it is read from `start_ns` beside the history at the first message.
    pub fn create(
        history: &Path,
        tag: &'static str,
        warmup_ns: u64,
        from_ns: Option<u64>,
    ) -> io::Result<LatencyLog> {
        let path = history.with_extension("hlog");
        let mut file = File::create(&path)?;
        let mut head = Vec::new();
        let mut serializer = V2DeflateSerializer::new();
        IntervalLogWriterBuilder::new()
            .add_comment(&format!(
                "mq-bench {tag} latency (ns); interval timestamps are CLOCK_{} seconds",
                mq_core::clock::name().to_uppercase()
            ))
            .begin_log_with(&mut head, &mut serializer)?;
        head.extend_from_slice(b"\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n");
        file.write_all(&head)?;
        Ok(LatencyLog {
            file,
            path,
            tag,
            hist: mq_checker::new_histogram(),
            from_ns,
            start_file: history.with_file_name("start_ns"),
            next_look_ns: 0,
            warmup_ns,
            interval_start: now_ns(),
            line: Vec::new(),
            serializer,
        })
    }

    /// One message sent (or scheduled) at `sent_ns` and acked or delivered at `at_ns`.
    #[inline]
    pub fn record(&mut self, sent_ns: u64, at_ns: u64) -> io::Result<()> {
        let from = match self.from_ns {
            Some(t) => t,
            None => match self.read_start(at_ns) {
                Some(t) => t,
                None => return Ok(()), // no start yet: nothing of the load can be here
            },
        };
        if sent_ns >= from {
            self.hist
                .saturating_record(at_ns.saturating_sub(sent_ns).max(1));
        }
        if at_ns >= self.interval_start + INTERVAL_NS {
            self.write_interval(at_ns)?;
        }
        Ok(())
    }

    /// The start, from `start_file`; looked at most every 10 ms while it is missing.
    #[cold]
    fn read_start(&mut self, now_ns: u64) -> Option<u64> {
        if now_ns < self.next_look_ns {
            return None;
        }
        self.next_look_ns = now_ns.saturating_add(10_000_000);
        let start: u64 = std::fs::read_to_string(&self.start_file)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        self.from_ns = Some(start + self.warmup_ns);
        self.from_ns
    }

    /// Writes what was recorded since the last interval, as one line, and starts the next.
    fn write_interval(&mut self, now: u64) -> io::Result<()> {
        let (start, end) = (self.interval_start, now.max(self.interval_start));
        self.interval_start = end;
        if self.hist.is_empty() {
            return Ok(());
        }
        self.line.clear();
        let mut log =
            IntervalLogWriterBuilder::new().begin_log_with(&mut self.line, &mut self.serializer)?;
        log.write_histogram(
            &self.hist,
            Duration::from_nanos(start),
            Duration::from_nanos(end - start),
            Tag::new(self.tag),
        )
        .map_err(|e| io::Error::other(format!("{}: {e}", self.path.display())))?;
        self.hist.reset();
        self.file.write_all(&self.line)
    }

    /// Writes the last interval.
    pub fn finish(mut self) -> io::Result<()> {
        self.write_interval(now_ns())
    }
}
