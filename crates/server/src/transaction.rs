//! Optimistic transactions: `:beginTransaction`, `:rollback`, reads that register what they saw,
//! and the check a transactional `:commit` makes before writing.
//!
//! Cloud Firestore's server SDK transactions lock what they read; its emulator does too (a
//! plain write to a document read by an open transaction waits, then fails with `ABORTED`
//! "Transaction lock timeout"). This server never blocks: a read-write transaction records
//! every document version it read (and every query, with the names and update times it
//! returned), and its commit re-checks them under the writer lock, in the same SQLite
//! transaction as the writes. If anything it read has changed, the commit fails with 409
//! `ABORTED` and writes nothing; the Firebase SDKs retry `ABORTED` transactions on their own.
//! Either way exactly one of two racing writers loses, and the app (which only uses
//! transactions through the SDK's `runTransaction`) sees the same retry behaviour.
//!
//! Transaction ids are base64 strings of 12 bytes (8 unpredictable, 4 of a counter), like the
//! emulator's `EQIAAAAAAAAA`. A transaction ends at its commit or rollback; ids stay known as
//! closed for an hour so that a second rollback succeeds and a late commit gets the emulator's
//! "Transaction is invalid or closed." (both 400 `INVALID_ARGUMENT`, like an unknown id).

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use counterbook_firestore_wire::{DocumentName, Timestamp};
use serde::Deserialize;

use crate::error::ServerError;
pub use counterbook_firestore_wire::{ReadOnlyOptions, ReadWriteOptions, TransactionOptions};

use crate::opaque::{decode_base64, encode_base64};
use crate::query::PreparedQuery;
use crate::store::DatabaseId;

/// How long an id is remembered after it was opened.
const REMEMBERED_FOR: Duration = Duration::from_secs(3600);

/// Body of `:beginTransaction`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BeginTransactionRequest {
    #[serde(default)]
    pub options: Option<TransactionOptions>,
}

/// Body of `:rollback`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackRequest {
    #[serde(default)]
    pub transaction: Option<String>,
}

/// What a transaction observed, to be checked again at commit.
#[derive(Clone, Debug)]
pub enum RecordedRead {
    /// A document by name and the update time it had (`None`: it did not exist).
    Document {
        name: DocumentName,
        update_time: Option<Timestamp>,
    },
    /// A query and the (name, update time) of every document it returned, in order.
    Query {
        parent: DocumentName,
        query: Box<PreparedQuery>,
        results: Vec<(String, Timestamp)>,
    },
}

#[derive(Debug)]
struct TransactionEntry {
    database: DatabaseId,
    read_only: bool,
    open: bool,
    opened_at: Instant,
    reads: Vec<RecordedRead>,
}

/// What a transactional commit must check: the reads, and whether it may write at all.
#[derive(Debug)]
pub struct ClosedTransaction {
    pub read_only: bool,
    pub reads: Vec<RecordedRead>,
}

/// Every transaction of one server. Cheap operations under a std `Mutex`: nothing is awaited
/// and no SQLite work happens while it is held.
#[derive(Debug)]
pub struct TransactionRegistry {
    entries: Mutex<HashMap<Vec<u8>, TransactionEntry>>,
    counter: AtomicU64,
    random: RandomState,
}

impl Default for TransactionRegistry {
    fn default() -> Self {
        TransactionRegistry {
            entries: Mutex::new(HashMap::new()),
            counter: AtomicU64::new(1),
            random: RandomState::new(),
        }
    }
}

fn invalid_transaction() -> ServerError {
    ServerError::InvalidArgument("Invalid transaction.".into())
}

fn closed_transaction() -> ServerError {
    ServerError::InvalidArgument("Transaction is invalid or closed.".into())
}

/// The id bytes of a transaction string; not base64 is a malformed request, as on the
/// emulator ("Payload isn't valid for request.").
fn decode_id(text: &str) -> Result<Vec<u8>, ServerError> {
    decode_base64(text).ok_or_else(|| {
        ServerError::InvalidArgument(format!(
            "Payload isn't valid for request: transaction {text:?} is not base64"
        ))
    })
}

