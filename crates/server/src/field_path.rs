//! Field paths (`price`, `totals.net`, `` `odd key`.x ``) and reading, writing and removing the
//! value a path points at inside a document's fields.
//!
//! The syntax is Firestore's: segments separated by dots; an unquoted segment matches
//! `[a-zA-Z_][a-zA-Z_0-9]*`; any other segment is quoted in backticks, where a backslash escapes
//! the next character. Update masks, transforms, filters and orders all use it.

use std::collections::BTreeMap;
use std::fmt;

use counterbook_firestore_wire::{Value, VECTOR_TYPE_KEY};

use crate::error::ServerError;

/// The special field path that stands for the document's name in queries.
pub const DOCUMENT_NAME_FIELD: &str = "__name__";

/// A parsed field path: the map keys to follow from the top-level fields.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FieldPath {
    segments: Vec<String>,
}

impl FieldPath {
    /// Parses Firestore's dotted, backtick-quoted syntax.
    pub fn parse(text: &str) -> Result<FieldPath, ServerError> {
        let invalid = || {
            ServerError::InvalidArgument(format!(
                "Invalid property path {text:?}. Unquoted property paths must match regex \
                 ([a-zA-Z_][a-zA-Z_0-9]*), and quoted property paths must match regex \
                 (`(?:[^`\\\\]|(?:\\\\.))+`)"
            ))
        };
        let mut segments = Vec::new();
        let mut characters = text.chars().peekable();
        loop {
            let mut segment = String::new();
            if characters.peek() == Some(&'`') {
                characters.next();
                loop {
                    match characters.next() {
                        None => return Err(invalid()),
                        Some('`') => break,
                        Some('\\') => segment.push(characters.next().ok_or_else(invalid)?),
                        Some(other) => segment.push(other),
                    }
                }
                if segment.is_empty() {
                    return Err(invalid());
                }
            } else {
                while let Some(&next) = characters.peek() {
                    if next == '.' {
                        break;
                    }
                    segment.push(next);
                    characters.next();
                }
                if !is_simple_segment(&segment) {
                    return Err(invalid());
                }
            }
            segments.push(segment);
            match characters.next() {
                None => break,
                Some('.') => continue,
                Some(_) => return Err(invalid()),
            }
        }
        Ok(FieldPath { segments })
    }

    /// A path from its segments, as found by walking a document's maps.
    pub fn from_segments(segments: Vec<String>) -> FieldPath {
        FieldPath { segments }
    }

    /// The map keys this path follows.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// Parses a path that a write sets (an update mask entry, a transform's target): the
    /// `__.*__` names are Firestore's own and cannot be written.
    pub fn parse_for_write(text: &str) -> Result<FieldPath, ServerError> {
        let path = FieldPath::parse(text)?;
        if path
            .segments
            .iter()
            .any(|segment| is_reserved_name(segment))
        {
            return Err(ServerError::InvalidArgument(format!(
                "Invalid reserved name in field path {text}"
            )));
        }
        Ok(path)
    }

    /// Parses a path a query reads (a filter, an order, a projection, an aggregated field),
    /// refusing reserved names as the emulator does: `__name__` only alone, `__key__` never,
    /// `__type__` only as the last segment of a nested path (a vector's own key), and no other
    /// `__.*__` segment.
    pub fn parse_for_query(text: &str) -> Result<FieldPath, ServerError> {
        let path = FieldPath::parse(text)?;
        if path.is_document_name() {
            return Ok(path);
        }
        let last = path.segments.len() - 1;
        for (index, segment) in path.segments.iter().enumerate() {
            if !is_reserved_name(segment) {
                continue;
            }
            let message = match segment.as_str() {
                DOCUMENT_NAME_FIELD => "the name __key__ is reserved".to_owned(),
                "__key__" => format!("Invalid property path member name \"{segment}\"."),
                VECTOR_TYPE_KEY if index > 0 && index == last => continue,
                VECTOR_TYPE_KEY => "the name __type__ is reserved".to_owned(),
                _ => format!(
                    "Invalid reserved name in field path {}",
                    FieldPath::from_segments(path.segments[index..].to_vec())
                ),
            };
            return Err(ServerError::InvalidArgument(message));
        }
        Ok(path)
    }

    /// `true` for `__name__`, which queries resolve to the document's reference.
    pub fn is_document_name(&self) -> bool {
        self.segments.len() == 1 && self.segments[0] == DOCUMENT_NAME_FIELD
    }

