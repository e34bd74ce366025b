//! The sync engine: the outbox state machine, and the pulls it runs for the driver.
//!
//! Every unit of work goes `PENDING → IN_PROGRESS → SYNCED` (removed, [`Command::MarkDone`]),
//! or on a failed attempt `FAILED` (outcome unknown: read the marker; precondition failed: read
//! the marker, then the documents, and merge) → `RETRY` (exponential backoff with full jitter,
//! capped, never shorter than `Retry-After`) → back to `PENDING`, or `DEAD_LETTER` after
//! [`OutboxConfig::max_server_failures`] server errors or at once on a permanent error. A dead
//! letter waits for a person to retry or discard it. Network failures never dead-letter a unit:
//! a shop can be offline for days.
//!
//! Ordering and pipelining: units are taken in creation order (UUID v7 ids sort by time). A unit
//! waits while an earlier unit that touches one of its documents is not yet synced, so changes to
//! a document reach the server in the order they were made. Units touching disjoint documents are
//! pipelined: up to [`OutboxConfig::max_commits_in_flight`] commits are on the wire at once.
//!
//! Coalescing: a pending unit joins the commit being formed when it shares a document with it and
//! nothing earlier holds any of its documents back; its writes fold into the commit's (see
//! [`crate::unit`]). Only whole units are ever combined, each with its own marker, so a commit
//! applies all its units exactly once or none, and units stay separate in the store: a unit can
//! always be sent, merged or rejected on its own later.
//!
//! Who sends: a unit's commit and the reads about it carry the token of its sender
//! ([`Unit::sender`]), so units of different senders never share a commit. When the backend
//! refuses a sender's token (`UNAUTHENTICATED`), that sender's units wait (holding their
//! documents back from later units, to keep the order) until [`Event::SignedIn`] names them;
//! every other sender's units go on.
//!
//! Exactly-once comes from the markers: when the outcome of a send is unknown, or a precondition
//! fails, the engine reads each unit's marker before deciding whether that unit was applied.

use std::collections::{BTreeMap, BTreeSet};

use counterbook_firestore_wire::{
    Code, CommitRequest, CommitResponse, Document, StructuredQuery, Timestamp, Value,
};

use serde::{Deserialize, Serialize};

use crate::backoff::{Backoff, SplitMix64};
use crate::conflict::{
    check_unit_against_bases, merge_unit, BusinessRules, ConflictEntry, UnitMerge,
};
use crate::pull::{Checkpoint, PullQueryId, PullStep, PulledPage, Pulls};
use crate::sorted_map::{SortedMap, SortedSet};
use crate::unit::{
    commit_request_for_units, marker_path, BaseVersion, CommitContext, DocumentWrite, Unit, UnitId,
};

/// Firestore refuses commits with more writes than this.
const MAX_WRITES_PER_COMMIT: usize = 500;

/// The default overlap window of pulls: Google's Firestore emulator was measured stamping
/// `REQUEST_TIME` up to about 350 ms before its commits became visible under six concurrent
/// committers, and up to about 610 ms in the three-tablet e2e, on two loaded cores; three
/// seconds leave a wide margin at the cost of re-reading, once, what changed in the three
/// seconds before a pull.
pub const DEFAULT_PULL_OVERLAP_MILLIS: i64 = 3_000;

/// Where the engine sends things, and its limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxConfig {
    pub project: String,
    pub database: String,
    pub shop_id: String,
    pub device_id: String,
    pub backoff: Backoff,
    /// Failures answered by a server (5xx, 429, ...) before a unit becomes a dead letter.
    /// Network failures never count: a shop can be offline for days.
    pub max_server_failures: u32,
    /// Commits on the wire at once (each touching documents no other one touches).
    pub max_commits_in_flight: usize,
    /// Units coalesced into one commit at most (Firestore allows 500 writes per commit).
    pub max_units_per_commit: usize,
    /// Documents per pull page.
    pub pull_page_size: i32,
    /// How far before the first read of a pull the next pull reads again: the longest a backend
    /// may take from stamping `updatedAt` to making the commit visible (see [`crate::pull`]).
    /// Small and bounded, since every document changed in the window is read again once.
    pub pull_overlap_millis: i64,
    pub business_rules: BusinessRules,
    /// Seeds the jitter; the driver passes a random seed, tests a fixed one.
    pub seed: u64,
    /// Each commit also writes this device's `devices` document with the collections it
    /// touched, for other devices' listeners ([`crate::unit::device_changes_write`]). Off by
    /// default; the app turns it on.
    pub record_device_changes: bool,
}

impl OutboxConfig {
    pub fn new(project: &str, shop_id: &str, device_id: &str, seed: u64) -> Self {
        OutboxConfig {
            project: project.to_owned(),
            database: "(default)".to_owned(),
            shop_id: shop_id.to_owned(),
            device_id: device_id.to_owned(),
            backoff: Backoff::default(),
            max_server_failures: 8,
            max_commits_in_flight: 4,
            max_units_per_commit: 16,
            pull_page_size: 100,
            pull_overlap_millis: DEFAULT_PULL_OVERLAP_MILLIS,
            business_rules: BusinessRules::default(),
            seed,
            record_device_changes: false,
        }
    }

    fn commit_context(&self) -> CommitContext<'_> {
        CommitContext {
            project: &self.project,
            database: &self.database,
            shop_id: &self.shop_id,
            device_id: &self.device_id,
            record_device_changes: self.record_device_changes,
        }
    }
}

/// Why a request did not succeed, as the driver saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushFailure {
    /// No reply: offline, connection reset, timeout. The server may or may not have applied it.
    Network(String),
    /// The server answered with an error status.
    Server {
        http_status: u16,
        code: Code,
        message: String,
        retry_after_millis: Option<u64>,
    },
    /// A success status with a body that is not the expected JSON. The server probably applied
    /// the commit, so this is treated as an unknown outcome.
    MalformedReply(String),
}

impl PushFailure {
    /// A sentence for the status panel.
    pub fn describe(&self) -> String {
        match self {
            PushFailure::Network(detail) => format!("network error: {detail}"),
            PushFailure::Server {
                http_status,
                code,
                message,
                ..
            } => format!("server answered {http_status} {code:?}: {message}"),
            PushFailure::MalformedReply(detail) => format!("unreadable server reply: {detail}"),
        }
    }
}

