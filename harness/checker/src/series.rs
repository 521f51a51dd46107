//! The checker's time series: messages counted per time bin, at a bin width chosen from the
//! run's length (10 ms for a sub-second run, coarser for longer ones), and the backlog (acked
//! messages not yet delivered) at the end of each bin.

use crate::report::Series;

/// The finest bin width, 10 ms. Widths go 10 ms, 20 ms, 50 ms, 100 ms, 200 ms, 500 ms, 1 s, 2 s …
pub const MIN_BIN_NS: u64 = 10_000_000;

/// A series has at least this many bins, unless the run is shorter than `MIN_BINS` × 10 ms.
pub const MIN_BINS: u64 = 50;

/// Bins are never wider than a second while that gives at most [`MAX_BINS`] of them: a soak
/// run keeps per-second points (the charts downsample them for drawing only).
pub const MAX_BIN_NS: u64 = 1_000_000_000;

/// At most this many bins (two hours of seconds); longer runs get wider bins.
pub const MAX_BINS: u64 = 7200;

/// While counting, bins coarsen tenfold past this many, so memory stays bounded whatever the
/// times in the histories (a bogus timestamp a year away costs no more than a 200 s run).
const MAX_COUNTING_BINS: u64 = 20_000;

/// The bin width (ns) of a run whose events span `span_ns` from the variant's start: the
/// coarsest of 10 ms, 20 ms, 50 ms, 100 ms … (1-2-5 in each decade) that still gives at least
/// [`MIN_BINS`] bins (10 ms for a run shorter than 0.5 s), but no wider than a second unless
/// that would make more than [`MAX_BINS`] bins. A run of up to 50 s has 50 to 125 points; up to
/// two hours, a point per second; longer, the finest width giving at most [`MAX_BINS`].
pub fn bin_width_ns(span_ns: u64) -> u64 {
    let coarse = coarsest_width(span_ns).min(MAX_BIN_NS);
    coarse.max(finest_width_at_least(span_ns / MAX_BINS))
}

/// The smallest width of the ladder (10 ms, 20 ms, 50 ms, 100 ms …) that is at least `ns`.
fn finest_width_at_least(ns: u64) -> u64 {
    let mut decade = MIN_BIN_NS;
    loop {
        for m in [1, 2, 5] {
            let w = decade.saturating_mul(m);
            if w >= ns {
                return w;
            }
        }
        match decade.checked_mul(10) {
            Some(d) => decade = d,
            None => return u64::MAX,
        }
    }
}

/// The coarsest width of the ladder giving at least [`MIN_BINS`] bins.
fn coarsest_width(span_ns: u64) -> u64 {
    let most = span_ns / MIN_BINS;
    let mut best = MIN_BIN_NS;
    let mut decade = MIN_BIN_NS;
    loop {
        for m in [1, 2, 5] {
            let w = decade.saturating_mul(m);
            if w > most {
                return best;
            }
            best = w;
        }
        match decade.checked_mul(10) {
            Some(d) => decade = d,
            None => return best,
        }
    }
}

/// Counts per bin while the histories are read.
///
/// The run's length is known only once every history has been read, so counting starts in
/// 10 ms bins and coarsens tenfold whenever a time falls past [`MAX_COUNTING_BINS`] bins;
/// [`Timeline::finish`] then merges them to the chosen width. Every width of the ladder at or
/// above a power-of-ten width is a whole multiple of it, and the chosen width is never finer
/// than the counting width, so the merge is exact.
#[derive(Debug)]
pub(crate) struct Timeline {
    start_ns: u64,
    width_ns: u64,
    /// `width_ns` / 10 ms: the hot path divides by a constant, and by this only once the bins
    /// have coarsened (runs of over 20 s).
    per_bin: u64,
    /// The latest event, ns since the start.
    end_ns: u64,
    pub sent: Vec<u64>,
    pub acked: Vec<u64>,
    pub failed: Vec<u64>,
    /// First deliveries of every message (throughput).
    pub delivered: Vec<u64>,
    /// First deliveries of acked messages only (backlog).
    pub delivered_acked: Vec<u64>,
}

impl Timeline {
    pub fn new(start_ns: u64) -> Timeline {
        Timeline {
            start_ns,
            width_ns: MIN_BIN_NS,
            per_bin: 1,
            end_ns: 0,
            sent: Vec::new(),
            acked: Vec::new(),
            failed: Vec::new(),
            delivered: Vec::new(),
            delivered_acked: Vec::new(),
        }
    }

    /// The bin of time `t_ns` (times before the start fall in bin 0). Call [`bump`] with it
    /// before the next call: a later time may coarsen the bins.
    // Always inlined: it runs for every record, from four places; left out of line (as rustc
    // chose once the pass was split into one method per role), it cost the checker 8 % more
    // instructions (cachegrind over the `cargo bench -p mq-checker` histories).
    #[inline(always)]
    pub fn bin(&mut self, t_ns: u64) -> usize {
        let since = t_ns.saturating_sub(self.start_ns);
        self.end_ns = self.end_ns.max(since);
        let tens = since / MIN_BIN_NS;
        let mut i = if self.per_bin == 1 {
            tens
        } else {
            tens / self.per_bin
        };
        while i >= MAX_COUNTING_BINS {
            self.coarsen();
            i = tens / self.per_bin;
        }
        i as usize
    }

