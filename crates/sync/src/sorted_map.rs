//! [`SortedMap`] and [`SortedSet`]: small ordered maps and sets kept as one vector sorted by
//! key, for the engines' bookkeeping (a listener's two target slots, the collections it pulled,
//! the target ids it retired; the outbox's senders waiting for a sign-in and units by sender, a
//! commit's update times by path, a unit's document paths, the commits in flight, the pulls
//! running) and the app's (pulls the listener asked for, token refreshes by person, the pages
//! prepared ahead of a first sync's stores, the pages a virtual list asked for).
//!
//! Why not `BTreeMap`: the app is a wasm download with a size budget, and every `BTreeMap<K, V>`
//! with a new `K` or `V` compiles its own copy of the B-tree's insert, remove and rebalancing
//! code, about 5 KB each. A sorted vector's insert and remove are a binary search and a
//! `Vec::insert`/`Vec::remove`, a few hundred bytes per type. They iterate in key order, as
//! `BTreeMap` does, so code using them reads the same; inserting is linear in the length, so they
//! are for maps of a few entries to a few hundred, not for a shop's catalogue.

use std::borrow::Borrow;
use std::fmt;

/// A map ordered by key, held as a vector of `(key, value)` sorted by key, keys unique.
#[derive(Clone, PartialEq, Eq)]
pub struct SortedMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for SortedMap<K, V> {
    fn default() -> Self {
        SortedMap {
            entries: Vec::new(),
        }
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for SortedMap<K, V> {
    /// As `BTreeMap` prints: `{key: value, …}`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_map()
            .entries(self.entries.iter().map(|(key, value)| (key, value)))
            .finish()
    }
}

impl<K: Ord, V> SortedMap<K, V> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Where `key` is (`Ok`) or would be inserted (`Err`).
    fn position<Q>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.entries
            .binary_search_by(|(existing, _)| existing.borrow().cmp(key))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let index = self.position(key).ok()?;
        Some(&self.entries[index].1)
    }

    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let index = self.position(key).ok()?;
        Some(&mut self.entries[index].1)
    }

    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.position(key).is_ok()
    }

    /// Sets `key` to `value`; the value it had, if any.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.position(&key) {
            Ok(index) => Some(std::mem::replace(&mut self.entries[index].1, value)),
            Err(index) => {
                self.entries.insert(index, (key, value));
                None
            }
        }
    }

    /// The value of `key`, inserted as `default()` when there is none.
    pub fn get_or_insert_with(&mut self, key: K, default: impl FnOnce() -> V) -> &mut V {
        let index = match self.position(&key) {
            Ok(index) => index,
            Err(index) => {
                self.entries.insert(index, (key, default()));
                index
            }
        };
        &mut self.entries[index].1
    }

    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let index = self.position(key).ok()?;
        Some(self.entries.remove(index).1)
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Removes and returns the entry of the lowest key, if any.
    pub fn pop_first(&mut self) -> Option<(K, V)> {
        if self.entries.is_empty() {
            None
        } else {
            Some(self.entries.remove(0))
        }
    }

    /// Keeps only the entries for which `keep` is true, in key order.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.entries.retain_mut(|(key, value)| keep(key, value));
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> + ExactSizeIterator {
        self.entries.iter().map(|(key, value)| (key, value))
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> + ExactSizeIterator {
        self.entries.iter().map(|(key, _)| key)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator {
        self.entries.iter().map(|(_, value)| value)
    }

    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut V> + ExactSizeIterator {
        self.entries.iter_mut().map(|(_, value)| value)
    }
}

impl<K: Ord, V, Q> std::ops::Index<&Q> for SortedMap<K, V>
where
    K: Borrow<Q>,
    Q: Ord + ?Sized,
{
    type Output = V;

    /// The value of `key`; panics when there is none, as `BTreeMap`'s index does.
    fn index(&self, key: &Q) -> &V {
        self.get(key).expect("no entry for the key")
    }
}

/// A set ordered by value, held as a sorted vector of unique values.
#[derive(Clone, PartialEq, Eq)]
pub struct SortedSet<T> {
    values: Vec<T>,
}

impl<T> Default for SortedSet<T> {
    fn default() -> Self {
        SortedSet { values: Vec::new() }
    }
}

impl<T: fmt::Debug> fmt::Debug for SortedSet<T> {
    /// As `BTreeSet` prints: `{value, …}`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_set().entries(self.values.iter()).finish()
    }
}

