//! Publish (intended send → ack) and end-to-end (intended send → delivery) latency, as
//! HdrHistograms of nanoseconds, and how they are summarised and stored.

use base64::Engine;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

use crate::report::{Latency, Percentiles};

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
