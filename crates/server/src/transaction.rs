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
//! closed for a while so that a second rollback succeeds and a late commit gets the emulator's
//! "Transaction is invalid or closed." (both 400 `INVALID_ARGUMENT`, like an unknown id).
//!
//! Bounds (`TransactionLimits`), as on Cloud Firestore where it documents them: a transaction
//! unused for 60 s, or opened more than 270 s ago, has expired, and using it is answered as
//! Cloud Firestore answers, 400 `INVALID_ARGUMENT` "The referenced transaction has expired or
//! is no longer valid." (the server SDKs retry on it; the emulator answers `ABORTED`). An id
//! belongs to the user who opened it: any other user presenting it gets "Invalid transaction.",
//! as for an id never handed out, and cannot end it. One user holds at most 50 open
//! transactions and one shop 200 (then 429 `RESOURCE_EXHAUSTED`); the table remembers at most
//! 20,000 ids in all, forgetting the oldest ended ones first. Time is the store's wall clock,
//! which tests replace.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use counterbook_firestore_wire::{DocumentName, Timestamp};
use serde::Deserialize;

use crate::error::ServerError;
pub use counterbook_firestore_wire::{ReadOnlyOptions, ReadWriteOptions, TransactionOptions};

use crate::documents::DatabaseId;
use crate::opaque::{decode_base64, encode_base64};
use crate::query::PreparedQuery;

/// The bounds on transactions.
#[derive(Clone, Debug)]
pub struct TransactionLimits {
    /// A transaction not used for this long has expired (Cloud Firestore: 60 s).
    pub idle_timeout: Duration,
    /// A transaction opened longer ago than this has expired (Cloud Firestore: 270 s).
    pub max_lifetime: Duration,
    /// Open transactions of one user, at most.
    pub max_open_per_user: usize,
    /// Open transactions of one shop's users, at most.
    pub max_open_per_shop: usize,
    /// Ids remembered (open, ended or expired) in all, at most.
    pub max_remembered: usize,
}

impl Default for TransactionLimits {
    fn default() -> Self {
        TransactionLimits {
            idle_timeout: Duration::from_secs(60),
            max_lifetime: Duration::from_secs(270),
            max_open_per_user: 50,
            max_open_per_shop: 200,
            max_remembered: 20_000,
        }
    }
}

/// Who opened a transaction: a signed-in user of a shop (`None` in dev mode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionOwner {
    pub user_id: String,
    pub shop: String,
}

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
    owner: Option<TransactionOwner>,
    read_only: bool,
    open: bool,
    opened_at_micros: i64,
    last_used_micros: i64,
    reads: Vec<RecordedRead>,
}

impl TransactionEntry {
    fn has_expired(&self, now_micros: i64, limits: &TransactionLimits) -> bool {
        now_micros - self.last_used_micros > micros(limits.idle_timeout)
            || now_micros - self.opened_at_micros > micros(limits.max_lifetime)
    }

    fn is_live(&self, now_micros: i64, limits: &TransactionLimits) -> bool {
        self.open && !self.has_expired(now_micros, limits)
    }
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
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
    limits: TransactionLimits,
    /// Microseconds since the epoch: the store's wall clock.
    clock_micros: fn() -> i64,
}

fn invalid_transaction() -> ServerError {
    ServerError::InvalidArgument("Invalid transaction.".into())
}

fn closed_transaction() -> ServerError {
    ServerError::InvalidArgument("Transaction is invalid or closed.".into())
}

