//! Firestore's Listen stream, at `/google.firestore.v1.Firestore/Listen/channel`: what a
//! WebChannel session (`webchannel`, the transport this module is a `ChannelStream` of) says to
//! its client.
//!
//! Each session has one task (`run_session`) that owns its targets and a subscription to the
//! store's commit notifications (`Store::subscribe_to_commits`). Requests (`ListenRequest`
//! `addTarget` / `removeTarget`) and commits are handled one at a time, in a *round*: one read
//! snapshot at read time `R`, every commit notification up to `R` applied to every target, any
//! new target loaded at `R`, then a global `NO_CHANGE` target change with `readTime` `R` and a
//! resume token for `R`, which tells the client that everything sent so far is one consistent
//! snapshot. That claim holds because the store sends each notification under its writer lock:
//! when the snapshot's read time is fixed, every commit at or before it has been announced.
//!
//! What is sent, against the emulator's answers (`webchannel-capture.md`):
//! - a new target: `ADD`, a `documentChange` per matching document (a `documents` target: a
//!   `documentDelete` per missing document, as the emulator sends), `CURRENT` with a resume
//!   token, then the global `NO_CHANGE`; an invalid or refused target: `ADD` then `REMOVE`
//!   with a `cause` (`google.rpc.Status`), as the emulator answers an invalid query;
//! - later commits, **incrementally** (the emulator instead sends `RESET`, the whole result set
//!   and `CURRENT` after every change; both are valid watch protocol): a `documentChange` for a
//!   document that now matches or changed, a `documentDelete` for a deleted one, a
//!   `documentChange` with `removedTargetIds` for one that changed and stopped matching, a
//!   `documentRemove` for one a `limit` pushed out. Queries without `limit`/`offset` look only
//!   at the documents a commit wrote; queries with them run again in full when a commit writes
//!   into their collection;
//! - a target added with a resume token `T` (this server's tokens are the read time, base64):
//!   only the matching documents updated after `T`, then an existence `filter` with the current
//!   count, so that a client that missed a deletion or a document leaving the query sees the
//!   mismatch and listens again from scratch (the SDK does this). Deletions are not kept, which
//!   is why the count is needed. Where the count cannot tell (a `limit` query), or the token is
//!   not one of ours, the answer is the emulator's: `RESET` and the whole result set;
//! - `removeTarget`: `REMOVE`.
//!
//! Access: in `--dev` none is checked. Otherwise the opening request's `headers` field must
//! carry `Authorization: Bearer <idToken>` (the SDK puts it there); without a valid token the
//! opening request is answered 401 `UNAUTHENTICATED` and no session is made, another project or
//! database 403 `PERMISSION_DENIED`. Each target is judged like the equivalent REST read
//! (`auth::policy`: a query's parent must lie in the user's shop, no collection groups; each
//! named document must), and a refused target is removed with a `PERMISSION_DENIED` cause.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use counterbook_firestore_wire::listen::{
    DocumentChange, DocumentDelete, DocumentRemove, ExistenceFilter, ListenRequest, ListenResponse,
    RpcStatus, Target, TargetChange, TargetChangeType, TargetKind,
};
use counterbook_firestore_wire::{Code, Document, DocumentName, Timestamp};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use crate::auth::policy::{self, Principal};
use crate::error::ServerError;
use crate::opaque::{decode_base64, encode_base64};
use crate::query::{prepare_query, PreparedQuery};
use crate::reads::evaluate_query;
use crate::store::{CommittedWrites, DatabaseId, NamedDocument, ReadSnapshot, Store};
use crate::webchannel::{ChannelStream, OpenedSession, Outbox};
use crate::AppState;

/// Where the Firebase JS SDK opens Listen channels.
pub const LISTEN_CHANNEL_PATH: &str = "/google.firestore.v1.Firestore/Listen/channel";

/// Targets one session may hold at once (the app holds two; the SDK a few).
pub const MAX_TARGETS_PER_SESSION: usize = 100;

/// How often a session's task checks that its channel is still alive and its user enabled.
const EXPIRY_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// The version byte in front of this server's resume tokens.
const RESUME_TOKEN_VERSION: u8 = 1;

/// A resume token for read time `time`: opaque to clients.
pub fn resume_token(time: Timestamp) -> String {
    let mut bytes = vec![RESUME_TOKEN_VERSION];
    bytes.extend_from_slice(&time.to_unix_micros().to_be_bytes());
    encode_base64(&bytes)
}

