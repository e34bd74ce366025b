//! `:runAggregationQuery`: `count` (with `upTo`), `sum` and `avg` over a structured query.
//!
//! Semantics measured on Google's emulator:
//! - the aggregations run over the query's results after `offset` and `limit`;
//! - when any aggregation names a field, only documents that have *every* aggregated field (of
//!   any type) are aggregated, `count` included, as Firestore documents for combined
//!   aggregations;
//! - `sum` adds the integers and doubles and ignores other types; integers only give an
//!   integer (computed exactly, a double if the total leaves the 64-bit range), any double
//!   gives a double, a NaN gives NaN; nothing to add gives integer 0;
//! - `avg` is the double mean of the numeric values, null when there are none;
//! - `count` is capped at `upTo` when given (0 included); a negative `upTo` is refused;
//! - aliases default to `field_1`, `field_2`, … by position; duplicates are refused; at most
//!   5 aggregations (the emulator answers 500 beyond that; Cloud Firestore's limit is 5).

use std::collections::BTreeMap;

use counterbook_firestore_wire::{FieldReference, StructuredQuery, Timestamp, Value};
use serde::Deserialize;

use crate::error::ServerError;
use crate::field_path::FieldPath;
use crate::transaction::TransactionOptions;

/// The most aggregations one request may ask for.
const MAX_AGGREGATIONS: usize = 5;

