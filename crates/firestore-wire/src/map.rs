//! Building a `BTreeMap` pair by pair, for the size of the app's wasm.
//!
//! `BTreeMap::from([...])` and `collect()` into a `BTreeMap` first sort the pairs with the
//! standard library's stable sort, and every key and value type instantiates that sort again
//! (about 3 KB of the release wasm each). Inserting the pairs one by one reuses
//! `BTreeMap::insert`, which every map's other uses instantiate anyway. The map is the same: a
//! later pair with a key already in it replaces the earlier one, as with `collect`.

use std::collections::BTreeMap;

/// The map of `pairs`, inserted in order (a later pair with the same key wins).
pub fn map_by_insertion<K: Ord, V>(pairs: impl IntoIterator<Item = (K, V)>) -> BTreeMap<K, V> {
    let mut map = BTreeMap::new();
    map.extend(pairs);
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_is_the_one_collect_builds() {
        let pairs = [("b", 1), ("a", 2), ("c", 3), ("a", 4), ("b", 5)];
        let collected: BTreeMap<&str, i32> = pairs.into_iter().collect();
        assert_eq!(map_by_insertion(pairs), collected);
        assert_eq!(map_by_insertion(pairs), BTreeMap::from(pairs));
        assert_eq!(map_by_insertion(pairs)["a"], 4);
        assert!(map_by_insertion(Vec::<(u8, u8)>::new()).is_empty());
    }
}
