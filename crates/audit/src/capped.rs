//! Small sets with a hard cap, deterministic under any merge order.
//!
//! Evidence lists (aliases, user agents, source addresses) must stay bounded
//! whatever the input, and must come out the same whatever the thread count.
//! Keeping the smallest `cap` keys and remembering that more existed gives both.

use std::cmp::Ordering;

/// A map from key to count that keeps at most `cap` smallest keys.
#[derive(Clone, Debug)]
pub struct CappedCounts<K: Ord> {
    cap: usize,
    /// Sorted by key, without repeats: most of these sets hold a few keys,
    /// which a sorted vector finds with fewer steps than a tree.
    entries: Vec<(K, u64)>,
    /// Where the key added last is, tried first: a device sends one user
    /// agent, from one address, under one alias, line after line.
    last: usize,
    /// Some keys were dropped to respect the cap.
    pub truncated: bool,
}

impl<K: Ord + Clone> CappedCounts<K> {
    pub fn new(cap: usize) -> Self {
        CappedCounts { cap, entries: Vec::new(), last: 0, truncated: false }
    }

    /// Add `n` to `key`'s count. `make` builds the owned key only when it is new,
    /// so a known key costs no allocation.
    pub fn add_with<Q>(&mut self, key: &Q, n: u64, make: impl FnOnce() -> K)
    where
        K: std::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        if let Some((k, count)) = self.entries.get_mut(self.last) {
            if (*k).borrow() == key {
                *count += n;
                return;
            }
        }
        match self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key)) {
            Ok(at) => {
                self.entries[at].1 += n;
                self.last = at;
            }
            Err(at) => self.insert_at(at, make(), n),
        }
    }

    /// Insert a new key at `at`, its place in order; when full, the largest
    /// key makes room, or the new one is dropped if it is the largest.
    fn insert_at(&mut self, at: usize, key: K, n: u64) {
        if self.entries.len() >= self.cap {
            self.truncated = true;
            if at >= self.entries.len() {
                return;
            }
            self.entries.pop();
        }
        self.entries.insert(at, (key, n));
        self.last = at;
    }

    /// Combine `other` into this set: the counts of a key in both add up,
    /// and the smallest `cap` keys of the two are kept (one pass over both,
    /// in order).
    pub fn merge(&mut self, other: CappedCounts<K>) {
        self.truncated |= other.truncated;
        if other.entries.is_empty() {
            return;
        }
        let mine = std::mem::take(&mut self.entries);
        let mut merged = Vec::with_capacity((mine.len() + other.entries.len()).min(self.cap));
        let (mut a, mut b) = (mine.into_iter().peekable(), other.entries.into_iter().peekable());
        loop {
            let order = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => x.0.cmp(&y.0),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => break,
            };
            let next = match order {
                Ordering::Less => a.next(),
                Ordering::Greater => b.next(),
                Ordering::Equal => a.next().zip(b.next()).map(|((key, n), (_, m))| (key, n + m)),
            };
            let Some(next) = next else { break };
            if merged.len() == self.cap {
                self.truncated = true;
                break;
            }
            merged.push(next);
        }
        self.entries = merged;
        self.last = 0;
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
    fn random_adds_and_merges_keep_the_smallest_keys_with_their_counts() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..2_000 {
            let cap = (next() % 6) as usize;
            let keys: Vec<u32> = (0..next() % 24).map(|_| (next() % 12) as u32).collect();
            let cut = (next() as usize) % (keys.len() + 1);
            let add = |set: &mut CappedCounts<u32>, keys: &[u32]| {
                for k in keys {
                    set.add_with(k, 1, || *k);
                }
            };
            let (mut whole, mut left, mut right) =
                (CappedCounts::new(cap), CappedCounts::new(cap), CappedCounts::new(cap));
            add(&mut whole, &keys);
            add(&mut left, &keys[..cut]);
            add(&mut right, &keys[cut..]);
            left.merge(right);
            // The reference: every key counted, then the smallest `cap` kept.
            let mut all = std::collections::BTreeMap::new();
            for k in &keys {
                *all.entry(*k).or_insert(0u64) += 1;
            }
            let expected: Vec<(u32, u64)> = all.iter().take(cap).map(|(k, n)| (*k, *n)).collect();
            let got = |s: &CappedCounts<u32>| s.iter().map(|(k, n)| (*k, n)).collect::<Vec<_>>();
            assert_eq!(got(&whole), expected, "{keys:?} cap {cap}");
            assert_eq!(got(&left), expected, "{keys:?} cap {cap} cut {cut}");
            assert_eq!(whole.truncated, all.len() > cap);
            assert_eq!(left.truncated, all.len() > cap);
        }
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
