//! The SQLite store: schema, the commit clock, write transactions and read snapshots.
//!
//! This is the only module that imports `rusqlite`. It speaks domain types (`DocumentName`,
//! `StoredDocument`, `Timestamp`) and knows nothing about HTTP or Firestore's write semantics;
//! `commit` and `query` hold those as pure functions over what this module loads.
//!
//! Concurrency: one writer connection and one reader connection, each behind a std `Mutex`
//! (not a Tokio one: every use is synchronous and runs on a blocking thread, never across an
//! `.await`). The database runs in WAL mode, so the reader sees the last committed state while a
//! write is in progress.
//!
//! Time: commit timestamps have microsecond precision and are assigned while the writer lock is
//! held, as `max(now, last + 1µs)`, so they strictly increase even when the wall clock steps back;
//! the last one is persisted in the same transaction, so a restart keeps the order. A read takes
//! its read time under the same lock and raises the floor to it, so every later commit gets a
//! later time than any read that did not see it.
//!
//! Indexes: `field_index` holds one row per (document, field path) for every indexable value
//! (`index_key`), maintained in the same SQLite transaction as the document row it mirrors.
//! A query with an `IndexPlan` reads a key range of it joined to `documents`, lazily, in
//! (key, document id) order, and stops as soon as the query has its page, so the app's
//! checkpointed pulls (`updatedAt >= t order by updatedAt, __name__ limit n`) never read the
//! whole collection. Collection-group queries use `documents_by_collection_id`.
//!
//! Notifications: after every successful write transaction the names it wrote go out on a
//! `tokio::sync::broadcast` (`subscribe_to_commits`), still under the writer lock, so receivers
//! see commits in commit-time order, and a read snapshot taken later than a commit always finds
//! that commit's notification already sent (Listen relies on both; see `listen`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use counterbook_firestore_wire::{DocumentName, Timestamp, Value};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

pub use crate::documents::{DatabaseId, NamedDocument, StoredDocument};
use crate::error::ServerError;
use crate::index_key::{index_entries, IndexPlan};
use crate::transaction::{TransactionLimits, TransactionRegistry};

/// The SQLite file inside the data directory.
pub const DATABASE_FILE_NAME: &str = "counterbook.sqlite3";