/// What the outbox does with a server error (DESIGN.md section 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Try again later with backoff: `UNAVAILABLE`, `RESOURCE_EXHAUSTED`, `DEADLINE_EXCEEDED`,
    /// HTTP 5xx and 429. `ABORTED` too: on a commit outside a transaction Firestore uses it
    /// only for contention, which a later resend resolves (a stale version is
    /// `FAILED_PRECONDITION`).
    Transient,
    /// A precondition failed: our own marker (already applied) or a real conflict.
    PreconditionFailed,
    /// Sign in again; the sender's units wait (others go on) and nothing is dropped.
    Unauthenticated,
    /// Retrying cannot help (`INVALID_ARGUMENT`, `PERMISSION_DENIED`, ...): dead-letter the unit.
    Permanent,
}

/// Classifies a server error.
pub fn classify(http_status: u16, code: Code) -> ErrorClass {
    match code {
        Code::AlreadyExists | Code::FailedPrecondition | Code::NotFound => {
            ErrorClass::PreconditionFailed
        }
        Code::Unauthenticated => ErrorClass::Unauthenticated,
        Code::Unavailable
        | Code::ResourceExhausted
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::Internal
        | Code::Unknown
        | Code::Cancelled => ErrorClass::Transient,
        Code::InvalidArgument
        | Code::PermissionDenied
        | Code::OutOfRange
        | Code::Unimplemented
        | Code::DataLoss
        | Code::Ok => {
            if http_status >= 500 && code != Code::Unimplemented {
                ErrorClass::Transient
            } else {
                ErrorClass::Permanent
            }
        }
    }
}

/// A few words for people about why the server refused something.
fn describe_code(code: Code) -> &'static str {
    match code {
        Code::InvalidArgument => "invalid data",
        Code::PermissionDenied => "permission denied",
        Code::OutOfRange => "a value out of range",
        Code::Unimplemented => "not supported by this server",
        Code::DataLoss => "data loss on the server",
        Code::FailedPrecondition | Code::AlreadyExists | Code::NotFound => "a conflict",
        Code::Unauthenticated => "not signed in",
        _ => "a server error",
    }
}

/// Why a unit stopped for good (a dead letter), typed for the app to word in the tablet's
/// language. The server's words in it are data, shown as they came. The store keeps it beside
/// the unit (in serde, an object tagged by `kind`: `{"kind": "refused", "code":
/// "PERMISSION_DENIED", "message": "..."}`); a reason stored before reasons were typed is its
/// English text, read back as [`DeadLetterReason::Text`]. Its `Display` is English, for logs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", remote = "Self")]
pub enum DeadLetterReason {
    /// The server refused the unit for good (`PERMISSION_DENIED`, `INVALID_ARGUMENT`, ...).
    Refused { code: Code, message: String },
    /// The server failed `failures` times in a row; `checking`: while finding out whether an
    /// earlier send was applied. `message`: the server's last words.
    GaveUp {
        failures: u32,
        checking: bool,
        message: String,
    },
    /// The server refused to say whether an earlier send was applied (reading its marker).
    CannotCheck { code: Code, message: String },
    /// A reason stored before reasons were typed: its English text.
    Text { text: String },
}

impl DeadLetterReason {
    /// What the server said, as it said it (`None` for a reason stored as text).
    pub fn server_message(&self) -> Option<&str> {
        match self {
            DeadLetterReason::Refused { message, .. }
            | DeadLetterReason::GaveUp { message, .. }
            | DeadLetterReason::CannotCheck { message, .. } => Some(message),
            DeadLetterReason::Text { .. } => None,
        }
    }
}

impl Serialize for DeadLetterReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        DeadLetterReason::serialize(self, serializer)
    }
}

impl<'de> Deserialize<'de> for DeadLetterReason {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Text(String),
            #[serde(with = "DeadLetterReason")]
            Typed(DeadLetterReason),
        }
        Ok(match Stored::deserialize(deserializer)? {
            Stored::Text(text) => DeadLetterReason::Text { text },
            Stored::Typed(reason) => reason,
        })
    }
}

impl std::fmt::Display for DeadLetterReason {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeadLetterReason::Refused { code, message } => write!(
                out,
                "the server refused it ({}): {}",
                describe_code(*code),
                message.trim()
            ),
            DeadLetterReason::GaveUp {
                failures,
                checking,
                message,
            } => {
                let what = if *checking {
                    "checking whether it was applied "
                } else {
                    ""
                };
                write!(
                    out,
                    "gave up {what}after {failures} server errors; last: {message}"
                )
            }
            DeadLetterReason::CannotCheck { message, .. } => {
                write!(out, "cannot check whether it was applied: {message}")
            }
            DeadLetterReason::Text { text } => out.write_str(text),
        }
    }
}

/// The last thing that went wrong in the engine, for the status panel: typed, for the app to
/// word (the failure's details are data). Its `Display` is English, for logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncProblem {
    /// Sending a commit, or reading whether one was applied, failed.
    Send(PushFailure),
    /// Pulling a collection failed.
    Pull(PushFailure),
}

impl SyncProblem {
    /// The failure, whichever way it happened.
    pub fn failure(&self) -> &PushFailure {
        match self {
            SyncProblem::Send(failure) | SyncProblem::Pull(failure) => failure,
        }
    }
}

impl std::fmt::Display for SyncProblem {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncProblem::Send(failure) => out.write_str(&failure.describe()),
            SyncProblem::Pull(failure) => write!(out, "pull failed: {}", failure.describe()),
        }
    }
}

/// Where one unit is in its life. A synced unit is no longer in the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnitState {
    /// PENDING: waiting for its turn to be sent.
    Pending,
    /// IN_PROGRESS: a commit with it is on the wire.
    InProgress,
    /// FAILED: the last attempt did not succeed and the engine is finding out why.
    Failed(Recovery),
    /// RETRY: backing off until `not_before` (Unix ms); then it does `then`.
    Retry { not_before: i64, then: Resume },
    /// DEAD_LETTER: stopped for good until a person retries or discards it.
    DeadLetter { reason: DeadLetterReason },
}

/// What a failed unit is finding out. `reading` is true while the read is on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Was it applied? `after_conflict`: a precondition failed, so if the marker is missing,
    /// the unit's documents must be read and merged.
    CheckMarker { reading: bool, after_conflict: bool },
    /// Reading the server's versions of the unit's documents, to merge with them.
    ReadDocuments { reading: bool },
}

/// What a unit does when its backoff ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// Send the commit again.
    Send,
    /// Read the marker again (the outcome of an earlier send is still unknown).
    CheckMarker { after_conflict: bool },
    /// Read the documents again (a conflict is being resolved).
    ReadDocuments,
}

