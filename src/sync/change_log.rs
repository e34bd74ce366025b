//! The change feed screens read: every batch of changed documents the store announced in this
//! tab, or another tab announced over the BroadcastChannel, numbered in order. A screen keeps
//! the number it last saw, and on each new number re-reads only the records named since.
//!
//! A signal of "the latest batch" would lose batches (effects run once for several quick
//! changes), so the log keeps the recent batches and answers "what changed since `seen`";
//! a screen that fell behind the kept window re-reads what it shows.

use std::collections::VecDeque;

use leptos::prelude::*;

use crate::storage::ChangedDocuments;

/// How many batches the log keeps for screens that have not looked yet.
const KEPT_BATCHES: usize = 256;

/// What changed since a number a screen saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangesSince {
    Nothing,
    Documents(ChangedDocuments),
    /// More than the log kept, or a change that did not say what (another tab that missed
    /// messages): re-read what is shown.
    Everything,
}

/// A batch: named documents, or "anything may have changed".
type Batch = Option<ChangedDocuments>;

/// The log; cheap to copy.
#[derive(Clone, Copy)]
pub struct ChangeLog {
    version: RwSignal<u64>,
    batches: StoredValue<VecDeque<(u64, Batch)>, LocalStorage>,
}

impl Default for ChangeLog {
    fn default() -> Self {
        ChangeLog::new()
    }
}

impl ChangeLog {
    pub fn new() -> ChangeLog {
        ChangeLog {
            version: RwSignal::new(0),
            batches: StoredValue::new_local(VecDeque::new()),
        }
    }

    /// The number of the last batch (tracked: an effect reading it runs again on each batch).
    pub fn version(&self) -> u64 {
        self.version.get()
    }

    /// The number of the last batch, without tracking.
    pub fn version_untracked(&self) -> u64 {
        self.version.get_untracked()
    }

    /// Announces changed documents.
    pub fn publish(&self, changed: &ChangedDocuments) {
        if !changed.is_empty() {
            self.push(Some(changed.clone()));
        }
    }

    /// Announces that anything may have changed.
    pub fn publish_everything(&self) {
        self.push(None);
    }

    fn push(&self, batch: Batch) {
        let next = self.version.get_untracked() + 1;
        self.batches.update_value(|batches| {
            batches.push_back((next, batch));
            while batches.len() > KEPT_BATCHES {
                batches.pop_front();
            }
        });
        self.version.set(next);
    }

    /// Everything announced after batch `seen`.
    pub fn since(&self, seen: u64) -> ChangesSince {
        self.batches.with_value(|batches| {
            let Some((oldest, _)) = batches.front() else {
                return ChangesSince::Nothing;
            };
            if seen + 1 < *oldest {
                return ChangesSince::Everything;
            }
            let mut changed = ChangedDocuments::new();
            for (_, batch) in batches.iter().filter(|(number, _)| *number > seen) {
                match batch {
                    Some(documents) => changed.extend(documents),
                    None => return ChangesSince::Everything,
                }
            }
            if changed.is_empty() {
                ChangesSince::Nothing
            } else {
                ChangesSince::Documents(changed)
            }
        })
    }

    /// Runs `react` with what changed each time something does, from now on, for as long as
    /// the calling component lives.
    pub fn watch(&self, react: impl Fn(ChangesSince) + 'static) {
        let log = *self;
        let start = log.version_untracked();
        Effect::new(move |seen: Option<u64>| {
            let now = log.version();
            let seen = seen.unwrap_or(start);
            if now != seen {
                react(log.since(seen));
            }
            now
        });
    }
}
