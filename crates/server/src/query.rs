//! `:runQuery`: turning a `StructuredQuery` into a `PreparedQuery` (validated, with Firestore's
//! implicit ordering spelled out) and evaluating it over the documents of one collection.
//!
//! Everything here is pure; the route loads the collection from a store snapshot and hands the
//! rows in. The semantics follow Cloud Firestore, checked against Google's emulator:
//! - the effective order is the explicit `orderBy`, then every inequality-filtered field not
//!   already ordered (sorted by path), then `__name__`, each added in the direction of the last
//!   explicit order (ascending if none);
//! - a document appears only if it has every ordered field (`__name__` always exists);
//! - range filters (`<`, `<=`, `>`, `>=`) only match values of the operand's type class
//!   (integers and doubles are one class), never NaN, and nothing when the operand is null or
//!   NaN; `==` and `!=` against null match nothing (Firestore wants `IS_NULL` filters for that);
//!   `!=` never matches a missing field or a null;
//! - cursor values line up with the explicit `orderBy` fields; a `__name__` position takes a
//!   `referenceValue`; `before: true` on `startAt` includes the position, on `endAt` excludes it.

use std::cmp::Ordering;

use counterbook_firestore_wire::{
    CompositeOperator, Cursor, Direction, Document, FieldOperator, Filter, StructuredQuery, Value,
};

use crate::error::ServerError;
use crate::field_path::FieldPath;
use crate::store::NamedDocument;

/// A validated query over the collection `collection_id` directly under the request's parent.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedQuery {
    pub collection_id: String,
    /// A conjunction: a document must match all of them.
    filters: Vec<PreparedFieldFilter>,
    /// The effective order, always ending with `__name__`.
    orders: Vec<PreparedOrder>,
    start_at: Option<Cursor>,
    end_at: Option<Cursor>,
    offset: usize,
    limit: Option<usize>,
    /// `Some`: return only these fields.
    projection: Option<Vec<FieldPath>>,
}

#[derive(Clone, Debug, PartialEq)]
struct PreparedFieldFilter {
    path: FieldPath,
    operator: FieldOperator,
    operand: Value,
}

#[derive(Clone, Debug, PartialEq)]
struct PreparedOrder {
    path: FieldPath,
    descending: bool,
}

/// The documents a query returns, and how many the offset skipped.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryOutput {
    pub documents: Vec<Document>,
    pub skipped_results: usize,
}