/// Inputs to the engine.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Units found in the store at start-up, in any order. Dead letters come with their reason.
    Loaded {
        pending: Vec<Unit>,
        dead_letters: Vec<(Unit, DeadLetterReason)>,
    },
    /// A new unit was written to the store (together with its entities, in one transaction).
    LocalWrite(Unit),
    /// The commit sent as `unit_id` (the id in [`Command::SendCommit`]) succeeded.
    CommitSucceeded { unit_id: UnitId },
    /// As [`Event::CommitSucceeded`], with the server's reply: its update times let later edits
    /// of the same documents check the right version without an extra round trip.
    CommitApplied {
        unit_id: UnitId,
        response: CommitResponse,
    },
    CommitFailed {
        unit_id: UnitId,
        failure: PushFailure,
    },
    /// The marker read finished: `exists` says whether the unit was applied.
    MarkerRead { unit_id: UnitId, exists: bool },
    MarkerReadFailed {
        unit_id: UnitId,
        failure: PushFailure,
    },
    /// The documents asked for by [`Command::ReadDocuments`], by path (`None`: no such document).
    DocumentsRead {
        unit_id: UnitId,
        documents: Vec<(String, Option<Document>)>,
    },
    DocumentsReadFailed {
        unit_id: UnitId,
        failure: PushFailure,
    },
    /// Pull `collection` to the end, from `checkpoint` as the store holds it.
    PullRequested {
        collection: String,
        checkpoint: Option<Checkpoint>,
    },
    /// The reply to [`Command::RunPullQuery`]: documents in query order, and the reply's
    /// `readTime` (every element of a `:runQuery` reply carries it).
    PullPage {
        collection: String,
        /// The query answered ([`Command::RunPullQuery`]'s).
        query_id: PullQueryId,
        documents: Vec<Document>,
        read_time: Option<Timestamp>,
    },
    /// The store applied the page of [`Command::ApplyPulledPage`] with its checkpoint
    /// (`query_id`: the page's).
    PulledPageApplied {
        collection: String,
        query_id: PullQueryId,
    },
    /// The query `query_id` or the store transaction of its page failed; the pull stops.
    PullFailed {
        collection: String,
        query_id: PullQueryId,
        failure: PushFailure,
    },
    /// The browser's idea of connectivity changed.
    Online(bool),
    /// Some request just got a reply from the server after requests failed for lack of one
    /// (a pull succeeded, say): units backing off after network failures retry now instead of
    /// waiting out a backoff grown during the outage.
    ServerReachable,
    /// `sender`'s requests carry a token the backend may accept again (refreshed, or they
    /// signed in again) after `UNAUTHENTICATED`: their units go on. `None`: the units that
    /// name no sender ([`Unit::sender`]).
    SignedIn { sender: Option<String> },
    /// The user asked to retry a dead letter.
    RetryDeadLetter { unit_id: UnitId },
    /// The user discarded a dead letter.
    DiscardDeadLetter { unit_id: UnitId },
    /// A timer the engine asked for fired (or any periodic wake-up).
    Tick,
}

/// Outputs for the driver to execute.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// POST the commit; answer with `CommitApplied` (or `CommitSucceeded`) or `CommitFailed`
    /// naming this `unit_id` (the first of the units the commit carries).
    SendCommit {
        unit_id: UnitId,
        request: CommitRequest,
    },
    /// GET the marker document (path relative to the database root); answer with `MarkerRead`.
    ReadMarker { unit_id: UnitId, path: String },
    /// GET these documents (paths relative to the database root); answer with `DocumentsRead`.
    ReadDocuments { unit_id: UnitId, paths: Vec<String> },
    /// Remove the unit from the store's outbox: it reached the server exactly once.
    MarkDone { unit_id: UnitId },
    /// Replace the stored unit with this version (merged with the server's, or with its bases
    /// brought up to date), so a restart does not merge it again.
    RewriteUnit { unit: Unit },
    /// Add these entries to the conflict inbox (ids are stable: adding one twice keeps one).
    RecordConflicts { entries: Vec<ConflictEntry> },
    /// Remove the unit from the outbox WITHOUT it reaching the server (a conflict rejected it,
    /// see the inbox); the store shows its documents as the server has them.
    Reject { unit_id: UnitId },
    /// Keep the unit in the store, flagged as a dead letter with this reason.
    MarkDeadLetter {
        unit_id: UnitId,
        reason: DeadLetterReason,
    },
    /// Undo `MarkDeadLetter` in the store: the unit is pending again.
    MarkPending { unit_id: UnitId },
    /// Delete the unit from the store at the user's request.
    Discard { unit_id: UnitId },
    /// POST `:runQuery` with this query under `shops/{shop}`; answer with `PullPage` or
    /// `PullFailed`.
    RunPullQuery {
        collection: String,
        /// Named again in the answer.
        query_id: PullQueryId,
        query: StructuredQuery,
    },
    /// Store the page's documents and its checkpoint in ONE transaction, record its conflicts,
    /// then answer `PulledPageApplied` (or `PullFailed`).
    ApplyPulledPage(PulledPage),
    /// Send a `Tick` at this time (Unix ms) unless one comes earlier.
    WakeAt(i64),
}

/// Counts for the header badge and the status panel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboxStatus {
    /// Units not yet known to be on the server (including in progress), excluding dead letters.
    pub pending: usize,
    /// Units in a commit on the wire.
    pub in_flight: usize,
    /// Units whose last attempt failed and which are finding out why or backing off.
    pub retrying: usize,
    pub dead_letters: usize,
    /// Collections being pulled.
    pub pulling: usize,
    /// Set while some units wait for their sender to sign in again.
    pub paused_for_sign_in: bool,
    /// The senders whose units wait for a sign-in (their token was refused), with how many
    /// units each has waiting. Other senders' units go on meanwhile.
    pub waiting_for_sign_in: SortedMap<Option<String>, usize>,
    /// Units not yet on the server (dead letters excluded), by sender.
    pub pending_by_sender: SortedMap<Option<String>, usize>,
    pub last_error: Option<SyncProblem>,
}

#[derive(Clone, Debug)]
struct Entry {
    unit: Unit,
    state: UnitState,
    server_failures: u32,
    network_failures: u32,
    /// Travel in a commit of its own: a commit it shared was refused and the culprit is unknown.
    send_alone: bool,
    /// How many units its last commit carried.
    last_commit_size: usize,
}

/// A commit on the wire: its units in order, and the paths of its folded document writes in
/// request order (so that the reply's update times can be matched to documents).
#[derive(Clone, Debug)]
struct CommitInFlight {
    unit_ids: Vec<UnitId>,
    written: Vec<String>,
}