/// How long a statement waits for a lock held by another connection before giving up with
/// `Busy` (which clients see as a retryable `UNAVAILABLE`).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Bumped whenever the schema below changes; `open` refuses files from a newer server.
const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "
    -- One row per document. `parent` is the path of the document that holds the collection
    -- ('' for a root collection), so a collection is the key prefix
    -- (database, parent, collection_id) and a collection scan is an index range scan.
    CREATE TABLE IF NOT EXISTS documents (
        database TEXT NOT NULL,
        parent TEXT NOT NULL,
        collection_id TEXT NOT NULL,
        document_id TEXT NOT NULL,
        fields_json TEXT NOT NULL,
        create_time_micros INTEGER NOT NULL,
        update_time_micros INTEGER NOT NULL,
        PRIMARY KEY (database, parent, collection_id, document_id)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS documents_by_collection_id
        ON documents (database, collection_id, parent);
    -- One row per indexable value of a document (schema v2): `field_path` is the canonical
    -- dotted path, `sort_key` the order-preserving encoding of `index_key`.
    CREATE TABLE IF NOT EXISTS field_index (
        database TEXT NOT NULL,
        parent TEXT NOT NULL,
        collection_id TEXT NOT NULL,
        field_path TEXT NOT NULL,
        sort_key BLOB NOT NULL,
        document_id TEXT NOT NULL,
        PRIMARY KEY (database, parent, collection_id, field_path, sort_key, document_id)
    ) WITHOUT ROWID;
    -- Finds a document's index rows when it is rewritten or deleted.
    CREATE INDEX IF NOT EXISTS field_index_by_document
        ON field_index (database, parent, collection_id, document_id);
    CREATE TABLE IF NOT EXISTS server_meta (
        key TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;
";

const LAST_COMMIT_KEY: &str = "last_commit_time_micros";

/// How many commit notifications a slow listener may fall behind before it is told it lagged
/// (and then re-reads its targets in full).
const COMMIT_NOTIFICATION_CAPACITY: usize = 1024;

/// What one successful write transaction changed: every document it wrote or deleted.
#[derive(Clone, Debug, PartialEq)]
pub struct CommittedWrites {
    pub commit_time: Timestamp,
    pub names: Vec<DocumentName>,
}

/// What can go wrong in SQLite or around it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the database lock for longer than the busy timeout.
    #[error("the database is busy; try again: {0}")]
    Busy(#[source] rusqlite::Error),
    /// Any other SQLite failure.
    #[error("internal storage error: {0}")]
    Sqlite(#[source] rusqlite::Error),
    /// A stored row cannot be decoded (edited by hand, or written by a buggy version).
    #[error("internal storage error: stored document {name} is corrupt: {reason}")]
    CorruptRow { name: String, reason: String },
    /// The data directory cannot be created.
    #[error("cannot create the data directory {path}: {source}")]
    DataDirectory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file was written by a newer server with a schema this one does not know.
    #[error("the database file has schema version {found}, newer than this server's {SCHEMA_VERSION}; upgrade counterbook-server")]
    SchemaTooNew { found: i64 },
}

impl From<StoreError> for ServerError {
    fn from(error: StoreError) -> Self {
        ServerError::Storage {
            busy: matches!(error, StoreError::Busy(_)),
            source: Box::new(error),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        match error.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                StoreError::Busy(error)
            }
            _ => StoreError::Sqlite(error),
        }
    }
}

/// The writer connection and the clock it hands commit times from.
struct Writer {
    connection: Connection,
    /// The latest commit or read time handed out; the next commit time is strictly later.
    last_issued_micros: i64,
}

/// The SQLite database behind one data directory.
pub struct Store {
    writer: Mutex<Writer>,
    reader: Mutex<Connection>,
    /// Open transactions (in memory: they do not survive a restart, as on Firestore, where a
    /// transaction's commit after a failover fails and the SDK retries it).
    transactions: TransactionRegistry,
    /// Tests replace the wall clock to check the commit-time rules; production uses the system.
    wall_clock_micros: fn() -> i64,
    /// Every successful write transaction, in commit order (see the module doc).
    committed: tokio::sync::broadcast::Sender<Arc<CommittedWrites>>,
}

fn system_clock_micros() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX)
}

/// Makes `data_directory` (created if missing) readable by its owner only (0700), and its
/// database file with SQLite's `-wal` and `-shm` files 0600. The database file is created
/// before SQLite opens it, so it is never readable by others, even briefly; SQLite gives the
/// `-wal` and `-shm` files it creates the database file's mode. An existing directory or file
/// that others could read is tightened. Every shop's books and the password hashes are in it.
pub fn prepare_private_data_directory(data_directory: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_directory)?;
        let tighten = |path: &Path, mode: u32| -> std::io::Result<()> {
            let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
            if current & 0o077 != 0 {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
            }
            Ok(())
        };
        tighten(data_directory, 0o700)?;
        let database = data_directory.join(DATABASE_FILE_NAME);
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&database)?;
        for suffix in ["", "-wal", "-shm"] {
            let path = data_directory.join(format!("{DATABASE_FILE_NAME}{suffix}"));
            if path.exists() {
                tighten(&path, 0o600)?;
            }
        }
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(data_directory)?;
    Ok(())
}

impl Store {
    /// Opens (creating if needed) `data_directory/counterbook.sqlite3`.
    pub fn open(data_directory: &Path) -> Result<Store, StoreError> {
        Self::open_with_clock(data_directory, system_clock_micros)
    }

