//! The differential suite: every scenario below is a sequence of HTTP requests sent, in the
//! same order, to Google's Firestore emulator and to the real `counterbook-server` binary; the
//! two must answer with the same status codes and the same normalized JSON bodies.
//!
//! Each scenario uses its own project id, so scenarios are independent on both backends.
//! Both processes start once for the whole suite, each in its own process group that is killed
//! when the test ends, also on a panic. The emulator must start: the test fails otherwise.
//!
//! Normalization (`normalize`) sets aside what legitimately differs between two servers:
//! `createTime`, `updateTime`, `readTime` and `commitTime` become `<time>`; a `timestampValue`
//! within a day of now (one `REQUEST_TIME` produced) becomes `<request-time>`; transaction ids
//! and page tokens become placeholders (each backend's own are captured and sent back in later
//! steps as `{TX}` and `{TOKEN}`; `{UPDATE_TIME}` is the first write result's update time); an
//! error body is reduced to its `code` and `status` (messages differ); the body of a 413 is
//! ignored (the emulator's front end sends none).
//!
//! After the scenarios, seeded random sequences (`random_sequences`) run on both backends the
//! same way, with times labelled by order of appearance instead of set aside (`TimeLabels`);
//! `DIFFERENTIAL_SEEDS=n` runs more seeds, `DIFFERENTIAL_SEED=k` replays one verbosely.
//!
//! Known, intentional differences are not skipped: a step that differs says so with
//! `Expect::Differs`, naming each backend's status and why, and both statuses are checked.
//! They are listed in `crates/server/README.md` too.

mod random_sequences;
mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use support::binary::{free_port, start_group, RunningServer, EMULATOR};

/// Java takes a while on a small machine; this is a ceiling, not a wait.
const START_LIMIT: Duration = Duration::from_secs(180);

/// What a step must show.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Same status and same normalized body on both.
    Same,
    /// A documented difference: each backend's status, and why they differ.
    Differs {
        emulator: u16,
        ours: u16,
        why: &'static str,
    },
}

#[derive(Clone, Debug)]
struct Step {
    method: &'static str,
    /// Below `/v1/projects/{p}/databases/(default)/documents`, e.g. `:commit` or `/c/a`.
    path: String,
    body: Option<Vec<u8>>,
    content_type: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    expect: Expect,
    /// Compare error messages too (only where this server words them as the emulator does).
    same_message: bool,
    /// Indices of a commit's writes that are verifies: their results' times are set aside (on
    /// a missing document the emulator reports a read time of its own, this server the
    /// commit time).
    verify_results: Vec<usize>,
}

struct Scenario {
    name: &'static str,
    steps: Vec<Step>,
}

fn step(method: &'static str, path: &str, body: Option<Value>) -> Step {
    Step {
        method,
        path: path.to_owned(),
        body: body.map(|body| body.to_string().into_bytes()),
        content_type: "application/json",
        headers: Vec::new(),
        expect: Expect::Same,
        same_message: false,
        verify_results: Vec::new(),
    }
}

fn get(path: &str) -> Step {
    step("GET", path, None)
}

fn post(path: &str, body: Value) -> Step {
    step("POST", path, Some(body))
}

fn patch(path: &str, body: Value) -> Step {
    step("PATCH", path, Some(body))
}

fn delete(path: &str) -> Step {
    step("DELETE", path, None)
}

fn commit(writes: Value) -> Step {
    post(":commit", json!({ "writes": writes }))
}

fn query(structured_query: Value) -> Step {
    post(":runQuery", json!({ "structuredQuery": structured_query }))
}

fn aggregate(structured_query: Value, aggregations: Value) -> Step {
    post(
        ":runAggregationQuery",
        json!({"structuredAggregationQuery": {"structuredQuery": structured_query, "aggregations": aggregations}}),
    )
}

impl Step {
    fn differs(mut self, emulator: u16, ours: u16, why: &'static str) -> Step {
        self.expect = Expect::Differs {
            emulator,
            ours,
            why,
        };
        self
    }

    /// Requires the same error message as well as the same code and status.
    fn same_message(mut self) -> Step {
        self.same_message = true;
        self
    }

    fn content_type(mut self, content_type: &'static str) -> Step {
        self.content_type = content_type;
        self
    }

    fn header(mut self, name: &'static str, value: &'static str) -> Step {
        self.headers.push((name, value));
        self
    }
}

/// The full name of a document of the scenario's project.
fn name(path: &str) -> String {
    format!("{{ROOT}}/{path}")
}

fn update(path: &str, fields: Value) -> Value {
    json!({"update": {"name": name(path), "fields": fields}})
}

fn int(value: i64) -> Value {
    json!({ "integerValue": value.to_string() })
}

fn double(value: f64) -> Value {
    json!({ "doubleValue": value })
}

fn string(value: &str) -> Value {
    json!({ "stringValue": value })
}

fn array(values: Vec<Value>) -> Value {
    json!({"arrayValue": {"values": values}})
}

fn nan() -> Value {
    json!({"doubleValue": "NaN"})
}

fn from(collection: &str) -> Value {
    json!([{ "collectionId": collection }])
}

fn field_filter(path: &str, op: &str, value: Value) -> Value {
    json!({"fieldFilter": {"field": {"fieldPath": path}, "op": op, "value": value}})
}

fn unary_filter(path: &str, op: &str) -> Value {
    json!({"unaryFilter": {"field": {"fieldPath": path}, "op": op}})
}

fn composite(op: &str, filters: Vec<Value>) -> Value {
    json!({"compositeFilter": {"op": op, "filters": filters}})
}

fn order(path: &str, direction: &str) -> Value {
    json!({"field": {"fieldPath": path}, "direction": direction})
}

fn numbers(count: i64) -> Value {
    array((1..=count).map(int).collect())
}

fn transform(path: &str, fields: Value, transforms: Value) -> Value {
    json!({"update": {"name": name(path), "fields": fields}, "updateMask": {"fieldPaths": []},
           "updateTransforms": transforms})
}

/// A collection of mixed values under `c`, the emulator's probe set.
fn seed_mixed() -> Step {
    commit(json!([
        update(
            "c/a",
            json!({"k": int(1), "arr": array(vec![int(1), string("x")])})
        ),
        update("c/b", json!({"k": double(2.5), "arr": array(vec![int(2)])})),
        update("c/c", json!({"k": string("x")})),
        update("c/d", json!({"k": {"nullValue": null}})),
        update("c/e", json!({"k": nan()})),
        update("c/f", json!({"j": int(1)})),
        update("c/g", json!({"k": array(vec![int(1)])})),
        update("c/two", json!({"k": double(2.0)})),
        update("c/a/c/deep", json!({"k": int(1)})),
        update("x/y/c/deep2", json!({"k": int(7)})),
    ]))
}