/// The read time of one of this server's resume tokens; `None` for anything else.
pub fn resume_token_time(token: &str) -> Option<Timestamp> {
    let bytes = decode_base64(token)?;
    let (&version, micros) = bytes.split_first()?;
    let micros: [u8; 8] = micros.try_into().ok()?;
    (version == RESUME_TOKEN_VERSION)
        .then(|| Timestamp::from_unix_micros(i64::from_be_bytes(micros)))
}

/// The Listen stream as a WebChannel stream: one task per session (`run_session`).
pub struct ListenStream;

impl ChannelStream for ListenStream {
    type Request = ListenRequest;
    const NAME: &'static str = "Listen";

    fn parse_request(text: &str) -> Result<ListenRequest, ServerError> {
        serde_json::from_str(text).map_err(ServerError::MalformedBody)
    }

    fn start(state: AppState, session: OpenedSession<ListenRequest>) {
        tokio::spawn(run_session(state, session));
    }
}

/// The route of the Listen channel.
pub fn router() -> axum::Router<AppState> {
    crate::webchannel::router::<ListenStream>(LISTEN_CHANNEL_PATH)
}

async fn run_session(state: AppState, session: OpenedSession<ListenRequest>) {
    let OpenedSession {
        id: session_id,
        database,
        outbox,
        mut requests,
        principal,
        headers: _,
    } = session;
    // Subscribed before the first snapshot, so no commit after it can be missed.
    let mut commits = state.subscribe_to_commits();
    let mut listen = ListenState {
        database,
        principal,
        targets: BTreeMap::new(),
        pending: Vec::new(),
        resync_all: false,
    };
    let mut expiry_check = tokio::time::interval(EXPIRY_CHECK_INTERVAL);
    let limits = state.channels().limits().clone();
    loop {
        let add = tokio::select! {
            request = requests.recv() => {
                let Some(request) = request else { break };
                match listen.handle_request(request) {
                    Ok(RequestOutcome::Respond(responses)) => {
                        push_all(&outbox, &responses);
                        continue;
                    }
                    Ok(RequestOutcome::AddTarget(target)) => Some(*target),
                    Err(error) => {
                        outbox.push_error_and_close(&error);
                        break;
                    }
                }
            }
            received = commits.recv() => {
                match received {
                    Ok(committed) => listen.pending.push(committed),
                    Err(RecvError::Lagged(_)) => listen.resync_all = true,
                    Err(RecvError::Closed) => break,
                }
                if !listen.needs_round() {
                    listen.pending.clear();
                    continue;
                }
                None
            }
            _ = expiry_check.tick() => {
                // A user disabled since the session opened loses it within seconds.
                if let (Some(auth), Some(principal)) = (state.auth(), &listen.principal) {
                    if let Err(error) = auth.check_account_enabled(principal) {
                        if !outbox.is_closed() {
                            outbox.push_error_and_close(&error);
                        }
                    }
                }
                if outbox.is_too_old(&limits) && !outbox.is_closed() {
                    outbox.push_error_and_close(&ServerError::Unavailable(
                        "the listen channel reached its maximum age; reconnect".into(),
                    ));
                }
                if outbox.is_expired(&limits) {
                    break;
                }
                continue;
            }
        };
        let round = state
            .run_blocking(move |store| {
                let responses = listen.round(store, &mut commits, add);
                Ok((listen, commits, responses))
            })
            .await;
        match round {
            Ok((returned_listen, returned_commits, Ok(responses))) => {
                listen = returned_listen;
                commits = returned_commits;
                push_all(&outbox, &responses);
            }
            Ok((_, _, Err(error))) | Err(error) => {
                outbox.push_error_and_close(&error);
                break;
            }
        }
    }
    if outbox.is_expired(&limits) {
        state.channels().remove(&session_id);
    }
}

fn push_all(outbox: &Outbox, responses: &[ListenResponse]) {
    for response in responses {
        outbox.push(&serde_json::to_value(response).unwrap_or_default());
    }
}

enum RequestOutcome {
    /// Answered at once (a removal).
    Respond(Vec<ListenResponse>),
    /// Needs a round.
    AddTarget(Box<Target>),
}

