//! The Firestore REST API in process: `app(state).oneshot(request)` against a temporary SQLite
//! file. Expected codes, statuses and shapes are the ones Google's Firestore emulator answers.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use support::{assert_error, name, update, TestServer, PROJECT, ROOT};

fn int(value: i64) -> Value {
    json!({"integerValue": value.to_string()})
}

fn timestamp(text: &str) -> Value {
    json!({ "timestampValue": text })
}

#[tokio::test]
async fn commit_then_get_round_trips_with_create_and_update_times() {
    let server = TestServer::new();
    let fields = json!({
        "name": {"stringValue": "Chai"},
        "price": int(1500),
        "tags": {"arrayValue": {"values": [{"stringValue": "hot"}]}},
        "totals": {"mapValue": {"fields": {"net": {"doubleValue": 2.5}}}}
    });
    let first = server
        .commit_ok(json!([update("shops/s1/products/p1", fields.clone())]))
        .await;
    let commit_time = first["commitTime"].clone();
    assert_eq!(
        first["writeResults"],
        json!([{ "updateTime": commit_time }])
    );

    let got = server.get("shops/s1/products/p1").await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(
        got.body,
        json!({
            "name": name("shops/s1/products/p1"),
            "fields": fields,
            "createTime": commit_time,
            "updateTime": commit_time
        })
    );

    let second = server
        .commit_ok(json!([update(
            "shops/s1/products/p1",
            json!({"price": int(1600)})
        )]))
        .await;
    let got = server.get("shops/s1/products/p1").await;
    assert_eq!(got.body["createTime"], commit_time, "createTime is kept");
    assert_eq!(got.body["updateTime"], second["commitTime"]);
    assert_eq!(got.body["fields"], json!({"price": int(1600)}));
}

#[tokio::test]
async fn request_time_transform_result_equals_the_commit_time() {
    let server = TestServer::new();
    let response = server
        .commit_ok(json!([{
            "update": {"name": name("shops/s1/products/p1"), "fields": {}},
            "updateTransforms": [{"fieldPath": "updatedAt", "setToServerValue": "REQUEST_TIME"}]
        }]))
        .await;
    let commit_time = response["commitTime"].as_str().unwrap().to_owned();
    assert_eq!(
        response["writeResults"][0]["transformResults"],
        json!([timestamp(&commit_time)])
    );
    let got = server.get("shops/s1/products/p1").await;
    assert_eq!(got.body["fields"]["updatedAt"], timestamp(&commit_time));
}

#[tokio::test]
async fn increments_add_integers_doubles_and_start_missing_fields_at_zero() {
    let server = TestServer::new();
    server
        .commit_ok(json!([update(
            "shops/s1/customers/c1",
            json!({"balance": int(100), "points": {"doubleValue": 1.5}, "label": {"stringValue": "x"}})
        )]))
        .await;
    let increments = json!([
        {"fieldPath": "balance", "increment": int(-30)},
        {"fieldPath": "points", "increment": int(2)},
        {"fieldPath": "missing", "increment": {"doubleValue": 2.5}},
        {"fieldPath": "label", "increment": int(4)},
        {"fieldPath": "stats.sold", "increment": int(7)}
    ]);
    let response = server
        .commit_ok(json!([{
            "update": {"name": name("shops/s1/customers/c1"), "fields": {}},
            "updateMask": {"fieldPaths": []},
            "updateTransforms": increments
        }]))
        .await;
    assert_eq!(
        response["writeResults"][0]["transformResults"],
        json!([int(70), {"doubleValue": 3.5}, {"doubleValue": 2.5}, int(4), int(7)])
    );
    let got = server.get("shops/s1/customers/c1").await;
    assert_eq!(
        got.body["fields"],
        json!({
            "balance": int(70),
            "points": {"doubleValue": 3.5},
            "missing": {"doubleValue": 2.5},
            "label": int(4),
            "stats": {"mapValue": {"fields": {"sold": int(7)}}}
        })
    );
}