/// Body of `POST {parent}:runAggregationQuery`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunAggregationQueryRequest {
    #[serde(default)]
    pub structured_aggregation_query: Option<StructuredAggregationQuery>,
    #[serde(default)]
    pub transaction: Option<String>,
    #[serde(default)]
    pub new_transaction: Option<TransactionOptions>,
    #[serde(default)]
    pub read_time: Option<Timestamp>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StructuredAggregationQuery {
    #[serde(default)]
    pub structured_query: Option<StructuredQuery>,
    #[serde(default)]
    pub aggregations: Vec<Aggregation>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Aggregation {
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(default)]
    pub count: Option<CountAggregation>,
    #[serde(default)]
    pub sum: Option<FieldAggregation>,
    #[serde(default)]
    pub avg: Option<FieldAggregation>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CountAggregation {
    /// An `Int64Value`: a JSON string or number.
    #[serde(default)]
    pub up_to: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldAggregation {
    #[serde(default)]
    pub field: Option<FieldReference>,
}

/// One validated aggregation.
#[derive(Clone, Debug, PartialEq)]
pub enum AggregationKind {
    Count { up_to: Option<u64> },
    Sum(FieldPath),
    Average(FieldPath),
}

/// The validated aggregations, with their aliases, in request order.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedAggregations {
    pub aggregations: Vec<(String, AggregationKind)>,
}

fn parse_up_to(value: &serde_json::Value) -> Result<i64, ServerError> {
    let parsed = match value {
        serde_json::Value::String(text) => text.trim().parse().ok(),
        serde_json::Value::Number(number) => number.as_i64(),
        serde_json::Value::Object(object) => object.get("value").and_then(|inner| match inner {
            serde_json::Value::String(text) => text.trim().parse().ok(),
            other => other.as_i64(),
        }),
        _ => None,
    };
    parsed.ok_or_else(|| {
        ServerError::InvalidArgument(format!(
            "Payload isn't valid for request: upTo {value} is not a 64-bit integer"
        ))
    })
}

fn aggregated_field(aggregation: &FieldAggregation) -> Result<FieldPath, ServerError> {
    let text = aggregation
        .field
        .as_ref()
        .map_or("", |field| field.field_path.as_str());
    if text.is_empty() {
        return Err(ServerError::InvalidArgument(
            "Invalid empty property path string.".into(),
        ));
    }
    let path = FieldPath::parse_for_query(text)?;
    if path.is_document_name() {
        return Err(ServerError::InvalidArgument(
            "Aggregations are not supported for the property: __key__".into(),
        ));
    }
    Ok(path)
}

/// Checks the aggregations of a request.
pub fn prepare_aggregations(
    aggregations: &[Aggregation],
) -> Result<PreparedAggregations, ServerError> {
    if aggregations.is_empty() {
        return Err(ServerError::InvalidArgument(
            "Aggregations cannot be empty.".into(),
        ));
    }
    if aggregations.len() > MAX_AGGREGATIONS {
        return Err(ServerError::InvalidArgument(format!(
            "At most {MAX_AGGREGATIONS} aggregations are allowed in one request; got {}.",
            aggregations.len()
        )));
    }
    let mut prepared = Vec::with_capacity(aggregations.len());
    for (index, aggregation) in aggregations.iter().enumerate() {
        let kind = match (&aggregation.count, &aggregation.sum, &aggregation.avg) {
            (Some(count), None, None) => {
                let up_to = count.up_to.as_ref().map(parse_up_to).transpose()?;
                if up_to.is_some_and(|limit| limit < 0) {
                    return Err(ServerError::InvalidArgument(
                        "The `up_to` value in a COUNT aggregation must be greater than or equal to zero."
                            .into(),
                    ));
                }
                AggregationKind::Count {
                    up_to: up_to.map(|limit| limit as u64),
                }
            }
            (None, Some(sum), None) => AggregationKind::Sum(aggregated_field(sum)?),
            (None, None, Some(average)) => AggregationKind::Average(aggregated_field(average)?),
            (None, None, None) => {
                return Err(ServerError::InvalidArgument(
                    "Operator field in Aggregation is not set.".into(),
                ))
            }
            _ => {
                return Err(ServerError::InvalidArgument(
                    "Payload isn't valid for request: an aggregation has one operator".into(),
                ))
            }
        };
        let alias = aggregation
            .alias
            .clone()
            .unwrap_or_else(|| format!("field_{}", index + 1));
        if prepared.iter().any(|(existing, _)| *existing == alias) {
            return Err(ServerError::InvalidArgument(format!(
                "Aggregation aliases contain duplicate alias: {alias}."
            )));
        }
        prepared.push((alias, kind));
    }
    Ok(PreparedAggregations {
        aggregations: prepared,
    })
}

impl PreparedAggregations {
    /// The fields every aggregated document must have.
    pub fn required_fields(&self) -> Vec<FieldPath> {
        let mut paths = Vec::new();
        for (_, kind) in &self.aggregations {
            if let AggregationKind::Sum(path) | AggregationKind::Average(path) = kind {
                if !paths.contains(path) {
                    paths.push(path.clone());
                }
            }
        }
        paths
    }

    /// Computes every aggregation over the documents' fields.
    pub fn compute(&self, documents: &[&BTreeMap<String, Value>]) -> BTreeMap<String, Value> {
        self.aggregations
            .iter()
            .map(|(alias, kind)| {
                let value = match kind {
                    AggregationKind::Count { up_to } => {
                        let count = documents.len() as u64;
                        let capped = up_to.map_or(count, |limit| count.min(limit));
                        Value::Integer(i64::try_from(capped).unwrap_or(i64::MAX))
                    }
                    AggregationKind::Sum(path) => sum(numbers(documents, path)),
                    AggregationKind::Average(path) => average(numbers(documents, path)),
                };
                (alias.clone(), value)
            })
            .collect()
    }
}

fn numbers<'a>(documents: &[&'a BTreeMap<String, Value>], path: &FieldPath) -> Vec<&'a Value> {
    documents
        .iter()
        .filter_map(|fields| path.get(fields))
        .filter(|value| matches!(value, Value::Integer(_) | Value::Double(_)))
        .collect()
}

fn as_double(value: &Value) -> f64 {
    match value {
        Value::Integer(integer) => *integer as f64,
        Value::Double(double) => *double,
        _ => 0.0,
    }
}

fn sum(values: Vec<&Value>) -> Value {
    if values
        .iter()
        .all(|value| matches!(value, Value::Integer(_)))
    {
        let exact: i128 = values
            .iter()
            .map(|value| i128::from(value.as_integer().unwrap_or(0)))
            .sum();
        return match i64::try_from(exact) {
            Ok(total) => Value::Integer(total),
            Err(_) => Value::Double(exact as f64),
        };
    }
    Value::Double(values.into_iter().map(as_double).sum())
}