    /// Like `open`, with a replaceable wall clock (microseconds since the epoch).
    pub fn open_with_clock(
        data_directory: &Path,
        wall_clock_micros: fn() -> i64,
    ) -> Result<Store, StoreError> {
        prepare_private_data_directory(data_directory).map_err(|source| {
            StoreError::DataDirectory {
                path: data_directory.to_owned(),
                source,
            }
        })?;
        let path = data_directory.join(DATABASE_FILE_NAME);
        let writer_connection = open_connection(&path)?;
        let found_version: i64 =
            writer_connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if found_version > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found: found_version,
            });
        }
        writer_connection.execute_batch(SCHEMA)?;
        if found_version < 2 {
            rebuild_field_index(&writer_connection)?;
        }
        writer_connection.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
        let last_commit_micros: i64 = writer_connection
            .query_row(
                "SELECT value FROM server_meta WHERE key = ?1",
                [LAST_COMMIT_KEY],
                |row| row.get(0),
            )
            .optional()?
            .unwrap_or(0);
        let reader_connection = open_connection(&path)?;
        Ok(Store {
            writer: Mutex::new(Writer {
                connection: writer_connection,
                last_issued_micros: last_commit_micros,
            }),
            reader: Mutex::new(reader_connection),
            transactions: TransactionRegistry::new(TransactionLimits::default(), wall_clock_micros),
            wall_clock_micros,
            committed: tokio::sync::broadcast::channel(COMMIT_NOTIFICATION_CAPACITY).0,
        })
    }

    /// Notifications of the write transactions committed from now on.
    pub fn subscribe_to_commits(&self) -> tokio::sync::broadcast::Receiver<Arc<CommittedWrites>> {
        self.committed.subscribe()
    }

    /// The open transactions of this store.
    pub fn transactions(&self) -> &TransactionRegistry {
        &self.transactions
    }

    fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        // A panic while the lock was held dropped its transaction, which rolled back; the
        // connection itself is still sound, so a poisoned lock is safe to take over.
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `work` in one IMMEDIATE transaction with a fresh commit time. If `work` fails,
    /// nothing it wrote is kept.
    pub fn write_transaction<T>(
        &self,
        work: impl FnOnce(&WriteTransaction<'_>) -> Result<T, ServerError>,
    ) -> Result<T, ServerError> {
        let mut writer = self.lock_writer();
        let Writer {
            connection,
            last_issued_micros,
        } = &mut *writer;
        let commit_micros = ((self.wall_clock_micros)()).max(*last_issued_micros + 1);
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let write_transaction = WriteTransaction {
            transaction,
            commit_time: Timestamp::from_unix_micros(commit_micros),
            written: RefCell::new(Vec::new()),
        };
        let output = work(&write_transaction)?;
        let WriteTransaction {
            transaction,
            commit_time,
            written,
        } = write_transaction;
        transaction
            .execute(
                "INSERT INTO server_meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![LAST_COMMIT_KEY, commit_micros],
            )
            .map_err(StoreError::from)?;
        transaction.commit().map_err(StoreError::from)?;
        *last_issued_micros = commit_micros;
        // Sent before the writer lock is released; no receiver is not an error.
        let names = written.into_inner();
        if !names.is_empty() {
            let _ = self
                .committed
                .send(Arc::new(CommittedWrites { commit_time, names }));
        }
        Ok(output)
    }

    /// Runs `work` against a consistent snapshot that holds every commit up to its read time.
    pub fn read_snapshot<T>(
        &self,
        work: impl FnOnce(&ReadSnapshot<'_>) -> Result<T, ServerError>,
    ) -> Result<T, ServerError> {
        let mut reader = self
            .reader
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let transaction = reader.transaction().map_err(StoreError::from)?;
        let read_micros = {
            // No commit is in flight while the writer lock is held, so the snapshot pinned here
            // holds every commit up to now, and raising the floor keeps later commits later.
            let mut writer = self.lock_writer();
            let read_micros = ((self.wall_clock_micros)()).max(writer.last_issued_micros);
            transaction
                .query_row("SELECT count(*) FROM server_meta", [], |row| {
                    row.get::<_, i64>(0)
                })
                .map_err(StoreError::from)?;
            writer.last_issued_micros = read_micros;
            read_micros
        };
        let snapshot = ReadSnapshot {
            transaction,
            read_time: Timestamp::from_unix_micros(read_micros),
        };
        let output = work(&snapshot)?;
        // Nothing was written; ending the transaction just releases the snapshot.
        snapshot.transaction.rollback().map_err(StoreError::from)?;
        Ok(output)
    }
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    // WAL: readers never block the writer and see the last committed state. FULL
    // synchronisation fsyncs the WAL before a commit returns, so an acknowledged commit
    // survives a power cut or a kernel crash too, not only a crash of this process (which
    // NORMAL already survives); it costs one fsync per commit.
    connection.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;",
    )?;
    Ok(connection)
}

