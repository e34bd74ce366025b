//! Building the `StructuredQuery` of a collection query the way Firebase's client libraries do:
//! the builder the app uses for the on-screen listen target.
//!
//! Calls accumulate and [`QueryBuilder::build`] checks them all at once, like the SDKs'
//! `Query` objects: the last `select`, `offset`, `limit`, start cursor and end cursor win; several
//! `where`s are ANDed; `== null` and `== NaN` become unary filters; a cursor taken from a document
//! snapshot adds the implicit orders (inequality field, then `__name__`) so that it names one
//! position. Google's client conformance cases (`query-*.json`) are run through it in
//! `tests/query_conformance.rs`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use counterbook_firestore_wire::{
    CollectionSelector, CompositeFilter, CompositeOperator, Cursor, Direction, Document,
    FieldFilter, FieldOperator, FieldReference, Filter, Order, Projection, QueryTarget,
    StructuredQuery, UnaryFilter, UnaryOperator, Value,
};

/// The field path that stands for the document's name.
pub const DOCUMENT_ID: &str = "__name__";

/// Why a query cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("invalid field path {0:?}: no segment may be empty")]
    InvalidFieldPath(String),
    #[error("unknown operator {0:?}")]
    InvalidOperator(String),
    #[error("null and NaN can only be compared with == or !=, not {0}")]
    NullOrNanInRange(Operator),
    #[error("a cursor needs at least one value")]
    EmptyCursor,
    #[error("cursor values need an order_by for each of them ({values} values, {orders} orders)")]
    CursorWithoutOrder { values: usize, orders: usize },
    #[error("a document-id cursor value must be a document id string, not {0}")]
    DocumentIdNotString(&'static str),
    #[error("the cursor document {document} is not in the collection {collection}")]
    DocumentNotInCollection {
        document: String,
        collection: String,
    },
    #[error("the cursor document has no field {0} to order by")]
    MissingOrderField(String),
    #[error("the collection path {0:?} does not name a collection")]
    InvalidCollectionPath(String),
}

/// A field path as segments, e.g. `["address", "city"]`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FieldPath(Vec<String>);

impl FieldPath {
    pub fn from_segments<S: Into<String>>(segments: impl IntoIterator<Item = S>) -> Self {
        FieldPath(segments.into_iter().map(Into::into).collect())
    }

    /// The document's name, `__name__`.
    pub fn document_id() -> Self {
        FieldPath(vec![DOCUMENT_ID.to_owned()])
    }

    pub fn is_document_id(&self) -> bool {
        self.0.len() == 1 && self.0[0] == DOCUMENT_ID
    }

    pub fn segments(&self) -> &[String] {
        &self.0
    }

    /// Parses the wire form: segments joined by `.`, any segment that is not a plain identifier
    /// quoted in backticks (`` a.`b.c`.`` `` ``).
    pub fn parse(encoded: &str) -> Result<Self, QueryError> {
        let invalid = || QueryError::InvalidFieldPath(encoded.to_owned());
        let mut segments = Vec::new();
        let mut chars = encoded.chars().peekable();
        loop {
            let mut segment = String::new();
            if chars.peek() == Some(&'`') {
                chars.next();
                loop {
                    match chars.next() {
                        None => return Err(invalid()),
                        Some('`') => break,
                        Some('\\') => segment.push(chars.next().ok_or_else(invalid)?),
                        Some(c) => segment.push(c),
                    }
                }
                if !matches!(chars.peek(), None | Some('.')) {
                    return Err(invalid());
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == '.' {
                        break;
                    }
                    segment.push(c);
                    chars.next();
                }
            }
            if segment.is_empty() {
                return Err(invalid());
            }
            segments.push(segment);
            if chars.next().is_none() {
                return Ok(FieldPath(segments));
            }
        }
    }

    /// The wire form (see [`FieldPath::parse`]).
    pub fn encoded(&self) -> String {
        let mut out = String::new();
        for (i, segment) in self.0.iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            let plain = segment
                .chars()
                .next()
                .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
                && segment
                    .chars()
                    .all(|c| c == '_' || c.is_ascii_alphanumeric());
            if plain {
                out.push_str(segment);
            } else {
                out.push('`');
                for c in segment.chars() {
                    if c == '`' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('`');
            }
        }
        out
    }

