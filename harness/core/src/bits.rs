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
}
