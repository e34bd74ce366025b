//! The outbox state machine: every unit of work goes
//! `Pending → InFlight → Done`, or through `WaitingToRetry` (backoff with full jitter) back to
//! `Pending`, or ends as a `DeadLetter` that waits for a person to retry or discard it.
//!
//! Units are sent one at a time in creation order, so units touching the same document keep
//! their order. Exactly-once comes from the unit's marker document (see [`crate::unit`]): when
//! the outcome of a send is unknown, or a precondition fails, the engine reads the marker before
//! deciding whether the unit was applied.

use std::collections::BTreeMap;

use counterbook_firestore_wire::{Code, CommitRequest};

use crate::backoff::{Backoff, SplitMix64};
use crate::unit::{commit_request_for_unit, marker_path, Unit, UnitId};

/// Where the engine sends things.
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
    /// Seeds the jitter; the driver passes a random seed, tests a fixed one.
    pub seed: u64,
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
            seed,
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
enum ErrorClass {
    /// Try again later with backoff.
    Transient,
    /// A precondition failed: our own marker (already applied) or a real conflict.
    PreconditionFailed,
    /// Sign in again; the queue pauses and nothing is dropped.
    Unauthenticated,
    /// Retrying cannot help: dead-letter the unit.
    Permanent,
}

fn classify(http_status: u16, code: Code) -> ErrorClass {
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

/// Where one unit is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnitState {
    /// Waiting for its turn to be sent.
    Pending,
    /// A commit for it is on the wire.
    InFlight,
    /// Its outcome is unknown; the marker must be read before anything else. `reading` is true
    /// while that read is on the wire; `after_conflict` when a precondition failed (if the marker
    /// is missing, the failure was a real conflict).
    CheckingMarker { reading: bool, after_conflict: bool },
    /// Backing off until `not_before` (Unix ms); then it does `then`.
    WaitingToRetry { not_before: i64, then: Resume },
    /// Stopped for good until a person retries or discards it.
    DeadLetter { reason: String },
}

/// What a unit does when its backoff ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// Send the commit again.
    Send,
    /// Read the marker again (the outcome of an earlier send is still unknown).
    CheckMarker { after_conflict: bool },
}

/// Inputs to the engine.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Units found in the store at start-up, in any order. Dead letters come with their reason.
    Loaded {
        pending: Vec<Unit>,
        dead_letters: Vec<(Unit, String)>,
    },
    /// A new unit was written to the store (together with its entities, in one transaction).
    LocalWrite(Unit),
    CommitSucceeded {
        unit_id: UnitId,
    },
    CommitFailed {
        unit_id: UnitId,
        failure: PushFailure,
    },
    /// The marker read finished: `exists` says whether the unit was applied.
    MarkerRead {
        unit_id: UnitId,
        exists: bool,
    },
    MarkerReadFailed {
        unit_id: UnitId,
        failure: PushFailure,
    },
    /// The browser's idea of connectivity changed.
    Online(bool),
    /// Some request just got a reply from the server after requests failed for lack of one
    /// (a pull succeeded, say): units backing off after network failures retry now instead of
    /// waiting out a backoff grown during the outage.
    ServerReachable,
    /// The user signed in again after `UNAUTHENTICATED`.
    SignedIn,
    /// The user asked to retry a dead letter.
    RetryDeadLetter {
        unit_id: UnitId,
    },
    /// The user discarded a dead letter.
    DiscardDeadLetter {
        unit_id: UnitId,
    },
    /// A timer the engine asked for fired (or any periodic wake-up).
    Tick,
}

