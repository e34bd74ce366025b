//! Counterbook's sync engine core, sans IO.
//!
//! The engine is a plain value: [`Outbox::handle`] takes the current time and one [`Event`]
//! and returns the [`Command`]s for the driver to carry out (send a commit, read a marker or the
//! documents to merge with, apply a pulled page, mark a unit done in the store, wake up later).
//! It never awaits, never reads a clock and never touches the network or storage, so it is
//! tested natively and deterministically: unit tests per module, scenario tests in
//! `tests/outbox.rs`, and [`sim`], a seeded simulation of tablets, server and a hostile network.
//!
//! Modules: [`outbox`] (the state machine, pipelining, error classes, why a unit stopped),
//! [`unit`](mod@unit) (units, folding, the commit), [`label`] (what a unit did, typed for the
//! app to word), [`conflict`] (three-way merge, bill rules, business rules), [`pull`]
//! (checkpointed pulls), [`backoff`] (full jitter), [`sim`] (the simulation), [`listen`] (the
//! Listen state machine, [`listen::Listener`], a second engine beside the outbox for real-time
//! targets), [`query_builder`] (the queries clients build, as the Firebase SDKs do),
//! [`sorted_map`] (small ordered maps and sets as sorted vectors, smaller in the wasm than
//! `BTreeMap`).

pub mod backoff;
pub mod conflict;
pub mod label;
pub mod listen;
pub mod outbox;
pub mod pull;
pub mod query_builder;
pub mod sim;
pub mod sorted_map;
pub mod unit;

pub use backoff::{Backoff, SplitMix64};
pub use conflict::{
    check_unit_against_bases, merge_unit, merge_write, BusinessRules, ConflictEntry, ConflictKind,
    UnitMerge, WriteMerge,
};
pub use label::UnitLabel;
pub use listen::{
    target_key, ChangeKind, DocumentChange, ListenCommand, ListenConfig, ListenEvent, ListenStatus,
    Listener, PullReason, TargetSlot, DEVICES_COLLECTION, DEVICE_CHANGED_FIELD,
};
pub use outbox::{
    classify, Command, DeadLetterReason, ErrorClass, Event, Outbox, OutboxConfig, OutboxStatus,
    PushFailure, Recovery, Resume, SyncProblem, UnitState, DEFAULT_PULL_OVERLAP_MILLIS,
};
pub use pull::{
    checkpoint_after, first_pull_query, pull_query, server_version_is_older, Checkpoint,
    PullQueryId, PullStep, PulledPage, Pulls, DELETED, UPDATED_AT,
};
pub use query_builder::{CursorAt, FieldPath, Operator, QueryBuilder, QueryError};
pub use unit::{
    commit_request_for_unit, commit_request_for_units, fold_writes, marker_path, BaseVersion,
    BatchError, CommitContext, DocumentWrite, Unit, UnitId,
};
