//! `:runQuery`: turning a `StructuredQuery` into a `PreparedQuery` (validated, with Firestore's
//! implicit ordering spelled out) and evaluating it over candidate documents.
//!
//! Everything here is pure; `reads` loads candidates from a store snapshot (a collection scan,
//! a collection-group scan, or a `field_index` range when `index_plan` finds one) and feeds
//! them in. The semantics follow Cloud Firestore, checked against Google's emulator:
//! - the effective order is the explicit `orderBy`, then every inequality-filtered field not
//!   already ordered (sorted by path), then `__name__`, each added in the direction of the last
//!   explicit order (ascending if none). Inequalities are `<`, `<=`, `>`, `>=` (not against
//!   null or NaN, which match nothing), `!=`, `NOT_IN`, `IS_NOT_NAN` and `IS_NOT_NULL`,
//!   anywhere in the filter, also under an `OR`;
//! - a document appears only if it has every ordered field (`__name__` always exists);
//! - range filters (`<`, `<=`, `>`, `>=`) only match values of the operand's type class
//!   (integers and doubles are one class), never NaN, and nothing when the operand is null or
//!   NaN; `==` and `!=` against null match nothing (Firestore wants `IS_NULL` filters for that);
//!   `!=` and `NOT_IN` never match a missing field or a null, and `NOT_IN` with a null in its
//!   list matches nothing; `IN` and `ARRAY_CONTAINS(_ANY)` compare like `==` (so `2 == 2.0`,
//!   and null or NaN match nothing); `IS_NOT_NAN` matches every present value but null and NaN;
//! - the emulator's validation: `IN` and `ARRAY_CONTAINS_ANY` take 1 to 30 values, `NOT_IN` 1
//!   to 10; one `!=`/`NOT_IN`/`IS_NOT_NAN`/`IS_NOT_NULL` per query; `NOT_IN` never with `IN`,
//!   `ARRAY_CONTAINS_ANY` or `OR`; one `ARRAY_CONTAINS(_ANY)` per disjunction; at most 30
//!   disjunctions in the filter's disjunctive normal form (an `IN` of n values counts n);
//!   `__name__` compares with references only;
//! - cursor values line up with the explicit `orderBy` fields; a `__name__` position takes a
//!   `referenceValue`; `before: true` on `startAt` includes the position, on `endAt` excludes it.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use counterbook_firestore_wire::{
    is_reserved_id, CompositeOperator, Cursor, Direction, Document, FieldOperator, Filter,
    StructuredQuery, UnaryOperator, Value,
};

use crate::documents::NamedDocument;
use crate::error::ServerError;
use crate::field_path::{FieldPath, DOCUMENT_NAME_FIELD};
use crate::index_key::{sort_key, type_class_bounds, IndexPlan};
use crate::limits::validate_query_value;

/// The most disjunctions a filter may expand to.
const MAX_DISJUNCTIONS: u128 = 30;
/// The most values an `IN` or `ARRAY_CONTAINS_ANY` list may hold.
const MAX_IN_VALUES: usize = 30;
/// The most values a `NOT_IN` list may hold.
const MAX_NOT_IN_VALUES: usize = 10;

/// A validated query over the collection `collection_id` directly under the request's parent,
/// or (with `all_descendants`) over every collection with that id anywhere below it.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedQuery {
    pub collection_id: String,
    pub all_descendants: bool,
    filter: Option<PreparedFilter>,
    /// The effective order, always ending with `__name__`.
    orders: Vec<PreparedOrder>,
    /// The paths of the explicit `orderBy`, and whether the query names `__name__` in it or
    /// in a filter (what the emulator's aggregation planning looks at).
    explicit_order_paths: Vec<FieldPath>,
    names_the_document_name: bool,
    start_at: Option<Cursor>,
    end_at: Option<Cursor>,
    offset: usize,
    limit: Option<usize>,
    /// `Some`: return only these fields.
    projection: Option<Vec<FieldPath>>,
    /// Fields a document must have, whatever their value (aggregations over fields).
    required_fields: Vec<FieldPath>,
}

/// A filter tree whose leaves passed validation.
#[derive(Clone, Debug, PartialEq)]
enum PreparedFilter {
    Field {
        path: FieldPath,
        operator: FieldOperator,
        operand: Value,
    },
    Unary {
        path: FieldPath,
        operator: UnaryOperator,
    },
    And(Vec<PreparedFilter>),
    Or(Vec<PreparedFilter>),
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
    let (collection_id, all_descendants) = match query.from.as_slice() {
        [] => {
            return Err(ServerError::Unimplemented(
                "queries without a `from` collection are not implemented yet".into(),
            ))
        }
        [selector] if selector.collection_id.is_empty() => {
            return Err(ServerError::InvalidArgument(
                "StructuredQuery.from needs a collectionId".into(),
            ))
        }
        [selector] if is_reserved_id(&selector.collection_id) => {
            return Err(ServerError::InvalidArgument(format!(
                "Collection id \"{}\" is invalid because it is reserved.",
                selector.collection_id
            )))
        }
        [selector] => (selector.collection_id.clone(), selector.all_descendants),
        _ => {
            return Err(ServerError::InvalidArgument(
                "StructuredQuery.from cannot have more than one collection selector.".into(),
            ))
        }
    };

    let filter = query.filter.as_ref().map(prepare_filter).transpose()?;
    if let Some(filter) = &filter {
        validate_filter_combination(filter)?;
    }

