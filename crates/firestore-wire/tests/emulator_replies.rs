//! Parses replies captured from Google's Firestore emulator (cloud-firestore-emulator, 2026-11),
//! so that the app reads exactly what a real backend writes.

use counterbook_firestore_wire::{
    Code, CommitResponse, ErrorResponse, RunQueryResponseItem, Timestamp, Value,
};

#[test]
fn commit_reply_with_a_transform_result() {
    let body = r#"{
      "writeResults": [{
        "updateTime": "2026-11-22T00:07:26.713172Z",
        "transformResults": [{ "timestampValue": "2026-11-22T00:07:26.601Z" }]
      }, {
        "updateTime": "2026-11-22T00:07:26.713172Z"
      }],
      "commitTime": "2026-11-22T00:07:26.713172Z"
    }"#;
    let reply: CommitResponse = serde_json::from_str(body).unwrap();
    assert_eq!(reply.write_results.len(), 2);
    assert_eq!(
        reply.write_results[0].transform_results,
        vec![Value::Timestamp(
            Timestamp::parse("2026-11-22T00:07:26.601Z").unwrap()
        )]
    );
    assert_eq!(reply.commit_time, reply.write_results[1].update_time);
}

#[test]
fn run_query_reply_with_a_document_and_an_empty_reply() {
    let body = r#"[{
      "document": {
        "name": "projects/p/databases/(default)/documents/shops/s/products/a",
        "fields": { "name": { "stringValue": "x" }, "price": { "integerValue": "5" } },
        "createTime": "2026-11-22T00:07:26.713172Z",
        "updateTime": "2026-11-22T00:07:26.713172Z"
      },
      "readTime": "2026-11-22T00:07:30.630537Z",
      "done": true
    }]"#;
    let items: Vec<RunQueryResponseItem> = serde_json::from_str(body).unwrap();
    let document = items[0].document.as_ref().unwrap();
    assert_eq!(document.fields["price"], Value::Integer(5));
    assert!(items[0].done);

    let empty: Vec<RunQueryResponseItem> =
        serde_json::from_str(r#"[{"readTime": "2026-11-22T00:07:30.708358Z", "done": true}]"#)
            .unwrap();
    assert!(empty[0].document.is_none());
}

#[test]
fn error_replies() {
    for (body, code, http) in [
        (
            r#"{"error":{"code":409,"message":"entity already exists: EntityRef{partitionRef=dev~p, path=/shops/s/ops/u1}","status":"ALREADY_EXISTS"}}"#,
            Code::AlreadyExists,
            409,
        ),
        (
            r#"{"error":{"code":400,"message":"Payload isn't valid for request.","status":"INVALID_ARGUMENT"}}"#,
            Code::InvalidArgument,
            400,
        ),
    ] {
        let reply: ErrorResponse = serde_json::from_str(body).unwrap();
        assert_eq!(reply.error.status, code);
        assert_eq!(reply.error.code, http);
    }
}
