//! `:commit`: checking a `CommitRequest`, then applying its writes, preconditions, masks and
//! transforms to documents.
//!
//! The rules are Firestore's, checked against Google's emulator where the reference is silent:
//! - `update` without a mask replaces the document; with a mask only masked paths change, and a
//!   masked path absent from the body is deleted; body fields outside the mask are ignored.
//! - transforms run after the update, in order, on the updated fields; `REQUEST_TIME` is the
//!   commit time (as Cloud Firestore does; the emulator uses a slightly earlier clock reading);
//!   `increment` adds integers with saturation, goes to double if either side is a double, and
//!   treats a missing or non-numeric field as 0; `maximum` and `minimum` keep the current value
//!   when it is numeric and not beaten (a tie keeps the current value and its type), take the
//!   operand when the field is missing or not a number, and give NaN if either side is NaN;
//!   `appendMissingElements` adds the elements not already present (Firestore equality, so
//!   `2.0` is present when `2` is) and `removeAllFromArray` removes every equal element, both
//!   starting from an empty array when the field is not an array, and both report a null
//!   transform result, as the emulator does;
//! - the legacy `transform` write is an update with an empty mask and those transforms;
//! - a commit in a transaction first checks (under the writer lock, in the same SQLite
//!   transaction) that nothing the transaction read has changed (`transaction`), else 409
//!   `ABORTED`; a read-only transaction's commit may not write;
//! - `limits`: field names, nesting and value sizes of the body, 1 MiB per document as the
//!   write leaves it, 500 writes per commit.
//! - several writes to one document fold as on the emulator (`check_writes_fold_per_document`):
//!   contradictory preconditions are refused before anything is read, only the first write's
//!   precondition meets the stored document, the document is stored once as the last write
//!   leaves it, and every write reports the update time of that final document (none if the
//!   commit leaves it deleted);
//! - a commit that leaves an existing document unchanged (and did not delete it on the way)
//!   keeps its `updateTime`.
//! - `delete` and `verify` results carry no transform results; a delete's result is empty and a
//!   verify's carries the document's current `updateTime`.
//!
//! Validation (`validate_commit`) is pure and happens before anything is read, so a bad request
//! is rejected the same way whatever the database holds. `apply_write` is pure too; `run_commit`,
//! `run_patch` and `run_delete` touch the store, each inside one write transaction, where
//! `apply_writes` asks a `WriteJudge` (authorization, from above) about every write on the
//! documents before and after it at the commit's own time, and then about the commit's outcome
//! as a whole (`CommitOutcome`: every document it writes as it was before the commit and as
//! the commit leaves it, and any other document before and after it, as Firestore's rules'
//! `get` and `getAfter` see them), before storing anything.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use counterbook_firestore_wire::{
    CommitRequest, CommitResponse, Document, DocumentName, FieldTransform, Precondition,
    ServerValue, Timestamp, TransformKind, Value, Write, WriteOperation, WriteResult,
};

use crate::error::ServerError;
use crate::field_path::FieldPath;
use crate::limits::{
    check_document_size, check_index_entries, validate_client_fields, MAX_WRITES_PER_COMMIT,
};
use crate::reads::{evaluate_query, result_versions};
use crate::store::{DatabaseId, DocumentSource, Store, StoredDocument, WriteTransaction};
use crate::transaction::{contention, RecordedRead, TransactionOwner};

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

/// Every field transform Firestore defines.
#[derive(Clone, Debug, PartialEq)]
pub enum SupportedTransform {
    RequestTime,
    /// The operand: always an integer or a double.
    Increment(Value),
    /// The operand: always an integer or a double.
    Maximum(Value),
    /// The operand: always an integer or a double.
    Minimum(Value),
    AppendMissingElements(Vec<Value>),
    RemoveAllFromArray(Vec<Value>),
}

/// Parses a document name from a request body and checks that it is a document of `database`.
pub fn parse_document_name(text: &str, database: &DatabaseId) -> Result<DocumentName, ServerError> {
    let name = DocumentName::parse(text)
        .map_err(|error| ServerError::invalid_name("document name", error))?;
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
    // The transaction, if any, is `run_commit`'s business: the writes validate the same way.
    if request.writes.len() > MAX_WRITES_PER_COMMIT {
        return Err(ServerError::InvalidArgument(format!(
            "A commit can hold at most {MAX_WRITES_PER_COMMIT} writes; this one has {}.",
            request.writes.len()
        )));
    }
    if let Some(named) = &request.database {
        if *named != database.resource_name() {
            return Err(ServerError::InvalidArgument(format!(
                "the request body names database {named:?} but the URL names {}",
                database.resource_name()
            )));
        }
    }
    let writes = request
        .writes
        .into_iter()
        .map(|write| validate_write(write, database))
        .collect::<Result<Vec<_>, _>>()?;
    check_writes_fold_per_document(&writes)?;
    Ok(writes)
}