    let explicit_orders = query
        .order_by
        .iter()
        .map(|order| {
            Ok(PreparedOrder {
                path: FieldPath::parse_for_query(&order.field.field_path)?,
                descending: order.direction == Some(Direction::Descending),
            })
        })
        .collect::<Result<Vec<_>, ServerError>>()?;
    let mut inequality_paths = Vec::new();
    if let Some(filter) = &filter {
        collect_inequality_paths(filter, &mut inequality_paths);
    }
    if let Some(filter) = &filter {
        refuse_key_equality_beside_inequalities(filter, &inequality_paths)?;
    }
    let orders = effective_orders(&explicit_orders, inequality_paths)?;

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
                .map(|field| FieldPath::parse_for_query(&field.field_path))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    refuse_descending_key_scan(&orders, filter.as_ref())?;
    let explicit_order_paths: Vec<FieldPath> = explicit_orders
        .iter()
        .map(|order| order.path.clone())
        .collect();
    let names_the_document_name = explicit_order_paths.iter().any(FieldPath::is_document_name)
        || filter
            .as_ref()
            .is_some_and(|filter| leaves(filter).into_iter().any(leaf_names_the_document_name));

    Ok(PreparedQuery {
        collection_id,
        all_descendants,
        filter,
        orders,
        explicit_order_paths,
        names_the_document_name,
        start_at: query.start_at,
        end_at: query.end_at,
        offset,
        limit,
        projection,
        required_fields: Vec::new(),
    })
}

fn operator_name(operator: FieldOperator) -> &'static str {
    match operator {
        FieldOperator::In => "IN",
        FieldOperator::NotIn => "NOT_IN",
        FieldOperator::ArrayContainsAny => "ARRAY_CONTAINS_ANY",
        FieldOperator::ArrayContains => "ARRAY_CONTAINS",
        FieldOperator::NotEqual => "NOT_EQUAL",
        FieldOperator::Equal => "EQUAL",
        FieldOperator::LessThan => "LESS_THAN",
        FieldOperator::LessThanOrEqual => "LESS_THAN_OR_EQUAL",
        FieldOperator::GreaterThan => "GREATER_THAN",
        FieldOperator::GreaterThanOrEqual => "GREATER_THAN_OR_EQUAL",
        FieldOperator::OperatorUnspecified => "OPERATOR_UNSPECIFIED",
    }
}

fn key_filter_error() -> ServerError {
    ServerError::InvalidArgument("__key__ filter value must be a Key".into())
}

/// Validates one filter and its children on their own.
fn prepare_filter(filter: &Filter) -> Result<PreparedFilter, ServerError> {
    match filter {
        Filter::CompositeFilter(composite) => {
            let children = composite
                .filters
                .iter()
                .map(prepare_filter)
                .collect::<Result<Vec<_>, _>>()?;
            match composite.op {
                CompositeOperator::And => Ok(PreparedFilter::And(children)),
                CompositeOperator::Or if children.is_empty() => Err(ServerError::InvalidArgument(
                    "Composite filter must have at least one sub-filter.".into(),
                )),
                CompositeOperator::Or => Ok(PreparedFilter::Or(children)),
                CompositeOperator::OperatorUnspecified => Err(ServerError::InvalidArgument(
                    "Unknown CompositeFilter operator.".into(),
                )),
            }
        }
        Filter::UnaryFilter(unary) => {
            if unary.op == UnaryOperator::OperatorUnspecified {
                return Err(ServerError::InvalidArgument(
                    "Unknown UnaryFilter operator.".into(),
                ));
            }
            let path = FieldPath::parse_for_query(&unary.field.field_path)?;
            if path.is_document_name() {
                return Err(key_filter_error());
            }
            Ok(PreparedFilter::Unary {
                path,
                operator: unary.op,
            })
        }
        Filter::FieldFilter(field_filter) => {
            let operator = field_filter.op;
            let operand = &field_filter.value;
            let path = FieldPath::parse_for_query(&field_filter.field.field_path)?;
            validate_query_value(operand)?;
            match operator {
                FieldOperator::OperatorUnspecified => {
                    return Err(ServerError::InvalidArgument(
                        "Unknown FieldFilter operator.".into(),
                    ))
                }
                FieldOperator::In | FieldOperator::NotIn | FieldOperator::ArrayContainsAny => {
                    let name = operator_name(operator);
                    let Value::Array(values) = operand else {
                        return Err(ServerError::InvalidArgument(format!(
                            "'{name}' requires an ArrayValue."
                        )));
                    };
                    if values.is_empty() {
                        return Err(ServerError::InvalidArgument(format!(
                            "'{name}' requires an non-empty ArrayValue."
                        )));
                    }
                    let most = if operator == FieldOperator::NotIn {
                        MAX_NOT_IN_VALUES
                    } else {
                        MAX_IN_VALUES
                    };
                    if values.len() > most {
                        return Err(ServerError::InvalidArgument(format!(
                            "'{name}' supports up to {most} comparison values."
                        )));
                    }
                    if path.is_document_name() {
                        if operator == FieldOperator::ArrayContainsAny {
                            return Err(ServerError::InvalidArgument(
                                "the name __key__ is reserved".into(),
                            ));
                        }
                        if !values
                            .iter()
                            .all(|value| matches!(value, Value::Reference(_)))
                        {
                            return Err(key_filter_error());
                        }
                    }
                }
                FieldOperator::ArrayContains if path.is_document_name() => {
                    return Err(ServerError::InvalidArgument(
                        "the name __key__ is reserved".into(),
                    ))
                }
                _ if path.is_document_name() && !matches!(operand, Value::Reference(_)) => {
                    return Err(key_filter_error())
                }
                _ => {}
            }
            Ok(PreparedFilter::Field {
                path,
                operator,
                operand: operand.clone(),
            })
        }
    }
}