#[tokio::test]
async fn an_update_mask_changes_only_masked_fields_and_deletes_masked_fields_missing_from_the_body()
{
    let server = TestServer::new();
    server
        .commit_ok(json!([update(
            "shops/s1/products/p1",
            json!({
                "name": {"stringValue": "Chai"},
                "price": int(10),
                "stock": int(5),
                "meta": {"mapValue": {"fields": {"a": int(1), "b": int(2)}}}
            })
        )]))
        .await;
    server
        .commit_ok(json!([{
            "update": {"name": name("shops/s1/products/p1"), "fields": {
                "price": int(12),
                "stock": int(999),
                "meta": {"mapValue": {"fields": {"a": int(10)}}}
            }},
            "updateMask": {"fieldPaths": ["price", "name", "meta.a"]}
        }]))
        .await;
    let got = server.get("shops/s1/products/p1").await;
    assert_eq!(
        got.body["fields"],
        json!({
            "price": int(12),
            "stock": int(5),
            "meta": {"mapValue": {"fields": {"a": int(10), "b": int(2)}}}
        }),
        "price changed, name deleted, stock untouched (not masked), meta.b kept"
    );
}

#[tokio::test]
async fn preconditions_answer_like_the_emulator() {
    let server = TestServer::new();
    let created = server
        .commit_ok(json!([update("shops/s1/products/p1", json!({}))]))
        .await;
    let update_time = created["writeResults"][0]["updateTime"].clone();

    let with_precondition = |path: &str, precondition: Value| {
        json!([{
            "update": {"name": name(path), "fields": {"x": int(1)}},
            "currentDocument": precondition
        }])
    };

    let response = server
        .commit(with_precondition(
            "shops/s1/products/p1",
            json!({"exists": false}),
        ))
        .await;
    let message = assert_error(&response, 409, "ALREADY_EXISTS");
    assert!(message.contains(&name("shops/s1/products/p1")), "{message}");

    let response = server
        .commit(with_precondition(
            "shops/s1/products/nope",
            json!({"exists": true}),
        ))
        .await;
    assert_error(&response, 404, "NOT_FOUND");

    let response = server
        .commit(with_precondition(
            "shops/s1/products/p1",
            json!({"updateTime": "2020-01-01T00:00:00Z"}),
        ))
        .await;
    let message = assert_error(&response, 400, "FAILED_PRECONDITION");
    assert!(message.contains("1577836800000000"), "{message}");

    server
        .commit_ok(with_precondition(
            "shops/s1/products/p1",
            json!({ "updateTime": update_time }),
        ))
        .await;
    server
        .commit_ok(with_precondition(
            "shops/s1/products/new",
            json!({"exists": false}),
        ))
        .await;
    server
        .commit_ok(with_precondition(
            "shops/s1/products/new",
            json!({"exists": true}),
        ))
        .await;

    // The sync engine's marker document: `exists: false` makes a retried unit fail instead of
    // applying its increments twice.
    let marker = json!([{
        "update": {"name": name("shops/s1/ops/unit-1"), "fields": {}},
        "currentDocument": {"exists": false}
    }]);
    server.commit_ok(marker.clone()).await;
    assert_error(&server.commit(marker).await, 409, "ALREADY_EXISTS");
    assert_eq!(
        server.get("shops/s1/ops/unit-1").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn delete_and_verify_results_match_the_emulator() {
    let server = TestServer::new();
    let created = server
        .commit_ok(json!([update("t/a", json!({})), update("t/b", json!({}))]))
        .await;
    let response = server
        .commit_ok(json!([
            {"delete": name("t/missing")},
            {"verify": name("t/a"), "currentDocument": {"exists": true}},
            {"delete": name("t/b")}
        ]))
        .await;
    assert_eq!(
        response["writeResults"],
        json!([{}, {"updateTime": created["commitTime"]}, {}])
    );
    assert_error(&server.get("t/b").await, 404, "NOT_FOUND");
    let response = server
        .commit(json!([{"verify": name("t/b"), "currentDocument": {"exists": true}}]))
        .await;
    assert_error(&response, 404, "NOT_FOUND");
    // A verify stands alone on its document, as on the emulator.
    let response = server
        .commit(json!([
            {"verify": name("t/a"), "currentDocument": {"exists": true}},
            {"delete": name("t/a")}
        ]))
        .await;
    let message = assert_error(&response, 400, "INVALID_ARGUMENT");
    assert_eq!(
        message,
        "the same document cannot be verified and then written in a single request"
    );
}

#[tokio::test]
async fn a_commit_whose_second_write_fails_applies_nothing() {
    let server = TestServer::new();
    server
        .commit_ok(json!([update("shops/s1/ops/u1", json!({}))]))
        .await;
    let response = server
        .commit(json!([
            {
                "update": {"name": name("shops/s1/products/p1"), "fields": {}},
                "updateTransforms": [{"fieldPath": "stock", "increment": int(-1)}]
            },
            {
                "update": {"name": name("shops/s1/ops/u1"), "fields": {}},
                "currentDocument": {"exists": false}
            }
        ]))
        .await;
    assert_error(&response, 409, "ALREADY_EXISTS");
    assert_error(&server.get("shops/s1/products/p1").await, 404, "NOT_FOUND");
}

#[tokio::test]
async fn commit_times_strictly_increase() {
    let server = TestServer::new();
    let mut previous: Option<counterbook_firestore_wire::Timestamp> = None;
    for index in 0..30 {
        let response = server
            .commit_ok(json!([update("t/a", json!({"i": int(index)}))]))
            .await;
        let commit_time: counterbook_firestore_wire::Timestamp =
            serde_json::from_value(response["commitTime"].clone()).unwrap();
        assert_eq!(commit_time.nanos % 1000, 0, "microsecond precision");
        if let Some(previous) = previous {
            assert!(commit_time > previous, "{commit_time} after {previous}");
        }
        previous = Some(commit_time);
    }
}

/// The app's pull query for one page, after the cursor `(updated_at, name)` if given.
fn pull_query(collection: &str, since: &str, cursor: Option<(&Value, &Value)>) -> Value {
    let mut query = json!({
        "from": [{"collectionId": collection}],
        "where": {"fieldFilter": {
            "field": {"fieldPath": "updatedAt"},
            "op": "GREATER_THAN_OR_EQUAL",
            "value": timestamp(since)
        }},
        "orderBy": [
            {"field": {"fieldPath": "updatedAt"}, "direction": "ASCENDING"},
            {"field": {"fieldPath": "__name__"}, "direction": "ASCENDING"}
        ],
        "limit": 2
    });
    if let Some((updated_at, document_name)) = cursor {
        query["startAt"] = json!({
            "values": [updated_at, {"referenceValue": document_name}],
            "before": false
        });
    }
    query
}

fn names_of(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .filter_map(|item| item["document"]["name"].as_str())
        .map(|full| full.trim_start_matches(&format!("{ROOT}/")).to_owned())
        .collect()
}

#[tokio::test]
async fn the_pull_query_pages_through_documents_sharing_one_updated_at_exactly_once() {
    let server = TestServer::new();
    let stamped = |path: &str| {
        json!({
            "update": {"name": name(path), "fields": {"v": int(1)}},
            "updateTransforms": [{"fieldPath": "updatedAt", "setToServerValue": "REQUEST_TIME"}]
        })
    };
    server
        .commit_ok(json!([
            update(
                "shops/s1/products/old",
                json!({"updatedAt": timestamp("2020-01-01T00:00:00Z")})
            ),
            update(
                "shops/s2/products/other-shop",
                json!({"updatedAt": timestamp("2030-01-01T00:00:00Z")})
            )
        ]))
        .await;
    server
        .commit_ok(json!([
            stamped("shops/s1/products/c"),
            stamped("shops/s1/products/a"),
            stamped("shops/s1/products/b")
        ]))
        .await;
    server
        .commit_ok(json!([stamped("shops/s1/products/d")]))
        .await;

    let mut seen = Vec::new();
    let mut cursor: Option<(Value, Value)> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages < 10, "paging does not terminate: {seen:?}");
        let query = pull_query(
            "products",
            "2021-01-01T00:00:00Z",
            cursor.as_ref().map(|(time, name)| (time, name)),
        );
        let items = server.run_query("shops/s1", query).await;
        assert_eq!(items.last().unwrap()["done"], json!(true));
        let page = names_of(&items);
        if page.is_empty() {
            assert_eq!(items.len(), 1, "an empty page is one item: {items:?}");
            assert!(items[0]["readTime"].is_string());
            break;
        }
        let last = &items[items.len() - 1]["document"];
        cursor = Some((last["fields"]["updatedAt"].clone(), last["name"].clone()));
        seen.extend(page);
    }
    assert_eq!(
        seen,
        [
            "shops/s1/products/a",
            "shops/s1/products/b",
            "shops/s1/products/c",
            "shops/s1/products/d"
        ]
    );
}