/// Checks a structured query and works out its effective order.
pub fn prepare_query(query: StructuredQuery) -> Result<PreparedQuery, ServerError> {
    let collection_id = match query.from.as_slice() {
        [] => {
            return Err(ServerError::Unimplemented(
                "queries without a `from` collection are not implemented yet".into(),
            ))
        }
        [selector] if selector.all_descendants => {
            return Err(ServerError::Unimplemented(
                "collection group queries (allDescendants: true) are not implemented yet".into(),
            ))
        }
        [selector] if selector.collection_id.is_empty() => {
            return Err(ServerError::InvalidArgument(
                "StructuredQuery.from needs a collectionId".into(),
            ))
        }
        [selector] => selector.collection_id.clone(),
        _ => {
            return Err(ServerError::InvalidArgument(
                "StructuredQuery.from cannot have more than one collection selector.".into(),
            ))
        }
    };

    let mut filters = Vec::new();
    if let Some(filter) = &query.filter {
        collect_conjunction(filter, &mut filters)?;
    }

    let explicit_orders = query
        .order_by
        .iter()
        .map(|order| {
            Ok(PreparedOrder {
                path: FieldPath::parse(&order.field.field_path)?,
                descending: order.direction == Some(Direction::Descending),
            })
        })
        .collect::<Result<Vec<_>, ServerError>>()?;
    let orders = effective_orders(&explicit_orders, &filters)?;

    for cursor in [&query.start_at, &query.end_at].into_iter().flatten() {
        validate_cursor(cursor, &explicit_orders)?;
    }

    let offset = match query.offset {
        Some(offset) if offset < 0 => {
            return Err(ServerError::InvalidArgument("offset is negative".into()))
        }
        Some(offset) => offset as usize,
        None => 0,
    };
    let limit = match query.limit {
        Some(limit) if limit < 0 => {
            return Err(ServerError::InvalidArgument("limit is negative".into()))
        }
        Some(limit) => Some(limit as usize),
        None => None,
    };
    let projection = query
        .select
        .map(|projection| {
            projection
                .fields
                .iter()
                .map(|field| FieldPath::parse(&field.field_path))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;

    Ok(PreparedQuery {
        collection_id,
        filters,
        orders,
        start_at: query.start_at,
        end_at: query.end_at,
        offset,
        limit,
        projection,
    })
}

/// Flattens nested AND filters into one list of field filters.
fn collect_conjunction(
    filter: &Filter,
    into: &mut Vec<PreparedFieldFilter>,
) -> Result<(), ServerError> {
    match filter {
        Filter::CompositeFilter(composite) => match composite.op {
            CompositeOperator::And => {
                for inner in &composite.filters {
                    collect_conjunction(inner, into)?;
                }
                Ok(())
            }
            CompositeOperator::Or => Err(ServerError::Unimplemented(
                "OR filters are not implemented yet; only AND".into(),
            )),
            CompositeOperator::OperatorUnspecified => Err(ServerError::InvalidArgument(
                "a composite filter needs an operator".into(),
            )),
        },
        Filter::UnaryFilter(_) => Err(ServerError::Unimplemented(
            "unary filters (IS_NULL, IS_NAN and their negations) are not implemented yet".into(),
        )),
        Filter::FieldFilter(field_filter) => {
            let operator = field_filter.op;
            match operator {
                FieldOperator::LessThan
                | FieldOperator::LessThanOrEqual
                | FieldOperator::GreaterThan
                | FieldOperator::GreaterThanOrEqual
                | FieldOperator::Equal
                | FieldOperator::NotEqual => {}
                FieldOperator::OperatorUnspecified => {
                    return Err(ServerError::InvalidArgument(
                        "a field filter needs an operator".into(),
                    ))
                }
                FieldOperator::ArrayContains
                | FieldOperator::In
                | FieldOperator::ArrayContainsAny
                | FieldOperator::NotIn => {
                    return Err(ServerError::Unimplemented(format!(
                        "the {operator:?} filter operator is not implemented yet; \
                         only <, <=, >, >=, == and != are"
                    )))
                }
            }
            into.push(PreparedFieldFilter {
                path: FieldPath::parse(&field_filter.field.field_path)?,
                operator,
                operand: field_filter.value.clone(),
            });
            Ok(())
        }
    }
}

fn is_inequality(operator: FieldOperator) -> bool {
    matches!(
        operator,
        FieldOperator::LessThan
            | FieldOperator::LessThanOrEqual
            | FieldOperator::GreaterThan
            | FieldOperator::GreaterThanOrEqual
            | FieldOperator::NotEqual
    )
}

/// Firestore's implicit ordering: explicit orders, then unordered inequality fields, then
/// `__name__`, in the direction of the last explicit order.
fn effective_orders(
    explicit: &[PreparedOrder],
    filters: &[PreparedFieldFilter],
) -> Result<Vec<PreparedOrder>, ServerError> {
    let key_error = || {
        ServerError::InvalidArgument(
            "order by clause cannot contain more fields after the key".into(),
        )
    };
    if let Some(position) = explicit
        .iter()
        .position(|order| order.path.is_document_name())
    {
        if position + 1 != explicit.len() {
            return Err(key_error());
        }
    }
    let descending = explicit.last().is_some_and(|order| order.descending);
    let mut unordered_inequalities: Vec<FieldPath> = filters
        .iter()
        .filter(|filter| is_inequality(filter.operator) && !filter.path.is_document_name())
        .map(|filter| filter.path.clone())
        .filter(|path| !explicit.iter().any(|order| order.path == *path))
        .collect();
    unordered_inequalities.sort();
    unordered_inequalities.dedup();
    let ends_with_name = explicit
        .last()
        .is_some_and(|order| order.path.is_document_name());
    if ends_with_name && !unordered_inequalities.is_empty() {
        return Err(key_error());
    }
    let mut orders = explicit.to_vec();
    orders.extend(
        unordered_inequalities
            .into_iter()
            .map(|path| PreparedOrder { path, descending }),
    );
    if !ends_with_name {
        orders.push(PreparedOrder {
            path: FieldPath::parse(crate::field_path::DOCUMENT_NAME_FIELD)?,
            descending,
        });
    }
    Ok(orders)
}

fn validate_cursor(cursor: &Cursor, explicit_orders: &[PreparedOrder]) -> Result<(), ServerError> {
    // Like the emulator, cursor values line up with the explicit orderBy only.
    if cursor.values.len() > explicit_orders.len() {
        return Err(ServerError::InvalidArgument(
            "Cursor has too many values.".into(),
        ));
    }
    for (value, order) in cursor.values.iter().zip(explicit_orders) {
        if order.path.is_document_name() && !matches!(value, Value::Reference(_)) {
            return Err(ServerError::InvalidArgument(
                "Cursor __name__ value is not a document reference.".into(),
            ));
        }
    }
    Ok(())
}

/// Whether a document's value at the filtered path (`None`: missing) passes a field filter.
fn filter_matches(value: Option<&Value>, operator: FieldOperator, operand: &Value) -> bool {
    let Some(value) = value else {
        return false;
    };
    if matches!(operand, Value::Null) {
        return false;
    }
    match operator {
        FieldOperator::Equal => value.firestore_eq(operand),
        FieldOperator::NotEqual => !matches!(value, Value::Null) && !value.firestore_eq(operand),
        FieldOperator::LessThan
        | FieldOperator::LessThanOrEqual
        | FieldOperator::GreaterThan
        | FieldOperator::GreaterThanOrEqual => {
            if operand.is_nan() || value.is_nan() || value.type_rank() != operand.type_rank() {
                return false;
            }
            let ordering = value.firestore_cmp(operand);
            match operator {
                FieldOperator::LessThan => ordering == Ordering::Less,
                FieldOperator::LessThanOrEqual => ordering != Ordering::Greater,
                FieldOperator::GreaterThan => ordering == Ordering::Greater,
                _ => ordering != Ordering::Less,
            }
        }
        // `prepare_query` lets no other operator through.
        _ => false,
    }
}

/// The value a path resolves to in a document; `__name__` is the document's reference.
fn resolve(document: &NamedDocument, path: &FieldPath) -> Option<Value> {
    if path.is_document_name() {
        Some(Value::Reference(document.name.clone()))
    } else {
        path.get(&document.stored.fields).cloned()
    }
}

/// Compares two positions (prefixes allowed) under the given orders.
fn compare_positions(left: &[Value], right: &[Value], orders: &[PreparedOrder]) -> Ordering {
    for ((a, b), order) in left.iter().zip(right).zip(orders) {
        let ordering = a.firestore_cmp(b);
        let ordering = if order.descending {
            ordering.reverse()
        } else {
            ordering
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    Ordering::Equal
}

impl PreparedQuery {
    /// Evaluates the query over every document of its collection.
    pub fn execute(&self, candidates: Vec<NamedDocument>) -> QueryOutput {
        let mut rows: Vec<(Vec<Value>, NamedDocument)> = candidates
            .into_iter()
            .filter(|document| {
                self.filters.iter().all(|filter| {
                    filter_matches(
                        resolve(document, &filter.path).as_ref(),
                        filter.operator,
                        &filter.operand,
                    )
                })
            })
            .filter_map(|document| {
                let position = self
                    .orders
                    .iter()
                    .map(|order| resolve(&document, &order.path))
                    .collect::<Option<Vec<_>>>()?;
                Some((position, document))
            })
            .collect();
        rows.sort_by(|(a, _), (b, _)| compare_positions(a, b, &self.orders));
        rows.retain(|(position, _)| self.within_cursors(position));

        let skipped_results = self.offset.min(rows.len());
        let limit = self.limit.unwrap_or(usize::MAX);
        let documents = rows
            .into_iter()
            .skip(self.offset)
            .take(limit)
            .map(|(_, document)| self.project(document))
            .collect();
        QueryOutput {
            documents,
            skipped_results,
        }
    }

    fn within_cursors(&self, position: &[Value]) -> bool {
        if let Some(start) = &self.start_at {
            let ordering = compare_positions(position, &start.values, &self.orders);
            let after_start = if start.before {
                ordering != Ordering::Less
            } else {
                ordering == Ordering::Greater
            };
            if !after_start {
                return false;
            }
        }
        if let Some(end) = &self.end_at {
            let ordering = compare_positions(position, &end.values, &self.orders);
            let before_end = if end.before {
                ordering == Ordering::Less
            } else {
                ordering != Ordering::Greater
            };
            if !before_end {
                return false;
            }
        }
        true
    }

    fn project(&self, document: NamedDocument) -> Document {
        let NamedDocument { name, mut stored } = document;
        if let Some(paths) = &self.projection {
            let mut selected = std::collections::BTreeMap::new();
            for path in paths {
                if let Some(value) = path.get(&stored.fields) {
                    path.set(&mut selected, value.clone());
                }
            }
            stored.fields = selected;
        }
        stored.into_wire(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoredDocument;
    use counterbook_firestore_wire::Timestamp;
    use serde_json::json;

    const PREFIX: &str = "projects/p/databases/(default)/documents/shops/s/items/";

    fn document(id: &str, fields: serde_json::Value) -> NamedDocument {
        NamedDocument {
            name: format!("{PREFIX}{id}"),
            stored: StoredDocument {
                fields: serde_json::from_value(fields).unwrap(),
                create_time: Timestamp::from_unix_micros(1),
                update_time: Timestamp::from_unix_micros(2),
            },
        }
    }

    /// The emulator's probe collection: numbers, a string, a null, a NaN, a missing field.
    fn collection() -> Vec<NamedDocument> {
        vec![
            document("a", json!({"k": {"doubleValue": 2.5}})),
            document("b", json!({"k": {"stringValue": "x"}})),
            document("c", json!({"k": {"integerValue": "1"}})),
            document("d", json!({"j": {"integerValue": "1"}})),
            document("n", json!({"k": {"nullValue": null}})),
            document("nan", json!({"k": {"doubleValue": "NaN"}})),
            document("two", json!({"k": {"doubleValue": 2.0}})),
        ]
    }

    /// Runs `query` (the JSON of a StructuredQuery without `from`) and checks the ids returned.
    fn check(query: serde_json::Value, expected_ids: &[&str]) {
        let mut query = query;
        query["from"] = json!([{"collectionId": "items"}]);
        let prepared = prepare_query(serde_json::from_value(query.clone()).unwrap())
            .unwrap_or_else(|error| panic!("{query}: {error}"));
        let ids: Vec<String> = prepared
            .execute(collection())
            .documents
            .into_iter()
            .map(|document| document.name.trim_start_matches(PREFIX).to_owned())
            .collect();
        assert_eq!(ids, expected_ids, "{query}");
    }

    fn field_filter(op: &str, value: serde_json::Value) -> serde_json::Value {
        json!({"where": {"fieldFilter": {"field": {"fieldPath": "k"}, "op": op, "value": value}}})
    }

    #[test]
    fn field_filters_match_like_the_emulator() {
        check(
            field_filter("GREATER_THAN", json!({"integerValue": "0"})),
            &["c", "two", "a"],
        );
        check(
            field_filter("LESS_THAN", json!({"doubleValue": "Infinity"})),
            &["c", "two", "a"],
        );
        check(
            field_filter("NOT_EQUAL", json!({"integerValue": "1"})),
            &["nan", "two", "a", "b"],
        );
        check(
            field_filter("NOT_EQUAL", json!({"doubleValue": "NaN"})),
            &["nan", "c", "two", "a", "b"],
        );
        check(
            field_filter("EQUAL", json!({"integerValue": "2"})),
            &["two"],
        );
        check(field_filter("EQUAL", json!({"doubleValue": 2.5})), &["a"]);
        check(
            field_filter("LESS_THAN", json!({"stringValue": "z"})),
            &["b"],
        );
        for nothing in [
            field_filter("EQUAL", json!({"doubleValue": "NaN"})),
            field_filter("EQUAL", json!({"nullValue": null})),
            field_filter("NOT_EQUAL", json!({"nullValue": null})),
            field_filter("GREATER_THAN", json!({"doubleValue": "NaN"})),
            field_filter("GREATER_THAN_OR_EQUAL", json!({"nullValue": null})),
        ] {
            check(nothing, &[]);
        }
    }

    #[test]
    fn ordering_crosses_types_excludes_missing_fields_and_ends_with_the_name() {
        check(json!({}), &["a", "b", "c", "d", "n", "nan", "two"]);
        check(
            json!({"orderBy": [{"field": {"fieldPath": "k"}}]}),
            &["n", "nan", "c", "two", "a", "b"],
        );
        check(
            json!({"orderBy": [{"field": {"fieldPath": "k"}, "direction": "DESCENDING"}]}),
            &["b", "a", "two", "c", "nan", "n"],
        );
        check(
            json!({"orderBy": [{"field": {"fieldPath": "__name__"}, "direction": "DESCENDING"}]}),
            &["two", "nan", "n", "d", "c", "b", "a"],
        );
    }

    #[test]
    fn ties_on_the_ordered_field_break_by_name_in_the_last_direction() {
        let tied = vec![
            document("z", json!({"t": {"integerValue": "1"}})),
            document("y", json!({"t": {"integerValue": "1"}})),
            document("x", json!({"t": {"integerValue": "0"}})),
        ];
        let run = |direction: &str| {
            let query = json!({
                "from": [{"collectionId": "items"}],
                "orderBy": [{"field": {"fieldPath": "t"}, "direction": direction}]
            });
            prepare_query(serde_json::from_value(query).unwrap())
                .unwrap()
                .execute(tied.clone())
                .documents
                .into_iter()
                .map(|document| document.name.trim_start_matches(PREFIX).to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(run("ASCENDING"), ["x", "y", "z"]);
        assert_eq!(run("DESCENDING"), ["z", "y", "x"]);
    }

    #[test]
    fn cursors_offset_and_limit() {
        let by_name = json!([{"field": {"fieldPath": "__name__"}}]);
        let reference = |id: &str| json!({"referenceValue": format!("{PREFIX}{id}")});
        check(
            json!({"orderBy": by_name, "startAt": {"values": [reference("b")], "before": true}}),
            &["b", "c", "d", "n", "nan", "two"],
        );
        check(
            json!({"orderBy": by_name, "startAt": {"values": [reference("b")]}}),
            &["c", "d", "n", "nan", "two"],
        );
        check(
            json!({"orderBy": by_name, "endAt": {"values": [reference("b")], "before": true}}),
            &["a"],
        );
        check(
            json!({"orderBy": by_name, "endAt": {"values": [reference("b")]}}),
            &["a", "b"],
        );
        check(
            json!({"orderBy": [{"field": {"fieldPath": "k"}}], "startAt": {"values": [{"integerValue": "2"}], "before": true}}),
            &["two", "a", "b"],
        );
        check(json!({"offset": 1, "limit": 2}), &["b", "c"]);
        check(json!({"limit": 0}), &[]);
    }

    fn check_rejected(
        query: serde_json::Value,
        code: counterbook_firestore_wire::Code,
        needle: &str,
    ) {
        let error = prepare_query(serde_json::from_value(query.clone()).unwrap()).unwrap_err();
        assert_eq!(error.code(), code, "{query}: {error}");
        assert!(error.to_string().contains(needle), "{query}: {error}");
    }

    #[test]
    fn invalid_and_unimplemented_queries_are_rejected() {
        use counterbook_firestore_wire::Code;
        let from = json!([{"collectionId": "items"}]);
        check_rejected(
            json!({"from": [{"collectionId": "a"}, {"collectionId": "b"}]}),
            Code::InvalidArgument,
            "more than one",
        );
        check_rejected(
            json!({"from": [{"collectionId": "a", "allDescendants": true}]}),
            Code::Unimplemented,
            "allDescendants",
        );
        check_rejected(
            json!({"from": from, "limit": -1}),
            Code::InvalidArgument,
            "limit is negative",
        );
        check_rejected(
            json!({"from": from, "orderBy": [{"field": {"fieldPath": "__name__"}}], "startAt": {"values": [{"stringValue": "b"}]}}),
            Code::InvalidArgument,
            "not a document reference",
        );
        check_rejected(
            json!({"from": from, "startAt": {"values": [{"integerValue": "1"}]}}),
            Code::InvalidArgument,
            "too many values",
        );
        check_rejected(
            json!({"from": from,
                   "where": {"fieldFilter": {"field": {"fieldPath": "k"}, "op": "GREATER_THAN", "value": {"integerValue": "0"}}},
                   "orderBy": [{"field": {"fieldPath": "__name__"}}]}),
            Code::InvalidArgument,
            "after the key",
        );
        check_rejected(
            json!({"from": from, "where": {"compositeFilter": {"op": "OR", "filters": []}}}),
            Code::Unimplemented,
            "OR",
        );
        check_rejected(
            json!({"from": from, "where": {"fieldFilter": {"field": {"fieldPath": "k"}, "op": "IN", "value": {"arrayValue": {}}}}}),
            Code::Unimplemented,
            "not implemented",
        );
    }
}
