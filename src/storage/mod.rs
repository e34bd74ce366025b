//! The local store: IndexedDB through rexie. The only module that touches IndexedDB; it speaks
//! domain types ([`Product`], [`Unit`], [`Checkpoint`], `counterbook-shop`'s records),
//! never `JsValue`, to the rest of the app.
//!
//! Every user action is ONE IndexedDB transaction across the entity stores, the audit store and
//! the outbox ([`Store::commit_unit`]), so the UI never shows a state that is not durable and a
//! crash can never leave an entity without its outbox entry or the reverse.
//!
//! Schema (version 7; `schema::stores_of` says what each version added):
//! - entity stores, key path `id`: `products` (indexes `sku`, `barcode` multi-entry over
//!   `barcodes`, and the compound list indexes `byName`, `lowStockByName`, `byCategory`,
//!   `lowStockByCategory`, see `products`; a pulled product's record holds its base copy in
//!   `base` and, while it shows exactly that version, `asPulled: true`), `customers` (`phone`
//!   over `phoneDigits`, `nameKey`),
//!   `bills` (`day`, unique `number`), `payments` (`billId`), `expenses` (`day`), `stockMoves`
//!   (`productId`), `audit` (`atMillis`), `refunds` (`billId`), `parkedBills`;
//! - sync stores: `outbox` (key path `id`; `{id, unit, state: "pending" | "dead", reason}`),
//!   `conflicts` (the conflict inbox, key path `id`), `bases` (base copies for the three-way
//!   merge, key path `path`, of every document but the products the tablet holds, whose base
//!   copies are in their records since version 7);
//! - `meta`: out-of-line string keys: `deviceId`, `checkpoint/{collection}`, `dataVersion`,
//!   `resumeToken/{target key}` (where each listen target resumes from).
//!
//! Migrations. Store and index changes are declarative (`schema::stores_of`, the one statement
//! of the schema): opening with a newer version creates what is missing and keeps every record
//! (an index a version dropped, `schema::dropped_indexes`, is deleted), in our own upgrade handler (`upgrade`, which reports a failed step as an error where the idb
//! crate's would panic), before rexie opens the database with nothing left to upgrade. Record changes are data migrations: numbered steps in
//! `DATA_MIGRATIONS`, each run once, in one transaction with the `dataVersion` that records it,
//! right after opening. Version 1 had `products`, `outbox` and `meta`.

mod bases;
mod bills;
mod changes;
mod customers;
mod outbox;
mod people;
mod products;
pub mod reversals;
pub mod sales;
mod schema;
mod server_documents;
mod units;
mod upgrade;

use std::collections::HashMap;

use futures::future::{try_join, try_join_all};
use rexie::{KeyRange, Rexie, TransactionMode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::JsValue;

pub use changes::ChangedDocuments;
pub use outbox::{OutboxContents, OutboxSummary};
pub use products::{ProductPosition, ProductQuery, TakenCodes};
pub use reversals::REFUSED_BY_CONFLICT;
use schema::META;
pub use schema::{declare_schema, DATA_VERSION, SCHEMA_VERSION};
pub use server_documents::{rebased, PreparedDocuments};

/// What went wrong in the local store. Every failing write leaves nothing behind.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error("Could not open the local database: {0}")]
    Open(String),
    /// The browser refused to commit: `QuotaExceededError`, or a disk error. The IndexedDB
    /// spec aborts a transaction at commit for exactly those two causes, and rexie reports the
    /// abort without its cause, so both end here.
    #[error(
        "This device's storage is full (or failing), so nothing was saved. Free some space and try again."
    )]
    QuotaExceeded,
    #[error("Saving to the local database failed, so nothing was saved: {0}")]
    Transaction(String),
    #[error("A record in the local database could not be read: {0}")]
    Corrupt(String),
}

impl StorageError {
    fn from_rexie(error: rexie::Error) -> StorageError {
        let detail = match &error {
            // Display names the DOMException ("QuotaExceededError: ..."); Debug would add a
            // JavaScript stack trace that no shopkeeper should read.
            rexie::Error::IdbError(inner) => inner.to_string(),
            other => other.to_string(),
        };
        if detail.contains("QuotaExceeded") {
            StorageError::QuotaExceeded
        } else {
            StorageError::Transaction(detail)
        }
    }
}

type Result<T> = std::result::Result<T, StorageError>;

fn to_js<T: Serialize>(value: &T) -> Result<JsValue> {
    // json_compatible: maps become plain objects, so records stay readable and indexable.
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| StorageError::Transaction(format!("cannot encode a record: {e}")))
}

/// Many records as JavaScript values at once, the same objects [`to_js`] makes (plain objects,
/// `null` for `None`, numbers for integers): one JSON text written in Rust and read by the
/// browser's `JSON.parse`. A pulled page's thousand records cost one string crossing out of
/// wasm this way, instead of one per field name and string value (measured: most of the
/// conversion time of a first sync).
fn many_to_js<T: Serialize>(values: &[T]) -> Result<Vec<JsValue>> {
    if values.is_empty() {
        return Ok(Vec::new());
    }
    let text = serde_json::to_string(values)
        .map_err(|e| StorageError::Transaction(format!("cannot encode a record: {e}")))?;
    let parsed = js_sys::JSON::parse(&text)
        .map_err(|_| StorageError::Transaction("cannot encode a record as JSON".into()))?;
    Ok(js_sys::Array::from(&parsed).iter().collect())
}