fn leaves(filter: &PreparedFilter) -> Vec<&PreparedFilter> {
    match filter {
        PreparedFilter::And(children) | PreparedFilter::Or(children) => {
            children.iter().flat_map(leaves).collect()
        }
        leaf => vec![leaf],
    }
}

fn contains_or(filter: &PreparedFilter) -> bool {
    match filter {
        PreparedFilter::Or(_) => true,
        PreparedFilter::And(children) => children.iter().any(contains_or),
        _ => false,
    }
}

fn is_not_equal_kind(leaf: &PreparedFilter) -> bool {
    matches!(
        leaf,
        PreparedFilter::Field {
            operator: FieldOperator::NotEqual | FieldOperator::NotIn,
            ..
        } | PreparedFilter::Unary {
            operator: UnaryOperator::IsNotNan | UnaryOperator::IsNotNull,
            ..
        }
    )
}

fn field_operator(leaf: &PreparedFilter) -> Option<FieldOperator> {
    match leaf {
        PreparedFilter::Field { operator, .. } => Some(*operator),
        _ => None,
    }
}

/// The rules that look at the whole filter, in the order the emulator applies them.
fn validate_filter_combination(filter: &PreparedFilter) -> Result<(), ServerError> {
    let all_leaves = leaves(filter);
    if all_leaves
        .iter()
        .filter(|leaf| is_not_equal_kind(leaf))
        .count()
        > 1
    {
        return Err(ServerError::InvalidArgument(
            "Only a single 'NOT_EQUAL', 'NOT_IN', 'IS_NOT_NAN', or 'IS_NOT_NULL' filter allowed per query."
                .into(),
        ));
    }
    let has_not_in = all_leaves
        .iter()
        .any(|leaf| field_operator(leaf) == Some(FieldOperator::NotIn));
    let has_disjunctive = contains_or(filter)
        || all_leaves.iter().any(|leaf| {
            matches!(
                field_operator(leaf),
                Some(FieldOperator::In | FieldOperator::ArrayContainsAny)
            )
        });
    if has_not_in && has_disjunctive {
        return Err(ServerError::InvalidArgument(
            "'NOT_IN' cannot be used in the same query with 'IN', 'ARRAY_CONTAINS_ANY' or 'OR'."
                .into(),
        ));
    }
    let disjunctions = disjunction_count(filter);
    if disjunctions > MAX_DISJUNCTIONS {
        return Err(ServerError::InvalidArgument(format!(
            "Too many disjunctions after normalization. Result had {disjunctions} disjunctions which is more than the maximum of {MAX_DISJUNCTIONS}"
        )));
    }
    if array_contains_per_disjunction(filter)
        .into_iter()
        .any(|count| count > 1)
    {
        return Err(ServerError::InvalidArgument(
            "A maximum of 1 'ARRAY_CONTAINS' filter is allowed per disjunction.".into(),
        ));
    }
    Ok(())
}

/// How many terms the filter's disjunctive normal form has (saturating).
fn disjunction_count(filter: &PreparedFilter) -> u128 {
    match filter {
        PreparedFilter::Field {
            operator: FieldOperator::In | FieldOperator::ArrayContainsAny,
            operand: Value::Array(values),
            ..
        } => values.len() as u128,
        PreparedFilter::Field { .. } | PreparedFilter::Unary { .. } => 1,
        PreparedFilter::And(children) => children.iter().fold(1u128, |product, child| {
            product.saturating_mul(disjunction_count(child))
        }),
        PreparedFilter::Or(children) => children.iter().fold(0u128, |sum, child| {
            sum.saturating_add(disjunction_count(child))
        }),
    }
}

/// For each term of the disjunctive normal form, how many array-membership filters it holds.
/// Only called once the term count is known to be small.
fn array_contains_per_disjunction(filter: &PreparedFilter) -> Vec<usize> {
    match filter {
        PreparedFilter::Field {
            operator: FieldOperator::ArrayContainsAny,
            operand: Value::Array(values),
            ..
        } => vec![1; values.len()],
        PreparedFilter::Field {
            operator: FieldOperator::ArrayContains,
            ..
        } => vec![1],
        PreparedFilter::Field {
            operator: FieldOperator::In,
            operand: Value::Array(values),
            ..
        } => vec![0; values.len()],
        PreparedFilter::Field { .. } | PreparedFilter::Unary { .. } => vec![0],
        PreparedFilter::And(children) => children.iter().fold(vec![0], |terms, child| {
            let child_terms = array_contains_per_disjunction(child);
            terms
                .iter()
                .flat_map(|left| child_terms.iter().map(move |right| left + right))
                .collect()
        }),
        PreparedFilter::Or(children) => children
            .iter()
            .flat_map(array_contains_per_disjunction)
            .collect(),
    }
}

