//! Refusing request bodies with fields Firestore does not know, as Google's JSON front end does.
//!
//! The wire types are lenient on purpose (the app reads replies from newer servers), so the
//! server checks every request body against the message shapes of the Firestore v1 REST API
//! before deserializing it, streaming over its bytes (no JSON tree is built). A field the API
//! does not define is answered with 400 `INVALID_ARGUMENT` and Google's wording, `Invalid JSON payload received. Unknown name "x" at
//! 'writes[0]': Cannot find field.` (the emulator answers the same code with "Payload isn't
//! valid for request."). Both proto3 JSON spellings of a field name are accepted (`updateMask`
//! and `update_mask`). Firestore `Value`s are not described here: their own deserializer
//! already refuses anything but exactly one known `...Value` key.

use std::cell::RefCell;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::error::ServerError;

type Fields = &'static [(&'static str, Shape)];

/// What a JSON field holds.
#[derive(Clone, Copy)]
pub enum Shape {
    /// A scalar, a list of scalars, or a Firestore `Value` (checked by its deserializer).
    Leaf,
    /// A plain JSON number or string (an `Int32Value` in REST is a bare number, never
    /// `{"value": n}`).
    Scalar,
    /// One message.
    Message(fn() -> Fields),
    /// A list of messages.
    List(fn() -> Fields),
}

use Shape::{Leaf, List, Message, Scalar};

pub fn commit_request() -> Fields {
    &[
        ("database", Leaf),
        ("writes", List(write)),
        ("transaction", Leaf),
    ]
}

/// A request on the Write stream (`write_stream`): its writes have the shape of a commit's.
pub fn write_request() -> Fields {
    &[
        ("database", Leaf),
        ("streamId", Leaf),
        ("writes", List(write)),
        ("streamToken", Leaf),
        ("labels", Leaf),
    ]
}

fn write() -> Fields {
    &[
        ("update", Message(document)),
        ("delete", Leaf),
        ("verify", Leaf),
        ("transform", Message(document_transform)),
        ("updateMask", Message(document_mask)),
        ("updateTransforms", List(field_transform)),
        ("currentDocument", Message(precondition)),
    ]
}

/// A document in a request body (`PATCH`, a commit's `update`).
pub fn document() -> Fields {
    &[
        ("name", Leaf),
        ("fields", Leaf),
        ("createTime", Leaf),
        ("updateTime", Leaf),
    ]
}

fn document_transform() -> Fields {
    &[
        ("document", Leaf),
        ("fieldTransforms", List(field_transform)),
    ]
}

fn document_mask() -> Fields {
    &[("fieldPaths", Leaf)]
}

fn precondition() -> Fields {
    &[("exists", Leaf), ("updateTime", Leaf)]
}

fn field_transform() -> Fields {
    &[
        ("fieldPath", Leaf),
        ("setToServerValue", Leaf),
        ("increment", Leaf),
        ("maximum", Leaf),
        ("minimum", Leaf),
        ("appendMissingElements", Message(array_value)),
        ("removeAllFromArray", Message(array_value)),
    ]
}

fn array_value() -> Fields {
    &[("values", Leaf)]
}

pub fn run_query_request() -> Fields {
    &[
        ("parent", Leaf),
        ("structuredQuery", Message(structured_query)),
        ("transaction", Leaf),
        ("newTransaction", Message(transaction_options)),
        ("readTime", Leaf),
        ("explainOptions", Leaf),
    ]
}

fn structured_query() -> Fields {
    &[
        ("select", Message(projection)),
        ("from", List(collection_selector)),
        ("where", Message(filter)),
        ("orderBy", List(order)),
        ("startAt", Message(cursor)),
        ("endAt", Message(cursor)),
        ("offset", Scalar),
        ("limit", Scalar),
        ("findNearest", Leaf),
    ]
}

fn projection() -> Fields {
    &[("fields", List(field_reference))]
}

fn collection_selector() -> Fields {
    &[("collectionId", Leaf), ("allDescendants", Leaf)]
}