/// The version a write checked: its base `updateTime` (as micros), or none.
type BaseVersionKey = i64;

/// The sync engine. See the module documentation.
#[derive(Clone, Debug)]
pub struct Outbox {
    config: OutboxConfig,
    /// Keyed by unit id; UUID v7 ids sort by creation time, so iteration is send order.
    entries: BTreeMap<UnitId, Entry>,
    /// Keyed by the id of the first unit each carries.
    commits: SortedMap<UnitId, CommitInFlight>,
    pulls: Pulls,
    online: bool,
    /// Senders whose token the backend refused (`UNAUTHENTICATED`) and who have not signed in
    /// again since: their units wait, everyone else's go on.
    waiting_for_sign_in: SortedSet<Option<String>>,
    last_error: Option<SyncProblem>,
    rng: SplitMix64,
}

impl Outbox {
    pub fn new(config: OutboxConfig) -> Self {
        let rng = SplitMix64::new(config.seed);
        let pulls = Pulls::new(config.pull_page_size, config.pull_overlap_millis);
        Outbox {
            config,
            entries: BTreeMap::new(),
            commits: SortedMap::new(),
            pulls,
            online: true,
            waiting_for_sign_in: SortedSet::new(),
            last_error: None,
            rng,
        }
    }

    pub fn config(&self) -> &OutboxConfig {
        &self.config
    }

    pub fn status(&self) -> OutboxStatus {
        let mut status = OutboxStatus {
            paused_for_sign_in: !self.waiting_for_sign_in.is_empty(),
            last_error: self.last_error.clone(),
            pulling: self.pulls.running(),
            ..OutboxStatus::default()
        };
        for entry in self.entries.values() {
            match entry.state {
                UnitState::DeadLetter { .. } => status.dead_letters += 1,
                UnitState::InProgress => {
                    status.in_flight += 1;
                    status.pending += 1;
                }
                UnitState::Failed(_) | UnitState::Retry { .. } => {
                    status.retrying += 1;
                    status.pending += 1;
                }
                UnitState::Pending => status.pending += 1,
            }
            if matches!(entry.state, UnitState::DeadLetter { .. }) {
                continue;
            }
            *status
                .pending_by_sender
                .get_or_insert_with(entry.unit.sender.clone(), usize::default) += 1;
            if self.waiting_for_sign_in.contains(&entry.unit.sender) {
                *status
                    .waiting_for_sign_in
                    .get_or_insert_with(entry.unit.sender.clone(), usize::default) += 1;
            }
        }
        status
    }

    pub fn state_of(&self, unit_id: &str) -> Option<&UnitState> {
        self.entries.get(unit_id).map(|entry| &entry.state)
    }

    /// The unit as the engine holds it now (merged versions replace the stored one).
    pub fn unit(&self, unit_id: &str) -> Option<&Unit> {
        self.entries.get(unit_id).map(|entry| &entry.unit)
    }

    /// Dead letters with their reasons, oldest first.
    pub fn dead_letters(&self) -> Vec<(&Unit, &DeadLetterReason)> {
        self.entries
            .values()
            .filter_map(|entry| match &entry.state {
                UnitState::DeadLetter { reason } => Some((&entry.unit, reason)),
                _ => None,
            })
            .collect()
    }

    /// Whether nothing is left to do: no unit waits (dead letters aside) and no pull runs.
    /// Whether a pull of `collection` is running (the driver learns a pull it asked for has
    /// finished when this turns false).
    pub fn is_pulling(&self, collection: &str) -> bool {
        self.pulls.is_pulling(collection)
    }

    pub fn is_idle(&self) -> bool {
        self.pulls.running() == 0
            && self
                .entries
                .values()
                .all(|entry| matches!(entry.state, UnitState::DeadLetter { .. }))
    }

    /// Feeds one event in; returns what the driver must do, in order.
    pub fn handle(&mut self, now_millis: i64, event: Event) -> Vec<Command> {
        let mut commands = Vec::new();
        match event {
            Event::Loaded {
                pending,
                dead_letters,
            } => {
                // Units loaded at start-up may have been sent just before a crash; the marker
                // precondition makes a resend safe, so they start as plain pending units.
                for unit in pending {
                    self.insert(unit, UnitState::Pending);
                }
                for (unit, reason) in dead_letters {
                    self.insert(unit, UnitState::DeadLetter { reason });
                }
            }
            Event::LocalWrite(unit) => {
                if self.entries.contains_key(&unit.id) {
                    return self.pump(now_millis, commands);
                }
                if let Some(conflict) = check_unit_against_bases(&unit) {
                    commands.push(Command::RecordConflicts {
                        entries: vec![conflict],
                    });
                    commands.push(Command::Reject { unit_id: unit.id });
                } else {
                    self.insert(unit, UnitState::Pending);
                }
            }
            Event::CommitSucceeded { unit_id } => {
                self.on_commit_succeeded(&unit_id, None, &mut commands)
            }
            Event::CommitApplied { unit_id, response } => {
                self.on_commit_succeeded(&unit_id, Some(&response), &mut commands)
            }
            Event::CommitFailed { unit_id, failure } => {
                if let Some(commit) = self.commits.remove(&unit_id) {
                    self.on_commit_failed(now_millis, commit, failure, &mut commands);
                }
            }
            Event::MarkerRead { unit_id, exists } => {
                if let Some(after_conflict) = self.reading_marker(&unit_id) {
                    self.on_marker_read(&unit_id, exists, after_conflict, &mut commands);
                }
            }
            Event::MarkerReadFailed { unit_id, failure } => {
                if let Some(after_conflict) = self.reading_marker(&unit_id) {
                    self.on_read_failed(
                        now_millis,
                        &unit_id,
                        Resume::CheckMarker { after_conflict },
                        failure,
                        &mut commands,
                    );
                }
            }
            Event::DocumentsRead { unit_id, documents } => {
                if self.reading_documents(&unit_id) {
                    self.on_documents_read(now_millis, &unit_id, documents, &mut commands);
                }
            }
            Event::DocumentsReadFailed { unit_id, failure } => {
                if self.reading_documents(&unit_id) {
                    self.on_read_failed(
                        now_millis,
                        &unit_id,
                        Resume::ReadDocuments,
                        failure,
                        &mut commands,
                    );
                }
            }
            Event::PullRequested {
                collection,
                checkpoint,
            } => {
                let step = self.pulls.request(&collection, checkpoint);
                commands.extend(step.map(pull_command));
            }
            Event::PullPage {
                collection,
                query_id,
                documents,
                read_time,
            } => {
                let steps = self.pulls.on_page(
                    &collection,
                    query_id,
                    documents,
                    read_time,
                    &self.config.business_rules,
                );
                commands.extend(steps.into_iter().map(pull_command));
                // A reply from the server: network backoffs are no longer warranted.
                self.cut_network_backoffs(now_millis);
            }
            Event::PulledPageApplied {
                collection,
                query_id,
            } => {
                let steps =
                    self.pulls
                        .on_applied(&collection, query_id, &self.config.business_rules);
                commands.extend(steps.into_iter().map(pull_command));
            }
            Event::PullFailed {
                collection,
                query_id,
                failure,
            } => {
                if self.pulls.on_failed(&collection, query_id) {
                    self.last_error = Some(SyncProblem::Pull(failure));
                }
            }
            Event::Online(online) => self.online = online,
            Event::ServerReachable => self.cut_network_backoffs(now_millis),
            Event::SignedIn { sender } => {
                self.waiting_for_sign_in.remove(&sender);
            }
            Event::RetryDeadLetter { unit_id } => {
                if self.is_in_state(&unit_id, |s| matches!(s, UnitState::DeadLetter { .. })) {
                    if let Some(entry) = self.entries.get_mut(&unit_id) {
                        entry.server_failures = 0;
                        entry.network_failures = 0;
                        // It may have been refused because of another unit it travelled with.
                        entry.send_alone = true;
                        // The unit may have been applied before it was dead-lettered (a lost
                        // reply, then errors): the marker makes a resend safe.
                        entry.state = UnitState::Pending;
                    }
                    commands.push(Command::MarkPending { unit_id });
                }
            }
            Event::DiscardDeadLetter { unit_id } => {
                if self.is_in_state(&unit_id, |s| matches!(s, UnitState::DeadLetter { .. })) {
                    self.entries.remove(&unit_id);
                    commands.push(Command::Discard { unit_id });
                }
            }
            Event::Tick => {}
        }
        self.pump(now_millis, commands)
    }

