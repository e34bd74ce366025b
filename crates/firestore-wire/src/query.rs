//! Queries: `StructuredQuery` and the `:runQuery` request and streamed response items.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::timestamp::Timestamp;
use crate::transaction::TransactionOptions;
use crate::value::{Document, Value};

/// Body of `POST {parent}:runQuery`.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunQueryRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured_query: Option<StructuredQuery>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
    /// Starts a transaction with these options and reads in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_transaction: Option<TransactionOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_time: Option<Timestamp>,
}

/// One element of the JSON array `:runQuery` answers with.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunQueryResponseItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<Document>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped_results: i32,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub done: bool,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// A Firestore query over one collection id (or all collections with that id below the parent).
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StructuredQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<Projection>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<CollectionSelector>,
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order_by: Vec<Order>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<Cursor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_at: Option<Cursor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i32>,
    /// Proto3 JSON writes this `Int32Value` as a number; the WebChannel clients send
    /// `{"value": n}`. Both are accepted.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_int32_value"
    )]
    pub limit: Option<i32>,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Projection {
    #[serde(default)]
    pub fields: Vec<FieldReference>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectionSelector {
    #[serde(default)]
    pub collection_id: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_descendants: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldReference {
    pub field_path: String,
}

impl FieldReference {
    pub fn new(field_path: impl Into<String>) -> Self {
        FieldReference {
            field_path: field_path.into(),
        }
    }
}

/// The `filter_type` oneof of `StructuredQuery.Filter`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Filter {
    CompositeFilter(CompositeFilter),
    FieldFilter(FieldFilter),
    UnaryFilter(UnaryFilter),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompositeFilter {
    pub op: CompositeOperator,
    #[serde(default)]
    pub filters: Vec<Filter>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CompositeOperator {
    OperatorUnspecified,
    And,
    Or,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldFilter {
    pub field: FieldReference,
    pub op: FieldOperator,
    pub value: Value,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FieldOperator {
    OperatorUnspecified,
    LessThan,
    LessThanOrEqual,
    GreaterThan,
    GreaterThanOrEqual,
    Equal,
    NotEqual,
    ArrayContains,
    In,
    ArrayContainsAny,
    NotIn,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnaryFilter {
    pub op: UnaryOperator,
    pub field: FieldReference,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UnaryOperator {
    OperatorUnspecified,
    IsNan,
    IsNull,
    IsNotNan,
    IsNotNull,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub field: FieldReference,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Direction {
    DirectionUnspecified,
    Ascending,
    Descending,
}

/// A position in a query's order: values for the order-by fields, in order.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Cursor {
    #[serde(default)]
    pub values: Vec<Value>,
    /// `true`: the position is just before these values (inclusive for `startAt`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub before: bool,
}

fn deserialize_int32_value<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i32>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<i32>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a 32-bit integer or {\"value\": integer}")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Option<i32>, E> {
            Ok(None)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<i32>, E> {
            i32::try_from(v)
                .map(Some)
                .map_err(|_| E::custom(format!("{v} is out of the 32-bit range")))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<i32>, E> {
            i32::try_from(v)
                .map(Some)
                .map_err(|_| E::custom(format!("{v} is out of the 32-bit range")))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<i32>, E> {
            v.parse()
                .map(Some)
                .map_err(|_| E::custom(format!("{v:?} is not a 32-bit integer")))
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Option<i32>, A::Error> {
            let mut value = None;
            while let Some(key) = map.next_key::<String>()? {
                if key == "value" {
                    value = Some(map.next_value::<i32>()?);
                } else {
                    return Err(de::Error::custom(format!(
                        "unknown Int32Value field {key:?}"
                    )));
                }
            }
            Ok(Some(value.unwrap_or(0)))
        }
    }
    deserializer.deserialize_any(V)
}