fn filter() -> Fields {
    &[
        ("compositeFilter", Message(composite_filter)),
        ("fieldFilter", Message(field_filter)),
        ("unaryFilter", Message(unary_filter)),
    ]
}

fn composite_filter() -> Fields {
    &[("op", Leaf), ("filters", List(filter))]
}

fn field_filter() -> Fields {
    &[
        ("field", Message(field_reference)),
        ("op", Leaf),
        ("value", Leaf),
    ]
}

fn unary_filter() -> Fields {
    &[("op", Leaf), ("field", Message(field_reference))]
}

fn field_reference() -> Fields {
    &[("fieldPath", Leaf)]
}

fn order() -> Fields {
    &[("field", Message(field_reference)), ("direction", Leaf)]
}

fn cursor() -> Fields {
    &[("values", Leaf), ("before", Leaf)]
}

fn transaction_options() -> Fields {
    &[
        ("readOnly", Message(read_only_options)),
        ("readWrite", Message(read_write_options)),
    ]
}

fn read_only_options() -> Fields {
    &[("readTime", Leaf)]
}

fn read_write_options() -> Fields {
    &[("retryTransaction", Leaf)]
}

pub fn begin_transaction_request() -> Fields {
    &[
        ("database", Leaf),
        ("options", Message(transaction_options)),
    ]
}

pub fn rollback_request() -> Fields {
    &[("database", Leaf), ("transaction", Leaf)]
}

pub fn batch_get_request() -> Fields {
    &[
        ("database", Leaf),
        ("documents", Leaf),
        ("mask", Message(document_mask)),
        ("transaction", Leaf),
        ("newTransaction", Message(transaction_options)),
        ("readTime", Leaf),
    ]
}

pub fn run_aggregation_query_request() -> Fields {
    &[
        ("parent", Leaf),
        (
            "structuredAggregationQuery",
            Message(structured_aggregation_query),
        ),
        ("transaction", Leaf),
        ("newTransaction", Message(transaction_options)),
        ("readTime", Leaf),
        ("explainOptions", Leaf),
    ]
}

fn structured_aggregation_query() -> Fields {
    &[
        ("structuredQuery", Message(structured_query)),
        ("aggregations", List(aggregation)),
    ]
}

fn aggregation() -> Fields {
    &[
        ("alias", Leaf),
        ("count", Message(count)),
        ("sum", Message(field_aggregation)),
        ("avg", Message(field_aggregation)),
    ]
}

fn count() -> Fields {
    &[("upTo", Leaf)]
}

fn field_aggregation() -> Fields {
    &[("field", Message(field_reference))]
}

/// Checks a JSON body against a message's fields; the first unknown field found is the error.
/// It streams over the bytes (serde's deserializer driven by the message shape, values skipped
/// with `IgnoredAny`), so checking builds no JSON tree. Bytes that are not JSON are a
/// `MalformedBody`, as serde reports them.
pub fn check_known_fields(body: &[u8], fields: Fields) -> Result<(), ServerError> {
    let found = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let outcome = MessageCheck {
        fields,
        at: String::new(),
        found: &found,
    }
    .deserialize(&mut deserializer)
    .and_then(|()| deserializer.end());
    match (found.into_inner(), outcome) {
        (Some(error), _) => Err(error),
        (None, Err(error)) => Err(ServerError::MalformedBody(error)),
        (None, Ok(())) => Ok(()),
    }
}

/// Where the first schema error is kept: serde's own errors cannot carry Google's wording, so
/// the check stops with a placeholder serde error and the real one is taken from here.
type Found<'a> = &'a RefCell<Option<ServerError>>;

fn stop<E: de::Error>(found: Found<'_>, error: ServerError) -> E {
    *found.borrow_mut() = Some(error);
    E::custom("the body does not match the request message")
}

/// Checks one value that should be a message; anything but an object is the typed
/// deserializer's to refuse, with its own message.
struct MessageCheck<'a> {
    fields: Fields,
    at: String,
    found: Found<'a>,
}