    fn insert(&mut self, unit: Unit, state: UnitState) {
        self.entries.insert(
            unit.id.clone(),
            Entry {
                unit,
                state,
                server_failures: 0,
                network_failures: 0,
                send_alone: false,
                last_commit_size: 1,
            },
        );
    }

    fn is_in_state(&self, unit_id: &str, predicate: impl Fn(&UnitState) -> bool) -> bool {
        self.entries
            .get(unit_id)
            .is_some_and(|entry| predicate(&entry.state))
    }

    fn reading_marker(&self, unit_id: &str) -> Option<bool> {
        match self.entries.get(unit_id).map(|entry| &entry.state) {
            Some(UnitState::Failed(Recovery::CheckMarker {
                reading: true,
                after_conflict,
            })) => Some(*after_conflict),
            _ => None,
        }
    }

    fn reading_documents(&self, unit_id: &str) -> bool {
        self.is_in_state(unit_id, |state| {
            matches!(
                state,
                UnitState::Failed(Recovery::ReadDocuments { reading: true })
            )
        })
    }

    /// The backend refused the token of `unit_id`'s sender: their units wait for a sign-in.
    fn wait_for_sign_in_of(&mut self, unit_id: &str) {
        if let Some(entry) = self.entries.get(unit_id) {
            self.waiting_for_sign_in.insert(entry.unit.sender.clone());
        }
    }

    fn set_state(&mut self, unit_id: &str, state: UnitState) {
        if let Some(entry) = self.entries.get_mut(unit_id) {
            entry.state = state;
        }
    }

    fn cut_network_backoffs(&mut self, now_millis: i64) {
        for entry in self.entries.values_mut() {
            if let UnitState::Retry { not_before, .. } = &mut entry.state {
                // A server that answered with errors asked us to back off; that still holds.
                if entry.server_failures == 0 {
                    *not_before = (*not_before).min(now_millis);
                }
            }
        }
    }

    fn dead_letter(
        &mut self,
        unit_id: &str,
        reason: DeadLetterReason,
        commands: &mut Vec<Command>,
    ) {
        self.set_state(
            unit_id,
            UnitState::DeadLetter {
                reason: reason.clone(),
            },
        );
        commands.push(Command::MarkDeadLetter {
            unit_id: unit_id.to_owned(),
            reason,
        });
    }

    /// Schedules a retry for a unit whose last attempt failed transiently.
    fn back_off(
        &mut self,
        now_millis: i64,
        unit_id: &str,
        retry_after_millis: Option<u64>,
        then: Resume,
    ) {
        let Some(entry) = self.entries.get_mut(unit_id) else {
            return;
        };
        let attempt = entry.server_failures + entry.network_failures;
        let delay = self
            .config
            .backoff
            .delay(attempt.max(1), retry_after_millis, &mut self.rng);
        entry.state = UnitState::Retry {
            not_before: now_millis.saturating_add(delay as i64),
            then,
        };
    }

    fn count_server_failure(&mut self, unit_id: &str) -> u32 {
        match self.entries.get_mut(unit_id) {
            Some(entry) => {
                entry.server_failures += 1;
                entry.server_failures
            }
            None => 0,
        }
    }

    /// Backs off after a server error, or dead-letters the unit once the limit is reached.
    fn back_off_or_give_up(
        &mut self,
        now_millis: i64,
        unit_id: &str,
        retry_after_millis: Option<u64>,
        then: Resume,
        last_error: &str,
        commands: &mut Vec<Command>,
    ) {
        let failures = self.count_server_failure(unit_id);
        if failures >= self.config.max_server_failures {
            let reason = DeadLetterReason::GaveUp {
                failures,
                checking: !matches!(then, Resume::Send),
                message: last_error.to_owned(),
            };
            self.dead_letter(unit_id, reason, commands);
        } else {
            self.back_off(now_millis, unit_id, retry_after_millis, then);
        }
    }

    fn on_commit_succeeded(
        &mut self,
        commit_id: &str,
        response: Option<&CommitResponse>,
        commands: &mut Vec<Command>,
    ) {
        let Some(commit) = self.commits.remove(commit_id) else {
            return;
        };
        self.last_error = None;
        let mut synced = Vec::new();
        for unit_id in &commit.unit_ids {
            if let Some(entry) = self.entries.remove(unit_id) {
                commands.push(Command::MarkDone {
                    unit_id: unit_id.clone(),
                });
                synced.push(entry.unit);
            }
        }
        // The reply's write results come in request order: the folded writes, then markers.
        let mut update_times: SortedMap<&str, BaseVersionKey> = SortedMap::new();
        if let Some(response) = response {
            for (path, result) in commit.written.iter().zip(&response.write_results) {
                if let Some(update_time) = result.update_time {
                    update_times.insert(path.as_str(), update_time.to_unix_micros());
                }
            }
        }
        for unit in &synced {
            self.advance_later_bases(unit, &update_times, commands);
        }
    }