fn expired_transaction() -> ServerError {
    ServerError::InvalidArgument(
        "The referenced transaction has expired or is no longer valid.".into(),
    )
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
    pub fn new(limits: TransactionLimits, clock_micros: fn() -> i64) -> TransactionRegistry {
        TransactionRegistry {
            entries: Mutex::new(HashMap::new()),
            counter: AtomicU64::new(1),
            random: RandomState::new(),
            limits,
            clock_micros,
        }
    }

    pub fn limits(&self) -> &TransactionLimits {
        &self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, TransactionEntry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many transactions are open (not ended, not expired).
    pub fn open_count(&self) -> usize {
        let now = (self.clock_micros)();
        self.lock()
            .values()
            .filter(|entry| entry.is_live(now, &self.limits))
            .count()
    }

    /// Forgets what is no longer worth remembering and frees what expired transactions read.
    fn sweep(&self, entries: &mut HashMap<Vec<u8>, TransactionEntry>, now: i64) {
        // An ended or expired id is remembered for another lifetime, so that it is answered
        // "closed" or "expired" rather than "invalid" for a while.
        let forget_after = 2 * micros(self.limits.max_lifetime);
        entries.retain(|_, entry| now - entry.opened_at_micros <= forget_after);
        for entry in entries.values_mut() {
            if entry.open && entry.has_expired(now, &self.limits) {
                entry.open = false;
                entry.reads = Vec::new();
            }
        }
        if entries.len() >= self.limits.max_remembered {
            let mut ended: Vec<(i64, Vec<u8>)> = entries
                .iter()
                .filter(|(_, entry)| !entry.open)
                .map(|(id, entry)| (entry.opened_at_micros, id.clone()))
                .collect();
            ended.sort();
            let excess = entries.len() + 1 - self.limits.max_remembered;
            for (_, id) in ended.into_iter().take(excess) {
                entries.remove(&id);
            }
        }
    }

    /// Opens a transaction for `owner` and returns its id.
    pub fn begin(
        &self,
        database: &DatabaseId,
        options: &TransactionOptions,
        owner: Option<&TransactionOwner>,
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
        let now = (self.clock_micros)();
        let mut entries = self.lock();
        self.sweep(&mut entries, now);
        if let Some(retried) = options
            .read_write
            .as_ref()
            .and_then(|o| o.retry_transaction.as_deref())
        {
            let retried = decode_id(retried)?;
            // Another user's id is as unknown as one never handed out: it is not theirs to end.
            match entries.get_mut(&retried) {
                Some(entry) if entry.owner.as_ref() != owner => {}
                Some(entry) if entry.read_only => {
                    return Err(ServerError::InvalidArgument(
                        "Cannot retry a read-only transaction.".into(),
                    ))
                }
                Some(entry) => {
                    entry.open = false;
                    entry.reads = Vec::new();
                }
                None => {}
            }
        }
        if let Some(owner) = owner {
            let live_owners = || {
                entries
                    .values()
                    .filter(|entry| entry.is_live(now, &self.limits))
                    .filter_map(|entry| entry.owner.as_ref())
            };
            let of_user = live_owners()
                .filter(|other| other.user_id == owner.user_id)
                .count();
            if of_user >= self.limits.max_open_per_user {
                return Err(ServerError::ResourceExhausted(format!(
                    "this user has {of_user} open transactions, the most one user may hold; \
                     commit or roll one back"
                )));
            }
            let of_shop = live_owners()
                .filter(|other| other.shop == owner.shop)
                .count();
            if of_shop >= self.limits.max_open_per_shop {
                return Err(ServerError::ResourceExhausted(format!(
                    "this shop has {of_shop} open transactions, the most one shop may hold; \
                     commit or roll one back"
                )));
            }
        }
        if entries.len() >= self.limits.max_remembered {
            return Err(ServerError::ResourceExhausted(
                "too many open transactions on this server; try again later".into(),
            ));
        }
        let sequence = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut id = self.random.hash_one(sequence).to_be_bytes().to_vec();
        id.extend_from_slice(&(sequence as u32).to_be_bytes());
        entries.insert(
            id.clone(),
            TransactionEntry {
                database: database.clone(),
                owner: owner.cloned(),
                read_only: options.read_only.is_some(),
                open: true,
                opened_at_micros: now,
                last_used_micros: now,
                reads: Vec::new(),
            },
        );
        Ok(encode_base64(&id))
    }

    /// The open transaction `text` of `database` and `owner`, marked used now; the error a
    /// request naming it gets otherwise.
    fn with_open<T>(
        &self,
        text: &str,
        database: &DatabaseId,
        owner: Option<&TransactionOwner>,
        use_it: impl FnOnce(&mut TransactionEntry) -> T,
    ) -> Result<T, ServerError> {
        let id = decode_id(text)?;
        let now = (self.clock_micros)();
        let mut entries = self.lock();
        match entries.get_mut(&id) {
            Some(entry) if entry.database != *database || entry.owner.as_ref() != owner => {
                Err(invalid_transaction())
            }
            Some(entry) if !entry.open => Err(closed_transaction()),
            Some(entry) if entry.has_expired(now, &self.limits) => {
                entry.open = false;
                entry.reads = Vec::new();
                Err(expired_transaction())
            }
            Some(entry) => {
                entry.last_used_micros = now;
                Ok(use_it(entry))
            }
            None => Err(invalid_transaction()),
        }
    }

    /// Checks that `text` names an open transaction of `database` opened by `owner`.
    pub fn check_open(
        &self,
        text: &str,
        database: &DatabaseId,
        owner: Option<&TransactionOwner>,
    ) -> Result<(), ServerError> {
        self.with_open(text, database, owner, |_| ())
    }

    /// Adds what a read inside the transaction saw.
    pub fn record(
        &self,
        text: &str,
        database: &DatabaseId,
        owner: Option<&TransactionOwner>,
        reads: Vec<RecordedRead>,
    ) -> Result<(), ServerError> {
        self.with_open(text, database, owner, |entry| {
            if !entry.read_only {
                entry.reads.extend(reads);
            }
        })
    }

    /// Ends a transaction for its commit and hands over what must be checked.
    pub fn close_for_commit(
        &self,
        text: &str,
        database: &DatabaseId,
        owner: Option<&TransactionOwner>,
    ) -> Result<ClosedTransaction, ServerError> {
        self.with_open(text, database, owner, |entry| {
            entry.open = false;
            ClosedTransaction {
                read_only: entry.read_only,
                reads: std::mem::take(&mut entry.reads),
            }
        })
    }

    /// Ends a transaction without committing. Rolling back a closed or expired one succeeds,
    /// as on the emulator; an id never handed out, or another user's, does not.
    pub fn rollback(
        &self,
        text: &str,
        database: &DatabaseId,
        owner: Option<&TransactionOwner>,
    ) -> Result<(), ServerError> {
        let id = decode_id(text)?;
        let mut entries = self.lock();
        match entries.get_mut(&id) {
            Some(entry) if entry.database == *database && entry.owner.as_ref() == owner => {
                entry.open = false;
                entry.reads = Vec::new();
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

    fn registry() -> TransactionRegistry {
        TransactionRegistry::new(TransactionLimits::default(), || 1_900_000_000_000_000)
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
        let registry = registry();
        let id = registry
            .begin(&database(), &TransactionOptions::default(), None)
            .unwrap();
        assert!(decode_base64(&id).is_some_and(|bytes| bytes.len() == 12));
        check_code(registry.check_open(&id, &database(), None), "OK");
        check_code(registry.close_for_commit(&id, &database(), None), "OK");
        check_code(
            registry.close_for_commit(&id, &database(), None),
            "InvalidArgument",
        );
        check_code(registry.rollback(&id, &database(), None), "OK");
        check_code(
            registry.rollback("bm9wZQ==", &database(), None),
            "InvalidArgument",
        );
        check_code(
            registry.check_open("!!!", &database(), None),
            "InvalidArgument",
        );
        let other = registry
            .begin(&database(), &TransactionOptions::default(), None)
            .unwrap();
        assert_ne!(id, other);
    }

    #[test]
    fn a_shop_holds_at_most_its_share_of_open_transactions() {
        let registry = TransactionRegistry::new(
            TransactionLimits {
                max_open_per_user: 2,
                max_open_per_shop: 3,
                ..TransactionLimits::default()
            },
            || 1_900_000_000_000_000,
        );
        let owner = |user: &str, shop: &str| TransactionOwner {
            user_id: user.into(),
            shop: shop.into(),
        };
        let begin = |who: &TransactionOwner| {
            registry.begin(&database(), &TransactionOptions::default(), Some(who))
        };
        let (a, b, c) = (owner("a", "s1"), owner("b", "s1"), owner("c", "s2"));
        check_code(begin(&a), "OK");
        let second = begin(&a).unwrap();
        check_code(begin(&a), "ResourceExhausted");
        check_code(begin(&b), "OK");
        check_code(begin(&b), "ResourceExhausted");
        check_code(begin(&c), "OK");
        // An ended transaction no longer counts; another user's id ends nothing.
        check_code(
            registry.rollback(&second, &database(), Some(&b)),
            "InvalidArgument",
        );
        check_code(registry.rollback(&second, &database(), Some(&a)), "OK");
        check_code(begin(&b), "OK");
    }

    #[test]
    fn read_only_transactions_cannot_be_retried() {
        let registry = registry();
        let read_only = TransactionOptions {
            read_only: Some(ReadOnlyOptions::default()),
            read_write: None,
        };
        let id = registry.begin(&database(), &read_only, None).unwrap();
        let retry = TransactionOptions {
            read_only: None,
            read_write: Some(ReadWriteOptions {
                retry_transaction: Some(id),
            }),
        };
        check_code(registry.begin(&database(), &retry, None), "InvalidArgument");
    }
}