/// One session's targets and the commits not yet applied to them.
struct ListenState {
    database: DatabaseId,
    principal: Option<Principal>,
    targets: BTreeMap<i32, WatchedTarget>,
    /// Commit notifications received and not yet applied (some may be later than the last
    /// snapshot).
    pending: Vec<Arc<CommittedWrites>>,
    /// Notifications were lost (the receiver lagged): every target is read again in full.
    resync_all: bool,
}

/// A target and what its client has been told about it.
struct WatchedTarget {
    id: i32,
    watched: Watched,
    /// The documents the client has been told match, with their update times.
    sent: HashMap<String, Timestamp>,
}

enum Watched {
    Query {
        parent: DocumentName,
        query: Box<PreparedQuery>,
        /// With `limit` or `offset`, a written document can push others in or out, so the
        /// query runs again in full.
        run_in_full: bool,
    },
    Documents {
        names: Vec<DocumentName>,
    },
}

impl Watched {
    /// Whether a write of `name` can change this target's results.
    fn is_affected_by(&self, name: &DocumentName) -> bool {
        match self {
            Watched::Query { parent, query, .. } => {
                if name.project != parent.project || name.database != parent.database {
                    return false;
                }
                let depth = parent.segments.len();
                let segments = &name.segments;
                segments.len() >= depth + 2
                    && segments.starts_with(&parent.segments)
                    && segments[segments.len() - 2] == query.collection_id
                    && (query.all_descendants || segments.len() == depth + 2)
            }
            Watched::Documents { names } => names.contains(name),
        }
    }
}

impl ListenState {
    fn handle_request(&mut self, request: ListenRequest) -> Result<RequestOutcome, ServerError> {
        if let Some(target) = request.add_target {
            if self.targets.contains_key(&target.target_id) {
                return Err(ServerError::InvalidArgument(format!(
                    "target id {} is already in use on this stream",
                    target.target_id
                )));
            }
            return Ok(RequestOutcome::AddTarget(Box::new(target)));
        }
        if let Some(target_id) = request.remove_target {
            self.targets.remove(&target_id);
            return Ok(RequestOutcome::Respond(vec![target_change(
                TargetChangeType::Remove,
                target_id,
                None,
            )]));
        }
        Ok(RequestOutcome::Respond(Vec::new()))
    }

    /// Whether a pending commit touches a target, or a resync is due.
    fn needs_round(&self) -> bool {
        self.resync_all
            || self.pending.iter().any(|committed| {
                committed.names.iter().any(|name| {
                    self.targets
                        .values()
                        .any(|target| target.watched.is_affected_by(name))
                })
            })
    }

    /// One snapshot: pending commits up to its read time applied to every target, then `add`
    /// loaded; ends with the global consistent-snapshot marker when anything was said.
    fn round(
        &mut self,
        store: &Store,
        commits: &mut broadcast::Receiver<Arc<CommittedWrites>>,
        add: Option<Target>,
    ) -> Result<Vec<ListenResponse>, ServerError> {
        store.read_snapshot(|snapshot| {
            let read_time = snapshot.read_time();
            loop {
                match commits.try_recv() {
                    Ok(committed) => self.pending.push(committed),
                    Err(TryRecvError::Lagged(_)) => self.resync_all = true,
                    Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                }
            }
            let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
                .into_iter()
                .partition(|committed| committed.commit_time <= read_time);
            self.pending = later;
            let mut written: Vec<&DocumentName> = Vec::new();
            for committed in &due {
                for name in &committed.names {
                    if !written.contains(&name) {
                        written.push(name);
                    }
                }
            }
            let resync_all = std::mem::take(&mut self.resync_all);
            let mut responses = Vec::new();
            for target in self.targets.values_mut() {
                let affecting: Vec<&DocumentName> = written
                    .iter()
                    .copied()
                    .filter(|name| target.watched.is_affected_by(name))
                    .collect();
                let run_in_full = matches!(
                    target.watched,
                    Watched::Query {
                        run_in_full: true,
                        ..
                    }
                );
                if resync_all || (run_in_full && !affecting.is_empty()) {
                    target.resync(snapshot, read_time, &mut responses)?;
                } else {
                    for name in affecting {
                        target.apply_write(snapshot, name, read_time, &mut responses)?;
                    }
                }
            }
            if let Some(target) = add {
                self.add_target(snapshot, read_time, target, &mut responses)?;
            }
            if !responses.is_empty() {
                responses.push(ListenResponse::TargetChange(TargetChange {
                    resume_token: Some(resume_token(read_time)),
                    read_time: Some(read_time),
                    ..TargetChange::default()
                }));
            }
            Ok(responses)
        })
    }

