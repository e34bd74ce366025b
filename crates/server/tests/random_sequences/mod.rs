//! Seeded random request sequences for the differential suite: commits (several writes to one
//! document, masks, transforms, preconditions, deletes, verifies), queries (filters, orders,
//! cursors, limits, offsets, projections, collection groups), aggregations and reads (get,
//! list with pages, batchGet), all over a few documents of a few collections so that writes
//! and reads meet. The same seed always gives the same sequence, so a difference found by
//! `DIFFERENTIAL_SEED=k` or `DIFFERENTIAL_SEEDS=n` can be replayed.
//!
//! Values stay in a small domain (a few integers, doubles with NaN, short strings, nulls,
//! arrays, maps, references, timestamps, bytes, now and then a vector) so that filters,
//! orders and cursors see ties, type mixes and missing fields.
//!
//! Update-time preconditions name a document (`{UT:c/a}`), and each backend substitutes the
//! last update time it reported for that document, so the precondition holds on both or on
//! neither.

use serde_json::{json, Value};

use crate::{name, post, Step};

/// SplitMix64: small, fast, and deterministic across platforms; statistical quality is not
/// the point, reproducibility is.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound`.
    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    /// `true` with probability `percent` / 100.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The documents the sequences write and read: one collection `c`, a nested `c` under one of
/// its documents (for collection groups), and another collection.
const DOCUMENTS: &[&str] = &["c/a", "c/b", "c/c", "c/d", "c/e", "c/a/c/n", "k/z"];
/// Field paths writes, filters and orders use (`m.x` reaches into a map).
const FIELD_PATHS: &[&str] = &["a", "b", "m.x", "arr"];
const TIMES: &[&str] = &["2025-01-01T00:00:00Z", "2025-01-01T00:00:01.500Z"];

fn any_document(random: &mut SplitMix64) -> &'static str {
    DOCUMENTS[random.below(DOCUMENTS.len())]
}

fn scalar(random: &mut SplitMix64) -> Value {
    match random.below(12) {
        0..=3 => json!({"integerValue": random.below(4).to_string()}),
        4 => json!({"doubleValue": *random.pick(&[0.5, 1.0, 2.0, -1.5])}),
        5 => json!({"doubleValue": "NaN"}),
        6 => json!({"stringValue": *random.pick(&["", "a", "b", "ab"])}),
        7 => json!({"nullValue": null}),
        8 => json!({"booleanValue": random.chance(50)}),
        9 => json!({"timestampValue": *random.pick(TIMES)}),
        10 => json!({"referenceValue": name(any_document(random))}),
        _ => json!({"bytesValue": *random.pick(&["AQI=", "AA=="])}),
    }
}

fn vector(random: &mut SplitMix64) -> Value {
    let elements: Vec<Value> = (0..1 + random.below(2))
        .map(|_| json!({"doubleValue": *random.pick(&[0.5, 1.0, 2.0])}))
        .collect();
    json!({"mapValue": {"fields": {"__type__": {"stringValue": "__vector__"},
        "value": {"arrayValue": {"values": elements}}}}})
}

fn value(random: &mut SplitMix64) -> Value {
    match random.below(10) {
        0 => {
            let values: Vec<Value> = (0..random.below(3)).map(|_| scalar(random)).collect();
            json!({"arrayValue": {"values": values}})
        }
        1 => {
            let mut fields = serde_json::Map::new();
            fields.insert("x".into(), scalar(random));
            if random.chance(40) {
                fields.insert("y".into(), scalar(random));
            }
            json!({"mapValue": {"fields": fields}})
        }
        2 if random.chance(30) => vector(random),
        _ => scalar(random),
    }
}

/// A document's fields: some of `a`, `b`, `m` (usually a map holding `x`), `arr`.
fn fields(random: &mut SplitMix64) -> Value {
    let mut fields = serde_json::Map::new();
    for field in ["a", "b", "m", "arr"] {
        if !random.chance(60) {
            continue;
        }
        let value = match field {
            "m" if random.chance(80) => {
                json!({"mapValue": {"fields": {"x": value(random)}}})
            }
            "arr" if random.chance(80) => {
                let values: Vec<Value> = (0..random.below(4)).map(|_| scalar(random)).collect();
                json!({"arrayValue": {"values": values}})
            }
            _ => value(random),
        };
        fields.insert(field.into(), value);
    }
    Value::Object(fields)
}

fn field_transform(random: &mut SplitMix64) -> Value {
    let path = *random.pick(&["a", "b", "m.x", "arr", "n"]);
    let number = |random: &mut SplitMix64| {
        if random.chance(60) {
            json!({"integerValue": random.below(3).to_string()})
        } else {
            json!({"doubleValue": *random.pick(&[0.5, -1.0, 2.5])})
        }
    };
    let elements = |random: &mut SplitMix64| {
        let values: Vec<Value> = (0..1 + random.below(2)).map(|_| scalar(random)).collect();
        json!({ "values": values })
    };
    match random.below(6) {
        0 => json!({"fieldPath": path, "increment": number(random)}),
        1 => json!({"fieldPath": path, "maximum": number(random)}),
        2 => json!({"fieldPath": path, "minimum": number(random)}),
        3 => json!({"fieldPath": path, "appendMissingElements": elements(random)}),
        4 => json!({"fieldPath": path, "removeAllFromArray": elements(random)}),
        _ => json!({"fieldPath": path, "setToServerValue": "REQUEST_TIME"}),
    }
}

