//! An order-preserving byte encoding of Firestore values, for the `field_index` table.
//!
//! For two values `a` and `b` of the indexed types, `sort_key(a).cmp(&sort_key(b))` (bytewise,
//! as SQLite compares BLOBs) equals `a.firestore_cmp(&b)`. Indexed: booleans, numbers,
//! timestamps, strings and bytes — the operands of the range and equality filters the app's
//! pulls use. Null, NaN-free references, geo points, arrays and maps are not indexed: a query
//! filtering on them scans its collection instead.
//!
//! Layout: one byte of Firestore's type rank, then
//! - booleans: 0 or 1;
//! - numbers: the value rounded to a double, as 8 bytes that sort like the double (NaN below
//!   everything), then the exact difference between the value and that double as an
//!   offset-binary i64 (0 for doubles), so integers beyond 2^53 still sort exactly, and an
//!   integer equal to a double gets the same key (`1 == 1.0` in Firestore);
//! - timestamps: seconds (offset-binary) and nanoseconds, big-endian;
//! - strings and bytes: the raw bytes (UTF-8 byte order is Firestore's string order). They are
//!   the last component, so a prefix sorts first, as it should.

use std::collections::BTreeMap;

use counterbook_firestore_wire::Value;

use crate::field_path::FieldPath;

/// How to read a query's candidates from the `field_index` table instead of scanning: the
/// documents whose value at `field_path` has a key `k` with `lower <= k < class_end` and, if
/// set, `k <= upper`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexPlan {
    pub field_path: String,
    pub lower: Vec<u8>,
    pub upper: Option<Vec<u8>>,
    /// The first key past the filtered value's type class.
    pub class_end: Vec<u8>,
    /// Read the range from the highest key down.
    pub descending: bool,
    /// The index order (key, then document id) is the query's whole order, so evaluation may
    /// stop as soon as `offset + limit` documents passed.
    pub in_query_order: bool,
}

/// The encoded key of an indexable value, `None` for the types that are not indexed.
pub fn sort_key(value: &Value) -> Option<Vec<u8>> {
    let mut key = vec![value.type_rank()];
    match value {
        Value::Boolean(flag) => key.push(u8::from(*flag)),
        Value::Integer(integer) => {
            let rounded = *integer as f64;
            // `rounded` is an integer-valued double within ±2^63, so the cast is exact and the
            // difference is small (|d| ≤ 2^10).
            let difference = i128::from(*integer) - rounded as i128;
            key.extend_from_slice(&double_bits_in_order(rounded));
            key.extend_from_slice(&offset_binary(difference as i64));
        }
        Value::Double(double) => {
            key.extend_from_slice(&double_bits_in_order(*double));
            key.extend_from_slice(&offset_binary(0));
        }
        Value::Timestamp(timestamp) => {
            key.extend_from_slice(&offset_binary(timestamp.seconds));
            key.extend_from_slice(&timestamp.nanos.to_be_bytes());
        }
        Value::String(text) => key.extend_from_slice(text.as_bytes()),
        Value::Bytes(bytes) => key.extend_from_slice(bytes),
        Value::Null
        | Value::Reference(_)
        | Value::GeoPoint(_)
        | Value::Array(_)
        | Value::Map(_) => return None,
    }
    Some(key)
}

/// The smallest key of the value's type class and the smallest key of the next class: every
/// key of the class lies in `[lower, upper)`.
pub fn type_class_bounds(value: &Value) -> (Vec<u8>, Vec<u8>) {
    let rank = value.type_rank();
    (vec![rank], vec![rank + 1])
}

fn double_bits_in_order(double: f64) -> [u8; 8] {
    if double.is_nan() {
        return [0; 8];
    }
    // -0.0 and 0.0 are equal in Firestore, so they share a key.
    let double = if double == 0.0 { 0.0 } else { double };
    let bits = double.to_bits();
    let ordered = if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    };
    ordered.to_be_bytes()
}

fn offset_binary(signed: i64) -> [u8; 8] {
    ((signed as u64) ^ (1 << 63)).to_be_bytes()
}

/// Every (canonical field path, key) pair a document contributes to the index: each indexable
/// value at every path through its maps (not into arrays, nor into vectors).
pub fn index_entries(fields: &BTreeMap<String, Value>) -> Vec<(String, Vec<u8>)> {
    let mut entries = Vec::new();
    collect_entries(fields, &mut Vec::new(), &mut entries);
    entries
}

fn collect_entries(
    fields: &BTreeMap<String, Value>,
    prefix: &mut Vec<String>,
    entries: &mut Vec<(String, Vec<u8>)>,
) {
    for (name, value) in fields {
        prefix.push(name.clone());
        match value {
            // A vector is one value to queries, not a map to look into; it is not indexed.
            Value::Map(_) if value.vector_elements().is_some() => {}
            Value::Map(inner) => collect_entries(inner, prefix, entries),
            other => {
                if let Some(key) = sort_key(other) {
                    entries.push((FieldPath::from_segments(prefix.clone()).to_string(), key));
                }
            }
        }
        prefix.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use counterbook_firestore_wire::Timestamp;
    use std::cmp::Ordering;

    fn check_order_agrees(values: &[Value]) {
        for a in values {
            for b in values {
                let by_key = sort_key(a).unwrap().cmp(&sort_key(b).unwrap());
                assert_eq!(by_key, a.firestore_cmp(b), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn keys_sort_like_firestore_values() {
        let big = 1_i64 << 53;
        check_order_agrees(&[
            Value::Boolean(false),
            Value::Boolean(true),
            Value::Double(f64::NAN),
            Value::Double(f64::NEG_INFINITY),
            Value::Integer(i64::MIN),
            Value::Double(-1.5),
            Value::Integer(-1),
            Value::Double(-0.0),
            Value::Integer(0),
            Value::Double(0.5),
            Value::Integer(1),
            Value::Double(1.0),
            Value::Integer(big),
            Value::Double(big as f64),
            Value::Integer(big + 1),
            Value::Integer(i64::MAX),
            Value::Double(9.3e18),
            Value::Double(f64::INFINITY),
            Value::Timestamp(Timestamp::new(-5, 10)),
            Value::Timestamp(Timestamp::new(0, 0)),
            Value::Timestamp(Timestamp::new(0, 1)),
            Value::Timestamp(Timestamp::new(1_800_000_000, 0)),
            Value::String(String::new()),
            Value::String("a".into()),
            Value::String("ab".into()),
            Value::String("b".into()),
            Value::String("é".into()),
            Value::Bytes(vec![]),
            Value::Bytes(vec![0]),
            Value::Bytes(vec![0, 0]),
            Value::Bytes(vec![1]),
        ]);
        assert_eq!(
            sort_key(&Value::Integer(3)).cmp(&sort_key(&Value::Double(3.0))),
            Ordering::Equal
        );
    }

    #[test]
    fn entries_cover_nested_map_paths_but_not_arrays_or_unindexed_types() {
        let fields: BTreeMap<String, Value> = serde_json::from_value(serde_json::json!({
            "updatedAt": {"timestampValue": "2026-01-01T00:00:00Z"},
            "totals": {"mapValue": {"fields": {"net": {"integerValue": "5"}}}},
            "odd key": {"stringValue": "x"},
            "tags": {"arrayValue": {"values": [{"stringValue": "t"}]}},
            "gone": {"nullValue": null}
        }))
        .unwrap();
        let paths: Vec<String> = index_entries(&fields)
            .into_iter()
            .map(|(path, _)| path)
            .collect();
        assert_eq!(paths, ["`odd key`", "totals.net", "updatedAt"]);
    }
}