    /// The value at this path in a document's fields, if there is one.
    pub fn lookup<'a>(&self, fields: &'a BTreeMap<String, Value>) -> Option<&'a Value> {
        let (first, rest) = self.0.split_first()?;
        let mut value = fields.get(first)?;
        for segment in rest {
            match value {
                Value::Map(map) => value = map.get(segment)?,
                _ => return None,
            }
        }
        Some(value)
    }

    fn validate(&self) -> Result<(), QueryError> {
        if self.0.is_empty() || self.0.iter().any(String::is_empty) {
            return Err(QueryError::InvalidFieldPath(format!("{:?}", self.0)));
        }
        Ok(())
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encoded())
    }
}

/// A `where` comparison, spelled as in the SDKs (`"<"`, `"array-contains"`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
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

impl Operator {
    const SPELLINGS: [(&'static str, Operator); 10] = [
        ("<", Operator::LessThan),
        ("<=", Operator::LessThanOrEqual),
        (">", Operator::GreaterThan),
        (">=", Operator::GreaterThanOrEqual),
        ("==", Operator::Equal),
        ("!=", Operator::NotEqual),
        ("array-contains", Operator::ArrayContains),
        ("in", Operator::In),
        ("array-contains-any", Operator::ArrayContainsAny),
        ("not-in", Operator::NotIn),
    ];

    fn wire(self) -> FieldOperator {
        match self {
            Operator::LessThan => FieldOperator::LessThan,
            Operator::LessThanOrEqual => FieldOperator::LessThanOrEqual,
            Operator::GreaterThan => FieldOperator::GreaterThan,
            Operator::GreaterThanOrEqual => FieldOperator::GreaterThanOrEqual,
            Operator::Equal => FieldOperator::Equal,
            Operator::NotEqual => FieldOperator::NotEqual,
            Operator::ArrayContains => FieldOperator::ArrayContains,
            Operator::In => FieldOperator::In,
            Operator::ArrayContainsAny => FieldOperator::ArrayContainsAny,
            Operator::NotIn => FieldOperator::NotIn,
        }
    }

    /// Whether a document-snapshot cursor orders by this filter's field first.
    fn is_inequality(self) -> bool {
        matches!(
            self,
            Operator::LessThan
                | Operator::LessThanOrEqual
                | Operator::GreaterThan
                | Operator::GreaterThanOrEqual
                | Operator::NotEqual
                | Operator::NotIn
        )
    }
}

impl FromStr for Operator {
    type Err = QueryError;
    fn from_str(spelling: &str) -> Result<Self, QueryError> {
        Operator::SPELLINGS
            .iter()
            .find(|(text, _)| *text == spelling)
            .map(|(_, op)| *op)
            .ok_or_else(|| QueryError::InvalidOperator(spelling.to_owned()))
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = Operator::SPELLINGS
            .iter()
            .find(|(_, op)| op == self)
            .map_or("?", |(text, _)| text);
        f.write_str(text)
    }
}

/// Where a cursor points: at values of the order-by fields, or at a document.
#[derive(Clone, Debug, PartialEq)]
pub enum CursorAt {
    /// One value per order-by field, in order (a prefix is allowed). For `__name__`, a
    /// document id string or a reference.
    Values(Vec<Value>),
    /// A document as read (full name and fields): the cursor takes its values.
    Document(Document),
}

#[derive(Clone, Debug, PartialEq)]
struct Bound {
    at: CursorAt,
    /// Proto's `before`: startAt and endBefore are before the position.
    before: bool,
}

/// A query on one collection, built call by call. See the module documentation.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryBuilder {
    /// `projects/{p}/databases/{d}/documents` or a document below it.
    parent: String,
    collection_id: String,
    select: Option<Vec<FieldPath>>,
    filters: Vec<(FieldPath, Operator, Value)>,
    orders: Vec<(FieldPath, Direction)>,
    offset: Option<i32>,
    limit: Option<i32>,
    start: Option<Bound>,
    end: Option<Bound>,
}

