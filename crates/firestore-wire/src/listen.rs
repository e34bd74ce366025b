//! Listen: the messages of Firestore's `Listen` stream, `ListenRequest` (client to server) and
//! `ListenResponse` (server to client), in the proto3 JSON that travels inside WebChannel frames
//! (see `webchannel-capture.md` beside DESIGN.md).
//!
//! The WebChannel clients wrap some `int32` fields in `{"value": n}` (proto3 JSON of the
//! `Int32Value` wrapper, e.g. `expectedCount`), and proto3 JSON parsers accept integers written as
//! strings; every integer here accepts all three spellings and is written as a plain number.
//!
//! `ListenResponse.targetChange.cause` is a `google.rpc.Status` in its proto3 form (numeric gRPC
//! `code`), not the REST error body of [`crate::Status`]; it is [`RpcStatus`] here.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::query::StructuredQuery;
use crate::status::Code;
use crate::timestamp::Timestamp;
use crate::value::Document;

/// One message the client sends on the Listen stream: add or remove one target.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenRequest {
    /// `projects/{project}/databases/{database}`.
    pub database: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_target: Option<Target>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_int32"
    )]
    pub remove_target: Option<i32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl ListenRequest {
    pub fn add(database: impl Into<String>, target: Target) -> Self {
        ListenRequest {
            database: database.into(),
            add_target: Some(target),
            ..ListenRequest::default()
        }
    }

    pub fn remove(database: impl Into<String>, target_id: i32) -> Self {
        ListenRequest {
            database: database.into(),
            remove_target: Some(target_id),
            ..ListenRequest::default()
        }
    }
}

/// A target to listen to: what (a query or named documents), under which id, and from where.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    #[serde(flatten)]
    pub kind: TargetKind,
    /// Chosen by the client; every response names targets by it.
    #[serde(default, deserialize_with = "int32")]
    pub target_id: i32,
    /// Base64 token from an earlier response: resume from there instead of from scratch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub once: bool,
    /// How many documents the client last saw match (sent with a resume token).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_int32"
    )]
    pub expected_count: Option<i32>,
}

/// The `target_type` oneof of `Target`. A client holds a couple of these at a time, so the
/// size difference between the variants does not matter and matching stays plain.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TargetKind {
    Query(QueryTarget),
    Documents(DocumentsTarget),
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryTarget {
    /// `projects/{p}/databases/{d}/documents` or a document below it.
    pub parent: String,
    pub structured_query: StructuredQuery,
}

#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentsTarget {
    /// Full resource names.
    #[serde(default)]
    pub documents: Vec<String>,
}

/// One message the server sends on the Listen stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ListenResponse {
    TargetChange(TargetChange),
    DocumentChange(DocumentChange),
    DocumentDelete(DocumentDelete),
    DocumentRemove(DocumentRemove),
    Filter(ExistenceFilter),
}

/// Targets changed state. Empty `target_ids` means every target; a `NoChange` with no ids and a
/// `read_time` says that everything sent so far is a consistent snapshot at that time.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetChange {
    #[serde(default, skip_serializing_if = "TargetChangeType::is_no_change")]
    pub target_change_type: TargetChangeType,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "int32_list"
    )]
    pub target_ids: Vec<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<RpcStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_time: Option<Timestamp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TargetChangeType {
    #[default]
    NoChange,
    Add,
    Remove,
    Current,
    Reset,
}

impl TargetChangeType {
    fn is_no_change(&self) -> bool {
        *self == TargetChangeType::NoChange
    }
}

/// A document changed (or started or stopped matching some targets).
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentChange {
    pub document: Document,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "int32_list"
    )]
    pub target_ids: Vec<i32>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "int32_list"
    )]
    pub removed_target_ids: Vec<i32>,
}

/// A document was deleted.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentDelete {
    /// Full resource name.
    pub document: String,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "int32_list"
    )]
    pub removed_target_ids: Vec<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_time: Option<Timestamp>,
}

/// A document stopped matching targets (or is no longer relevant to them).
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentRemove {
    /// Full resource name.
    pub document: String,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "int32_list"
    )]
    pub removed_target_ids: Vec<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_time: Option<Timestamp>,
}

/// How many documents match a target now; a client whose count differs has missed something.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExistenceFilter {
    #[serde(default, deserialize_with = "int32")]
    pub target_id: i32,
    #[serde(default, deserialize_with = "int32")]
    pub count: i32,
    /// A bloom filter of the names that did not change; kept as JSON, never interpreted here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unchanged_names: Option<serde_json::Value>,
}

/// `google.rpc.Status` in proto3 JSON: the numeric gRPC code.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct RpcStatus {
    #[serde(default, deserialize_with = "int32")]
    pub code: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<serde_json::Value>,
}

