//! Units of work: what one user action changed, as it waits in the outbox, and the atomic
//! `:commit` that pushes one or several of them.
//!
//! A unit is pushed whole, inside ONE commit: its document writes plus a marker document
//! `shops/{shop}/ops/{unitId}` created with the precondition `exists: false`. The marker makes a
//! repeated send harmless (the whole commit fails if the marker exists) and lets the engine ask
//! "was this applied?" after an unknown outcome (DESIGN.md section 5).
//!
//! Coalescing ([`fold_writes`], [`commit_request_for_units`]): several whole units may travel in
//! one commit, and their writes to the same document fold into one `Write` in unit order (later
//! field values win, masks unite, counter increments add up). Units stay separate in the store
//! and each keeps its own marker, so a commit applies every unit in it or none, exactly once each,
//! and any unit can later be sent (or rejected) on its own. A unit is never split across commits.

use std::collections::{BTreeMap, BTreeSet};

use counterbook_firestore_wire::{
    map_by_insertion, CommitRequest, Document, DocumentMask, FieldTransform, Precondition,
    ServerValue, Timestamp, TransformKind, Value, Write, WriteOperation,
};
use serde::{Deserialize, Serialize};

use crate::label::UnitLabel;
use crate::sorted_map::SortedSet;

/// A unit id: a UUID v7 made on the device, so ids sort by creation time.
pub type UnitId = String;

/// How long markers live before a TTL policy (Cloud Firestore) or pruning (our server) drops them.
pub const MARKER_TTL_MILLIS: i64 = 31 * 24 * 60 * 60 * 1000;

/// The collection, under the shop, of the units' marker documents.
pub const MARKER_COLLECTION: &str = "ops";

/// Sync metadata the engine adds to every document write (DESIGN.md section 3).
pub const UPDATED_BY: &str = "updatedBy";
pub const LAST_OP: &str = "lastOp";

/// One user action's changes, as stored in the outbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unit {
    pub id: UnitId,
    /// What it did, for people (the app words it in the tablet's language).
    #[serde(deserialize_with = "crate::label::label_or_text")]
    pub label: UnitLabel,
    pub writes: Vec<DocumentWrite>,
    /// When the unit was made on the device, Unix milliseconds.
    pub created_at_millis: i64,
    /// The user id whose sign-in sends this unit: who made it, or the manager who approved it
    /// on the spot. Its commit and the reads about it carry that person's token and no other,
    /// and units of different senders never share a commit. `None` where nobody signs in (a
    /// `--dev` server, the emulator without Auth) and for units stored before units named
    /// their sender: those go with whichever sign-in the tablet holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
}

impl Unit {
    /// The documents this unit writes, by path.
    pub fn document_paths(&self) -> SortedSet<&str> {
        let mut paths = SortedSet::new();
        for write in &self.writes {
            paths.insert(write.path.as_str());
        }
        paths
    }
}

/// A change to one document, by path relative to the database root (`shops/s1/products/p1`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentWrite {
    pub path: String,
    /// Entity fields to set. Sync metadata (`updatedAt`, `updatedBy`, `lastOp`) is added when
    /// the commit is built. With a mask, fields outside the mask are ignored.
    pub fields: BTreeMap<String, Value>,
    /// `None`: the document is replaced whole. `Some(paths)`: only those fields change; a path
    /// in the mask but not in `fields` is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<Vec<String>>,
    /// Counters (stock, balances) to add to, by field path. They travel as `increment`
    /// transforms, never as absolute values, so that two tablets' sales both count
    /// (DESIGN.md section 4). Applied after `fields`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub increments: BTreeMap<String, i64>,
    /// The server's version of the document this edit started from. A write with a base and
    /// with fields to set carries `currentDocument.updateTime`, so that a change made meanwhile
    /// on the server is detected (a conflict, DESIGN.md section 6) instead of overwritten.
    /// `None` for new documents and for writes that only add to counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseVersion>,
}

/// The server's version of a document as this device last saw it: the base of a three-way merge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BaseVersion {
    /// The document's `updateTime` on the server.
    pub update_time: Timestamp,
    pub fields: BTreeMap<String, Value>,
}