impl QueryBuilder {
    pub fn new(parent: impl Into<String>, collection_id: impl Into<String>) -> Self {
        QueryBuilder {
            parent: parent.into(),
            collection_id: collection_id.into(),
            select: None,
            filters: Vec::new(),
            orders: Vec::new(),
            offset: None,
            limit: None,
            start: None,
            end: None,
        }
    }

    /// A query on the collection with this full resource name
    /// (`projects/p/databases/(default)/documents/shops/s1/products`).
    pub fn collection(collection_name: &str) -> Result<Self, QueryError> {
        let invalid = || QueryError::InvalidCollectionPath(collection_name.to_owned());
        let (parent, collection_id) = collection_name.rsplit_once('/').ok_or_else(invalid)?;
        let below_documents = parent == "documents" || parent.ends_with("/documents");
        let nested = parent.split_once("/documents/").is_some_and(|(_, path)| {
            // A subcollection's parent is a document: an even number of segments below.
            path.split('/').count() % 2 == 0
        });
        if collection_id.is_empty() || !(below_documents || nested) {
            return Err(invalid());
        }
        Ok(QueryBuilder::new(parent, collection_id))
    }

    /// The collection's full resource name.
    pub fn collection_name(&self) -> String {
        format!("{}/{}", self.parent, self.collection_id)
    }

    pub fn select(mut self, fields: Vec<FieldPath>) -> Self {
        self.select = Some(fields);
        self
    }

    pub fn where_field(mut self, field: FieldPath, op: Operator, value: Value) -> Self {
        self.filters.push((field, op, value));
        self
    }

    pub fn order_by(mut self, field: FieldPath, direction: Direction) -> Self {
        self.orders.push((field, direction));
        self
    }

    pub fn offset(mut self, offset: i32) -> Self {
        self.offset = Some(offset);
        self
    }

    pub fn limit(mut self, limit: i32) -> Self {
        self.limit = Some(limit);
        self
    }

    pub fn start_at(mut self, at: CursorAt) -> Self {
        self.start = Some(Bound { at, before: true });
        self
    }

    pub fn start_after(mut self, at: CursorAt) -> Self {
        self.start = Some(Bound { at, before: false });
        self
    }

    pub fn end_at(mut self, at: CursorAt) -> Self {
        self.end = Some(Bound { at, before: false });
        self
    }

    pub fn end_before(mut self, at: CursorAt) -> Self {
        self.end = Some(Bound { at, before: true });
        self
    }

    /// The listen target (parent and query), or the first problem found.
    pub fn build(&self) -> Result<QueryTarget, QueryError> {
        Ok(QueryTarget {
            parent: self.parent.clone(),
            structured_query: self.structured_query()?,
        })
    }

    /// The `StructuredQuery` alone (its collection is relative to the parent).
    pub fn structured_query(&self) -> Result<StructuredQuery, QueryError> {
        for path in self.select.iter().flatten() {
            path.validate()?;
        }
        for (path, _, _) in &self.filters {
            path.validate()?;
        }
        for (path, _) in &self.orders {
            path.validate()?;
        }
        let filters = self
            .filters
            .iter()
            .map(|(path, op, value)| self.filter(path, *op, value))
            .collect::<Result<Vec<_>, _>>()?;
        let filter = match filters.len() {
            0 => None,
            1 => filters.into_iter().next(),
            _ => Some(Filter::CompositeFilter(CompositeFilter {
                op: CompositeOperator::And,
                filters,
            })),
        };
        let orders = self.effective_orders();
        let start_at = self
            .start
            .as_ref()
            .map(|bound| self.cursor(bound, &orders))
            .transpose()?;
        let end_at = self
            .end
            .as_ref()
            .map(|bound| self.cursor(bound, &orders))
            .transpose()?;
        let select = self.select.as_ref().map(|fields| Projection {
            fields: if fields.is_empty() {
                // Selecting nothing still returns the documents, with their names only.
                vec![FieldReference::new(DOCUMENT_ID)]
            } else {
                fields
                    .iter()
                    .map(|path| FieldReference::new(path.encoded()))
                    .collect()
            },
        });
        Ok(StructuredQuery {
            select,
            from: vec![CollectionSelector {
                collection_id: self.collection_id.clone(),
                all_descendants: false,
            }],
            filter,
            order_by: orders
                .iter()
                .map(|(path, direction)| Order {
                    field: FieldReference::new(path.encoded()),
                    direction: Some(*direction),
                })
                .collect(),
            start_at,
            end_at,
            offset: self.offset,
            limit: self.limit,
        })
    }

