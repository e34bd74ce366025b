//! Real-time listening, sans IO: the Listen stream's state machine and the policy around it.
//!
//! [`Listener::handle`] takes the time and one [`ListenEvent`] and returns the
//! [`ListenCommand`]s for the driver: open or close the stream, send a `ListenRequest`, release a
//! consistent snapshot of a target, pull a collection, save a resume token, wake up later. It
//! sits next to [`crate::Outbox`] and shares nothing with it; the driver feeds both.
//!
//! Watch semantics (as Firestore's clients implement them, checked against Google's
//! `listen-*.json` conformance cases in `tests/listen_conformance.rs`):
//! - document changes, deletes and removes collect in a per-target pending buffer;
//! - a target is CURRENT once the server says so; RESET turns that off and marks every document
//!   of the target's view as removed (the documents sent after it put back what still matches);
//! - a `targetChange` of type NO_CHANGE with no target ids and a `readTime` marks a consistent
//!   point: every CURRENT target with pending changes releases them as one snapshot, ordered as
//!   the query orders (changes: removals, then additions, then modifications, with indices),
//!   and its resume token becomes the one to resume from. A modification is a new `updateTime`;
//!   the first snapshot of a target is released even when empty;
//! - a `filter` whose count differs from the target's size means something was missed: the
//!   target is reset, its resume token dropped, and it is queried again from scratch under a
//!   fresh target id;
//! - REMOVE of a target we did not remove is an error for that target (its `cause`, or
//!   INTERNAL); an ADD for a target id we never asked for is a protocol error and the stream is
//!   restarted.
//!
//! Policy (DESIGN.md section 5): at most two targets, one per [`TargetSlot`] (the shop's
//! `devices` and the collection on screen); the stream is open only while the tab is visible,
//! online, signed in, enabled (battery saver and the real-time switch turn it off) and has a
//! target. Hidden, it closes after [`ListenConfig::hidden_grace_millis`]; visible again, it asks
//! for a catch-up pull of the screen's collection and reopens with the saved resume tokens. A
//! stream that fails reopens after exponential backoff with full jitter. A change in another
//! device's `devices/{id}` document showing a collection changed later than this device pulled it
//! asks for a pull of that collection.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use counterbook_firestore_wire::{
    Code, Direction, Document, ExistenceFilter, ListenRequest, ListenResponse, RpcStatus, Status,
    Target, TargetChange, TargetChangeType, TargetKind, Timestamp, Value,
};

use crate::backoff::{Backoff, SplitMix64};
use crate::query_builder::FieldPath;

/// The collection, under the shop, holding one document per device.
pub const DEVICES_COLLECTION: &str = "devices";
/// The map field of a device's document: collection id → when that device last changed it
/// (a server timestamp, written at most once per push batch).
pub const DEVICE_CHANGED_FIELD: &str = "changed";

/// The two targets a leader tab may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TargetSlot {
    /// The shop's `devices` collection: tells which collections other devices changed.
    Devices,
    /// The query of the collection on screen.
    Screen,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenConfig {
    /// `projects/{project}/databases/{database}`.
    pub database: String,
    /// This device's id: its own `devices` document never triggers a pull.
    pub device_id: String,
    /// How long a hidden tab keeps the stream open (a quick app switch should not reconnect).
    pub hidden_grace_millis: i64,
    /// Resume tokens are saved with every snapshot that has changes, when the stream closes, and
    /// otherwise at most this often.
    pub resume_token_save_interval_millis: i64,
    pub backoff: Backoff,
    /// The first target id handed out; each new target takes the next one.
    pub first_target_id: i32,
    /// Seeds the jitter.
    pub seed: u64,
}

