//! Publish (intended send → ack) and end-to-end (intended send → delivery) latency, as
//! HdrHistograms of nanoseconds, and how they are summarised and stored.

use std::path::Path;

use base64::Engine;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

use crate::input::CheckError;
use crate::report::{Latency, Percentiles};

/// The sum of every interval of one latency log (a missing log is empty), e.g. a shard's
/// same-shard end-to-end log.
pub fn read_log(path: &Path) -> Result<Histogram<u64>, CheckError> {
    let mut l = Latencies::new(0);
    l.add_log(path, false)?;
    Ok(l.end_to_end)
}

/// Both histograms while the histories are read; messages scheduled before `from_ns` (the
/// warm-up) are left out.
pub(crate) struct Latencies {
    from_ns: u64,
    publish: Histogram<u64>,
    end_to_end: Histogram<u64>,
}

impl Latencies {
    pub fn new(from_ns: u64) -> Latencies {
        Latencies {
            from_ns,
            publish: new_histogram(),
            end_to_end: new_histogram(),
        }
    }

    /// A first ack.
    #[inline]
    pub fn acked(&mut self, intended_ns: u64, at_ns: u64) {
        if intended_ns >= self.from_ns {
            record(&mut self.publish, at_ns.saturating_sub(intended_ns));
        }
    }

    /// A first delivery.
    #[inline]
    pub fn delivered(&mut self, sent_ns: u64, at_ns: u64) {
        if sent_ns >= self.from_ns {
            record(&mut self.end_to_end, at_ns.saturating_sub(sent_ns));
        }
    }

    /// Adds every interval of the HdrHistogram interval log at `path` (beside a version 2
    /// history, whose records carry no latency): to publish latency for a producer's log, to
    /// end-to-end for a consumer's. The worker left its warm-up out already. A missing log (a
    /// worker killed before its first interval) adds nothing; a torn last line is left out.
    pub fn add_log(&mut self, path: &Path, producer: bool) -> Result<(), CheckError> {
        let bad = |what: String| CheckError::Latency {
            path: path.to_owned(),
            what,
        };
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(bad(e.to_string())),
        };
        let into = if producer {
            &mut self.publish
        } else {
            &mut self.end_to_end
        };
        for entry in IntervalLogIterator::new(&text) {
            let interval = match entry {
                Ok(LogEntry::Interval(i)) => i,
                Ok(_) => continue,
                Err(hdrhistogram::serialization::interval_log::LogIteratorError::ParseError {
                    offset,
                }) => {
                    // Only the last line may be cut short (a worker killed mid-write).
                    if text[offset..].iter().filter(|&&b| b == b'\n').count() > 1 {
                        return Err(bad(format!("unreadable interval at byte {offset}")));
                    }
                    break;
                }
            };
            let h = decode_histogram(interval.encoded_histogram()).ok_or_else(|| {
                bad(format!(
                    "undecodable histogram at {:?}",
                    interval.start_timestamp()
                ))
            })?;
            into.add(&h)
                .map_err(|e| bad(format!("histogram out of range: {e:?}")))?;
        }
        Ok(())
    }

    pub fn finish(&self) -> Latency {
        Latency {
            publish: percentiles(&self.publish),
            end_to_end: percentiles(&self.end_to_end),
            publish_hdr: encode_histogram(&self.publish),
            end_to_end_hdr: encode_histogram(&self.end_to_end),
        }
    }
}

/// Latency histograms hold nanoseconds, 1 ns to 1 hour, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

#[inline]
fn record(h: &mut Histogram<u64>, ns: u64) {
    h.saturating_record(ns.max(1));
}

/// p50 … max of a nanosecond histogram, in microseconds.
pub fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    let us = |ns: u64| ns as f64 / 1e3;
    Percentiles {
        count: h.len(),
        min_us: us(h.min()),
        mean_us: h.mean() / 1e3,
        p50_us: us(h.value_at_quantile(0.50)),
        p90_us: us(h.value_at_quantile(0.90)),
        p99_us: us(h.value_at_quantile(0.99)),
        p999_us: us(h.value_at_quantile(0.999)),
        max_us: us(h.max()),
    }
}

/// Base64 of the V2-deflate serialization.
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut buf)
        .expect("serializing to memory");
    base64::engine::general_purpose::STANDARD.encode(buf)
}

/// The inverse of [`encode_histogram`].
pub fn decode_histogram(s: &str) -> Option<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).ok()?;
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .ok()
}