/// Outputs for the driver to execute.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    SendCommit {
        unit_id: UnitId,
        request: CommitRequest,
    },
    /// GET the marker document (path relative to the database root); answer with `MarkerRead`.
    ReadMarker { unit_id: UnitId, path: String },
    /// Remove the unit from the store's outbox: it reached the server exactly once.
    MarkDone { unit_id: UnitId },
    /// Keep the unit in the store, flagged as a dead letter with this reason.
    MarkDeadLetter { unit_id: UnitId, reason: String },
    /// Undo `MarkDeadLetter` in the store: the unit is pending again.
    MarkPending { unit_id: UnitId },
    /// Delete the unit from the store at the user's request.
    Discard { unit_id: UnitId },
    /// Send a `Tick` at this time (Unix ms) unless one comes earlier.
    WakeAt(i64),
}

/// Counts for the header badge and the status panel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboxStatus {
    /// Units not yet known to be on the server (including in flight), excluding dead letters.
    pub pending: usize,
    pub in_flight: usize,
    pub dead_letters: usize,
    /// Set while the queue waits for the user to sign in again.
    pub paused_for_sign_in: bool,
    pub last_error: Option<String>,
}

#[derive(Clone, Debug)]
struct Entry {
    unit: Unit,
    state: UnitState,
    server_failures: u32,
    network_failures: u32,
}

/// The outbox engine. See the module documentation.
#[derive(Clone, Debug)]
pub struct Outbox {
    config: OutboxConfig,
    /// Keyed by unit id; UUID v7 ids sort by creation time, so iteration is send order.
    entries: BTreeMap<UnitId, Entry>,
    online: bool,
    paused_for_sign_in: bool,
    last_error: Option<String>,
    rng: SplitMix64,
}

impl Outbox {
    pub fn new(config: OutboxConfig) -> Self {
        let rng = SplitMix64::new(config.seed);
        Outbox {
            config,
            entries: BTreeMap::new(),
            online: true,
            paused_for_sign_in: false,
            last_error: None,
            rng,
        }
    }

    pub fn status(&self) -> OutboxStatus {
        let mut status = OutboxStatus {
            paused_for_sign_in: self.paused_for_sign_in,
            last_error: self.last_error.clone(),
            ..OutboxStatus::default()
        };
        for entry in self.entries.values() {
            match entry.state {
                UnitState::DeadLetter { .. } => status.dead_letters += 1,
                UnitState::InFlight => {
                    status.in_flight += 1;
                    status.pending += 1;
                }
                _ => status.pending += 1,
            }
        }
        status
    }

    pub fn state_of(&self, unit_id: &str) -> Option<&UnitState> {
        self.entries.get(unit_id).map(|entry| &entry.state)
    }