/// The row key of a document name: (database, parent, collection_id, document_id).
struct RowKey<'a> {
    database: String,
    parent: String,
    collection_id: &'a str,
    document_id: &'a str,
}

fn row_key(name: &DocumentName) -> RowKey<'_> {
    let count = name.segments.len();
    debug_assert!(
        name.is_document(),
        "row keys are only made for document names"
    );
    RowKey {
        database: format!("projects/{}/databases/{}", name.project, name.database),
        parent: name.segments[..count.saturating_sub(2)].join("/"),
        collection_id: name
            .segments
            .get(count.wrapping_sub(2))
            .map_or("", String::as_str),
        document_id: name.segments.last().map_or("", String::as_str),
    }
}

fn decode_row(
    name: &str,
    fields_json: &str,
    create_time_micros: i64,
    update_time_micros: i64,
) -> Result<StoredDocument, StoreError> {
    let fields = serde_json::from_str(fields_json).map_err(|error| StoreError::CorruptRow {
        name: name.to_owned(),
        reason: error.to_string(),
    })?;
    Ok(StoredDocument {
        fields,
        create_time: Timestamp::from_unix_micros(create_time_micros),
        update_time: Timestamp::from_unix_micros(update_time_micros),
    })
}

fn get_document(
    connection: &Connection,
    name: &DocumentName,
) -> Result<Option<StoredDocument>, StoreError> {
    let key = row_key(name);
    let row = connection
        .query_row(
            "SELECT fields_json, create_time_micros, update_time_micros FROM documents
             WHERE database = ?1 AND parent = ?2 AND collection_id = ?3 AND document_id = ?4",
            params![key.database, key.parent, key.collection_id, key.document_id],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            },
        )
        .optional()?;
    row.map(|(fields_json, create, update)| {
        decode_row(&name.to_string(), &fields_json, create, update)
    })
    .transpose()
}

/// Fills `field_index` from every stored document: the upgrade from schema v1.
fn rebuild_field_index(connection: &Connection) -> Result<(), StoreError> {
    let transaction = connection.unchecked_transaction()?;
    transaction.execute("DELETE FROM field_index", [])?;
    {
        let mut statement = transaction.prepare(
            "SELECT database, parent, collection_id, document_id, fields_json FROM documents",
        )?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let database: String = row.get(0)?;
            let parent: String = row.get(1)?;
            let collection_id: String = row.get(2)?;
            let document_id: String = row.get(3)?;
            let fields_json: String = row.get(4)?;
            let fields: BTreeMap<String, Value> =
                serde_json::from_str(&fields_json).map_err(|error| StoreError::CorruptRow {
                    name: format!("{database}/documents/{parent}/{collection_id}/{document_id}"),
                    reason: error.to_string(),
                })?;
            insert_index_rows(
                &transaction,
                &RowKey {
                    database: database.clone(),
                    parent: parent.clone(),
                    collection_id: &collection_id,
                    document_id: &document_id,
                },
                &fields,
            )?;
        }
    }
    transaction.commit()?;
    Ok(())
}