impl<T: Ord> SortedSet<T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn contains<Q>(&self, value: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.values
            .binary_search_by(|existing| existing.borrow().cmp(value))
            .is_ok()
    }

    /// Adds `value`; false when it was there already.
    pub fn insert(&mut self, value: T) -> bool {
        match self.values.binary_search(&value) {
            Ok(_) => false,
            Err(index) => {
                self.values.insert(index, value);
                true
            }
        }
    }

    /// Takes `value` out; false when it was not there.
    pub fn remove<Q>(&mut self, value: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        match self
            .values
            .binary_search_by(|existing| existing.borrow().cmp(value))
        {
            Ok(index) => {
                self.values.remove(index);
                true
            }
            Err(_) => false,
        }
    }

    pub fn clear(&mut self) {
        self.values.clear();
    }

    /// The values in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator {
        self.values.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// Applies the same operations to a `SortedMap` and a `BTreeMap` and checks that they
    /// answer alike and hold the same entries in the same order after each one.
    fn check_map_like_btree(operations: &[(bool, u8, u32)]) {
        let mut sorted = SortedMap::new();
        let mut btree = BTreeMap::new();
        for &(is_insert, key, value) in operations {
            if is_insert {
                assert_eq!(sorted.insert(key, value), btree.insert(key, value));
            } else {
                assert_eq!(sorted.remove(&key), btree.remove(&key));
            }
            assert_eq!(sorted.get(&key), btree.get(&key));
            assert_eq!(sorted.contains_key(&key), btree.contains_key(&key));
            assert_eq!(
                sorted.iter().collect::<Vec<_>>(),
                btree.iter().collect::<Vec<_>>()
            );
            assert_eq!(sorted.len(), btree.len());
            assert_eq!(format!("{sorted:?}"), format!("{btree:?}"));
        }
    }

    #[test]
    fn a_sorted_map_answers_as_a_btree_map_does() {
        let mut operations = Vec::new();
        let mut state = 7_u32;
        for _ in 0..2_000 {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let key = (state >> 16) as u8 % 40;
            operations.push((!state.is_multiple_of(3), key, state >> 8));
        }
        check_map_like_btree(&operations);
    }

    #[test]
    fn get_or_insert_with_inserts_once_and_keeps_the_order() {
        let mut map: SortedMap<String, u32> = SortedMap::new();
        *map.get_or_insert_with("b".into(), || 1) += 10;
        *map.get_or_insert_with("a".into(), || 2) += 10;
        *map.get_or_insert_with("b".into(), || 100) += 10;
        assert_eq!(
            map.iter()
                .map(|(k, v)| (k.as_str(), *v))
                .collect::<Vec<_>>(),
            [("a", 12), ("b", 21)]
        );
        assert_eq!(map["a"], 12);
        assert_eq!(map.keys().collect::<Vec<_>>(), ["a", "b"]);
        for value in map.values_mut() {
            *value = 0;
        }
        assert_eq!(map.values().sum::<u32>(), 0);
    }

    #[test]
    fn pop_first_and_retain_answer_as_a_btree_map_does() {
        let pairs = [(5_u8, 50_u32), (1, 10), (9, 90), (3, 30), (7, 70)];
        let mut sorted = SortedMap::new();
        let mut btree = BTreeMap::new();
        for (key, value) in pairs {
            sorted.insert(key, value);
            btree.insert(key, value);
        }
        assert_eq!(sorted.pop_first(), btree.pop_first());
        sorted.retain(|key, value| {
            *value += 1;
            *key != 7
        });
        btree.retain(|key, value| {
            *value += 1;
            *key != 7
        });
        assert_eq!(
            sorted.iter().collect::<Vec<_>>(),
            btree.iter().collect::<Vec<_>>()
        );
        while let Some(first) = btree.pop_first() {
            assert_eq!(sorted.pop_first(), Some(first));
        }
        assert_eq!(sorted.pop_first(), None);
    }

    #[test]
    fn a_sorted_set_answers_as_a_btree_set_does() {
        let mut sorted = SortedSet::new();
        let mut btree = BTreeSet::new();
        for value in [5, 3, 9, 3, 1, 5, 7] {
            assert_eq!(sorted.insert(value), btree.insert(value));
        }
        for value in [3, 4, 9] {
            assert_eq!(sorted.remove(&value), btree.remove(&value));
        }
        assert_eq!(
            sorted.iter().collect::<Vec<_>>(),
            btree.iter().collect::<Vec<_>>()
        );
        assert!(sorted.contains(&7) && !sorted.contains(&9));
        assert_eq!(format!("{sorted:?}"), format!("{btree:?}"));
        sorted.clear();
        assert!(sorted.is_empty());
    }
}
