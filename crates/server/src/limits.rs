//! Firestore's limits on what a write may store, checked before anything is written.
//!
//! The numbers are Cloud Firestore's documented limits, and the boundaries were measured
//! against Google's emulator:
//! - a document is at most 1 MiB (1,048,576 bytes), counted as Firestore documents it
//!   (`document_size_bytes`): the name's size (each path segment's UTF-8 bytes + 1, plus 16),
//!   plus every field's name (UTF-8 bytes + 1) and value, plus 32. Values: a string is its UTF-8
//!   bytes + 1; bytes their length; null and booleans 1; integers, doubles and timestamps 8; a
//!   geo point 16; a reference its name's size; an array the sum of its elements; a map the sum
//!   of its keys (bytes + 1) and values. On the emulator a document with 1,000,000 + 48,516
//!   characters in two one-letter fields of `c/big` is the largest that fits: exactly 1 MiB by
//!   this count;
//! - a single string or bytes value is at most 1,048,487 bytes;
//! - a value nests at most 20 maps or arrays, and an array never holds an array directly;
//! - field names are not empty and never `__.*__` (reserved), except in a vector value: a map
//!   `{__type__: "__vector__", value: [doubles]}` (the SDKs' `vector()`), at least one element,
//!   no NaN, never directly in an array; another map holding `__type__` is refused;
//! - a commit holds at most 500 writes (the emulator accepts more; Cloud Firestore's documented
//!   limit is what the app must live with, so the server enforces it);
//! - a document id is at most 1,500 bytes and a name at most 6 KiB (`DocumentName::parse`);
//! - a document has at most 40,000 index entries (Cloud Firestore's documented limit; the
//!   emulator does not enforce it: it stores a 60,000-field document). They are counted as
//!   Firestore's automatic single-field indexes make them: every field, and every field of a
//!   map at any depth, the map itself included, has an ascending and a descending entry; an
//!   array has those two plus one array-contains entry per distinct element. Past the limit
//!   the write is refused as Cloud Firestore refuses it, 400 `INVALID_ARGUMENT` `too many index
//!   entries for entity /{path}`, before anything is indexed.

use std::collections::BTreeMap;

use counterbook_firestore_wire::{
    DocumentName, Value, VECTOR_TYPE_KEY, VECTOR_TYPE_NAME, VECTOR_VALUE_KEY,
};

use crate::error::ServerError;
use crate::field_path::is_reserved_name;

/// The largest document Firestore stores, in bytes as `document_size_bytes` counts them.
pub const MAX_DOCUMENT_BYTES: usize = 1_048_576;
/// The longest single string or bytes value, in bytes.
pub const MAX_VALUE_BYTES: usize = 1_048_487;
/// How many maps and arrays a value may nest.
pub const MAX_NESTING_DEPTH: usize = 20;
/// The most writes one commit may carry.
pub const MAX_WRITES_PER_COMMIT: usize = 500;

/// The most index entries a document may have.
pub const MAX_INDEX_ENTRIES_PER_DOCUMENT: usize = 40_000;

/// How many single-field index entries Firestore makes for these fields (module doc). Stops
/// counting once past `MAX_INDEX_ENTRIES_PER_DOCUMENT`.
pub fn index_entry_count(fields: &BTreeMap<String, Value>) -> usize {
    let mut count = 0;
    for value in fields.values() {
        count += value_index_entries(value);
        if count > MAX_INDEX_ENTRIES_PER_DOCUMENT {
            break;
        }
    }
    count
}

fn value_index_entries(value: &Value) -> usize {
    match value {
        Value::Map(fields) => 2 + index_entry_count(fields),
        Value::Array(values) => {
            // Elements compared by their JSON form: linear in the array's size.
            let distinct: std::collections::HashSet<String> = values
                .iter()
                .map(|element| serde_json::to_string(element).unwrap_or_default())
                .collect();
            2 + distinct.len()
        }
        _ => 2,
    }
}

/// Refuses a document (as a write would leave it) with more than 40,000 index entries.
pub fn check_index_entries(
    name: &DocumentName,
    fields: &BTreeMap<String, Value>,
) -> Result<(), ServerError> {
    if index_entry_count(fields) > MAX_INDEX_ENTRIES_PER_DOCUMENT {
        return Err(ServerError::InvalidArgument(format!(
            "too many index entries for entity /{}",
            name.relative_path()
        )));
    }
    Ok(())
}

