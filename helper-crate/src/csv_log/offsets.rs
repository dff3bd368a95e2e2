//! Which offsets of a partition the CSV log holds, kept as runs.
//!
//! A consumer writes a partition's messages in offset order, so the offsets a
//! log holds are a few runs of consecutive numbers: a million rows of one
//! partition are one run. Kept as runs, the check that keeps a row from being
//! written twice is a binary search over a handful of ranges, and the index of
//! a large log takes a few bytes instead of a hash set entry per row.

/// A set of offsets as sorted, disjoint, non-touching runs `[first, last]`
/// (inclusive: an offset a hand-edited file puts at `i64::MAX` fits too).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OffsetRuns(Vec<(i64, i64)>);

impl OffsetRuns {
    /// Whether `offset` is in the set.
    pub fn contains(&self, offset: i64) -> bool {
        // The last run starting at or before `offset` is the only one that can hold it.
        let after = self.0.partition_point(|&(first, _)| first <= offset);
        after > 0 && offset <= self.0[after - 1].1
    }

    /// Adds `offset`; returns whether it was not there yet.
    pub fn insert(&mut self, offset: i64) -> bool {
        let follows = |last: i64| last.checked_add(1) == Some(offset);
        // The usual case: the next offset after the newest run.
        if let Some(newest) = self.0.last_mut() {
            if follows(newest.1) {
                newest.1 = offset;
                return true;
            }
        }
        let after = self.0.partition_point(|&(first, _)| first <= offset);
        if after > 0 && offset <= self.0[after - 1].1 {
            return false;
        }
        let extends_previous = after > 0 && follows(self.0[after - 1].1);
        let starts_next = after < self.0.len() && offset.checked_add(1) == Some(self.0[after].0);
        match (extends_previous, starts_next) {
            (true, true) => {
                self.0[after - 1].1 = self.0[after].1;
                self.0.remove(after);
            }
            (true, false) => self.0[after - 1].1 = offset,
            (false, true) => self.0[after].0 = offset,
            (false, false) => self.0.insert(after, (offset, offset)),
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn runs_agree_with_a_plain_set_in_any_order() {
        // A small linear congruential sequence: offsets in a scrambled order,
        // with repeats, so that every merge case occurs.
        let mut state: u64 = 7;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % 400) as i64
        };
        let mut runs = OffsetRuns::default();
        let mut plain = BTreeSet::new();
        for _ in 0..2000 {
            let offset = next();
            assert_eq!(runs.insert(offset), plain.insert(offset), "insert {offset}");
            for probe in [offset - 1, offset, offset + 1] {
                assert_eq!(
                    runs.contains(probe),
                    plain.contains(&probe),
                    "probe {probe}"
                );
            }
        }
        assert!((0..400).all(|o| runs.contains(o) == plain.contains(&o)));
        // Sorted, disjoint and not touching: every gap is at least one offset.
        assert!(runs.0.windows(2).all(|w| w[0].1 + 1 < w[1].0));
        assert!(runs.0.iter().all(|(first, last)| first <= last));
    }

    #[test]
    fn consecutive_offsets_make_one_run() {
        let mut runs = OffsetRuns::default();
        assert!((0..100_000).all(|offset| runs.insert(offset)));
        assert_eq!(runs.0, vec![(0, 99_999)]);
        assert!(!runs.insert(99_999) && !runs.insert(0));
        assert!(runs.contains(0) && runs.contains(99_999) && !runs.contains(100_000));
        assert!(!runs.contains(-1));
        // The ends of the number line: no overflow.
        assert!(runs.insert(i64::MAX) && runs.insert(i64::MAX - 1) && runs.insert(i64::MIN));
        assert!(runs.contains(i64::MAX) && runs.contains(i64::MIN) && !runs.contains(i64::MAX - 2));
        assert_eq!(runs.0.len(), 3);
    }
}