fn scenarios() -> Vec<Scenario> {
    let mut all = Vec::new();
    let mut add = |name: &'static str, steps: Vec<Step>| all.push(Scenario { name, steps });

    // --- GET, list, PATCH, DELETE ---
    add("get a missing document", vec![get("/c/missing")]);
    add(
        "get with a field mask",
        vec![
            commit(json!([update(
                "c/a",
                json!({"x": int(1), "y": string("s"),
                "m": {"mapValue": {"fields": {"k": int(2), "l": int(3)}}}})
            )])),
            get("/c/a?mask.fieldPaths=m.k&mask.fieldPaths=x"),
            get("/c/a?mask.fieldPaths=nothing"),
            get("/c/a?key=AIzaFake"),
        ],
    );
    add(
        "list a collection",
        vec![seed_mixed(), get("/c"), get("/c/a/c"), get("/empty")],
    );
    add(
        "list in pages with tokens",
        vec![
            seed_mixed(),
            get("/c?pageSize=3&mask.fieldPaths=k"),
            get("/c?pageSize=3&mask.fieldPaths=k&pageToken={TOKEN}"),
            get("/c?pageSize=3&mask.fieldPaths=k&pageToken={TOKEN}"),
        ],
    );
    add(
        "list ordered and masked",
        vec![
            seed_mixed(),
            get("/c?orderBy=k%20desc&mask.fieldPaths=k"),
            get("/c?orderBy=j"),
            get("/c?orderBy=k&pageSize=2&mask.fieldPaths=k"),
            get("/c?orderBy=k&pageSize=2&mask.fieldPaths=k&pageToken={TOKEN}").differs(
                500,
                200,
                "the emulator fails with 500 UNKNOWN on the second page of a list with orderBy; this server serves it",
            ),
        ],
    );
    add(
        "list errors",
        vec![
            get("/c?pageToken=garbage"),
            get("/c?orderBy=nope%20sideways"),
            get("/c?pageSize=-1"),
        ],
    );
    add(
        "patch creates, replaces and masks",
        vec![
            patch("/c/a", json!({"fields": {"x": int(1), "y": int(2)}})),
            patch(
                "/c/a?updateMask.fieldPaths=x&updateMask.fieldPaths=z",
                json!({"fields": {"y": int(5), "z": int(9)}}),
            ),
            patch("/c/a?updateMask.fieldPaths=x", json!({"fields": {}})),
            patch(
                "/c/a?mask.fieldPaths=q",
                json!({"fields": {"q": int(5), "r": int(6)}}),
            ),
            get("/c/a"),
        ],
    );
    add(
        "patch preconditions",
        vec![
            patch("/c/a", json!({"fields": {}})),
            patch("/c/a?currentDocument.exists=false", json!({"fields": {}})),
            patch("/c/new?currentDocument.exists=true", json!({"fields": {}})),
            patch(
                "/c/a?currentDocument.updateTime=2020-01-01T00:00:00Z",
                json!({"fields": {}}),
            ),
            patch(
                "/c/a?currentDocument.exists=true",
                json!({"fields": {"v": int(2)}}),
            ),
            get("/c/new"),
        ],
    );
    add(
        "patch errors",
        vec![
            patch("/c", json!({})),
            patch("/c/a?updateMask.fieldPaths=a..b", json!({})),
            patch("/c/a?updateMask.fieldPaths=__k__", json!({})),
            patch("/c/a", json!({"fields": {}, "bogus": true})),
        ],
    );
    add(
        "delete with and without preconditions",
        vec![
            delete("/c/missing"),
            delete("/c/missing?currentDocument.exists=true"),
            patch("/c/a", json!({"fields": {"x": int(1)}})),
            delete("/c/a?currentDocument.exists=false"),
            delete("/c/a?currentDocument.updateTime=2020-01-01T00:00:00Z"),
            delete("/c/a?currentDocument.exists=true"),
            get("/c/a"),
            delete("/c"),
        ],
    );

    // --- :commit ---
    add(
        "every value type round trips",
        vec![
            commit(json!([update(
                "c/all",
                json!({
                    "null": {"nullValue": null}, "bool": {"booleanValue": true}, "int": int(-42),
                    "double": double(1.5), "nan": nan(), "inf": {"doubleValue": "-Infinity"},
                    "time": {"timestampValue": "2001-02-03T04:05:06.789Z"},
                    "string": string("chai ☕"), "bytes": {"bytesValue": "AQI="},
                    "ref": {"referenceValue": name("c/other")},
                    "geo": {"geoPointValue": {"latitude": 36.75, "longitude": 3.06}},
                    "array": array(vec![int(1), string("a")]), "emptyArray": {"arrayValue": {}},
                    "map": {"mapValue": {"fields": {"nested": {"mapValue": {"fields": {"deep": int(1)}}}}}},
                    "emptyMap": {"mapValue": {}}
                })
            )])),
            get("/c/all"),
        ],
    );
    add(
        "update masks",
        vec![
            commit(json!([update(
                "c/a",
                json!({"name": string("Chai"), "price": int(10),
                "stock": int(5), "meta": {"mapValue": {"fields": {"a": int(1), "b": int(2)}}}})
            )])),
            commit(
                json!([{"update": {"name": name("c/a"), "fields": {"price": int(12), "stock": int(999),
                "meta": {"mapValue": {"fields": {"a": int(10)}}}}},
                "updateMask": {"fieldPaths": ["price", "name", "meta.a", "`odd key`"]}}]),
            ),
            get("/c/a"),
        ],
    );
    add(
        "increment arithmetic",
        vec![
            commit(json!([update(
                "c/a",
                json!({"i": int(100), "d": double(1.5), "s": string("x"),
                "big": int(i64::MAX - 1)})
            )])),
            commit(json!([transform(
                "c/a",
                json!({}),
                json!([
                    {"fieldPath": "i", "increment": int(-30)},
                    {"fieldPath": "d", "increment": int(2)},
                    {"fieldPath": "i", "increment": double(0.5)},
                    {"fieldPath": "missing", "increment": double(2.5)},
                    {"fieldPath": "s", "increment": int(4)},
                    {"fieldPath": "m.n", "increment": int(7)},
                    {"fieldPath": "big", "increment": int(100)}
                ])
            )])),
            get("/c/a"),
        ],
    );
    add(
        "maximum and minimum with mixed numbers",
        vec![
            commit(json!([update(
                "c/a",
                json!({"i": int(5), "d": double(2.5), "j": double(6.5)})
            )])),
            commit(json!([transform(
                "c/a",
                json!({}),
                json!([
                    {"fieldPath": "i", "maximum": double(5.0)},
                    {"fieldPath": "d", "maximum": int(2)},
                    {"fieldPath": "d", "minimum": int(2)},
                    {"fieldPath": "j", "minimum": double(5.0)}
                ])
            )])),
            get("/c/a"),
        ],
    );
    add(
        "maximum and minimum with NaN, strings and missing fields",
        vec![
            commit(json!([update(
                "c/a",
                json!({"nan": nan(), "s": string("x"), "i": int(1), "k": int(1)})
            )])),
            commit(json!([transform(
                "c/a",
                json!({}),
                json!([
                    {"fieldPath": "nan", "maximum": int(3)},
                    {"fieldPath": "nan", "minimum": int(3)},
                    {"fieldPath": "s", "maximum": int(3)},
                    {"fieldPath": "missing", "minimum": int(3)},
                    {"fieldPath": "i", "maximum": nan()},
                    {"fieldPath": "k", "minimum": nan()}
                ])
            )])),
            get("/c/a"),
        ],
    );
    add(
        "array union and removal",
        vec![
            commit(json!([update(
                "c/a",
                json!({"arr": array(vec![int(1), double(1.0), int(2), string("a"), int(1)]),
                "s": string("x")})
            )])),
            commit(json!([transform(
                "c/a",
                json!({}),
                json!([
                    {"fieldPath": "arr", "appendMissingElements": {"values": [int(2), int(3), int(3), double(2.0)]}}
                ])
            )])),
            commit(json!([transform(
                "c/a",
                json!({}),
                json!([
                    {"fieldPath": "arr", "removeAllFromArray": {"values": [double(1.0)]}},
                    {"fieldPath": "s", "appendMissingElements": {"values": [int(2)]}},
                    {"fieldPath": "missing", "removeAllFromArray": {"values": [int(2)]}},
                    {"fieldPath": "arr", "appendMissingElements": {}}
                ])
            )])),
            get("/c/a"),
        ],
    );
    add(
        "server timestamps",
        vec![
            commit(
                json!([{"update": {"name": name("c/a"), "fields": {"n": int(1)}},
                "updateTransforms": [{"fieldPath": "updatedAt", "setToServerValue": "REQUEST_TIME"}]}]),
            ),
            get("/c/a"),
        ],
    );
    add(
        "legacy transform writes",
        vec![
            commit(
                json!([{"transform": {"document": name("c/a"), "fieldTransforms": [
                {"fieldPath": "n", "increment": int(3)},
                {"fieldPath": "t", "setToServerValue": "REQUEST_TIME"}]}}]),
            ),
            commit(
                json!([{"transform": {"document": name("c/a"), "fieldTransforms": [
                {"fieldPath": "n", "increment": int(3)}]}, "currentDocument": {"exists": true}}]),
            ),
            get("/c/a"),
            commit(json!([{"transform": {"document": name("c/a")}}])),
            commit(
                json!([{"transform": {"document": name("c/a"), "fieldTransforms": [
                {"fieldPath": "n", "increment": int(3)}]}, "updateMask": {"fieldPaths": ["x"]}}]),
            ),
        ],
    );
    add(
        "exists preconditions",
        vec![
            commit(
                json!([{"update": {"name": name("c/a"), "fields": {}}, "currentDocument": {"exists": false}}]),
            ),
            commit(
                json!([{"update": {"name": name("c/a"), "fields": {}}, "currentDocument": {"exists": false}}]),
            ),
            commit(
                json!([{"update": {"name": name("c/b"), "fields": {}}, "currentDocument": {"exists": true}}]),
            ),
            commit(
                json!([{"update": {"name": name("c/a"), "fields": {"v": int(1)}}, "currentDocument": {"exists": true}}]),
            ),
        ],
    );
    add(
        "update time preconditions",
        vec![
            commit(json!([update("c/a", json!({"v": int(1)}))])),
            commit(
                json!([{"update": {"name": name("c/a"), "fields": {"v": int(2)}},
                "currentDocument": {"updateTime": "{UPDATE_TIME}"}}]),
            ),
            commit(
                json!([{"update": {"name": name("c/a"), "fields": {"v": int(3)}},
                "currentDocument": {"updateTime": "2020-01-01T00:00:00Z"}}]),
            ),
            commit(json!([{"update": {"name": name("c/missing"), "fields": {}},
                "currentDocument": {"updateTime": "2020-01-01T00:00:00Z"}}])),
            get("/c/a"),
        ],
    );
    add(
        "verify writes",
        vec![
            commit(json!([update("c/a", json!({"v": int(1)}))])),
            commit(
                json!([{"verify": name("c/a"), "currentDocument": {"exists": true}},
                update("c/b", json!({}))]),
            ),
            commit(json!([{"verify": name("c/missing"), "currentDocument": {"exists": true}}])),
            commit(json!([{"verify": name("c/a")}])),
            get("/c/b"),
        ],
    );
    add(
        "a failed write leaves the whole commit unapplied",
        vec![
            commit(json!([update("c/a", json!({"v": int(1)})),
                {"update": {"name": name("c/b"), "fields": {}}, "currentDocument": {"exists": true}}])),
            get("/c/a"),
        ],
    );
    add(
        "deletes and empty commits",
        vec![
            commit(json!([update("c/a", json!({}))])),
            commit(json!([{"delete": name("c/a")}, {"delete": name("c/never")}])),
            commit(json!([])),
            post(":commit", json!({})),
            get("/c/a"),
        ],
    );
    add(
        "invalid transforms",
        vec![
            commit(json!([transform(
                "c/a",
                json!({}),
                json!([{"fieldPath": "a", "increment": string("1")}])
            )])),
            commit(json!([transform(
                "c/a",
                json!({}),
                json!([{"fieldPath": "a", "maximum": string("z")}])
            )])),
            commit(json!([transform(
                "c/a",
                json!({}),
                json!([{"fieldPath": "__k__", "increment": int(1)}])
            )])),
            commit(json!([transform(
                "c/a",
                json!({}),
                json!([{"fieldPath": "a", "setToServerValue": "SERVER_VALUE_UNSPECIFIED"}])
            )])),
            commit(json!([{"delete": name("c/a"), "updateMask": {"fieldPaths": ["a"]}}])),
        ],
    );
    add(
        "invalid names",
        vec![
            commit(json!([{"update": {"name": name("c"), "fields": {}}}])),
            commit(json!([{"update": {"name": "garbage/x", "fields": {}}}])),
            commit(json!([update("c/__a__", json!({}))])),
            commit(json!([update(&format!("c/{}", "x".repeat(1500)), json!({}))])),
            commit(json!([update(&format!("c/{}", "x".repeat(1501)), json!({}))])),
            commit(json!([{"update": {"name": "projects/someone-else/databases/(default)/documents/c/a", "fields": {}}}]))
                .differs(200, 400, "a write naming another project than the URL's is refused here; the emulator writes it"),
        ],
    );

    // --- validation and limits ---
    add(
        "unknown fields are refused",
        vec![
            post(":commit", json!({"writes": [], "bogus": 1})),
            commit(json!([{"update": {"name": name("c/a"), "fields": {}, "bogus": 1}}])),
            commit(
                json!([{"update": {"name": name("c/a"), "fields": {}}, "updateMask": {"fieldPaths": [], "x": 1}}]),
            ),
            post(
                ":runQuery",
                json!({"structuredQuery": {"from": [{"collectionId": "c", "zz": 1}]}}),
            ),
            post(":batchGet", json!({"documents": [], "foo": {}})),
            post(
                ":beginTransaction",
                json!({"options": {"readOnly": {"x": 1}}}),
            ),
        ],
    );
    add(
        "malformed bodies",
        vec![
            commit(json!([update(
                "c/a",
                json!({"x": {"stringValue": "a", "integerValue": "1"}})
            )])),
            commit(json!([update(
                "c/a",
                json!({"x": {"integerValue": "abc"}})
            )])),
            step("POST", ":commit", None).content_type("application/json"),
            Step {
                body: Some(b"{\"writes\":[".to_vec()),
                ..step("POST", ":commit", None)
            },
            Step {
                body: Some(b"[]".to_vec()),
                ..step("POST", ":commit", None)
            },
            post(":commit", json!({"writes": {}})),
        ],
    );
    add(
        "reserved and empty field names",
        vec![
            commit(json!([update("c/a", json!({"__x__": string("a")}))])),
            commit(json!([update(
                "c/a",
                json!({"m": {"mapValue": {"fields": {"__y__": string("a")}}}})
            )])),
            commit(json!([update("c/a", json!({"": string("a")}))])),
            commit(
                json!([{"update": {"name": name("c/a"), "fields": {}}, "updateMask": {"fieldPaths": ["__k__"]}}]),
            ),
        ],
    );
    let nested = |depth: usize, container: &str| {
        (0..depth).fold(int(1), |inner, _| match container {
            "map" => json!({"mapValue": {"fields": {"a": inner}}}),
            _ => json!({"arrayValue": {"values": [inner]}}),
        })
    };
    add(
        "nesting depth and arrays in arrays",
        vec![
            commit(json!([update("c/a", json!({"a": nested(20, "map")}))])),
            commit(json!([update("c/a", json!({"a": nested(21, "map")}))])),
            commit(json!([update("c/a", json!({"a": nested(2, "array")}))])),
            get("/c/a?mask.fieldPaths=b"),
        ],
    );
    add(
        "one mebibyte per document, counted as Firestore counts",
        vec![
            commit(json!([update(
                "c/big",
                json!({"s": string(&"x".repeat(1_000_000)), "t": string(&"y".repeat(48_516))})
            )])),
            commit(json!([update(
                "c/big",
                json!({"s": string(&"x".repeat(1_000_000)), "t": string(&"y".repeat(48_517))})
            )])),
            commit(json!([update(
                "c/one",
                json!({"s": string(&"x".repeat(1_048_487))})
            )])),
            commit(json!([update(
                "c/one",
                json!({"s": string(&"x".repeat(1_048_488))})
            )])),
            get("/c/big?mask.fieldPaths=none"),
        ],
    );
    add(
        "500 writes per commit",
        vec![
            commit(Value::Array((0..500).map(|i| update(&format!("c/d{i}"), json!({}))).collect())),
            commit(Value::Array((0..501).map(|i| update(&format!("e/d{i}"), json!({}))).collect()))
                .differs(200, 400, "Cloud Firestore's documented limit is 500 writes per commit; the emulator accepts more"),
        ],
    );
    add(
        "huge bodies",
        vec![Step {
            body: Some(
                json!({"writes": [update("c/a", json!({"s": string(&"x".repeat(30 * 1024 * 1024))}))]})
                    .to_string()
                    .into_bytes(),
            ),
            ..step("POST", ":commit", None)
        }],
    );
    add(
        "what the Firebase SDKs send",
        vec![
            commit(json!([update("c/a", json!({"v": int(1)}))]))
                .content_type("text/plain;charset=UTF-8"),
            get("/c/a?key=AIzaFake").header("google-cloud-resource-prefix", "{DATABASE}"),
            query(json!({"from": from("c")}))
                .content_type("text/plain")
                .header("google-cloud-resource-prefix", "{DATABASE}"),
        ],
    );

    // --- :runQuery ---
    add(
        "field filters across types",
        vec![
            seed_mixed(),
            query(json!({"from": from("c"), "where": field_filter("k", "GREATER_THAN", int(0))})),
            query(
                json!({"from": from("c"), "where": field_filter("k", "LESS_THAN", json!({"doubleValue": "Infinity"}))}),
            ),
            query(json!({"from": from("c"), "where": field_filter("k", "NOT_EQUAL", int(1))})),
            query(json!({"from": from("c"), "where": field_filter("k", "NOT_EQUAL", nan())})),
            query(json!({"from": from("c"), "where": field_filter("k", "EQUAL", int(2))})),
            query(
                json!({"from": from("c"), "where": field_filter("k", "EQUAL", json!({"nullValue": null}))}),
            ),
            query(
                json!({"from": from("c"), "where": field_filter("k", "LESS_THAN_OR_EQUAL", string("z"))}),
            ),
        ],
    );
    add(
        "ordering across types",
        vec![
            seed_mixed(),
            query(json!({"from": from("c"), "orderBy": [order("k", "ASCENDING")]})),
            query(json!({"from": from("c"), "orderBy": [order("k", "DESCENDING")]})),
            query(json!({"from": from("c")})),
        ],
    );
    let by_name_descending = || json!([order("__name__", "DESCENDING")]);
    add(
        "descending name order needs a filter on another field",
        vec![
            seed_mixed(),
            query(json!({"from": from("c"), "orderBy": by_name_descending()})).same_message(),
            query(json!({"from": [{"collectionId": "c", "allDescendants": true}], "orderBy": by_name_descending()}))
                .same_message(),
            query(json!({"from": from("c"), "orderBy": by_name_descending(), "limit": 2, "offset": 1}))
                .same_message(),
            query(json!({"from": from("c"), "orderBy": by_name_descending(),
                "where": field_filter("__name__", "GREATER_THAN", json!({"referenceValue": name("c/b")}))}))
            .same_message(),
            query(json!({"from": from("c"), "orderBy": by_name_descending(), "where": composite("AND", vec![])}))
                .same_message(),
            query(json!({"from": from("c"), "orderBy": by_name_descending(), "where": field_filter("k", "EQUAL", int(1))})),
            query(json!({"from": from("c"), "orderBy": by_name_descending(),
                "where": field_filter("k", "IN", array(vec![int(1), string("x")]))})),
            query(json!({"from": from("c"), "orderBy": by_name_descending(), "where": unary_filter("k", "IS_NULL")})),
            query(json!({"from": from("c"), "orderBy": by_name_descending(), "where": composite("OR", vec![
                field_filter("k", "EQUAL", int(1)), field_filter("j", "EQUAL", int(1))])})),
            query(json!({"from": from("c"), "orderBy": [order("k", "DESCENDING")], "where": field_filter("k", "GREATER_THAN", int(0))})),
            get("/c?orderBy=__name__%20desc").same_message(),
            aggregate(json!({"from": from("c"), "orderBy": by_name_descending()}), json!([{"alias": "n", "count": {}}]))
                .same_message(),
        ],
    );
    add(
        "unary filters",
        vec![
            seed_mixed(),
            query(json!({"from": from("c"), "where": unary_filter("k", "IS_NAN")})),
            query(json!({"from": from("c"), "where": unary_filter("k", "IS_NULL")})),
            query(json!({"from": from("c"), "where": unary_filter("k", "IS_NOT_NAN")})),
            query(json!({"from": from("c"), "where": unary_filter("k", "IS_NOT_NULL")})),
        ],
    );
    add(
        "in and not in",
        vec![
            seed_mixed(),
            query(
                json!({"from": from("c"), "where": field_filter("k", "IN", array(vec![int(1), string("x"), json!({"nullValue": null}), nan()]))}),
            ),
            query(
                json!({"from": from("c"), "where": field_filter("k", "NOT_IN", array(vec![int(1), string("x")]))}),
            ),
            query(
                json!({"from": from("c"), "where": field_filter("k", "NOT_IN", array(vec![json!({"nullValue": null})]))}),
            ),
            query(
                json!({"from": from("c"), "where": field_filter("k", "NOT_IN", array(vec![nan()]))}),
            ),
            query(
                json!({"from": from("c"), "where": field_filter("__name__", "IN", array(vec![json!({"referenceValue": name("c/a")})]))}),
            ),
        ],
    );
    add(
        "array membership",
        vec![
            seed_mixed(),
            query(
                json!({"from": from("c"), "where": field_filter("arr", "ARRAY_CONTAINS", int(1))}),
            ),
            query(
                json!({"from": from("c"), "where": field_filter("arr", "ARRAY_CONTAINS", double(2.0))}),
            ),
            query(
                json!({"from": from("c"), "where": field_filter("arr", "ARRAY_CONTAINS_ANY", array(vec![int(2), string("x")]))}),
            ),
        ],
    );
    add(
        "or and nested composite filters",
        vec![
            seed_mixed(),
            query(json!({"from": from("c"), "where": composite("OR", vec![
                field_filter("k", "EQUAL", int(1)), field_filter("j", "EQUAL", int(1))])})),
            query(json!({"from": from("c"), "where": composite("OR", vec![
                field_filter("k", "GREATER_THAN", int(1)), field_filter("j", "EQUAL", int(1))])})),
            query(json!({"from": from("c"), "where": composite("AND", vec![
                composite("OR", vec![field_filter("k", "EQUAL", int(1)), field_filter("k", "EQUAL", string("x"))]),
                composite("OR", vec![field_filter("arr", "ARRAY_CONTAINS", int(1)), unary_filter("k", "IS_NOT_NULL")])])})),
            query(json!({"from": from("c"), "where": composite("AND", vec![])})),
            query(json!({"from": from("c"), "where": composite("OR", vec![
                field_filter("k", "IN", numbers(10)), field_filter("j", "IN", numbers(3)), field_filter("q", "EQUAL", int(1))])})),
        ],
    );
    add(
        "several inequality fields",
        vec![
            seed_mixed(),
            commit(json!([update("c/h", json!({"k": int(3), "j": int(0)}))])),
            query(json!({"from": from("c"), "where": composite("AND", vec![
                field_filter("k", "GREATER_THAN", int(1)), field_filter("j", "LESS_THAN", int(1))])})),
            query(
                json!({"from": from("c"), "where": field_filter("k", "GREATER_THAN", int(0)), "orderBy": [order("j", "DESCENDING")]}),
            ),
        ],
    );
    add(
        "query validation",
        vec![
            query(json!({"from": from("c"), "where": field_filter("k", "IN", int(1))})),
            query(
                json!({"from": from("c"), "where": field_filter("k", "IN", json!({"arrayValue": {}}))}),
            ),
            query(json!({"from": from("c"), "where": field_filter("k", "IN", numbers(31))})),
            query(json!({"from": from("c"), "where": field_filter("k", "NOT_IN", numbers(11))})),
            query(
                json!({"from": from("c"), "where": field_filter("k", "ARRAY_CONTAINS_ANY", numbers(31))}),
            ),
            query(
                json!({"from": from("c"), "where": field_filter("k", "ARRAY_CONTAINS_ANY", int(1))}),
            ),
            query(json!({"from": from("c"), "where": composite("AND", vec![
                field_filter("k", "NOT_IN", numbers(1)), field_filter("k", "NOT_EQUAL", int(3))])})),
            query(json!({"from": from("c"), "where": composite("AND", vec![
                field_filter("k", "IN", numbers(2)), field_filter("k2", "NOT_IN", numbers(2))])})),
            query(json!({"from": from("c"), "where": composite("AND", vec![
                field_filter("k", "IN", numbers(10)), field_filter("j", "IN", numbers(4))])})),
            query(json!({"from": from("c"), "where": composite("OR", vec![
                field_filter("k", "IN", numbers(15)), field_filter("j", "IN", numbers(15)), field_filter("q", "EQUAL", int(1))])})),
            query(json!({"from": from("c"), "where": composite("AND", vec![
                field_filter("a", "ARRAY_CONTAINS", int(1)), field_filter("b", "ARRAY_CONTAINS", int(1))])})),
            query(json!({"from": from("c"), "where": composite("OR", vec![])})),
            query(json!({"from": from("c"), "where": unary_filter("k", "OPERATOR_UNSPECIFIED")})),
            query(json!({"from": from("c"), "where": unary_filter("__name__", "IS_NULL")})),
            query(
                json!({"from": from("c"), "where": field_filter("__name__", "EQUAL", string("a"))}),
            ),
            query(
                json!({"from": from("c"), "where": field_filter("__name__", "ARRAY_CONTAINS", json!({"referenceValue": name("c/a")}))}),
            ),
            query(json!({"from": from("c"), "limit": -1})),
            query(json!({"from": [{"collectionId": "a"}, {"collectionId": "b"}]})),
            query(
                json!({"from": from("c"), "orderBy": [order("__name__", "ASCENDING"), order("k", "ASCENDING")]}),
            ),
            query(json!({"from": from("c"), "startAt": {"values": [int(1)]}})),
            post(
                "/c:runQuery",
                json!({"structuredQuery": {"from": from("c")}}),
            ),
            post(":runQuery", json!({})),
        ],
    );
    add(
        "collection groups",
        vec![
            seed_mixed(),
            query(json!({"from": [{"collectionId": "c", "allDescendants": true}]})),
            post(
                "/c/a:runQuery",
                json!({"structuredQuery": {"from": [{"collectionId": "c", "allDescendants": true}]}}),
            ),
            query(
                json!({"from": [{"collectionId": "c", "allDescendants": true}], "where": field_filter("k", "EQUAL", int(1))}),
            ),
            post(
                "/x/y:runQuery",
                json!({"structuredQuery": {"from": from("c")}}),
            ),
        ],
    );
    add(
        "projections",
        vec![
            seed_mixed(),
            query(
                json!({"from": from("c"), "select": {"fields": [{"fieldPath": "arr"}]}, "limit": 3}),
            ),
            query(
                json!({"from": from("c"), "select": {"fields": [{"fieldPath": "__name__"}]}, "limit": 3}),
            ),
            query(json!({"from": from("c"), "select": {"fields": []}, "limit": 2})),
        ],
    );
    add(
        "cursors",
        vec![
            seed_mixed(),
            query(
                json!({"from": from("c"), "orderBy": [order("__name__", "ASCENDING")],
                "startAt": {"values": [{"referenceValue": name("c/b")}], "before": true}}),
            ),
            query(
                json!({"from": from("c"), "orderBy": [order("__name__", "ASCENDING")],
                "startAt": {"values": [{"referenceValue": name("c/b")}]}}),
            ),
            query(
                json!({"from": from("c"), "orderBy": [order("__name__", "ASCENDING")],
                "endAt": {"values": [{"referenceValue": name("c/c")}], "before": true}}),
            ),
            query(
                json!({"from": from("c"), "orderBy": [order("__name__", "ASCENDING")],
                "endAt": {"values": [{"referenceValue": name("c/c")}]}}),
            ),
            query(
                json!({"from": from("c"), "orderBy": [order("k", "ASCENDING")],
                "startAt": {"values": [int(2)], "before": true}}),
            ),
            query(
                json!({"from": from("c"), "orderBy": [order("k", "DESCENDING")],
                "startAt": {"values": [double(2.5)]}, "endAt": {"values": [int(1)]}}),
            ),
        ],
    );
    add(
        "offset and limit",
        vec![
            seed_mixed(),
            query(json!({"from": from("c"), "offset": 1, "limit": 2})),
            query(json!({"from": from("c"), "offset": 20})),
            query(json!({"from": from("c"), "limit": 0})),
            query(json!({"from": from("c"), "limit": {"value": 1}})),
        ],
    );
    // The emulator reports `skippedResults` on every item but the last (the one with `done`),
    // and never when nothing is left after the offset.
    add(
        "offsets and skipped results",
        vec![
            commit(Value::Array(
                ["a", "b", "c", "d", "e"]
                    .iter()
                    .map(|id| update(&format!("c/{id}"), json!({"n": int(1)})))
                    .collect(),
            )),
            query(json!({"from": from("c"), "offset": 1})),
            query(json!({"from": from("c"), "offset": 1, "limit": 1})),
            query(json!({"from": from("c"), "offset": 1, "limit": 3})),
            query(json!({"from": from("c"), "offset": 2, "limit": 2})),
            query(json!({"from": from("c"), "offset": 4})),
            query(json!({"from": from("c"), "offset": 5})),
            query(json!({"from": from("c"), "offset": 2, "limit": 0})),
            query(json!({"from": from("c"), "offset": 0, "limit": 2})),
            query(json!({"from": from("c"), "offset": 3, "orderBy": [order("n", "DESCENDING")]})),
            query(json!({"from": from("empty"), "offset": 1})),
        ],
    );
    add(
        "reserved collection and document ids",
        vec![
            query(json!({"from": from("__badpath__")})).same_message(),
            query(json!({"from": [{"collectionId": "__x__", "allDescendants": true}]})).same_message(),
            query(json!({"from": from("____")})),
            query(json!({"from": from("__x")})),
            aggregate(json!({"from": from("__badpath__")}), json!([{"alias": "n", "count": {}}])).same_message(),
            post("/__x__/a:runQuery", json!({"structuredQuery": {"from": from("c")}})).same_message(),
            post("/c/__x__:runQuery", json!({"structuredQuery": {"from": from("c")}})).same_message(),
            post(
                "/c/__x__:runAggregationQuery",
                json!({"structuredAggregationQuery": {"structuredQuery": {"from": from("c")}, "aggregations": [{"count": {}}]}}),
            )
            .same_message(),
            get("/__x__").same_message(),
            get("/c/__x__").same_message(),
            get("/__x__/a").same_message(),
            commit(json!([update("c/__a__", json!({}))])).same_message(),
            commit(json!([update("__a__/x", json!({}))])).same_message(),
            commit(json!([{"delete": name("__a__/x")}])).same_message(),
            post(":batchGet", json!({"documents": [name("c/__x__")]})).same_message(),
            post(":batchGet", json!({"documents": [name("__x__/a")]})).same_message(),
            delete("/__x__/y").same_message(),
            patch("/c/__x__", json!({"fields": {}})).same_message(),
            commit(json!([update("c/____", json!({}))])),
            get("/c/____"),
        ],
    );
    add(
        "reserved names in query field paths",
        vec![
            seed_mixed(),
            query(json!({"from": from("c"), "where": field_filter("__x__", "EQUAL", int(1))}))
                .same_message(),
            query(json!({"from": from("c"), "where": field_filter("m.__x__", "EQUAL", int(1))}))
                .same_message(),
            query(json!({"from": from("c"), "orderBy": [order("a.__x__.b", "ASCENDING")]}))
                .same_message(),
            query(json!({"from": from("c"), "orderBy": [order("`__x__`", "ASCENDING")]}))
                .same_message(),
            query(json!({"from": from("c"), "where": field_filter("__type__", "EQUAL", int(1))}))
                .same_message(),
            query(json!({"from": from("c"), "where": field_filter("__type__.a", "EQUAL", int(1))}))
                .same_message(),
            query(json!({"from": from("c"), "where": field_filter("m.__type__", "EQUAL", int(1))})),
            query(json!({"from": from("c"), "where": field_filter("a.__name__", "EQUAL", int(1))}))
                .same_message(),
            query(json!({"from": from("c"), "orderBy": [order("__name__.a", "ASCENDING")]}))
                .same_message(),
            query(json!({"from": from("c"), "orderBy": [order("a.__key__", "ASCENDING")]}))
                .same_message(),
            query(json!({"from": from("c"), "select": {"fields": [{"fieldPath": "__x__"}]}}))
                .same_message(),
            query(
                json!({"from": from("c"), "where": field_filter("k", "EQUAL",
                json!({"mapValue": {"fields": {"__x__": int(1)}}}))}),
            )
            .same_message(),
            query(
                json!({"from": from("c"), "where": field_filter("k", "EQUAL",
                json!({"mapValue": {"fields": {"__type__": string("__other__")}}}))}),
            ),
            aggregate(
                json!({"from": from("c")}),
                json!([{"alias": "s", "sum": {"field": {"fieldPath": "m.__x__"}}}]),
            )
            .same_message(),
        ],
    );
    let vector = |elements: &[f64]| {
        json!({"mapValue": {"fields": {"__type__": string("__vector__"),
            "value": array(elements.iter().map(|element| double(*element)).collect())}}})
    };
    let typed_map = |fields: Value| json!({"mapValue": {"fields": fields}});
    add(
        "vector values",
        vec![
            commit(json!([
                update("c/d0", json!({"v": vector(&[1.0, 2.0])})),
                update("c/d1", json!({"v": vector(&[3.0])})),
                update("c/d2", json!({"v": vector(&[1.0, 1.0])})),
                update("c/d3", json!({"v": vector(&[0.0, 0.0, 0.0])})),
                update("c/d4", json!({"v": vector(&[2.0, 1.0])})),
                update("c/d5", json!({"v": typed_map(json!({"a": int(1)}))})),
                update("c/d6", json!({"v": {"mapValue": {}}})),
                update("c/d7", json!({"v": array(vec![int(9)])})),
                update("c/d8", json!({"v": {"geoPointValue": {"latitude": 1.0, "longitude": 2.0}}})),
                update("c/d9", json!({"v": {"mapValue": {"fields": {"__type__": string("__vector__"), "value": array(vec![json!({"doubleValue": "Infinity"})])}}}})),
                update("c/d10", json!({"m": typed_map(json!({"w": vector(&[1.5])}))})),
            ])),
            get("/c/d0"),
            get("/c/d10"),
            query(json!({"from": from("c"), "orderBy": [order("v", "ASCENDING")]})),
            query(json!({"from": from("c"), "orderBy": [order("v", "DESCENDING")]})),
            query(json!({"from": from("c"), "where": field_filter("v", "EQUAL", vector(&[1.0, 2.0]))})),
            query(json!({"from": from("c"), "where": field_filter("v", "GREATER_THAN", vector(&[1.0, 2.0]))})),
            query(json!({"from": from("c"), "where": field_filter("v", "LESS_THAN", vector(&[1.0, 2.0]))})),
            query(json!({"from": from("c"), "where": field_filter("v", "NOT_EQUAL", vector(&[1.0, 2.0]))})),
            query(json!({"from": from("c"), "where": field_filter("v", "IN", array(vec![vector(&[3.0]), vector(&[1.0, 1.0])]))})),
            query(json!({"from": from("c"), "where": field_filter("v", "GREATER_THAN", json!({"mapValue": {}}))})),
            query(json!({"from": from("c"), "where": field_filter("v", "GREATER_THAN", json!({"arrayValue": {}}))})),
            query(json!({"from": from("c"), "where": field_filter("v.__type__", "EQUAL", string("__vector__"))})),
            query(json!({"from": from("c"), "orderBy": [order("v.value", "ASCENDING")]})),
            query(json!({"from": from("c"), "where": field_filter("m.w", "EQUAL", vector(&[1.5]))})),
            query(json!({"from": from("c"), "where": field_filter("v", "EQUAL",
                typed_map(json!({"__type__": string("__vector__"), "value": array(vec![int(3)])})))}))
            .same_message(),
            aggregate(json!({"from": from("c"), "where": field_filter("v", "GREATER_THAN_OR_EQUAL", vector(&[0.0]))}),
                json!([{"alias": "n", "count": {}}])),
            commit(json!([update("c/e", json!({"v": typed_map(json!({"__type__": string("__vector__"), "value": array(vec![int(1)])}))}))])).same_message(),
            commit(json!([update("c/e", json!({"v": typed_map(json!({"__type__": string("__vector__"), "value": {"arrayValue": {}}}))}))])).same_message(),
            commit(json!([update("c/e", json!({"v": typed_map(json!({"__type__": string("__vector__")}))}))])).same_message(),
            commit(json!([update("c/e", json!({"v": typed_map(json!({"__type__": string("__vector__"), "value": array(vec![double(1.0)]), "x": int(1)}))}))])).same_message(),
            commit(json!([update("c/e", json!({"v": typed_map(json!({"__type__": string("__vector__"), "value": array(vec![string("a")])}))}))])).same_message(),
            commit(json!([update("c/e", json!({"v": typed_map(json!({"__type__": string("__vector__"), "value": int(1)}))}))])).same_message(),
            commit(json!([update("c/e", json!({"v": typed_map(json!({"__type__": string("__vector__"), "value": array(vec![nan()])}))}))])).same_message(),
            commit(json!([update("c/e", json!({"v": typed_map(json!({"__type__": string("__other__"), "value": {"arrayValue": {}}}))}))])).same_message(),
            commit(json!([update("c/e", json!({"v": typed_map(json!({"__type__": int(1), "value": {"arrayValue": {}}}))}))])).same_message(),
            commit(json!([update("c/e", json!({"v": array(vec![vector(&[1.0])])}))])).same_message(),
            commit(json!([update("c/e", json!({"__type__": string("__vector__")}))])).same_message(),
            commit(json!([update("c/e", json!({"m": typed_map(json!({"__type__": string("x")}))}))])).same_message(),
        ],
    );
    // Several writes to one document in one commit: the emulator folds them into one mutation
    // and refuses contradictory preconditions; every write's result reports the update time
    // of the document the commit leaves.
    let upsert = |path: &str, value: i64| update(path, json!({"n": int(value)}));
    let with_precondition = |mut write: Value, precondition: Value| {
        write["currentDocument"] = precondition;
        write
    };
    let exists = |flag: bool| json!({"exists": flag});
    let at_update_time = json!({"updateTime": "{UPDATE_TIME}"});
    let at_old_time = json!({"updateTime": "2020-01-01T00:00:00Z"});
    let remove = |path: &str| json!({"delete": name(path)});
    let verify = |path: &str, precondition: Value| json!({"verify": name(path), "currentDocument": precondition});
    let increment_n = |path: &str| {
        transform(
            path,
            json!({}),
            json!([{"fieldPath": "n", "increment": int(1)}]),
        )
    };
    add(
        "several writes to one document",
        vec![
            commit(json!([upsert("c/a", 1)])),
            commit(json!([upsert("c/a", 2), upsert("c/a", 1)])),
            get("/c/a"),
            commit(json!([remove("c/a"), upsert("c/a", 1)])),
            commit(json!([upsert("c/a", 3), remove("c/a")])),
            get("/c/a"),
            commit(json!([remove("c/a"), remove("c/missing")])),
            commit(json!([
                upsert("c/b", 1),
                increment_n("c/b"),
                increment_n("c/b"),
                remove("c/b"),
                upsert("c/b", 7)
            ])),
            commit(json!([increment_n("c/b"), remove("c/b")])),
            commit(json!([
                upsert("c/a", 1),
                with_precondition(upsert("c/a", 2), exists(false))
            ]))
            .same_message(),
            commit(json!([
                with_precondition(upsert("c/a", 1), exists(true)),
                with_precondition(upsert("c/a", 2), exists(false))
            ]))
            .same_message(),
            commit(json!([
                with_precondition(upsert("c/z", 1), exists(false)),
                with_precondition(upsert("c/z", 2), exists(false))
            ]))
            .same_message(),
            commit(json!([
                remove("c/a"),
                with_precondition(upsert("c/a", 2), exists(true))
            ]))
            .same_message(),
            commit(json!([
                remove("c/a"),
                with_precondition(remove("c/a"), exists(true))
            ]))
            .same_message(),
            commit(json!([
                upsert("c/a", 1),
                with_precondition(remove("c/a"), exists(false))
            ]))
            .same_message(),
            commit(json!([
                upsert("c/a", 1),
                with_precondition(upsert("c/a", 2), at_old_time.clone())
            ]))
            .same_message(),
            commit(json!([
                remove("c/a"),
                upsert("c/a", 1),
                with_precondition(upsert("c/a", 2), exists(false))
            ]))
            .same_message(),
            commit(json!([
                with_precondition(upsert("c/a", 1), exists(false)),
                upsert("c/a", 2),
                with_precondition(upsert("c/a", 3), exists(false))
            ]))
            .same_message(),
            commit(json!([upsert("c/a", 1), verify("c/a", exists(true))])).same_message(),
            commit(json!([verify("c/a", exists(true)), upsert("c/a", 1)])).same_message(),
            commit(json!([
                verify("c/a", exists(true)),
                verify("c/a", exists(true))
            ]))
            .same_message(),
            commit(json!([
                remove("c/a"),
                with_precondition(remove("c/a"), exists(false)),
                upsert("c/a", 4)
            ])),
            commit(json!([
                with_precondition(upsert("c/fresh", 1), exists(false)),
                remove("c/fresh")
            ])),
            commit(json!([
                with_precondition(upsert("c/fresh", 1), exists(false)),
                with_precondition(remove("c/fresh"), exists(true)),
                upsert("c/fresh", 2)
            ])),
            get("/c"),
        ],
    );
    add(
        "several writes to one document with update time preconditions",
        vec![
            commit(json!([upsert("c/a", 1)])),
            commit(json!([
                with_precondition(upsert("c/a", 2), at_update_time.clone()),
                upsert("c/a", 3),
                with_precondition(upsert("c/a", 4), at_update_time.clone())
            ])),
            get("/c/a"),
            commit(json!([upsert("c/b", 1)])),
            commit(json!([
                with_precondition(upsert("c/b", 2), at_update_time.clone()),
                remove("c/b"),
                with_precondition(upsert("c/b", 5), exists(false))
            ])),
            commit(json!([
                upsert("c/a", 1),
                with_precondition(upsert("c/a", 2), at_update_time.clone())
            ])),
            commit(json!([
                with_precondition(upsert("c/a", 1), at_old_time.clone()),
                with_precondition(upsert("c/a", 2), at_update_time.clone())
            ])),
            commit(json!([
                with_precondition(remove("c/a"), at_old_time.clone()),
                upsert("c/a", 2)
            ])),
            commit(json!([
                remove("c/a"),
                with_precondition(remove("c/a"), at_old_time.clone())
            ])),
            get("/c/a"),
        ],
    );
    add(
        "which precondition failure wins",
        vec![
            commit(json!([upsert("c/a", 1)])),
            commit(json!([
                with_precondition(upsert("c/missing", 1), exists(true)),
                with_precondition(upsert("c/a", 1), exists(false))
            ])),
            commit(json!([
                with_precondition(upsert("c/a", 1), exists(false)),
                with_precondition(upsert("c/missing", 1), exists(true))
            ])),
            commit(json!([
                with_precondition(upsert("c/a", 1), at_old_time.clone()),
                with_precondition(upsert("c/missing", 1), exists(true))
            ])),
            commit(json!([
                with_precondition(upsert("c/missing", 1), exists(true)),
                with_precondition(upsert("c/a", 1), at_old_time.clone())
            ])),
            commit(json!([
                verify("c/missing", exists(true)),
                with_precondition(remove("c/a"), exists(false))
            ])),
            commit(json!([
                with_precondition(remove("c/missing2"), exists(true)),
                with_precondition(upsert("c/a", 1), exists(false))
            ])),
            commit(json!([
                with_precondition(upsert("c/missing", 1), exists(true)),
                upsert("c/b", 1),
                with_precondition(upsert("c/b", 2), exists(false))
            ]))
            .same_message(),
            commit(json!([
                upsert("c/b", 1),
                with_precondition(upsert("c/b", 2), exists(false)),
                update("c/q", json!({"__x__": int(1)}))
            ])),
            get("/c/b"),
        ],
    );
    let at = |second: u32| json!({"timestampValue": format!("2025-01-01T00:00:{second:02}Z")});
    add(
        "the app's checkpointed pull",
        vec![
            commit(Value::Array(
                (0..12)
                    .map(|i| {
                        update(
                            &format!("shops/s/products/p{:02}", 11 - i),
                            json!({"updatedAt": at(i / 3), "n": int(i64::from(i))}),
                        )
                    })
                    .chain([update("shops/s/products/nots", json!({"n": int(1)}))])
                    .collect(),
            )),
            query(json!({"from": from("products"),
                "where": field_filter("updatedAt", "GREATER_THAN_OR_EQUAL", at(1)),
                "orderBy": [order("updatedAt", "ASCENDING"), order("__name__", "ASCENDING")],
                "startAt": {"values": [at(1), {"referenceValue": name("shops/s/products/p06")}]},
                "limit": 4}))
            .content_type("text/plain"),
            post(
                "/shops/s:runQuery",
                json!({"structuredQuery": {"from": from("products"),
                "where": field_filter("updatedAt", "GREATER_THAN_OR_EQUAL", at(1)),
                "orderBy": [order("updatedAt", "ASCENDING"), order("__name__", "ASCENDING")],
                "startAt": {"values": [at(1), {"referenceValue": name("shops/s/products/p06")}]},
                "limit": 4}}),
            ),
            post(
                "/shops/s:runQuery",
                json!({"structuredQuery": {"from": from("products"),
                "where": field_filter("updatedAt", "GREATER_THAN", at(2)),
                "orderBy": [order("updatedAt", "DESCENDING")], "limit": 2}}),
            ),
            post(
                "/shops/s:runQuery",
                json!({"structuredQuery": {"from": from("products"),
                "where": composite("AND", vec![field_filter("updatedAt", "LESS_THAN", at(2)),
                    field_filter("n", "GREATER_THAN", int(3))])}}),
            ),
        ],
    );
    add(
        "reads at a past time",
        vec![
            post(
                ":runQuery",
                json!({"structuredQuery": {"from": from("c")}, "readTime": "2020-01-01T00:00:00Z"}),
            ),
            post(
                ":batchGet",
                json!({"documents": [name("c/a")], "readTime": "2020-01-01T00:00:00Z"}),
            ),
            post(
                ":beginTransaction",
                json!({"options": {"readOnly": {"readTime": "2020-01-01T00:00:00Z"}}}),
            ),
        ],
    );

    // --- :runAggregationQuery ---
    add(
        "count, sum and average",
        vec![
            seed_mixed(),
            aggregate(
                json!({"from": from("c")}),
                json!([{"alias": "n", "count": {}}]),
            ),
            aggregate(
                json!({"from": from("c")}),
                json!([{"count": {}},
                {"sum": {"field": {"fieldPath": "k"}}}, {"avg": {"field": {"fieldPath": "k"}}}]),
            ),
            aggregate(
                json!({"from": from("c")}),
                json!([{"alias": "c", "count": {"upTo": "3"}},
                {"alias": "s", "sum": {"field": {"fieldPath": "j"}}}, {"alias": "a", "avg": {"field": {"fieldPath": "j"}}},
                {"alias": "none", "avg": {"field": {"fieldPath": "nothing"}}}]),
            ),
            aggregate(
                json!({"from": from("c"), "where": field_filter("k", "NOT_EQUAL", string("zz"))}),
                json!([{"alias": "s", "sum": {"field": {"fieldPath": "k"}}}, {"alias": "a", "avg": {"field": {"fieldPath": "k"}}}]),
            ),
        ],
    );
    add(
        "integer and double sums",
        vec![
            commit(json!([
                update(
                    "c/a",
                    json!({"i": int(i64::MAX), "m": int(1), "d": double(1.5)})
                ),
                update("c/b", json!({"i": int(1), "m": int(2), "d": int(2)})),
                update("c/c", json!({"i": int(-5), "m": string("no")}))
            ])),
            aggregate(
                json!({"from": from("c")}),
                json!([{"alias": "s", "sum": {"field": {"fieldPath": "i"}}},
                {"alias": "a", "avg": {"field": {"fieldPath": "i"}}}, {"alias": "n", "count": {}}]),
            ),
            aggregate(
                json!({"from": from("c")}),
                json!([{"alias": "s", "sum": {"field": {"fieldPath": "m"}}},
                {"alias": "a", "avg": {"field": {"fieldPath": "m"}}}, {"alias": "n", "count": {}}]),
            ),
            aggregate(
                json!({"from": from("c")}),
                json!([{"alias": "s", "sum": {"field": {"fieldPath": "d"}}},
                {"alias": "a", "avg": {"field": {"fieldPath": "d"}}}, {"alias": "n", "count": {}}]),
            ),
        ],
    );
    add(
        "count with upTo, offset and limit",
        vec![
            seed_mixed(),
            aggregate(
                json!({"from": from("c")}),
                json!([{"alias": "n", "count": {"upTo": "2"}}]),
            ),
            aggregate(
                json!({"from": from("c")}),
                json!([{"alias": "n", "count": {"upTo": "0"}}]),
            ),
            aggregate(
                json!({"from": from("c"), "limit": 2, "offset": 1}),
                json!([{"alias": "n", "count": {}}]),
            ),
            aggregate(
                json!({"from": from("c"), "select": {"fields": [{"fieldPath": "k"}]}}),
                json!([{"alias": "n", "count": {}}]),
            ),
            post(
                "/c/a:runAggregationQuery",
                json!({"structuredAggregationQuery": {"structuredQuery":
                {"from": [{"collectionId": "c", "allDescendants": true}]}, "aggregations": [{"alias": "n", "count": {}}]}}),
            ),
        ],
    );
    let sum_a = || json!([{"alias": "s", "sum": {"field": {"fieldPath": "k"}}}]);
    add(
        "aggregated fields with projections and name orders",
        vec![
            seed_mixed(),
            aggregate(json!({"from": from("c"), "select": {"fields": []}}), sum_a()).same_message(),
            aggregate(json!({"from": from("c"), "select": {"fields": [{"fieldPath": "j"}]}}), sum_a()).same_message(),
            aggregate(json!({"from": from("c"), "select": {"fields": [{"fieldPath": "k"}]}}), sum_a()).same_message(),
            aggregate(json!({"from": from("c"), "orderBy": [order("__name__", "ASCENDING")]}), sum_a()).same_message(),
            aggregate(json!({"from": from("c"), "where": field_filter("__name__", "EQUAL", json!({"referenceValue": name("c/a")}))}),
                json!([{"alias": "s", "sum": {"field": {"fieldPath": "k"}}}, {"alias": "v", "avg": {"field": {"fieldPath": "j"}}}]))
            .same_message(),
            aggregate(json!({"from": from("c"), "where": field_filter("__name__", "EQUAL", json!({"referenceValue": name("c/a")})),
                "orderBy": [order("k", "ASCENDING")]}), sum_a()),
            aggregate(json!({"from": from("c"), "orderBy": [order("j", "ASCENDING")]}), sum_a()),
            aggregate(json!({"from": from("c"), "orderBy": [order("__name__", "ASCENDING")]}), json!([{"alias": "n", "count": {}}])),
        ],
    );
    add(
        "aggregation errors: projections first, name filters also under an OR",
        vec![
            seed_mixed(),
            aggregate(json!({"from": from("c"), "select": {"fields": [{"fieldPath": "j"}]}, "orderBy": [order("__name__", "DESCENDING")]}), sum_a())
                .same_message(),
            aggregate(json!({"from": from("c"), "where": composite("OR", vec![
                field_filter("k", "LESS_THAN", int(2)),
                field_filter("__name__", "NOT_EQUAL", json!({"referenceValue": name("c/a")}))])}), sum_a()),
            aggregate(json!({"from": from("c"), "where": composite("OR", vec![
                field_filter("j", "LESS_THAN", int(2)),
                field_filter("__name__", "NOT_EQUAL", json!({"referenceValue": name("c/a")}))])}), sum_a()).same_message(),
        ],
    );
    add(
        "ranges against null or NaN are no inequality",
        vec![
            seed_mixed(),
            query(
                json!({"from": from("c"), "where": field_filter("k", "LESS_THAN_OR_EQUAL", json!({"nullValue": null})),
                "orderBy": [order("j", "ASCENDING"), order("__name__", "ASCENDING")]}),
            ),
            query(
                json!({"from": from("c"), "where": field_filter("k", "GREATER_THAN", nan()),
                "orderBy": [order("__name__", "ASCENDING")]}),
            ),
            query(
                json!({"from": from("c"), "where": field_filter("k", "GREATER_THAN", int(0)),
                "orderBy": [order("__name__", "ASCENDING")]}),
            ),
        ],
    );
    add(
        "not equal to null is no inequality",
        vec![
            seed_mixed(),
            query(
                json!({"from": from("c"), "where": field_filter("k", "NOT_EQUAL", json!({"nullValue": null})),
                "orderBy": [order("__name__", "ASCENDING")]}),
            ),
            query(
                json!({"from": from("c"), "where": field_filter("k", "NOT_IN", array(vec![json!({"nullValue": null})])),
                "orderBy": [order("__name__", "ASCENDING")]}),
            ),
            query(
                json!({"from": from("c"), "where": field_filter("k", "NOT_IN", array(vec![json!({"nullValue": null}), int(1)])),
                "orderBy": [order("__name__", "ASCENDING")]}),
            ),
        ],
    );
    let key_equals_a = || field_filter("__name__", "EQUAL", json!({"referenceValue": name("c/a")}));
    add(
        "an equality on the key beside inequalities",
        vec![
            seed_mixed(),
            query(json!({"from": from("c"), "where": composite("AND", vec![key_equals_a(), field_filter("k", "GREATER_THAN", int(0))])}))
                .same_message(),
            query(json!({"from": from("c"), "where": composite("OR", vec![key_equals_a(), unary_filter("k", "IS_NOT_NAN")])}))
                .same_message(),
            query(json!({"from": from("c"), "where": composite("AND", vec![
                field_filter("__name__", "IN", array(vec![json!({"referenceValue": name("c/a")})])), field_filter("k", "NOT_EQUAL", int(3))])}))
            .same_message(),
            query(json!({"from": from("c"), "where": composite("AND", vec![key_equals_a(), field_filter("k", "GREATER_THAN", int(0)),
                field_filter("__name__", "GREATER_THAN", json!({"referenceValue": name("c/0")}))])})),
            query(json!({"from": from("c"), "where": composite("AND", vec![key_equals_a(), field_filter("k", "GREATER_THAN", json!({"nullValue": null}))])})),
            query(json!({"from": from("c"), "where": composite("AND", vec![key_equals_a(), field_filter("k", "EQUAL", int(1))])})),
        ],
    );
    add(
        "aggregations over a field read it in its order",
        vec![
            commit(json!([
                update("c/a", json!({"n": int(5)})),
                update("c/b", json!({"n": int(2)})),
                update("c/c", json!({"n": string("x")})),
                update("c/d", json!({"n": int(1)})),
                update("c/e", json!({"m": int(1)})),
            ])),
            aggregate(
                json!({"from": from("c"), "limit": 2}),
                json!([{"alias": "n", "count": {}}, {"alias": "v", "avg": {"field": {"fieldPath": "n"}}}]),
            ),
            aggregate(
                json!({"from": from("c"), "limit": 2, "orderBy": [order("m", "DESCENDING")]}),
                json!([{"alias": "s", "sum": {"field": {"fieldPath": "n"}}}]),
            ),
            aggregate(
                json!({"from": from("c"), "limit": 3, "offset": 1}),
                json!([{"alias": "s", "sum": {"field": {"fieldPath": "n"}}}]),
            ),
        ],
    );
    add(
        "an increment of NaN changes nothing",
        vec![
            commit(json!([update("c/a", json!({"n": nan()}))])),
            commit(json!([transform(
                "c/a",
                json!({}),
                json!([{"fieldPath": "n", "increment": int(1)}])
            )])),
            get("/c/a"),
        ],
    );
    add(
        "aggregation validation",
        vec![
            aggregate(json!({"from": from("c")}), json!([{"alias": "n", "count": {}}, {"alias": "n", "count": {}}])),
            aggregate(json!({"from": from("c")}), json!([])),
            aggregate(json!({"from": from("c")}), json!([{"alias": "n", "count": {"upTo": "-1"}}])),
            aggregate(json!({"from": from("c")}), json!([{"alias": "n"}])),
            aggregate(json!({"from": from("c")}), json!([{"alias": "s", "sum": {"field": {"fieldPath": "__name__"}}}])),
            aggregate(json!({"from": from("c")}), json!([{"alias": "s", "sum": {}}])),
            post(":runAggregationQuery", json!({})),
            aggregate(json!({"from": from("c")}), json!([{"count": {}}, {"count": {}}, {"count": {}}, {"count": {}}, {"count": {}}, {"count": {}}]))
                .differs(500, 400, "more than 5 aggregations: Cloud Firestore's limit is 5; the emulator fails with 500 UNKNOWN"),
        ],
    );

    // --- :batchGet ---
    add(
        "batch get",
        vec![
            seed_mixed(),
            post(
                ":batchGet",
                json!({"documents": [name("c/a"), name("c/zz"), name("c/a"), name("c/b")]}),
            ),
            post(
                ":batchGet",
                json!({"documents": [name("c/a")], "mask": {"fieldPaths": ["arr"]}}),
            ),
            post(
                ":batchGet",
                json!({"documents": [name("c/a")], "mask": {"fieldPaths": ["zz"]}}),
            ),
            post(":batchGet", json!({"documents": []})),
            post(":batchGet", json!({"documents": [name("c")]})),
            post(
                ":batchGet",
                json!({"documents": ["projects/other/databases/(default)/documents/c/a"]}),
            ),
        ],
    );

    // --- transactions ---
    add(
        "a transaction commits once",
        vec![
            commit(json!([update("c/a", json!({"n": int(1)}))])),
            post(":beginTransaction", json!({})),
            post(
                ":batchGet",
                json!({"documents": [name("c/a"), name("c/zz")], "transaction": "{TX}"}),
            ),
            post(
                ":commit",
                json!({"transaction": "{TX}", "writes": [update("c/a", json!({"n": int(5)}))]}),
            ),
            post(":commit", json!({"transaction": "{TX}", "writes": []})),
            get("/c/a"),
        ],
    );
    add(
        "what runTransaction sends: reads, then writes with verify",
        vec![
            commit(json!([update("c/a", json!({"n": int(1)}))])),
            post(":beginTransaction", json!({"options": {"readWrite": {}}})),
            post(
                ":runQuery",
                json!({"structuredQuery": {"from": from("c")}, "transaction": "{TX}"}),
            ),
            post(
                ":commit",
                json!({"transaction": "{TX}", "writes": [
                {"update": {"name": name("c/a"), "fields": {"n": int(2)}}, "currentDocument": {"exists": true}},
                {"verify": name("c/zz"), "currentDocument": {"exists": false}}]}),
            ),
            get("/c/a"),
        ],
    );
    add(
        "rollbacks",
        vec![
            post(":beginTransaction", json!({})),
            post(":rollback", json!({"transaction": "{TX}"})),
            post(":rollback", json!({"transaction": "{TX}"})),
            post(":commit", json!({"transaction": "{TX}"})),
            post(":rollback", json!({"transaction": "bm9wZQ=="})),
            post(":rollback", json!({})),
            post(":commit", json!({"transaction": "bm9wZQ=="})),
            post(":commit", json!({"transaction": "!!!"})),
        ],
    );
    add(
        "read-only transactions",
        vec![
            commit(json!([update("c/a", json!({"n": int(1)}))])),
            post(":beginTransaction", json!({"options": {"readOnly": {}}})),
            post(
                ":runQuery",
                json!({"structuredQuery": {"from": from("c")}, "transaction": "{TX}"}),
            ),
            post(
                ":commit",
                json!({"transaction": "{TX}", "writes": [update("c/a", json!({"n": int(5)}))]}),
            ),
            post(":beginTransaction", json!({"options": {"readOnly": {}}})),
            post(":commit", json!({"transaction": "{TX}"})),
            post(":beginTransaction", json!({"options": {"readOnly": {}}})),
            post(
                ":beginTransaction",
                json!({"options": {"readWrite": {"retryTransaction": "{TX}"}}}),
            ),
            post(
                ":beginTransaction",
                json!({"options": {"readWrite": {}, "readOnly": {}}}),
            ),
            get("/c/a"),
        ],
    );
    add(
        "reads that open a transaction",
        vec![
            commit(json!([update("c/a", json!({"n": int(1)}))])),
            post(
                ":runQuery",
                json!({"structuredQuery": {"from": from("c")}, "newTransaction": {}}),
            ),
            post(
                ":commit",
                json!({"transaction": "{TX}", "writes": [update("c/a", json!({"n": int(2)}))]}),
            ),
            post(
                ":batchGet",
                json!({"documents": [name("c/a")], "newTransaction": {}}),
            ),
            post(":rollback", json!({"transaction": "{TX}"})),
            post(
                ":runAggregationQuery",
                json!({"structuredAggregationQuery": {"structuredQuery": {"from": from("c")},
                "aggregations": [{"alias": "n", "count": {}}]}, "newTransaction": {"readOnly": {}}}),
            ),
            get("/c/a"),
        ],
    );
    add(
        "reads that open a read-write transaction",
        vec![
            commit(json!([update("c/a", json!({"n": int(1)}))])),
            post(
                ":runQuery",
                json!({"structuredQuery": {"from": from("c")}, "newTransaction": {"readWrite": {}}}),
            ),
            post(
                ":commit",
                json!({"transaction": "{TX}", "writes": [update("c/a", json!({"n": int(3)}))]}),
            ),
            post(
                ":batchGet",
                json!({"documents": [name("c/a"), name("c/b")], "newTransaction": {"readWrite": {}}}),
            ),
            post(
                ":commit",
                json!({"transaction": "{TX}", "writes": [update("c/b", json!({"n": int(4)}))]}),
            ),
            post(
                ":batchGet",
                json!({"documents": [name("c/a"), name("c/b")]}),
            ),
        ],
    );
    add(
        "a transaction whose query results did not change commits",
        vec![
            seed_mixed(),
            post(":beginTransaction", json!({})),
            post(
                ":runQuery",
                json!({"structuredQuery": {"from": from("c"), "where": field_filter("k", "GREATER_THAN", int(1))}, "transaction": "{TX}"}),
            ),
            post(
                ":runAggregationQuery",
                json!({"structuredAggregationQuery": {"structuredQuery": {"from": from("c")},
                "aggregations": [{"alias": "n", "count": {}}]}, "transaction": "{TX}"}),
            ),
            commit(json!([update("other/z", json!({"n": int(1)}))])),
            post(
                ":commit",
                json!({"transaction": "{TX}", "writes": [update("c/new", json!({"n": int(1)}))]}),
            ),
            get("/c/new"),
        ],
    );
    add(
        "patch nested and quoted paths",
        vec![
            patch(
                "/c/a",
                json!({"fields": {"m": {"mapValue": {"fields": {"k": int(1), "l": int(2)}}}, "odd key": int(3)}}),
            ),
            patch(
                "/c/a?updateMask.fieldPaths=m.k&updateMask.fieldPaths=%60odd%20key%60",
                json!({"fields": {"m": {"mapValue": {"fields": {"k": int(10)}}}}}),
            ),
            patch(
                "/c/a?updateMask.fieldPaths=m.new.deep",
                json!({"fields": {"m": {"mapValue": {"fields": {"new": {"mapValue": {"fields": {"deep": string("d")}}}}}}}}),
            ),
            get("/c/a"),
        ],
    );
    add(
        "delete and create again",
        vec![
            commit(json!([update("c/a", json!({"v": int(1)}))])),
            delete("/c/a"),
            commit(
                json!([{"update": {"name": name("c/a"), "fields": {"v": int(2)}}, "currentDocument": {"exists": false}}]),
            ),
            get("/c/a"),
            get("/c"),
        ],
    );
    add(
        "queries on nested and quoted field paths",
        vec![
            commit(json!([
                update(
                    "c/a",
                    json!({"m": {"mapValue": {"fields": {"k": int(2)}}}, "odd key": string("b")})
                ),
                update(
                    "c/b",
                    json!({"m": {"mapValue": {"fields": {"k": int(1)}}}, "odd key": string("a")})
                ),
                update("c/c", json!({"m": int(5)}))
            ])),
            query(json!({"from": from("c"), "orderBy": [order("m.k", "ASCENDING")]})),
            query(
                json!({"from": from("c"), "where": field_filter("`odd key`", "GREATER_THAN_OR_EQUAL", string("a")),
                "select": {"fields": [{"fieldPath": "`odd key`"}]}}),
            ),
            query(json!({"from": from("c"), "orderBy": [order("m", "DESCENDING")]})),
        ],
    );
    add(
        "cursors on two ordered fields",
        vec![
            commit(json!([
                update("c/a", json!({"g": int(1), "h": string("x")})),
                update("c/b", json!({"g": int(1), "h": string("y")})),
                update("c/c", json!({"g": int(2), "h": string("x")})),
                update("c/d", json!({"g": int(2), "h": string("y")}))
            ])),
            query(
                json!({"from": from("c"), "orderBy": [order("g", "ASCENDING"), order("h", "DESCENDING")],
                "startAt": {"values": [int(1), string("x")]}}),
            ),
            query(
                json!({"from": from("c"), "orderBy": [order("g", "DESCENDING"), order("h", "ASCENDING")],
                "startAt": {"values": [int(2)], "before": true}, "endAt": {"values": [int(1), string("x")], "before": true}}),
            ),
            query(
                json!({"from": from("c"), "orderBy": [order("g", "ASCENDING"), order("__name__", "ASCENDING")],
                "startAt": {"values": [int(1), {"referenceValue": name("c/a")}]}, "limit": 2}),
            ),
        ],
    );
    add(
        "aggregations over collection groups and disjunctions",
        vec![
            seed_mixed(),
            aggregate(
                json!({"from": [{"collectionId": "c", "allDescendants": true}], "where": field_filter("k", "GREATER_THAN", int(0))}),
                json!([{"alias": "n", "count": {}}, {"alias": "s", "sum": {"field": {"fieldPath": "k"}}}]),
            ),
            aggregate(
                json!({"from": from("c"), "where": composite("OR", vec![field_filter("k", "EQUAL", int(1)), field_filter("j", "EQUAL", int(1))])}),
                json!([{"alias": "n", "count": {}}, {"alias": "a", "avg": {"field": {"fieldPath": "j"}}}]),
            ),
        ],
    );
    add(
        "contention between a transaction and a plain write",
        vec![
            commit(json!([update("c/a", json!({"n": int(1)}))])),
            post(":beginTransaction", json!({})),
            post(":batchGet", json!({"documents": [name("c/a")], "transaction": "{TX}"})),
            commit(json!([update("c/a", json!({"n": int(2)}))])).differs(
                409,
                200,
                "the emulator locks what a transaction read, so the plain write waits and fails with ABORTED; this server is optimistic: the write succeeds and the transaction's commit aborts",
            ),
            post(":commit", json!({"transaction": "{TX}", "writes": [update("c/a", json!({"n": int(5)}))]})).differs(
                200,
                409,
                "(the other half of the same difference)",
            ),
        ],
    );
    add(
        "no such method",
        vec![
            post(":frobnicate", json!({})).differs(
                404,
                404,
                "an unknown method: the emulator's 404 has no JSON body, this server's is Firestore-shaped",
            ),
            post(":batchWrite", json!({"writes": []})).differs(
                403,
                501,
                ":batchWrite is not served (the app and the Firebase clients do not use it)",
            ),
        ],
    );
    all
}