    /// A unit reached the server: later pending edits of its documents started from the same
    /// server version, but that version now includes this unit's own changes. Folding those into
    /// their bases keeps the three-way merge from calling our own change a conflict; a known
    /// update time also spares them a failed precondition.
    fn advance_later_bases(
        &mut self,
        synced: &Unit,
        update_times: &SortedMap<&str, BaseVersionKey>,
        commands: &mut Vec<Command>,
    ) {
        for synced_write in &synced.writes {
            let synced_base = version_key(synced_write);
            let new_time = update_times.get(synced_write.path.as_str()).copied();
            for entry in self.entries.values_mut() {
                // Every later unit, whatever its state: one that is resolving a conflict needs
                // the right base most of all. None of them is in progress: it would have had to
                // wait for the synced unit, which touches the same document.
                if entry.unit.id <= synced.id {
                    continue;
                }
                let mut changed = false;
                for write in &mut entry.unit.writes {
                    if write.path != synced_write.path || version_key(write) != synced_base {
                        continue;
                    }
                    let mut fields = write
                        .base
                        .as_ref()
                        .map(|base| base.fields.clone())
                        .unwrap_or_default();
                    apply_fields(&mut fields, synced_write);
                    let update_time = match (new_time, &write.base) {
                        (Some(micros), _) => Timestamp::from_unix_micros(micros),
                        (None, Some(base)) => base.update_time,
                        // The document now exists on the server in a version we do not know.
                        // An edit of it must not go unchecked (a blind void could apply twice),
                        // so it checks a version no document has: the precondition fails once,
                        // and the conflict path reads the real version and merges against ours.
                        (None, None) => Timestamp::default(),
                    };
                    write.base = Some(BaseVersion {
                        update_time,
                        fields,
                    });
                    changed = true;
                }
                if changed {
                    commands.push(Command::RewriteUnit {
                        unit: entry.unit.clone(),
                    });
                }
            }
        }
    }

    fn on_commit_failed(
        &mut self,
        now_millis: i64,
        commit: CommitInFlight,
        failure: PushFailure,
        commands: &mut Vec<Command>,
    ) {
        self.last_error = Some(SyncProblem::Send(failure.clone()));
        let unit_ids: Vec<UnitId> = commit
            .unit_ids
            .into_iter()
            .filter(|id| self.is_in_state(id, |s| *s == UnitState::InProgress))
            .collect();
        match failure {
            PushFailure::Network(_) | PushFailure::MalformedReply(_) => {
                // The commit may have been applied: find out before sending again.
                for unit_id in &unit_ids {
                    if let Some(entry) = self.entries.get_mut(unit_id) {
                        entry.network_failures += 1;
                        entry.state = UnitState::Failed(Recovery::CheckMarker {
                            reading: false,
                            after_conflict: false,
                        });
                    }
                }
            }
            PushFailure::Server {
                http_status,
                code,
                message,
                retry_after_millis,
            } => match classify(http_status, code) {
                ErrorClass::Transient => {
                    for unit_id in &unit_ids {
                        self.back_off_or_give_up(
                            now_millis,
                            unit_id,
                            retry_after_millis,
                            Resume::Send,
                            &message,
                            commands,
                        );
                    }
                }
                ErrorClass::PreconditionFailed => {
                    for unit_id in &unit_ids {
                        self.set_state(
                            unit_id,
                            UnitState::Failed(Recovery::CheckMarker {
                                reading: false,
                                after_conflict: true,
                            }),
                        );
                    }
                }
                ErrorClass::Unauthenticated => {
                    // Refused before anything was applied. Every unit of a commit has the
                    // same sender: only that sender's units wait.
                    for unit_id in &unit_ids {
                        self.wait_for_sign_in_of(unit_id);
                        self.set_state(unit_id, UnitState::Pending);
                    }
                }
                ErrorClass::Permanent if unit_ids.len() > 1 => {
                    // One of them is refused, but which? Each goes again on its own, and only
                    // the one refused alone becomes a dead letter.
                    for unit_id in &unit_ids {
                        if let Some(entry) = self.entries.get_mut(unit_id) {
                            entry.send_alone = true;
                            entry.state = UnitState::Pending;
                        }
                    }
                }
                ErrorClass::Permanent => {
                    let reason = DeadLetterReason::Refused {
                        code,
                        message: message.trim().to_owned(),
                    };
                    for unit_id in &unit_ids {
                        self.dead_letter(unit_id, reason.clone(), commands);
                    }
                }
            },
        }
    }

    fn on_marker_read(
        &mut self,
        unit_id: &str,
        exists: bool,
        after_conflict: bool,
        commands: &mut Vec<Command>,
    ) {
        if exists {
            if let Some(entry) = self.entries.remove(unit_id) {
                self.last_error = None;
                commands.push(Command::MarkDone {
                    unit_id: unit_id.to_owned(),
                });
                self.advance_later_bases(&entry.unit, &SortedMap::new(), commands);
            }
            return;
        }
        let checks_versions = self.entries.get(unit_id).is_some_and(|entry| {
            entry
                .unit
                .writes
                .iter()
                .any(|write| write.required_update_time().is_some())
        });
        let next = if after_conflict && checks_versions {
            UnitState::Failed(Recovery::ReadDocuments { reading: false })
        } else {
            // Not applied, and nothing of this unit can be stale: send it again (a unit it
            // travelled with may have been the stale one).
            UnitState::Pending
        };
        self.set_state(unit_id, next);
    }

    fn on_documents_read(
        &mut self,
        now_millis: i64,
        unit_id: &str,
        documents: Vec<(String, Option<Document>)>,
        commands: &mut Vec<Command>,
    ) {
        let Some(entry) = self.entries.get(unit_id) else {
            return;
        };
        let last_commit_size = entry.last_commit_size;
        let mut server = BTreeMap::new();
        server.extend(documents);
        match merge_unit(&entry.unit, &server) {
            UnitMerge::Unchanged if last_commit_size > 1 => {
                // Another unit of the commit was the stale one.
                self.set_state(unit_id, UnitState::Pending);
            }
            UnitMerge::Unchanged => {
                // The precondition failed, yet every version still matches: a confused or
                // racing server. Retrying is right, but not in a tight loop.
                self.back_off_or_give_up(
                    now_millis,
                    unit_id,
                    None,
                    Resume::Send,
                    "a precondition failed on versions that still match",
                    commands,
                );
            }
            UnitMerge::Rebased { unit, conflicts } => {
                commands.push(Command::RewriteUnit { unit: unit.clone() });
                if !conflicts.is_empty() {
                    commands.push(Command::RecordConflicts { entries: conflicts });
                }
                if let Some(entry) = self.entries.get_mut(unit_id) {
                    entry.unit = unit;
                    entry.state = UnitState::Pending;
                }
            }
            UnitMerge::Rejected { conflicts } => {
                self.entries.remove(unit_id);
                commands.push(Command::RecordConflicts { entries: conflicts });
                commands.push(Command::Reject {
                    unit_id: unit_id.to_owned(),
                });
            }
        }
    }