fn precondition(random: &mut SplitMix64, document: &str) -> Option<Value> {
    match random.below(10) {
        0 | 1 => Some(json!({"exists": true})),
        2 | 3 => Some(json!({"exists": false})),
        4 | 5 => Some(json!({ "updateTime": format!("{{UT:{document}}}") })),
        6 => Some(json!({"updateTime": "2020-01-01T00:00:00Z"})),
        _ => None,
    }
}

/// One write; `true` if it is a verify (whose result's time is set aside: on a missing
/// document the emulator reports a read time of its own).
fn write(random: &mut SplitMix64) -> (Value, bool) {
    let document = *random.pick(DOCUMENTS);
    let full_name = name(document);
    let mut write = match random.below(10) {
        0..=3 => json!({"update": {"name": full_name, "fields": fields(random)}}),
        4 | 5 => {
            let mask: Vec<&str> = FIELD_PATHS
                .iter()
                .chain(&["z"])
                .copied()
                .filter(|_| random.chance(40))
                .collect();
            json!({"update": {"name": full_name, "fields": fields(random)},
                   "updateMask": {"fieldPaths": mask}})
        }
        6 => {
            let transforms: Vec<Value> = (0..1 + random.below(2))
                .map(|_| field_transform(random))
                .collect();
            json!({"update": {"name": full_name, "fields": {}}, "updateMask": {"fieldPaths": []},
                   "updateTransforms": transforms})
        }
        7 => json!({"delete": full_name}),
        8 => json!({"verify": full_name}),
        _ => {
            let transforms: Vec<Value> = (0..1 + random.below(2))
                .map(|_| field_transform(random))
                .collect();
            json!({"transform": {"document": full_name, "fieldTransforms": transforms}})
        }
    };
    if write.get("update").is_some() && write.get("updateTransforms").is_none() && random.chance(25)
    {
        write["updateTransforms"] = json!([field_transform(random)]);
    }
    let is_verify = write.get("verify").is_some();
    match precondition(random, document) {
        Some(precondition) => write["currentDocument"] = precondition,
        // A verify needs one; mostly give it one.
        None if is_verify && random.chance(80) => {
            write["currentDocument"] = json!({"exists": true})
        }
        None => {}
    }
    (write, is_verify)
}

fn commit_step(random: &mut SplitMix64) -> Step {
    let mut writes = Vec::new();
    let mut verify_results = Vec::new();
    for index in 0..1 + random.below(4) {
        let (write, is_verify) = write(random);
        if is_verify {
            verify_results.push(index);
        }
        writes.push(write);
    }
    let mut commit = post(":commit", json!({ "writes": writes }));
    commit.verify_results = verify_results;
    commit
}

fn operand_for(random: &mut SplitMix64, path: &str) -> Value {
    if path == "__name__" {
        json!({"referenceValue": name(any_document(random))})
    } else {
        value(random)
    }
}

fn leaf_filter(random: &mut SplitMix64) -> Value {
    let path = if random.chance(10) {
        "__name__"
    } else {
        *random.pick(FIELD_PATHS)
    };
    if random.chance(15) {
        let op = *random.pick(&["IS_NULL", "IS_NAN", "IS_NOT_NULL", "IS_NOT_NAN"]);
        return json!({"unaryFilter": {"field": {"fieldPath": path}, "op": op}});
    }
    let op = *random.pick(&[
        "EQUAL",
        "NOT_EQUAL",
        "LESS_THAN",
        "LESS_THAN_OR_EQUAL",
        "GREATER_THAN",
        "GREATER_THAN_OR_EQUAL",
        "IN",
        "NOT_IN",
        "ARRAY_CONTAINS",
        "ARRAY_CONTAINS_ANY",
    ]);
    let operand = if matches!(op, "IN" | "NOT_IN" | "ARRAY_CONTAINS_ANY") {
        let values: Vec<Value> = (0..1 + random.below(3))
            .map(|_| operand_for(random, path))
            .collect();
        json!({"arrayValue": {"values": values}})
    } else {
        operand_for(random, path)
    };
    json!({"fieldFilter": {"field": {"fieldPath": path}, "op": op, "value": operand}})
}

