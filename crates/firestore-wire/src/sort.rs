//! One stable sort for the whole app, for the size of its wasm.
//!
//! Every `slice::sort_by` (and `sort_by_key`, `sort`) instantiates the standard library's
//! stable sort again for its element type and comparator, about 3.5 KB of the release wasm each.
//! [`sort_by`] sorts the positions `0..len` instead, with the comparator behind a `&dyn`, so the
//! standard sort is compiled once, for `usize`; each caller only adds the small loop that moves
//! its elements into the sorted order. The result is the one `slice::sort_by` gives: stable
//! (equal elements keep their order, since equal positions are never swapped by a stable sort
//! that starts from `0..len`).

use std::cmp::Ordering;

/// Sorts `items` by `compare`, stably, exactly as `items.sort_by(compare)` would.
pub fn sort_by<T>(items: &mut [T], compare: impl Fn(&T, &T) -> Ordering) {
    if items.len() < 2 {
        return;
    }
    let mut order = sorted_positions(items.len(), &|a, b| compare(&items[a], &items[b]));
    // `order[i]` is the position whose element belongs at `i`: follow each cycle of that
    // permutation, swapping as we go, and mark each position placed.
    for start in 0..order.len() {
        let mut current = start;
        loop {
            let next = order[current];
            order[current] = current;
            if next == start || next == current {
                break;
            }
            items.swap(current, next);
            current = next;
        }
    }
}

/// The positions `0..len` sorted by `compare`, stably; the one instance of the standard sort.
#[inline(never)]
fn sorted_positions(len: usize, compare: &dyn Fn(usize, usize) -> Ordering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    order.sort_by(|&a, &b| compare(a, b));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sorts `items` by their first field both ways and checks the results are the same.
    fn check(items: &[(u8, u32)]) {
        let mut ours = items.to_vec();
        sort_by(&mut ours, |a, b| a.0.cmp(&b.0));
        let mut standard = items.to_vec();
        standard.sort_by_key(|item| item.0);
        assert_eq!(ours, standard, "sorting {items:?}");
    }

    #[test]
    fn the_order_is_the_standard_stable_sort() {
        check(&[]);
        check(&[(1, 0)]);
        check(&[(2, 0), (1, 1)]);
        check(&[(3, 0), (1, 1), (2, 2)]);
        check(&[(1, 0), (1, 1), (0, 2), (1, 3), (0, 4)]);
        // Many sizes, keys with many ties, from a small deterministic generator.
        let mut seed = 0x2545_f491_u32;
        for len in 0..200 {
            let items: Vec<(u8, u32)> = (0..len)
                .map(|index| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    ((seed % 7) as u8, index)
                })
                .collect();
            check(&items);
        }
    }

    #[test]
    fn sorted_input_and_reversed_input() {
        let ascending: Vec<(u8, u32)> = (0..50).map(|i| (i as u8, i)).collect();
        check(&ascending);
        let descending: Vec<(u8, u32)> = (0..50).rev().map(|i| (i as u8, i)).collect();
        check(&descending);
    }
}