    fn on_read_failed(
        &mut self,
        now_millis: i64,
        unit_id: &str,
        resume: Resume,
        failure: PushFailure,
        commands: &mut Vec<Command>,
    ) {
        self.last_error = Some(SyncProblem::Send(failure.clone()));
        let waiting = match resume {
            Resume::CheckMarker { after_conflict } => Recovery::CheckMarker {
                reading: false,
                after_conflict,
            },
            _ => Recovery::ReadDocuments { reading: false },
        };
        match &failure {
            PushFailure::Network(_) | PushFailure::MalformedReply(_) => {
                if let Some(entry) = self.entries.get_mut(unit_id) {
                    entry.network_failures += 1;
                }
                self.back_off(now_millis, unit_id, None, resume);
            }
            PushFailure::Server {
                http_status,
                code,
                message,
                retry_after_millis,
            } => match classify(*http_status, *code) {
                ErrorClass::Unauthenticated => {
                    self.wait_for_sign_in_of(unit_id);
                    self.set_state(unit_id, UnitState::Failed(waiting));
                }
                ErrorClass::Permanent => {
                    let reason = DeadLetterReason::CannotCheck {
                        code: *code,
                        message: message.clone(),
                    };
                    self.dead_letter(unit_id, reason, commands);
                }
                ErrorClass::Transient | ErrorClass::PreconditionFailed => {
                    let message = message.clone();
                    self.back_off_or_give_up(
                        now_millis,
                        unit_id,
                        *retry_after_millis,
                        resume,
                        &message,
                        commands,
                    );
                }
            },
        }
    }

    /// Starts every piece of work that may start now and asks for a wake-up for the earliest
    /// backoff still running.
    fn pump(&mut self, now_millis: i64, mut commands: Vec<Command>) -> Vec<Command> {
        if !self.online {
            return commands;
        }
        self.start_due_reads(now_millis, &mut commands);
        self.start_commits(now_millis, &mut commands);
        let earliest_retry = self
            .entries
            .values()
            .filter_map(|entry| match entry.state {
                UnitState::Retry { not_before, .. } => Some(not_before),
                _ => None,
            })
            .min();
        if let Some(at) = earliest_retry {
            commands.push(Command::WakeAt(at));
        }
        commands
    }

    /// Ends the backoffs that are due and starts the marker and document reads waiting to go.
    fn start_due_reads(&mut self, now_millis: i64, commands: &mut Vec<Command>) {
        let shop_id = self.config.shop_id.clone();
        for (unit_id, entry) in &mut self.entries {
            // Reads about a unit carry its sender's token too.
            if self.waiting_for_sign_in.contains(&entry.unit.sender) {
                continue;
            }
            if let UnitState::Retry { not_before, then } = entry.state {
                if now_millis < not_before {
                    continue;
                }
                entry.state = match then {
                    Resume::Send => UnitState::Pending,
                    Resume::CheckMarker { after_conflict } => {
                        UnitState::Failed(Recovery::CheckMarker {
                            reading: false,
                            after_conflict,
                        })
                    }
                    Resume::ReadDocuments => {
                        UnitState::Failed(Recovery::ReadDocuments { reading: false })
                    }
                };
            }
            match entry.state {
                UnitState::Failed(Recovery::CheckMarker {
                    reading: false,
                    after_conflict,
                }) => {
                    entry.state = UnitState::Failed(Recovery::CheckMarker {
                        reading: true,
                        after_conflict,
                    });
                    commands.push(Command::ReadMarker {
                        unit_id: unit_id.clone(),
                        path: marker_path(&shop_id, unit_id),
                    });
                }
                UnitState::Failed(Recovery::ReadDocuments { reading: false }) => {
                    entry.state = UnitState::Failed(Recovery::ReadDocuments { reading: true });
                    let mut paths = BTreeSet::new();
                    paths.extend(
                        entry
                            .unit
                            .writes
                            .iter()
                            .filter(|write| write.required_update_time().is_some())
                            .map(|write| write.path.clone()),
                    );
                    commands.push(Command::ReadDocuments {
                        unit_id: unit_id.clone(),
                        paths: paths.into_iter().collect(),
                    });
                }
                _ => {}
            }
        }
    }