/// Guards `:runQuery` replies written straight to JSON text: a query that opens a transaction
/// answers it first as an item of its own, then every document with its read time, the last
/// item `done`, sent as `application/json`.
#[tokio::test]
async fn a_query_opening_a_transaction_names_it_first_then_its_documents() {
    let server = TestServer::new();
    server
        .commit_ok(json!([
            update(
                "c/a",
                json!({"rank": int(1), "label": {"stringValue": "é \" \\ \u{1f375}"}})
            ),
            update("c/b", json!({"rank": int(2)}))
        ]))
        .await;
    let response = server
        .post(
            ":runQuery",
            json!({"structuredQuery": {"from": [{"collectionId": "c"}]}, "newTransaction": {}}),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(
        response.headers["content-type"], "application/json",
        "sent as Json would send it"
    );
    let items = response.body.as_array().expect("a JSON array");
    assert_eq!(items.len(), 3, "{items:?}");
    let leading = items[0].as_object().expect("an object");
    assert_eq!(leading.len(), 1, "the transaction alone: {leading:?}");
    assert!(leading["transaction"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));
    assert_eq!(names_of(&items[1..]), ["c/a", "c/b"]);
    assert_eq!(
        items[1]["document"]["fields"]["label"],
        json!({"stringValue": "é \" \\ \u{1f375}"}),
        "strings escaped and read back whole"
    );
    assert!(items[1..].iter().all(|item| item["readTime"].is_string()));
    assert_eq!(items[2]["done"], json!(true));
    assert!(items[1].get("done").is_none());
}

#[tokio::test]
async fn results_are_ordered_by_the_field_then_by_name_in_the_last_direction() {
    let server = TestServer::new();
    server
        .commit_ok(json!([
            update("c/z", json!({"rank": int(1)})),
            update("c/y", json!({"rank": int(1)})),
            update("c/x", json!({"rank": int(0)})),
            update("c/w", json!({"other": int(0)}))
        ]))
        .await;
    let ascending = server
        .run_query(
            "",
            json!({"from": [{"collectionId": "c"}], "orderBy": [{"field": {"fieldPath": "rank"}}]}),
        )
        .await;
    assert_eq!(names_of(&ascending), ["c/x", "c/y", "c/z"], "w has no rank");
    let descending = server
        .run_query(
            "",
            json!({"from": [{"collectionId": "c"}],
                   "orderBy": [{"field": {"fieldPath": "rank"}, "direction": "DESCENDING"}]}),
        )
        .await;
    assert_eq!(names_of(&descending), ["c/z", "c/y", "c/x"]);
    let unordered = server
        .run_query("", json!({"from": [{"collectionId": "c"}], "offset": 1}))
        .await;
    assert_eq!(names_of(&unordered), ["c/x", "c/y", "c/z"]);
    assert_eq!(unordered[0]["skippedResults"], json!(1));
}

#[tokio::test]
async fn bad_requests_get_firestore_shaped_errors() {
    let server = TestServer::new();

    let response = server
        .post_raw(":commit", "application/json", "{\"writes\": [")
        .await;
    let message = assert_error(&response, 400, "INVALID_ARGUMENT");
    assert!(
        message.starts_with("Payload isn't valid for request"),
        "{message}"
    );

    let response = server.commit(json!([{"frobnicate": name("t/a")}])).await;
    assert_error(&response, 400, "INVALID_ARGUMENT");

    let response = server.post(":commit", json!({"writes": "x"})).await;
    assert_error(&response, 400, "INVALID_ARGUMENT");

    let response = server
        .commit(json!([{"update": {"name": "garbage/x"}}]))
        .await;
    let message = assert_error(&response, 400, "INVALID_ARGUMENT");
    assert!(message.contains("garbage/x"), "{message}");

    let response = server
        .commit(json!([{"update": {"name": name("shops")}}]))
        .await;
    let message = assert_error(&response, 400, "INVALID_ARGUMENT");
    assert!(message.contains("not a document"), "{message}");

    let response = server
        .commit(json!([{"update": {"name": "projects/someone-else/databases/(default)/documents/t/a"}}]))
        .await;
    let message = assert_error(&response, 400, "INVALID_ARGUMENT");
    assert!(message.contains("outside the database"), "{message}");

    let response = server
        .commit(json!([{
            "update": {"name": name("t/a")},
            "updateTransforms": [{"fieldPath": "x", "maximum": {"stringValue": "z"}}]
        }]))
        .await;
    assert_error(&response, 400, "INVALID_ARGUMENT");

    let response = server.get("shops/s1/products/missing").await;
    let message = assert_error(&response, 404, "NOT_FOUND");
    assert!(
        message.contains(&name("shops/s1/products/missing")),
        "{message}"
    );

    let response = server.post(":batchWrite", json!({})).await;
    assert_error(&response, 501, "UNIMPLEMENTED");
    let response = server
        .post(":commit", json!({"writes": [], "bogus": 1}))
        .await;
    let message = assert_error(&response, 400, "INVALID_ARGUMENT");
    assert!(message.contains("Unknown name \"bogus\""), "{message}");
    let response = server.post(":frobnicate", json!({})).await;
    assert_error(&response, 404, "NOT_FOUND");
    let response = server
        .send(
            Request::get(format!(
                "/v1/projects/{PROJECT}/databases/(default)/indexes"
            ))
            .body(Body::empty())
            .unwrap(),
        )
        .await;
    assert_error(&response, 404, "NOT_FOUND");

    let response = server
        .post(
            ":runQuery",
            json!({"structuredQuery": {"from": [{"collectionId": "c"}], "limit": -1}}),
        )
        .await;
    assert_error(&response, 400, "INVALID_ARGUMENT");

    // Nothing above wrote anything.
    assert_error(&server.get("t/a").await, 404, "NOT_FOUND");
}

#[tokio::test]
async fn text_plain_bodies_and_api_keys_are_accepted_like_the_firebase_sdk_sends_them() {
    let server = TestServer::new();
    let body = json!({"writes": [update("t/a", json!({"x": int(1)}))]}).to_string();
    let request = Request::post(format!("/v1/{ROOT}:commit?key=AIzaFake"))
        .header("content-type", "text/plain;charset=UTF-8")
        .body(Body::from(body))
        .unwrap();
    let response = server.send(request).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(server.get("t/a").await.body["fields"], json!({"x": int(1)}));

    // The database id may come percent-encoded, and an empty commit is `{}` as on the emulator.
    let request = Request::post(format!(
        "/v1/projects/{PROJECT}/databases/%28default%29/documents:commit"
    ))
    .header("content-type", "text/plain")
    .body(Body::empty())
    .unwrap();
    let response = server.send(request).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body, json!({}));
}