impl BaseVersion {
    /// The base a pulled or read document gives: its `updateTime` (or, from a backend that
    /// omits it, the server-set `updatedAt` field, which is the same commit time).
    pub fn of_document(document: &Document) -> Option<BaseVersion> {
        Some(BaseVersion {
            update_time: BaseVersion::update_time_of(document)?,
            fields: document.fields.clone(),
        })
    }

    /// The version a document read from the server is at: its update time, else its
    /// `updatedAt`; what [`BaseVersion::of_document`] keeps, without copying the fields.
    pub fn update_time_of(document: &Document) -> Option<Timestamp> {
        document.update_time.or_else(|| {
            document
                .fields
                .get(crate::pull::UPDATED_AT)
                .and_then(Value::as_timestamp)
        })
    }
}

impl DocumentWrite {
    /// A new document, written whole.
    pub fn create(path: impl Into<String>, fields: BTreeMap<String, Value>) -> DocumentWrite {
        DocumentWrite {
            path: path.into(),
            fields,
            ..DocumentWrite::default()
        }
    }

    /// Sets the given fields of a document, as an edit of `base` (the version the user saw).
    pub fn patch(
        path: impl Into<String>,
        fields: BTreeMap<String, Value>,
        base: Option<BaseVersion>,
    ) -> DocumentWrite {
        DocumentWrite {
            path: path.into(),
            mask: Some(fields.keys().cloned().collect()),
            fields,
            base,
            ..DocumentWrite::default()
        }
    }

    /// Adds to counters only; never conflicts.
    pub fn increment(path: impl Into<String>, increments: BTreeMap<String, i64>) -> DocumentWrite {
        DocumentWrite {
            path: path.into(),
            mask: Some(Vec::new()),
            increments,
            ..DocumentWrite::default()
        }
    }

    /// Whether later writes of the same document by other people may reach the server before
    /// this one: a patch of named fields that checks no version (its counters are increments,
    /// which commute, and the fields it sets are last-writer-wins, as between two tablets). A
    /// replacement (a new document, say) or an edit checked against its base must keep its
    /// place: a later patch landing first would be overwritten, or the edit would conflict
    /// with what came after it.
    pub fn may_be_overtaken(&self) -> bool {
        self.mask.is_some() && self.required_update_time().is_none()
    }

    /// Whether the write sets or deletes any field (as opposed to only adding to counters).
    pub fn sets_fields(&self) -> bool {
        match &self.mask {
            None => true,
            Some(paths) => !paths.is_empty(),
        }
    }

    /// The `updateTime` the server must still have for this write to apply, if any. Writes that
    /// only add to counters carry none: increments commute, so they never conflict.
    pub fn required_update_time(&self) -> Option<Timestamp> {
        if self.sets_fields() {
            self.base.as_ref().map(|base| base.update_time)
        } else {
            None
        }
    }

    /// The field paths this write sets or deletes (for a whole-document write: the fields it
    /// writes plus the base's fields it drops).
    pub fn changed_field_paths(&self) -> BTreeSet<String> {
        let mut paths = BTreeSet::new();
        match &self.mask {
            Some(mask) => paths.extend(mask.iter().cloned()),
            None => {
                paths.extend(self.fields.keys().cloned());
                if let Some(base) = &self.base {
                    paths.extend(base.fields.keys().cloned());
                }
            }
        }
        paths
    }
}

