//! Units of work: what one user action changed, as it waits in the outbox, and the atomic
//! `:commit` that pushes it.
//!
//! A unit is pushed as ONE commit: its document writes plus a marker document
//! `shops/{shop}/ops/{unitId}` created with the precondition `exists: false`. The marker makes a
//! repeated send harmless (the whole commit fails if the marker exists) and lets the engine ask
//! "was this applied?" after an unknown outcome (DESIGN.md section 5).

use std::collections::BTreeMap;

use counterbook_firestore_wire::{
    CommitRequest, Document, DocumentMask, FieldTransform, Precondition, ServerValue, Timestamp,
    TransformKind, Value, Write, WriteOperation,
};
use serde::{Deserialize, Serialize};

/// A unit id: a UUID v7 made on the device, so ids sort by creation time.
pub type UnitId = String;

/// How long markers live before a TTL policy (Cloud Firestore) or pruning (our server) drops them.
pub const MARKER_TTL_MILLIS: i64 = 31 * 24 * 60 * 60 * 1000;

/// One user action's changes, as stored in the outbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unit {
    pub id: UnitId,
    /// A short description for people: "Add product Chai 250g".
    pub label: String,
    pub writes: Vec<DocumentWrite>,
    /// When the unit was made on the device, Unix milliseconds.
    pub created_at_millis: i64,
}

/// A change to one document, by path relative to the database root (`shops/s1/products/p1`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentWrite {
    pub path: String,
    /// Entity fields to set. Sync metadata (`updatedAt`, `updatedBy`, `lastOp`) is added when
    /// the commit is built.
    pub fields: BTreeMap<String, Value>,
    /// `None`: the document is replaced whole. `Some(paths)`: only those fields change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<Vec<String>>,
}

/// The marker document's path for a unit.
pub fn marker_path(shop_id: &str, unit_id: &str) -> String {
    format!("shops/{shop_id}/ops/{unit_id}")
}

/// Where documents live: `projects/{project}/databases/{database}/documents`.
fn documents_root(project: &str, database: &str) -> String {
    format!("projects/{project}/databases/{database}/documents")
}

/// Builds the atomic commit for `unit`. `now_millis` only sets the marker's `expireAt`.
pub fn commit_request_for_unit(
    project: &str,
    database: &str,
    shop_id: &str,
    device_id: &str,
    unit: &Unit,
    now_millis: i64,
) -> CommitRequest {
    let root = documents_root(project, database);
    let mut writes: Vec<Write> = unit
        .writes
        .iter()
        .map(|write| {
            let mut fields = write.fields.clone();
            fields.insert("updatedBy".into(), Value::String(device_id.to_owned()));
            fields.insert("lastOp".into(), Value::String(unit.id.clone()));
            let update_mask = write.mask.as_ref().map(|paths| {
                let mut field_paths = paths.clone();
                field_paths.extend(["updatedBy".to_string(), "lastOp".to_string()]);
                field_paths.sort();
                field_paths.dedup();
                DocumentMask { field_paths }
            });
            Write {
                operation: WriteOperation::Update(Document {
                    name: format!("{root}/{}", write.path),
                    fields,
                    ..Document::default()
                }),
                update_mask,
                update_transforms: vec![request_time("updatedAt")],
                current_document: None,
            }
        })
        .collect();

    let marker_fields = BTreeMap::from([
        ("device".to_string(), Value::String(device_id.to_owned())),
        (
            "writes".to_string(),
            Value::Integer(unit.writes.len() as i64),
        ),
        (
            "expireAt".to_string(),
            Value::Timestamp(Timestamp::from_unix_millis(now_millis + MARKER_TTL_MILLIS)),
        ),
    ]);
    writes.push(Write {
        operation: WriteOperation::Update(Document {
            name: format!("{root}/{}", marker_path(shop_id, &unit.id)),
            fields: marker_fields,
            ..Document::default()
        }),
        update_mask: None,
        update_transforms: vec![request_time("appliedAt")],
        current_document: Some(Precondition {
            exists: Some(false),
            update_time: None,
        }),
    });

    CommitRequest {
        database: None,
        writes,
        transaction: None,
    }
}

fn request_time(field_path: &str) -> FieldTransform {
    FieldTransform {
        field_path: field_path.to_owned(),
        kind: TransformKind::SetToServerValue(ServerValue::RequestTime),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_unit_becomes_its_writes_plus_an_exists_false_marker() {
        let unit = Unit {
            id: "0193a0b0-0000-7000-8000-000000000001".into(),
            label: "Add product Chai".into(),
            writes: vec![DocumentWrite {
                path: "shops/s1/products/p1".into(),
                fields: BTreeMap::from([
                    ("name".to_string(), Value::String("Chai".into())),
                    ("price".to_string(), Value::Integer(2500)),
                ]),
                mask: None,
            }],
            created_at_millis: 0,
        };
        let request = commit_request_for_unit("p", "(default)", "s1", "dev-A", &unit, 0);
        let expected = json!({
          "writes": [
            {
              "update": {
                "name": "projects/p/databases/(default)/documents/shops/s1/products/p1",
                "fields": {
                  "lastOp": {"stringValue": "0193a0b0-0000-7000-8000-000000000001"},
                  "name": {"stringValue": "Chai"},
                  "price": {"integerValue": "2500"},
                  "updatedBy": {"stringValue": "dev-A"}
                }
              },
              "updateTransforms": [{"fieldPath": "updatedAt", "setToServerValue": "REQUEST_TIME"}]
            },
            {
              "update": {
                "name": "projects/p/databases/(default)/documents/shops/s1/ops/0193a0b0-0000-7000-8000-000000000001",
                "fields": {
                  "device": {"stringValue": "dev-A"},
                  "expireAt": {"timestampValue": "1970-02-01T00:00:00Z"},
                  "writes": {"integerValue": "1"}
                }
              },
              "updateTransforms": [{"fieldPath": "appliedAt", "setToServerValue": "REQUEST_TIME"}],
              "currentDocument": {"exists": false}
            }
          ]
        });
        assert_eq!(serde_json::to_value(&request).unwrap(), expected);
    }

    #[test]
    fn a_masked_write_also_masks_the_sync_metadata() {
        let unit = Unit {
            id: "u".into(),
            label: "Change price".into(),
            writes: vec![DocumentWrite {
                path: "shops/s1/products/p1".into(),
                fields: BTreeMap::from([("price".to_string(), Value::Integer(3000))]),
                mask: Some(vec!["price".into()]),
            }],
            created_at_millis: 0,
        };
        let request = commit_request_for_unit("p", "(default)", "s1", "dev-A", &unit, 0);
        let mask = request.writes[0].update_mask.as_ref().unwrap();
        assert_eq!(mask.field_paths, vec!["lastOp", "price", "updatedBy"]);
    }
}
