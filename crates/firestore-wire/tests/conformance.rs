//! Round-trips the wire JSON in Google's Firestore client conformance tests: every expected
//! `CommitRequest` and `StructuredQuery` must parse and re-serialize to the same JSON.

use std::path::Path;

use counterbook_firestore_wire::{CommitRequest, StructuredQuery};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value as Json;

/// Normalizes what proto3 JSON treats as equal: `1` and `1.0`, and an empty `fields` map
/// written or left out.
fn normalize(json: &Json) -> Json {
    match json {
        Json::Number(n) => Json::from(n.as_f64().unwrap()),
        Json::Array(items) => Json::Array(items.iter().map(normalize).collect()),
        Json::Object(map) => Json::Object(
            map.iter()
                .filter(|(k, v)| {
                    !(k.as_str() == "fields" && v.as_object().is_some_and(|m| m.is_empty()))
                })
                .map(|(k, v)| (k.clone(), normalize(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn check_round_trip<T: DeserializeOwned + Serialize>(file: &str, json: &Json) {
    let parsed: T = serde_json::from_value(json.clone())
        .unwrap_or_else(|e| panic!("{file}: cannot parse {json}: {e}"));
    let written = serde_json::to_value(&parsed).unwrap();
    assert_eq!(
        normalize(&written),
        normalize(json),
        "{file}: round trip changed the JSON"
    );
}

#[test]
fn commit_requests_and_queries_round_trip() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conformance");
    let mut requests = 0;
    let mut queries = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let root: Json = serde_json::from_str(&text).unwrap();
        for test in root["tests"].as_array().unwrap() {
            for kind in ["create", "set", "update", "updatePaths", "delete"] {
                if let Some(request) = test.get(kind).and_then(|t| t.get("request")) {
                    check_round_trip::<CommitRequest>(&file, request);
                    requests += 1;
                }
            }
            if let Some(query) = test.get("query").and_then(|t| t.get("query")) {
                check_round_trip::<StructuredQuery>(&file, query);
                queries += 1;
            }
        }
    }
    // Guards against an empty or moved data folder making this test pass vacuously.
    assert!(
        requests > 100,
        "only {requests} commit requests found in {dir:?}"
    );
    assert!(queries > 20, "only {queries} queries found in {dir:?}");
}