/// What the writes so far have made of one document in one commit, as the emulator folds
/// them into one mutation per document.
#[derive(Clone, Copy, Debug)]
struct DocumentFold {
    /// The folded mutation's kind: whether the document exists after the writes so far, and
    /// the word the emulator's refusals use for it.
    kind: FoldKind,
    /// The `updateTime` precondition of the first write (`None`: it had none). Every later
    /// `updateTime` precondition must be the same.
    version: Option<Timestamp>,
    verified: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FoldKind {
    Upsert,
    Update,
    Insert,
    Delete,
}

impl FoldKind {
    fn word(self) -> &'static str {
        match self {
            FoldKind::Upsert => "upsert",
            FoldKind::Update => "update",
            FoldKind::Insert => "insert",
            FoldKind::Delete => "delete",
        }
    }

    fn of(write: &ValidatedWrite) -> FoldKind {
        match (&write.action, write.precondition) {
            (WriteAction::Delete, _) => FoldKind::Delete,
            (_, None) => FoldKind::Upsert,
            (_, Some(ValidatedPrecondition::Exists(false))) => FoldKind::Insert,
            (_, Some(_)) => FoldKind::Update,
        }
    }
}

/// The emulator's wording of a version precondition in its refusals.
fn version_words(version: Option<Timestamp>) -> String {
    match version {
        None => "null".into(),
        Some(time) => format!(
            "VersionPrecondition{{exactBaseVersion={}, maxBaseVersion=null}}",
            time.to_unix_micros()
        ),
    }
}

