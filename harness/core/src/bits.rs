//! A growable bitset: one bit per sequence number.

/// One bit per seq of one producer.
#[derive(Debug, Default, Clone)]
pub struct Bits {
    words: Vec<u64>,
}

impl Bits {
    /// Sets bit `i`; returns whether it was set before.
    #[inline]
    pub fn set(&mut self, i: u64) -> bool {
        let w = (i / 64) as usize;
        if w >= self.words.len() {
            self.words.resize((w + 1).max(self.words.len() * 2), 0);
        }
        let mask = 1u64 << (i % 64);
        let was = self.words[w] & mask != 0;
        self.words[w] |= mask;
        was
    }

    /// Sets bits `start .. start + len`, a word at a time.
    pub fn set_range(&mut self, start: u64, len: u64) {
        self.fill_range(start, len, |_| u64::MAX);
    }

    /// Sets those of bits `start .. start + len` that are set in `mask`; grows no further than
    /// `mask` reaches, however long the range.
    pub fn set_range_where(&mut self, start: u64, len: u64, mask: &Bits) {
        let end = start.saturating_add(len).min(mask.words.len() as u64 * 64);
        self.fill_range(start, end.saturating_sub(start), |w| mask.word(w));
    }

    /// ORs `source(word) & range` into every word the range covers.
    #[inline]
    fn fill_range(&mut self, start: u64, len: u64, source: impl Fn(usize) -> u64) {
        let Some(end) = start.checked_add(len).filter(|_| len > 0) else {
            return;
        };
        let (first, last) = ((start / 64) as usize, ((end - 1) / 64) as usize);
        if last >= self.words.len() {
            self.words.resize((last + 1).max(self.words.len() * 2), 0);
        }
        for w in first..=last {
            let lo = if w == first { start % 64 } else { 0 };
            let hi = if w == last { (end - 1) % 64 } else { 63 };
            let range = (u64::MAX >> (63 - hi)) & (u64::MAX << lo);
            self.words[w] |= source(w) & range;
        }
    }

    #[inline]
    pub fn get(&self, i: u64) -> bool {
        self.words
            .get((i / 64) as usize)
            .is_some_and(|w| w & (1u64 << (i % 64)) != 0)
    }

    /// Word `w`, zero past the end.
    #[inline]
    pub fn word(&self, w: usize) -> u64 {
        self.words.get(w).copied().unwrap_or(0)
    }

    pub fn words(&self) -> usize {
        self.words.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn sets_reports_previous_state_and_grows() {
        let mut b = Bits::default();
        assert!(!b.set(1000));
        assert!(b.set(1000));
        assert!(b.get(1000) && !b.get(999) && !b.get(1_000_000));
        assert_eq!(b.word(1000 / 64), 1 << (1000 % 64));
    }

    #[test]
    fn ranges_set_exactly_the_bits_one_by_one_would() {
        for (start, len) in [
            (0, 0),
            (0, 1),
            (3, 61),
            (63, 2),
            (64, 64),
            (5, 300),
            (130, 1),
        ] {
            let (mut by_range, mut one_by_one) = (Bits::default(), Bits::default());
            by_range.set_range(start, len);
            (start..start + len).for_each(|i| _ = one_by_one.set(i));
            for i in 0..start + len + 70 {
                assert_eq!(by_range.get(i), one_by_one.get(i), "{start}+{len}: bit {i}");
            }
            let mut mask = Bits::default();
            (0..500)
                .filter(|i| i % 3 == 0)
                .for_each(|i| _ = mask.set(i));
            let mut masked = Bits::default();
            masked.set_range_where(start, len, &mask);
            for i in 0..start + len + 70 {
                let want = i >= start && i < start + len && i % 3 == 0;
                assert_eq!(masked.get(i), want, "{start}+{len} masked: bit {i}");
            }
        }
        let mut b = Bits::default();
        b.set_range(u64::MAX - 1, 5); // overflows: nothing set, no panic
        assert_eq!(b.words(), 0);
    }

    #[test]
    fn a_masked_range_grows_no_further_than_its_mask() {
        let mut mask = Bits::default();
        mask.set(100);
        let mut b = Bits::default();
        b.set_range_where(1 << 50, u64::from(u32::MAX), &mask);
        b.set_range_where(90, 1 << 40, &mask);
        assert_eq!(b.words(), mask.words());
        assert!(b.get(100) && !b.get(99));
    }
}
