//! An in-memory model of the server semantics the engine relies on: atomic commits, the
//! `exists` and `updateTime` preconditions, strictly increasing commit times, `REQUEST_TIME`
//! either at the commit time (Cloud Firestore, counterbook-server) or up to a bound before it
//! (Google's emulator stamps it from a clock read before the commit becomes visible, so a
//! document can appear stamped earlier than one already visible), `increment` transforms,
//! document reads, and `:runQuery` with the pull query's filter, order, cursor and limit and
//! the reply's `readTime`. It also logs every applied commit (its markers and its increments),
//! so the simulation can prove that no unit was applied twice and no movement was lost.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use counterbook_firestore_wire::{
    Code, CommitRequest, CommitResponse, Document, FieldFilter, FieldOperator, Filter, ServerValue,
    StructuredQuery, Timestamp, TransformKind, Value, WriteOperation, WriteResult,
};

use crate::outbox::PushFailure;
use crate::unit::documents_root;

/// A document as the server stores it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredDocument {
    pub fields: BTreeMap<String, Value>,
    pub create_time: Timestamp,
    pub update_time: Timestamp,
}

/// What one applied commit did, for the checks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AppliedCommit {
    /// Units whose marker this commit created.
    pub markers: Vec<String>,
    /// Sum of the increments it applied, by `(document path, field)`.
    pub increments: BTreeMap<(String, String), i64>,
}

/// The server. Paths are relative to the database root.
#[derive(Clone, Debug)]
pub struct ServerModel {
    pub documents: BTreeMap<String, StoredDocument>,
    pub log: Vec<AppliedCommit>,
    root: String,
    last_commit_micros: i64,
}

fn refusal(code: Code, message: &str) -> PushFailure {
    PushFailure::Server {
        http_status: code.http_status(),
        code,
        message: message.to_owned(),
        retry_after_millis: None,
    }
}

fn contains_double(value: &Value) -> bool {
    match value {
        Value::Double(_) => true,
        Value::Array(values) => values.iter().any(contains_double),
        Value::Map(fields) => fields.values().any(contains_double),
        _ => false,
    }
}

impl ServerModel {
    pub fn new(project: &str) -> Self {
        ServerModel {
            documents: BTreeMap::new(),
            log: Vec::new(),
            root: documents_root(project, "(default)"),
            last_commit_micros: 0,
        }
    }