    /// What a new target watches, if it is valid and allowed.
    fn prepare(&self, target: &Target) -> Result<Watched, RpcStatus> {
        let in_database = |name: &DocumentName| {
            name.project == self.database.project && name.database == self.database.database
        };
        let invalid = |message: String| RpcStatus::new(Code::InvalidArgument, message);
        let denied =
            |denial: policy::Denial| RpcStatus::new(Code::PermissionDenied, denial.to_string());
        match &target.kind {
            TargetKind::Query(query_target) => {
                let parent = DocumentName::parse(&query_target.parent)
                    .map_err(|error| invalid(format!("invalid parent: {error}")))?;
                if !in_database(&parent) {
                    return Err(invalid(format!(
                        "the parent {parent} is not in this channel's database"
                    )));
                }
                if !(parent.segments.is_empty() || parent.is_document()) {
                    return Err(invalid(format!(
                        "the parent of a query must be a document or the database root, and {parent} is a collection"
                    )));
                }
                let structured = &query_target.structured_query;
                let run_in_full = structured.limit.is_some()
                    || structured.offset.is_some_and(|offset| offset != 0);
                let query = prepare_query(structured.clone())
                    .map_err(|error| RpcStatus::new(error.code(), error.to_string()))?;
                if let Some(principal) = &self.principal {
                    policy::check_query(principal, &parent, query.all_descendants)
                        .map_err(denied)?;
                }
                Ok(Watched::Query {
                    parent,
                    query: Box::new(query),
                    run_in_full,
                })
            }
            TargetKind::Documents(documents) => {
                let mut names = Vec::new();
                for text in &documents.documents {
                    let name = DocumentName::parse(text)
                        .map_err(|error| invalid(format!("invalid document name: {error}")))?;
                    if !name.is_document() || !in_database(&name) {
                        return Err(invalid(format!(
                            "{text} is not a document of this channel's database"
                        )));
                    }
                    if let Some(principal) = &self.principal {
                        policy::check_read(principal, &name).map_err(denied)?;
                    }
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
                Ok(Watched::Documents { names })
            }
        }
    }

    fn add_target(
        &mut self,
        snapshot: &ReadSnapshot<'_>,
        read_time: Timestamp,
        target: Target,
        responses: &mut Vec<ListenResponse>,
    ) -> Result<(), ServerError> {
        let id = target.target_id;
        responses.push(target_change(TargetChangeType::Add, id, None));
        let watched = if self.targets.len() >= MAX_TARGETS_PER_SESSION {
            Err(RpcStatus::new(
                Code::ResourceExhausted,
                format!("at most {MAX_TARGETS_PER_SESSION} targets per listen stream"),
            ))
        } else {
            self.prepare(&target)
        };
        let watched = match watched {
            Ok(watched) => watched,
            Err(cause) => {
                responses.push(target_change(TargetChangeType::Remove, id, Some(cause)));
                return Ok(());
            }
        };
        let resumed_from = target
            .resume_token
            .as_deref()
            .and_then(resume_token_time)
            .filter(|time| *time <= read_time);
        let mut watched_target = WatchedTarget {
            id,
            watched,
            sent: HashMap::new(),
        };
        match &watched_target.watched {
            Watched::Query {
                parent,
                query,
                run_in_full,
            } => {
                let run = evaluate_query(snapshot, parent, query)?;
                let count = run.documents.len();
                let since = resumed_from.filter(|_| !run_in_full);
                if since.is_none() && target.resume_token.is_some() {
                    responses.push(TargetChangeBuilder::reset(id, read_time));
                }
                for document in run.documents {
                    let update_time = document.stored.update_time;
                    watched_target
                        .sent
                        .insert(document.name.clone(), update_time);
                    if since.is_none_or(|since| update_time > since) {
                        responses.push(document_change(query.project(document), id));
                    }
                }
                if since.is_some() {
                    responses.push(ListenResponse::Filter(ExistenceFilter {
                        target_id: id,
                        count: i32::try_from(count).unwrap_or(i32::MAX),
                        unchanged_names: None,
                    }));
                }
            }
            Watched::Documents { names } => {
                for name in names {
                    let key = name.to_string();
                    match snapshot.get_document(name)? {
                        Some(stored) => {
                            let update_time = stored.update_time;
                            watched_target.sent.insert(key.clone(), update_time);
                            if resumed_from.is_none_or(|since| update_time > since) {
                                responses.push(document_change(stored.into_wire(key), id));
                            }
                        }
                        None => responses.push(document_delete(key, id, read_time)),
                    }
                }
            }
        }
        responses.push(TargetChangeBuilder::current(id, read_time));
        if target.once {
            responses.push(target_change(TargetChangeType::Remove, id, None));
        } else {
            self.targets.insert(id, watched_target);
        }
        Ok(())
    }
}

impl WatchedTarget {
    /// Applies one written document: only for targets whose results one document cannot
    /// reorder (no `limit`, no `offset`).
    fn apply_write(
        &mut self,
        snapshot: &ReadSnapshot<'_>,
        name: &DocumentName,
        read_time: Timestamp,
        responses: &mut Vec<ListenResponse>,
    ) -> Result<(), ServerError> {
        let key = name.to_string();
        let stored = snapshot.get_document(name)?.map(|stored| NamedDocument {
            name: key.clone(),
            stored,
        });
        let matching: Option<Document> = match (&self.watched, &stored) {
            (_, None) => None,
            (Watched::Query { query, .. }, Some(document)) => {
                query.execute(vec![document.clone()]).documents.pop()
            }
            (Watched::Documents { .. }, Some(document)) => {
                Some(document.clone().stored.into_wire(key.clone()))
            }
        };
        let known = self.sent.get(&key).copied();
        match (known, matching) {
            (_, Some(document)) => {
                let update_time = document.update_time.unwrap_or_default();
                if known != Some(update_time) {
                    self.sent.insert(key, update_time);
                    responses.push(document_change(document, self.id));
                }
            }
            (Some(_), None) => {
                self.sent.remove(&key);
                responses.push(self.leaving(stored, key, read_time));
            }
            (None, None) => {}
        }
        Ok(())
    }