    /// The value at this path, if every map along the way exists.
    pub fn get<'a>(&self, fields: &'a BTreeMap<String, Value>) -> Option<&'a Value> {
        let (last, parents) = self.segments.split_last()?;
        let mut current = fields;
        for segment in parents {
            match current.get(segment) {
                Some(Value::Map(inner)) => current = inner,
                _ => return None,
            }
        }
        current.get(last)
    }

    /// The value at this path as a query sees it: like `get`, but a vector is a value of its
    /// own, not a map to look into (`v.value` of a vector resolves to nothing).
    pub fn get_in_query<'a>(&self, fields: &'a BTreeMap<String, Value>) -> Option<&'a Value> {
        let (last, parents) = self.segments.split_last()?;
        let mut current = fields;
        for segment in parents {
            match current.get(segment) {
                Some(inner @ Value::Map(map)) if inner.vector_elements().is_none() => current = map,
                _ => return None,
            }
        }
        current.get(last)
    }

    /// Sets the value at this path, creating maps along the way. A non-map value in the way is
    /// replaced by a map, as Firestore does when a write reaches into it.
    pub fn set(&self, fields: &mut BTreeMap<String, Value>, value: Value) {
        let Some((last, parents)) = self.segments.split_last() else {
            return;
        };
        let mut current = fields;
        for segment in parents {
            let entry = current
                .entry(segment.clone())
                .or_insert_with(|| Value::Map(BTreeMap::new()));
            if !matches!(entry, Value::Map(_)) {
                *entry = Value::Map(BTreeMap::new());
            }
            let Value::Map(inner) = entry else {
                unreachable!("the entry was made a map just above");
            };
            current = inner;
        }
        current.insert(last.clone(), value);
    }

    /// Removes the value at this path if it exists. Maps along the way stay, even when they
    /// become empty, as in Firestore.
    pub fn remove(&self, fields: &mut BTreeMap<String, Value>) {
        let Some((last, parents)) = self.segments.split_last() else {
            return;
        };
        let mut current = fields;
        for segment in parents {
            match current.get_mut(segment) {
                Some(Value::Map(inner)) => current = inner,
                _ => return,
            }
        }
        current.remove(last);
    }
}

/// Firestore reserves field names that start and end with two underscores (`__name__`, ...).
pub fn is_reserved_name(segment: &str) -> bool {
    segment.len() >= 4 && segment.starts_with("__") && segment.ends_with("__")
}

fn is_simple_segment(segment: &str) -> bool {
    let mut characters = segment.chars();
    matches!(characters.next(), Some(first) if first.is_ascii_alphabetic() || first == '_')
        && characters.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl fmt::Display for FieldPath {
    /// The canonical text: simple segments bare, others quoted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, segment) in self.segments.iter().enumerate() {
            if index > 0 {
                f.write_str(".")?;
            }
            if is_simple_segment(segment) {
                f.write_str(segment)?;
            } else {
                f.write_str("`")?;
                for character in segment.chars() {
                    if character == '`' || character == '\\' {
                        f.write_str("\\")?;
                    }
                    write!(f, "{character}")?;
                }
                f.write_str("`")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_parse(text: &str, expected_segments: &[&str]) {
        let parsed = FieldPath::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(parsed.segments, expected_segments, "parsing {text}");
        assert_eq!(FieldPath::parse(&parsed.to_string()).unwrap(), parsed);
    }

    #[test]
    fn parses_simple_dotted_and_quoted_paths() {
        check_parse("price", &["price"]);
        check_parse("_x9", &["_x9"]);
        check_parse("totals.net", &["totals", "net"]);
        check_parse("`a.b`", &["a.b"]);
        check_parse("`odd key`.x", &["odd key", "x"]);
        check_parse("`back\\`tick`", &["back`tick"]);
        check_parse("`prix €`", &["prix €"]);
        check_parse("__name__", &["__name__"]);
    }

    #[test]
    fn rejects_malformed_paths() {
        for bad in [
            "",
            "a..b",
            "a b",
            "9lives",
            ".a",
            "a.",
            "`unclosed",
            "``",
            "`a`b",
        ] {
            assert!(FieldPath::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    fn map(entries: &[(&str, Value)]) -> BTreeMap<String, Value> {
        entries
            .iter()
            .map(|(key, value)| (key.to_string(), value.clone()))
            .collect()
    }

    #[test]
    fn set_creates_maps_and_replaces_non_maps_in_the_way() {
        let mut fields = map(&[("a", Value::Integer(1))]);
        FieldPath::parse("a.k")
            .unwrap()
            .set(&mut fields, Value::Integer(5));
        FieldPath::parse("m.n.o")
            .unwrap()
            .set(&mut fields, Value::Boolean(true));
        assert_eq!(
            fields,
            map(&[
                ("a", Value::Map(map(&[("k", Value::Integer(5))]))),
                (
                    "m",
                    Value::Map(map(&[(
                        "n",
                        Value::Map(map(&[("o", Value::Boolean(true))]))
                    )]))
                ),
            ])
        );
        assert_eq!(
            FieldPath::parse("m.n.o").unwrap().get(&fields),
            Some(&Value::Boolean(true))
        );
        assert_eq!(FieldPath::parse("a.k.z").unwrap().get(&fields), None);
    }

    #[test]
    fn remove_keeps_emptied_maps_and_ignores_missing_paths() {
        let mut fields = map(&[("m", Value::Map(map(&[("x", Value::Integer(1))])))]);
        FieldPath::parse("m.x").unwrap().remove(&mut fields);
        FieldPath::parse("nothing.here")
            .unwrap()
            .remove(&mut fields);
        assert_eq!(fields, map(&[("m", Value::Map(BTreeMap::new()))]));
    }
}