    fn relative<'a>(&self, name: &'a str) -> Result<&'a str, PushFailure> {
        name.strip_prefix(&self.root)
            .and_then(|rest| rest.strip_prefix('/'))
            .ok_or_else(|| refusal(Code::InvalidArgument, "document outside the database"))
    }

    pub fn full_name(&self, path: &str) -> String {
        format!("{}/{path}", self.root)
    }

    /// The document at `path`, as a read returns it.
    pub fn get(&self, path: &str) -> Option<Document> {
        self.documents.get(path).map(|stored| Document {
            name: self.full_name(path),
            fields: stored.fields.clone(),
            create_time: Some(stored.create_time),
            update_time: Some(stored.update_time),
        })
    }

    /// Applies every write of `request` or none. `now_millis` is the server's clock; commit times
    /// strictly increase even if it does not. `REQUEST_TIME` is the commit time.
    pub fn commit(
        &mut self,
        request: &CommitRequest,
        now_millis: i64,
    ) -> Result<CommitResponse, PushFailure> {
        self.commit_stamped_early(request, now_millis, 0)
    }

    /// [`ServerModel::commit`] on a backend that stamps `REQUEST_TIME` `request_time_lag_micros`
    /// before the commit time, as Google's emulator does: the commit is visible from its commit
    /// time on, but its `updatedAt` may be earlier than that of commits already visible.
    pub fn commit_stamped_early(
        &mut self,
        request: &CommitRequest,
        now_millis: i64,
        request_time_lag_micros: i64,
    ) -> Result<CommitResponse, PushFailure> {
        let commit_micros = (now_millis * 1000).max(self.last_commit_micros + 1);
        let commit_time = Timestamp::from_unix_micros(commit_micros);
        let request_time =
            Timestamp::from_unix_micros(commit_micros - request_time_lag_micros.max(0));
        let mut staged = self.documents.clone();
        let mut applied = AppliedCommit::default();
        let mut results = Vec::new();
        for write in &request.writes {
            let WriteOperation::Update(document) = &write.operation else {
                return Err(refusal(Code::Unimplemented, "only updates are modelled"));
            };
            let path = self.relative(&document.name)?.to_owned();
            // The simulation's poison: a number that is not an integer is refused, as the
            // app's data rules would.
            if document.fields.values().any(contains_double) {
                return Err(refusal(
                    Code::InvalidArgument,
                    "amounts must be integers (minor units)",
                ));
            }
            let existing = staged.get(&path);
            if let Some(precondition) = &write.current_document {
                if let Some(must_exist) = precondition.exists {
                    match (must_exist, existing.is_some()) {
                        (false, true) => {
                            return Err(refusal(Code::AlreadyExists, "document already exists"))
                        }
                        (true, false) => return Err(refusal(Code::NotFound, "no such document")),
                        _ => {}
                    }
                }
                if let Some(required) = precondition.update_time {
                    if existing.map(|stored| stored.update_time) != Some(required) {
                        return Err(refusal(
                            Code::FailedPrecondition,
                            "the stored version does not match the required base version",
                        ));
                    }
                }
            }
            let mut fields = match (&write.update_mask, existing) {
                (None, _) => document.fields.clone(),
                (Some(mask), Some(stored)) => {
                    let mut fields = stored.fields.clone();
                    for field_path in &mask.field_paths {
                        match document.fields.get(field_path) {
                            Some(value) => fields.insert(field_path.clone(), value.clone()),
                            None => fields.remove(field_path),
                        };
                    }
                    fields
                }
                (Some(mask), None) => mask
                    .field_paths
                    .iter()
                    .filter_map(|p| Some((p.clone(), document.fields.get(p)?.clone())))
                    .collect(),
            };
            let mut transform_results = Vec::new();
            for transform in &write.update_transforms {
                let result = match &transform.kind {
                    TransformKind::Increment(Value::Integer(delta)) => {
                        let current = fields
                            .get(&transform.field_path)
                            .and_then(Value::as_integer)
                            .unwrap_or(0);
                        *applied
                            .increments
                            .entry((path.clone(), transform.field_path.clone()))
                            .or_insert(0) += delta;
                        Value::Integer(current + delta)
                    }
                    TransformKind::SetToServerValue(ServerValue::RequestTime) => {
                        Value::Timestamp(request_time)
                    }
                    other => {
                        return Err(refusal(
                            Code::Unimplemented,
                            &format!("transform {other:?} is not modelled"),
                        ))
                    }
                };
                fields.insert(transform.field_path.clone(), result.clone());
                transform_results.push(result);
            }
            if write.current_document.as_ref().and_then(|p| p.exists) == Some(false)
                && path.contains("/ops/")
            {
                let unit_id = path.rsplit('/').next().unwrap_or_default().to_owned();
                applied.markers.push(unit_id);
            }
            let create_time = existing.map_or(commit_time, |stored| stored.create_time);
            staged.insert(
                path,
                StoredDocument {
                    fields,
                    create_time,
                    update_time: commit_time,
                },
            );
            results.push(WriteResult {
                update_time: Some(commit_time),
                transform_results,
            });
        }
        self.documents = staged;
        self.last_commit_micros = commit_micros;
        self.log.push(applied);
        Ok(CommitResponse {
            write_results: results,
            commit_time: Some(commit_time),
        })
    }

    /// The `readTime` of a read at `now_millis`: every commit applied so far is visible at it.
    pub fn read_time(&self, now_millis: i64) -> Timestamp {
        Timestamp::from_unix_micros((now_millis * 1000).max(self.last_commit_micros))
    }

    /// Runs a pull query on the collection `collection_id` directly under `parent`.
    pub fn run_query(
        &self,
        parent: &str,
        query: &StructuredQuery,
    ) -> Result<Vec<Document>, PushFailure> {
        let [selector] = query.from.as_slice() else {
            return Err(refusal(Code::InvalidArgument, "one collection expected"));
        };
        let prefix = format!("{parent}/{}/", selector.collection_id);
        let mut matching: Vec<Document> = self
            .documents
            .keys()
            .filter(|path| {
                path.strip_prefix(&prefix)
                    .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
            })
            .filter_map(|path| self.get(path))
            .collect();
        if let Some(filter) = &query.filter {
            let Filter::FieldFilter(field_filter) = filter else {
                return Err(refusal(
                    Code::Unimplemented,
                    "only field filters are modelled",
                ));
            };
            matching.retain(|document| matches_filter(document, field_filter));
        }
        let orders: Vec<&str> = query
            .order_by
            .iter()
            .map(|order| order.field.field_path.as_str())
            .collect();
        // Ordering by a field leaves out documents without it, as Firestore does.
        matching.retain(|document| {
            orders
                .iter()
                .all(|field| *field == "__name__" || document.fields.contains_key(*field))
        });
        let key = |document: &Document| -> Vec<Value> {
            orders
                .iter()
                .map(|field| match *field {
                    "__name__" => Value::Reference(document.name.clone()),
                    other => document.fields[other].clone(),
                })
                .collect()
        };
        let compare = |left: &[Value], right: &[Value]| -> Ordering {
            left.iter()
                .zip(right)
                .map(|(a, b)| a.firestore_cmp(b))
                .find(|order| *order != Ordering::Equal)
                .unwrap_or(Ordering::Equal)
        };
        matching.sort_by(|a, b| compare(&key(a), &key(b)));
        if let Some(cursor) = &query.start_at {
            matching.retain(|document| {
                let order = compare(&key(document), &cursor.values);
                if cursor.before {
                    order != Ordering::Less
                } else {
                    order == Ordering::Greater
                }
            });
        }
        if let Some(limit) = query.limit {
            matching.truncate(limit.max(0) as usize);
        }
        Ok(matching)
    }
}