fn collect_inequality_paths(filter: &PreparedFilter, into: &mut Vec<FieldPath>) {
    for leaf in leaves(filter) {
        let path = match leaf {
            PreparedFilter::Field {
                path,
                operator:
                    FieldOperator::LessThan
                    | FieldOperator::LessThanOrEqual
                    | FieldOperator::GreaterThan
                    | FieldOperator::GreaterThanOrEqual,
                operand,
            } if !matches!(operand, Value::Null) && !operand.is_nan() => path,
            // A range against null or NaN matches nothing, and the emulator does not count it
            // as an inequality (it adds no implicit order and can follow `__name__`).
            // Likewise `!= null` and `NOT_IN [null, …]` of nulls only.
            PreparedFilter::Field {
                path,
                operator: FieldOperator::NotEqual,
                operand,
            } if !matches!(operand, Value::Null) => path,
            PreparedFilter::Field {
                path,
                operator: FieldOperator::NotIn,
                operand: Value::Array(values),
            } if !values.iter().all(|value| matches!(value, Value::Null)) => path,
            PreparedFilter::Unary {
                path,
                operator: UnaryOperator::IsNotNan | UnaryOperator::IsNotNull,
            } => path,
            _ => continue,
        };
        if !path.is_document_name() {
            into.push(path.clone());
        }
    }
}

/// Firestore's implicit ordering: explicit orders, then unordered inequality fields, then
/// `__name__`, in the direction of the last explicit order.
fn effective_orders(
    explicit: &[PreparedOrder],
    inequality_paths: Vec<FieldPath>,
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
    let mut unordered_inequalities: Vec<FieldPath> = inequality_paths
        .into_iter()
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
            path: FieldPath::parse(DOCUMENT_NAME_FIELD)?,
            descending,
        });
    }
    Ok(orders)
}

/// Whether a leaf filter is on `__name__`.
fn leaf_names_the_document_name(leaf: &PreparedFilter) -> bool {
    matches!(leaf, PreparedFilter::Field { path, .. } | PreparedFilter::Unary { path, .. }
        if path.is_document_name())
}

/// The emulator refuses `__name__ ==` (or `IN`) beside an inequality on another field unless
/// `__name__` has an inequality too.
fn refuse_key_equality_beside_inequalities(
    filter: &PreparedFilter,
    other_inequality_paths: &[FieldPath],
) -> Result<(), ServerError> {
    let on_the_name = |operators: &[FieldOperator]| {
        leaves(filter).into_iter().any(|leaf| {
            matches!(leaf, PreparedFilter::Field { path, operator, .. }
                if path.is_document_name() && operators.contains(operator))
        })
    };
    let key_equality = on_the_name(&[FieldOperator::Equal, FieldOperator::In]);
    let key_inequality = on_the_name(&[
        FieldOperator::LessThan,
        FieldOperator::LessThanOrEqual,
        FieldOperator::GreaterThan,
        FieldOperator::GreaterThanOrEqual,
        FieldOperator::NotEqual,
        FieldOperator::NotIn,
    ]);
    if key_equality && !key_inequality && !other_inequality_paths.is_empty() {
        return Err(ServerError::InvalidArgument(
            "Equality on key is not allowed if there are other inequality fields and key does \
             not appear in inequalities."
                .into(),
        ));
    }
    Ok(())
}

/// The emulator cannot serve a query ordered by `__name__` descending alone whose filter
/// (if any) names no other field: that would be a descending scan of its key range, which it
/// refuses with `FAILED_PRECONDITION`. Any filter on another field (even `IN` or `IS_NULL`)
/// makes it scan an index instead, and it serves the query; so does this server.
fn refuse_descending_key_scan(
    orders: &[PreparedOrder],
    filter: Option<&PreparedFilter>,
) -> Result<(), ServerError> {
    let only_name_descending =
        matches!(orders, [only] if only.descending && only.path.is_document_name());
    let filters_only_the_name = filter.is_none_or(|filter| {
        leaves(filter).into_iter().all(|leaf| match leaf {
            PreparedFilter::Field { path, .. } | PreparedFilter::Unary { path, .. } => {
                path.is_document_name()
            }
            PreparedFilter::And(_) | PreparedFilter::Or(_) => true,
        })
    });
    if only_name_descending && filters_only_the_name {
        return Err(ServerError::FailedPrecondition(
            "Firestore does not support descending key scans".into(),
        ));
    }
    Ok(())
}

