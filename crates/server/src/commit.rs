//! `:commit`: checking a `CommitRequest`, then applying its writes, preconditions, masks and
//! transforms to documents.
//!
//! The rules are Firestore's, checked against Google's emulator where the reference is silent:
//! - `update` without a mask replaces the document; with a mask only masked paths change, and a
//!   masked path absent from the body is deleted; body fields outside the mask are ignored.
//! - transforms run after the update, in order, on the updated fields; `REQUEST_TIME` is the
//!   commit time (as Cloud Firestore does; the emulator uses a slightly earlier clock reading);
//!   `increment` adds integers with saturation, goes to double if either side is a double, and
//!   treats a missing or non-numeric field as 0.
//! - a write that leaves an existing document unchanged keeps its `updateTime`.
//! - `delete` and `verify` results carry no transform results; a delete's result is empty and a
//!   verify's carries the document's current `updateTime`.
//!
//! Validation (`validate_commit`) is pure and happens before anything is read, so a bad request
//! is rejected the same way whatever the database holds. `apply_write` is pure too; `run_commit`
//! is the only function here that touches the store, all inside one transaction.

use std::collections::BTreeMap;

use counterbook_firestore_wire::{
    CommitRequest, CommitResponse, DocumentName, FieldTransform, Precondition, ServerValue,
    Timestamp, TransformKind, Value, Write, WriteOperation, WriteResult,
};

use crate::error::ServerError;
use crate::field_path::FieldPath;
use crate::store::{DatabaseId, Store, StoredDocument};

/// A write that passed validation.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidatedWrite {
    pub document: DocumentName,
    pub action: WriteAction,
    pub precondition: Option<ValidatedPrecondition>,
}

/// What a validated write does to its document.
#[derive(Clone, Debug, PartialEq)]
pub enum WriteAction {
    Update {
        fields: BTreeMap<String, Value>,
        /// `None`: replace the whole document.
        mask: Option<Vec<FieldPath>>,
        transforms: Vec<ValidatedTransform>,
    },
    Delete,
    /// Checks the precondition, writes nothing.
    Verify,
}

/// A precondition with exactly one condition set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValidatedPrecondition {
    Exists(bool),
    UpdateTime(Timestamp),
}

#[derive(Clone, Debug, PartialEq)]
pub struct ValidatedTransform {
    pub path: FieldPath,
    pub kind: SupportedTransform,
}

/// The transforms this server implements so far.
#[derive(Clone, Debug, PartialEq)]
pub enum SupportedTransform {
    RequestTime,
    /// The operand: always an integer or a double.
    Increment(Value),
}

/// Parses a document name from a request body and checks that it is a document of `database`.
pub fn parse_document_name(text: &str, database: &DatabaseId) -> Result<DocumentName, ServerError> {
    let name = DocumentName::parse(text)
        .map_err(|error| ServerError::InvalidArgument(format!("invalid document name: {error}")))?;
    if !database.contains(&name) {
        return Err(ServerError::InvalidArgument(format!(
            "document {text:?} is outside the database of this request, {}",
            database.resource_name()
        )));
    }
    if !name.is_document() {
        return Err(ServerError::InvalidArgument(format!(
            "{text:?} names a collection or the database root, not a document; \
             a document path has an even number of segments"
        )));
    }
    Ok(name)
}

/// Checks a whole commit request against the database its URL names.
pub fn validate_commit(
    request: CommitRequest,
    database: &DatabaseId,
) -> Result<Vec<ValidatedWrite>, ServerError> {
    if request.transaction.is_some() {
        return Err(ServerError::Unimplemented(
            "transactions are not implemented yet; commit without a transaction".into(),
        ));
    }
    if let Some(named) = &request.database {
        if *named != database.resource_name() {
            return Err(ServerError::InvalidArgument(format!(
                "the request body names database {named:?} but the URL names {}",
                database.resource_name()
            )));
        }
    }
    request
        .writes
        .into_iter()
        .map(|write| validate_write(write, database))
        .collect()
}