    fn filter(&self, path: &FieldPath, op: Operator, value: &Value) -> Result<Filter, QueryError> {
        let field = FieldReference::new(path.encoded());
        let unary = |op| {
            Ok(Filter::UnaryFilter(UnaryFilter {
                op,
                field: field.clone(),
            }))
        };
        match (value, op) {
            (Value::Null, Operator::Equal) => unary(UnaryOperator::IsNull),
            (Value::Null, Operator::NotEqual) => unary(UnaryOperator::IsNotNull),
            (value, Operator::Equal) if value.is_nan() => unary(UnaryOperator::IsNan),
            (value, Operator::NotEqual) if value.is_nan() => unary(UnaryOperator::IsNotNan),
            (value, op) if matches!(value, Value::Null) || value.is_nan() => {
                Err(QueryError::NullOrNanInRange(op))
            }
            (value, op) => {
                let value = if path.is_document_id() {
                    self.document_reference(value)?
                } else {
                    value.clone()
                };
                Ok(Filter::FieldFilter(FieldFilter {
                    field,
                    op: op.wire(),
                    value,
                }))
            }
        }
    }

    /// The orders the query sends: the explicit ones, plus, when a cursor is a document, what
    /// makes that position unique (as the SDKs do).
    fn effective_orders(&self) -> Vec<(FieldPath, Direction)> {
        let from_document = [&self.start, &self.end]
            .into_iter()
            .flatten()
            .any(|bound| matches!(bound.at, CursorAt::Document(_)));
        let mut orders = self.orders.clone();
        if !from_document || orders.iter().any(|(path, _)| path.is_document_id()) {
            return orders;
        }
        match orders.last() {
            Some((_, direction)) => {
                let direction = *direction;
                orders.push((FieldPath::document_id(), direction));
            }
            None => {
                if let Some((path, _, _)) =
                    self.filters.iter().find(|(_, op, _)| op.is_inequality())
                {
                    orders.push((path.clone(), Direction::Ascending));
                }
                orders.push((FieldPath::document_id(), Direction::Ascending));
            }
        }
        orders
    }