    /// Dead letters with their reasons, oldest first.
    pub fn dead_letters(&self) -> Vec<(&Unit, &str)> {
        self.entries
            .values()
            .filter_map(|entry| match &entry.state {
                UnitState::DeadLetter { reason } => Some((&entry.unit, reason.as_str())),
                _ => None,
            })
            .collect()
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
                if !self.entries.contains_key(&unit.id) {
                    self.insert(unit, UnitState::Pending);
                }
            }
            Event::CommitSucceeded { unit_id } => {
                if self.is_in_state(&unit_id, |s| matches!(s, UnitState::InFlight)) {
                    self.entries.remove(&unit_id);
                    self.last_error = None;
                    commands.push(Command::MarkDone { unit_id });
                }
            }
            Event::CommitFailed { unit_id, failure } => {
                if self.is_in_state(&unit_id, |s| matches!(s, UnitState::InFlight)) {
                    self.on_commit_failed(now_millis, &unit_id, failure, &mut commands);
                }
            }
            Event::MarkerRead { unit_id, exists } => {
                let reading_after_conflict = match self.entries.get(&unit_id).map(|e| &e.state) {
                    Some(UnitState::CheckingMarker {
                        reading: true,
                        after_conflict,
                    }) => Some(*after_conflict),
                    _ => None,
                };
                if let Some(after_conflict) = reading_after_conflict {
                    if exists {
                        self.entries.remove(&unit_id);
                        self.last_error = None;
                        commands.push(Command::MarkDone { unit_id });
                    } else if after_conflict {
                        // Issue 4 replaces this with the three-way merge of DESIGN.md section 6.
                        let reason = self
                            .last_error
                            .clone()
                            .unwrap_or_else(|| "a precondition failed on the server".into());
                        self.dead_letter(&unit_id, format!("conflict: {reason}"), &mut commands);
                    } else {
                        self.set_state(&unit_id, UnitState::Pending);
                    }
                }
            }
            Event::MarkerReadFailed { unit_id, failure } => {
                let after_conflict = match self.entries.get(&unit_id).map(|e| &e.state) {
                    Some(UnitState::CheckingMarker {
                        reading: true,
                        after_conflict,
                    }) => *after_conflict,
                    _ => return self.pump(now_millis, commands),
                };
                self.on_marker_read_failed(
                    now_millis,
                    &unit_id,
                    after_conflict,
                    failure,
                    &mut commands,
                );
            }
            Event::Online(online) => self.online = online,
            Event::ServerReachable => {
                for entry in self.entries.values_mut() {
                    if let UnitState::WaitingToRetry { not_before, .. } = &mut entry.state {
                        if entry.server_failures == 0 {
                            *not_before = (*not_before).min(now_millis);
                        }
                    }
                }
            }
            Event::SignedIn => self.paused_for_sign_in = false,
            Event::RetryDeadLetter { unit_id } => {
                if self.is_in_state(&unit_id, |s| matches!(s, UnitState::DeadLetter { .. })) {
                    if let Some(entry) = self.entries.get_mut(&unit_id) {
                        entry.server_failures = 0;
                        entry.network_failures = 0;
                        // The unit may have been applied before it was dead-lettered
                        // (a conflict on our own marker), so it is safe to just resend it.
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
            },
        );
    }

    fn is_in_state(&self, unit_id: &str, predicate: impl Fn(&UnitState) -> bool) -> bool {
        self.entries
            .get(unit_id)
            .is_some_and(|entry| predicate(&entry.state))
    }

    fn set_state(&mut self, unit_id: &str, state: UnitState) {
        if let Some(entry) = self.entries.get_mut(unit_id) {
            entry.state = state;
        }
    }

    fn dead_letter(&mut self, unit_id: &str, reason: String, commands: &mut Vec<Command>) {
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
        entry.state = UnitState::WaitingToRetry {
            not_before: now_millis.saturating_add(delay as i64),
            then,
        };
    }

    fn on_commit_failed(
        &mut self,
        now_millis: i64,
        unit_id: &str,
        failure: PushFailure,
        commands: &mut Vec<Command>,
    ) {
        self.last_error = Some(failure.describe());
        match failure {
            PushFailure::Network(_) | PushFailure::MalformedReply(_) => {
                // The commit may have been applied: find out before sending it again.
                if let Some(entry) = self.entries.get_mut(unit_id) {
                    entry.network_failures += 1;
                    entry.state = UnitState::CheckingMarker {
                        reading: false,
                        after_conflict: false,
                    };
                }
            }
            PushFailure::Server {
                http_status,
                code,
                message,
                retry_after_millis,
            } => match classify(http_status, code) {
                ErrorClass::Transient => {
                    let failures = self.count_server_failure(unit_id);
                    if failures >= self.config.max_server_failures {
                        self.dead_letter(
                            unit_id,
                            format!("gave up after {failures} server errors; last: {message}"),
                            commands,
                        );
                    } else {
                        self.back_off(now_millis, unit_id, retry_after_millis, Resume::Send);
                    }
                }
                ErrorClass::PreconditionFailed => self.set_state(
                    unit_id,
                    UnitState::CheckingMarker {
                        reading: false,
                        after_conflict: true,
                    },
                ),
                ErrorClass::Unauthenticated => {
                    self.paused_for_sign_in = true;
                    self.set_state(unit_id, UnitState::Pending);
                }
                ErrorClass::Permanent => {
                    let reason = format!(
                        "the server refused it ({}): {}",
                        describe_code(code),
                        message.trim()
                    );
                    self.dead_letter(unit_id, reason, commands)
                }
            },
        }
    }