fn insert_index_rows(
    connection: &Connection,
    key: &RowKey<'_>,
    fields: &BTreeMap<String, Value>,
) -> Result<(), StoreError> {
    let mut statement = connection.prepare_cached(
        "INSERT OR IGNORE INTO field_index
             (database, parent, collection_id, field_path, sort_key, document_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (field_path, sort_key) in index_entries(fields) {
        statement.execute(params![
            key.database,
            key.parent,
            key.collection_id,
            field_path,
            sort_key,
            key.document_id
        ])?;
    }
    Ok(())
}

fn delete_index_rows(connection: &Connection, key: &RowKey<'_>) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "DELETE FROM field_index
             WHERE database = ?1 AND parent = ?2 AND collection_id = ?3 AND document_id = ?4",
        )?
        .execute(params![
            key.database,
            key.parent,
            key.collection_id,
            key.document_id
        ])?;
    Ok(())
}

fn database_and_parent_path(parent: &DocumentName) -> (String, String) {
    (
        format!("projects/{}/databases/{}", parent.project, parent.database),
        parent.relative_path(),
    )
}

fn documents_in_collection(
    connection: &Connection,
    parent: &DocumentName,
    collection_id: &str,
) -> Result<Vec<NamedDocument>, StoreError> {
    let (database, parent_path) = database_and_parent_path(parent);
    let mut statement = connection.prepare_cached(
        "SELECT parent, collection_id, document_id, fields_json, create_time_micros,
                update_time_micros
         FROM documents
         WHERE database = ?1 AND parent = ?2 AND collection_id = ?3
         ORDER BY document_id",
    )?;
    let rows = statement.query(params![database, parent_path, collection_id])?;
    collect_named_rows(&database, rows)
}

/// Every document in a collection named `collection_id` at any depth below `parent`.
fn documents_in_collection_group(
    connection: &Connection,
    parent: &DocumentName,
    collection_id: &str,
) -> Result<Vec<NamedDocument>, StoreError> {
    let (database, parent_path) = database_and_parent_path(parent);
    // Below a document: its own subcollections (`parent = P`) and everything deeper
    // (`parent` starts with `P/`). Below the root: every parent.
    let mut statement = connection.prepare_cached(
        "SELECT parent, collection_id, document_id, fields_json, create_time_micros,
                update_time_micros
         FROM documents
         WHERE database = ?1 AND collection_id = ?2
           AND (?3 = '' OR parent = ?3 OR substr(parent, 1, length(?3) + 1) = ?3 || '/')",
    )?;
    let rows = statement.query(params![database, collection_id, parent_path])?;
    collect_named_rows(&database, rows)
}

fn named_row(database: &str, row: &rusqlite::Row<'_>) -> Result<NamedDocument, StoreError> {
    let parent: String = row.get(0)?;
    let collection_id: String = row.get(1)?;
    let document_id: String = row.get(2)?;
    let fields_json: String = row.get(3)?;
    let name = if parent.is_empty() {
        format!("{database}/documents/{collection_id}/{document_id}")
    } else {
        format!("{database}/documents/{parent}/{collection_id}/{document_id}")
    };
    let stored = decode_row(&name, &fields_json, row.get(4)?, row.get(5)?)?;
    Ok(NamedDocument { name, stored })
}

fn collect_named_rows(
    database: &str,
    mut rows: rusqlite::Rows<'_>,
) -> Result<Vec<NamedDocument>, StoreError> {
    let mut documents = Vec::new();
    while let Some(row) = rows.next()? {
        documents.push(named_row(database, row)?);
    }
    Ok(documents)
}

/// Feeds `visit` the documents of one collection whose value at `plan.field_path` lies in the
/// plan's key range, in (key, document id) order (reversed when descending), until `visit`
/// answers `false`. Returns how many documents were read.
fn visit_index_range(
    connection: &Connection,
    parent: &DocumentName,
    collection_id: &str,
    plan: &IndexPlan,
    visit: &mut dyn FnMut(NamedDocument) -> bool,
) -> Result<usize, StoreError> {
    let (database, parent_path) = database_and_parent_path(parent);
    let sql = format!(
        "SELECT d.parent, d.collection_id, d.document_id, d.fields_json, d.create_time_micros,
                d.update_time_micros
         FROM field_index AS i
         JOIN documents AS d
           ON d.database = i.database AND d.parent = i.parent
          AND d.collection_id = i.collection_id AND d.document_id = i.document_id
         WHERE i.database = ?1 AND i.parent = ?2 AND i.collection_id = ?3
           AND i.field_path = ?4 AND i.sort_key >= ?5 AND i.sort_key < ?6
           AND (?7 IS NULL OR i.sort_key <= ?7)
         ORDER BY i.sort_key {direction}, i.document_id {direction}",
        direction = if plan.descending { "DESC" } else { "ASC" }
    );
    let mut statement = connection.prepare_cached(&sql)?;
    let mut rows = statement.query(params![
        database,
        parent_path,
        collection_id,
        plan.field_path,
        plan.lower,
        plan.class_end,
        plan.upper
    ])?;
    let mut examined = 0;
    while let Some(row) = rows.next()? {
        examined += 1;
        if !visit(named_row(&database, row)?) {
            break;
        }
    }
    Ok(examined)
}

/// Reads shared by snapshots and write transactions, so that a transactional commit can run
/// the same queries its transaction ran.
pub trait DocumentSource {
    fn get_document(&self, name: &DocumentName) -> Result<Option<StoredDocument>, StoreError>;
    /// Every document directly in the collection `collection_id` under `parent` (a document
    /// name, or the database root when it has no segments), in document id order.
    fn documents_in_collection(
        &self,
        parent: &DocumentName,
        collection_id: &str,
    ) -> Result<Vec<NamedDocument>, StoreError>;
    /// Every document of every collection named `collection_id` anywhere below `parent`.
    fn documents_in_collection_group(
        &self,
        parent: &DocumentName,
        collection_id: &str,
    ) -> Result<Vec<NamedDocument>, StoreError>;
    /// See `visit_index_range`.
    fn visit_index_range(
        &self,
        parent: &DocumentName,
        collection_id: &str,
        plan: &IndexPlan,
        visit: &mut dyn FnMut(NamedDocument) -> bool,
    ) -> Result<usize, StoreError>;
}

macro_rules! document_source_for {
    ($type:ident) => {
        impl DocumentSource for $type<'_> {
            fn get_document(
                &self,
                name: &DocumentName,
            ) -> Result<Option<StoredDocument>, StoreError> {
                get_document(&self.transaction, name)
            }
            fn documents_in_collection(
                &self,
                parent: &DocumentName,
                collection_id: &str,
            ) -> Result<Vec<NamedDocument>, StoreError> {
                documents_in_collection(&self.transaction, parent, collection_id)
            }
            fn documents_in_collection_group(
                &self,
                parent: &DocumentName,
                collection_id: &str,
            ) -> Result<Vec<NamedDocument>, StoreError> {
                documents_in_collection_group(&self.transaction, parent, collection_id)
            }
            fn visit_index_range(
                &self,
                parent: &DocumentName,
                collection_id: &str,
                plan: &IndexPlan,
                visit: &mut dyn FnMut(NamedDocument) -> bool,
            ) -> Result<usize, StoreError> {
                visit_index_range(&self.transaction, parent, collection_id, plan, visit)
            }
        }
    };
}