/// Checks the fields a client sends: names, nesting, arrays in arrays, value lengths.
pub fn validate_client_fields(fields: &BTreeMap<String, Value>) -> Result<(), ServerError> {
    for (name, value) in fields {
        if name.is_empty() {
            return Err(ServerError::InvalidArgument(
                "The property.name is the empty string.".into(),
            ));
        }
        if is_reserved_name(name) {
            return Err(ServerError::InvalidArgument(format!(
                "field name {name} is reserved"
            )));
        }
        validate_value(name, value, 0, false)?;
    }
    Ok(())
}

fn validate_value(
    top_level_name: &str,
    value: &Value,
    depth: usize,
    inside_array: bool,
) -> Result<(), ServerError> {
    match value {
        Value::String(text) if text.len() > MAX_VALUE_BYTES => Err(value_too_long(top_level_name)),
        Value::Bytes(bytes) if bytes.len() > MAX_VALUE_BYTES => Err(value_too_long(top_level_name)),
        Value::Array(_) if inside_array => Err(ServerError::InvalidArgument(
            "Cannot convert an array value in an array value.".into(),
        )),
        Value::Array(_) | Value::Map(_) if depth >= MAX_NESTING_DEPTH => {
            Err(ServerError::InvalidArgument(format!(
                "Property {top_level_name} contains an invalid nested entity."
            )))
        }
        Value::Array(values) => values
            .iter()
            .try_for_each(|inner| validate_value(top_level_name, inner, depth + 1, true)),
        Value::Map(fields) if fields.contains_key(VECTOR_TYPE_KEY) => {
            validate_typed_map(top_level_name, fields, inside_array)
        }
        Value::Map(fields) => fields.iter().try_for_each(|(name, inner)| {
            if name.is_empty() {
                return Err(ServerError::InvalidArgument(
                    "The property.name is the empty string.".into(),
                ));
            }
            if is_reserved_name(name) {
                return Err(ServerError::InvalidArgument(format!(
                    "field name '{name}' is reserved."
                )));
            }
            validate_value(top_level_name, inner, depth + 1, false)
        }),
        _ => Ok(()),
    }
}

/// A map holding `__type__` must be a vector, `{__type__: "__vector__", value: [doubles]}`
/// (what the SDKs' `vector()` writes), checked in the emulator's order with its messages.
fn validate_typed_map(
    top_level_name: &str,
    fields: &BTreeMap<String, Value>,
    inside_array: bool,
) -> Result<(), ServerError> {
    let invalid = |message: &str| Err(ServerError::InvalidArgument(message.to_owned()));
    match fields.get(VECTOR_TYPE_KEY) {
        Some(Value::String(kind)) if kind == VECTOR_TYPE_NAME => {}
        Some(Value::String(_)) => {
            return Err(ServerError::InvalidArgument(format!(
                "Property {top_level_name} contains an invalid nested entity."
            )))
        }
        _ => return invalid("Field __type__ is not a string."),
    }
    if inside_array {
        return invalid("Cannot convert a vector value in an array value.");
    }
    let Some(elements) = fields.get(VECTOR_VALUE_KEY) else {
        return invalid("Vector map is missing key 'value'.");
    };
    if fields.len() > 2 {
        return invalid("Vector Value map has extraneous entries.");
    }
    let Value::Array(elements) = elements else {
        return invalid("Vector Value type must be an array.");
    };
    validate_vector_elements(elements)
}

/// The elements of a vector: at least one, every one a double, none NaN.
pub fn validate_vector_elements(elements: &[Value]) -> Result<(), ServerError> {
    let invalid = |message: &str| Err(ServerError::InvalidArgument(message.to_owned()));
    if elements.is_empty() {
        return invalid("Cannot have a zero length vector.");
    }
    if !elements
        .iter()
        .all(|element| matches!(element, Value::Double(_)))
    {
        return invalid("Vector must only contain values of type 'double'");
    }
    if elements.iter().any(Value::is_nan) {
        return invalid("Vector cannot contain NaN values.");
    }
    Ok(())
}

