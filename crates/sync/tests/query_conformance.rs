//! Runs every `query-*.json` case of Google's Firestore client conformance tests through
//! [`QueryBuilder`]: the query calls of each case must build the expected `StructuredQuery`, or
//! fail where the case says the call is an error.
//!
//! The files are the copy in `crates/firestore-wire/tests/data/conformance/` (one copy in the
//! repository; see the README there).
//!
//! The cases give values as JSON text. Numbers that are whole become integers, others doubles;
//! the string `"NaN"` is a NaN double. The write sentinels (`"Delete"`, `"ServerTimestamp"`,
//! `["ArrayUnion", ...]`, `["ArrayRemove", ...]`) have no [`Value`] at all in our typed API, so a
//! case that puts one in a query cannot even be written: converting it fails here, which is the
//! error the case expects, and those cases are counted apart.

use std::collections::BTreeMap;
use std::path::Path;

use counterbook_firestore_wire::{Direction, Document, StructuredQuery, Value};
use counterbook_sync::query_builder::{CursorAt, FieldPath, Operator, QueryBuilder};
use serde_json::Value as Json;

/// Why a case's input could not become builder calls.
#[derive(Debug)]
enum Input {
    /// A write sentinel where a query value belongs: unrepresentable in the typed API.
    Sentinel,
    /// An operator the builder does not know.
    Operator,
}

fn value_from_json(json: &Json) -> Result<Value, Input> {
    Ok(match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Double(n.as_f64().unwrap()),
        },
        Json::String(s) if s == "NaN" => Value::Double(f64::NAN),
        Json::String(s) if s == "Delete" || s == "ServerTimestamp" => return Err(Input::Sentinel),
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => {
            if let Some(Json::String(first)) = items.first() {
                if first == "ArrayUnion" || first == "ArrayRemove" {
                    return Err(Input::Sentinel);
                }
            }
            Value::Array(
                items
                    .iter()
                    .map(value_from_json)
                    .collect::<Result<_, _>>()?,
            )
        }
        Json::Object(map) => Value::Map(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), value_from_json(v)?)))
                .collect::<Result<BTreeMap<_, _>, _>>()?,
        ),
    })
}

fn value_from_text(text: &Json) -> Result<Value, Input> {
    value_from_json(&serde_json::from_str(text.as_str().unwrap()).unwrap())
}

fn field_path(json: &Json) -> FieldPath {
    FieldPath::from_segments(
        json["field"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned()),
    )
}

fn cursor(json: &Json) -> Result<CursorAt, Input> {
    if let Some(snapshot) = json.get("docSnapshot") {
        let Value::Map(fields) = value_from_text(&snapshot["jsonData"])? else {
            panic!("jsonData is an object")
        };
        return Ok(CursorAt::Document(Document {
            name: snapshot["path"].as_str().unwrap().to_owned(),
            fields,
            ..Document::default()
        }));
    }
    let values = json
        .get("jsonValues")
        .and_then(Json::as_array)
        .map(|values| values.iter().map(value_from_text).collect())
        .unwrap_or(Ok(Vec::new()))?;
    Ok(CursorAt::Values(values))
}

fn apply(mut builder: QueryBuilder, clause: &Json) -> Result<QueryBuilder, Input> {
    let (kind, body) = clause.as_object().unwrap().iter().next().unwrap();
    builder = match kind.as_str() {
        "select" => builder.select(
            body.get("fields")
                .and_then(Json::as_array)
                .map(|fields| fields.iter().map(field_path).collect())
                .unwrap_or_default(),
        ),
        "where" => {
            let op = body["op"].as_str().unwrap();
            let op: Operator = op.parse().map_err(|_| Input::Operator)?;
            builder.where_field(
                field_path(&body["path"]),
                op,
                value_from_text(&body["jsonValue"])?,
            )
        }
        "orderBy" => {
            let direction = match body["direction"].as_str() {
                Some("desc") => Direction::Descending,
                _ => Direction::Ascending,
            };
            builder.order_by(field_path(&body["path"]), direction)
        }
        "offset" => builder.offset(body.as_i64().unwrap() as i32),
        "limit" => builder.limit(body.as_i64().unwrap() as i32),
        "startAt" => builder.start_at(cursor(body)?),
        "startAfter" => builder.start_after(cursor(body)?),
        "endAt" => builder.end_at(cursor(body)?),
        "endBefore" => builder.end_before(cursor(body)?),
        other => panic!("unknown clause {other}"),
    };
    Ok(builder)
}

#[test]
fn every_query_case_builds_the_expected_query_or_fails() {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../firestore-wire/tests/data/conformance");
    let mut built = 0;
    let mut refused_by_builder = 0;
    let mut unrepresentable = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(file.starts_with("query-") && file.ends_with(".json")) {
            continue;
        }
        let root: Json = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for test in root["tests"].as_array().unwrap() {
            let case = &test["query"];
            let description = test["description"].as_str().unwrap_or_default();
            let is_error = case["isError"].as_bool().unwrap_or(false);
            let builder = QueryBuilder::collection(case["collPath"].as_str().unwrap())
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            let clauses = case["clauses"].as_array().cloned().unwrap_or_default();
            let builder = clauses.iter().try_fold(builder, apply);
            let builder = match builder {
                Ok(builder) => builder,
                Err(input) => {
                    assert!(
                        is_error,
                        "{file} ({description}): {input:?} in a valid case"
                    );
                    match input {
                        Input::Sentinel => unrepresentable += 1,
                        Input::Operator => refused_by_builder += 1,
                    }
                    continue;
                }
            };
            match builder.structured_query() {
                Ok(query) => {
                    assert!(
                        !is_error,
                        "{file} ({description}): built {query:?}, expected an error"
                    );
                    let expected: StructuredQuery =
                        serde_json::from_value(case["query"].clone()).unwrap();
                    assert_eq!(query, expected, "{file} ({description})");
                    built += 1;
                }
                Err(error) => {
                    assert!(is_error, "{file} ({description}): unexpected error {error}");
                    refused_by_builder += 1;
                }
            }
        }
    }
    println!(
        "query conformance: {built} built as expected, {refused_by_builder} refused by the \
         builder, {unrepresentable} with write sentinels our types cannot express"
    );
    // Exact counts: a moved data folder, a skipped case or a case changing sides all fail here.
    assert_eq!(
        (built, refused_by_builder, unrepresentable),
        (24, 10, 8),
        "of the 42 cases: built, refused by the builder, unrepresentable"
    );
}