impl RpcStatus {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        RpcStatus {
            code: grpc_number(code),
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// The code by name; numbers we do not know are `Unknown`.
    pub fn code(&self) -> Code {
        grpc_code(self.code)
    }
}

/// The number of a gRPC status code (`google.rpc.Code`).
pub fn grpc_number(code: Code) -> i32 {
    match code {
        Code::Ok => 0,
        Code::Cancelled => 1,
        Code::Unknown => 2,
        Code::InvalidArgument => 3,
        Code::DeadlineExceeded => 4,
        Code::NotFound => 5,
        Code::AlreadyExists => 6,
        Code::PermissionDenied => 7,
        Code::ResourceExhausted => 8,
        Code::FailedPrecondition => 9,
        Code::Aborted => 10,
        Code::OutOfRange => 11,
        Code::Unimplemented => 12,
        Code::Internal => 13,
        Code::Unavailable => 14,
        Code::DataLoss => 15,
        Code::Unauthenticated => 16,
    }
}

/// The gRPC status code with this number.
pub fn grpc_code(number: i32) -> Code {
    match number {
        0 => Code::Ok,
        1 => Code::Cancelled,
        3 => Code::InvalidArgument,
        4 => Code::DeadlineExceeded,
        5 => Code::NotFound,
        6 => Code::AlreadyExists,
        7 => Code::PermissionDenied,
        8 => Code::ResourceExhausted,
        9 => Code::FailedPrecondition,
        10 => Code::Aborted,
        11 => Code::OutOfRange,
        12 => Code::Unimplemented,
        13 => Code::Internal,
        14 => Code::Unavailable,
        15 => Code::DataLoss,
        16 => Code::Unauthenticated,
        _ => Code::Unknown,
    }
}

/// An `int32` as a number, a decimal string, or `{"value": n}`.
struct Int32(i32);

impl<'de> Deserialize<'de> for Int32 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Int32;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a 32-bit integer, as a number, a string or {\"value\": n}")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int32, E> {
                i32::try_from(v)
                    .map(Int32)
                    .map_err(|_| E::custom(format!("{v} is out of the 32-bit range")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int32, E> {
                i32::try_from(v)
                    .map(Int32)
                    .map_err(|_| E::custom(format!("{v} is out of the 32-bit range")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Int32, E> {
                v.parse()
                    .map(Int32)
                    .map_err(|_| E::custom(format!("{v:?} is not a 32-bit integer")))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Int32, A::Error> {
                let mut value = 0;
                while let Some(key) = map.next_key::<String>()? {
                    if key != "value" {
                        return Err(de::Error::custom(format!(
                            "unknown Int32Value field {key:?}"
                        )));
                    }
                    value = map.next_value::<Int32>()?.0;
                }
                Ok(Int32(value))
            }
        }
        deserializer.deserialize_any(V)
    }
}

fn int32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
    Int32::deserialize(deserializer).map(|n| n.0)
}

fn optional_int32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i32>, D::Error> {
    Ok(Option::<Int32>::deserialize(deserializer)?.map(|n| n.0))
}

fn int32_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<i32>, D::Error> {
    Ok(Option::<Vec<Int32>>::deserialize(deserializer)?
        .unwrap_or_default()
        .into_iter()
        .map(|n| n.0)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value as Json};

    /// Parses `json` as `T`, checks it writes back to the same JSON, and returns it.
    fn check_round_trip<T>(json: Json) -> T
    where
        T: serde::de::DeserializeOwned + Serialize,
    {
        let parsed: T = serde_json::from_value(json.clone())
            .unwrap_or_else(|e| panic!("cannot parse {json}: {e}"));
        assert_eq!(serde_json::to_value(&parsed).unwrap(), json);
        parsed
    }

    #[test]
    fn the_captured_add_and_remove_requests_round_trip() {
        let add: ListenRequest = check_round_trip(json!({
            "database": "projects/wcap/databases/(default)",
            "addTarget": {
                "query": {
                    "structuredQuery": {
                        "from": [{"collectionId": "products"}],
                        "where": {"fieldFilter": {
                            "field": {"fieldPath": "price"},
                            "op": "GREATER_THAN_OR_EQUAL",
                            "value": {"integerValue": "100"}
                        }},
                        "orderBy": [
                            {"field": {"fieldPath": "price"}, "direction": "ASCENDING"},
                            {"field": {"fieldPath": "__name__"}, "direction": "ASCENDING"}
                        ]
                    },
                    "parent": "projects/wcap/databases/(default)/documents/shops/s1"
                },
                "targetId": 1002
            }
        }));
        let target = add.add_target.unwrap();
        assert_eq!(target.target_id, 1002);
        let TargetKind::Query(query) = target.kind else {
            panic!("a query target")
        };
        assert_eq!(
            query.parent,
            "projects/wcap/databases/(default)/documents/shops/s1"
        );

        let remove: ListenRequest = check_round_trip(json!({
            "database": "projects/wcap/databases/(default)",
            "removeTarget": 1002
        }));
        assert_eq!(remove.remove_target, Some(1002));
    }

    #[test]
    fn a_resumed_documents_target_with_wrapped_counts_is_accepted() {
        let request: ListenRequest = serde_json::from_value(json!({
            "database": "projects/p/databases/(default)",
            "addTarget": {
                "documents": {"documents": ["projects/p/databases/(default)/documents/c/d"]},
                "targetId": {"value": 4},
                "resumeToken": "CgkIwtXvs6OamAM=",
                "expectedCount": {"value": 3}
            },
            "labels": {"goog-listen-tags": "existence-filter-mismatch"}
        }))
        .unwrap();
        let target = request.add_target.clone().unwrap();
        assert_eq!(target.target_id, 4);
        assert_eq!(target.expected_count, Some(3));
        assert_eq!(
            target.kind,
            TargetKind::Documents(DocumentsTarget {
                documents: vec!["projects/p/databases/(default)/documents/c/d".into()]
            })
        );
        // Written back with plain numbers.
        let written = serde_json::to_value(&request).unwrap();
        assert_eq!(written["addTarget"]["targetId"], json!(4));
        assert_eq!(written["addTarget"]["expectedCount"], json!(3));
    }

    #[test]
    fn the_captured_responses_round_trip() {
        let captured = [
            json!({"targetChange":{"targetChangeType":"ADD","targetIds":[1002]}}),
            json!({"targetChange":{"targetChangeType":"CURRENT","targetIds":[1002],"resumeToken":"CgkIwtXvs6OamAM=","readTime":"2026-11-22T00:03:53.753282Z"}}),
            json!({"targetChange":{"resumeToken":"CgkIk6Xws6OamAM=","readTime":"2026-11-22T00:03:53.763475Z"}}),
            json!({"targetChange":{"targetChangeType":"RESET","targetIds":[1002],"resumeToken":"CgkI+cqetKOamAM=","readTime":"2026-11-22T00:03:54.521977Z"}}),
            json!({"documentChange":{"document":{"name":"projects/wcap/databases/(default)/documents/shops/s1/products/c","fields":{"price":{"integerValue":"120"},"stock":{"integerValue":"9"},"at":{"timestampValue":"2026-11-22T00:03:54.796Z"}},"createTime":"2026-11-22T00:03:54.825262Z","updateTime":"2026-11-22T00:03:54.825262Z"},"targetIds":[1002]}}),
            json!({"targetChange":{"targetChangeType":"REMOVE","targetIds":[1002]}}),
        ];
        let parsed: Vec<ListenResponse> = captured.into_iter().map(check_round_trip).collect();
        let ListenResponse::TargetChange(global) = &parsed[2] else {
            panic!("a target change")
        };
        assert_eq!(global.target_change_type, TargetChangeType::NoChange);
        assert!(global.target_ids.is_empty());
        let ListenResponse::DocumentChange(change) = &parsed[4] else {
            panic!("a document change")
        };
        assert_eq!(change.target_ids, vec![1002]);
        assert_eq!(change.document.fields.len(), 3);
    }

    #[test]
    fn deletes_removes_filters_and_causes_round_trip() {
        let delete: ListenResponse = check_round_trip(json!({"documentDelete": {
            "document": "projects/p/databases/(default)/documents/c/d",
            "removedTargetIds": [2],
            "readTime": "2026-11-22T00:03:55.480993Z"
        }}));
        assert!(matches!(delete, ListenResponse::DocumentDelete(_)));
        let remove: ListenResponse = check_round_trip(json!({"documentRemove": {
            "document": "projects/p/databases/(default)/documents/c/d",
            "removedTargetIds": [2]
        }}));
        assert!(matches!(remove, ListenResponse::DocumentRemove(_)));
        let filter: ListenResponse =
            check_round_trip(json!({"filter": {"targetId": 2, "count": 7}}));
        assert_eq!(
            filter,
            ListenResponse::Filter(ExistenceFilter {
                target_id: 2,
                count: 7,
                unchanged_names: None
            })
        );
        let removed: ListenResponse = check_round_trip(json!({"targetChange": {
            "targetChangeType": "REMOVE",
            "targetIds": [2],
            "cause": {"code": 7, "message": "Missing or insufficient permissions."}
        }}));
        let ListenResponse::TargetChange(change) = removed else {
            panic!("a target change")
        };
        assert_eq!(change.cause.unwrap().code(), Code::PermissionDenied);
    }

    #[test]
    fn grpc_numbers_and_codes_agree() {
        for number in 0..=16 {
            let code = grpc_code(number);
            if number != 2 {
                assert_ne!(code, Code::Unknown, "{number}");
            }
            assert_eq!(grpc_number(code), number);
        }
        assert_eq!(grpc_code(99), Code::Unknown);
    }
}