/// Folds `later` into `earlier` (two writes to the same document, in this order) so that one
/// write has the effect of both. Returns `None` when they must travel separately: different
/// documents, or preconditions that disagree (each checks a different server version).
pub fn fold_writes(earlier: &DocumentWrite, later: &DocumentWrite) -> Option<DocumentWrite> {
    if earlier.path != later.path {
        return None;
    }
    let base = match (earlier.required_update_time(), later.required_update_time()) {
        (Some(first), Some(second)) if first != second => return None,
        (Some(_), _) => earlier.base.clone(),
        // A new document written whole cannot take an edit's precondition: the edit was made
        // against a server version the creation would not check.
        (None, Some(_)) if earlier.mask.is_none() => return None,
        (None, Some(_)) => later.base.clone(),
        (None, None) => earlier.base.clone().or_else(|| later.base.clone()),
    };
    let mut folded = match &later.mask {
        None => DocumentWrite {
            path: later.path.clone(),
            fields: later.fields.clone(),
            mask: None,
            // A whole-document write erases what came before, earlier increments included.
            increments: later.increments.clone(),
            base,
        },
        Some(later_paths) => {
            let mut fields = earlier.fields.clone();
            let mut increments = earlier.increments.clone();
            for path in later_paths {
                match later.fields.get(path) {
                    Some(value) => fields.insert(path.clone(), value.clone()),
                    None => fields.remove(path),
                };
                // A field set later no longer feels the earlier increment: set, then add.
                increments.remove(path);
            }
            for (path, delta) in &later.increments {
                let total = increments.entry(path.clone()).or_insert(0);
                *total = total.saturating_add(*delta);
            }
            let mask = earlier.mask.as_ref().map(|earlier_paths| {
                // A set of Strings, whose code the wasm has anyway, not one more of &String.
                let mut united = BTreeSet::new();
                united.extend(earlier_paths.iter().chain(later_paths).cloned());
                united.into_iter().collect()
            });
            DocumentWrite {
                path: later.path.clone(),
                fields,
                mask,
                increments,
                base,
            }
        }
    };
    // Increments that add up to nothing are dropped from the commit, not sent as `+0`.
    folded.increments.retain(|_, delta| *delta != 0);
    Some(folded)
}

/// The marker document's path for a unit.
pub fn marker_path(shop_id: &str, unit_id: &str) -> String {
    format!("shops/{shop_id}/{MARKER_COLLECTION}/{unit_id}")
}

/// Where documents live: `projects/{project}/databases/{database}/documents`.
pub fn documents_root(project: &str, database: &str) -> String {
    format!("projects/{project}/databases/{database}/documents")
}

/// Who is writing, for the sync metadata of every write.
#[derive(Clone, Copy, Debug)]
pub struct CommitContext<'a> {
    pub project: &'a str,
    pub database: &'a str,
    pub shop_id: &'a str,
    pub device_id: &'a str,
    /// Also write this device's `shops/{shop}/devices/{deviceId}` document, recording per
    /// collection the commit touched when it changed it (see [`device_changes_write`]).
    pub record_device_changes: bool,
}

/// Why a set of units cannot travel in one commit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error(
        "writes to {path} in units {earlier_unit} and {later_unit} have different preconditions"
    )]
    PreconditionsDisagree {
        path: String,
        earlier_unit: UnitId,
        later_unit: UnitId,
    },
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
    let context = CommitContext {
        project,
        database,
        shop_id,
        device_id,
        record_device_changes: false,
    };
    // Writes of one unit to one document fold without a precondition clash unless the unit
    // itself is inconsistent; in that case its writes travel unfolded, in order.
    commit_request_for_units(&context, &[unit], now_millis)
        .unwrap_or_else(|_| unfolded_commit(&context, unit, now_millis))
}

/// Builds ONE atomic commit for `units` (in queue order): every write to one document folded
/// into one `Write`, then one marker per unit.
pub fn commit_request_for_units(
    context: &CommitContext<'_>,
    units: &[&Unit],
    now_millis: i64,
) -> Result<CommitRequest, BatchError> {
    // Folded writes in the order their documents were first written, with the last unit that
    // wrote each (it becomes the document's `lastOp`).
    let mut folded: Vec<(DocumentWrite, &UnitId)> = Vec::new();
    for unit in units {
        for write in &unit.writes {
            match folded.iter_mut().find(|(w, _)| w.path == write.path) {
                Some((existing, last_unit)) => {
                    *existing = fold_writes(existing, write).ok_or_else(|| {
                        BatchError::PreconditionsDisagree {
                            path: write.path.clone(),
                            earlier_unit: (*last_unit).clone(),
                            later_unit: unit.id.clone(),
                        }
                    })?;
                    *last_unit = &unit.id;
                }
                None => folded.push((write.clone(), &unit.id)),
            }
        }
    }
    let mut writes: Vec<Write> = folded
        .iter()
        .map(|(write, last_unit)| entity_write(context, write, last_unit))
        .collect();
    if context.record_device_changes {
        writes.extend(device_changes_write(
            context,
            folded.iter().map(|(write, _)| write.path.as_str()),
        ));
    }
    writes.extend(
        units
            .iter()
            .map(|unit| marker_write(context, unit, now_millis)),
    );
    Ok(CommitRequest {
        database: None,
        writes,
        transaction: None,
    })
}

