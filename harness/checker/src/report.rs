//! What the checker reports for one variant: counts, the first few offending messages of each
//! check, throughput, latency, series. Serialized as is into `results.json` (see
//! `docs/results-schema.md`).

use mq_core::ids::{ConsumerId, Key, ProducerId, Seq};
use serde::{Deserialize, Serialize};

/// Jepsen-style accounting of every send and delivery.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Send attempts.
    pub sent: u64,
    /// Confirmed by the broker.
    pub acked: u64,
    /// Refused by the broker (nack, error).
    pub failed: u64,
    /// Never reached the broker: the client had no connection within its delivery timeout.
    /// `sent = acked + failed + not_sent + unknown`.
    #[serde(default)]
    pub not_sent: u64,
    /// No answer before the producer ended (crash, timeout).
    pub unknown: u64,
    /// Distinct messages delivered at least once.
    pub delivered: u64,
    /// Every delivery, duplicates included.
    pub deliveries: u64,
    /// Acked and never delivered. The number that matters.
    pub lost: u64,
    /// Unknown and never delivered (allowed by every contract).
    pub unacked_lost: u64,
    /// Unknown, yet delivered.
    pub recovered: u64,
    /// Failed (refused or not sent), yet delivered.
    pub failed_delivered: u64,
    /// Deliveries beyond the first of the same (producer, seq).
    pub duplicated: u64,
    /// First deliveries of a (producer, key) whose seq is below one first-delivered for it
    /// earlier (delivery time, across every consumer).
    pub reordered: u64,
    /// Delivered but never sent. Must be 0.
    pub unexpected: u64,
    /// Transactional producers: messages of a transaction that was aborted or never committed
    /// (the producer died in it). Neither failed nor unknown:
    /// `sent = acked + failed + not_sent + unknown + aborted`.
    #[serde(default)]
    pub aborted: u64,
    /// Of the aborted, those a consumer delivered anyway (`read_uncommitted`). Must be 0 for
    /// every contract.
    #[serde(default)]
    pub aborted_visible: u64,
}

/// What the idempotent consumers' store held at the end (`consumer_dedup = "store"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dedup {
    /// Messages the store holds as processed.
    pub processed: u64,
    /// Deliveries the consumers skipped as repeats (already in the store): the redeliveries
    /// that would otherwise be duplicates.
    pub skipped: u64,
    /// Messages in the store that no history has (a consumer killed between the store's commit
    /// and its history write), counted as delivered without a latency sample.
    pub credited: u64,
}

/// How many offending messages each check keeps in its sample.
pub const SAMPLE_SIZE: usize = 20;

/// The first [`SAMPLE_SIZE`] offenders of each check, named as in [`Counts`]: a sample holds
/// every offender when its count is at most [`SAMPLE_SIZE`]. Messages judged by their send
/// (`lost`, `unacked_lost`, `recovered`, `failed_delivered`, `aborted_visible`) come in order of intended send
/// time; offending deliveries (`duplicated`, `reordered`, `unexpected`) in order of delivery
/// time. Messages sent at the same instant go lower producer, then lower seq, first;
/// deliveries at the same instant, the one read first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Samples {
    pub lost: Vec<Sample>,
    pub unacked_lost: Vec<Sample>,
    pub recovered: Vec<Sample>,
    pub failed_delivered: Vec<Sample>,
    pub duplicated: Vec<Sample>,
    pub reordered: Vec<Sample>,
    pub unexpected: Vec<Sample>,
    pub aborted_visible: Vec<Sample>,
}

/// One offending message or delivery. Times are seconds since the variant's start; a field a
/// check does not know is absent (see `docs/results-schema.md` for which check fills which).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sample {
    /// Absent only for a payload that is not one of this run's messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub producer: Option<ProducerId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<Seq>,
    /// The ordering key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Key>,
    /// The intended send time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_s: Option<f64>,
    /// When the producer recorded the broker's confirmation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acked_s: Option<f64>,
    /// When the consumer recorded the delivery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_s: Option<f64>,
    /// The consumer whose history holds the delivery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer: Option<ConsumerId>,
    /// Reordered: the highest seq of the same producer and key first-delivered before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_seq: Option<Seq>,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub min_us: f64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Intended send → broker confirmation.
    pub publish: Percentiles,
    /// Intended send → delivery.
    pub end_to_end: Percentiles,
    /// The full histograms, HdrHistogram V2 + deflate, base64: charts and compare rebuild from these.
    pub publish_hdr: String,
    pub end_to_end_hdr: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// From the variant's start to its last confirmation.
    pub seconds: f64,
    pub acked_msgs_per_s: f64,
    pub acked_mb_per_s: f64,
    pub delivered_msgs_per_s: f64,
    pub delivered_mb_per_s: f64,
}

