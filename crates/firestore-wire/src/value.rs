//! `Value` and `Document`: Firestore's typed field values and the documents that hold them.
//!
//! `Value` is serialized by hand because proto3 JSON gives several spellings for one value
//! (`integerValue` as a string or a number, `nullValue` as `null` or `"NULL_VALUE"`, doubles as
//! numbers or `"NaN"`); we accept them all and always write the canonical one.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::timestamp::Timestamp;

/// One Firestore field value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Boolean(bool),
    Integer(i64),
    Double(f64),
    Timestamp(Timestamp),
    String(String),
    Bytes(Vec<u8>),
    /// A document resource name: `projects/{p}/databases/{d}/documents/{path}`.
    Reference(String),
    GeoPoint(LatLng),
    Array(Vec<Value>),
    Map(BTreeMap<String, Value>),
}

/// The key that marks a typed map (only vectors are defined) and its value for a vector.
pub const VECTOR_TYPE_KEY: &str = "__type__";
/// The `__type__` of a vector value.
pub const VECTOR_TYPE_NAME: &str = "__vector__";
/// The key of a vector's elements.
pub const VECTOR_VALUE_KEY: &str = "value";

/// A latitude/longitude pair in degrees.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatLng {
    #[serde(default)]
    pub latitude: f64,
    #[serde(default)]
    pub longitude: f64,
}

/// The JSON body of `arrayValue`, also used by array transforms.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct ArrayValue {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<Value>,
}

/// The JSON body of `mapValue`.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct MapValue {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, Value>,
}

/// A Firestore document as it travels in REST bodies.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    /// Full resource name; empty when the document is not yet named (never on the wire).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_time: Option<Timestamp>,
}