fn average(values: Vec<&Value>) -> Value {
    if values.is_empty() {
        return Value::Null;
    }
    let count = values.len() as f64;
    let total = match sum(values) {
        Value::Integer(total) => total as f64,
        Value::Double(total) => total,
        _ => 0.0,
    };
    Value::Double(total / count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prepare(aggregations: serde_json::Value) -> Result<PreparedAggregations, ServerError> {
        let parsed: Vec<Aggregation> = serde_json::from_value(aggregations).unwrap();
        prepare_aggregations(&parsed)
    }

    fn check(
        aggregations: serde_json::Value,
        documents: serde_json::Value,
        expected: serde_json::Value,
    ) {
        let prepared = prepare(aggregations).unwrap();
        let documents: Vec<BTreeMap<String, Value>> = serde_json::from_value(documents).unwrap();
        let kept: Vec<&BTreeMap<String, Value>> = documents
            .iter()
            .filter(|fields| {
                prepared
                    .required_fields()
                    .iter()
                    .all(|path| path.get(fields).is_some())
            })
            .collect();
        let result = serde_json::to_value(prepared.compute(&kept)).unwrap();
        assert_eq!(result, expected);
    }

    #[test]
    fn sums_and_averages_follow_the_emulator() {
        let documents = json!([
            {"i": {"integerValue": "9223372036854775807"}, "m": {"integerValue": "1"}, "d": {"doubleValue": 1.5}},
            {"i": {"integerValue": "1"}, "m": {"integerValue": "2"}, "d": {"integerValue": "2"}},
            {"i": {"integerValue": "-5"}, "m": {"stringValue": "no"}}
        ]);
        let aggregations = |field: &str| {
            json!([{"alias": "s", "sum": {"field": {"fieldPath": field}}},
                   {"alias": "a", "avg": {"field": {"fieldPath": field}}},
                   {"alias": "n", "count": {}}])
        };
        check(
            aggregations("i"),
            documents.clone(),
            json!({"s": {"integerValue": "9223372036854775803"}, "a": {"doubleValue": 3.0744573456182584e18}, "n": {"integerValue": "3"}}),
        );
        check(
            aggregations("m"),
            documents.clone(),
            json!({"s": {"integerValue": "3"}, "a": {"doubleValue": 1.5}, "n": {"integerValue": "3"}}),
        );
        check(
            aggregations("d"),
            documents.clone(),
            json!({"s": {"doubleValue": 3.5}, "a": {"doubleValue": 1.75}, "n": {"integerValue": "2"}}),
        );
        check(
            json!([{"count": {"upTo": "2"}}, {"sum": {"field": {"fieldPath": "none"}}}, {"avg": {"field": {"fieldPath": "none"}}}]),
            documents,
            json!({"field_1": {"integerValue": "0"}, "field_2": {"integerValue": "0"}, "field_3": {"nullValue": null}}),
        );
    }

    #[test]
    fn invalid_aggregations_are_refused() {
        for (aggregations, needle) in [
            (json!([]), "cannot be empty"),
            (json!([{"alias": "n"}]), "not set"),
            (
                json!([{"alias": "n", "count": {}}, {"alias": "n", "count": {}}]),
                "duplicate alias: n",
            ),
            (
                json!([{"count": {"upTo": "-1"}}]),
                "greater than or equal to zero",
            ),
            (
                json!([{"sum": {"field": {"fieldPath": "__name__"}}}]),
                "__key__",
            ),
            (json!([{"sum": {}}]), "empty property path"),
            (
                json!([{"count": {}}, {"count": {}}, {"count": {}}, {"count": {}}, {"count": {}}, {"count": {}}]),
                "At most 5",
            ),
        ] {
            let error = prepare(aggregations.clone()).unwrap_err();
            assert!(
                error.to_string().contains(needle),
                "{aggregations}: {error}"
            );
        }
    }
}