fn structured_query(random: &mut SplitMix64) -> Value {
    let mut query = serde_json::Map::new();
    let all_descendants = random.chance(15);
    query.insert(
        "from".into(),
        json!([{"collectionId": "c", "allDescendants": all_descendants}]),
    );
    if random.chance(70) {
        let filter = if random.chance(25) {
            let op = *random.pick(&["AND", "OR"]);
            let filters: Vec<Value> = (0..2).map(|_| leaf_filter(random)).collect();
            json!({"compositeFilter": {"op": op, "filters": filters}})
        } else {
            leaf_filter(random)
        };
        query.insert("where".into(), filter);
    }
    let mut ordered_paths = Vec::new();
    for _ in 0..random.below(3) {
        let path = *random.pick(&["a", "b", "m.x", "__name__"]);
        if ordered_paths.contains(&path) {
            continue;
        }
        ordered_paths.push(path);
    }
    if !ordered_paths.is_empty() {
        let orders: Vec<Value> = ordered_paths
            .iter()
            .map(|path| {
                let direction = *random.pick(&["ASCENDING", "DESCENDING"]);
                json!({"field": {"fieldPath": path}, "direction": direction})
            })
            .collect();
        query.insert("orderBy".into(), Value::Array(orders));
    }
    for (cursor, percent) in [("startAt", 30), ("endAt", 20)] {
        if !ordered_paths.is_empty() && random.chance(percent) {
            let count = 1 + random.below(ordered_paths.len());
            let values: Vec<Value> = ordered_paths[..count]
                .iter()
                .map(|path| operand_for(random, path))
                .collect();
            query.insert(
                cursor.into(),
                json!({"values": values, "before": random.chance(50)}),
            );
        }
    }
    if random.chance(40) {
        query.insert("limit".into(), json!(random.below(5)));
    }
    if random.chance(30) {
        query.insert("offset".into(), json!(random.below(4)));
    }
    if random.chance(15) {
        let fields: Vec<Value> = ["a", "m"]
            .iter()
            .filter(|_| random.chance(60))
            .map(|path| json!({ "fieldPath": path }))
            .collect();
        query.insert("select".into(), json!({ "fields": fields }));
    }
    Value::Object(query)
}

fn aggregation_step(random: &mut SplitMix64) -> Step {
    let mut query = structured_query(random);
    // Cursors and orders are valid in aggregations too; keep them sometimes.
    if random.chance(50) {
        if let Some(query) = query.as_object_mut() {
            query.remove("orderBy");
            query.remove("startAt");
            query.remove("endAt");
        }
    }
    let mut aggregations = vec![json!({"alias": "n", "count": {}})];
    if random.chance(30) {
        aggregations[0] = json!({"alias": "n", "count": {"upTo": random.below(4).to_string()}});
    }
    if random.chance(60) {
        let path = *random.pick(&["a", "b", "m.x"]);
        aggregations.push(json!({"alias": "s", "sum": {"field": {"fieldPath": path}}}));
    }
    if random.chance(60) {
        let path = *random.pick(&["a", "b", "m.x"]);
        aggregations.push(json!({"alias": "v", "avg": {"field": {"fieldPath": path}}}));
    }
    post(
        ":runAggregationQuery",
        json!({"structuredAggregationQuery": {"structuredQuery": query, "aggregations": aggregations}}),
    )
}

fn read_step(random: &mut SplitMix64, last_list_had_a_page: &mut bool) -> Step {
    match random.below(5) {
        0 | 1 => {
            let mut path = format!("/{}", *random.pick(DOCUMENTS));
            if random.chance(20) {
                path.push_str("?mask.fieldPaths=a&mask.fieldPaths=m.x");
            }
            crate::get(&path)
        }
        2 => {
            let documents: Vec<String> = (0..1 + random.below(3))
                .map(|_| name(any_document(random)))
                .collect();
            post(":batchGet", json!({ "documents": documents }))
        }
        _ => {
            // A second page only after an unordered first page: the emulator fails with 500
            // on the second page of an ordered list (a documented difference).
            if *last_list_had_a_page && random.chance(60) {
                *last_list_had_a_page = false;
                return crate::get("/c?pageSize=2&pageToken={TOKEN}");
            }
            let mut path = "/c".to_owned();
            let mut parameters = Vec::new();
            let ordered = random.chance(30);
            if ordered {
                let order = *random.pick(&["a", "b%20desc", "m.x", "a%20desc,b"]);
                parameters.push(format!("orderBy={order}"));
            }
            let paged = random.chance(50);
            if paged {
                parameters.push("pageSize=2".into());
            }
            *last_list_had_a_page = paged && !ordered;
            if !parameters.is_empty() {
                path.push('?');
                path.push_str(&parameters.join("&"));
            }
            crate::get(&path)
        }
    }
}

/// The sequence of `length` steps for one seed.
pub fn sequence(seed: u64, length: usize) -> Vec<Step> {
    let mut random = SplitMix64::new(seed);
    let mut last_list_had_a_page = false;
    (0..length)
        .map(|_| match random.below(10) {
            0..=3 => commit_step(&mut random),
            4..=6 => post(
                ":runQuery",
                json!({ "structuredQuery": structured_query(&mut random) }),
            ),
            7 => aggregation_step(&mut random),
            _ => read_step(&mut random, &mut last_list_had_a_page),
        })
        .collect()
}