    #[cold]
    fn coarsen(&mut self) {
        self.width_ns *= 10;
        self.per_bin *= 10;
        for v in self.all() {
            *v = merge(v, 10);
        }
    }

    fn all(&mut self) -> [&mut Vec<u64>; 5] {
        [
            &mut self.sent,
            &mut self.acked,
            &mut self.failed,
            &mut self.delivered,
            &mut self.delivered_acked,
        ]
    }

    /// The series at the width chosen from the run's length, with the backlog.
    pub fn finish(mut self) -> Series {
        let width = bin_width_ns(self.end_ns).max(self.width_ns);
        debug_assert_eq!(width % self.width_ns, 0, "ladder widths are multiples");
        let factor = (width / self.width_ns) as usize;
        let len = self.all().iter().map(|v| v.len()).max().unwrap_or(0);
        for v in self.all() {
            v.resize(len, 0);
            *v = merge(v, factor);
        }
        // Backlog at the end of bin i = acked by then − first deliveries of acked messages by
        // then. Deliveries of messages never acked (unknown: "recovered"; refused: failed) never
        // entered the backlog and do not leave it. A message delivered before its ack was
        // recorded (the broker delivers and confirms at once; the producer records the confirm
        // later) was never in the backlog either; when that happens across a bin boundary the
        // delivery is counted before the ack. The checker keeps bits, not times, per message, so
        // it cannot tell those deliveries apart: it holds back deliveries in excess of the acks
        // until the acks catch up (the backlog never goes below 0). The figure can therefore
        // under-count by the messages delivered before their ack was recorded at that instant
        // (an ack round trip's worth), never over-count.
        let (mut acked, mut out) = (0i64, 0i64);
        let backlog = self
            .acked
            .iter()
            .zip(&self.delivered_acked)
            .map(|(a, d)| {
                acked += *a as i64;
                out += *d as i64;
                (acked - out).max(0)
            })
            .collect();
        Series {
            bin_s: width as f64 / 1e9,
            sent: self.sent,
            acked: self.acked,
            failed: self.failed,
            delivered: self.delivered,
            backlog,
        }
    }
}

/// Adds one to bin `i` of `v`.
#[inline]
pub(crate) fn bump(v: &mut Vec<u64>, i: usize) {
    if i >= v.len() {
        v.resize(i + 1, 0);
    }
    v[i] += 1;
}

/// Sums of `factor` consecutive bins.
fn merge(v: &[u64], factor: usize) -> Vec<u64> {
    if factor <= 1 {
        return v.to_vec();
    }
    v.chunks(factor).map(|c| c.iter().sum()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000_000_000;

    #[test]
    fn the_width_gives_fifty_bins_or_more_and_seconds_up_to_two_hours() {
        let cases = [
            (0, 10 * MS),
            (300 * MS, 10 * MS),
            (600 * MS, 10 * MS),
            (999 * MS, 10 * MS),
            (S, 20 * MS),
            (4 * S, 50 * MS),
            (10 * S, 200 * MS),
            (30 * S, 500 * MS),
            (60 * S, S),
            (99 * S, S),
            (100 * S, S),
            (3600 * S, S),
            (7200 * S, S),
            (7201 * S, 2 * S),
            (7 * 24 * 3600 * S, 100 * S),
            (u64::MAX, 5_000_000 * S),
        ];
        for (span, want) in cases {
            assert_eq!(bin_width_ns(span), want, "span {span} ns");
        }
    }

    #[test]
    fn counting_bins_coarsen_and_merge_exactly() {
        let mut t = Timeline::new(5 * S);
        // One ack every 10 ms for 300 s: 30000 counting bins of 10 ms would pass the cap.
        for k in 0..30_000u64 {
            let i = t.bin(5 * S + k * 10 * MS);
            bump(&mut t.acked, i);
        }
        assert_eq!(t.width_ns, 100 * MS);
        assert!(t.acked.len() <= MAX_COUNTING_BINS as usize);
        let s = t.finish();
        // 299.99 s: per-second bins of 100 acks each.
        assert_eq!(s.bin_s, 1.0);
        assert_eq!(s.acked, vec![100; 300]);
        assert_eq!(s.backlog.last(), Some(&30_000));
    }

    #[test]
    fn a_bogus_far_time_stays_bounded() {
        let mut t = Timeline::new(0);
        let i = t.bin(u64::MAX);
        bump(&mut t.delivered, i);
        let i = t.bin(0);
        bump(&mut t.delivered, i);
        assert!(t.delivered.len() <= MAX_COUNTING_BINS as usize);
        let s = t.finish();
        assert_eq!(s.delivered.iter().sum::<u64>(), 2);
        assert!(
            s.delivered.len() <= MAX_BINS as usize,
            "{}",
            s.delivered.len()
        );
    }
}