/// Several writes to one document in one commit are folded in order, as the emulator folds
/// them; a write whose precondition contradicts what the earlier writes left is refused
/// (`INVALID_ARGUMENT`, whatever the database holds): `exists: false` after a write that
/// leaves the document, `exists: true` or `updateTime` on an update after a delete, a
/// different `updateTime` than the first write's (or one where the first had none), and any
/// second write where one of the two is a `verify`. Only the first write's precondition is
/// then checked against the stored document (`apply_writes`): the later ones hold by
/// construction.
fn check_writes_fold_per_document(writes: &[ValidatedWrite]) -> Result<(), ServerError> {
    let mut folds: BTreeMap<&DocumentName, DocumentFold> = BTreeMap::new();
    for write in writes {
        let is_verify = matches!(write.action, WriteAction::Verify);
        let version = match write.precondition {
            Some(ValidatedPrecondition::UpdateTime(time)) => Some(time),
            _ => None,
        };
        let Some(fold) = folds.get_mut(&write.document) else {
            folds.insert(
                &write.document,
                DocumentFold {
                    kind: FoldKind::of(write),
                    version,
                    verified: is_verify,
                },
            );
            continue;
        };
        let refuse = |message: String| Err(ServerError::InvalidArgument(message));
        if is_verify {
            let what = if fold.verified {
                "verified more than once"
            } else {
                "written and then verified"
            };
            return refuse(format!(
                "the same document cannot be {what} in a single request"
            ));
        }
        if fold.verified {
            return refuse(
                "the same document cannot be verified and then written in a single request".into(),
            );
        }
        let kind = FoldKind::of(write);
        let exists_now = fold.kind != FoldKind::Delete;
        let needs_existence = match (&write.action, write.precondition) {
            (_, Some(ValidatedPrecondition::Exists(exists))) => Some(exists),
            (WriteAction::Update { .. }, Some(ValidatedPrecondition::UpdateTime(_))) => Some(true),
            _ => None,
        };
        match needs_existence {
            Some(true) if !exists_now => {
                let second = if kind == FoldKind::Delete {
                    "delete"
                } else {
                    "update"
                };
                return refuse(format!(
                    "Cannot delete then {second} an entity in the same request."
                ));
            }
            Some(false) if exists_now => {
                let second = if kind == FoldKind::Delete {
                    "delete"
                } else {
                    "insert"
                };
                return refuse(format!(
                    "Cannot {} then {second} an entity in the same request.",
                    fold.kind.word()
                ));
            }
            _ => {}
        }
        if version.is_some() && version != fold.version {
            return refuse(format!(
                "Cannot collapse mutations with different version preconditions ({} and {})",
                version_words(fold.version),
                version_words(version)
            ));
        }
        fold.kind = match kind {
            FoldKind::Delete => FoldKind::Delete,
            _ if !exists_now => FoldKind::Upsert,
            _ => fold.kind,
        };
    }
    Ok(())
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
            validate_client_fields(&body.fields)?;
            let mask = write
                .update_mask
                .map(|mask| {
                    mask.field_paths
                        .iter()
                        .map(|path| FieldPath::parse_for_write(path))
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
        WriteOperation::Transform(legacy) => {
            if write.update_mask.is_some() {
                return Err(ServerError::InvalidArgument(
                    "a transform must not specify a document mask.".into(),
                ));
            }
            if legacy.field_transforms.is_empty() {
                return Err(ServerError::InvalidArgument(
                    "The list of FieldTransform must not be empty.".into(),
                ));
            }
            let transforms = legacy
                .field_transforms
                .iter()
                .chain(&write.update_transforms)
                .map(validate_transform)
                .collect::<Result<Vec<_>, _>>()?;
            let action = WriteAction::Update {
                fields: BTreeMap::new(),
                mask: Some(Vec::new()),
                transforms,
            };
            (parse_document_name(&legacy.document, database)?, action)
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
    let path = FieldPath::parse_for_write(&transform.field_path)?;
    let numeric_operand = |operand: &Value| match operand {
        Value::Integer(_) | Value::Double(_) => Ok(operand.clone()),
        _ => Err(ServerError::InvalidArgument(
            "Input must be int64 or double.".into(),
        )),
    };
    let kind = match &transform.kind {
        TransformKind::SetToServerValue(ServerValue::RequestTime) => {
            SupportedTransform::RequestTime
        }
        TransformKind::SetToServerValue(ServerValue::Unspecified) => {
            return Err(ServerError::InvalidArgument(
                "ServerValue type must be specified for set_to_server_value transformation.".into(),
            ))
        }
        TransformKind::Increment(operand) => {
            SupportedTransform::Increment(numeric_operand(operand)?)
        }
        TransformKind::Maximum(operand) => SupportedTransform::Maximum(numeric_operand(operand)?),
        TransformKind::Minimum(operand) => SupportedTransform::Minimum(numeric_operand(operand)?),
        TransformKind::AppendMissingElements(elements) => {
            SupportedTransform::AppendMissingElements(elements.values.clone())
        }
        TransformKind::RemoveAllFromArray(elements) => {
            SupportedTransform::RemoveAllFromArray(elements.values.clone())
        }
    };
    Ok(ValidatedTransform { path, kind })
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
        // A verify reports the document's update time, or the commit time when it does not
        // exist, as the emulator does.
        WriteAction::Verify => Ok(AppliedWrite {
            change: DocumentChange::Unchanged,
            result: WriteResult {
                update_time: Some(current.map_or(commit_time, |document| document.update_time)),
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
            check_document_size(&write.document, &fields)?;
            check_index_entries(&write.document, &fields)?;
            match current {
                Some(existing) if same_fields(&existing.fields, &fields) => Ok(AppliedWrite {
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

/// Whether two documents' fields are the same stored value, as the emulator decides whether a
/// write changed a document: doubles compare by their bits, so NaN is the same as NaN (an
/// increment of NaN changes nothing) and `-0.0` is not `0.0`.
fn same_fields(left: &BTreeMap<String, Value>, right: &BTreeMap<String, Value>) -> bool {
    left.len() == right.len()
        && left
            .iter()
            .zip(right)
            .all(|((left_name, left), (right_name, right))| {
                left_name == right_name && same_value(left, right)
            })
}

fn same_value(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Double(left), Value::Double(right)) => {
            left.to_bits() == right.to_bits() || (left.is_nan() && right.is_nan())
        }
        (Value::Array(left), Value::Array(right)) => {
            left.len() == right.len() && left.iter().zip(right).all(|(l, r)| same_value(l, r))
        }
        (Value::Map(left), Value::Map(right)) => same_fields(left, right),
        (left, right) => left == right,
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
        SupportedTransform::Maximum(operand) => {
            numeric_extreme(transform.path.get(fields), operand, Ordering::Greater)
        }
        SupportedTransform::Minimum(operand) => {
            numeric_extreme(transform.path.get(fields), operand, Ordering::Less)
        }
        SupportedTransform::AppendMissingElements(elements) => {
            let mut array = current_array(transform.path.get(fields));
            for element in elements {
                if !array
                    .iter()
                    .any(|present| present.firestore_eq(element) || same_nan(present, element))
                {
                    array.push(element.clone());
                }
            }
            transform.path.set(fields, Value::Array(array));
            return Value::Null;
        }
        SupportedTransform::RemoveAllFromArray(elements) => {
            let mut array = current_array(transform.path.get(fields));
            array.retain(|present| {
                !elements
                    .iter()
                    .any(|element| present.firestore_eq(element) || same_nan(present, element))
            });
            transform.path.set(fields, Value::Array(array));
            return Value::Null;
        }
    };
    transform.path.set(fields, result.clone());
    result
}

/// Array transforms treat NaN as equal to NaN (they compare stored values, not filters).
fn same_nan(a: &Value, b: &Value) -> bool {
    a.is_nan() && b.is_nan()
}

fn current_array(current: Option<&Value>) -> Vec<Value> {
    match current {
        Some(Value::Array(values)) => values.clone(),
        _ => Vec::new(),
    }
}

/// `maximum` (`wins` = Greater) and `minimum` (`wins` = Less): the operand replaces the
/// current value only when the current one is not a number or the operand strictly wins; NaN
/// on either side gives NaN.
pub fn numeric_extreme(current: Option<&Value>, operand: &Value, wins: Ordering) -> Value {
    match current {
        Some(current @ (Value::Integer(_) | Value::Double(_))) => {
            if current.is_nan() {
                current.clone()
            } else if operand.is_nan() || operand.firestore_cmp(current) == wins {
                operand.clone()
            } else {
                current.clone()
            }
        }
        _ => operand.clone(),
    }
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

/// One write as the commit is about to store it: the document before it and after it, both
/// as of the commit's own write transaction and commit time. This is what authorization judges,
/// so what is judged is exactly what is written.
#[derive(Clone, Copy, Debug)]
pub struct ProposedWrite<'a> {
    pub write: &'a ValidatedWrite,
    /// The document before this write (after the commit's earlier writes); `None`: missing.
    pub before: Option<&'a StoredDocument>,
    /// The document this write leaves; `None`: deleted or still missing.
    pub after: Option<&'a StoredDocument>,
}

/// Decides whether a write may be stored. `apply_writes` asks it about every write of a commit,
/// in order, inside the commit's write transaction and before that write is stored; a refusal
/// fails the whole commit, so no write is ever stored without having been judged.
pub trait WriteJudge: Send + Sync {
    /// Whether the caller may learn the state of `document`: asked before a precondition is
    /// checked, since its outcome (missing, existing, its update time) tells that state.
    fn judge_precondition(&self, document: &DocumentName) -> Result<(), ServerError>;
    /// Whether this write may be stored.
    fn judge(&self, proposed: &ProposedWrite<'_>) -> Result<(), ServerError>;
    /// Whether the commit may be stored as a whole, asked once after every write was judged
    /// and before anything is stored.
    fn judge_outcome(&self, _outcome: &CommitOutcome<'_, '_>) -> Result<(), ServerError> {
        Ok(())
    }
    /// The caller as the owner of transactions: a commit may close only a transaction that
    /// its caller opened (`None`: dev mode, no owners).
    fn transaction_owner(&self) -> Option<TransactionOwner> {
        None
    }
}

/// What a commit is about to leave, for `WriteJudge::judge_outcome`: inside its own write
/// transaction, before anything is stored.
pub struct CommitOutcome<'a, 't> {
    transaction: &'a WriteTransaction<'t>,
    documents: &'a BTreeMap<&'a DocumentName, DocumentInCommit>,
}

impl CommitOutcome<'_, '_> {
    /// Every document the commit writes: its name, the document before the commit and the one
    /// the commit leaves (`None`: missing, or deleted).
    pub fn written(
        &self,
    ) -> impl Iterator<
        Item = (
            &DocumentName,
            Option<&StoredDocument>,
            Option<&StoredDocument>,
        ),
    > {
        self.documents
            .iter()
            .map(|(name, document)| (*name, document.stored.as_ref(), document.current.as_ref()))
    }

    /// Any document as it was before the commit (the rules' `get` and `exists`).
    pub fn before(&self, name: &DocumentName) -> Result<Option<StoredDocument>, ServerError> {
        match self.documents.get(name) {
            Some(document) => Ok(document.stored.clone()),
            None => Ok(self.transaction.get_document(name)?),
        }
    }

    /// Any document as the commit leaves it (the rules' `getAfter` and `existsAfter`).
    pub fn after(&self, name: &DocumentName) -> Result<Option<StoredDocument>, ServerError> {
        match self.documents.get(name) {
            Some(document) => Ok(document.current.clone()),
            None => Ok(self.transaction.get_document(name)?),
        }
    }
}

/// The judge of dev mode (no authentication): every write may be stored.
#[derive(Clone, Copy, Debug, Default)]
pub struct AdmitEveryWrite;

impl WriteJudge for AdmitEveryWrite {
    fn judge_precondition(&self, _document: &DocumentName) -> Result<(), ServerError> {
        Ok(())
    }

    fn judge(&self, _proposed: &ProposedWrite<'_>) -> Result<(), ServerError> {
        Ok(())
    }
}

/// Runs a commit: validation, then every write judged and applied in one transaction, all or
/// nothing.
pub fn run_commit(
    store: &Store,
    database: &DatabaseId,
    request: CommitRequest,
    judge: &dyn WriteJudge,
) -> Result<CommitResponse, ServerError> {
    let transaction_id = request.transaction.clone();
    let writes = validate_commit(request, database)?;
    let recorded_reads = match &transaction_id {
        None => Vec::new(),
        Some(id) => {
            let owner = judge.transaction_owner();
            let closed = store
                .transactions()
                .close_for_commit(id, database, owner.as_ref())?;
            if closed.read_only && !writes.is_empty() {
                return Err(ServerError::InvalidArgument(
                    "Cannot modify entities in a read-only transaction.".into(),
                ));
            }
            closed.reads
        }
    };
    if writes.is_empty() && recorded_reads.is_empty() {
        // The emulator answers an empty commit with `{}`: no commit time, nothing written.
        return Ok(CommitResponse::default());
    }
    store.write_transaction(|transaction| {
        check_recorded_reads(transaction, &recorded_reads)?;
        if writes.is_empty() {
            return Ok(CommitResponse::default());
        }
        let write_results = apply_writes(transaction, &writes, judge)?;
        Ok(CommitResponse {
            write_results,
            commit_time: Some(transaction.commit_time()),
        })
    })
}

/// The query-string parameters of a `PATCH` or `DELETE` of one document.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DocumentWriteParameters {
    /// `updateMask.fieldPaths`: without it a `PATCH` replaces the document.
    pub update_mask: Option<Vec<String>>,
    /// `mask.fieldPaths`: which fields the reply shows.
    pub response_mask: Option<Vec<FieldPath>>,
    pub exists: Option<bool>,
    pub update_time: Option<Timestamp>,
}

impl DocumentWriteParameters {
    fn precondition(&self) -> Option<Precondition> {
        (self.exists.is_some() || self.update_time.is_some()).then_some(Precondition {
            exists: self.exists,
            update_time: self.update_time,
        })
    }
}

/// The one-write commit a `PATCH` stands for. A body naming another document than the URL is
/// refused (the emulator never answers such a request).
pub fn patch_as_commit(
    name: &DocumentName,
    body: Document,
    parameters: &DocumentWriteParameters,
) -> Result<CommitRequest, ServerError> {
    let url_name = name.to_string();
    if !body.name.is_empty() && body.name != url_name {
        return Err(ServerError::InvalidArgument(format!(
            "the body names document {:?} but the URL names {url_name}",
            body.name
        )));
    }
    Ok(CommitRequest {
        database: None,
        writes: vec![Write {
            operation: WriteOperation::Update(Document {
                name: url_name,
                fields: body.fields,
                create_time: None,
                update_time: None,
            }),
            update_mask: parameters
                .update_mask
                .clone()
                .map(|field_paths| counterbook_firestore_wire::DocumentMask { field_paths }),
            update_transforms: Vec::new(),
            current_document: parameters.precondition(),
        }],
        transaction: None,
    })
}

/// The one-write commit a `DELETE` stands for.
pub fn delete_as_commit(
    name: &DocumentName,
    parameters: &DocumentWriteParameters,
) -> CommitRequest {
    CommitRequest {
        database: None,
        writes: vec![Write {
            operation: WriteOperation::Delete(name.to_string()),
            update_mask: None,
            update_transforms: Vec::new(),
            current_document: parameters.precondition(),
        }],
        transaction: None,
    }
}

fn database_of(name: &DocumentName) -> DatabaseId {
    DatabaseId {
        project: name.project.clone(),
        database: name.database.clone(),
    }
}

/// `PATCH` of a document: writes it and answers the document as it now is, shown through
/// `mask.fieldPaths` if given.
pub fn run_patch(
    store: &Store,
    name: &DocumentName,
    body: Document,
    parameters: DocumentWriteParameters,
    judge: &dyn WriteJudge,
) -> Result<serde_json::Value, ServerError> {
    let request = patch_as_commit(name, body, &parameters)?;
    let writes = validate_commit(request, &database_of(name))?;
    let stored = store.write_transaction(|transaction| {
        apply_writes(transaction, &writes, judge)?;
        Ok(transaction.get_document(name)?)
    })?;
    let Some(mut stored) = stored else {
        return Err(ServerError::NotFound(format!(
            "Document \"{name}\" not found."
        )));
    };
    if let Some(paths) = &parameters.response_mask {
        stored.fields = crate::query::project_fields(&stored.fields, paths);
    }
    Ok(serde_json::to_value(stored.into_wire(name.to_string())).unwrap_or_default())
}

/// `DELETE` of a document; deleting a missing document succeeds unless a precondition says
/// otherwise.
pub fn run_delete(
    store: &Store,
    name: &DocumentName,
    parameters: DocumentWriteParameters,
    judge: &dyn WriteJudge,
) -> Result<(), ServerError> {
    let writes = validate_commit(delete_as_commit(name, &parameters), &database_of(name))?;
    store.write_transaction(|transaction| apply_writes(transaction, &writes, judge))?;
    Ok(())
}

/// One document's course through a commit: as stored before it, as the writes so far left
/// it, and whether one of them deleted it.
struct DocumentInCommit {
    stored: Option<StoredDocument>,
    current: Option<StoredDocument>,
    deleted_on_the_way: bool,
}

impl DocumentInCommit {
    /// The document the commit leaves, with the emulator's times: unchanged (old times kept)
    /// when it ends with the fields it had and was never deleted on the way; created anew (a
    /// new `createTime`) when it did not exist or was deleted on the way, even if it ends as
    /// it was; else updated at the commit time.
    fn outcome(&self, commit_time: Timestamp) -> DocumentChange {
        match (&self.stored, &self.current) {
            (_, None) if self.stored.is_none() => DocumentChange::Unchanged,
            (_, None) => DocumentChange::Delete,
            (Some(stored), Some(current))
                if !self.deleted_on_the_way && same_fields(&stored.fields, &current.fields) =>
            {
                DocumentChange::Unchanged
            }
            (stored, Some(current)) => DocumentChange::Put(StoredDocument {
                fields: current.fields.clone(),
                create_time: match stored {
                    Some(stored) if !self.deleted_on_the_way => stored.create_time,
                    _ => commit_time,
                },
                update_time: commit_time,
            }),
        }
    }
}

/// Applies validated writes in order inside an open write transaction.
///
/// Writes to one document apply in order on what the earlier ones left, but only the first
/// write's precondition is checked against the stored document (`validate_commit` refused
/// every later one that could not hold), and the document is stored once, as the last write
/// leaves it. Every write's result carries the update time of the document the commit leaves
/// (none if it leaves none), as the emulator answers: a commit that sets a document and then
/// deletes it reports no update time for either write.
///
/// Each write is judged by `judge` on the document before and after it (as the earlier writes
/// left it), then the whole outcome once, before anything is stored; an error (a failed precondition, a refused write)
/// fails the transaction, which then stores nothing.
pub fn apply_writes(
    transaction: &WriteTransaction<'_>,
    writes: &[ValidatedWrite],
    judge: &dyn WriteJudge,
) -> Result<Vec<WriteResult>, ServerError> {
    let commit_time = transaction.commit_time();
    let mut documents: BTreeMap<&DocumentName, DocumentInCommit> = BTreeMap::new();
    let mut write_results = Vec::with_capacity(writes.len());
    for write in writes {
        if write.precondition.is_some() {
            judge.judge_precondition(&write.document)?;
        }
        let first_write_to_it = !documents.contains_key(&write.document);
        if first_write_to_it {
            let stored = transaction.get_document(&write.document)?;
            documents.insert(
                &write.document,
                DocumentInCommit {
                    current: stored.clone(),
                    stored,
                    deleted_on_the_way: false,
                },
            );
        }
        let document = documents
            .get_mut(&write.document)
            .expect("every written document was entered just above");
        let write_as_applied = if first_write_to_it {
            std::borrow::Cow::Borrowed(write)
        } else {
            std::borrow::Cow::Owned(ValidatedWrite {
                precondition: None,
                ..write.clone()
            })
        };
        let applied = apply_write(document.current.as_ref(), &write_as_applied, commit_time)?;
        let after = match &applied.change {
            DocumentChange::Unchanged => document.current.as_ref(),
            DocumentChange::Put(put) => Some(put),
            DocumentChange::Delete => None,
        };
        judge.judge(&ProposedWrite {
            write,
            before: document.current.as_ref(),
            after,
        })?;
        match applied.change {
            DocumentChange::Unchanged => {}
            DocumentChange::Put(put) => document.current = Some(put),
            DocumentChange::Delete => {
                document.current = None;
                document.deleted_on_the_way = true;
            }
        }
        write_results.push(applied.result);
    }
    judge.judge_outcome(&CommitOutcome {
        transaction,
        documents: &documents,
    })?;
    let mut final_update_times = BTreeMap::new();
    for (name, document) in &documents {
        let update_time = match document.outcome(commit_time) {
            DocumentChange::Unchanged => document.stored.as_ref().map(|stored| stored.update_time),
            DocumentChange::Put(put) => {
                transaction.put_document(name, &put)?;
                Some(put.update_time)
            }
            DocumentChange::Delete => {
                transaction.delete_document(name)?;
                None
            }
        };
        final_update_times.insert(*name, update_time);
    }
    for (write, result) in writes.iter().zip(&mut write_results) {
        // A verify stands alone on its document and keeps what `apply_write` reported.
        if !matches!(write.action, WriteAction::Verify) {
            result.update_time = final_update_times[&write.document];
        }
    }
    Ok(write_results)
}

/// Fails with `ABORTED` if anything a transaction read is no longer what it saw.
fn check_recorded_reads(
    transaction: &WriteTransaction<'_>,
    reads: &[RecordedRead],
) -> Result<(), ServerError> {
    for read in reads {
        match read {
            RecordedRead::Document { name, update_time } => {
                let now = transaction
                    .get_document(name)?
                    .map(|document| document.update_time);
                if now != *update_time {
                    return Err(contention(&format!("document {name}")));
                }
            }
            RecordedRead::Query {
                parent,
                query,
                results,
            } => {
                let source: &dyn DocumentSource = transaction;
                let run = evaluate_query(source, parent, query)?;
                if result_versions(&run.documents) != *results {
                    return Err(contention("the result of a query"));
                }
            }
        }
    }
    Ok(())
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

    fn check_extreme(current: Option<Value>, operand: Value, wins: Ordering, expected: Value) {
        let result = numeric_extreme(current.as_ref(), &operand, wins);
        match (&result, &expected) {
            (Value::Double(a), Value::Double(b)) if a.is_nan() && b.is_nan() => {}
            _ => assert_eq!(result, expected, "{current:?} vs {operand:?}"),
        }
    }

    #[test]
    fn maximum_and_minimum_follow_the_emulator() {
        use Value::{Double, Integer};
        let (max, min) = (Ordering::Greater, Ordering::Less);
        check_extreme(Some(Integer(5)), Double(5.0), max, Integer(5));
        check_extreme(Some(Integer(5)), Double(6.5), max, Double(6.5));
        check_extreme(Some(Double(2.5)), Integer(2), max, Double(2.5));
        check_extreme(Some(Double(2.5)), Integer(2), min, Integer(2));
        check_extreme(Some(Value::String("x".into())), Integer(3), max, Integer(3));
        check_extreme(None, Integer(3), min, Integer(3));
        check_extreme(Some(Double(f64::NAN)), Integer(3), max, Double(f64::NAN));
        check_extreme(Some(Double(f64::NAN)), Integer(3), min, Double(f64::NAN));
        check_extreme(Some(Integer(5)), Double(f64::NAN), max, Double(f64::NAN));
        check_extreme(Some(Integer(5)), Double(f64::NAN), min, Double(f64::NAN));
    }

    #[test]
    fn array_transforms_compare_numbers_by_value_and_report_null() {
        let current = stored(json!({
            "arr": {"arrayValue": {"values": [{"integerValue": "1"}, {"doubleValue": 1.0}, {"integerValue": "2"}, {"stringValue": "a"}, {"integerValue": "1"}]}},
            "s": {"stringValue": "x"}
        }));
        let applied = apply(
            Some(&current),
            json!({
                "update": {"name": DOC},
                "updateMask": {},
                "updateTransforms": [
                    {"fieldPath": "arr", "appendMissingElements": {"values": [{"integerValue": "2"}, {"integerValue": "3"}, {"integerValue": "3"}, {"doubleValue": 2.0}]}},
                    {"fieldPath": "arr", "removeAllFromArray": {"values": [{"doubleValue": 1.0}]}},
                    {"fieldPath": "s", "appendMissingElements": {"values": [{"integerValue": "2"}]}},
                    {"fieldPath": "missing", "removeAllFromArray": {"values": [{"integerValue": "2"}]}}
                ]
            }),
        )
        .unwrap();
        assert_eq!(applied.result.transform_results, vec![Value::Null; 4]);
        assert_eq!(
            put_fields(applied),
            fields(json!({
                "arr": {"arrayValue": {"values": [{"integerValue": "2"}, {"stringValue": "a"}, {"integerValue": "3"}]}},
                "s": {"arrayValue": {"values": [{"integerValue": "2"}]}},
                "missing": {"arrayValue": {}}
            }))
        );
    }

    #[test]
    fn the_legacy_transform_write_creates_or_updates_with_only_its_transforms() {
        let applied = apply(
            None,
            json!({"transform": {"document": DOC, "fieldTransforms": [
                {"fieldPath": "n", "increment": {"integerValue": "3"}}]}}),
        )
        .unwrap();
        assert_eq!(applied.result.transform_results, vec![Value::Integer(3)]);
        assert_eq!(
            put_fields(applied),
            fields(json!({"n": {"integerValue": "3"}}))
        );
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
            json!({"update": {"name": DOC}, "updateTransforms": [{"fieldPath": "a", "maximum": {"stringValue": "z"}}]}),
            Code::InvalidArgument,
            "int64 or double",
        );
        check_rejection(
            json!({"update": {"name": DOC}, "updateMask": {"fieldPaths": ["__k__"]}}),
            Code::InvalidArgument,
            "reserved name",
        );
        check_rejection(
            json!({"transform": {"document": DOC}}),
            Code::InvalidArgument,
            "must not be empty",
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

    /// Records every write it is asked about and refuses the documents named in `refuse`.
    #[derive(Default)]
    struct RecordingJudge {
        refuse: Vec<String>,
        judged: std::sync::Mutex<Vec<(String, Option<Timestamp>)>>,
    }

    impl WriteJudge for RecordingJudge {
        fn judge_precondition(&self, _document: &DocumentName) -> Result<(), ServerError> {
            Ok(())
        }

        fn judge(&self, proposed: &ProposedWrite<'_>) -> Result<(), ServerError> {
            let name = proposed.write.document.to_string();
            let after_time = proposed.after.map(|document| document.update_time);
            self.judged.lock().unwrap().push((name.clone(), after_time));
            if self.refuse.contains(&name) {
                return Err(ServerError::PermissionDenied(format!("refused {name}")));
            }
            Ok(())
        }
    }

    fn commit_of(writes: serde_json::Value) -> CommitRequest {
        serde_json::from_value(json!({ "writes": writes })).unwrap()
    }

    #[test]
    fn every_write_is_judged_at_the_commit_time_before_it_is_stored_and_a_refusal_stores_nothing() {
        // Guards issue 8's critical breach: no write is stored without the judge having seen
        // it as it is stored (same transaction, same commit time), whatever its precondition.
        let directory = tempfile::tempdir().unwrap();
        let store = Store::open(directory.path()).unwrap();
        let other = "projects/p/databases/(default)/documents/shops/t/products/b";
        let judge = RecordingJudge::default();
        let response = run_commit(
            &store,
            &database(),
            commit_of(json!([
                {"update": {"name": DOC, "fields": {"n": {"integerValue": "1"}}}},
                {"update": {"name": other, "fields": {}}}
            ])),
            &judge,
        )
        .unwrap();
        let commit_time = response.commit_time.unwrap();
        assert_eq!(
            *judge.judged.lock().unwrap(),
            [
                (DOC.to_owned(), Some(commit_time)),
                (other.to_owned(), Some(commit_time))
            ]
        );

        // A refused second write fails the commit, and the first write is not kept.
        let refusing = RecordingJudge {
            refuse: vec![other.to_owned()],
            ..RecordingJudge::default()
        };
        let error = run_commit(
            &store,
            &database(),
            commit_of(json!([
                {"update": {"name": DOC, "fields": {"n": {"integerValue": "2"}}}},
                {"delete": other}
            ])),
            &refusing,
        )
        .unwrap_err();
        assert_eq!(
            error.code(),
            counterbook_firestore_wire::Code::PermissionDenied
        );
        assert_eq!(refusing.judged.lock().unwrap().len(), 2);
        let kept = store
            .read_snapshot(
                |snapshot| Ok(snapshot.get_document(&DocumentName::parse(DOC).unwrap())?),
            )
            .unwrap()
            .unwrap();
        assert_eq!(kept.fields, fields(json!({"n": {"integerValue": "1"}})));
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
