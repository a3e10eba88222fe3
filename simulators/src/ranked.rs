//! An ordered set that can also start iterating at the k-th element
//! cheaply, for offset pagination (`?page=500&page_size=100`) over large
//! listings without walking the 49,900 elements before the page.
//!
//! The elements are kept in sorted chunks of at most `2 * CHUNK` elements:
//! inserting or removing costs a binary search over the chunks plus a shift
//! inside one chunk, and finding rank `k` walks the chunk lengths only
//! (`n / CHUNK` steps, about 200 for 100,000 elements), not the elements.

/// Target chunk length; a chunk is split in two once it exceeds twice this.
const CHUNK: usize = 512;

/// A sorted set of unique keys with rank-based iteration.
#[derive(Debug)]
pub struct RankedSet<K> {
    /// Sorted, disjoint, in ascending order, never empty.
    chunks: Vec<Vec<K>>,
    len: usize,
}

impl<K> Default for RankedSet<K> {
    fn default() -> Self {
        RankedSet {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<K: Ord> RankedSet<K> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The chunk `key` belongs in: the first whose last element is not
    /// below `key`, else the last chunk.
    fn chunk_for(&self, key: &K) -> usize {
        let first_not_below = self
            .chunks
            .partition_point(|chunk| chunk.last().is_some_and(|last| last < key));
        first_not_below.min(self.chunks.len().saturating_sub(1))
    }

    /// Adds `key`; `false` if it was already there.
    pub fn insert(&mut self, key: K) -> bool {
        if self.chunks.is_empty() {
            self.chunks.push(vec![key]);
            self.len = 1;
            return true;
        }
        let index = self.chunk_for(&key);
        let chunk = &mut self.chunks[index];
        let Err(position) = chunk.binary_search(&key) else {
            return false;
        };
        chunk.insert(position, key);
        self.len += 1;
        if chunk.len() > 2 * CHUNK {
            let upper = chunk.split_off(CHUNK);
            self.chunks.insert(index + 1, upper);
        }
        true
    }

    /// Removes `key`; `false` if it was not there.
    pub fn remove(&mut self, key: &K) -> bool {
        if self.chunks.is_empty() {
            return false;
        }
        let index = self.chunk_for(key);
        let chunk = &mut self.chunks[index];
        let Ok(position) = chunk.binary_search(key) else {
            return false;
        };
        chunk.remove(position);
        self.len -= 1;
        if chunk.is_empty() {
            self.chunks.remove(index);
        }
        true
    }

    /// The keys in order, starting with the one of rank `rank` (0-based);
    /// empty when `rank >= len`.
    pub fn iter_from(&self, rank: usize) -> impl Iterator<Item = &K> {
        let mut skip = rank;
        let mut first = self.chunks.len();
        for (index, chunk) in self.chunks.iter().enumerate() {
            if skip < chunk.len() {
                first = index;
                break;
            }
            skip -= chunk.len();
        }
        let head = self
            .chunks
            .get(first)
            .map(|chunk| &chunk[skip..])
            .into_iter()
            .flatten();
        let tail = self.chunks.iter().skip(first + 1).flatten();
        head.chain(tail)
    }

    /// Every key, in order.
    pub fn iter(&self) -> impl Iterator<Item = &K> {
        self.iter_from(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// A deterministic shuffle of `0..n` (multiplication by a unit mod n).
    fn shuffled(n: u64) -> impl Iterator<Item = u64> {
        (0..n).map(move |i| (i * 7_919) % n)
    }

    #[test]
    fn iterates_in_order_from_any_rank_like_a_btreeset() {
        let mut set = RankedSet::default();
        let mut model = BTreeSet::new();
        for key in shuffled(5_003) {
            assert_eq!(set.insert(key), model.insert(key));
        }
        assert!(!set.insert(17), "duplicates are refused");
        for key in shuffled(5_003).filter(|k| k % 3 == 0) {
            assert_eq!(set.remove(&key), model.remove(&key));
        }
        assert!(!set.remove(&3), "already gone");
        assert!(set.chunks.len() > 2, "the test spans several chunks");
        assert_eq!(set.len(), model.len());
        for rank in [0, 1, 511, 512, 1_023, 1_024, 2_000, model.len() - 1] {
            let got: Vec<u64> = set.iter_from(rank).take(5).copied().collect();
            let want: Vec<u64> = model.iter().skip(rank).take(5).copied().collect();
            assert_eq!(got, want, "rank {rank}");
        }
        assert_eq!(set.iter_from(model.len()).count(), 0);
        assert_eq!(set.iter_from(usize::MAX).count(), 0);
        assert!(set.iter().copied().eq(model.iter().copied()));
    }

    #[test]
    fn emptied_sets_stay_usable() {
        let mut set = RankedSet::default();
        for key in 0..2_000 {
            set.insert(key);
        }
        for key in 0..2_000 {
            assert!(set.remove(&key));
        }
        assert!(set.is_empty());
        assert_eq!(set.iter().count(), 0);
        assert!(set.insert(5));
        assert_eq!(set.iter().copied().collect::<Vec<_>>(), [5]);
    }
}