/// The write of this device's own `devices` document for a commit whose entity writes have
/// these paths: `changed.{collection}` set to the commit's request time for each collection
/// touched (markers excluded), so listeners on other devices learn which collections to pull
/// (DESIGN.md section 5, Listen). One such write per commit at most, so a device draining a long
/// offline queue writes its document once per batch, never once per unit. The mask names the
/// map entries the transforms set and nothing else, so the other entries stay; counterbook-server
/// and Google's emulator both accept a `REQUEST_TIME` transform on such a nested path.
pub fn device_changes_write<'a>(
    context: &CommitContext<'_>,
    paths: impl IntoIterator<Item = &'a str>,
) -> Option<Write> {
    let mut collections = BTreeSet::new();
    collections.extend(
        paths
            .into_iter()
            // The shop's own collections, which other devices pull; not the documents nested
            // under one of their documents (a bill's refund tallies), which nobody pulls.
            .filter(|path| path.split('/').count() == 4)
            .filter_map(|path| path.rsplit('/').nth(1))
            .filter(|collection| {
                *collection != crate::listen::DEVICES_COLLECTION && *collection != MARKER_COLLECTION
            }),
    );
    if collections.is_empty() {
        return None;
    }
    let field_paths: Vec<String> = collections
        .iter()
        .map(|collection| {
            crate::query_builder::FieldPath::from_segments([
                crate::listen::DEVICE_CHANGED_FIELD,
                collection,
            ])
            .encoded()
        })
        .collect();
    let root = documents_root(context.project, context.database);
    Some(Write {
        operation: WriteOperation::Update(Document {
            name: format!(
                "{root}/shops/{}/{}/{}",
                context.shop_id,
                crate::listen::DEVICES_COLLECTION,
                context.device_id
            ),
            ..Document::default()
        }),
        update_transforms: field_paths.iter().map(|path| request_time(path)).collect(),
        update_mask: Some(DocumentMask { field_paths }),
        current_document: None,
    })
}

fn unfolded_commit(context: &CommitContext<'_>, unit: &Unit, now_millis: i64) -> CommitRequest {
    let mut writes: Vec<Write> = unit
        .writes
        .iter()
        .map(|write| entity_write(context, write, &unit.id))
        .collect();
    writes.push(marker_write(context, unit, now_millis));
    CommitRequest {
        database: None,
        writes,
        transaction: None,
    }
}

fn entity_write(context: &CommitContext<'_>, write: &DocumentWrite, last_unit: &str) -> Write {
    let root = documents_root(context.project, context.database);
    let mut fields = write.fields.clone();
    if let Some(paths) = &write.mask {
        // Fields outside the mask would be ignored by the server; keep the request honest.
        fields.retain(|path, _| paths.contains(path));
    }
    fields.insert(
        UPDATED_BY.into(),
        Value::String(context.device_id.to_owned()),
    );
    fields.insert(LAST_OP.into(), Value::String(last_unit.to_owned()));
    let update_mask = write.mask.as_ref().map(|paths| {
        // Sorted and without repeats through a set rather than `sort` and `dedup`: the set's
        // code is in the wasm anyway, a sort of strings would be one more (about 3 KB).
        let mut field_paths = BTreeSet::new();
        field_paths.extend(paths.iter().cloned());
        field_paths.extend([UPDATED_BY.to_string(), LAST_OP.to_string()]);
        DocumentMask {
            field_paths: field_paths.into_iter().collect(),
        }
    });
    let mut update_transforms: Vec<FieldTransform> = write
        .increments
        .iter()
        .map(|(path, delta)| FieldTransform {
            field_path: path.clone(),
            kind: TransformKind::Increment(Value::Integer(*delta)),
        })
        .collect();
    update_transforms.push(request_time(crate::pull::UPDATED_AT));
    Write {
        operation: WriteOperation::Update(Document {
            name: format!("{root}/{}", write.path),
            fields,
            ..Document::default()
        }),
        update_mask,
        update_transforms,
        current_document: write
            .required_update_time()
            .map(|update_time| Precondition {
                exists: None,
                update_time: Some(update_time),
            }),
    }
}

