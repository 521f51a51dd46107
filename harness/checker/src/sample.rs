//! The bounded samples the checks keep: the first [`SAMPLE_SIZE`] offenders by a time, whatever
//! the order the histories are read in, and the conversion of history times to seconds.

use crate::messages::Delivery;
use crate::report::{Sample, SAMPLE_SIZE};

/// What one check found: how many, and the first few of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Found {
    pub count: u64,
    pub sample: Vec<Sample>,
}

/// The [`SAMPLE_SIZE`] offenders of smallest key seen so far, sorted by key.
///
/// Offenders come in the order the histories are read, not in time order (several files, and
/// acks recorded out of order), so each is ranked as it comes. Once the sample is full an
/// offender ranked after the last one costs one comparison; one ranked before it, a shift of at
/// most [`SAMPLE_SIZE`] entries.
#[derive(Debug)]
pub(crate) struct FirstN<K> {
    items: Vec<(K, Sample)>,
}

impl<K: Ord> FirstN<K> {
    pub fn new() -> FirstN<K> {
        FirstN {
            items: Vec::with_capacity(SAMPLE_SIZE + 1),
        }
    }

    /// The entry ranked `key`, inserted empty if it is not there yet, or None when the sample
    /// is full of entries ranked before it. Records about the same offender share a key, so
    /// each can fill in the fields it knows.
    #[inline]
    pub fn entry(&mut self, key: K) -> Option<&mut Sample> {
        if self.items.len() == SAMPLE_SIZE && self.items.last().is_some_and(|(k, _)| key > *k) {
            return None;
        }
        let i = match self.items.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(i) => return Some(&mut self.items[i].1),
            Err(i) => i,
        };
        self.items.insert(i, (key, Sample::default()));
        self.items.truncate(SAMPLE_SIZE);
        Some(&mut self.items[i].1)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The key ranked last.
    pub fn last_key(&self) -> Option<&K> {
        self.items.last().map(|(k, _)| k)
    }

    pub fn samples(&self) -> impl Iterator<Item = &Sample> {
        self.items.iter().map(|(_, s)| s)
    }

    /// The sample, first ranked first.
    pub fn into_sample(self) -> Vec<Sample> {
        self.items.into_iter().map(|(_, s)| s).collect()
    }
}

/// A count of offending deliveries and the first [`SAMPLE_SIZE`] by delivery time (at one
/// time, the one read first): what the duplicates, order and unexpected checks keep.
#[derive(Debug)]
pub(crate) struct ByDelivery {
    clock: Clock,
    count: u64,
    /// Ranked by (delivery time, read order).
    first: FirstN<(u64, u64)>,
}

impl ByDelivery {
    pub fn new(clock: Clock) -> ByDelivery {
        ByDelivery {
            clock,
            count: 0,
            first: FirstN::new(),
        }
    }

    /// One more offending delivery, at `at_ns`; `sample` makes its entry when it ranks among
    /// the first.
    #[inline]
    pub fn add(&mut self, at_ns: u64, sample: impl FnOnce(Clock) -> Sample) {
        self.count += 1;
        if let Some(s) = self.first.entry((at_ns, self.count)) {
            *s = sample(self.clock);
        }
    }

    pub fn finish(self) -> Found {
        Found {
            count: self.count,
            sample: self.first.into_sample(),
        }
    }
}

/// Turns history times (monotonic ns) into seconds since the variant's start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    pub start_ns: u64,
}

impl Clock {
    /// Seconds since the start; negative for a time before it (a time in a sample is shown as
    /// recorded, not clamped).
    pub fn secs(self, t_ns: u64) -> f64 {
        (i128::from(t_ns) - i128::from(self.start_ns)) as f64 / 1e9
    }

    /// A delivery as a sample: what its record and its consumer tell.
    pub fn delivery(self, d: &Delivery) -> Sample {
        Sample {
            producer: Some(d.producer),
            seq: Some(d.seq),
            key: Some(d.key),
            sent_s: Some(self.secs(d.sent_ns)),
            delivered_s: Some(self.secs(d.at_ns)),
            consumer: Some(d.consumer),
            ..Sample::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mq_core::ids::Seq;

    fn seqs(f: FirstN<(u64, u64)>) -> Vec<u64> {
        f.into_sample().iter().map(|s| s.seq.unwrap().0).collect()
    }

    #[test]
    fn keeps_the_first_by_key_whatever_the_order_offered() {
        let mut f = FirstN::new();
        // Keys 99, 98 … 0 (the worst order): the sample ends with 0..20.
        for t in (0..100u64).rev() {
            f.entry((t, 0)).unwrap().seq = Some(Seq(t));
        }
        assert_eq!(seqs(f), (0..SAMPLE_SIZE as u64).collect::<Vec<_>>());
    }

    #[test]
    fn a_full_sample_refuses_later_keys_and_merges_equal_ones() {
        let mut f = FirstN::new();
        for t in 0..SAMPLE_SIZE as u64 {
            f.entry((t, 0)).unwrap().seq = Some(Seq(t));
        }
        assert!(f.entry((SAMPLE_SIZE as u64, 0)).is_none());
        // The same key again: the same entry, to be filled in further.
        let e = f.entry((3, 0)).unwrap();
        assert_eq!(e.seq, Some(Seq(3)));
        e.acked_s = Some(1.0);
        // A key before the last pushes the last out.
        f.entry((2, 1)).unwrap().seq = Some(Seq(1000));
        let sample = f.into_sample();
        assert_eq!(sample.len(), SAMPLE_SIZE);
        assert_eq!(sample[3].seq, Some(Seq(1000)));
        assert_eq!(sample[4].acked_s, Some(1.0));
        assert_eq!(
            sample.last().unwrap().seq,
            Some(Seq(SAMPLE_SIZE as u64 - 2))
        );
    }

    #[test]
    fn times_before_the_start_are_negative() {
        let c = Clock {
            start_ns: 2_000_000_000,
        };
        assert_eq!(c.secs(2_500_000_000), 0.5);
        assert_eq!(c.secs(1_000_000_000), -1.0);
    }
}