/// Checks a value a query compares with (a filter operand, a cursor value): reserved keys in
/// its maps are refused as in a write, and a vector must be well formed; a map with another
/// `__type__` is accepted, as the emulator accepts it.
pub fn validate_query_value(value: &Value) -> Result<(), ServerError> {
    match value {
        Value::Array(values) => values.iter().try_for_each(validate_query_value),
        Value::Map(fields) => match (fields.get(VECTOR_TYPE_KEY), fields.get(VECTOR_VALUE_KEY)) {
            (Some(Value::String(kind)), Some(Value::Array(elements)))
                if kind == VECTOR_TYPE_NAME =>
            {
                validate_vector_elements(elements)
            }
            (Some(_), _) => Ok(()),
            (None, _) => fields.iter().try_for_each(|(name, inner)| {
                if is_reserved_name(name) {
                    return Err(ServerError::InvalidArgument(format!(
                        "field name '{name}' is reserved."
                    )));
                }
                validate_query_value(inner)
            }),
        },
        _ => Ok(()),
    }
}

fn value_too_long(name: &str) -> ServerError {
    ServerError::InvalidArgument(format!(
        "The value of property \"{name}\" is longer than {MAX_VALUE_BYTES} bytes."
    ))
}

/// Firestore's size of a document name: each segment's bytes + 1, plus 16.
pub fn name_size_bytes(segments: &[String]) -> usize {
    segments
        .iter()
        .map(|segment| segment.len() + 1)
        .sum::<usize>()
        + 16
}

/// Firestore's size of a value.
pub fn value_size_bytes(value: &Value) -> usize {
    match value {
        Value::Null | Value::Boolean(_) => 1,
        Value::Integer(_) | Value::Double(_) | Value::Timestamp(_) => 8,
        Value::GeoPoint(_) => 16,
        Value::String(text) => text.len() + 1,
        Value::Bytes(bytes) => bytes.len(),
        Value::Reference(name) => match DocumentName::parse(name) {
            Ok(parsed) => name_size_bytes(&parsed.segments),
            Err(_) => name.len() + 1,
        },
        Value::Array(values) => values.iter().map(value_size_bytes).sum(),
        Value::Map(fields) => fields_size_bytes(fields),
    }
}

fn fields_size_bytes(fields: &BTreeMap<String, Value>) -> usize {
    fields
        .iter()
        .map(|(name, value)| name.len() + 1 + value_size_bytes(value))
        .sum()
}

/// Firestore's size of a stored document: name + fields + 32.
pub fn document_size_bytes(name: &DocumentName, fields: &BTreeMap<String, Value>) -> usize {
    name_size_bytes(&name.segments) + fields_size_bytes(fields) + 32
}