document_source_for!(WriteTransaction);
document_source_for!(ReadSnapshot);

/// An open write transaction and the commit time of everything written in it.
pub struct WriteTransaction<'a> {
    transaction: rusqlite::Transaction<'a>,
    commit_time: Timestamp,
    /// Names written or deleted, for the commit notification.
    written: RefCell<Vec<DocumentName>>,
}

impl WriteTransaction<'_> {
    /// The time this commit will carry: `updateTime` of every changed document.
    pub fn commit_time(&self) -> Timestamp {
        self.commit_time
    }

    /// The document as of this transaction, including its own earlier writes.
    pub fn get_document(&self, name: &DocumentName) -> Result<Option<StoredDocument>, StoreError> {
        get_document(&self.transaction, name)
    }

    /// Creates or replaces a document.
    pub fn put_document(
        &self,
        name: &DocumentName,
        document: &StoredDocument,
    ) -> Result<(), StoreError> {
        let key = row_key(name);
        let fields_json =
            serde_json::to_string(&document.fields).map_err(|error| StoreError::CorruptRow {
                name: name.to_string(),
                reason: error.to_string(),
            })?;
        self.transaction.execute(
            "INSERT INTO documents (database, parent, collection_id, document_id, fields_json,
                                    create_time_micros, update_time_micros)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (database, parent, collection_id, document_id) DO UPDATE SET
                 fields_json = excluded.fields_json,
                 create_time_micros = excluded.create_time_micros,
                 update_time_micros = excluded.update_time_micros",
            params![
                key.database,
                key.parent,
                key.collection_id,
                key.document_id,
                fields_json,
                document.create_time.to_unix_micros(),
                document.update_time.to_unix_micros(),
            ],
        )?;
        delete_index_rows(&self.transaction, &key)?;
        insert_index_rows(&self.transaction, &key, &document.fields)?;
        self.written.borrow_mut().push(name.clone());
        Ok(())
    }

    /// Deletes a document; deleting a missing one is not an error.
    pub fn delete_document(&self, name: &DocumentName) -> Result<(), StoreError> {
        let key = row_key(name);
        self.transaction.execute(
            "DELETE FROM documents
             WHERE database = ?1 AND parent = ?2 AND collection_id = ?3 AND document_id = ?4",
            params![key.database, key.parent, key.collection_id, key.document_id],
        )?;
        delete_index_rows(&self.transaction, &key)?;
        self.written.borrow_mut().push(name.clone());
        Ok(())
    }
}