/// Messages counted per time bin: index i = [i × bin_s, (i + 1) × bin_s) seconds since the
/// variant's start. The checker chooses the width from the run's length
/// ([`crate::series::bin_width_ns`]); a rate in msgs/s is a count divided by `bin_s`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Bin width in seconds: 0.01, 0.02, 0.05, 0.1 … Absent from results.json of schema 1,
    /// whose series are per second.
    #[serde(default = "one_second")]
    pub bin_s: f64,
    pub sent: Vec<u64>,
    pub acked: Vec<u64>,
    pub failed: Vec<u64>,
    /// First deliveries.
    pub delivered: Vec<u64>,
    /// Acked messages not yet delivered, at the end of each bin (never negative).
    pub backlog: Vec<i64>,
}

fn one_second() -> f64 {
    1.0
}

impl Default for Series {
    /// Empty per-second series.
    fn default() -> Self {
        Series {
            bin_s: one_second(),
            sent: Vec::new(),
            acked: Vec::new(),
            failed: Vec::new(),
            delivered: Vec::new(),
            backlog: Vec::new(),
        }
    }
}

/// One sample of the depth the broker itself reports.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DepthSample {
    /// Seconds since the variant's start.
    pub t: f64,
    pub messages: u64,
    pub bytes: Option<u64>,
}

/// Everything the checker found for one variant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub counts: Counts,
    /// Which messages the counts are made of, the first few of each. Absent from results.json
    /// written before samples existed; read as empty.
    #[serde(default)]
    pub samples: Samples,
    pub throughput: Throughput,
    pub latency: Latency,
    pub series: Series,
    pub broker_depth: Vec<DepthSample>,
    /// Peak of the history backlog (acked, not yet delivered) over the series' bin ends.
    pub backlog_peak: i64,
    /// Peak of the broker-reported depth, when the broker reports one.
    pub broker_depth_peak: Option<u64>,
    /// History records read (for the checker's own speed figure).
    pub records: u64,
    /// Some producer history of the variant was a transactional producer's (its header's
    /// flag): `aborted` and `aborted_visible` apply. Absent (false) before transactions existed.
    #[serde(default)]
    pub transactional: bool,
    /// The idempotent consumer's store; absent without `consumer_dedup = "store"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup: Option<Dedup>,
}

impl Report {
    /// The acked and delivered msg/s while a fixed-rate load sent (its first `sent_s` seconds),
    /// start-up (the first 20 %) left out. Unlike [`Throughput`], which runs to the last ack,
    /// the last messages' latency does not count as slowness: a 3 s load whose last ack comes
    /// 150 ms late is still 1000 msg/s while it sends. [`Throughput`]'s rates when the series
    /// has fewer than 4 bins in that window.
    pub fn rates_while_sending(&self, sent_s: f64) -> (f64, f64) {
        let s = &self.series;
        let end = match s.bin_s > 0.0 && sent_s > 0.0 {
            true => ((sent_s / s.bin_s) as usize)
                .min(s.acked.len())
                .min(s.delivered.len()),
            false => 0,
        };
        let start = end / 5;
        if end - start < 4 {
            let t = &self.throughput;
            return (t.acked_msgs_per_s, t.delivered_msgs_per_s);
        }
        let secs = (end - start) as f64 * s.bin_s;
        let per_s = |bins: &[u64]| bins.iter().sum::<u64>() as f64 / secs;
        (per_s(&s.acked[start..end]), per_s(&s.delivered[start..end]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_while_sending_leave_out_start_up_and_the_last_messages_latency() {
        let mut r = Report::default();
        r.throughput.acked_msgs_per_s = 900.0; // to the last ack, 0.33 s after the sending
        r.throughput.delivered_msgs_per_s = 880.0;
        r.series.bin_s = 0.1;
        // 3 s at 1000 msg/s: a slow first bin (start-up), then 100 per bin, then the tail.
        r.series.acked = [vec![10], vec![100; 29], vec![100, 100, 0]].concat();
        r.series.delivered = r.series.acked.clone();
        let (acked, delivered) = r.rates_while_sending(3.0);
        assert_eq!((acked.round(), delivered.round()), (1000.0, 1000.0));
        assert_eq!(r.rates_while_sending(0.2), (900.0, 880.0), "too few bins");
        r.series.bin_s = 0.0;
        assert_eq!(r.rates_while_sending(3.0), (900.0, 880.0));
    }

    #[test]
    fn a_report_written_before_samples_existed_reads_with_empty_samples() {
        let mut old = serde_json::to_value(Report::default()).unwrap();
        old.as_object_mut().unwrap().remove("samples");
        let back: Report = serde_json::from_value(old).unwrap();
        assert_eq!(back.samples, Samples::default());
    }

    #[test]
    fn a_sample_writes_only_the_fields_its_check_knows() {
        let s = Sample {
            producer: Some(ProducerId(1)),
            seq: Some(Seq(17)),
            key: Some(Key(2)),
            sent_s: Some(2.5),
            acked_s: Some(2.5005),
            ..Sample::default()
        };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(
            json,
            r#"{"producer":1,"seq":17,"key":2,"sent_s":2.5,"acked_s":2.5005}"#
        );
        assert_eq!(serde_json::from_str::<Sample>(&json).unwrap(), s);
    }
}