/// One backend under test.
struct Backend {
    label: &'static str,
    base_url: String,
    agent: ureq::Agent,
}

/// What a backend answered and what a scenario captured from it.
#[derive(Default)]
struct Captures {
    transaction: Option<String>,
    page_token: Option<String>,
    update_time: Option<String>,
    /// The last update time this backend reported for each document (by path below the
    /// root), for `{UT:path}` in random sequences.
    document_times: std::collections::HashMap<String, String>,
}

impl Backend {
    fn new(label: &'static str, base_url: String) -> Backend {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Backend {
            label,
            base_url,
            agent,
        }
    }

    /// Sends one step and returns (status, body as JSON, or null when not JSON).
    fn send(&self, project: &str, step: &Step, captures: &Captures) -> (u16, Value) {
        let database = format!("projects/{project}/databases/(default)");
        let root = format!("{database}/documents");
        let substitute = |text: &str| {
            substitute_document_times(text, &captures.document_times)
                .replace("{ROOT}", &root)
                .replace("{DATABASE}", &database)
                .replace("{TX}", captures.transaction.as_deref().unwrap_or("none"))
                .replace("{TOKEN}", captures.page_token.as_deref().unwrap_or(""))
                .replace(
                    "{UPDATE_TIME}",
                    captures
                        .update_time
                        .as_deref()
                        .unwrap_or("2000-01-01T00:00:00Z"),
                )
        };
        let url = format!("{}/v1/{root}{}", self.base_url, substitute(&step.path));
        let body = step
            .body
            .as_ref()
            .map(|bytes| substitute(&String::from_utf8_lossy(bytes)).into_bytes());
        let result = match (step.method, body) {
            ("GET", _) => {
                let mut request = self.agent.get(&url);
                for (name, value) in &step.headers {
                    request = request.header(*name, substitute(value));
                }
                request.call()
            }
            ("DELETE", _) => self.agent.delete(&url).call(),
            (method, body) => {
                let mut request = match method {
                    "PATCH" => self.agent.patch(&url),
                    _ => self.agent.post(&url),
                }
                .header("Content-Type", step.content_type);
                for (name, value) in &step.headers {
                    request = request.header(*name, substitute(value));
                }
                request.send(body.unwrap_or_default())
            }
        };
        let mut response = result.unwrap_or_else(|error| panic!("{} {url}: {error}", self.label));
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// Replaces each `{UT:path}` by the last update time the backend reported for that document
/// (a time no document has when it reported none).
fn substitute_document_times(
    text: &str,
    document_times: &std::collections::HashMap<String, String>,
) -> String {
    let mut result = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{UT:") {
        result.push_str(&rest[..start]);
        let after = &rest[start + 4..];
        let Some(end) = after.find('}') else {
            result.push_str(&rest[start..]);
            return result;
        };
        let path = &after[..end];
        result.push_str(
            document_times
                .get(path)
                .map_or("2000-01-01T00:00:00Z", String::as_str),
        );
        rest = &after[end + 1..];
    }
    result.push_str(rest);
    result
}

/// Records the update time of every document a response shows, and of every document a
/// commit wrote (its request's write names, in order; verifies are skipped).
fn capture_document_times(request: Option<&Value>, body: &Value, captures: &mut Captures) {
    fn relative(name: &str) -> Option<String> {
        name.strip_prefix("{ROOT}/")
            .or_else(|| name.split_once("/documents/").map(|(_, path)| path))
            .map(str::to_owned)
    }
    fn walk(value: &Value, captures: &mut Captures) {
        match value {
            Value::Object(object) => {
                if let (Some(Value::String(name)), Some(Value::String(time))) =
                    (object.get("name"), object.get("updateTime"))
                {
                    if let Some(path) = relative(name) {
                        captures.document_times.insert(path, time.clone());
                    }
                }
                object.values().for_each(|inner| walk(inner, captures));
            }
            Value::Array(items) => items.iter().for_each(|inner| walk(inner, captures)),
            _ => {}
        }
    }
    walk(body, captures);
    let (Some(writes), Some(results)) = (
        request
            .and_then(|request| request.get("writes"))
            .and_then(Value::as_array),
        body.get("writeResults").and_then(Value::as_array),
    ) else {
        return;
    };
    for (write, result) in writes.iter().zip(results) {
        let name = write
            .pointer("/update/name")
            .or_else(|| write.get("delete"))
            .or_else(|| write.pointer("/transform/document"))
            .and_then(Value::as_str);
        let (Some(path), Some(time)) = (
            name.and_then(relative),
            result.get("updateTime").and_then(Value::as_str),
        ) else {
            continue;
        };
        captures.document_times.insert(path, time.to_owned());
    }
}

fn capture(body: &Value, captures: &mut Captures) {
    let items: Vec<&Value> = match body {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    for item in items {
        if let Some(id) = item.get("transaction").and_then(Value::as_str) {
            captures.transaction = Some(id.to_owned());
        }
    }
    if let Some(token) = body.get("nextPageToken").and_then(Value::as_str) {
        captures.page_token = Some(token.to_owned());
    }
    if let Some(time) = body
        .get("writeResults")
        .and_then(|results| results.get(0))
        .and_then(|result| result.get("updateTime"))
        .and_then(Value::as_str)
    {
        captures.update_time = Some(time.to_owned());
    }
}

fn now_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Whether an RFC 3339 time is within a day of now: a `REQUEST_TIME` the commit produced.
fn is_recent(text: &str) -> bool {
    let Some(seconds) = text.get(..19).and_then(parse_utc_seconds) else {
        return false;
    };
    (now_seconds() - seconds).abs() < 86_400
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SS` (UTC), without a date crate.
fn parse_utc_seconds(text: &str) -> Option<i64> {
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    // Days from civil (Howard Hinnant's algorithm).
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Sets aside what legitimately differs (see the module documentation).
fn normalize(status: u16, body: Value, keep_message: bool) -> Value {
    if status == 413 {
        return Value::Null;
    }
    if let Some(error) = body.get("error") {
        if keep_message {
            return json!({"error": {"code": error.get("code"), "status": error.get("status"),
                "message": error.get("message")}});
        }
        return json!({"error": {"code": error.get("code"), "status": error.get("status")}});
    }
    normalize_value(body)
}

fn normalize_value(value: Value) -> Value {
    match value {
        Value::Object(object) => Value::Object(
            object
                .into_iter()
                .map(|(key, inner)| {
                    let replaced = match key.as_str() {
                        "createTime" | "updateTime" | "readTime" | "commitTime" => {
                            Value::String("<time>".into())
                        }
                        "transaction" if inner.is_string() => Value::String("<transaction>".into()),
                        "nextPageToken" => Value::String("<page-token>".into()),
                        "timestampValue" if inner.as_str().is_some_and(is_recent) => {
                            Value::String("<request-time>".into())
                        }
                        _ => normalize_value(inner),
                    };
                    (key, replaced)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(normalize_value).collect()),
        other => other,
    }
}

/// Gives the times of one backend's answers labels in order of first appearance (`<t1>`,
/// `<t2>`, …), so two backends agree when their times relate the same way: which writes share
/// a commit time, which documents kept their update time, which were created anew. Read
/// times only say that there is one (each read takes a fresh one on the emulator).
#[derive(Default)]
struct TimeLabels {
    labels: std::collections::HashMap<String, usize>,
}

impl TimeLabels {
    fn label(&mut self, time: &str) -> Value {
        let next = self.labels.len() + 1;
        let label = *self.labels.entry(time.to_owned()).or_insert(next);
        Value::String(format!("<t{label}>"))
    }

    fn normalize(&mut self, step: &Step, status: u16, mut body: Value) -> Value {
        if let Some(error) = body.get("error") {
            return json!({"error": {"code": error.get("code"), "status": error.get("status")}});
        }
        if let Some(results) = body.get_mut("writeResults").and_then(Value::as_array_mut) {
            for index in &step.verify_results {
                if let Some(time) = results
                    .get_mut(*index)
                    .and_then(|result| result.get_mut("updateTime"))
                {
                    *time = Value::String("<verify-time>".into());
                }
            }
        }
        let _ = status;
        self.normalize_value(body)
    }

    fn normalize_value(&mut self, value: Value) -> Value {
        match value {
            Value::Object(object) => Value::Object(
                object
                    .into_iter()
                    .map(|(key, inner)| {
                        let replaced = match (key.as_str(), &inner) {
                            ("createTime" | "updateTime" | "commitTime", Value::String(time))
                                if time != "<verify-time>" =>
                            {
                                self.label(time)
                            }
                            ("readTime", _) => Value::String("<time>".into()),
                            ("transaction", Value::String(_)) => {
                                Value::String("<transaction>".into())
                            }
                            ("nextPageToken", _) => Value::String("<page-token>".into()),
                            ("timestampValue", Value::String(time)) if is_recent(time) => {
                                Value::String("<request-time>".into())
                            }
                            _ => self.normalize_value(inner),
                        };
                        (key, replaced)
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(
                items
                    .into_iter()
                    .map(|item| self.normalize_value(item))
                    .collect(),
            ),
            other => other,
        }
    }
}

/// How many random sequences `make test` runs, and how long each is.
const DEFAULT_SEEDS: u64 = 16;
const SEQUENCE_LENGTH: usize = 40;

/// The seeds to run: `DIFFERENTIAL_SEED=k` runs only seed k (and prints every step);
/// `DIFFERENTIAL_SEEDS=n` runs seeds 0..n, `DIFFERENTIAL_SEEDS=a..b` seeds a..b; by default
/// the fixed `0..DEFAULT_SEEDS`.
fn random_seeds() -> (Vec<u64>, bool) {
    let number = |name: &str, text: &str| {
        text.trim()
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("{name} must be a number or a range a..b, not {text:?}"))
    };
    if let Ok(text) = std::env::var("DIFFERENTIAL_SEED") {
        return (vec![number("DIFFERENTIAL_SEED", &text)], true);
    }
    match std::env::var("DIFFERENTIAL_SEEDS") {
        Ok(text) => match text.split_once("..") {
            Some((first, end)) => (
                (number("DIFFERENTIAL_SEEDS", first)..number("DIFFERENTIAL_SEEDS", end)).collect(),
                false,
            ),
            None => ((0..number("DIFFERENTIAL_SEEDS", &text)).collect(), false),
        },
        Err(_) => ((0..DEFAULT_SEEDS).collect(), false),
    }
}

/// Runs the seeded random sequences on both backends, each in its own project; a sequence
/// stops at its first difference (later steps would only repeat it). Returns the number of
/// responses compared, how many were identical, and the differences.
fn run_random_sequences(
    emulator: &Backend,
    ours: &Backend,
    run_id: i64,
) -> (usize, usize, Vec<String>) {
    let (seeds, verbose) = random_seeds();
    let (mut compared, mut identical) = (0, 0);
    let mut mismatches = Vec::new();
    for seed in seeds {
        let project = format!("random-{run_id}-{seed}");
        let steps = random_sequences::sequence(seed, SEQUENCE_LENGTH);
        let (mut emulator_captures, mut our_captures) = (Captures::default(), Captures::default());
        let (mut emulator_labels, mut our_labels) = (TimeLabels::default(), TimeLabels::default());
        for (position, step) in steps.iter().enumerate() {
            let request: Option<Value> = step
                .body
                .as_ref()
                .and_then(|bytes| serde_json::from_slice(bytes).ok());
            let (emulator_status, emulator_body) =
                emulator.send(&project, step, &emulator_captures);
            let (our_status, our_body) = ours.send(&project, step, &our_captures);
            for (body, captures) in [
                (&emulator_body, &mut emulator_captures),
                (&our_body, &mut our_captures),
            ] {
                capture(body, captures);
                capture_document_times(request.as_ref(), body, captures);
            }
            let messages = format!(
                "  messages: emulator {:?}, ours {:?}",
                emulator_body.pointer("/error/message"),
                our_body.pointer("/error/message")
            );
            let emulator_normalized =
                emulator_labels.normalize(step, emulator_status, emulator_body);
            let our_normalized = our_labels.normalize(step, our_status, our_body);
            compared += 1;
            let request_text = step
                .body
                .as_ref()
                .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
                .unwrap_or_default();
            if verbose {
                eprintln!(
                    "seed {seed} step {}: {} {} {request_text}\n  emulator {emulator_status}: {emulator_normalized}\n  ours     {our_status}: {our_normalized}\n{messages}",
                    position + 1,
                    step.method,
                    step.path
                );
            }
            if emulator_status == our_status && emulator_normalized == our_normalized {
                identical += 1;
                continue;
            }
            mismatches.push(format!(
                "seed {seed} step {} (replay with DIFFERENTIAL_SEED={seed}): {} {} {request_text}\n  emulator {emulator_status}: {emulator_normalized}\n  ours     {our_status}: {our_normalized}\n{messages}",
                position + 1,
                step.method,
                step.path
            ));
            break;
        }
    }
    (compared, identical, mismatches)
}

/// Runs every scenario against both backends and compares.
#[test]
fn counterbook_server_answers_like_the_firestore_emulator() {
    let started = Instant::now();
    let data_directory = tempfile::tempdir().unwrap();
    let server = RunningServer::start_dev(data_directory.path());
    let server_url = server.base_url.clone();
    let port = free_port();
    let (_emulator_group, _) = start_group(
        "the Firestore emulator",
        EMULATOR,
        &[
            "start".into(),
            "--host=127.0.0.1".into(),
            format!("--port={port}"),
        ],
        "Dev App Server is now running",
        START_LIMIT,
    );
    let emulator = Backend::new("emulator", format!("http://127.0.0.1:{port}"));
    let ours = Backend::new("counterbook-server", server_url);

    let scenarios = scenarios();
    let run_id = now_seconds();
    let mut mismatches = Vec::new();
    let mut documented = Vec::new();
    let mut step_count = 0;
    for (index, scenario) in scenarios.iter().enumerate() {
        let project = format!("diff-{run_id}-{index}");
        let mut emulator_captures = Captures::default();
        let mut our_captures = Captures::default();
        for (position, step) in scenario.steps.iter().enumerate() {
            step_count += 1;
            let (emulator_status, emulator_body) =
                emulator.send(&project, step, &emulator_captures);
            let (our_status, our_body) = ours.send(&project, step, &our_captures);
            capture(&emulator_body, &mut emulator_captures);
            capture(&our_body, &mut our_captures);
            let where_ = format!(
                "{} step {} ({} {})",
                scenario.name,
                position + 1,
                step.method,
                step.path
            );
            match step.expect {
                Expect::Same => {
                    let emulator_normalized =
                        normalize(emulator_status, emulator_body, step.same_message);
                    let our_normalized = normalize(our_status, our_body, step.same_message);
                    if emulator_status != our_status || emulator_normalized != our_normalized {
                        mismatches.push(format!(
                            "{where_}:\n  emulator {emulator_status}: {emulator_normalized}\n  ours     {our_status}: {our_normalized}"
                        ));
                    }
                }
                Expect::Differs {
                    emulator: expected_emulator,
                    ours: expected_ours,
                    why,
                } => {
                    if emulator_status != expected_emulator || our_status != expected_ours {
                        mismatches.push(format!(
                            "{where_}: documented difference did not hold: emulator {emulator_status} (expected {expected_emulator}), ours {our_status} (expected {expected_ours}): {why}"
                        ));
                    }
                    documented.push(format!("{where_}: {why}"));
                }
            }
        }
    }
    let scenarios_took = started.elapsed();
    let (random_compared, random_identical, random_mismatches) =
        run_random_sequences(&emulator, &ours, run_id);
    eprintln!(
        "differential suite: {} scenarios, {step_count} steps, {} documented differences, {scenarios_took:.1?}; \
         random sequences: {random_compared} responses compared, {random_identical} identical, {:.1?} in all",
        scenarios.len(),
        documented.len(),
        started.elapsed()
    );
    mismatches.extend(random_mismatches);
    for difference in &documented {
        eprintln!("  documented: {difference}");
    }
    assert!(
        mismatches.is_empty(),
        "{} of {step_count} steps differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert!(
        scenarios.len() >= 60,
        "the suite should keep at least 60 scenarios"
    );
}