    /// Forms commits from pending units, in creation order: a unit whose documents an earlier,
    /// unfinished unit holds waits; a unit sharing a document with a commit being formed joins
    /// it; a unit touching only free documents starts a new commit.
    fn start_commits(&mut self, now_millis: i64, commands: &mut Vec<Command>) {
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        enum Holder {
            /// An unfinished unit that is not being sent now: later units wait.
            Waiting,
            /// The commit being formed at this index.
            Forming(usize),
        }
        let mut holders: BTreeMap<&str, Holder> = BTreeMap::new();
        let mut forming: Vec<Vec<&UnitId>> = Vec::new();
        let mut forming_alone: Vec<bool> = Vec::new();
        let mut commits_free = self
            .config
            .max_commits_in_flight
            .saturating_sub(self.commits.len());
        let context = self.config.commit_context();
        for (unit_id, entry) in &self.entries {
            let paths = entry.unit.document_paths();
            let mut holding: SortedSet<Holder> = SortedSet::new();
            let mut waits = false;
            for path in paths.iter() {
                match holders.get(path) {
                    Some(Holder::Waiting) => waits = true,
                    Some(holder) => {
                        holding.insert(*holder);
                    }
                    None => {}
                }
            }
            // A unit whose sender must sign in again waits.
            let sender_may_send = !self.waiting_for_sign_in.contains(&entry.unit.sender);
            let sendable = entry.state == UnitState::Pending && sender_may_send;
            let joinable = match (waits, sendable, holding.len()) {
                (false, true, 0) if commits_free > 0 => {
                    forming.push(vec![unit_id]);
                    forming_alone.push(entry.send_alone);
                    commits_free -= 1;
                    Some(forming.len() - 1)
                }
                (false, true, 1) => match holding.iter().next() {
                    Some(Holder::Forming(index))
                        if !entry.send_alone
                            && !forming_alone[*index]
                            && forming[*index].len() < self.config.max_units_per_commit
                            && self.can_join(&context, &forming[*index], entry) =>
                    {
                        forming[*index].push(unit_id);
                        Some(*index)
                    }
                    _ => None,
                },
                _ => None,
            };
            let holder = match joinable {
                Some(index) => Holder::Forming(index),
                None => Holder::Waiting,
            };
            // A unit waiting for its sender to sign in again may be waiting for days: later
            // units of other senders pass it on the documents it only patches blindly or adds
            // to (two cashiers selling the same product), as another tablet's would.
            let waits_for_sign_in = joinable.is_none() && !sender_may_send;
            for path in paths.iter().copied() {
                let may_pass = waits_for_sign_in
                    && entry
                        .unit
                        .writes
                        .iter()
                        .filter(|write| write.path == path)
                        .all(DocumentWrite::may_be_overtaken);
                if may_pass {
                    continue;
                }
                // A unit that waits holds its documents against every later unit, even one that
                // could have joined a commit holding them: it must not overtake this one.
                holders.insert(path, holder);
            }
        }
        if forming.is_empty() {
            return;
        }
        let mut started = Vec::new();
        for unit_ids in forming {
            let units: Vec<&Unit> = unit_ids.iter().map(|id| &self.entries[*id].unit).collect();
            let Ok(request) = commit_request_for_units(&context, &units, now_millis) else {
                continue;
            };
            let written = folded_paths(&units);
            let ids: Vec<UnitId> = unit_ids.into_iter().cloned().collect();
            started.push((ids, written, request));
        }
        for (unit_ids, written, request) in started {
            let size = unit_ids.len();
            for unit_id in &unit_ids {
                if let Some(entry) = self.entries.get_mut(unit_id) {
                    entry.state = UnitState::InProgress;
                    entry.last_commit_size = size;
                }
            }
            let commit_id = unit_ids[0].clone();
            self.commits
                .insert(commit_id.clone(), CommitInFlight { unit_ids, written });
            commands.push(Command::SendCommit {
                unit_id: commit_id,
                request,
            });
        }
    }

    fn can_join(&self, context: &CommitContext<'_>, forming: &[&UnitId], entry: &Entry) -> bool {
        // A commit carries one person's token.
        let same_sender = forming
            .first()
            .is_some_and(|first| self.entries[*first].unit.sender == entry.unit.sender);
        if !same_sender {
            return false;
        }
        let mut units: Vec<&Unit> = forming.iter().map(|id| &self.entries[*id].unit).collect();
        units.push(&entry.unit);
        commit_request_for_units(context, &units, 0)
            .is_ok_and(|request| request.writes.len() <= MAX_WRITES_PER_COMMIT)
    }
}

fn pull_command(step: PullStep) -> Command {
    match step {
        PullStep::Query {
            collection,
            query_id,
            query,
        } => Command::RunPullQuery {
            collection,
            query_id,
            query,
        },
        PullStep::Apply(page) => Command::ApplyPulledPage(page),
    }
}

/// The version a write checks, as a comparable key.
fn version_key(write: &DocumentWrite) -> Option<BaseVersionKey> {
    write
        .required_update_time()
        .map(|time| time.to_unix_micros())
}

/// The paths of a commit's folded writes, in request order (first write of each document).
fn folded_paths(units: &[&Unit]) -> Vec<String> {
    let mut paths: Vec<String> = Vec::new();
    for unit in units {
        for write in &unit.writes {
            if !paths.contains(&write.path) {
                paths.push(write.path.clone());
            }
        }
    }
    paths
}

/// What `write` leaves of `fields` (counters it increments become unknown and are dropped).
fn apply_fields(fields: &mut BTreeMap<String, Value>, write: &DocumentWrite) {
    match &write.mask {
        None => *fields = write.fields.clone(),
        Some(paths) => {
            for path in paths {
                match write.fields.get(path) {
                    Some(value) => fields.insert(path.clone(), value.clone()),
                    None => fields.remove(path),
                };
            }
        }
    }
    for path in write.increments.keys() {
        fields.remove(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_reason_is_kept_typed_and_read_back() {
        let reasons = [
            DeadLetterReason::Refused {
                code: Code::PermissionDenied,
                message: "a cashier may not change a price".into(),
            },
            DeadLetterReason::GaveUp {
                failures: 8,
                checking: true,
                message: "disk on fire".into(),
            },
            DeadLetterReason::CannotCheck {
                code: Code::InvalidArgument,
                message: "bad path".into(),
            },
        ];
        for reason in reasons {
            let json = serde_json::to_value(&reason).unwrap();
            assert!(json.get("kind").is_some(), "{json}");
            assert_eq!(
                serde_json::from_value::<DeadLetterReason>(json).unwrap(),
                reason
            );
        }
        assert_eq!(
            serde_json::to_value(DeadLetterReason::Refused {
                code: Code::PermissionDenied,
                message: "no".into()
            })
            .unwrap(),
            serde_json::json!({"kind": "refused", "code": "PERMISSION_DENIED", "message": "no"})
        );
    }

    #[test]
    fn a_reason_stored_as_text_before_reasons_were_typed_reads_as_its_text() {
        let stored = serde_json::json!("the server refused it (permission denied): no");
        let reason: DeadLetterReason = serde_json::from_value(stored).unwrap();
        assert_eq!(
            reason,
            DeadLetterReason::Text {
                text: "the server refused it (permission denied): no".into()
            }
        );
        assert_eq!(reason.server_message(), None);
        let kept: Option<DeadLetterReason> =
            serde_json::from_value(serde_json::json!(null)).unwrap();
        assert_eq!(kept, None);
    }

    #[test]
    fn a_reason_says_in_english_for_logs_what_it_said_before_it_was_typed() {
        let refused = DeadLetterReason::Refused {
            code: Code::PermissionDenied,
            message: "no".into(),
        };
        assert_eq!(
            refused.to_string(),
            "the server refused it (permission denied): no"
        );
        assert_eq!(refused.server_message(), Some("no"));
        let gave_up = DeadLetterReason::GaveUp {
            failures: 8,
            checking: true,
            message: "disk on fire".into(),
        };
        assert_eq!(
            gave_up.to_string(),
            "gave up checking whether it was applied after 8 server errors; last: disk on fire"
        );
    }
}