fn validate_write(write: Write, database: &DatabaseId) -> Result<ValidatedWrite, ServerError> {
    let precondition = write
        .current_document
        .as_ref()
        .map(validate_precondition)
        .transpose()?
        .flatten();
    let (document, action) = match write.operation {
        WriteOperation::Update(body) => {
            let document = parse_document_name(&body.name, database)?;
            let mask = write
                .update_mask
                .map(|mask| {
                    mask.field_paths
                        .iter()
                        .map(|path| FieldPath::parse(path))
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?;
            let transforms = write
                .update_transforms
                .iter()
                .map(validate_transform)
                .collect::<Result<Vec<_>, _>>()?;
            let action = WriteAction::Update {
                fields: body.fields,
                mask,
                transforms,
            };
            (document, action)
        }
        WriteOperation::Delete(name) => {
            reject_mask_and_transforms(&write.update_mask, &write.update_transforms, "delete")?;
            (parse_document_name(&name, database)?, WriteAction::Delete)
        }
        WriteOperation::Verify(name) => {
            reject_mask_and_transforms(&write.update_mask, &write.update_transforms, "verify")?;
            if precondition.is_none() {
                return Err(ServerError::InvalidArgument(
                    "a verify must contain a precondition".into(),
                ));
            }
            (parse_document_name(&name, database)?, WriteAction::Verify)
        }
        WriteOperation::Transform(_) => {
            return Err(ServerError::Unimplemented(
                "the stand-alone transform write is not implemented; \
                 send updateTransforms on an update instead"
                    .into(),
            ))
        }
    };
    Ok(ValidatedWrite {
        document,
        action,
        precondition,
    })
}

fn reject_mask_and_transforms(
    mask: &Option<counterbook_firestore_wire::DocumentMask>,
    transforms: &[FieldTransform],
    kind: &str,
) -> Result<(), ServerError> {
    if mask.is_some() {
        return Err(ServerError::InvalidArgument(format!(
            "a {kind} must not specify a document mask."
        )));
    }
    if !transforms.is_empty() {
        return Err(ServerError::InvalidArgument(format!(
            "a {kind} must not specify a update transform."
        )));
    }
    Ok(())
}

/// An empty precondition is no precondition, as in Firestore.
fn validate_precondition(
    precondition: &Precondition,
) -> Result<Option<ValidatedPrecondition>, ServerError> {
    match (precondition.exists, precondition.update_time) {
        (None, None) => Ok(None),
        (Some(exists), None) => Ok(Some(ValidatedPrecondition::Exists(exists))),
        (None, Some(update_time)) => Ok(Some(ValidatedPrecondition::UpdateTime(update_time))),
        (Some(_), Some(_)) => Err(ServerError::InvalidArgument(
            "a precondition sets either exists or updateTime, not both".into(),
        )),
    }
}

fn validate_transform(transform: &FieldTransform) -> Result<ValidatedTransform, ServerError> {
    let path = FieldPath::parse(&transform.field_path)?;
    let kind = match &transform.kind {
        TransformKind::SetToServerValue(ServerValue::RequestTime) => {
            SupportedTransform::RequestTime
        }
        TransformKind::SetToServerValue(ServerValue::Unspecified) => {
            return Err(ServerError::InvalidArgument(
                "ServerValue type must be specified for set_to_server_value transformation.".into(),
            ))
        }
        TransformKind::Increment(operand @ (Value::Integer(_) | Value::Double(_))) => {
            SupportedTransform::Increment(operand.clone())
        }
        TransformKind::Increment(_) => {
            return Err(ServerError::InvalidArgument(
                "Input must be int64 or double.".into(),
            ))
        }
        TransformKind::Maximum(_) => return Err(unimplemented_transform("maximum")),
        TransformKind::Minimum(_) => return Err(unimplemented_transform("minimum")),
        TransformKind::AppendMissingElements(_) => {
            return Err(unimplemented_transform("appendMissingElements"))
        }
        TransformKind::RemoveAllFromArray(_) => {
            return Err(unimplemented_transform("removeAllFromArray"))
        }
    };
    Ok(ValidatedTransform { path, kind })
}

fn unimplemented_transform(kind: &str) -> ServerError {
    ServerError::Unimplemented(format!(
        "the {kind} transform is not implemented yet; \
         only setToServerValue REQUEST_TIME and increment are"
    ))
}

/// Fails the write if its precondition does not hold for the document as it is now.
pub fn check_precondition(
    current: Option<&StoredDocument>,
    precondition: Option<ValidatedPrecondition>,
    name: &DocumentName,
) -> Result<(), ServerError> {
    match precondition {
        None => Ok(()),
        Some(ValidatedPrecondition::Exists(true)) if current.is_none() => Err(
            ServerError::NotFound(format!("No document to update: {name}")),
        ),
        Some(ValidatedPrecondition::Exists(false)) if current.is_some() => Err(
            ServerError::AlreadyExists(format!("Document already exists: {name}")),
        ),
        Some(ValidatedPrecondition::Exists(_)) => Ok(()),
        Some(ValidatedPrecondition::UpdateTime(required)) => {
            let stored = current.map(|document| document.update_time);
            if stored == Some(required) {
                Ok(())
            } else {
                // Worded like the emulator: versions are update times in microseconds, 0 when
                // the document does not exist.
                Err(ServerError::FailedPrecondition(format!(
                    "the stored version ({}) does not match the required base version ({})",
                    stored.map_or(0, Timestamp::to_unix_micros),
                    required.to_unix_micros()
                )))
            }
        }
    }
}

/// What one write does to its document.
#[derive(Clone, Debug, PartialEq)]
pub enum DocumentChange {
    /// Nothing to store: a verify, or an update that changed nothing.
    Unchanged,
    Put(StoredDocument),
    Delete,
}

/// The outcome of applying one write.
#[derive(Clone, Debug, PartialEq)]
pub struct AppliedWrite {
    pub change: DocumentChange,
    pub result: WriteResult,
}

/// Applies one validated write to the document's current state (`None`: it does not exist).
pub fn apply_write(
    current: Option<&StoredDocument>,
    write: &ValidatedWrite,
    commit_time: Timestamp,
) -> Result<AppliedWrite, ServerError> {
    check_precondition(current, write.precondition, &write.document)?;
    match &write.action {
        WriteAction::Delete => Ok(AppliedWrite {
            change: DocumentChange::Delete,
            result: WriteResult::default(),
        }),
        WriteAction::Verify => Ok(AppliedWrite {
            change: DocumentChange::Unchanged,
            result: WriteResult {
                update_time: current.map(|document| document.update_time),
                transform_results: Vec::new(),
            },
        }),
        WriteAction::Update {
            fields: body,
            mask,
            transforms,
        } => {
            let mut fields = match mask {
                None => body.clone(),
                Some(paths) => {
                    let mut fields = current
                        .map(|document| document.fields.clone())
                        .unwrap_or_default();
                    for path in paths {
                        match path.get(body) {
                            Some(value) => path.set(&mut fields, value.clone()),
                            None => path.remove(&mut fields),
                        }
                    }
                    fields
                }
            };
            let transform_results = transforms
                .iter()
                .map(|transform| apply_transform(&mut fields, transform, commit_time))
                .collect();
            match current {
                Some(existing) if existing.fields == fields => Ok(AppliedWrite {
                    change: DocumentChange::Unchanged,
                    result: WriteResult {
                        update_time: Some(existing.update_time),
                        transform_results,
                    },
                }),
                _ => Ok(AppliedWrite {
                    change: DocumentChange::Put(StoredDocument {
                        fields,
                        create_time: current.map_or(commit_time, |document| document.create_time),
                        update_time: commit_time,
                    }),
                    result: WriteResult {
                        update_time: Some(commit_time),
                        transform_results,
                    },
                }),
            }
        }
    }
}

/// Applies one transform in place and returns its result value.
fn apply_transform(
    fields: &mut BTreeMap<String, Value>,
    transform: &ValidatedTransform,
    commit_time: Timestamp,
) -> Value {
    let result = match &transform.kind {
        SupportedTransform::RequestTime => Value::Timestamp(commit_time),
        SupportedTransform::Increment(operand) => increment(transform.path.get(fields), operand),
    };
    transform.path.set(fields, result.clone());
    result
}

/// Firestore's increment: integer + integer saturates at the i64 bounds, a double on either side
/// makes a double, and anything that is not a number counts as 0.
pub fn increment(current: Option<&Value>, operand: &Value) -> Value {
    match (current, operand) {
        (Some(Value::Integer(a)), Value::Integer(b)) => Value::Integer(a.saturating_add(*b)),
        (Some(Value::Integer(a)), Value::Double(b)) => Value::Double(*a as f64 + b),
        (Some(Value::Double(a)), Value::Integer(b)) => Value::Double(a + *b as f64),
        (Some(Value::Double(a)), Value::Double(b)) => Value::Double(a + b),
        (_, operand) => operand.clone(),
    }
}

/// Runs a commit: validation, then every write in one transaction, all or nothing.
pub fn run_commit(
    store: &Store,
    database: &DatabaseId,
    request: CommitRequest,
) -> Result<CommitResponse, ServerError> {
    let writes = validate_commit(request, database)?;
    if writes.is_empty() {
        // The emulator answers an empty commit with `{}`: no commit time, nothing written.
        return Ok(CommitResponse::default());
    }
    store.write_transaction(|transaction| {
        let commit_time = transaction.commit_time();
        let mut write_results = Vec::with_capacity(writes.len());
        for write in &writes {
            // Reads see this transaction's own earlier writes, so two writes to one document
            // in one commit apply in order.
            let current = transaction.get_document(&write.document)?;
            let applied = apply_write(current.as_ref(), write, commit_time)?;
            match &applied.change {
                DocumentChange::Unchanged => {}
                DocumentChange::Put(document) => {
                    transaction.put_document(&write.document, document)?
                }
                DocumentChange::Delete => transaction.delete_document(&write.document)?,
            }
            write_results.push(applied.result);
        }
        Ok(CommitResponse {
            write_results,
            commit_time: Some(commit_time),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn database() -> DatabaseId {
        DatabaseId {
            project: "p".into(),
            database: "(default)".into(),
        }
    }

    const DOC: &str = "projects/p/databases/(default)/documents/shops/s/products/a";

    fn fields(value: serde_json::Value) -> BTreeMap<String, Value> {
        serde_json::from_value(value).unwrap()
    }

    fn stored(value: serde_json::Value) -> StoredDocument {
        StoredDocument {
            fields: fields(value),
            create_time: Timestamp::from_unix_micros(10),
            update_time: Timestamp::from_unix_micros(20),
        }
    }

    const COMMIT_TIME: Timestamp = Timestamp {
        seconds: 1,
        nanos: 5000,
    };

    /// Validates one write given as JSON, applies it to `current`, and returns the outcome.
    fn apply(
        current: Option<&StoredDocument>,
        write: serde_json::Value,
    ) -> Result<AppliedWrite, ServerError> {
        let request: CommitRequest = serde_json::from_value(json!({ "writes": [write] })).unwrap();
        let writes = validate_commit(request, &database())?;
        apply_write(current, &writes[0], COMMIT_TIME)
    }

    fn put_fields(applied: AppliedWrite) -> BTreeMap<String, Value> {
        match applied.change {
            DocumentChange::Put(document) => document.fields,
            other => panic!("expected a put, got {other:?}"),
        }
    }

    #[test]
    fn update_without_mask_replaces_and_keeps_create_time() {
        let current = stored(json!({"a": {"integerValue": "1"}, "b": {"integerValue": "2"}}));
        let applied = apply(
            Some(&current),
            json!({"update": {"name": DOC, "fields": {"c": {"stringValue": "x"}}}}),
        )
        .unwrap();
        assert_eq!(applied.result.update_time, Some(COMMIT_TIME));
        let DocumentChange::Put(document) = applied.change else {
            panic!("expected a put")
        };
        assert_eq!(document.fields, fields(json!({"c": {"stringValue": "x"}})));
        assert_eq!(document.create_time, current.create_time);
        assert_eq!(document.update_time, COMMIT_TIME);
    }

    #[test]
    fn mask_changes_only_masked_paths_and_deletes_masked_paths_missing_from_the_body() {
        let current = stored(json!({
            "a": {"integerValue": "1"},
            "b": {"integerValue": "2"},
            "keep": {"integerValue": "3"},
            "m": {"mapValue": {"fields": {"x": {"integerValue": "1"}, "y": {"integerValue": "2"}}}}
        }));
        let applied = apply(
            Some(&current),
            json!({
                "update": {"name": DOC, "fields": {
                    "a": {"integerValue": "10"},
                    "m": {"mapValue": {"fields": {"x": {"integerValue": "10"}}}},
                    "ignored": {"integerValue": "99"}
                }},
                "updateMask": {"fieldPaths": ["a", "b", "m.x", "m.z.q"]}
            }),
        )
        .unwrap();
        assert_eq!(
            put_fields(applied),
            fields(json!({
                "a": {"integerValue": "10"},
                "keep": {"integerValue": "3"},
                "m": {"mapValue": {"fields": {"x": {"integerValue": "10"}, "y": {"integerValue": "2"}}}}
            }))
        );
    }

    #[test]
    fn an_update_that_changes_nothing_keeps_the_update_time() {
        let current = stored(json!({"a": {"integerValue": "1"}}));
        let applied = apply(
            Some(&current),
            json!({"update": {"name": DOC, "fields": {"a": {"integerValue": "1"}}}}),
        )
        .unwrap();
        assert_eq!(applied.change, DocumentChange::Unchanged);
        assert_eq!(applied.result.update_time, Some(current.update_time));
    }

    fn check_increment(current: Option<Value>, operand: Value, expected: Value) {
        let result = increment(current.as_ref(), &operand);
        assert_eq!(result, expected, "{current:?} + {operand:?}");
    }

    #[test]
    fn increments_follow_the_emulator() {
        use Value::{Double, Integer};
        check_increment(Some(Integer(3)), Integer(4), Integer(7));
        check_increment(Some(Integer(i64::MAX - 7)), Integer(100), Integer(i64::MAX));
        check_increment(
            Some(Integer(i64::MIN + 7)),
            Integer(-100),
            Integer(i64::MIN),
        );
        check_increment(Some(Double(1.5)), Integer(2), Double(3.5));
        check_increment(Some(Integer(3)), Double(0.5), Double(3.5));
        check_increment(None, Double(2.5), Double(2.5));
        check_increment(None, Integer(4), Integer(4));
        check_increment(Some(Value::String("x".into())), Integer(4), Integer(4));
    }

    #[test]
    fn transforms_apply_after_the_update_in_order() {
        let applied = apply(
            None,
            json!({
                "update": {"name": DOC, "fields": {"n": {"integerValue": "1"}}},
                "updateTransforms": [
                    {"fieldPath": "n", "increment": {"integerValue": "1"}},
                    {"fieldPath": "n", "increment": {"integerValue": "1"}},
                    {"fieldPath": "updatedAt", "setToServerValue": "REQUEST_TIME"},
                    {"fieldPath": "m.deep", "increment": {"integerValue": "7"}}
                ]
            }),
        )
        .unwrap();
        assert_eq!(
            applied.result.transform_results,
            vec![
                Value::Integer(2),
                Value::Integer(3),
                Value::Timestamp(COMMIT_TIME),
                Value::Integer(7)
            ]
        );
        assert_eq!(
            put_fields(applied),
            fields(json!({
                "n": {"integerValue": "3"},
                "updatedAt": {"timestampValue": "1970-01-01T00:00:01.000005Z"},
                "m": {"mapValue": {"fields": {"deep": {"integerValue": "7"}}}}
            }))
        );
    }

    fn check_rejection(
        write: serde_json::Value,
        expected_code: counterbook_firestore_wire::Code,
        needle: &str,
    ) {
        let current = stored(json!({}));
        let error = apply(Some(&current), write.clone()).unwrap_err();
        assert_eq!(error.code(), expected_code, "{write}: {error}");
        assert!(error.to_string().contains(needle), "{write}: {error}");
    }

    #[test]
    fn invalid_writes_are_rejected_with_the_emulators_codes() {
        use counterbook_firestore_wire::Code;
        check_rejection(
            json!({"update": {"name": "garbage/x"}}),
            Code::InvalidArgument,
            "invalid document name",
        );
        check_rejection(
            json!({"update": {"name": "projects/p/databases/(default)/documents/shops"}}),
            Code::InvalidArgument,
            "not a document",
        );
        check_rejection(
            json!({"update": {"name": "projects/other/databases/(default)/documents/a/b"}}),
            Code::InvalidArgument,
            "outside the database",
        );
        check_rejection(
            json!({"verify": DOC}),
            Code::InvalidArgument,
            "precondition",
        );
        check_rejection(
            json!({"delete": DOC, "updateMask": {"fieldPaths": ["a"]}}),
            Code::InvalidArgument,
            "document mask",
        );
        check_rejection(
            json!({"update": {"name": DOC}, "updateTransforms": [{"fieldPath": "a", "increment": {"stringValue": "1"}}]}),
            Code::InvalidArgument,
            "int64 or double",
        );
        check_rejection(
            json!({"update": {"name": DOC}, "updateTransforms": [{"fieldPath": "a", "maximum": {"integerValue": "1"}}]}),
            Code::Unimplemented,
            "maximum",
        );
        check_rejection(
            json!({"update": {"name": DOC}, "updateMask": {"fieldPaths": ["a..b"]}}),
            Code::InvalidArgument,
            "Invalid property path",
        );
    }

    fn check_precondition_outcome(
        current: Option<&StoredDocument>,
        precondition: serde_json::Value,
        expected: Result<(), counterbook_firestore_wire::Code>,
    ) {
        let outcome = apply(
            current,
            json!({"update": {"name": DOC}, "currentDocument": precondition}),
        );
        assert_eq!(
            outcome.map(|_| ()).map_err(|error| error.code()),
            expected,
            "{precondition} on {current:?}"
        );
    }

    #[test]
    fn preconditions() {
        use counterbook_firestore_wire::Code;
        let existing = stored(json!({}));
        let stored_time = existing.update_time.to_string();
        check_precondition_outcome(Some(&existing), json!({"exists": true}), Ok(()));
        check_precondition_outcome(None, json!({"exists": false}), Ok(()));
        check_precondition_outcome(
            Some(&existing),
            json!({"exists": false}),
            Err(Code::AlreadyExists),
        );
        check_precondition_outcome(None, json!({"exists": true}), Err(Code::NotFound));
        check_precondition_outcome(Some(&existing), json!({"updateTime": stored_time}), Ok(()));
        check_precondition_outcome(
            Some(&existing),
            json!({"updateTime": "2020-01-01T00:00:00Z"}),
            Err(Code::FailedPrecondition),
        );
        check_precondition_outcome(
            None,
            json!({"updateTime": "2020-01-01T00:00:00Z"}),
            Err(Code::FailedPrecondition),
        );
        check_precondition_outcome(
            Some(&existing),
            json!({"exists": true, "updateTime": stored_time}),
            Err(Code::InvalidArgument),
        );
    }

    #[test]
    fn verify_reports_the_current_update_time_and_delete_reports_nothing() {
        let current = stored(json!({}));
        let verified = apply(
            Some(&current),
            json!({"verify": DOC, "currentDocument": {"exists": true}}),
        )
        .unwrap();
        assert_eq!(verified.change, DocumentChange::Unchanged);
        assert_eq!(verified.result.update_time, Some(current.update_time));
        let deleted = apply(None, json!({"delete": DOC})).unwrap();
        assert_eq!(deleted.change, DocumentChange::Delete);
        assert_eq!(deleted.result, WriteResult::default());
    }
}