/// A consistent read-only view of the database at `read_time`.
pub struct ReadSnapshot<'a> {
    transaction: rusqlite::Transaction<'a>,
    read_time: Timestamp,
}

impl ReadSnapshot<'_> {
    /// The time this snapshot stands for.
    pub fn read_time(&self) -> Timestamp {
        self.read_time
    }

    /// The document as of this snapshot (also reachable through `DocumentSource`).
    pub fn get_document(&self, name: &DocumentName) -> Result<Option<StoredDocument>, StoreError> {
        get_document(&self.transaction, name)
    }
}

/// What `copy_database_online` produced: the copy's own view of itself.
#[derive(Clone, Debug, PartialEq)]
pub struct DatabaseCopy {
    /// `PRAGMA integrity_check` on the copy: `"ok"` for a sound file.
    pub integrity_check: String,
    /// Documents in the copy, of every project.
    pub documents: u64,
    /// The commit clock stored in the copy: its latest commit, if any.
    pub last_commit_time: Option<Timestamp>,
}

/// Copies the database file `source_file`, which a running server may be writing, into
/// `destination_file` with SQLite's online backup API, for `counterbook-server backup`.
///
/// All pages are copied in one step, that is inside one read transaction on the source: in WAL
/// mode it never blocks the server's writer, and the copy is one consistent snapshot holding
/// exactly the commits finished before it began. (Copying a few pages per step would restart
/// from scratch after every commit, and never end on a busy server.) The copy is switched to a
/// rollback journal so it is a single self-contained file; a server that opens it turns WAL on
/// again.
pub fn copy_database_online(
    source_file: &Path,
    destination_file: &Path,
) -> Result<DatabaseCopy, StoreError> {
    use rusqlite::backup::{Backup, StepResult};
    // Never create the source: a mistyped data directory is an error, not an empty backup.
    let source = Connection::open_with_flags(
        source_file,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    source.busy_timeout(BUSY_TIMEOUT)?;
    let mut destination = Connection::open(destination_file)?;
    {
        let backup = Backup::new(&source, &mut destination)?;
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            match backup.step(-1)? {
                StepResult::Done => break,
                // A lock held for a moment (a checkpoint, WAL recovery): try again until the
                // same deadline a statement would wait for.
                _ if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    return Err(StoreError::Busy(rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                        Some("the backup could not read the database".to_owned()),
                    )))
                }
            }
        }
    }
    destination.execute_batch("PRAGMA journal_mode = DELETE;")?;
    let integrity_check: String =
        destination.query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
    let documents: i64 =
        destination.query_row("SELECT count(*) FROM documents", [], |row| row.get(0))?;
    let last_commit_micros: Option<i64> = destination
        .query_row(
            "SELECT value FROM server_meta WHERE key = ?1",
            [LAST_COMMIT_KEY],
            |row| row.get(0),
        )
        .optional()?;
    Ok(DatabaseCopy {
        integrity_check,
        documents: u64::try_from(documents).unwrap_or(0),
        last_commit_time: last_commit_micros.map(Timestamp::from_unix_micros),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    fn name(path: &str) -> DocumentName {
        DocumentName::new("p", "(default)", path).unwrap()
    }

    static STEPPED_CLOCK: AtomicI64 = AtomicI64::new(1_000_000);

    fn stepped_clock() -> i64 {
        STEPPED_CLOCK.load(Ordering::SeqCst)
    }

    #[test]
    fn commit_times_strictly_increase_even_when_the_clock_steps_back_and_survive_reopening() {
        let directory = tempfile::tempdir().unwrap();
        let store = Store::open_with_clock(directory.path(), stepped_clock).unwrap();
        let commit = |store: &Store| {
            store
                .write_transaction(|transaction| Ok(transaction.commit_time()))
                .unwrap()
        };
        let first = commit(&store);
        assert_eq!(first, Timestamp::from_unix_micros(1_000_000));
        let second = commit(&store);
        assert_eq!(second, Timestamp::from_unix_micros(1_000_001));
        STEPPED_CLOCK.store(500, Ordering::SeqCst);
        let third = commit(&store);
        assert_eq!(third, Timestamp::from_unix_micros(1_000_002));
        drop(store);

        let reopened = Store::open_with_clock(directory.path(), stepped_clock).unwrap();
        assert_eq!(
            commit(&reopened),
            Timestamp::from_unix_micros(1_000_003),
            "the last commit time is persisted"
        );
        let read_time = reopened
            .read_snapshot(|snapshot| Ok(snapshot.read_time()))
            .unwrap();
        assert_eq!(read_time, Timestamp::from_unix_micros(1_000_003));
    }

    #[test]
    fn a_failed_transaction_keeps_nothing() {
        let directory = tempfile::tempdir().unwrap();
        let store = Store::open(directory.path()).unwrap();
        let result: Result<(), ServerError> = store.write_transaction(|transaction| {
            transaction.put_document(&name("c/a"), &StoredDocument::default())?;
            Err(ServerError::InvalidArgument("second write is bad".into()))
        });
        assert!(result.is_err());
        let found = store
            .read_snapshot(|snapshot| Ok(snapshot.get_document(&name("c/a"))?))
            .unwrap();
        assert_eq!(found, None);
    }

    #[test]
    fn collection_scans_see_only_direct_children_of_the_parent() {
        let directory = tempfile::tempdir().unwrap();
        let store = Store::open(directory.path()).unwrap();
        store
            .write_transaction(|transaction| {
                for path in [
                    "shops/s1/items/b",
                    "shops/s1/items/a",
                    "shops/s2/items/x",
                    "shops/s1/items/a/sub/y",
                    "items/root",
                ] {
                    transaction.put_document(&name(path), &StoredDocument::default())?;
                }
                Ok(())
            })
            .unwrap();
        let names = store
            .read_snapshot(|snapshot| {
                Ok(snapshot.documents_in_collection(&name("shops/s1"), "items")?)
            })
            .unwrap()
            .into_iter()
            .map(|document| document.name)
            .collect::<Vec<_>>();
        assert_eq!(
            names,
            [
                "projects/p/databases/(default)/documents/shops/s1/items/a",
                "projects/p/databases/(default)/documents/shops/s1/items/b",
            ]
        );
        let root = DocumentName::parse("projects/p/databases/(default)/documents").unwrap();
        let root_names = store
            .read_snapshot(|snapshot| Ok(snapshot.documents_in_collection(&root, "items")?))
            .unwrap();
        assert_eq!(root_names.len(), 1);
        assert_eq!(
            root_names[0].name,
            "projects/p/databases/(default)/documents/items/root"
        );
    }
}