fn validate_cursor(cursor: &Cursor, explicit_orders: &[PreparedOrder]) -> Result<(), ServerError> {
    // Like the emulator, cursor values line up with the explicit orderBy only.
    if cursor.values.len() > explicit_orders.len() {
        return Err(ServerError::InvalidArgument(
            "Cursor has too many values.".into(),
        ));
    }
    cursor.values.iter().try_for_each(validate_query_value)?;
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
fn field_filter_matches(value: Option<&Value>, operator: FieldOperator, operand: &Value) -> bool {
    let Some(value) = value else {
        return false;
    };
    match operator {
        FieldOperator::In => match operand {
            Value::Array(candidates) => candidates.iter().any(|candidate| {
                field_filter_matches(Some(value), FieldOperator::Equal, candidate)
            }),
            _ => false,
        },
        FieldOperator::NotIn => match operand {
            Value::Array(excluded) => {
                !matches!(value, Value::Null)
                    && !excluded.iter().any(|item| matches!(item, Value::Null))
                    && !excluded.iter().any(|item| value.firestore_eq(item))
            }
            _ => false,
        },
        FieldOperator::ArrayContains => match value {
            Value::Array(elements) => elements
                .iter()
                .any(|element| field_filter_matches(Some(element), FieldOperator::Equal, operand)),
            _ => false,
        },
        FieldOperator::ArrayContainsAny => match (value, operand) {
            (Value::Array(elements), Value::Array(candidates)) => {
                candidates.iter().any(|candidate| {
                    elements.iter().any(|element| {
                        field_filter_matches(Some(element), FieldOperator::Equal, candidate)
                    })
                })
            }
            _ => false,
        },
        _ if matches!(operand, Value::Null) => false,
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
        FieldOperator::OperatorUnspecified => false,
    }
}

fn unary_filter_matches(value: Option<&Value>, operator: UnaryOperator) -> bool {
    let Some(value) = value else {
        return false;
    };
    match operator {
        UnaryOperator::IsNan => value.is_nan(),
        UnaryOperator::IsNull => matches!(value, Value::Null),
        UnaryOperator::IsNotNan => !value.is_nan() && !matches!(value, Value::Null),
        UnaryOperator::IsNotNull => !matches!(value, Value::Null),
        UnaryOperator::OperatorUnspecified => false,
    }
}

fn filter_matches(filter: &PreparedFilter, document: &NamedDocument) -> bool {
    match filter {
        PreparedFilter::Field {
            path,
            operator,
            operand,
        } => field_filter_matches(resolve(document, path).as_ref(), *operator, operand),
        PreparedFilter::Unary { path, operator } => {
            unary_filter_matches(resolve(document, path).as_ref(), *operator)
        }
        PreparedFilter::And(children) => {
            children.iter().all(|child| filter_matches(child, document))
        }
        PreparedFilter::Or(children) => {
            children.iter().any(|child| filter_matches(child, document))
        }
    }
}

/// The value a path resolves to in a document; `__name__` is the document's reference.
fn resolve(document: &NamedDocument, path: &FieldPath) -> Option<Value> {
    if path.is_document_name() {
        Some(Value::Reference(document.name.clone()))
    } else {
        path.get_in_query(&document.stored.fields).cloned()
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

/// Keeps only the fields at `paths`.
pub fn project_fields(
    fields: &BTreeMap<String, Value>,
    paths: &[FieldPath],
) -> BTreeMap<String, Value> {
    let mut selected = BTreeMap::new();
    for path in paths {
        if let Some(value) = path.get(fields) {
            path.set(&mut selected, value.clone());
        }
    }
    selected
}

/// Collects the results of a query from candidates fed in one at a time.
pub struct QueryEvaluation<'a> {
    query: &'a PreparedQuery,
    rows: Vec<(Vec<Value>, NamedDocument)>,
    /// The candidates arrive in the query's order: no sorting, and stop when full.
    streaming: bool,
}

impl QueryEvaluation<'_> {
    /// Offers one candidate; `false` once a streaming evaluation has all it needs.
    pub fn offer(&mut self, document: NamedDocument) -> bool {
        if let Some(position) = self.query.matching_position(&document) {
            if !self.streaming || self.query.within_cursors(&position) {
                self.rows.push((position, document));
            }
        }
        !(self.streaming && self.is_full())
    }

    fn is_full(&self) -> bool {
        self.query
            .limit
            .is_some_and(|limit| self.rows.len() >= self.query.offset.saturating_add(limit))
    }

    /// The documents (projected) and the positions they were ordered by.
    pub fn finish_with_positions(self) -> (Vec<(Vec<Value>, NamedDocument)>, usize) {
        let QueryEvaluation {
            query,
            mut rows,
            streaming,
        } = self;
        if !streaming {
            rows.sort_by(|(a, _), (b, _)| compare_positions(a, b, &query.orders));
            rows.retain(|(position, _)| query.within_cursors(position));
        }
        let skipped_results = query.offset.min(rows.len());
        let limit = query.limit.unwrap_or(usize::MAX);
        let rows = rows.into_iter().skip(query.offset).take(limit).collect();
        (rows, skipped_results)
    }

    pub fn finish(self) -> QueryOutput {
        let query = self.query;
        let (rows, skipped_results) = self.finish_with_positions();
        QueryOutput {
            documents: rows
                .into_iter()
                .map(|(_, document)| query.project(document))
                .collect(),
            skipped_results,
        }
    }
}

impl PreparedQuery {
    /// Starts an evaluation; `candidates_in_query_order` when they come from an index plan
    /// with `in_query_order`.
    pub fn evaluation(&self, candidates_in_query_order: bool) -> QueryEvaluation<'_> {
        QueryEvaluation {
            query: self,
            rows: Vec::new(),
            streaming: candidates_in_query_order,
        }
    }

    /// Evaluates the query over every candidate (in any order).
    pub fn execute(&self, candidates: Vec<NamedDocument>) -> QueryOutput {
        let mut evaluation = self.evaluation(false);
        for document in candidates {
            evaluation.offer(document);
        }
        evaluation.finish()
    }

    /// The document's position under the effective order, if it passes the filter and has
    /// every ordered field.
    fn matching_position(&self, document: &NamedDocument) -> Option<Vec<Value>> {
        if let Some(filter) = &self.filter {
            if !filter_matches(filter, document) {
                return None;
            }
        }
        if !self
            .required_fields
            .iter()
            .all(|path| path.get(&document.stored.fields).is_some())
        {
            return None;
        }
        self.orders
            .iter()
            .map(|order| resolve(document, &order.path))
            .collect()
    }

    /// Continues after `position` (a position under the effective order), as list page
    /// tokens do. Replaces any `startAt`.
    pub fn start_after(&mut self, position: Vec<Value>) {
        self.start_at = Some(Cursor {
            values: position,
            before: false,
        });
    }

    /// Replaces the offset and limit (list pages).
    pub fn set_page(&mut self, offset: usize, limit: Option<usize>) {
        self.offset = offset;
        self.limit = limit;
    }

    /// Checks the fields summed or averaged over this query as the emulator does: not with a
    /// projection (`select`), and not after `__name__`: a query that orders or filters by
    /// `__name__` must order by every aggregated field explicitly.
    pub fn check_aggregated_fields(&self, paths: &[FieldPath]) -> Result<(), ServerError> {
        PreparedQuery::check_projection_for_aggregations(self.projection.as_deref(), paths)?;
        if !self.names_the_document_name {
            return Ok(());
        }
        let mut unordered: Vec<&FieldPath> = paths
            .iter()
            // Ordered explicitly or through an inequality (also one under an `OR`).
            .filter(|path| !self.orders.iter().any(|order| order.path == **path))
            .collect();
        unordered.sort();
        if unordered.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = unordered.iter().map(ToString::to_string).collect();
        Err(ServerError::InvalidArgument(format!(
            "This query requires an index that has fields [{}] after __name__ and Firestore \
             does not currently support such an index. Please try the query again with \
             additional ordering on those fields.",
            names.join(", ")
        )))
    }

    /// The emulator refuses fields summed or averaged over a query with a projection
    /// (`select`) before anything else it finds wrong with the query, so a caller checks this
    /// on the request's projection before preparing the query.
    pub fn check_projection_for_aggregations(
        projection: Option<&[FieldPath]>,
        paths: &[FieldPath],
    ) -> Result<(), ServerError> {
        let Some(projection) = projection else {
            return Ok(());
        };
        if paths.is_empty() {
            return Ok(());
        }
        if projection.is_empty() {
            return Err(ServerError::InvalidArgument(
                "Aggregation over non-key properties is not supported for base query that only \
                 returns keys."
                    .into(),
            ));
        }
        let in_mask = |path: &FieldPath| {
            projection
                .iter()
                .any(|selected| path.segments().starts_with(selected.segments()))
        };
        if let Some(outside) = paths.iter().find(|path| !in_mask(path)) {
            return Err(ServerError::InvalidArgument(format!(
                "The aggregation property {outside} is not present in the base query's \
                 property mask."
            )));
        }
        Err(ServerError::InvalidArgument(
            "Cannot apply property masks when aggregation fields are present.".into(),
        ))
    }

    /// Replaces the projection (a GET's `mask.fieldPaths`).
    pub fn set_projection(&mut self, projection: Option<Vec<FieldPath>>) {
        self.projection = projection;
    }

    /// Only documents that have every one of these fields match (Firestore's rule for
    /// aggregations over fields, which see only documents holding all their fields). As on the
    /// emulator, which reads them from an index, the fields not already ordered join the order
    /// (sorted, before `__name__`, in its direction), so a `limit` keeps the documents first by
    /// those values.
    pub fn require_fields(&mut self, paths: Vec<FieldPath>) {
        let mut unordered: Vec<FieldPath> = paths
            .iter()
            .filter(|path| !self.orders.iter().any(|order| order.path == **path))
            .cloned()
            .collect();
        unordered.sort();
        unordered.dedup();
        if let Some(name_order) = self.orders.pop() {
            let descending = name_order.descending;
            self.orders.extend(
                unordered
                    .into_iter()
                    .map(|path| PreparedOrder { path, descending }),
            );
            self.orders.push(name_order);
        }
        self.required_fields = paths;
    }

    pub fn limit(&self) -> Option<usize> {
        self.limit
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

    /// The REST form of a result document, projected by `select`.
    pub fn project(&self, document: NamedDocument) -> Document {
        let NamedDocument { name, mut stored } = document;
        if let Some(paths) = &self.projection {
            stored.fields = project_fields(&stored.fields, paths);
        }
        stored.into_wire(name)
    }

    /// Whether the `field_index` table can supply this query's candidates, and how. A plan
    /// needs a plain conjunction (no `OR`) over one collection with a range or equality
    /// filter on an indexed type; it reads in query order (and may stop early) when the
    /// effective order is that field then `__name__`.
    pub fn index_plan(&self) -> Option<IndexPlan> {
        if self.all_descendants {
            return None;
        }
        let conjunction: Vec<&PreparedFilter> = match &self.filter {
            Some(filter) if !contains_or(filter) => leaves(filter),
            _ => return None,
        };
        let is_bounding = |leaf: &&PreparedFilter| -> Option<(FieldPath, FieldOperator, Value)> {
            match leaf {
                PreparedFilter::Field {
                    path,
                    operator:
                        operator @ (FieldOperator::LessThan
                        | FieldOperator::LessThanOrEqual
                        | FieldOperator::GreaterThan
                        | FieldOperator::GreaterThanOrEqual
                        | FieldOperator::Equal),
                    operand,
                } if !path.is_document_name()
                    && !operand.is_nan()
                    && sort_key(operand).is_some() =>
                {
                    Some((path.clone(), *operator, operand.clone()))
                }
                _ => None,
            }
        };
        let bounding: Vec<(FieldPath, FieldOperator, Value)> =
            conjunction.iter().filter_map(is_bounding).collect();
        let first_order = &self.orders[0];
        let chosen_path = bounding
            .iter()
            .find(|(path, _, _)| *path == first_order.path)
            .or_else(|| bounding.first())
            .map(|(path, _, _)| path.clone())?;
        let (mut lower, class_end) = {
            let (_, _, operand) = bounding
                .iter()
                .find(|(path, _, _)| *path == chosen_path)
                .expect("the chosen path comes from this list");
            type_class_bounds(operand)
        };
        let mut upper: Option<Vec<u8>> = None;
        for (path, operator, operand) in &bounding {
            if *path != chosen_path {
                continue;
            }
            let key = sort_key(operand).expect("bounding operands are indexable");
            match operator {
                FieldOperator::GreaterThan | FieldOperator::GreaterThanOrEqual => {
                    lower = lower.max(key)
                }
                FieldOperator::LessThan | FieldOperator::LessThanOrEqual => {
                    upper = Some(upper.map_or(key.clone(), |current| current.min(key)))
                }
                _ => {
                    lower = lower.max(key.clone());
                    upper = Some(upper.map_or(key.clone(), |current| current.min(key)));
                }
            }
        }
        let in_query_order = self.orders.len() == 2 && first_order.path == chosen_path;
        if in_query_order {
            // The cursors' first value bounds the range too (inclusively: the rest of the
            // position is checked on each candidate).
            let start_value = self
                .start_at
                .as_ref()
                .and_then(|cursor| cursor.values.first());
            let end_value = self
                .end_at
                .as_ref()
                .and_then(|cursor| cursor.values.first());
            let (low_cursor, high_cursor) = if first_order.descending {
                (end_value, start_value)
            } else {
                (start_value, end_value)
            };
            let class_rank = lower[0];
            let same_class = |value: &Value| {
                value.type_rank() == class_rank && !value.is_nan() && sort_key(value).is_some()
            };
            if let Some(value) = low_cursor.filter(|value| same_class(value)) {
                lower = lower.max(sort_key(value).expect("checked indexable"));
            }
            if let Some(value) = high_cursor.filter(|value| same_class(value)) {
                let key = sort_key(value).expect("checked indexable");
                upper = Some(upper.map_or(key.clone(), |current| current.min(key)));
            }
        }
        Some(IndexPlan {
            field_path: chosen_path.to_string(),
            lower,
            upper,
            class_end,
            descending: first_order.descending,
            in_query_order,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::StoredDocument;
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
        // Descending by name alone needs a filter on another field (else the emulator's
        // "descending key scan" refusal, checked below).
        check(
            json!({"orderBy": [{"field": {"fieldPath": "__name__"}, "direction": "DESCENDING"}],
                   "where": {"fieldFilter": {"field": {"fieldPath": "k"}, "op": "IN",
                       "value": {"arrayValue": {"values": [{"integerValue": "1"}, {"stringValue": "x"}, {"integerValue": "2"}]}}}}}),
            &["two", "c", "b"],
        );
    }

    #[test]
    fn a_descending_scan_of_names_alone_is_refused_as_on_the_emulator() {
        use counterbook_firestore_wire::Code;
        let by_name_descending =
            json!([{"field": {"fieldPath": "__name__"}, "direction": "DESCENDING"}]);
        let reference = json!({"referenceValue": format!("{PREFIX}a")});
        for refused in [
            json!({"orderBy": by_name_descending}),
            json!({"orderBy": by_name_descending, "limit": 1, "offset": 1}),
            json!({"orderBy": by_name_descending, "where": {"fieldFilter": {
                "field": {"fieldPath": "__name__"}, "op": "GREATER_THAN", "value": reference}}}),
            json!({"orderBy": by_name_descending, "where": {"compositeFilter": {"op": "AND", "filters": []}}}),
        ] {
            let mut query = refused;
            query["from"] = json!([{"collectionId": "items"}]);
            check_rejected(query, Code::FailedPrecondition, "descending key scans");
        }
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
            Code::InvalidArgument,
            "at least one sub-filter",
        );
        check_rejected(
            json!({"from": from, "where": {"fieldFilter": {"field": {"fieldPath": "k"}, "op": "IN", "value": {"arrayValue": {}}}}}),
            Code::InvalidArgument,
            "non-empty ArrayValue",
        );
        check_rejected(
            json!({"from": from, "where": {"fieldFilter": {"field": {"fieldPath": "k"}, "op": "IN", "value": {"integerValue": "1"}}}}),
            Code::InvalidArgument,
            "requires an ArrayValue",
        );
        check_rejected(
            json!({"from": from, "where": {"fieldFilter": {"field": {"fieldPath": "k"}, "op": "NOT_IN", "value": numbers(11)}}}),
            Code::InvalidArgument,
            "up to 10",
        );
        check_rejected(
            json!({"from": from, "where": and(vec![
                field_filter_json("k", "NOT_IN", numbers(2)),
                field_filter_json("j", "NOT_EQUAL", json!({"integerValue": "1"}))])}),
            Code::InvalidArgument,
            "Only a single",
        );
        check_rejected(
            json!({"from": from, "where": and(vec![
                field_filter_json("k", "IN", numbers(2)),
                field_filter_json("j", "NOT_IN", numbers(2))])}),
            Code::InvalidArgument,
            "'NOT_IN' cannot be used",
        );
        check_rejected(
            json!({"from": from, "where": and(vec![
                field_filter_json("k", "IN", numbers(10)),
                field_filter_json("j", "IN", numbers(4))])}),
            Code::InvalidArgument,
            "Result had 40 disjunctions",
        );
        check_rejected(
            json!({"from": from, "where": and(vec![
                field_filter_json("a", "ARRAY_CONTAINS", json!({"integerValue": "1"})),
                field_filter_json("b", "ARRAY_CONTAINS_ANY", numbers(2))])}),
            Code::InvalidArgument,
            "per disjunction",
        );
        check_rejected(
            json!({"from": from, "where": {"unaryFilter": {"field": {"fieldPath": "__name__"}, "op": "IS_NULL"}}}),
            Code::InvalidArgument,
            "must be a Key",
        );
    }

    fn numbers(count: i64) -> serde_json::Value {
        let values: Vec<_> = (1..=count)
            .map(|n| json!({"integerValue": n.to_string()}))
            .collect();
        json!({"arrayValue": {"values": values}})
    }

    fn field_filter_json(path: &str, op: &str, value: serde_json::Value) -> serde_json::Value {
        json!({"fieldFilter": {"field": {"fieldPath": path}, "op": op, "value": value}})
    }

    fn and(filters: Vec<serde_json::Value>) -> serde_json::Value {
        json!({"compositeFilter": {"op": "AND", "filters": filters}})
    }

    fn or(filters: Vec<serde_json::Value>) -> serde_json::Value {
        json!({"compositeFilter": {"op": "OR", "filters": filters}})
    }

    fn unary(op: &str) -> serde_json::Value {
        json!({"where": {"unaryFilter": {"field": {"fieldPath": "k"}, "op": op}}})
    }

    #[test]
    fn unary_membership_and_composite_filters_match_like_the_emulator() {
        check(unary("IS_NAN"), &["nan"]);
        check(unary("IS_NULL"), &["n"]);
        // Inequalities order by the field: NaN first among numbers.
        check(unary("IS_NOT_NAN"), &["c", "two", "a", "b"]);
        check(unary("IS_NOT_NULL"), &["nan", "c", "two", "a", "b"]);
        check(
            json!({"where": field_filter_json("k", "IN", json!({"arrayValue": {"values": [
                {"integerValue": "1"}, {"stringValue": "x"}, {"nullValue": null}, {"doubleValue": "NaN"}]}}))}),
            &["b", "c"],
        );
        check(
            json!({"where": field_filter_json("k", "NOT_IN", json!({"arrayValue": {"values": [
                {"integerValue": "1"}, {"stringValue": "x"}]}}))}),
            &["nan", "two", "a"],
        );
        check(
            json!({"where": field_filter_json("k", "NOT_IN", json!({"arrayValue": {"values": [{"nullValue": null}]}}))}),
            &[],
        );
        check(
            json!({"where": or(vec![
                field_filter_json("k", "EQUAL", json!({"integerValue": "1"})),
                field_filter_json("j", "EQUAL", json!({"integerValue": "1"}))])}),
            &["c", "d"],
        );
        // An inequality under OR orders by its field, so documents without it drop out.
        check(
            json!({"where": or(vec![
                field_filter_json("k", "GREATER_THAN", json!({"integerValue": "2"})),
                field_filter_json("j", "EQUAL", json!({"integerValue": "1"}))])}),
            &["a"],
        );
        check(
            json!({"where": and(vec![])}),
            &["a", "b", "c", "d", "n", "nan", "two"],
        );
    }

    #[test]
    fn array_membership_compares_numbers_by_value() {
        let arrays = vec![
            document(
                "p",
                json!({"tags": {"arrayValue": {"values": [{"integerValue": "1"}, {"stringValue": "x"}]}}}),
            ),
            document(
                "q",
                json!({"tags": {"arrayValue": {"values": [{"integerValue": "2"}]}}}),
            ),
            document("r", json!({"tags": {"stringValue": "2"}})),
        ];
        let run = |filter: serde_json::Value| {
            let query = json!({"from": [{"collectionId": "items"}], "where": filter});
            prepare_query(serde_json::from_value(query).unwrap())
                .unwrap()
                .execute(arrays.clone())
                .documents
                .into_iter()
                .map(|document| document.name.trim_start_matches(PREFIX).to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            run(field_filter_json(
                "tags",
                "ARRAY_CONTAINS",
                json!({"doubleValue": 2.0})
            )),
            ["q"]
        );
        assert_eq!(
            run(field_filter_json(
                "tags",
                "ARRAY_CONTAINS_ANY",
                json!({"arrayValue": {"values": [
                {"integerValue": "2"}, {"stringValue": "x"}]}})
            )),
            ["p", "q"]
        );
    }

    fn plan_of(query: serde_json::Value) -> Option<IndexPlan> {
        let mut query = query;
        query["from"] = json!([{"collectionId": "items"}]);
        prepare_query(serde_json::from_value(query).unwrap())
            .unwrap()
            .index_plan()
    }

    #[test]
    fn the_checkpoint_query_is_planned_on_the_index_in_query_order() {
        let since = json!({"timestampValue": "2026-01-01T00:00:00Z"});
        let plan = plan_of(json!({
            "where": field_filter_json("updatedAt", "GREATER_THAN_OR_EQUAL", since.clone()),
            "orderBy": [{"field": {"fieldPath": "updatedAt"}}, {"field": {"fieldPath": "__name__"}}],
            "startAt": {"values": [since.clone(), {"referenceValue": format!("{PREFIX}x")}]},
            "limit": 100
        }))
        .expect("an index plan");
        assert_eq!(plan.field_path, "updatedAt");
        assert!(plan.in_query_order && !plan.descending);
        assert_eq!(
            Some(plan.lower),
            sort_key(&serde_json::from_value(since).unwrap())
        );
        assert_eq!(plan.upper, None);
        // An OR, a collection group or a filter on an unindexed type scan instead.
        assert_eq!(
            plan_of(
                json!({"where": or(vec![field_filter_json("k", "EQUAL", json!({"integerValue": "1"}))])})
            ),
            None
        );
        assert_eq!(
            plan_of(json!({"where": field_filter_json("k", "EQUAL", json!({"nullValue": null}))})),
            None
        );
        let unordered = plan_of(json!({
            "where": field_filter_json("k", "EQUAL", json!({"integerValue": "1"})),
            "orderBy": [{"field": {"fieldPath": "j"}}]
        }))
        .expect("an index plan");
        assert!(!unordered.in_query_order);
    }
}