    /// A document the client had that no longer matches: deleted, or changed.
    fn leaving(
        &self,
        stored: Option<NamedDocument>,
        key: String,
        read_time: Timestamp,
    ) -> ListenResponse {
        match stored {
            None => document_delete(key, self.id, read_time),
            Some(document) => {
                let document = match &self.watched {
                    Watched::Query { query, .. } => query.project(document),
                    Watched::Documents { .. } => document.stored.into_wire(key),
                };
                ListenResponse::DocumentChange(DocumentChange {
                    document,
                    target_ids: Vec::new(),
                    removed_target_ids: vec![self.id],
                })
            }
        }
    }

    /// Reads the whole target again and sends the difference from what the client has.
    fn resync(
        &mut self,
        snapshot: &ReadSnapshot<'_>,
        read_time: Timestamp,
        responses: &mut Vec<ListenResponse>,
    ) -> Result<(), ServerError> {
        let (parent, query) = match &self.watched {
            Watched::Documents { names } => {
                for name in names.clone() {
                    self.apply_write(snapshot, &name, read_time, responses)?;
                }
                return Ok(());
            }
            Watched::Query { parent, query, .. } => (parent, query),
        };
        let run = evaluate_query(snapshot, parent, query)?;
        let mut now: HashMap<String, Timestamp> = HashMap::new();
        for document in run.documents {
            let update_time = document.stored.update_time;
            now.insert(document.name.clone(), update_time);
            if self.sent.get(&document.name) != Some(&update_time) {
                responses.push(document_change(query.project(document), self.id));
            }
        }
        let mut gone: Vec<(String, Timestamp)> = self
            .sent
            .iter()
            .filter(|(name, _)| !now.contains_key(*name))
            .map(|(name, time)| (name.clone(), *time))
            .collect();
        gone.sort();
        for (key, known_update_time) in gone {
            let name = DocumentName::parse(&key)
                .map_err(|error| ServerError::InvalidArgument(error.to_string()))?;
            let stored = snapshot.get_document(&name)?;
            let response = match stored {
                Some(stored) if stored.update_time == known_update_time => {
                    ListenResponse::DocumentRemove(DocumentRemove {
                        document: key,
                        removed_target_ids: vec![self.id],
                        read_time: Some(read_time),
                    })
                }
                stored => self.leaving(
                    stored.map(|stored| NamedDocument {
                        name: key.clone(),
                        stored,
                    }),
                    key,
                    read_time,
                ),
            };
            responses.push(response);
        }
        self.sent = now;
        Ok(())
    }
}

fn target_change(
    kind: TargetChangeType,
    target_id: i32,
    cause: Option<RpcStatus>,
) -> ListenResponse {
    ListenResponse::TargetChange(TargetChange {
        target_change_type: kind,
        target_ids: vec![target_id],
        cause,
        ..TargetChange::default()
    })
}

/// `CURRENT` and `RESET` carry a resume token and read time, as the emulator's do.
struct TargetChangeBuilder;

impl TargetChangeBuilder {
    fn current(target_id: i32, read_time: Timestamp) -> ListenResponse {
        Self::with_time(TargetChangeType::Current, target_id, read_time)
    }