    fn cursor(
        &self,
        bound: &Bound,
        orders: &[(FieldPath, Direction)],
    ) -> Result<Cursor, QueryError> {
        let values = match &bound.at {
            CursorAt::Values(values) => {
                if values.is_empty() {
                    return Err(QueryError::EmptyCursor);
                }
                if values.len() > orders.len() {
                    return Err(QueryError::CursorWithoutOrder {
                        values: values.len(),
                        orders: orders.len(),
                    });
                }
                values
                    .iter()
                    .zip(orders)
                    .map(|(value, (path, _))| {
                        if path.is_document_id() {
                            self.document_reference(value)
                        } else {
                            Ok(value.clone())
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
            CursorAt::Document(document) => {
                let collection = self.collection_name();
                let in_collection = document
                    .name
                    .rsplit_once('/')
                    .is_some_and(|(parent, id)| parent == collection && !id.is_empty());
                if !in_collection {
                    return Err(QueryError::DocumentNotInCollection {
                        document: document.name.clone(),
                        collection,
                    });
                }
                orders
                    .iter()
                    .map(|(path, _)| {
                        if path.is_document_id() {
                            Ok(Value::Reference(document.name.clone()))
                        } else {
                            path.lookup(&document.fields)
                                .cloned()
                                .ok_or_else(|| QueryError::MissingOrderField(path.encoded()))
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        Ok(Cursor {
            values,
            before: bound.before,
        })
    }

    /// A `__name__` operand: a document id in this collection, or a reference as is.
    fn document_reference(&self, value: &Value) -> Result<Value, QueryError> {
        match value {
            Value::Reference(_) => Ok(value.clone()),
            Value::String(id) if !id.is_empty() && !id.contains('/') => {
                Ok(Value::Reference(format!("{}/{id}", self.collection_name())))
            }
            other => Err(QueryError::DocumentIdNotString(other.type_name())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "projects/p/databases/(default)/documents/shops/s1";

    fn check(builder: QueryBuilder, expected: serde_json::Value) {
        let query = builder.structured_query().expect("a valid query");
        assert_eq!(serde_json::to_value(&query).unwrap(), expected);
    }

    fn path(dotted: &str) -> FieldPath {
        FieldPath::parse(dotted).unwrap()
    }

    #[test]
    fn field_paths_quote_what_is_not_an_identifier() {
        for (segments, encoded) in [
            (vec!["a"], "a"),
            (vec!["a", "b_1"], "a.b_1"),
            (vec!["a.b", "c"], "`a.b`.c"),
            (vec!["1st"], "`1st`"),
            (vec!["back`tick\\"], "`back\\`tick\\\\`"),
        ] {
            let field = FieldPath::from_segments(segments);
            assert_eq!(field.encoded(), encoded);
            assert_eq!(FieldPath::parse(encoded).unwrap(), field);
        }
        for bad in ["", "a..b", "a.", "`a", "`a`b"] {
            assert!(FieldPath::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_on_screen_products_query() {
        check(
            QueryBuilder::new(PARENT, "products")
                .where_field(
                    path("price"),
                    Operator::GreaterThanOrEqual,
                    Value::Integer(100),
                )
                .order_by(path("price"), Direction::Ascending)
                .limit(50),
            serde_json::json!({
                "from": [{"collectionId": "products"}],
                "where": {"fieldFilter": {
                    "field": {"fieldPath": "price"},
                    "op": "GREATER_THAN_OR_EQUAL",
                    "value": {"integerValue": "100"}
                }},
                "orderBy": [{"field": {"fieldPath": "price"}, "direction": "ASCENDING"}],
                "limit": 50
            }),
        );
    }

    #[test]
    fn in_and_array_contains_pass_their_operands_through() {
        let values = Value::Array(vec![Value::String("a".into()), Value::String("b".into())]);
        check(
            QueryBuilder::new(PARENT, "products")
                .where_field(path("sku"), "in".parse().unwrap(), values)
                .where_field(
                    path("barcodes"),
                    "array-contains".parse().unwrap(),
                    Value::String("890".into()),
                ),
            serde_json::json!({
                "from": [{"collectionId": "products"}],
                "where": {"compositeFilter": {"op": "AND", "filters": [
                    {"fieldFilter": {"field": {"fieldPath": "sku"}, "op": "IN",
                        "value": {"arrayValue": {"values": [
                            {"stringValue": "a"}, {"stringValue": "b"}]}}}},
                    {"fieldFilter": {"field": {"fieldPath": "barcodes"}, "op": "ARRAY_CONTAINS",
                        "value": {"stringValue": "890"}}}
                ]}}
            }),
        );
        assert_eq!(
            "~".parse::<Operator>(),
            Err(QueryError::InvalidOperator("~".into()))
        );
    }

    #[test]
    fn collection_names_split_into_parent_and_id() {
        let builder =
            QueryBuilder::collection("projects/p/databases/(default)/documents/shops/s1/products")
                .unwrap();
        assert_eq!(builder.build().unwrap().parent, PARENT);
        assert!(QueryBuilder::collection("projects/p/databases/(default)/documents/shops").is_ok());
        assert!(
            QueryBuilder::collection("projects/p/databases/(default)/documents/shops/s1").is_err()
        );
    }
}