fn matches_filter(document: &Document, filter: &FieldFilter) -> bool {
    let Some(value) = document.fields.get(&filter.field.field_path) else {
        return false;
    };
    if value.type_rank() != filter.value.type_rank() {
        return false;
    }
    let order = value.firestore_cmp(&filter.value);
    match filter.op {
        FieldOperator::LessThan => order == Ordering::Less,
        FieldOperator::LessThanOrEqual => order != Ordering::Greater,
        FieldOperator::GreaterThan => order == Ordering::Greater,
        FieldOperator::GreaterThanOrEqual => order != Ordering::Less,
        FieldOperator::Equal => order == Ordering::Equal,
        FieldOperator::NotEqual => order != Ordering::Equal,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pull::{checkpoint_after, pull_query};
    use crate::unit::{commit_request_for_unit, DocumentWrite, Unit};

    fn unit(id: &str, writes: Vec<DocumentWrite>) -> Unit {
        Unit {
            id: id.into(),
            label: "".into(),
            writes,
            created_at_millis: 0,
            sender: None,
        }
    }

    fn commit(server: &mut ServerModel, unit: &Unit, now: i64) -> Result<(), PushFailure> {
        let request = commit_request_for_unit("p", "(default)", "s", "d", unit, now);
        server.commit(&request, now).map(|_| ())
    }

    #[test]
    fn commits_are_atomic_and_markers_apply_once() {
        let mut server = ServerModel::new("p");
        let create = unit(
            "u1",
            vec![DocumentWrite::create(
                "s/products/a",
                BTreeMap::from([("stock".to_string(), Value::Integer(5))]),
            )],
        );
        commit(&mut server, &create, 10).unwrap();
        let sale = unit(
            "u2",
            vec![DocumentWrite::increment(
                "s/products/a",
                BTreeMap::from([("stock".to_string(), -2)]),
            )],
        );
        commit(&mut server, &sale, 10).unwrap();
        let failure = commit(&mut server, &sale, 11).unwrap_err();
        assert!(matches!(
            failure,
            PushFailure::Server {
                code: Code::AlreadyExists,
                ..
            }
        ));
        assert_eq!(
            server.documents["s/products/a"].fields["stock"],
            Value::Integer(3)
        );
        assert_eq!(server.log.len(), 2);
        // Same wall clock, yet strictly increasing commit times.
        assert!(server.log.len() == 2 && server.last_commit_micros == 10_001);
    }

    #[test]
    fn a_stale_update_time_fails_the_whole_commit() {
        let mut server = ServerModel::new("p");
        let create = unit(
            "u1",
            vec![DocumentWrite::create(
                "s/products/a",
                BTreeMap::from([("price".to_string(), Value::Integer(5))]),
            )],
        );
        commit(&mut server, &create, 1).unwrap();
        let stale = crate::unit::BaseVersion {
            update_time: Timestamp::from_unix_micros(1),
            fields: BTreeMap::new(),
        };
        let edit = unit(
            "u2",
            vec![DocumentWrite::patch(
                "s/products/a",
                BTreeMap::from([("price".to_string(), Value::Integer(6))]),
                Some(stale),
            )],
        );
        let failure = commit(&mut server, &edit, 2).unwrap_err();
        assert!(matches!(
            failure,
            PushFailure::Server {
                code: Code::FailedPrecondition,
                ..
            }
        ));
        assert!(
            !server.documents.contains_key("s/ops/u2"),
            "nothing applied"
        );
    }

    #[test]
    fn the_pull_query_pages_through_in_updated_at_then_name_order() {
        let mut server = ServerModel::new("p");
        for (index, name) in ["c", "a", "b"].iter().enumerate() {
            let create = unit(
                &format!("u{index}"),
                vec![DocumentWrite::create(
                    format!("s/products/{name}"),
                    BTreeMap::new(),
                )],
            );
            commit(&mut server, &create, 5).unwrap();
        }
        let both = unit(
            "u9",
            vec![
                DocumentWrite::create("s/products/e", BTreeMap::new()),
                DocumentWrite::create("s/products/d", BTreeMap::new()),
            ],
        );
        commit(&mut server, &both, 5).unwrap();
        let mut seen = Vec::new();
        let mut checkpoint = None;
        loop {
            let page = server
                .run_query("s", &pull_query("products", checkpoint.as_ref(), 2))
                .unwrap();
            if page.is_empty() {
                break;
            }
            checkpoint = checkpoint_after(&page);
            seen.extend(
                page.iter()
                    .map(|d| d.name.rsplit('/').next().unwrap().to_owned()),
            );
        }
        assert_eq!(seen, ["c", "a", "b", "d", "e"]);
    }
}