    fn on_marker_read_failed(
        &mut self,
        now_millis: i64,
        unit_id: &str,
        after_conflict: bool,
        failure: PushFailure,
        commands: &mut Vec<Command>,
    ) {
        self.last_error = Some(failure.describe());
        let retry_after = match &failure {
            PushFailure::Network(_) | PushFailure::MalformedReply(_) => {
                if let Some(entry) = self.entries.get_mut(unit_id) {
                    entry.network_failures += 1;
                }
                None
            }
            PushFailure::Server {
                http_status,
                code,
                message,
                retry_after_millis,
            } => match classify(*http_status, *code) {
                ErrorClass::Unauthenticated => {
                    self.paused_for_sign_in = true;
                    self.set_state(
                        unit_id,
                        UnitState::CheckingMarker {
                            reading: false,
                            after_conflict,
                        },
                    );
                    return;
                }
                ErrorClass::Permanent => {
                    let reason = format!("cannot check whether it was applied: {message}");
                    self.dead_letter(unit_id, reason, commands);
                    return;
                }
                ErrorClass::Transient | ErrorClass::PreconditionFailed => {
                    let failures = self.count_server_failure(unit_id);
                    if failures >= self.config.max_server_failures {
                        let reason = format!(
                            "gave up checking whether it was applied after {failures} server errors; last: {message}"
                        );
                        self.dead_letter(unit_id, reason, commands);
                        return;
                    }
                    *retry_after_millis
                }
            },
        };
        self.back_off(
            now_millis,
            unit_id,
            retry_after,
            Resume::CheckMarker { after_conflict },
        );
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

    /// Starts the next piece of work if nothing is on the wire, and asks for a wake-up when the
    /// head of the queue is backing off.
    fn pump(&mut self, now_millis: i64, mut commands: Vec<Command>) -> Vec<Command> {
        if !self.online || self.paused_for_sign_in {
            return commands;
        }
        let busy = self.entries.values().any(|entry| {
            matches!(
                entry.state,
                UnitState::InFlight | UnitState::CheckingMarker { reading: true, .. }
            )
        });
        if busy {
            return commands;
        }
        // The head of the queue: the oldest unit that is not a dead letter. Later units wait
        // behind it so that changes to one document reach the server in order.
        let head = self
            .entries
            .iter()
            .find(|(_, entry)| !matches!(entry.state, UnitState::DeadLetter { .. }))
            .map(|(id, entry)| (id.clone(), entry.state.clone()));
        let Some((unit_id, state)) = head else {
            return commands;
        };
        let next_state = match state {
            UnitState::WaitingToRetry { not_before, then } => {
                if now_millis < not_before {
                    commands.push(Command::WakeAt(not_before));
                    return commands;
                }
                match then {
                    Resume::Send => UnitState::Pending,
                    Resume::CheckMarker { after_conflict } => UnitState::CheckingMarker {
                        reading: false,
                        after_conflict,
                    },
                }
            }
            other => other,
        };
        match next_state {
            UnitState::Pending => {
                let entry = &self.entries[&unit_id];
                let request = commit_request_for_unit(
                    &self.config.project,
                    &self.config.database,
                    &self.config.shop_id,
                    &self.config.device_id,
                    &entry.unit,
                    now_millis,
                );
                self.set_state(&unit_id, UnitState::InFlight);
                commands.push(Command::SendCommit { unit_id, request });
            }
            UnitState::CheckingMarker { after_conflict, .. } => {
                let path = marker_path(&self.config.shop_id, &unit_id);
                self.set_state(
                    &unit_id,
                    UnitState::CheckingMarker {
                        reading: true,
                        after_conflict,
                    },
                );
                commands.push(Command::ReadMarker { unit_id, path });
            }
            _ => {}
        }
        commands
    }
}
