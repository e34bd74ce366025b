//! Writes and commits: `Write`, `FieldTransform`, `Precondition`, `CommitRequest`,
//! `CommitResponse`, and the messages of the Write stream, `WriteRequest` and `WriteResponse`.

use std::collections::BTreeMap;

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::timestamp::Timestamp;
use crate::value::{ArrayValue, Document, Value};

/// One write inside a commit. Deserialized by hand (below): serde's derive of a flattened
/// `operation` buffers the whole write as untyped content first, about ten times the size of
/// its JSON.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Write {
    #[serde(flatten)]
    pub operation: WriteOperation,
    /// For `update`: the fields to change; a masked field absent from the document is deleted.
    /// Without a mask the document is replaced whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_mask: Option<DocumentMask>,
    /// Applied after the update, in order, for the same document.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub update_transforms: Vec<FieldTransform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_document: Option<Precondition>,
}

/// What a write does: the `operation` oneof of `google.firestore.v1.Write`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WriteOperation {
    Update(Document),
    /// A document resource name.
    Delete(String),
    /// Checks the precondition on this document resource name, writes nothing.
    Verify(String),
    /// Legacy stand-alone transform (before `updateTransforms` existed).
    Transform(DocumentTransform),
}

/// The legacy `transform` write.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentTransform {
    pub document: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub field_transforms: Vec<FieldTransform>,
}

/// A set of dotted field paths.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentMask {
    #[serde(default)]
    pub field_paths: Vec<String>,
}

/// A precondition on the document a write touches: it must (not) exist, or have this update time.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Precondition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_time: Option<Timestamp>,
}

/// A server-side change to one field, applied after the write's update. Deserialized by hand,
/// like `Write`, so that a large array transform is never buffered.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldTransform {
    pub field_path: String,
    #[serde(flatten)]
    pub kind: TransformKind,
}

/// The `transform_type` oneof of `FieldTransform`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TransformKind {
    SetToServerValue(ServerValue),
    Increment(Value),
    Maximum(Value),
    Minimum(Value),
    AppendMissingElements(ArrayValue),
    RemoveAllFromArray(ArrayValue),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerValue {
    #[serde(rename = "SERVER_VALUE_UNSPECIFIED")]
    Unspecified,
    /// The commit time of the write.
    #[serde(rename = "REQUEST_TIME")]
    RequestTime,
}

/// Fails on a field given twice, as serde's derive does.
fn first_time<T, E: de::Error>(slot: &Option<T>, name: &'static str) -> Result<(), E> {
    match slot {
        Some(_) => Err(E::duplicate_field(name)),
        None => Ok(()),
    }
}

impl<'de> Deserialize<'de> for Write {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct WriteVisitor;
        impl<'de> Visitor<'de> for WriteVisitor {
            type Value = Write;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a Write object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Write, A::Error> {
                let mut operation: Option<WriteOperation> = None;
                let mut update_mask: Option<Option<DocumentMask>> = None;
                let mut update_transforms: Option<Vec<FieldTransform>> = None;
                let mut current_document: Option<Option<Precondition>> = None;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let next_operation = match key.as_ref() {
                        "update" => Some(WriteOperation::Update(map.next_value()?)),
                        "delete" => Some(WriteOperation::Delete(map.next_value()?)),
                        "verify" => Some(WriteOperation::Verify(map.next_value()?)),
                        "transform" => Some(WriteOperation::Transform(map.next_value()?)),
                        "updateMask" | "update_mask" => {
                            first_time(&update_mask, "updateMask")?;
                            update_mask = Some(map.next_value()?);
                            None
                        }
                        "updateTransforms" | "update_transforms" => {
                            first_time(&update_transforms, "updateTransforms")?;
                            update_transforms = Some(
                                map.next_value::<Option<Vec<FieldTransform>>>()?
                                    .unwrap_or_default(),
                            );
                            None
                        }
                        "currentDocument" | "current_document" => {
                            first_time(&current_document, "currentDocument")?;
                            current_document = Some(map.next_value()?);
                            None
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            None
                        }
                    };
                    if let Some(next_operation) = next_operation {
                        if operation.is_some() {
                            return Err(de::Error::custom(
                                "a Write has one operation: update, delete, verify or transform",
                            ));
                        }
                        operation = Some(next_operation);
                    }
                }
                let operation = operation.ok_or_else(|| {
                    de::Error::custom(
                        "a Write needs one operation: update, delete, verify or transform",
                    )
                })?;
                Ok(Write {
                    operation,
                    update_mask: update_mask.flatten(),
                    update_transforms: update_transforms.unwrap_or_default(),
                    current_document: current_document.flatten(),
                })
            }
        }
        deserializer.deserialize_map(WriteVisitor)
    }
}