impl TransactionRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, TransactionEntry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Opens a transaction and returns its id.
    pub fn begin(
        &self,
        database: &DatabaseId,
        options: &TransactionOptions,
    ) -> Result<String, ServerError> {
        if options.read_only.is_some() && options.read_write.is_some() {
            return Err(ServerError::InvalidArgument(
                "Payload isn't valid for request: a transaction is readOnly or readWrite, not both"
                    .into(),
            ));
        }
        if let Some(read_time) = options.read_only.as_ref().and_then(|o| o.read_time) {
            return Err(refuse_read_time(read_time));
        }
        let mut entries = self.lock();
        entries.retain(|_, entry| entry.opened_at.elapsed() < REMEMBERED_FOR);
        if let Some(retried) = options
            .read_write
            .as_ref()
            .and_then(|o| o.retry_transaction.as_deref())
        {
            let retried = decode_id(retried)?;
            match entries.get_mut(&retried) {
                Some(entry) if entry.read_only => {
                    return Err(ServerError::InvalidArgument(
                        "Cannot retry a read-only transaction.".into(),
                    ))
                }
                Some(entry) => entry.open = false,
                None => {}
            }
        }
        let sequence = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut id = self.random.hash_one(sequence).to_be_bytes().to_vec();
        id.extend_from_slice(&(sequence as u32).to_be_bytes());
        entries.insert(
            id.clone(),
            TransactionEntry {
                database: database.clone(),
                read_only: options.read_only.is_some(),
                open: true,
                opened_at: Instant::now(),
                reads: Vec::new(),
            },
        );
        Ok(encode_base64(&id))
    }

    /// Checks that `text` names an open transaction of `database`.
    pub fn check_open(&self, text: &str, database: &DatabaseId) -> Result<(), ServerError> {
        let id = decode_id(text)?;
        match self.lock().get(&id) {
            Some(entry) if entry.open && entry.database == *database => Ok(()),
            Some(_) => Err(closed_transaction()),
            None => Err(invalid_transaction()),
        }
    }

    /// Adds what a read inside the transaction saw.
    pub fn record(
        &self,
        text: &str,
        database: &DatabaseId,
        reads: Vec<RecordedRead>,
    ) -> Result<(), ServerError> {
        let id = decode_id(text)?;
        let mut entries = self.lock();
        match entries.get_mut(&id) {
            Some(entry) if entry.open && entry.database == *database => {
                if !entry.read_only {
                    entry.reads.extend(reads);
                }
                Ok(())
            }
            Some(_) => Err(closed_transaction()),
            None => Err(invalid_transaction()),
        }
    }

    /// Ends a transaction for its commit and hands over what must be checked.
    pub fn close_for_commit(
        &self,
        text: &str,
        database: &DatabaseId,
    ) -> Result<ClosedTransaction, ServerError> {
        let id = decode_id(text)?;
        let mut entries = self.lock();
        match entries.get_mut(&id) {
            Some(entry) if entry.open && entry.database == *database => {
                entry.open = false;
                Ok(ClosedTransaction {
                    read_only: entry.read_only,
                    reads: std::mem::take(&mut entry.reads),
                })
            }
            Some(_) => Err(closed_transaction()),
            None => Err(invalid_transaction()),
        }
    }

    /// Ends a transaction without committing. Rolling back a closed one succeeds, as on the
    /// emulator; an id never handed out does not.
    pub fn rollback(&self, text: &str, database: &DatabaseId) -> Result<(), ServerError> {
        let id = decode_id(text)?;
        let mut entries = self.lock();
        match entries.get_mut(&id) {
            Some(entry) if entry.database == *database => {
                entry.open = false;
                entry.reads.clear();
                Ok(())
            }
            _ => Err(invalid_transaction()),
        }
    }
}

/// How far back a `readTime` may be before it is "too old" (Firestore's version retention).
const READ_TIME_RETENTION_MICROS: i64 = 3600 * 1_000_000;

/// Reading at a past time needs document history, which this server does not keep: past the
/// retention Firestore keeps, the emulator's 400 `FAILED_PRECONDITION` "too old"; within it,
/// 501 `UNIMPLEMENTED`.
pub fn refuse_read_time(read_time: Timestamp) -> ServerError {
    let now_micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_micros() as i64);
    if now_micros - read_time.to_unix_micros() > READ_TIME_RETENTION_MICROS {
        return ServerError::FailedPrecondition("The requested 'read_time' is too old.".into());
    }
    ServerError::Unimplemented(format!(
        "reading at a past readTime ({read_time}) is not supported: this server keeps no \
         document history"
    ))
}

/// The error of a transactional commit whose reads changed.
pub fn contention(detail: &str) -> ServerError {
    ServerError::Aborted(format!(
        "Transaction aborted: {detail} changed since the transaction read it; retry the transaction"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database() -> DatabaseId {
        DatabaseId {
            project: "p".into(),
            database: "(default)".into(),
        }
    }

    fn check_code(outcome: Result<impl std::fmt::Debug, ServerError>, expected: &str) {
        let code = match outcome {
            Ok(_) => "OK".to_owned(),
            Err(error) => format!("{:?}", error.code()),
        };
        assert_eq!(code, expected);
    }

    #[test]
    fn a_transaction_commits_once_and_rolls_back_any_number_of_times() {
        let registry = TransactionRegistry::default();
        let id = registry
            .begin(&database(), &TransactionOptions::default())
            .unwrap();
        assert!(decode_base64(&id).is_some_and(|bytes| bytes.len() == 12));
        check_code(registry.check_open(&id, &database()), "OK");
        check_code(registry.close_for_commit(&id, &database()), "OK");
        check_code(
            registry.close_for_commit(&id, &database()),
            "InvalidArgument",
        );
        check_code(registry.rollback(&id, &database()), "OK");
        check_code(
            registry.rollback("bm9wZQ==", &database()),
            "InvalidArgument",
        );
        check_code(registry.check_open("!!!", &database()), "InvalidArgument");
        let other = registry
            .begin(&database(), &TransactionOptions::default())
            .unwrap();
        assert_ne!(id, other);
    }

    #[test]
    fn read_only_transactions_cannot_be_retried() {
        let registry = TransactionRegistry::default();
        let read_only = TransactionOptions {
            read_only: Some(ReadOnlyOptions::default()),
            read_write: None,
        };
        let id = registry.begin(&database(), &read_only).unwrap();
        let retry = TransactionOptions {
            read_only: None,
            read_write: Some(ReadWriteOptions {
                retry_transaction: Some(id),
            }),
        };
        check_code(registry.begin(&database(), &retry), "InvalidArgument");
    }
}