fn from_js<T: DeserializeOwned>(value: JsValue) -> Result<T> {
    serde_wasm_bindgen::from_value(value).map_err(|e| StorageError::Corrupt(e.to_string()))
}

/// Key ranges fail only for values that are not valid keys, which our strings always are.
fn key_range<E: std::fmt::Display>(range: std::result::Result<KeyRange, E>) -> Result<KeyRange> {
    range.map_err(|e| StorageError::Transaction(format!("invalid key range: {e}")))
}

/// The records `store` holds under these string keys, by key (a key it does not hold is left
/// out). When the store holds few records between the lowest and the highest key (an empty
/// tablet's first sync, a page of neighbouring documents), one range read answers them all: a
/// count, then the range, two requests instead of one per key (none past the count when the
/// range is empty). Otherwise one get per key, sent at once and awaited together (IndexedDB
/// runs them in order).
async fn stored_values(store: &rexie::Store, keys: &[&str]) -> Result<HashMap<String, JsValue>> {
    let (Some(lowest), Some(highest)) = (keys.iter().min(), keys.iter().max()) else {
        return Ok(HashMap::new());
    };
    let range = || {
        key_range(KeyRange::bound(
            &JsValue::from_str(lowest),
            &JsValue::from_str(highest),
            Some(false),
            Some(false),
        ))
    };
    let held = store
        .count(Some(range()?))
        .await
        .map_err(StorageError::from_rexie)?;
    if held == 0 {
        return Ok(HashMap::new());
    }
    if (held as usize) <= keys.len().saturating_mul(2) {
        let (stored_keys, values) = try_join(
            store.get_all_keys(Some(range()?), None),
            store.get_all(Some(range()?), None),
        )
        .await
        .map_err(StorageError::from_rexie)?;
        return Ok(stored_keys
            .into_iter()
            .zip(values)
            .filter_map(|(key, value)| Some((key.as_string()?, value)))
            .collect());
    }
    let values = try_join_all(keys.iter().map(|key| store.get(JsValue::from_str(key))))
        .await
        .map_err(StorageError::from_rexie)?;
    Ok(keys
        .iter()
        .zip(values)
        .filter_map(|(key, value)| Some(((*key).to_owned(), value.filter(JsValue::is_object)?)))
        .collect())
}

/// The open local database.
pub struct Store {
    db: Rexie,
    /// Announces the documents each committed write changed.
    changes: changes::ChangeFeed,
}

impl Store {
    /// Opens (creating or upgrading) the database called `name`, then runs any data migration
    /// it has not seen yet.
    pub async fn open(name: &str) -> Result<Store> {
        upgrade::upgrade_to(name, SCHEMA_VERSION).await?;
        let db = declare_schema(name, SCHEMA_VERSION)
            .build()
            .await
            .map_err(|e| StorageError::Open(StorageError::from_rexie(e).to_string()))?;
        let store = Store {
            db,
            changes: changes::ChangeFeed::default(),
        };
        store.run_data_migrations().await?;
        Ok(store)
    }

    /// Opens `name` with an older schema, as an older release of the app did. Only migration
    /// tests need this.
    pub async fn open_with_old_schema(name: &str, version: u32) -> Result<Store> {
        if version == 0 || version >= SCHEMA_VERSION {
            return Err(StorageError::Open(format!(
                "schema version {version} is not an older version (current: {SCHEMA_VERSION})"
            )));
        }
        upgrade::upgrade_to(name, version).await?;
        let db = declare_schema(name, version)
            .build()
            .await
            .map_err(|e| StorageError::Open(StorageError::from_rexie(e).to_string()))?;
        Ok(Store {
            db,
            changes: changes::ChangeFeed::default(),
        })
    }

    /// Calls `subscriber` after every committed write that changed entity records, with the
    /// documents it changed (local units, pulled pages, listen snapshots, re-read documents,
    /// rejected units). The driver subscribes once and tells the screens and the other tabs.
    pub fn on_change(&self, subscriber: impl Fn(&ChangedDocuments) + 'static) {
        self.changes.subscribe(subscriber);
    }

    /// Closes the connection, so that another version can open the database.
    pub fn close(self) {
        self.db.close();
    }

    /// Deletes the database called `name` (tests start from nothing).
    pub async fn delete(name: &str) -> Result<()> {
        Rexie::delete(name).await.map_err(StorageError::from_rexie)
    }

    fn transaction(&self, stores: &[&str], mode: TransactionMode) -> Result<rexie::Transaction> {
        self.db
            .transaction(stores, mode)
            .map_err(StorageError::from_rexie)
    }