fn marker_write(context: &CommitContext<'_>, unit: &Unit, now_millis: i64) -> Write {
    let root = documents_root(context.project, context.database);
    let marker_fields = map_by_insertion([
        (
            "device".to_string(),
            Value::String(context.device_id.to_owned()),
        ),
        (
            "writes".to_string(),
            Value::Integer(unit.writes.len() as i64),
        ),
        (
            "expireAt".to_string(),
            Value::Timestamp(Timestamp::from_unix_millis(now_millis + MARKER_TTL_MILLIS)),
        ),
    ]);
    Write {
        operation: WriteOperation::Update(Document {
            name: format!("{root}/{}", marker_path(context.shop_id, &unit.id)),
            fields: marker_fields,
            ..Document::default()
        }),
        update_mask: None,
        update_transforms: vec![request_time("appliedAt")],
        current_document: Some(Precondition {
            exists: Some(false),
            update_time: None,
        }),
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

    fn fields(pairs: &[(&str, i64)]) -> BTreeMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Value::Integer(*v)))
            .collect()
    }

    fn base(micros: i64) -> Option<BaseVersion> {
        Some(BaseVersion {
            update_time: Timestamp::from_unix_micros(micros),
            fields: BTreeMap::new(),
        })
    }

    fn check_fold(earlier: DocumentWrite, later: DocumentWrite, expected: Option<DocumentWrite>) {
        assert_eq!(fold_writes(&earlier, &later), expected);
    }

    #[test]
    fn a_unit_becomes_its_writes_plus_an_exists_false_marker() {
        let unit = Unit {
            id: "0193a0b0-0000-7000-8000-000000000001".into(),
            label: "Add product Chai".into(),
            writes: vec![DocumentWrite::create(
                "shops/s1/products/p1",
                BTreeMap::from([
                    ("name".to_string(), Value::String("Chai".into())),
                    ("price".to_string(), Value::Integer(2500)),
                ]),
            )],
            created_at_millis: 0,
            sender: None,
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
            writes: vec![DocumentWrite::patch(
                "shops/s1/products/p1",
                fields(&[("price", 3000)]),
                None,
            )],
            created_at_millis: 0,
            sender: None,
        };
        let request = commit_request_for_unit("p", "(default)", "s1", "dev-A", &unit, 0);
        let mask = request.writes[0].update_mask.as_ref().unwrap();
        assert_eq!(mask.field_paths, vec!["lastOp", "price", "updatedBy"]);
        assert_eq!(
            request.writes[0].current_document, None,
            "no base, no check"
        );
    }

    #[test]
    fn an_edit_of_a_server_version_carries_its_update_time_and_counters_carry_none() {
        let unit = Unit {
            id: "u".into(),
            label: "Sell".into(),
            writes: vec![
                DocumentWrite::patch("shops/s1/products/p1", fields(&[("price", 1)]), base(7)),
                DocumentWrite {
                    base: base(9),
                    ..DocumentWrite::increment(
                        "shops/s1/products/p2",
                        BTreeMap::from([("stock".to_string(), -2)]),
                    )
                },
            ],
            created_at_millis: 0,
            sender: None,
        };
        let request = serde_json::to_value(commit_request_for_unit(
            "p",
            "(default)",
            "s1",
            "dev-A",
            &unit,
            0,
        ))
        .unwrap();
        assert_eq!(
            request["writes"][0]["currentDocument"],
            json!({"updateTime": "1970-01-01T00:00:00.000007Z"})
        );
        assert_eq!(request["writes"][1].get("currentDocument"), None);
        assert_eq!(
            request["writes"][1]["updateTransforms"],
            json!([
                {"fieldPath": "stock", "increment": {"integerValue": "-2"}},
                {"fieldPath": "updatedAt", "setToServerValue": "REQUEST_TIME"}
            ])
        );
        assert_eq!(
            request["writes"][1]["updateMask"],
            json!({"fieldPaths": ["lastOp", "updatedBy"]})
        );
    }

    #[test]
    fn later_fields_win_masks_unite_and_increments_add_up() {
        let path = "shops/s1/products/p1";
        check_fold(
            DocumentWrite {
                increments: BTreeMap::from([("stock".to_string(), -2)]),
                ..DocumentWrite::patch(path, fields(&[("price", 10), ("name", 1)]), base(5))
            },
            DocumentWrite {
                increments: BTreeMap::from([("stock".to_string(), -3), ("sold".to_string(), 1)]),
                ..DocumentWrite::patch(path, fields(&[("price", 20)]), base(5))
            },
            Some(DocumentWrite {
                increments: BTreeMap::from([("stock".to_string(), -5), ("sold".to_string(), 1)]),
                ..DocumentWrite::patch(path, fields(&[("name", 1), ("price", 20)]), base(5))
            }),
        );
    }

    #[test]
    fn a_patch_folds_into_a_creation_which_stays_a_whole_document_write() {
        let path = "shops/s1/products/p1";
        let mut deletion = DocumentWrite::patch(path, fields(&[("price", 20)]), None);
        deletion.mask = Some(vec!["price".into(), "name".into()]);
        check_fold(
            DocumentWrite::create(path, fields(&[("name", 1), ("price", 10), ("stock", 4)])),
            deletion,
            Some(DocumentWrite::create(
                path,
                fields(&[("price", 20), ("stock", 4)]),
            )),
        );
        // Stock set on creation, then sold: the creation keeps the value and the increment.
        check_fold(
            DocumentWrite::create(path, fields(&[("stock", 4)])),
            DocumentWrite::increment(path, BTreeMap::from([("stock".to_string(), -1)])),
            Some(DocumentWrite {
                increments: BTreeMap::from([("stock".to_string(), -1)]),
                ..DocumentWrite::create(path, fields(&[("stock", 4)]))
            }),
        );
    }

    #[test]
    fn setting_a_counter_erases_earlier_increments_and_zero_sums_vanish() {
        let path = "p";
        check_fold(
            DocumentWrite::increment(path, BTreeMap::from([("stock".to_string(), -1)])),
            DocumentWrite::patch(path, fields(&[("stock", 50)]), None),
            Some(DocumentWrite::patch(path, fields(&[("stock", 50)]), None)),
        );
        check_fold(
            DocumentWrite::increment(path, BTreeMap::from([("stock".to_string(), -1)])),
            DocumentWrite::increment(path, BTreeMap::from([("stock".to_string(), 1)])),
            Some(DocumentWrite::increment(path, BTreeMap::new())),
        );
    }

    #[test]
    fn writes_checking_different_versions_or_documents_do_not_fold() {
        check_fold(
            DocumentWrite::patch("p", fields(&[("price", 1)]), base(5)),
            DocumentWrite::patch("p", fields(&[("price", 2)]), base(6)),
            None,
        );
        check_fold(
            DocumentWrite::create("p", fields(&[("price", 1)])),
            DocumentWrite::patch("p", fields(&[("price", 2)]), base(6)),
            None,
        );
        check_fold(
            DocumentWrite::patch("p", fields(&[("price", 1)]), None),
            DocumentWrite::patch("q", fields(&[("price", 2)]), None),
            None,
        );
        // Counters do not check versions, so a counter write takes a later edit's check.
        check_fold(
            DocumentWrite::increment("p", BTreeMap::from([("stock".to_string(), 3)])),
            DocumentWrite::patch("p", fields(&[("price", 2)]), base(6)),
            Some(DocumentWrite {
                increments: BTreeMap::from([("stock".to_string(), 3)]),
                ..DocumentWrite::patch("p", fields(&[("price", 2)]), base(6))
            }),
        );
    }

    #[test]
    fn several_units_share_one_commit_with_one_marker_each() {
        let unit = |id: &str, delta: i64| Unit {
            id: id.into(),
            label: "Sell".into(),
            writes: vec![
                DocumentWrite::create(format!("shops/s1/bills/{id}"), fields(&[("total", 1)])),
                DocumentWrite::increment(
                    "shops/s1/products/p1",
                    BTreeMap::from([("stock".to_string(), delta)]),
                ),
            ],
            created_at_millis: 0,
            sender: None,
        };
        let (first, second) = (unit("u1", -1), unit("u2", -2));
        let context = CommitContext {
            project: "p",
            database: "(default)",
            shop_id: "s1",
            device_id: "dev-A",
            record_device_changes: false,
        };
        let request = commit_request_for_units(&context, &[&first, &second], 0).unwrap();
        let names: Vec<String> = request
            .writes
            .iter()
            .map(|write| match &write.operation {
                WriteOperation::Update(document) => document
                    .name
                    .rsplit("documents/")
                    .next()
                    .unwrap()
                    .to_owned(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            names,
            [
                "shops/s1/bills/u1",
                "shops/s1/products/p1",
                "shops/s1/bills/u2",
                "shops/s1/ops/u1",
                "shops/s1/ops/u2"
            ]
        );
        assert_eq!(
            request.writes[1].update_transforms[0].kind,
            TransformKind::Increment(Value::Integer(-3))
        );
        let WriteOperation::Update(product) = &request.writes[1].operation else {
            unreachable!()
        };
        assert_eq!(product.fields[LAST_OP], Value::String("u2".into()));
    }

    #[test]
    fn a_commit_records_the_collections_it_touched_in_the_devices_own_document_once() {
        let unit = |id: &str| Unit {
            id: id.into(),
            label: "Sell".into(),
            writes: vec![
                DocumentWrite::create(format!("shops/s1/bills/{id}"), fields(&[("total", 1)])),
                DocumentWrite::increment(
                    "shops/s1/products/p1",
                    BTreeMap::from([("stock".to_string(), -1)]),
                ),
                // Nested under a bill: nobody pulls `refunded`, so it is not recorded.
                DocumentWrite::increment(
                    format!("shops/s1/bills/{id}/refunded/0"),
                    BTreeMap::from([("quantity".to_string(), 1)]),
                ),
            ],
            created_at_millis: 0,
            sender: None,
        };
        let (first, second) = (unit("u1"), unit("u2"));
        let context = CommitContext {
            project: "p",
            database: "(default)",
            shop_id: "s1",
            device_id: "dev-A",
            record_device_changes: true,
        };
        let request = commit_request_for_units(&context, &[&first, &second], 0).unwrap();
        // Entity writes first (the engine zips their results with its paths), then the one
        // devices write, then the markers.
        assert_eq!(request.writes.len(), 5 + 1 + 2);
        assert_eq!(
            serde_json::to_value(&request.writes[5]).unwrap(),
            json!({
                "update": {
                    "name": "projects/p/databases/(default)/documents/shops/s1/devices/dev-A"
                },
                "updateMask": {"fieldPaths": ["changed.bills", "changed.products"]},
                "updateTransforms": [
                    {"fieldPath": "changed.bills", "setToServerValue": "REQUEST_TIME"},
                    {"fieldPath": "changed.products", "setToServerValue": "REQUEST_TIME"}
                ]
            })
        );
        // Off by default: the single-unit request has no devices write.
        let plain = commit_request_for_unit("p", "(default)", "s1", "dev-A", &first, 0);
        assert_eq!(plain.writes.len(), 3 + 1);
    }
}