impl Value {
    /// Firestore's name for the value's type, as used in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Boolean(_) => "boolean",
            Value::Integer(_) => "integer",
            Value::Double(_) => "double",
            Value::Timestamp(_) => "timestamp",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Reference(_) => "reference",
            Value::GeoPoint(_) => "geo point",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_timestamp(&self) -> Option<Timestamp> {
        match self {
            Value::Timestamp(t) => Some(*t),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The elements of a vector value (the SDKs' `vector([...])`): on the wire a map
    /// `{__type__: "__vector__", value: {arrayValue: [doubles]}}`, the one kind of map whose
    /// keys may be reserved names. `None` for every other value.
    pub fn vector_elements(&self) -> Option<&[Value]> {
        let Value::Map(fields) = self else {
            return None;
        };
        match (fields.get(VECTOR_TYPE_KEY), fields.get(VECTOR_VALUE_KEY)) {
            (Some(Value::String(kind)), Some(Value::Array(elements)))
                if kind == VECTOR_TYPE_NAME && fields.len() == 2 =>
            {
                Some(elements)
            }
            _ => None,
        }
    }

    /// Rank of the value's type in Firestore's cross-type ordering; integers and doubles share
    /// one rank. Range filters only match values of the operand's rank.
    pub fn type_rank(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Boolean(_) => 1,
            Value::Integer(_) | Value::Double(_) => 2,
            Value::Timestamp(_) => 3,
            Value::String(_) => 4,
            Value::Bytes(_) => 5,
            Value::Reference(_) => 6,
            Value::GeoPoint(_) => 7,
            Value::Array(_) => 8,
            Value::Map(_) if self.vector_elements().is_some() => 9,
            Value::Map(_) => 10,
        }
    }

    /// Compares two values the way Firestore orders query results: first by type
    /// (null < boolean < number < timestamp < string < bytes < reference < geo point < array
    /// < vector < map), then within the type. Integers and doubles compare as numbers; NaN
    /// sorts before every other number and equals itself. Vectors compare by length first,
    /// then element by element (as the emulator orders them).
    pub fn firestore_cmp(&self, other: &Value) -> Ordering {
        let by_type = self.type_rank().cmp(&other.type_rank());
        if by_type != Ordering::Equal {
            return by_type;
        }
        if let (Some(left), Some(right)) = (self.vector_elements(), other.vector_elements()) {
            return left
                .len()
                .cmp(&right.len())
                .then_with(|| compare_sequences(left.iter(), right.iter()));
        }
        match (self, other) {
            (Value::Null, Value::Null) => Ordering::Equal,
            (Value::Boolean(a), Value::Boolean(b)) => a.cmp(b),
            (Value::Integer(a), Value::Integer(b)) => a.cmp(b),
            (Value::Double(a), Value::Double(b)) => compare_doubles(*a, *b),
            (Value::Integer(a), Value::Double(b)) => compare_integer_with_double(*a, *b),
            (Value::Double(a), Value::Integer(b)) => compare_integer_with_double(*b, *a).reverse(),
            (Value::Timestamp(a), Value::Timestamp(b)) => a.cmp(b),
            (Value::String(a), Value::String(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Value::Bytes(a), Value::Bytes(b)) => a.cmp(b),
            (Value::Reference(a), Value::Reference(b)) => compare_references(a, b),
            (Value::GeoPoint(a), Value::GeoPoint(b)) => compare_doubles(a.latitude, b.latitude)
                .then_with(|| compare_doubles(a.longitude, b.longitude)),
            (Value::Array(a), Value::Array(b)) => compare_sequences(a.iter(), b.iter()),
            (Value::Map(a), Value::Map(b)) => {
                for (left, right) in a.iter().zip(b.iter()) {
                    let order = left
                        .0
                        .as_bytes()
                        .cmp(right.0.as_bytes())
                        .then_with(|| left.1.firestore_cmp(right.1));
                    if order != Ordering::Equal {
                        return order;
                    }
                }
                a.len().cmp(&b.len())
            }
            _ => unreachable!("values of equal type rank have matching variants"),
        }
    }

    /// Equality as Firestore's `==` filter sees it: numbers compare by value across
    /// integer and double, and NaN equals nothing.
    pub fn firestore_eq(&self, other: &Value) -> bool {
        if self.is_nan() || other.is_nan() {
            return false;
        }
        self.firestore_cmp(other) == Ordering::Equal
    }

    pub fn is_nan(&self) -> bool {
        matches!(self, Value::Double(d) if d.is_nan())
    }
}

fn compare_doubles(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        // -0.0 and 0.0 are equal, as in Firestore.
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// Exact comparison of an i64 with an f64, without rounding the integer to a double.
fn compare_integer_with_double(integer: i64, double: f64) -> Ordering {
    if double.is_nan() {
        return Ordering::Greater;
    }
    // 2^63 is exactly representable; every double at or above it exceeds every i64.
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if double >= TWO_POW_63 {
        return Ordering::Less;
    }
    if double < -TWO_POW_63 {
        return Ordering::Greater;
    }
    let truncated = double.trunc();
    let whole = truncated as i64; // exact: |truncated| < 2^63 here
    match integer.cmp(&whole) {
        Ordering::Equal => {
            let fraction = double - truncated;
            if fraction > 0.0 {
                Ordering::Less
            } else if fraction < 0.0 {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        }
        other => other,
    }
}

/// References order segment by segment, so `a/b` sorts before `a/b/c` and `a-x`.
fn compare_references(a: &str, b: &str) -> Ordering {
    let mut left = a.split('/');
    let mut right = b.split('/');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = x.as_bytes().cmp(y.as_bytes());
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

fn compare_sequences<'a>(
    mut a: impl Iterator<Item = &'a Value>,
    mut b: impl Iterator<Item = &'a Value>,
) -> Ordering {
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = x.firestore_cmp(y);
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        match self {
            Value::Null => map.serialize_entry("nullValue", &())?,
            Value::Boolean(b) => map.serialize_entry("booleanValue", b)?,
            Value::Integer(i) => map.serialize_entry("integerValue", &i.to_string())?,
            Value::Double(d) => {
                if d.is_nan() {
                    map.serialize_entry("doubleValue", "NaN")?
                } else if d.is_infinite() {
                    let text = if *d > 0.0 { "Infinity" } else { "-Infinity" };
                    map.serialize_entry("doubleValue", text)?
                } else {
                    map.serialize_entry("doubleValue", d)?
                }
            }
            Value::Timestamp(t) => map.serialize_entry("timestampValue", t)?,
            Value::String(s) => map.serialize_entry("stringValue", s)?,
            Value::Bytes(b) => map.serialize_entry(
                "bytesValue",
                &base64::engine::general_purpose::STANDARD.encode(b),
            )?,
            Value::Reference(r) => map.serialize_entry("referenceValue", r)?,
            Value::GeoPoint(g) => map.serialize_entry("geoPointValue", g)?,
            Value::Array(values) => map.serialize_entry(
                "arrayValue",
                &ArrayValue {
                    values: values.clone(),
                },
            )?,
            Value::Map(fields) => map.serialize_entry(
                "mapValue",
                &MapValue {
                    fields: fields.clone(),
                },
            )?,
        }
        map.end()
    }
}

/// `integerValue`: a decimal string in canonical JSON, but a plain number is accepted too.
struct IntegerText(i64);

impl<'de> Deserialize<'de> for IntegerText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IntegerText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a 64-bit integer as a string or number")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IntegerText, E> {
                Ok(IntegerText(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntegerText, E> {
                i64::try_from(v)
                    .map(IntegerText)
                    .map_err(|_| E::custom(format!("integer {v} is out of the 64-bit range")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<IntegerText, E> {
                if v.fract() == 0.0 && v.abs() < 9.2e18 {
                    Ok(IntegerText(v as i64))
                } else {
                    Err(E::custom(format!("{v} is not a 64-bit integer")))
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IntegerText, E> {
                v.trim()
                    .parse()
                    .map(IntegerText)
                    .map_err(|_| E::custom(format!("{v:?} is not a 64-bit integer")))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// `doubleValue`: a JSON number, or one of the strings "NaN", "Infinity", "-Infinity".
struct DoubleText(f64);

impl<'de> Deserialize<'de> for DoubleText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DoubleText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number, \"NaN\", \"Infinity\" or \"-Infinity\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DoubleText, E> {
                Ok(DoubleText(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DoubleText, E> {
                Ok(DoubleText(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<DoubleText, E> {
                Ok(DoubleText(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DoubleText, E> {
                match v {
                    "NaN" => Ok(DoubleText(f64::NAN)),
                    "Infinity" => Ok(DoubleText(f64::INFINITY)),
                    "-Infinity" => Ok(DoubleText(f64::NEG_INFINITY)),
                    other => other
                        .parse()
                        .map(DoubleText)
                        .map_err(|_| E::custom(format!("{other:?} is not a double"))),
                }
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// `nullValue`: `null` or the enum name `"NULL_VALUE"` (or its number, 0).
struct NullText;

impl<'de> Deserialize<'de> for NullText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = NullText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("null or \"NULL_VALUE\"")
            }
            fn visit_unit<E: de::Error>(self) -> Result<NullText, E> {
                Ok(NullText)
            }
            fn visit_none<E: de::Error>(self) -> Result<NullText, E> {
                Ok(NullText)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NullText, E> {
                if v == 0 {
                    Ok(NullText)
                } else {
                    Err(E::custom(format!("{v} is not a nullValue")))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NullText, E> {
                self.visit_u64(v as u64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<NullText, E> {
                if v == "NULL_VALUE" {
                    Ok(NullText)
                } else {
                    Err(E::custom(format!("{v:?} is not a nullValue")))
                }
            }
        }
        deserializer.deserialize_any(V)
    }
}

fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .map_err(|e| format!("bytesValue is not base64: {e}"))
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a Firestore Value object with exactly one field such as stringValue")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
                let Some(key) = map.next_key::<String>()? else {
                    return Err(de::Error::custom(
                        "a Value needs exactly one field such as stringValue; got none",
                    ));
                };
                let value = match key.as_str() {
                    "nullValue" => {
                        map.next_value::<NullText>()?;
                        Value::Null
                    }
                    "booleanValue" => Value::Boolean(map.next_value()?),
                    "integerValue" => Value::Integer(map.next_value::<IntegerText>()?.0),
                    "doubleValue" => Value::Double(map.next_value::<DoubleText>()?.0),
                    "timestampValue" => Value::Timestamp(map.next_value()?),
                    "stringValue" => Value::String(map.next_value()?),
                    "bytesValue" => {
                        let text: String = map.next_value()?;
                        Value::Bytes(decode_base64(&text).map_err(de::Error::custom)?)
                    }
                    "referenceValue" => Value::Reference(map.next_value()?),
                    "geoPointValue" => Value::GeoPoint(map.next_value()?),
                    "arrayValue" => Value::Array(map.next_value::<ArrayValue>()?.values),
                    "mapValue" => Value::Map(map.next_value::<MapValue>()?.fields),
                    other => {
                        return Err(de::Error::custom(format!("unknown Value field {other:?}")))
                    }
                };
                if let Some(extra) = map.next_key::<String>()? {
                    return Err(de::Error::custom(format!(
                        "a Value has exactly one field; {key:?} came with {extra:?}"
                    )));
                }
                Ok(value)
            }
        }
        deserializer.deserialize_map(ValueVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Parses `input`, checks the parsed value, and checks that it re-serializes to `canonical`.
    fn check(input: serde_json::Value, expected: Value, canonical: serde_json::Value) {
        let parsed: Value = serde_json::from_value(input.clone()).unwrap();
        match (&parsed, &expected) {
            (Value::Double(a), Value::Double(b)) if a.is_nan() && b.is_nan() => {}
            _ => assert_eq!(parsed, expected, "parsing {input}"),
        }
        assert_eq!(serde_json::to_value(&parsed).unwrap(), canonical);
    }

    #[test]
    fn every_spelling_of_every_type() {
        check(
            json!({"nullValue": null}),
            Value::Null,
            json!({"nullValue": null}),
        );
        check(
            json!({"nullValue": "NULL_VALUE"}),
            Value::Null,
            json!({"nullValue": null}),
        );
        check(
            json!({"booleanValue": true}),
            Value::Boolean(true),
            json!({"booleanValue": true}),
        );
        check(
            json!({"integerValue": "-42"}),
            Value::Integer(-42),
            json!({"integerValue": "-42"}),
        );
        check(
            json!({"integerValue": 7}),
            Value::Integer(7),
            json!({"integerValue": "7"}),
        );
        check(
            json!({"integerValue": "9223372036854775807"}),
            Value::Integer(i64::MAX),
            json!({"integerValue": "9223372036854775807"}),
        );
        check(
            json!({"doubleValue": 1.5}),
            Value::Double(1.5),
            json!({"doubleValue": 1.5}),
        );
        check(
            json!({"doubleValue": "NaN"}),
            Value::Double(f64::NAN),
            json!({"doubleValue": "NaN"}),
        );
        check(
            json!({"doubleValue": "-Infinity"}),
            Value::Double(f64::NEG_INFINITY),
            json!({"doubleValue": "-Infinity"}),
        );
        check(
            json!({"timestampValue": "2026-11-22T00:07:26.601Z"}),
            Value::Timestamp(Timestamp::from_unix_millis(1_795_306_046_601)),
            json!({"timestampValue": "2026-11-22T00:07:26.601Z"}),
        );
        check(
            json!({"stringValue": "chai"}),
            Value::String("chai".into()),
            json!({"stringValue": "chai"}),
        );
        check(
            json!({"bytesValue": "AQI="}),
            Value::Bytes(vec![1, 2]),
            json!({"bytesValue": "AQI="}),
        );
        check(
            json!({"bytesValue": "-_8="}),
            Value::Bytes(vec![0xfb, 0xff]),
            json!({"bytesValue": "+/8="}),
        );
        check(
            json!({"geoPointValue": {"latitude": 36.75, "longitude": 3.06}}),
            Value::GeoPoint(LatLng {
                latitude: 36.75,
                longitude: 3.06,
            }),
            json!({"geoPointValue": {"latitude": 36.75, "longitude": 3.06}}),
        );
        check(
            json!({"arrayValue": {}}),
            Value::Array(vec![]),
            json!({"arrayValue": {}}),
        );
        check(
            json!({"mapValue": {"fields": {"a": {"integerValue": "1"}}}}),
            Value::Map(BTreeMap::from([("a".to_string(), Value::Integer(1))])),
            json!({"mapValue": {"fields": {"a": {"integerValue": "1"}}}}),
        );
    }

    #[test]
    fn malformed_values_are_rejected_with_a_reason() {
        for (input, needle) in [
            (json!({}), "got none"),
            (
                json!({"stringValue": "a", "integerValue": "1"}),
                "exactly one field",
            ),
            (json!({"integerValue": "1.5"}), "not a 64-bit integer"),
            (
                json!({"integerValue": "99999999999999999999"}),
                "not a 64-bit integer",
            ),
            (json!({"textValue": "a"}), "unknown Value field"),
            (json!({"bytesValue": "%%%"}), "not base64"),
            (json!({"timestampValue": "noon"}), "invalid timestamp"),
            (json!("plain"), "Value object"),
        ] {
            let error = serde_json::from_value::<Value>(input.clone())
                .unwrap_err()
                .to_string();
            assert!(error.contains(needle), "{input}: {error}");
        }
    }

    fn int(i: i64) -> Value {
        Value::Integer(i)
    }
    fn dbl(d: f64) -> Value {
        Value::Double(d)
    }

    fn vector(elements: &[f64]) -> Value {
        Value::Map(BTreeMap::from([
            (
                VECTOR_TYPE_KEY.to_string(),
                Value::String(VECTOR_TYPE_NAME.into()),
            ),
            (
                VECTOR_VALUE_KEY.to_string(),
                Value::Array(elements.iter().copied().map(Value::Double).collect()),
            ),
        ]))
    }

    #[test]
    fn cross_type_ordering_follows_firestore() {
        let ascending = [
            Value::Null,
            Value::Boolean(false),
            Value::Boolean(true),
            dbl(f64::NAN),
            dbl(f64::NEG_INFINITY),
            int(i64::MIN),
            dbl(-1.5),
            int(-1),
            int(0),
            dbl(0.5),
            int(1),
            dbl(1.5),
            int(i64::MAX),
            dbl(f64::INFINITY),
            Value::Timestamp(Timestamp::from_unix_millis(0)),
            Value::String(String::new()),
            Value::String("a".into()),
            Value::String("é".into()),
            Value::Bytes(vec![0]),
            Value::Reference("projects/p/databases/d/documents/a/b".into()),
            Value::Reference("projects/p/databases/d/documents/a/b/c/d".into()),
            Value::Reference("projects/p/databases/d/documents/a-x/b".into()),
            Value::GeoPoint(LatLng {
                latitude: 0.0,
                longitude: 0.0,
            }),
            Value::Array(vec![]),
            Value::Array(vec![int(1)]),
            Value::Array(vec![int(1), int(0)]),
            Value::Array(vec![int(2)]),
            // Vectors, as the emulator orders them: by length, then element by element.
            vector(&[3.0]),
            vector(&[f64::INFINITY]),
            vector(&[1.0, 1.0]),
            vector(&[1.0, 2.0]),
            vector(&[2.0, 1.0]),
            vector(&[0.0, 0.0, 0.0]),
            Value::Map(BTreeMap::new()),
            Value::Map(BTreeMap::from([("a".to_string(), int(1))])),
            Value::Map(BTreeMap::from([("b".to_string(), int(0))])),
        ];
        for (i, a) in ascending.iter().enumerate() {
            for (j, b) in ascending.iter().enumerate() {
                assert_eq!(a.firestore_cmp(b), i.cmp(&j), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn numbers_compare_exactly_across_integer_and_double() {
        assert_eq!(int(1).firestore_cmp(&dbl(1.0)), Ordering::Equal);
        assert!(int(1).firestore_eq(&dbl(1.0)));
        assert!(!dbl(f64::NAN).firestore_eq(&dbl(f64::NAN)));
        // 2^53 + 1 is not representable as a double; it must still sort above 2^53.
        assert_eq!(
            int((1 << 53) + 1).firestore_cmp(&dbl(9_007_199_254_740_992.0)),
            Ordering::Greater
        );
        assert_eq!(dbl(9.3e18).firestore_cmp(&int(i64::MAX)), Ordering::Greater);
        assert_eq!(dbl(-0.0).firestore_cmp(&int(0)), Ordering::Equal);
    }
}