impl<'de> Deserialize<'de> for FieldTransform {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TransformVisitor;
        impl<'de> Visitor<'de> for TransformVisitor {
            type Value = FieldTransform;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a FieldTransform object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FieldTransform, A::Error> {
                let mut field_path: Option<String> = None;
                let mut kind: Option<TransformKind> = None;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let next_kind = match key.as_ref() {
                        "fieldPath" | "field_path" => {
                            first_time(&field_path, "fieldPath")?;
                            field_path = Some(map.next_value()?);
                            None
                        }
                        "setToServerValue" | "set_to_server_value" => {
                            Some(TransformKind::SetToServerValue(map.next_value()?))
                        }
                        "increment" => Some(TransformKind::Increment(map.next_value()?)),
                        "maximum" => Some(TransformKind::Maximum(map.next_value()?)),
                        "minimum" => Some(TransformKind::Minimum(map.next_value()?)),
                        "appendMissingElements" | "append_missing_elements" => {
                            Some(TransformKind::AppendMissingElements(map.next_value()?))
                        }
                        "removeAllFromArray" | "remove_all_from_array" => {
                            Some(TransformKind::RemoveAllFromArray(map.next_value()?))
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            None
                        }
                    };
                    if let Some(next_kind) = next_kind {
                        if kind.is_some() {
                            return Err(de::Error::custom(
                                "a FieldTransform has one kind of transform",
                            ));
                        }
                        kind = Some(next_kind);
                    }
                }
                Ok(FieldTransform {
                    field_path: field_path.ok_or_else(|| de::Error::missing_field("fieldPath"))?,
                    kind: kind.ok_or_else(|| {
                        de::Error::custom(
                            "a FieldTransform needs one transform such as setToServerValue",
                        )
                    })?,
                })
            }
        }
        deserializer.deserialize_map(TransformVisitor)
    }
}

/// Body of `POST .../documents:commit`.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitRequest {
    /// Present in the gRPC request (and the conformance tests); the REST URL carries it instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    #[serde(default)]
    pub writes: Vec<Write>,
    /// A transaction id from `:beginTransaction`, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<String>,
}

/// Reply to `:commit`.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitResponse {
    /// One per write, in the order of the request.
    #[serde(default)]
    pub write_results: Vec<WriteResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_time: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteResult {
    /// Absent when the write changed nothing (a verify, or a delete of a missing document).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_time: Option<Timestamp>,
    /// One per `updateTransforms` entry, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transform_results: Vec<Value>,
}

/// One message the client sends on the Write stream (`google.firestore.v1.Firestore/Write`):
/// first the handshake (`database`, no writes), then writes, each request committed on its own.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteRequest {
    /// `projects/{project}/databases/{database}`; required on the handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Only for resuming a stream, which the SDK never does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writes: Vec<Write>,
    /// The token of the last response (bytes, base64); absent on the handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_token: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// One message the server sends on the Write stream: the handshake's answer (`streamId`,
/// `streamToken`), then one per write request with its commit time and results.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
    /// Bytes, base64: the client sends it back with its next request.
    pub stream_token: String,
    /// One per write of the request, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub write_results: Vec<WriteResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_time: Option<Timestamp>,
}
