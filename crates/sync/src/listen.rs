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
use std::collections::BTreeMap;

use crate::sorted_map::{SortedMap, SortedSet};

use counterbook_firestore_wire::sort::sort_by;
use counterbook_firestore_wire::{
    Code, Direction, Document, ExistenceFilter, FieldOperator, Filter, ListenRequest,
    ListenResponse, RpcStatus, Status, Target, TargetChange, TargetChangeType, TargetKind,
    Timestamp, Value,
};

use crate::backoff::{Backoff, SplitMix64};
use crate::pull::UPDATED_AT;
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

/// Whether `filter` keeps exactly the documents stamped after a time before `at`.
fn stamped_after_before(filter: &Filter, at: Timestamp) -> bool {
    let Filter::FieldFilter(field) = filter else {
        return false;
    };
    let after = matches!(
        field.op,
        FieldOperator::GreaterThan | FieldOperator::GreaterThanOrEqual
    );
    after
        && field.field.field_path == UPDATED_AT
        && matches!(field.value, Value::Timestamp(since) if since < at)
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

    /// The command saving the resume token, if it moved since it was last saved (`now`: when).
    fn save_token(&mut self, now: Option<i64>) -> Option<ListenCommand> {
        if self.resume_token == self.saved_token {
            return None;
        }
        self.saved_token = self.resume_token.clone();
        if now.is_some() {
            self.saved_at = now;
        }
        Some(ListenCommand::SaveResumeToken {
            target_key: self.key.clone(),
            token: self.resume_token.clone(),
        })
    }

    /// The command forgetting the saved resume token, if one was saved: the target will not
    /// resume from it.
    fn forget_saved_token(&mut self) -> Option<ListenCommand> {
        self.saved_token.take()?;
        Some(ListenCommand::SaveResumeToken {
            target_key: self.key.clone(),
            token: None,
        })
    }

    /// RESET: every document of the view is removed unless the server sends it again.
    fn reset(&mut self) {
        self.pending.clear();
        self.pending
            .extend(self.documents.keys().map(|name| (name.clone(), None)));
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
        // One comparator for the three sorts, and the app's one stable sort
        // (`counterbook_firestore_wire::sort`): each sort instance is about 3.5 KB of wasm.
        let by_query_order = |a: &Document, b: &Document| order.compare(a, b);
        let mut changes = Vec::new();
        sort_by(&mut deletes, by_query_order);
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
        sort_by(&mut adds, by_query_order);
        for document in adds {
            let index = self.insert(document.clone());
            changes.push(DocumentChange {
                kind: ChangeKind::Added,
                document,
                old_index: None,
                new_index: Some(index),
            });
        }
        sort_by(&mut updates, by_query_order);
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
    targets: SortedMap<TargetSlot, TargetState>,
    /// Targets removed on the open stream whose REMOVE has not arrived: messages for them are
    /// stale, not errors.
    retired: SortedSet<i32>,
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
    pulled: SortedMap<String, Timestamp>,
    requested: SortedMap<String, Timestamp>,
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
            targets: SortedMap::new(),
            retired: SortedSet::new(),
            stream: Stream::Closed,
            visible: false,
            online: true,
            enabled: true,
            waiting_for_sign_in: false,
            close_at: None,
            reconnect_at: None,
            failures: 0,
            catch_up_due: false,
            pulled: SortedMap::new(),
            requested: SortedMap::new(),
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
                let pulled = self.pulled.get_or_insert_with(collection.clone(), || up_to);
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

    /// The target in `slot`, which the caller knows is watched (a slot named by
    /// [`Listener::slots_named`] or [`Listener::slot_of`]).
    fn target_mut(&mut self, slot: TargetSlot) -> &mut TargetState {
        self.targets.get_mut(&slot).expect("named slots exist")
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
                        self.target_mut(slot).pending.insert(name.clone(), None);
                    }
                }
                for slot in self.slots_named_strictly(&change.target_ids) {
                    self.target_mut(slot)
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
            self.target_mut(slot).pending.insert(name.to_owned(), None);
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
                    let mut target = self.targets.remove(&slot).expect("named slots exist");
                    let status = change.cause.clone().unwrap_or_else(|| {
                        RpcStatus::new(Code::Internal, "the server removed the target")
                    });
                    self.last_error = Some(format!(
                        "listening to {:?} failed: {:?} {}",
                        slot,
                        status.code(),
                        status.message
                    ));
                    out.extend(target.forget_saved_token());
                    out.push(ListenCommand::TargetFailed { slot, status });
                }
            }
            TargetChangeType::Current => {
                for slot in &slots {
                    self.target_mut(*slot).current = true;
                }
                self.note_token(&slots, token);
            }
            TargetChangeType::Reset => {
                for slot in &slots {
                    self.target_mut(*slot).reset();
                }
                self.note_token(&slots, token);
            }
        }
    }

    fn note_token(&mut self, slots: &[TargetSlot], token: Option<String>) {
        if let Some(token) = token {
            for slot in slots {
                self.target_mut(*slot).candidate_token = Some(token.clone());
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
            let target = self.target_mut(slot);
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
            if !changes.is_empty() || save_due {
                out.extend(target.save_token(Some(now)));
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
                if known.is_some_and(|known| *known >= at) || self.screen_covers(collection, at) {
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

    /// Whether the screen's target delivers a change of `collection` made at `at` already: a
    /// CURRENT query on the whole collection under the same parent as `devices`, or on what
    /// was stamped after a time before `at` (`updatedAt >` or `>=` it: every change stamps
    /// `updatedAt`, so it enters such a target).
    fn screen_covers(&self, collection: &str, at: Timestamp) -> bool {
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
            && query
                .filter
                .as_ref()
                .is_none_or(|filter| stamped_after_before(filter, at))
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
        out.extend(target.forget_saved_token());
        target.resume_token = None;
        target.candidate_token = None;
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
            out.extend(target.save_token(None));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query_builder::QueryBuilder;
    use counterbook_firestore_wire::{
        DocumentChange as WireDocumentChange, DocumentDelete, QueryTarget,
    };

    const SHOP: &str = "projects/p/databases/(default)/documents/shops/s1";

    fn collection_target(collection: &str) -> TargetKind {
        TargetKind::Query(QueryBuilder::new(SHOP, collection).build().unwrap())
    }

    fn doc(collection: &str, id: &str, version: i64) -> Document {
        Document {
            name: format!("{SHOP}/{collection}/{id}"),
            update_time: Some(Timestamp::from_unix_millis(version)),
            ..Document::default()
        }
    }

    fn device(id: &str, version: i64, changed: &[(&str, i64)]) -> Document {
        let changed = changed
            .iter()
            .map(|(collection, at)| {
                (
                    collection.to_string(),
                    Value::Timestamp(Timestamp::from_unix_millis(*at)),
                )
            })
            .collect();
        let mut document = doc(DEVICES_COLLECTION, id, version);
        document
            .fields
            .insert(DEVICE_CHANGED_FIELD.to_owned(), Value::Map(changed));
        document
    }

    fn changed(target_id: i32, document: Document) -> ListenEvent {
        ListenEvent::Response(ListenResponse::DocumentChange(WireDocumentChange {
            document,
            target_ids: vec![target_id],
            removed_target_ids: vec![],
        }))
    }

    fn target_change(kind: TargetChangeType, ids: &[i32], token: Option<&str>) -> ListenEvent {
        ListenEvent::Response(ListenResponse::TargetChange(TargetChange {
            target_change_type: kind,
            target_ids: ids.to_vec(),
            resume_token: token.map(str::to_owned),
            ..TargetChange::default()
        }))
    }

    /// The global "consistent up to here" message.
    fn consistent(millis: i64, token: Option<&str>) -> ListenEvent {
        ListenEvent::Response(ListenResponse::TargetChange(TargetChange {
            read_time: Some(Timestamp::from_unix_millis(millis)),
            resume_token: token.map(str::to_owned),
            ..TargetChange::default()
        }))
    }

    /// Commands in a few words each, so tests read as a transcript.
    fn describe(command: &ListenCommand) -> String {
        let short = |name: &str| name.rsplit('/').next().unwrap_or_default().to_owned();
        match command {
            ListenCommand::OpenStream => "open".into(),
            ListenCommand::CloseStream => "close".into(),
            ListenCommand::SendRequest(request) => {
                match (&request.add_target, request.remove_target) {
                    (Some(target), _) => match &target.resume_token {
                        Some(token) => format!("add {} from {token}", target.target_id),
                        None => format!("add {}", target.target_id),
                    },
                    (None, Some(id)) => format!("remove {id}"),
                    (None, None) => "empty request".into(),
                }
            }
            ListenCommand::Snapshot { slot, changes, .. } => {
                let changes: Vec<String> = changes
                    .iter()
                    .map(|change| {
                        let sign = match change.kind {
                            ChangeKind::Added => '+',
                            ChangeKind::Removed => '-',
                            ChangeKind::Modified => '~',
                        };
                        format!("{sign}{}", short(&change.document.name))
                    })
                    .collect();
                format!("snapshot {slot:?} [{}]", changes.join(" "))
            }
            ListenCommand::PullCollection { collection, reason } => match reason {
                PullReason::CatchUp => format!("pull {collection} to catch up"),
                PullReason::DeviceChanged { device_id, .. } => {
                    format!("pull {collection} for {device_id}")
                }
            },
            ListenCommand::SaveResumeToken { token, .. } => match token {
                Some(token) => format!("save {token}"),
                None => "forget token".into(),
            },
            ListenCommand::TargetFailed { slot, status } => {
                format!("failed {slot:?} {:?}", status.code())
            }
            ListenCommand::ProtocolError { .. } => "protocol error".into(),
            ListenCommand::WakeAt(at) => format!("wake at {at}"),
        }
    }

    fn check(listener: &mut Listener, now: i64, event: ListenEvent, expected: &[&str]) {
        let commands: Vec<String> = listener.handle(now, event).iter().map(describe).collect();
        assert_eq!(commands, expected, "at {now}");
    }

    fn listener() -> Listener {
        Listener::new(ListenConfig::new("p", "me", 7))
    }

    /// A visible listener with the products screen open and consistent at token `t1`.
    fn listening_to_products() -> Listener {
        let mut listener = listener();
        check(&mut listener, 0, ListenEvent::Visible(true), &[]);
        check(
            &mut listener,
            0,
            ListenEvent::Watch {
                slot: TargetSlot::Screen,
                target: collection_target("products"),
                resume_token: None,
            },
            &["open"],
        );
        check(&mut listener, 1, ListenEvent::StreamOpened, &["add 2"]);
        check(
            &mut listener,
            2,
            target_change(TargetChangeType::Add, &[2], None),
            &[],
        );
        check(&mut listener, 3, changed(2, doc("products", "a", 1)), &[]);
        check(
            &mut listener,
            4,
            target_change(TargetChangeType::Current, &[2], Some("t1")),
            &[],
        );
        check(
            &mut listener,
            5,
            consistent(5, None),
            &["save t1", "snapshot Screen [+a]"],
        );
        listener
    }

    #[test]
    fn hidden_closes_after_the_grace_period_and_visible_catches_up_then_resumes() {
        let mut listener = listening_to_products();
        check(
            &mut listener,
            1_000,
            ListenEvent::Visible(false),
            &["wake at 6000"],
        );
        check(&mut listener, 5_999, ListenEvent::Tick, &[]);
        check(&mut listener, 6_000, ListenEvent::Tick, &["close"]);
        assert!(!listener.status().listening);
        check(&mut listener, 9_000, ListenEvent::Tick, &[]);
        check(
            &mut listener,
            10_000,
            ListenEvent::Visible(true),
            &["pull products to catch up", "open"],
        );
        check(
            &mut listener,
            10_100,
            ListenEvent::StreamOpened,
            &["add 2 from t1"],
        );
        assert_eq!(
            listener.documents(TargetSlot::Screen).len(),
            1,
            "the view is kept"
        );
    }

    #[test]
    fn a_quick_switch_away_and_back_keeps_the_stream() {
        let mut listener = listening_to_products();
        check(
            &mut listener,
            1_000,
            ListenEvent::Visible(false),
            &["wake at 6000"],
        );
        check(&mut listener, 2_000, ListenEvent::Visible(true), &[]);
        check(&mut listener, 6_000, ListenEvent::Tick, &[]);
        assert!(listener.status().listening);
    }

    #[test]
    fn a_failed_stream_reconnects_after_a_jittered_backoff_with_the_token() {
        let mut listener = listening_to_products();
        let commands = listener.handle(100, ListenEvent::StreamClosed { error: None });
        let [ListenCommand::WakeAt(at)] = commands[..] else {
            panic!("{commands:?}")
        };
        assert!(
            (100..=1_100).contains(&at),
            "first retry within a second: {at}"
        );
        check(&mut listener, at - 1, ListenEvent::Tick, &[]);
        check(&mut listener, at, ListenEvent::Tick, &["open"]);
        // Each failure in a row may wait longer, up to the cap.
        let mut now = at;
        for failures in 2..=12 {
            listener.handle(now, ListenEvent::StreamClosed { error: None });
            let retry_at = listener.reconnect_at.expect("a retry is scheduled");
            let ceiling = listener.config.backoff.ceiling(failures) as i64;
            assert!(
                retry_at - now <= ceiling.min(60_000),
                "after {failures} failures"
            );
            check(&mut listener, retry_at, ListenEvent::Tick, &["open"]);
            now = retry_at;
        }
        // Offline then online again retries at once, whatever the backoff had grown to.
        listener.handle(now, ListenEvent::StreamClosed { error: None });
        assert!(listener.reconnect_at.unwrap() > now + 1);
        check(&mut listener, now + 1, ListenEvent::Online(false), &[]);
        check(&mut listener, now + 2, ListenEvent::Online(true), &["open"]);
        check(
            &mut listener,
            now + 3,
            ListenEvent::StreamOpened,
            &["add 2 from t1"],
        );
    }

    #[test]
    fn offline_disabled_or_signed_out_means_no_stream() {
        let mut listener = listening_to_products();
        check(&mut listener, 10, ListenEvent::Online(false), &["close"]);
        check(
            &mut listener,
            20,
            ListenEvent::Online(true),
            &["pull products to catch up", "open"],
        );
        check(&mut listener, 30, ListenEvent::Enabled(false), &["close"]);
        check(&mut listener, 40, ListenEvent::Tick, &[]);
        check(
            &mut listener,
            50,
            ListenEvent::Enabled(true),
            &["pull products to catch up", "open"],
        );
        let unauthenticated = Status::new(Code::Unauthenticated, "expired");
        check(
            &mut listener,
            60,
            ListenEvent::StreamClosed {
                error: Some(unauthenticated),
            },
            &[],
        );
        assert!(listener.status().waiting_for_sign_in);
        check(&mut listener, 100_000, ListenEvent::Tick, &[]);
        check(&mut listener, 100_001, ListenEvent::SignedIn, &["open"]);
    }

    #[test]
    fn two_slots_at_most_and_a_new_screen_replaces_the_old_target() {
        let mut listener = listening_to_products();
        check(
            &mut listener,
            10,
            ListenEvent::Watch {
                slot: TargetSlot::Devices,
                target: collection_target(DEVICES_COLLECTION),
                resume_token: Some("d0".into()),
            },
            &["add 3 from d0"],
        );
        check(
            &mut listener,
            11,
            ListenEvent::Watch {
                slot: TargetSlot::Screen,
                target: collection_target("customers"),
                resume_token: None,
            },
            &["remove 2", "add 4"],
        );
        assert_eq!(listener.status().targets, 2);
        // Late messages for the removed target are stale, not errors.
        check(
            &mut listener,
            12,
            target_change(TargetChangeType::Add, &[2], None),
            &[],
        );
        check(&mut listener, 13, changed(2, doc("products", "z", 1)), &[]);
        check(
            &mut listener,
            14,
            target_change(TargetChangeType::Remove, &[2], None),
            &[],
        );
        assert!(listener.documents(TargetSlot::Screen).is_empty());
        // Watching what is already watched changes nothing.
        check(
            &mut listener,
            15,
            ListenEvent::Watch {
                slot: TargetSlot::Screen,
                target: collection_target("customers"),
                resume_token: None,
            },
            &[],
        );
        check(
            &mut listener,
            16,
            ListenEvent::Unwatch {
                slot: TargetSlot::Screen,
            },
            &["remove 4"],
        );
        check(
            &mut listener,
            17,
            ListenEvent::Unwatch {
                slot: TargetSlot::Devices,
            },
            &["remove 3", "close"],
        );
    }

    #[test]
    fn another_devices_newer_change_triggers_one_pull_of_that_collection() {
        let mut listener = listener();
        listener.handle(0, ListenEvent::Visible(true));
        listener.handle(
            0,
            ListenEvent::Watch {
                slot: TargetSlot::Devices,
                target: collection_target(DEVICES_COLLECTION),
                resume_token: None,
            },
        );
        listener.handle(0, ListenEvent::StreamOpened);
        listener.handle(
            0,
            ListenEvent::CollectionPulled {
                collection: "bills".into(),
                up_to: Timestamp::from_unix_millis(50),
            },
        );
        check(
            &mut listener,
            1,
            changed(2, device("me", 1, &[("products", 90)])),
            &[],
        );
        check(
            &mut listener,
            2,
            changed(2, device("d2", 1, &[("bills", 40), ("products", 60)])),
            &[],
        );
        check(
            &mut listener,
            3,
            target_change(TargetChangeType::Current, &[2], Some("t1")),
            &[],
        );
        check(
            &mut listener,
            4,
            consistent(4, None),
            &[
                "save t1",
                "pull products for d2",
                "snapshot Devices [+d2 +me]",
            ],
        );
        // The same timestamp again (another field changed) asks for nothing more.
        check(
            &mut listener,
            5,
            changed(2, device("d2", 2, &[("bills", 40), ("products", 60)])),
            &[],
        );
        check(
            &mut listener,
            6,
            consistent(6, Some("t2")),
            &["save t2", "snapshot Devices [~d2]"],
        );
        // A newer change of bills, past our checkpoint, is pulled.
        check(
            &mut listener,
            7,
            changed(2, device("d2", 3, &[("bills", 70), ("products", 60)])),
            &[],
        );
        check(
            &mut listener,
            8,
            consistent(8, Some("t3")),
            &["save t3", "pull bills for d2", "snapshot Devices [~d2]"],
        );
    }

    #[test]
    fn the_screen_collection_is_not_pulled_when_its_whole_query_is_listened_to() {
        let mut listener = listening_to_products();
        listener.handle(
            10,
            ListenEvent::Watch {
                slot: TargetSlot::Devices,
                target: collection_target(DEVICES_COLLECTION),
                resume_token: None,
            },
        );
        check(
            &mut listener,
            11,
            changed(3, device("d2", 1, &[("products", 60), ("bills", 60)])),
            &[],
        );
        check(
            &mut listener,
            12,
            target_change(TargetChangeType::Current, &[3], Some("d1")),
            &[],
        );
        check(
            &mut listener,
            13,
            consistent(13, None),
            &["save d1", "pull bills for d2", "snapshot Devices [+d2]"],
        );
    }

    /// Guards the screen target of what changed since the last pull (the app's `updatedAt >`
    /// target): it covers changes made after its time, so they are not pulled as well, and
    /// only those.
    #[test]
    fn a_screen_target_of_changes_since_a_time_covers_only_later_changes() {
        let mut listener = listener();
        check(&mut listener, 0, ListenEvent::Visible(true), &[]);
        let since = |millis| {
            TargetKind::Query(
                QueryBuilder::new(SHOP, "products")
                    .where_field(
                        FieldPath::from_segments([UPDATED_AT]),
                        crate::query_builder::Operator::GreaterThan,
                        Value::Timestamp(Timestamp::from_unix_millis(millis)),
                    )
                    .build()
                    .unwrap(),
            )
        };
        check(
            &mut listener,
            0,
            ListenEvent::Watch {
                slot: TargetSlot::Screen,
                target: since(50),
                resume_token: None,
            },
            &["open"],
        );
        check(&mut listener, 1, ListenEvent::StreamOpened, &["add 2"]);
        check(
            &mut listener,
            2,
            target_change(TargetChangeType::Current, &[2], Some("t1")),
            &[],
        );
        check(
            &mut listener,
            3,
            consistent(3, None),
            &["save t1", "snapshot Screen []"],
        );
        listener.handle(
            10,
            ListenEvent::Watch {
                slot: TargetSlot::Devices,
                target: collection_target(DEVICES_COLLECTION),
                resume_token: None,
            },
        );
        check(
            &mut listener,
            11,
            changed(3, device("d2", 1, &[("products", 60)])),
            &[],
        );
        check(
            &mut listener,
            12,
            changed(3, device("d3", 1, &[("products", 40)])),
            &[],
        );
        check(
            &mut listener,
            13,
            target_change(TargetChangeType::Current, &[3], Some("d1")),
            &[],
        );
        check(
            &mut listener,
            14,
            consistent(14, None),
            &[
                "save d1",
                "pull products for d3",
                "snapshot Devices [+d2 +d3]",
            ],
        );
    }

    #[test]
    fn a_count_mismatch_requeries_from_scratch_and_drops_what_is_gone() {
        let mut listener = listening_to_products();
        check(&mut listener, 10, changed(2, doc("products", "b", 2)), &[]);
        check(
            &mut listener,
            11,
            ListenEvent::Response(ListenResponse::Filter(ExistenceFilter {
                target_id: 2,
                count: 3,
                unchanged_names: None,
            })),
            &["remove 2", "forget token", "add 3"],
        );
        // The full result: b only (a was deleted while we missed it).
        check(
            &mut listener,
            12,
            target_change(TargetChangeType::Add, &[3], None),
            &[],
        );
        check(&mut listener, 13, changed(3, doc("products", "b", 2)), &[]);
        check(
            &mut listener,
            14,
            target_change(TargetChangeType::Current, &[3], Some("t5")),
            &[],
        );
        check(
            &mut listener,
            15,
            consistent(15, None),
            &["save t5", "snapshot Screen [-a +b]"],
        );
        check(
            &mut listener,
            16,
            target_change(TargetChangeType::Remove, &[2], None),
            &[],
        );
        // A matching count is no event at all.
        check(
            &mut listener,
            17,
            ListenEvent::Response(ListenResponse::Filter(ExistenceFilter {
                target_id: 3,
                count: 1,
                unchanged_names: None,
            })),
            &[],
        );
    }

    #[test]
    fn a_removed_target_with_a_cause_fails_that_slot_only() {
        let mut listener = listening_to_products();
        listener.handle(
            10,
            ListenEvent::Watch {
                slot: TargetSlot::Devices,
                target: collection_target(DEVICES_COLLECTION),
                resume_token: None,
            },
        );
        let denied = ListenEvent::Response(ListenResponse::TargetChange(TargetChange {
            target_change_type: TargetChangeType::Remove,
            target_ids: vec![2],
            cause: Some(RpcStatus::new(Code::PermissionDenied, "no")),
            ..TargetChange::default()
        }));
        check(
            &mut listener,
            11,
            denied,
            &["forget token", "failed Screen PermissionDenied"],
        );
        assert_eq!(listener.status().targets, 1);
        assert!(listener.status().listening);
    }

    #[test]
    fn an_add_for_a_target_never_asked_for_restarts_the_stream() {
        let mut listener = listening_to_products();
        let commands: Vec<String> = listener
            .handle(10, target_change(TargetChangeType::Add, &[99], None))
            .iter()
            .map(describe)
            .collect();
        assert_eq!(commands[..2], ["protocol error", "close"]);
        assert!(commands[2].starts_with("wake at "), "{commands:?}");
        // Messages still in flight on the dead stream are ignored.
        check(&mut listener, 11, changed(2, doc("products", "q", 1)), &[]);
    }

    #[test]
    fn the_emulators_reset_and_resend_yields_only_what_changed() {
        // Regression guard for the emulator's habit (webchannel-capture.md): every change is
        // answered with RESET, the whole result, CURRENT and a global NO_CHANGE.
        let mut listener = listening_to_products();
        check(
            &mut listener,
            10,
            target_change(TargetChangeType::Reset, &[2], Some("r")),
            &[],
        );
        check(&mut listener, 11, changed(2, doc("products", "a", 1)), &[]);
        check(&mut listener, 12, changed(2, doc("products", "b", 3)), &[]);
        check(
            &mut listener,
            13,
            target_change(TargetChangeType::Current, &[2], Some("t2")),
            &[],
        );
        check(
            &mut listener,
            14,
            consistent(14, Some("t3")),
            &["save t3", "snapshot Screen [+b]"],
        );
        check(
            &mut listener,
            20,
            target_change(TargetChangeType::Reset, &[2], None),
            &[],
        );
        check(&mut listener, 21, changed(2, doc("products", "b", 4)), &[]);
        check(
            &mut listener,
            22,
            target_change(TargetChangeType::Current, &[2], None),
            &[],
        );
        check(
            &mut listener,
            23,
            consistent(23, None),
            &["snapshot Screen [-a ~b]"],
        );
        let deleted = ListenEvent::Response(ListenResponse::DocumentDelete(DocumentDelete {
            document: format!("{SHOP}/products/b"),
            ..DocumentDelete::default()
        }));
        check(&mut listener, 24, deleted, &[]);
        check(
            &mut listener,
            25,
            consistent(25, None),
            &["snapshot Screen [-b]"],
        );
    }

    #[test]
    fn resume_tokens_are_saved_with_changes_on_close_and_otherwise_now_and_then() {
        let mut listener = listening_to_products();
        check(&mut listener, 10, consistent(10, Some("quiet1")), &[]);
        check(
            &mut listener,
            300_005,
            consistent(300_005, Some("quiet2")),
            &["save quiet2"],
        );
        check(
            &mut listener,
            300_010,
            consistent(300_010, Some("quiet3")),
            &[],
        );
        check(
            &mut listener,
            300_020,
            ListenEvent::Enabled(false),
            &["save quiet3", "close"],
        );
        let key = target_key(&collection_target("products"));
        assert!(key.contains("products"));
        let TargetKind::Query(QueryTarget { parent, .. }) = collection_target("products") else {
            panic!()
        };
        assert_eq!(parent, SHOP);
    }
}