#[tokio::test]
async fn documents_and_the_commit_clock_survive_reopening_the_data_directory() {
    let server = TestServer::new();
    let before = server
        .commit_ok(json!([update("t/a", json!({"x": int(1)}))]))
        .await;
    let server = server.reopen();
    let got = server.get("t/a").await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["fields"], json!({"x": int(1)}));
    let after = server.commit_ok(json!([update("t/b", json!({}))])).await;
    let before: counterbook_firestore_wire::Timestamp =
        serde_json::from_value(before["commitTime"].clone()).unwrap();
    let after: counterbook_firestore_wire::Timestamp =
        serde_json::from_value(after["commitTime"].clone()).unwrap();
    assert!(after > before);
}

#[tokio::test]
async fn dev_mode_answers_cors_preflights_for_any_origin() {
    let server = TestServer::new();
    let request = Request::options(format!("/v1/{ROOT}:commit"))
        .header("origin", "http://localhost:8081")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,x-goog-api-client,x-firebase-gmpid",
        )
        .body(Body::empty())
        .unwrap();
    let response = server.send(request).await;
    assert!(response.status.is_success(), "{}", response.status);
    let header = |name: &str| {
        response
            .headers
            .get(name)
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(
        header("access-control-allow-origin"),
        "http://localhost:8081"
    );
    assert!(header("access-control-allow-methods").contains("POST"));
    assert!(header("access-control-allow-headers").contains("x-goog-api-client"));
}

#[tokio::test]
async fn without_an_app_directory_the_root_answers_a_plain_note() {
    let server = TestServer::new();
    let response = server
        .send(Request::get("/").body(Body::empty()).unwrap())
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(response
        .body
        .as_str()
        .unwrap()
        .contains("counterbook-server"));
}

#[tokio::test]
async fn bodies_over_the_11_mib_limit_are_refused_with_413() {
    let server = TestServer::new();
    let padding = "x".repeat(11 * 1024 * 1024);
    let body = json!({"writes": [update("t/big", json!({"blob": {"stringValue": padding}}))]});
    let response = server.post(":commit", body).await;
    let message = assert_error(&response, 413, "INVALID_ARGUMENT");
    assert!(message.contains("exceeds the limit"), "{message}");
    assert_error(&server.get("t/big").await, 404, "NOT_FOUND");
}