impl<'de> DeserializeSeed<'de> for MessageCheck<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MessageCheck<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a request message")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let Some((name, shape)) = self
                .fields
                .iter()
                .find(|(name, _)| *name == key || snake_case(name) == *key)
            else {
                let location = if self.at.is_empty() {
                    String::new()
                } else {
                    format!(" at '{}'", self.at)
                };
                return Err(stop(
                    self.found,
                    ServerError::InvalidArgument(format!(
                        "Invalid JSON payload received. Unknown name \"{key}\"{location}: Cannot find field."
                    )),
                ));
            };
            let here = || {
                if self.at.is_empty() {
                    (*name).to_owned()
                } else {
                    format!("{}.{name}", self.at)
                }
            };
            match shape {
                Leaf => map.next_value::<IgnoredAny>().map(drop)?,
                Scalar => map.next_value_seed(ScalarCheck {
                    at: here(),
                    found: self.found,
                })?,
                Message(inner) => map.next_value_seed(MessageCheck {
                    fields: inner(),
                    at: here(),
                    found: self.found,
                })?,
                List(inner) => map.next_value_seed(ListCheck {
                    fields: inner(),
                    at: here(),
                    found: self.found,
                })?,
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Checks a list whose elements should be messages; anything but a list is the typed
/// deserializer's to refuse.
struct ListCheck<'a> {
    fields: Fields,
    at: String,
    found: Found<'a>,
}

impl<'de> DeserializeSeed<'de> for ListCheck<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ListCheck<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a list of request messages")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        while seq
            .next_element_seed(MessageCheck {
                fields: self.fields,
                at: format!("{}[{index}]", self.at),
                found: self.found,
            })?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// Checks a value that must be a plain number or string (REST's `Int32Value`).
struct ScalarCheck<'a> {
    at: String,
    found: Found<'a>,
}

impl<'de> DeserializeSeed<'de> for ScalarCheck<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl ScalarCheck<'_> {
    fn refuse<E: de::Error>(self, got: serde_json::Value) -> E {
        stop(
            self.found,
            ServerError::InvalidArgument(format!(
                "Invalid value at '{}': a number was expected, got {got}",
                self.at
            )),
        )
    }
}

impl<'de> Visitor<'de> for ScalarCheck<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a number")
    }

    // An object or a list here is an error; it is read whole (it is small in any request
    // that gets this far) only to be quoted in the message.
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let got = serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Err(self.refuse(got))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        let got = serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Err(self.refuse(got))
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// `updateMask` → `update_mask`, the proto field name JSON parsers also accept.
fn snake_case(camel: &str) -> String {
    let mut snake = String::with_capacity(camel.len() + 4);
    for character in camel.chars() {
        if character.is_ascii_uppercase() {
            snake.push('_');
            snake.push(character.to_ascii_lowercase());
        } else {
            snake.push(character);
        }
    }
    snake
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(body: serde_json::Value, fields: Fields, expected_error: Option<&str>) {
        let outcome = check_known_fields(body.to_string().as_bytes(), fields);
        match (outcome, expected_error) {
            (Ok(()), None) => {}
            (Err(error), Some(needle)) => assert!(error.to_string().contains(needle), "{error}"),
            (outcome, expected) => panic!("{body}: {outcome:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn unknown_fields_are_named_with_their_location() {
        check(
            json!({"writes": [{"update": {"name": "x", "fields": {"a": {"stringValue": "b"}}},
                   "update_mask": {"fieldPaths": []}}]}),
            commit_request(),
            None,
        );
        check(
            json!({"writes": [], "bogus": 1}),
            commit_request(),
            Some("Unknown name \"bogus\": Cannot find field."),
        );
        check(
            json!({"writes": [{"update": {"name": "x", "bogus": 1}}]}),
            commit_request(),
            Some("Unknown name \"bogus\" at 'writes[0].update'"),
        );
        check(
            json!({"structuredQuery": {"where": {"compositeFilter": {"op": "AND",
                   "filters": [{"fieldFilter": {"field": {"fieldPath": "a", "x": 1}}}]}}}}),
            run_query_request(),
            Some("at 'structuredQuery.where.compositeFilter.filters[0].fieldFilter.field'"),
        );
    }
}