/// Refuses a document (as a write would leave it) larger than 1 MiB.
pub fn check_document_size(
    name: &DocumentName,
    fields: &BTreeMap<String, Value>,
) -> Result<(), ServerError> {
    let size = document_size_bytes(name, fields);
    if size > MAX_DOCUMENT_BYTES {
        return Err(ServerError::InvalidArgument(format!(
            "maximum entity size is {MAX_DOCUMENT_BYTES} bytes; this document would be {size} bytes"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use counterbook_firestore_wire::Code;

    fn fields(entries: Vec<(&str, Value)>) -> BTreeMap<String, Value> {
        entries
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect()
    }

    fn nested_maps(depth: usize) -> Value {
        (0..depth).fold(Value::Integer(1), |inner, _| {
            Value::Map(fields(vec![("a", inner)]))
        })
    }

    fn check_fields(candidate: BTreeMap<String, Value>, expected: Result<(), &str>) {
        let outcome = validate_client_fields(&candidate);
        match (outcome, expected) {
            (Ok(()), Ok(())) => {}
            (Err(error), Err(needle)) => {
                assert_eq!(error.code(), Code::InvalidArgument);
                assert!(error.to_string().contains(needle), "{error}");
            }
            (outcome, expected) => panic!("{outcome:?} but expected {expected:?}"),
        }
    }

    #[test]
    fn field_rules_match_the_emulator() {
        check_fields(fields(vec![("a", nested_maps(20))]), Ok(()));
        check_fields(fields(vec![("a", nested_maps(21))]), Err("nested entity"));
        check_fields(
            fields(vec![("a", Value::Array(vec![Value::Array(vec![])]))]),
            Err("array value in an array value"),
        );
        check_fields(fields(vec![("__x__", Value::Null)]), Err("reserved"));
        check_fields(
            fields(vec![(
                "m",
                Value::Map(fields(vec![("__y__", Value::Null)])),
            )]),
            Err("reserved"),
        );
        check_fields(fields(vec![("", Value::Null)]), Err("empty string"));
        check_fields(
            fields(vec![("s", Value::String("x".repeat(MAX_VALUE_BYTES)))]),
            Ok(()),
        );
        check_fields(
            fields(vec![("s", Value::String("x".repeat(MAX_VALUE_BYTES + 1)))]),
            Err("longer than 1048487 bytes"),
        );
    }

    fn typed_map(kind: Value, value: Option<Value>) -> Value {
        let mut map = fields(vec![("__type__", kind)]);
        if let Some(value) = value {
            map.insert("value".into(), value);
        }
        Value::Map(map)
    }

    #[test]
    fn vectors_are_the_one_map_with_a_reserved_key_and_are_checked_as_on_the_emulator() {
        let vector_type = || Value::String("__vector__".into());
        let doubles = |values: &[f64]| {
            Some(Value::Array(
                values.iter().copied().map(Value::Double).collect(),
            ))
        };
        let vector = typed_map(vector_type(), doubles(&[1.0, 2.5, f64::INFINITY]));
        check_fields(fields(vec![("v", vector.clone())]), Ok(()));
        check_fields(
            fields(vec![("m", Value::Map(fields(vec![("v", vector.clone())])))]),
            Ok(()),
        );
        check_fields(
            fields(vec![("a", Value::Array(vec![vector]))]),
            Err("Cannot convert a vector value in an array value."),
        );
        for (candidate, message) in [
            (
                typed_map(vector_type(), doubles(&[])),
                "Cannot have a zero length vector.",
            ),
            (
                typed_map(vector_type(), None),
                "Vector map is missing key 'value'.",
            ),
            (
                typed_map(vector_type(), Some(Value::Integer(1))),
                "Vector Value type must be an array.",
            ),
            (
                typed_map(vector_type(), Some(Value::Array(vec![Value::Integer(1)]))),
                "Vector must only contain values of type 'double'",
            ),
            (
                typed_map(vector_type(), doubles(&[f64::NAN])),
                "Vector cannot contain NaN values.",
            ),
            (
                typed_map(Value::String("__other__".into()), None),
                "Property v contains an invalid nested entity.",
            ),
            (
                typed_map(Value::Integer(1), None),
                "Field __type__ is not a string.",
            ),
        ] {
            check_fields(fields(vec![("v", candidate)]), Err(message));
        }
        let mut extra = typed_map(vector_type(), doubles(&[1.0]));
        if let Value::Map(map) = &mut extra {
            map.insert("x".into(), Value::Null);
        }
        check_fields(
            fields(vec![("v", extra)]),
            Err("Vector Value map has extraneous entries."),
        );
        check_fields(
            fields(vec![("__type__", vector_type())]),
            Err("field name __type__ is reserved"),
        );
    }

    #[test]
    fn index_entries_are_counted_as_firestores_single_field_indexes() {
        let check = |entries: Vec<(&str, Value)>, expected: usize| {
            assert_eq!(index_entry_count(&fields(entries)), expected);
        };
        check(vec![("a", Value::Integer(1)), ("b", Value::Null)], 4);
        check(vec![("m", nested_maps(2))], 2 + 2 + 2);
        let one_two_one = vec![Value::Integer(1), Value::Integer(2), Value::Integer(1)];
        check(vec![("tags", Value::Array(one_two_one))], 2 + 2);
        let name = DocumentName::new("p", "(default)", "shops/s1/products/wide").unwrap();
        let wide = |count: usize| -> BTreeMap<String, Value> {
            (0..count)
                .map(|index| (format!("f{index}"), Value::Boolean(true)))
                .collect()
        };
        assert!(check_index_entries(&name, &wide(20_000)).is_ok());
        let error = check_index_entries(&name, &wide(20_001)).unwrap_err();
        assert_eq!(error.code(), Code::InvalidArgument);
        assert_eq!(
            error.to_string(),
            "too many index entries for entity /shops/s1/products/wide"
        );
    }

    #[test]
    fn the_largest_document_the_emulator_accepts_is_exactly_one_mebibyte() {
        let name = DocumentName::new("p", "(default)", "c/big").unwrap();
        let largest = fields(vec![
            ("s", Value::String("x".repeat(1_000_000))),
            ("t", Value::String("y".repeat(48_516))),
        ]);
        assert_eq!(document_size_bytes(&name, &largest), MAX_DOCUMENT_BYTES);
        assert!(check_document_size(&name, &largest).is_ok());
        let one_more = fields(vec![
            ("s", Value::String("x".repeat(1_000_000))),
            ("t", Value::String("y".repeat(48_517))),
        ]);
        assert!(check_document_size(&name, &one_more).is_err());
    }
}