    /// Waits for a read-write transaction: committed, or the error that stopped it after
    /// aborting it so that nothing of it remains.
    async fn finish(transaction: rexie::Transaction, outcome: Result<()>) -> Result<()> {
        if let Err(error) = outcome {
            // Aborting an already-aborted transaction fails; the original error is what matters.
            let _ = transaction.abort().await;
            return Err(error);
        }
        let result = transaction.done().await.map_err(StorageError::from_rexie)?;
        if result.is_committed() {
            Ok(())
        } else {
            // Every request succeeded (a failing one returns above), yet the commit aborted.
            Err(StorageError::QuotaExceeded)
        }
    }

    /// [`Store::finish`] for a transaction whose work produced a value.
    async fn finish_with<T>(transaction: rexie::Transaction, outcome: Result<T>) -> Result<T> {
        match outcome {
            Ok(value) => Self::finish(transaction, Ok(())).await.map(|()| value),
            Err(error) => {
                Self::finish(transaction, Err(error.clone())).await?;
                Err(error)
            }
        }
    }

    /// Puts `records` straight into `store_name` in ONE transaction (each as `value_of` makes
    /// it from the record and the stored one it replaces, if any), with no outbox unit, and
    /// announces them changed: how tests and benchmarks fill a tablet, as a pull would.
    async fn seed_records<T>(
        &self,
        store_name: &'static str,
        records: &[T],
        id_of: impl Fn(&T) -> &str,
        value_of: impl Fn(&T, Option<&JsValue>) -> Result<JsValue>,
    ) -> Result<()> {
        let transaction = self.transaction(&[store_name], TransactionMode::ReadWrite)?;
        let mut changed = ChangedDocuments::new();
        let outcome = async {
            let store = transaction
                .store(store_name)
                .map_err(StorageError::from_rexie)?;
            let ids: Vec<&str> = records.iter().map(&id_of).collect();
            let previous = stored_values(&store, &ids).await?;
            let mut values = Vec::with_capacity(records.len());
            for record in records {
                values.push((value_of(record, previous.get(id_of(record)))?, None));
                changed.insert(store_name, id_of(record));
            }
            store
                .put_all(values.into_iter())
                .await
                .map_err(StorageError::from_rexie)
        }
        .await;
        Self::finish(transaction, outcome).await?;
        self.changes.publish(&changed);
        Ok(())
    }

    /// This device's id, made and saved on first use.
    pub async fn device_id(&self) -> Result<String> {
        let key = JsValue::from_str("deviceId");
        let transaction = self.transaction(&[META], TransactionMode::ReadWrite)?;
        let outcome = async {
            let meta = transaction.store(META).map_err(StorageError::from_rexie)?;
            if let Some(existing) = meta
                .get(key.clone())
                .await
                .map_err(StorageError::from_rexie)?
            {
                if let Some(id) = existing.as_string() {
                    return Ok(id);
                }
            }
            let id = crate::ids::new_id();
            meta.put(&JsValue::from_str(&id), Some(&key))
                .await
                .map_err(StorageError::from_rexie)?;
            Ok(id)
        }
        .await;
        match outcome {
            Ok(id) => Self::finish(transaction, Ok(())).await.map(|()| id),
            Err(error) => Self::finish(transaction, Err(error))
                .await
                .map(|()| String::new()),
        }
    }

    async fn all<T: DeserializeOwned>(&self, store_name: &str) -> Result<Vec<T>> {
        let transaction = self.transaction(&[store_name], TransactionMode::ReadOnly)?;
        let store = transaction
            .store(store_name)
            .map_err(StorageError::from_rexie)?;
        let values = store
            .get_all(None, None)
            .await
            .map_err(StorageError::from_rexie)?;
        values.into_iter().map(from_js).collect()
    }

    async fn index_lookup<T: DeserializeOwned>(
        &self,
        store_name: &str,
        index_name: &str,
        range: KeyRange,
    ) -> Result<Vec<T>> {
        let transaction = self.transaction(&[store_name], TransactionMode::ReadOnly)?;
        let store = transaction
            .store(store_name)
            .map_err(StorageError::from_rexie)?;
        let index = store.index(index_name).map_err(StorageError::from_rexie)?;
        let values = index
            .get_all(Some(range), None)
            .await
            .map_err(StorageError::from_rexie)?;
        values.into_iter().map(from_js).collect()
    }

    async fn delete_key(&self, store_name: &str, key: &str) -> Result<()> {
        let transaction = self.transaction(&[store_name], TransactionMode::ReadWrite)?;
        let outcome = async {
            transaction
                .store(store_name)
                .map_err(StorageError::from_rexie)?
                .delete(JsValue::from_str(key))
                .await
                .map_err(StorageError::from_rexie)
        }
        .await;
        Self::finish(transaction, outcome).await
    }
}

/// Asks the browser not to evict this origin's storage under pressure. The answer is advisory:
/// the app works either way, so failures are ignored.
pub async fn request_persistent_storage() -> bool {
    let Some(window) = web_sys::window() else {
        return false;
    };
    let Ok(promise) = window.navigator().storage().persist() else {
        return false;
    };
    wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .ok()
        .and_then(|granted| granted.as_bool())
        .unwrap_or(false)
}
