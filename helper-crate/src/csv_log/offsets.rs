//! Which offsets of a partition the CSV log holds, kept as runs.
//!
//! A consumer writes a partition's messages in offset order, so the offsets a
//! log holds are a few runs of consecutive numbers: a million rows of one
//! partition are one run. Kept as runs, the check that keeps a row from being
//! written twice is a binary search over a handful of ranges, and the index of
//! a large log takes a few bytes instead of a hash set entry per row.

/// A set of offsets as sorted, disjoint, non-touching ranges `[start, end)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OffsetRuns(Vec<(i64, i64)>);

impl OffsetRuns {
    /// Whether `offset` is in the set.
    pub fn contains(&self, offset: i64) -> bool {
        // The last run starting at or before `offset` is the only one that can hold it.
        let after = self.0.partition_point(|&(start, _)| start <= offset);
        after > 0 && offset < self.0[after - 1].1
    }

    /// Adds `offset`; returns whether it was not there yet.
    pub fn insert(&mut self, offset: i64) -> bool {
        // The usual case: the next offset after the newest run.
        if let Some(last) = self.0.last_mut() {
            if last.1 == offset {
                last.1 += 1;
                return true;
            }
        }
        let after = self.0.partition_point(|&(start, _)| start <= offset);
        if after > 0 && offset < self.0[after - 1].1 {
            return false;
        }
        let extends_previous = after > 0 && self.0[after - 1].1 == offset;
        let starts_next = after < self.0.len() && self.0[after].0 == offset + 1;
        match (extends_previous, starts_next) {
            (true, true) => {
                self.0[after - 1].1 = self.0[after].1;
                self.0.remove(after);
            }
            (true, false) => self.0[after - 1].1 += 1,
            (false, true) => self.0[after].0 = offset,
            (false, false) => self.0.insert(after, (offset, offset + 1)),
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
        assert!(runs.0.windows(2).all(|w| w[0].1 < w[1].0));
        assert!(runs.0.iter().all(|(start, end)| start < end));
    }

    #[test]
    fn consecutive_offsets_make_one_run() {
        let mut runs = OffsetRuns::default();
        assert!((0..100_000).all(|offset| runs.insert(offset)));
        assert_eq!(runs.0, vec![(0, 100_000)]);
        assert!(!runs.insert(99_999) && !runs.insert(0));
        assert!(runs.contains(0) && runs.contains(99_999) && !runs.contains(100_000));
        assert!(!runs.contains(-1));
    }
}