impl ListenConfig {
    pub fn new(project: &str, device_id: &str, seed: u64) -> Self {
        ListenConfig {
            database: format!("projects/{project}/databases/(default)"),
            device_id: device_id.to_owned(),
            hidden_grace_millis: 5_000,
            resume_token_save_interval_millis: 5 * 60 * 1_000,
            backoff: Backoff {
                base_millis: 1_000,
                cap_millis: 60_000,
            },
            first_target_id: 2,
            seed,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Removed,
    Modified,
}

/// One change in a released snapshot. Indices are positions in the target's documents in query
/// order: `old_index` before the change (none when added), `new_index` after (none when removed),
/// each counted after the changes listed before it were applied.
#[derive(Clone, Debug, PartialEq)]
pub struct DocumentChange {
    pub kind: ChangeKind,
    /// The new version; for a removal, the last version seen.
    pub document: Document,
    pub old_index: Option<usize>,
    pub new_index: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PullReason {
    /// The stream was closed (hidden or offline) and opens again.
    CatchUp,
    /// Another device's `devices` document says it changed the collection after our last pull.
    DeviceChanged { device_id: String, at: Timestamp },
}

#[derive(Clone, Debug, PartialEq)]
pub enum ListenEvent {
    /// Listen to `target` in `slot`, replacing what the slot held. `resume_token`: the one saved
    /// for this target (see [`target_key`]), if any.
    Watch {
        slot: TargetSlot,
        target: TargetKind,
        resume_token: Option<String>,
    },
    /// Stop listening in `slot`.
    Unwatch {
        slot: TargetSlot,
    },
    /// The stream asked for by [`ListenCommand::OpenStream`] is open.
    StreamOpened,
    /// A message arrived on the stream.
    Response(ListenResponse),
    /// The stream ended without being asked to (network loss, server restart, an error status).
    StreamClosed {
        error: Option<Status>,
    },
    /// `document.visibilityState == "visible"`.
    Visible(bool),
    Online(bool),
    /// Real-time on or off (the switch, or battery saver).
    Enabled(bool),
    /// The user signed in again after the stream was refused as `UNAUTHENTICATED`.
    SignedIn,
    /// A pull of `collection` finished; its checkpoint is now at `up_to` (`updatedAt`).
    CollectionPulled {
        collection: String,
        up_to: Timestamp,
    },
    /// A pull asked for by [`ListenCommand::PullCollection`] failed.
    PullFailed {
        collection: String,
    },
    /// A timer asked for by [`ListenCommand::WakeAt`] fired.
    Tick,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ListenCommand {
    /// Open the Listen stream, then answer with `StreamOpened` (or `StreamClosed`).
    OpenStream,
    /// Send this message on the open stream (the first may ride in the WebChannel's opening
    /// POST).
    SendRequest(Box<ListenRequest>),
    /// Close the stream; no `StreamClosed` is expected.
    CloseStream,
    /// A consistent snapshot of the target in `slot`: apply these changes (through the same
    /// conflict-aware path as pulls).
    Snapshot {
        slot: TargetSlot,
        changes: Vec<DocumentChange>,
        read_time: Timestamp,
    },
    /// Pull `collection` from its checkpoint, then answer with `CollectionPulled`.
    PullCollection {
        collection: String,
        reason: PullReason,
    },
    /// Store the token to resume the target with this key from (`None`: forget it).
    SaveResumeToken {
        target_key: String,
        token: Option<String>,
    },
    /// The server dropped the target in `slot` with this status; the slot is empty now.
    TargetFailed { slot: TargetSlot, status: RpcStatus },
    /// The server broke the protocol; the stream restarts after a backoff.
    ProtocolError { message: String },
    /// Send a `Tick` at this time (Unix ms) unless one comes earlier.
    WakeAt(i64),
}

/// What the status panel shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListenStatus {
    /// The stream is open.
    pub listening: bool,
    pub targets: usize,
    /// Targets that released a snapshot and are consistent now.
    pub current_targets: usize,
    pub waiting_for_sign_in: bool,
    pub last_error: Option<String>,
}

/// The key a target's resume token is saved under: its JSON, which names it exactly.
pub fn target_key(target: &TargetKind) -> String {
    serde_json::to_string(target).expect("targets serialize")
}

/// The order of a target's documents: the query's orders, then the name in the direction of the
/// last order (ascending if none), as Firestore orders results.
#[derive(Clone, Debug, PartialEq)]
struct DocumentOrder {
    /// `None`: the document name.
    keys: Vec<(Option<FieldPath>, Direction)>,
}

impl DocumentOrder {
    fn of(target: &TargetKind) -> Self {
        let mut keys = Vec::new();
        if let TargetKind::Query(query) = target {
            for order in &query.structured_query.order_by {
                let direction = match order.direction {
                    Some(Direction::Descending) => Direction::Descending,
                    _ => Direction::Ascending,
                };
                let path = FieldPath::parse(&order.field.field_path)
                    .ok()
                    .filter(|path| !path.is_document_id());
                keys.push((path, direction));
            }
        }
        if !keys.iter().any(|(path, _)| path.is_none()) {
            let direction = keys
                .last()
                .map_or(Direction::Ascending, |(_, direction)| *direction);
            keys.push((None, direction));
        }
        DocumentOrder { keys }
    }

    fn compare(&self, a: &Document, b: &Document) -> Ordering {
        for (path, direction) in &self.keys {
            let order = match path {
                None => Value::Reference(a.name.clone())
                    .firestore_cmp(&Value::Reference(b.name.clone())),
                Some(path) => match (path.lookup(&a.fields), path.lookup(&b.fields)) {
                    (Some(x), Some(y)) => x.firestore_cmp(y),
                    (None, Some(_)) => Ordering::Less,
                    (Some(_), None) => Ordering::Greater,
                    (None, None) => Ordering::Equal,
                },
            };
            let order = if *direction == Direction::Descending {
                order.reverse()
            } else {
                order
            };
            if order != Ordering::Equal {
                return order;
            }
        }
        Ordering::Equal
    }
}

/// One target: what it watches, the documents of its last snapshot, and what is pending.
#[derive(Clone, Debug)]
struct TargetState {
    kind: TargetKind,
    key: String,
    target_id: i32,
    order: DocumentOrder,
    /// The documents of the last released snapshot, by name.
    documents: BTreeMap<String, Document>,
    /// Their names in query order.
    sorted: Vec<String>,
    /// Changes since the last snapshot: `None` is a removal.
    pending: BTreeMap<String, Option<Document>>,
    current: bool,
    /// A snapshot was released since the target was added.
    released: bool,
    /// The token of the last released snapshot: where to resume from.
    resume_token: Option<String>,
    /// The newest token seen since; it becomes `resume_token` at the next snapshot.
    candidate_token: Option<String>,
    /// The token last given to the store, and when.
    saved_token: Option<String>,
    saved_at: Option<i64>,
    /// `addTarget` was sent on the open stream.
    added: bool,
}

impl TargetState {
    fn new(kind: TargetKind, target_id: i32, resume_token: Option<String>) -> Self {
        TargetState {
            key: target_key(&kind),
            order: DocumentOrder::of(&kind),
            kind,
            target_id,
            documents: BTreeMap::new(),
            sorted: Vec::new(),
            pending: BTreeMap::new(),
            current: false,
            released: false,
            saved_token: resume_token.clone(),
            resume_token,
            candidate_token: None,
            saved_at: None,
            added: false,
        }
    }

    /// RESET: every document of the view is removed unless the server sends it again.
    fn reset(&mut self) {
        self.pending = self
            .documents
            .keys()
            .map(|name| (name.clone(), None))
            .collect();
        self.current = false;
    }

    /// How many documents match once the pending changes are applied.
    fn size_with_pending(&self) -> usize {
        let mut size = self.documents.len();
        for (name, change) in &self.pending {
            match (change, self.documents.contains_key(name)) {
                (Some(_), false) => size += 1,
                (None, true) => size -= 1,
                _ => {}
            }
        }
        size
    }

    fn position(&self, document: &Document) -> Result<usize, usize> {
        self.sorted
            .binary_search_by(|name| self.order.compare(&self.documents[name], document))
    }

    fn remove(&mut self, name: &str) -> Option<(Document, usize)> {
        let document = self.documents.get(name)?.clone();
        let index = self.position(&document).ok()?;
        self.sorted.remove(index);
        self.documents.remove(name);
        Some((document, index))
    }

    fn insert(&mut self, document: Document) -> usize {
        let index = self.position(&document).unwrap_or_else(|i| i);
        self.sorted.insert(index, document.name.clone());
        self.documents.insert(document.name.clone(), document);
        index
    }

    /// Applies the pending changes to the view and lists them: removals in old order, then
    /// additions and modifications in new order.
    fn apply_pending(&mut self) -> Vec<DocumentChange> {
        let mut deletes = Vec::new();
        let mut adds = Vec::new();
        let mut updates = Vec::new();
        for (name, change) in std::mem::take(&mut self.pending) {
            match (change, self.documents.get(&name)) {
                (None, Some(existing)) => deletes.push(existing.clone()),
                (None, None) => {}
                (Some(document), Some(_)) => updates.push(document),
                (Some(document), None) => adds.push(document),
            }
        }
        let order = self.order.clone();
        let mut changes = Vec::new();
        deletes.sort_by(|a, b| order.compare(a, b));
        for document in deletes {
            if let Some((document, index)) = self.remove(&document.name) {
                changes.push(DocumentChange {
                    kind: ChangeKind::Removed,
                    document,
                    old_index: Some(index),
                    new_index: None,
                });
            }
        }
        adds.sort_by(|a, b| order.compare(a, b));
        for document in adds {
            let index = self.insert(document.clone());
            changes.push(DocumentChange {
                kind: ChangeKind::Added,
                document,
                old_index: None,
                new_index: Some(index),
            });
        }
        updates.sort_by(|a, b| order.compare(a, b));
        for document in updates {
            if self.documents[&document.name].update_time == document.update_time {
                continue;
            }
            let Some((_, old_index)) = self.remove(&document.name) else {
                continue;
            };
            let new_index = self.insert(document.clone());
            changes.push(DocumentChange {
                kind: ChangeKind::Modified,
                document,
                old_index: Some(old_index),
                new_index: Some(new_index),
            });
        }
        changes
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stream {
    Closed,
    Opening,
    Open,
}

/// The listen state machine. See the module documentation.
#[derive(Clone, Debug)]
pub struct Listener {
    config: ListenConfig,
    targets: BTreeMap<TargetSlot, TargetState>,
    /// Targets removed on the open stream whose REMOVE has not arrived: messages for them are
    /// stale, not errors.
    retired: BTreeSet<i32>,
    next_target_id: i32,
    stream: Stream,
    visible: bool,
    online: bool,
    enabled: bool,
    waiting_for_sign_in: bool,
    /// While hidden, when the stream closes.
    close_at: Option<i64>,
    /// After a failure, not before this time.
    reconnect_at: Option<i64>,
    failures: u32,
    /// The stream was closed by policy (hidden, offline, off): catch up before reopening.
    catch_up_due: bool,
    /// Per collection, the newest `updatedAt` pulled, and the newest a pull was asked for.
    pulled: BTreeMap<String, Timestamp>,
    requested: BTreeMap<String, Timestamp>,
    last_wake: Option<i64>,
    last_error: Option<String>,
    rng: SplitMix64,
}

impl Listener {
    /// A listener for a hidden tab with no targets; the driver reports visibility at start.
    pub fn new(config: ListenConfig) -> Self {
        Listener {
            rng: SplitMix64::new(config.seed),
            next_target_id: config.first_target_id,
            config,
            targets: BTreeMap::new(),
            retired: BTreeSet::new(),
            stream: Stream::Closed,
            visible: false,
            online: true,
            enabled: true,
            waiting_for_sign_in: false,
            close_at: None,
            reconnect_at: None,
            failures: 0,
            catch_up_due: false,
            pulled: BTreeMap::new(),
            requested: BTreeMap::new(),
            last_wake: None,
            last_error: None,
        }
    }

    pub fn config(&self) -> &ListenConfig {
        &self.config
    }

    pub fn status(&self) -> ListenStatus {
        ListenStatus {
            listening: self.stream == Stream::Open,
            targets: self.targets.len(),
            current_targets: self.targets.values().filter(|t| t.current).count(),
            waiting_for_sign_in: self.waiting_for_sign_in,
            last_error: self.last_error.clone(),
        }
    }

    /// The documents of the last snapshot released for `slot`, in query order.
    pub fn documents(&self, slot: TargetSlot) -> Vec<&Document> {
        self.targets
            .get(&slot)
            .map(|target| {
                target
                    .sorted
                    .iter()
                    .map(|name| &target.documents[name])
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The target id the slot's target has on the wire.
    pub fn target_id(&self, slot: TargetSlot) -> Option<i32> {
        self.targets.get(&slot).map(|target| target.target_id)
    }

    /// Feeds one event in; returns what the driver must do, in order.
    pub fn handle(&mut self, now_millis: i64, event: ListenEvent) -> Vec<ListenCommand> {
        let mut out = Vec::new();
        match event {
            ListenEvent::Watch {
                slot,
                target,
                resume_token,
            } => self.watch(slot, target, resume_token, &mut out),
            ListenEvent::Unwatch { slot } => {
                if let Some(old) = self.targets.remove(&slot) {
                    self.retire(&old, &mut out);
                }
            }
            ListenEvent::StreamOpened => {
                if self.stream == Stream::Opening {
                    self.stream = Stream::Open;
                    let slots: Vec<TargetSlot> = self.targets.keys().copied().collect();
                    for slot in slots {
                        self.add_on_stream(slot, &mut out);
                    }
                }
            }
            ListenEvent::Response(response) => {
                if self.stream == Stream::Open {
                    self.on_response(now_millis, response, &mut out);
                }
            }
            ListenEvent::StreamClosed { error } => {
                if self.stream != Stream::Closed {
                    self.on_stream_failed(now_millis, error, &mut out);
                }
            }
            ListenEvent::Visible(visible) => {
                self.visible = visible;
                self.close_at = if visible {
                    None
                } else {
                    Some(now_millis + self.config.hidden_grace_millis)
                };
            }
            ListenEvent::Online(online) => {
                self.online = online;
                if online {
                    // Back from an outage: the backoff grown meanwhile no longer applies.
                    self.reconnect_at = None;
                    self.failures = 0;
                }
            }
            ListenEvent::Enabled(enabled) => self.enabled = enabled,
            ListenEvent::SignedIn => {
                self.waiting_for_sign_in = false;
                self.reconnect_at = None;
            }
            ListenEvent::CollectionPulled { collection, up_to } => {
                let pulled = self.pulled.entry(collection.clone()).or_insert(up_to);
                *pulled = (*pulled).max(up_to);
                if self
                    .requested
                    .get(&collection)
                    .is_some_and(|at| *at <= up_to)
                {
                    self.requested.remove(&collection);
                }
            }
            ListenEvent::PullFailed { collection } => {
                // The next change seen for it asks again.
                self.requested.remove(&collection);
            }
            ListenEvent::Tick => {}
        }
        self.reconcile(now_millis, &mut out);
        out
    }

    fn watch(
        &mut self,
        slot: TargetSlot,
        kind: TargetKind,
        resume_token: Option<String>,
        out: &mut Vec<ListenCommand>,
    ) {
        if self.targets.get(&slot).is_some_and(|t| t.kind == kind) {
            return;
        }
        if let Some(old) = self.targets.remove(&slot) {
            self.retire(&old, out);
        }
        let target_id = self.allocate_target_id();
        self.targets
            .insert(slot, TargetState::new(kind, target_id, resume_token));
        if self.stream == Stream::Open {
            self.add_on_stream(slot, out);
        }
    }

    fn allocate_target_id(&mut self) -> i32 {
        let id = self.next_target_id;
        self.next_target_id += 1;
        id
    }

    /// Removes a target from the open stream; its late messages are ignored.
    fn retire(&mut self, old: &TargetState, out: &mut Vec<ListenCommand>) {
        if self.stream == Stream::Open && old.added {
            self.retired.insert(old.target_id);
            out.push(ListenCommand::SendRequest(Box::new(ListenRequest::remove(
                self.config.database.clone(),
                old.target_id,
            ))));
        }
    }

    fn add_on_stream(&mut self, slot: TargetSlot, out: &mut Vec<ListenCommand>) {
        let database = self.config.database.clone();
        let Some(target) = self.targets.get_mut(&slot) else {
            return;
        };
        if target.resume_token.is_none() {
            // From scratch: the server sends the whole result, which replaces the view.
            target.reset();
        }
        target.added = true;
        target.current = false;
        target.candidate_token = None;
        out.push(ListenCommand::SendRequest(Box::new(ListenRequest::add(
            database,
            Target {
                kind: target.kind.clone(),
                target_id: target.target_id,
                resume_token: target.resume_token.clone(),
                read_time: None,
                once: false,
                expected_count: None,
            },
        ))));
    }

    fn slot_of(&self, target_id: i32) -> Option<TargetSlot> {
        self.targets
            .iter()
            .find(|(_, target)| target.target_id == target_id)
            .map(|(slot, _)| *slot)
    }

    /// The slots a list of target ids names; an empty list names every target.
    fn slots_named(&self, target_ids: &[i32]) -> Vec<TargetSlot> {
        if target_ids.is_empty() {
            return self.targets.keys().copied().collect();
        }
        target_ids
            .iter()
            .filter_map(|id| self.slot_of(*id))
            .collect()
    }

    fn on_response(&mut self, now: i64, response: ListenResponse, out: &mut Vec<ListenCommand>) {
        match response {
            ListenResponse::TargetChange(change) => self.on_target_change(now, change, out),
            ListenResponse::DocumentChange(change) => {
                let name = change.document.name.clone();
                for slot in self.slots_named_strictly(&change.removed_target_ids) {
                    if !change.target_ids.contains(&self.targets[&slot].target_id) {
                        self.targets
                            .get_mut(&slot)
                            .unwrap()
                            .pending
                            .insert(name.clone(), None);
                    }
                }
                for slot in self.slots_named_strictly(&change.target_ids) {
                    self.targets
                        .get_mut(&slot)
                        .unwrap()
                        .pending
                        .insert(name.clone(), Some(change.document.clone()));
                }
            }
            ListenResponse::DocumentDelete(delete) => {
                self.remove_document(&delete.document, &delete.removed_target_ids)
            }
            ListenResponse::DocumentRemove(remove) => {
                self.remove_document(&remove.document, &remove.removed_target_ids)
            }
            ListenResponse::Filter(filter) => self.on_existence_filter(filter, out),
        }
    }

    /// The slots of exactly these target ids (an empty list names none).
    fn slots_named_strictly(&self, target_ids: &[i32]) -> Vec<TargetSlot> {
        target_ids
            .iter()
            .filter_map(|id| self.slot_of(*id))
            .collect()
    }

    fn remove_document(&mut self, name: &str, removed_target_ids: &[i32]) {
        // A delete without target ids concerns every target that may hold the document.
        for slot in self.slots_named(removed_target_ids) {
            self.targets
                .get_mut(&slot)
                .unwrap()
                .pending
                .insert(name.to_owned(), None);
        }
    }

    fn on_target_change(&mut self, now: i64, change: TargetChange, out: &mut Vec<ListenCommand>) {
        let slots = self.slots_named(&change.target_ids);
        let token = change.resume_token.clone();
        match change.target_change_type {
            TargetChangeType::NoChange => {
                if change.target_ids.is_empty() {
                    if let Some(read_time) = change.read_time {
                        self.release_snapshots(now, read_time, token, out);
                    }
                } else {
                    self.note_token(&slots, token);
                }
            }
            TargetChangeType::Add => {
                let unknown = change
                    .target_ids
                    .iter()
                    .find(|id| self.slot_of(**id).is_none() && !self.retired.contains(id));
                if let Some(id) = unknown {
                    let message =
                        format!("the server added target {id}, which was never asked for");
                    self.on_protocol_error(now, message, out);
                    return;
                }
                self.note_token(&slots, token);
            }
            TargetChangeType::Remove => {
                for id in &change.target_ids {
                    self.retired.remove(id);
                }
                for slot in slots {
                    let target = self.targets.remove(&slot).expect("named slots exist");
                    let status = change.cause.clone().unwrap_or_else(|| {
                        RpcStatus::new(Code::Internal, "the server removed the target")
                    });
                    self.last_error = Some(format!(
                        "listening to {:?} failed: {:?} {}",
                        slot,
                        status.code(),
                        status.message
                    ));
                    if target.saved_token.is_some() {
                        out.push(ListenCommand::SaveResumeToken {
                            target_key: target.key,
                            token: None,
                        });
                    }
                    out.push(ListenCommand::TargetFailed { slot, status });
                }
            }
            TargetChangeType::Current => {
                for slot in &slots {
                    self.targets.get_mut(slot).unwrap().current = true;
                }
                self.note_token(&slots, token);
            }
            TargetChangeType::Reset => {
                for slot in &slots {
                    self.targets.get_mut(slot).unwrap().reset();
                }
                self.note_token(&slots, token);
            }
        }
    }

    fn note_token(&mut self, slots: &[TargetSlot], token: Option<String>) {
        if let Some(token) = token {
            for slot in slots {
                self.targets.get_mut(slot).unwrap().candidate_token = Some(token.clone());
            }
        }
    }

    /// A consistent point: every CURRENT target releases what it has pending.
    fn release_snapshots(
        &mut self,
        now: i64,
        read_time: Timestamp,
        token: Option<String>,
        out: &mut Vec<ListenCommand>,
    ) {
        let slots: Vec<TargetSlot> = self.targets.keys().copied().collect();
        for slot in slots {
            let interval = self.config.resume_token_save_interval_millis;
            let target = self.targets.get_mut(&slot).unwrap();
            if !target.current {
                continue;
            }
            if let Some(token) = token.clone().or_else(|| target.candidate_token.take()) {
                target.resume_token = Some(token);
            }
            target.candidate_token = None;
            let changes = target.apply_pending();
            let first = !target.released;
            target.released = true;
            let save_due = target.saved_at.is_none_or(|at| now - at >= interval);
            if target.resume_token != target.saved_token && (!changes.is_empty() || save_due) {
                target.saved_token = target.resume_token.clone();
                target.saved_at = Some(now);
                out.push(ListenCommand::SaveResumeToken {
                    target_key: target.key.clone(),
                    token: target.resume_token.clone(),
                });
            }
            // The stream delivers: failures so far are forgiven.
            self.failures = 0;
            if changes.is_empty() && !first {
                continue;
            }
            if slot == TargetSlot::Devices {
                self.pulls_for_device_changes(&changes, out);
            }
            out.push(ListenCommand::Snapshot {
                slot,
                changes,
                read_time,
            });
        }
    }

    /// The devices rule: another device changed a collection after what we pulled of it.
    fn pulls_for_device_changes(
        &mut self,
        changes: &[DocumentChange],
        out: &mut Vec<ListenCommand>,
    ) {
        for change in changes {
            if change.kind == ChangeKind::Removed {
                continue;
            }
            let device_id = change.document.name.rsplit('/').next().unwrap_or_default();
            if device_id == self.config.device_id {
                continue;
            }
            let Some(Value::Map(changed)) = change.document.fields.get(DEVICE_CHANGED_FIELD) else {
                continue;
            };
            for (collection, at) in changed {
                let Some(at) = at.as_timestamp() else {
                    continue;
                };
                let known = self
                    .pulled
                    .get(collection)
                    .into_iter()
                    .chain(self.requested.get(collection))
                    .max();
                if known.is_some_and(|known| *known >= at) || self.screen_covers(collection) {
                    continue;
                }
                self.requested.insert(collection.clone(), at);
                out.push(ListenCommand::PullCollection {
                    collection: collection.clone(),
                    reason: PullReason::DeviceChanged {
                        device_id: device_id.to_owned(),
                        at,
                    },
                });
            }
        }
    }

    /// Whether the screen's target delivers every change of `collection` already: a CURRENT
    /// query on the whole collection, under the same parent as `devices`.
    fn screen_covers(&self, collection: &str) -> bool {
        let (Some(screen), Some(devices)) = (
            self.targets.get(&TargetSlot::Screen),
            self.targets.get(&TargetSlot::Devices),
        ) else {
            return false;
        };
        let (TargetKind::Query(screen_query), TargetKind::Query(devices_query)) =
            (&screen.kind, &devices.kind)
        else {
            return false;
        };
        let query = &screen_query.structured_query;
        screen.current
            && screen_query.parent == devices_query.parent
            && query.from.len() == 1
            && query.from[0].collection_id == collection
            && !query.from[0].all_descendants
            && query.filter.is_none()
            && query.limit.is_none()
            && query.offset.is_none()
            && query.start_at.is_none()
            && query.end_at.is_none()
    }

    /// A count that differs from ours: re-query the target from scratch under a fresh id.
    fn on_existence_filter(&mut self, filter: ExistenceFilter, out: &mut Vec<ListenCommand>) {
        let Some(slot) = self.slot_of(filter.target_id) else {
            return;
        };
        let target = &self.targets[&slot];
        if usize::try_from(filter.count).ok() == Some(target.size_with_pending()) {
            return;
        }
        let mut target = self.targets.remove(&slot).unwrap();
        self.retire(&target, out);
        if target.saved_token.is_some() {
            out.push(ListenCommand::SaveResumeToken {
                target_key: target.key.clone(),
                token: None,
            });
        }
        target.resume_token = None;
        target.candidate_token = None;
        target.saved_token = None;
        target.reset();
        target.target_id = self.allocate_target_id();
        target.added = false;
        self.targets.insert(slot, target);
        self.add_on_stream(slot, out);
    }

    fn on_protocol_error(&mut self, now: i64, message: String, out: &mut Vec<ListenCommand>) {
        self.last_error = Some(message.clone());
        out.push(ListenCommand::ProtocolError { message });
        self.close(false, out);
        out.push(ListenCommand::CloseStream);
        self.schedule_reconnect(now);
    }

    fn on_stream_failed(&mut self, now: i64, error: Option<Status>, out: &mut Vec<ListenCommand>) {
        self.close(false, out);
        match error {
            Some(status) if status.status == Code::Unauthenticated => {
                self.last_error = Some("listening needs a new sign-in".to_owned());
                self.waiting_for_sign_in = true;
            }
            error => {
                self.last_error = Some(match error {
                    Some(status) => format!(
                        "listen stream failed: {:?} {}",
                        status.status, status.message
                    ),
                    None => "listen stream closed".to_owned(),
                });
                self.schedule_reconnect(now);
            }
        }
    }

    fn schedule_reconnect(&mut self, now: i64) {
        self.failures += 1;
        let delay = self
            .config
            .backoff
            .delay(self.failures, None, &mut self.rng);
        self.reconnect_at = Some(now + delay as i64);
    }

    /// Forgets the stream: tokens are saved, pending changes dropped (the server resends them
    /// after the saved token), the view kept.
    fn close(&mut self, by_policy: bool, out: &mut Vec<ListenCommand>) {
        for target in self.targets.values_mut() {
            if target.resume_token != target.saved_token {
                target.saved_token = target.resume_token.clone();
                out.push(ListenCommand::SaveResumeToken {
                    target_key: target.key.clone(),
                    token: target.resume_token.clone(),
                });
            }
            target.pending.clear();
            target.current = false;
            target.candidate_token = None;
            target.added = false;
        }
        self.retired.clear();
        self.stream = Stream::Closed;
        self.catch_up_due |= by_policy;
    }

    /// Brings the stream in line with the policy, and asks for the next wake-up.
    fn reconcile(&mut self, now: i64, out: &mut Vec<ListenCommand>) {
        let in_grace = self.close_at.is_some_and(|at| now < at);
        let allowed = self.online
            && self.enabled
            && !self.waiting_for_sign_in
            && !self.targets.is_empty()
            && (self.visible || in_grace);
        match self.stream {
            Stream::Opening | Stream::Open if !allowed => {
                self.close(true, out);
                out.push(ListenCommand::CloseStream);
            }
            Stream::Closed if allowed && self.reconnect_at.is_none_or(|at| now >= at) => {
                self.reconnect_at = None;
                if std::mem::take(&mut self.catch_up_due) {
                    if let Some(collection) = self.screen_collection() {
                        out.push(ListenCommand::PullCollection {
                            collection,
                            reason: PullReason::CatchUp,
                        });
                    }
                }
                self.stream = Stream::Opening;
                out.push(ListenCommand::OpenStream);
            }
            _ => {}
        }
        if !self.visible && self.stream == Stream::Closed {
            self.close_at = None;
        }
        let next = [
            self.close_at.filter(|_| self.stream != Stream::Closed),
            self.reconnect_at.filter(|_| allowed),
        ]
        .into_iter()
        .flatten()
        .filter(|at| *at > now)
        .min();
        if let Some(at) = next.filter(|_| next != self.last_wake) {
            out.push(ListenCommand::WakeAt(at));
        }
        self.last_wake = next;
    }

    fn screen_collection(&self) -> Option<String> {
        match &self.targets.get(&TargetSlot::Screen)?.kind {
            TargetKind::Query(query) => query
                .structured_query
                .from
                .first()
                .map(|from| from.collection_id.clone()),
            TargetKind::Documents(_) => None,
        }
    }
}