    fn reset(target_id: i32, read_time: Timestamp) -> ListenResponse {
        Self::with_time(TargetChangeType::Reset, target_id, read_time)
    }

    fn with_time(kind: TargetChangeType, target_id: i32, read_time: Timestamp) -> ListenResponse {
        ListenResponse::TargetChange(TargetChange {
            target_change_type: kind,
            target_ids: vec![target_id],
            resume_token: Some(resume_token(read_time)),
            read_time: Some(read_time),
            cause: None,
        })
    }
}

fn document_change(document: Document, target_id: i32) -> ListenResponse {
    ListenResponse::DocumentChange(DocumentChange {
        document,
        target_ids: vec![target_id],
        removed_target_ids: Vec::new(),
    })
}

fn document_delete(name: String, target_id: i32, read_time: Timestamp) -> ListenResponse {
    ListenResponse::DocumentDelete(DocumentDelete {
        document: name,
        removed_target_ids: vec![target_id],
        read_time: Some(read_time),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_tokens_round_trip_and_foreign_tokens_are_not_ours() {
        let time = Timestamp::from_unix_micros(1_795_000_000_123_456);
        assert_eq!(resume_token_time(&resume_token(time)), Some(time));
        // The emulator's tokens, and garbage, are not ours.
        assert_eq!(resume_token_time("CgkIwtXvs6OamAM="), None);
        assert_eq!(resume_token_time("!!"), None);
        assert_eq!(resume_token_time(""), None);
    }

    fn name(path: &str) -> DocumentName {
        DocumentName::new("p", "(default)", path).unwrap()
    }

    fn query_target(parent: &str, collection: &str, all_descendants: bool) -> Watched {
        let query = prepare_query(
            serde_json::from_value(serde_json::json!({
                "from": [{"collectionId": collection, "allDescendants": all_descendants}]
            }))
            .unwrap(),
        )
        .unwrap();
        Watched::Query {
            parent: if parent.is_empty() {
                DocumentName::parse("projects/p/databases/(default)/documents").unwrap()
            } else {
                name(parent)
            },
            query: Box::new(query),
            run_in_full: false,
        }
    }

    #[test]
    fn a_write_affects_the_targets_over_its_collection_only() {
        let products = query_target("shops/s1", "products", false);
        assert!(products.is_affected_by(&name("shops/s1/products/a")));
        assert!(!products.is_affected_by(&name("shops/s2/products/a")));
        assert!(!products.is_affected_by(&name("shops/s1/products/a/history/h")));
        assert!(!products.is_affected_by(&name("shops/s1/bills/a")));
        assert!(!products
            .is_affected_by(&DocumentName::new("q", "(default)", "shops/s1/products/a").unwrap()));
        let group = query_target("shops/s1", "history", true);
        assert!(group.is_affected_by(&name("shops/s1/products/a/history/h")));
        assert!(!group.is_affected_by(&name("shops/s2/products/a/history/h")));
        let root = query_target("", "shops", false);
        assert!(root.is_affected_by(&name("shops/s1")));
        let documents = Watched::Documents {
            names: vec![name("shops/s1/products/a")],
        };
        assert!(documents.is_affected_by(&name("shops/s1/products/a")));
        assert!(!documents.is_affected_by(&name("shops/s1/products/b")));
    }
}
