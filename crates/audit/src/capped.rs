//! Small sets with a hard cap, deterministic under any merge order.
//!
//! Evidence lists (aliases, user agents, source addresses) must stay bounded
//! whatever the input, and must come out the same whatever the thread count.
//! Keeping the smallest `cap` keys and remembering that more existed gives both.

use std::collections::BTreeMap;

/// A map from key to count that keeps at most `cap` smallest keys.
#[derive(Clone, Debug)]
pub struct CappedCounts<K: Ord> {
    cap: usize,
    entries: BTreeMap<K, u64>,
    /// Some keys were dropped to respect the cap.
    pub truncated: bool,
}

impl<K: Ord + Clone> CappedCounts<K> {
    pub fn new(cap: usize) -> Self {
        CappedCounts { cap, entries: BTreeMap::new(), truncated: false }
    }

    /// Add `n` to `key`'s count. `make` builds the owned key only when it is new,
    /// so a known key costs no allocation.
    pub fn add_with<Q>(&mut self, key: &Q, n: u64, make: impl FnOnce() -> K)
    where
        K: std::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        if let Some(count) = self.entries.get_mut(key) {
            *count += n;
            return;
        }
        self.insert_new(make(), n);
    }

    fn insert_new(&mut self, key: K, n: u64) {
        if self.entries.len() >= self.cap {
            self.truncated = true;
            // Keep the smallest keys so that the result does not depend on order.
            let largest = self.entries.keys().next_back().cloned();
            match largest {
                Some(largest) if key < largest => {
                    self.entries.remove(&largest);
                }
                _ => return,
            }
        }
        self.entries.insert(key, n);
    }

    pub fn merge(&mut self, other: CappedCounts<K>) {
        self.truncated |= other.truncated;
        for (key, n) in other.entries {
            if let Some(count) = self.entries.get_mut(&key) {
                *count += n;
            } else {
                self.insert_new(key, n);
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, u64)> {
        self.entries.iter().map(|(k, n)| (k, *n))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(keys: &[u32]) -> CappedCounts<u32> {
        let mut set = CappedCounts::new(3);
        for k in keys {
            set.add_with(k, 1, || *k);
        }
        set
    }

    #[test]
    fn keeps_smallest_keys_in_any_order() {
        let a = fill(&[5, 1, 4, 2, 3, 1]);
        let b = fill(&[3, 1, 2, 5, 4, 1]);
        let keys = |s: &CappedCounts<u32>| s.iter().map(|(k, n)| (*k, n)).collect::<Vec<_>>();
        assert_eq!(keys(&a), vec![(1, 2), (2, 1), (3, 1)]);
        assert_eq!(keys(&a), keys(&b));
        assert!(a.truncated && b.truncated);
    }

    #[test]
    fn merge_matches_sequential() {
        let mut left = fill(&[9, 8]);
        left.merge(fill(&[1, 8, 7]));
        let whole = fill(&[9, 8, 1, 8, 7]);
        let keys = |s: &CappedCounts<u32>| s.iter().map(|(k, n)| (*k, n)).collect::<Vec<_>>();
        assert_eq!(keys(&left), keys(&whole));
        assert!(left.truncated);
    }
}
