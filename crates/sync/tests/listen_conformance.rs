//! Runs every `listen-*.json` case of Google's Firestore client conformance tests through
//! [`Listener`]: the responses of each case go in, and the snapshots it releases (documents in
//! query order, changes with their indices, read time) must be the expected ones; a case marked
//! `isError` must end in an error for the target or the stream.
//!
//! The cases assume the query `C` ordered by `a` and the target id 1, so the listener starts its
//! target ids at 1. Their `filter` responses carry no target id; `tests.proto` lets interpreters
//! change ids, so the filter's is filled in with 1.

use std::path::Path;

use counterbook_firestore_wire::{Direction, Document, ListenResponse, TargetKind, Timestamp};
use counterbook_sync::{
    ChangeKind, FieldPath, ListenCommand, ListenConfig, ListenEvent, Listener, QueryBuilder,
    TargetSlot,
};
use serde_json::Value as Json;

const COLLECTION: &str = "projects/projectID/databases/(default)/documents/C";

/// A snapshot as the cases write it: documents, (kind, document, old index, new index), time.
#[derive(Debug, PartialEq)]
struct Snapshot {
    docs: Vec<Document>,
    changes: Vec<(ChangeKind, Document, i64, i64)>,
    read_time: Timestamp,
}

fn expected_snapshot(json: &Json) -> Snapshot {
    let docs = json
        .get("docs")
        .map(|docs| serde_json::from_value(docs.clone()).unwrap())
        .unwrap_or_default();
    let changes = json
        .get("changes")
        .and_then(Json::as_array)
        .map(|changes| {
            changes
                .iter()
                .map(|change| {
                    let kind = match change["kind"].as_str().unwrap() {
                        "ADDED" => ChangeKind::Added,
                        "REMOVED" => ChangeKind::Removed,
                        "MODIFIED" => ChangeKind::Modified,
                        other => panic!("unknown change kind {other}"),
                    };
                    // proto3 JSON leaves out zeros.
                    let index = |key: &str| change.get(key).and_then(Json::as_i64).unwrap_or(0);
                    (
                        kind,
                        serde_json::from_value(change["doc"].clone()).unwrap(),
                        index("oldIndex"),
                        index("newIndex"),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Snapshot {
        docs,
        changes,
        read_time: serde_json::from_value(json["readTime"].clone()).unwrap(),
    }
}

/// Feeds the case's responses to a listener with the case's query; returns the snapshots it
/// released and whether it reported an error.
fn run(responses: &[Json]) -> (Vec<Snapshot>, bool) {
    let mut config = ListenConfig::new("projectID", "this-device", 1);
    config.first_target_id = 1;
    let mut listener = Listener::new(config);
    let query = QueryBuilder::collection(COLLECTION)
        .unwrap()
        .order_by(FieldPath::from_segments(["a"]), Direction::Ascending)
        .build()
        .unwrap();
    let mut now = 0;
    let mut step = |listener: &mut Listener, event| {
        now += 1;
        listener.handle(now, event)
    };
    step(&mut listener, ListenEvent::Visible(true));
    let opened = step(
        &mut listener,
        ListenEvent::Watch {
            slot: TargetSlot::Screen,
            target: TargetKind::Query(query),
            resume_token: None,
        },
    );
    assert_eq!(opened, vec![ListenCommand::OpenStream]);
    let added = step(&mut listener, ListenEvent::StreamOpened);
    assert!(
        matches!(&added[..], [ListenCommand::SendRequest(request)]
            if request.add_target.as_ref().is_some_and(|t| t.target_id == 1)),
        "{added:?}"
    );
    let mut snapshots = Vec::new();
    let mut failed = false;
    for json in responses {
        let mut response: ListenResponse = serde_json::from_value(json.clone())
            .unwrap_or_else(|e| panic!("cannot parse {json}: {e}"));
        if let ListenResponse::Filter(filter) = &mut response {
            if filter.target_id == 0 {
                filter.target_id = 1;
            }
        }
        for command in step(&mut listener, ListenEvent::Response(response)) {
            match command {
                ListenCommand::Snapshot {
                    slot,
                    changes,
                    read_time,
                } => {
                    assert_eq!(slot, TargetSlot::Screen);
                    assert!(!failed, "a snapshot after an error");
                    snapshots.push(Snapshot {
                        docs: listener
                            .documents(TargetSlot::Screen)
                            .into_iter()
                            .cloned()
                            .collect(),
                        changes: changes
                            .into_iter()
                            .map(|change| {
                                let index = |i: Option<usize>| i.map_or(-1, |i| i as i64);
                                (
                                    change.kind,
                                    change.document,
                                    index(change.old_index),
                                    index(change.new_index),
                                )
                            })
                            .collect(),
                        read_time,
                    });
                }
                ListenCommand::TargetFailed { .. } | ListenCommand::ProtocolError { .. } => {
                    failed = true
                }
                _ => {}
            }
        }
    }
    (snapshots, failed)
}

#[test]
fn every_listen_case_releases_the_expected_snapshots() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/conformance");
    let mut cases = 0;
    let mut snapshots_checked = 0;
    let mut errors_checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(file.starts_with("listen-") && file.ends_with(".json")) {
            continue;
        }
        let root: Json = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for test in root["tests"].as_array().unwrap() {
            let case = &test["listen"];
            let description = test["description"].as_str().unwrap_or_default();
            let responses = case["responses"].as_array().cloned().unwrap_or_default();
            let expected: Vec<Snapshot> = case
                .get("snapshots")
                .and_then(Json::as_array)
                .map(|s| s.iter().map(expected_snapshot).collect())
                .unwrap_or_default();
            let is_error = case["isError"].as_bool().unwrap_or(false);
            let (snapshots, failed) = run(&responses);
            assert_eq!(snapshots, expected, "{file} ({description})");
            assert_eq!(failed, is_error, "{file} ({description}): error reported");
            cases += 1;
            snapshots_checked += expected.len();
            errors_checked += usize::from(is_error);
        }
    }
    println!(
        "listen conformance: {cases} cases, {snapshots_checked} snapshots, {errors_checked} errors"
    );
    // 14 files of one case each; a moved data folder or a skipped file fails here.
    assert_eq!(cases, 14, "listen cases found in {dir:?}");
    assert_eq!((snapshots_checked, errors_checked), (22, 2));
}
