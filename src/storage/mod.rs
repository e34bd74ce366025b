//! The local store: IndexedDB through rexie. The only module that touches IndexedDB; it speaks
//! domain types ([`Product`], [`Unit`], [`Checkpoint`], the records of [`crate::entities`]),
//! never `JsValue`, to the rest of the app.
//!
//! Every user action is ONE IndexedDB transaction across the entity stores, the audit store and
//! the outbox ([`Store::commit_unit`]), so the UI never shows a state that is not durable and a
//! crash can never leave an entity without its outbox entry or the reverse.
//!
//! Schema (version 2):
//! - entity stores, key path `id`: `products` (indexes `name`, `nameKey` for name prefixes,
//!   `sku`, `barcode` multi-entry over `barcodes`), `customers` (`phone` over `phoneDigits`),
//!   `bills` (`day`, unique `number`), `payments` (`billId`), `expenses` (`day`), `stockMoves`
//!   (`productId`), `audit` (`atMillis`);
//! - sync stores: `outbox` (key path `id`; `{id, unit, state: "pending" | "dead", reason}`),
//!   `conflicts` (the conflict inbox, key path `id`), `bases` (base copies for the three-way
//!   merge, key path `path`);
//! - `meta`: out-of-line string keys: `deviceId`, `checkpoint/{collection}`, `dataVersion`,
//!   `resumeToken/{target key}` (where each listen target resumes from).
//!
//! Migrations. Store and index changes are declarative: opening with a newer version creates
//! what is missing and keeps every record (rexie drops stores that are not declared, so no store
//! is ever left out of [`declare_schema`]). Record changes are data migrations: numbered steps in
//! `DATA_MIGRATIONS`, each run once, in one transaction with the `dataVersion` that records it,
//! right after opening. Version 1 had `products`, `outbox` and `meta`.

use std::collections::BTreeMap;

use counterbook_firestore_wire::{Document, Value};
use counterbook_sync::{Checkpoint, ConflictEntry, DocumentWrite, PulledPage, Unit};
use rexie::{Index, KeyRange, ObjectStore, Rexie, TransactionMode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;

use crate::entities::{AuditEntry, BaseCopy, Bill, Customer, EntityRecord};
use crate::model::{name_key, Product};

pub const SCHEMA_VERSION: u32 = 2;
const PRODUCTS: &str = "products";
const CUSTOMERS: &str = "customers";
const BILLS: &str = "bills";
const PAYMENTS: &str = "payments";
const EXPENSES: &str = "expenses";
const STOCK_MOVES: &str = "stockMoves";
const AUDIT: &str = "audit";
const OUTBOX: &str = "outbox";
const CONFLICTS: &str = "conflicts";
const BASES: &str = "bases";
const META: &str = "meta";
const DATA_VERSION_KEY: &str = "dataVersion";

/// Declares the object stores and indexes of schema `version` (1 or 2).
pub fn declare_schema(name: &str, version: u32) -> rexie::RexieBuilder {
    let products = ObjectStore::new(PRODUCTS)
        .key_path("id")
        .add_index(Index::new("name", "name"));
    let builder = Rexie::builder(name).version(version);
    if version == 1 {
        return builder
            .add_object_store(products)
            .add_object_store(ObjectStore::new(OUTBOX).key_path("id"))
            .add_object_store(ObjectStore::new(META));
    }
    let products = products
        .add_index(Index::new("nameKey", "nameKey"))
        .add_index(Index::new("sku", "sku"))
        .add_index(Index::new("barcode", "barcodes").multi_entry(true));
    let keyed = |name: &str| ObjectStore::new(name).key_path("id");
    builder
        .add_object_store(products)
        .add_object_store(keyed(CUSTOMERS).add_index(Index::new("phone", "phoneDigits")))
        .add_object_store(
            keyed(BILLS)
                .add_index(Index::new("day", "day"))
                .add_index(Index::new("number", "number").unique(true)),
        )
        .add_object_store(keyed(PAYMENTS).add_index(Index::new("billId", "billId")))
        .add_object_store(keyed(EXPENSES).add_index(Index::new("day", "day")))
        .add_object_store(keyed(STOCK_MOVES).add_index(Index::new("productId", "productId")))
        .add_object_store(keyed(AUDIT).add_index(Index::new("atMillis", "atMillis")))
        .add_object_store(keyed(OUTBOX))
        .add_object_store(keyed(CONFLICTS))
        .add_object_store(ObjectStore::new(BASES).key_path("path"))
        .add_object_store(ObjectStore::new(META))
}

/// One data migration: brings records written by an older version up to date.
struct DataMigration {
    /// The `dataVersion` this step produces.
    version: u32,
    /// The stores it reads and writes (besides `meta`).
    stores: &'static [&'static str],
    what: &'static str,
}

/// Every data migration, oldest first.
const DATA_MIGRATIONS: &[DataMigration] = &[DataMigration {
    version: 2,
    stores: &[PRODUCTS],
    what: "backfill products' nameKey for the name-prefix index",
}];

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

/// An outbox record as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OutboxRecord {
    id: String,
    unit: Unit,
    state: OutboxRecordState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum OutboxRecordState {
    Pending,
    Dead,
}

/// The outbox as found at start-up.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutboxContents {
    pub pending: Vec<Unit>,
    /// Units that stopped for good, with the reason, waiting for a person.
    pub dead_letters: Vec<(Unit, String)>,
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue> {
    // json_compatible: maps become plain objects, so records stay readable and indexable.
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| StorageError::Transaction(format!("cannot encode a record: {e}")))
}

fn from_js<T: DeserializeOwned>(value: JsValue) -> Result<T> {
    serde_wasm_bindgen::from_value(value).map_err(|e| StorageError::Corrupt(e.to_string()))
}

/// Key ranges fail only for values that are not valid keys, which our strings always are.
fn key_range<E: std::fmt::Display>(range: std::result::Result<KeyRange, E>) -> Result<KeyRange> {
    range.map_err(|e| StorageError::Transaction(format!("invalid key range: {e}")))
}

fn store_of(record: &EntityRecord) -> &'static str {
    match record {
        EntityRecord::Product(_) => PRODUCTS,
        EntityRecord::Customer(_) => CUSTOMERS,
        EntityRecord::Bill(_) => BILLS,
        EntityRecord::Payment(_) => PAYMENTS,
        EntityRecord::Expense(_) => EXPENSES,
        EntityRecord::StockMove(_) => STOCK_MOVES,
    }
}

fn record_to_js(record: &EntityRecord) -> Result<JsValue> {
    match record {
        EntityRecord::Product(product) => to_js(product),
        EntityRecord::Customer(customer) => {
            // The phone index holds digits only, so lookups ignore spaces and dashes.
            let mut customer = customer.clone();
            customer.phone_digits = customer
                .phone
                .as_ref()
                .map(|p| p.chars().filter(char::is_ascii_digit).collect());
            to_js(&customer)
        }
        EntityRecord::Bill(bill) => to_js(bill),
        EntityRecord::Payment(payment) => to_js(payment),
        EntityRecord::Expense(expense) => to_js(expense),
        EntityRecord::StockMove(stock_move) => to_js(stock_move),
    }
}

/// The open local database.
pub struct Store {
    db: Rexie,
}

impl Store {
    /// Opens (creating or upgrading) the database called `name`, then runs any data migration
    /// it has not seen yet.
    pub async fn open(name: &str) -> Result<Store> {
        let db = declare_schema(name, SCHEMA_VERSION)
            .build()
            .await
            .map_err(|e| StorageError::Open(StorageError::from_rexie(e).to_string()))?;
        let store = Store { db };
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
        let db = declare_schema(name, version)
            .build()
            .await
            .map_err(|e| StorageError::Open(StorageError::from_rexie(e).to_string()))?;
        Ok(Store { db })
    }

    /// Closes the connection, so that another version can open the database.
    pub fn close(self) {
        self.db.close();
    }

    /// The data version recorded in `meta` (1 when none is: version 1 did not record it).
    pub async fn data_version(&self) -> Result<u32> {
        let transaction = self.transaction(&[META], TransactionMode::ReadOnly)?;
        let meta = transaction.store(META).map_err(StorageError::from_rexie)?;
        let value = meta
            .get(JsValue::from_str(DATA_VERSION_KEY))
            .await
            .map_err(StorageError::from_rexie)?;
        Ok(value
            .and_then(|v| v.as_f64())
            .map(|v| v as u32)
            .unwrap_or(1))
    }

    async fn run_data_migrations(&self) -> Result<()> {
        let current = self.data_version().await?;
        for migration in DATA_MIGRATIONS.iter().filter(|m| m.version > current) {
            let mut stores: Vec<&str> = migration.stores.to_vec();
            stores.push(META);
            let transaction = self.transaction(&stores, TransactionMode::ReadWrite)?;
            let outcome = async {
                match migration.version {
                    2 => {
                        let products = transaction
                            .store(PRODUCTS)
                            .map_err(StorageError::from_rexie)?;
                        let values = products
                            .get_all(None, None)
                            .await
                            .map_err(StorageError::from_rexie)?;
                        for value in values {
                            let mut product: Product = from_js(value)?;
                            product.name_key = name_key(&product.name);
                            products
                                .put(&to_js(&product)?, None)
                                .await
                                .map_err(StorageError::from_rexie)?;
                        }
                    }
                    other => {
                        return Err(StorageError::Open(format!(
                            "no data migration to version {other}"
                        )))
                    }
                }
                let meta = transaction.store(META).map_err(StorageError::from_rexie)?;
                meta.put(
                    &JsValue::from_f64(f64::from(migration.version)),
                    Some(&JsValue::from_str(DATA_VERSION_KEY)),
                )
                .await
                .map_err(StorageError::from_rexie)?;
                Ok(())
            }
            .await;
            Self::finish(transaction, outcome).await.map_err(|e| {
                StorageError::Open(format!("migration \"{}\" failed: {e}", migration.what))
            })?;
        }
        Ok(())
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

    /// Saves a new product and the unit that will push it, in one transaction.
    pub async fn add_product(
        &self,
        product: &Product,
        audit: &[AuditEntry],
        unit: &Unit,
    ) -> Result<()> {
        self.commit_unit(&[EntityRecord::Product(product.clone())], audit, unit)
            .await
    }

    /// Writes one unit of work: its entity records, its audit entries and its outbox entry,
    /// all in ONE transaction. If any part fails, nothing of it is kept.
    pub async fn commit_unit(
        &self,
        records: &[EntityRecord],
        audit: &[AuditEntry],
        unit: &Unit,
    ) -> Result<()> {
        let mut stores: Vec<&str> = records.iter().map(store_of).collect();
        stores.push(OUTBOX);
        if !audit.is_empty() {
            stores.push(AUDIT);
        }
        stores.sort_unstable();
        stores.dedup();
        let transaction = self.transaction(&stores, TransactionMode::ReadWrite)?;
        let outcome = async {
            for record in records {
                let store = transaction
                    .store(store_of(record))
                    .map_err(StorageError::from_rexie)?;
                store
                    .put(&record_to_js(record)?, None)
                    .await
                    .map_err(StorageError::from_rexie)?;
            }
            for entry in audit {
                let audit_store = transaction.store(AUDIT).map_err(StorageError::from_rexie)?;
                // Append-only: `add` refuses to overwrite an existing entry.
                audit_store
                    .add(&to_js(entry)?, None)
                    .await
                    .map_err(StorageError::from_rexie)?;
            }
            let record = OutboxRecord {
                id: unit.id.clone(),
                unit: unit.clone(),
                state: OutboxRecordState::Pending,
                reason: None,
            };
            // `add`, not `put`: a unit id is never reused, and a clash must fail the whole unit.
            transaction
                .store(OUTBOX)
                .map_err(StorageError::from_rexie)?
                .add(&to_js(&record)?, None)
                .await
                .map_err(StorageError::from_rexie)?;
            Ok(())
        }
        .await;
        Self::finish(transaction, outcome).await
    }

    /// The products whose name starts with `prefix` (case and spacing ignored), by name.
    pub async fn products_with_name_prefix(&self, prefix: &str) -> Result<Vec<Product>> {
        let key = name_key(prefix);
        let range = key_range(KeyRange::bound(
            &JsValue::from_str(&key),
            &JsValue::from_str(&format!("{key}\u{ffff}")),
            Some(false),
            Some(false),
        ))?;
        self.index_lookup(PRODUCTS, "nameKey", range).await
    }

    /// The product a scanner's barcode belongs to, if any.
    pub async fn product_by_barcode(&self, barcode: &str) -> Result<Option<Product>> {
        let range = key_range(KeyRange::only(&JsValue::from_str(barcode)))?;
        Ok(self
            .index_lookup(PRODUCTS, "barcode", range)
            .await?
            .into_iter()
            .next())
    }

    pub async fn product_by_sku(&self, sku: &str) -> Result<Option<Product>> {
        let range = key_range(KeyRange::only(&JsValue::from_str(sku)))?;
        Ok(self
            .index_lookup(PRODUCTS, "sku", range)
            .await?
            .into_iter()
            .next())
    }

    /// Customers by phone number; only the digits count ("+91 98765-43210" = "919876543210").
    pub async fn customers_by_phone(&self, phone: &str) -> Result<Vec<Customer>> {
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        let range = key_range(KeyRange::only(&JsValue::from_str(&digits)))?;
        self.index_lookup(CUSTOMERS, "phone", range).await
    }

    /// The bills of one local day (`YYYY-MM-DD`).
    pub async fn bills_on_day(&self, day: &str) -> Result<Vec<Bill>> {
        let range = key_range(KeyRange::only(&JsValue::from_str(day)))?;
        self.index_lookup(BILLS, "day", range).await
    }

    /// The audit trail, oldest first.
    pub async fn audit_entries(&self) -> Result<Vec<AuditEntry>> {
        let transaction = self.transaction(&[AUDIT], TransactionMode::ReadOnly)?;
        let store = transaction.store(AUDIT).map_err(StorageError::from_rexie)?;
        let index = store.index("atMillis").map_err(StorageError::from_rexie)?;
        let values = index
            .get_all(None, None)
            .await
            .map_err(StorageError::from_rexie)?;
        values.into_iter().map(from_js).collect()
    }

    /// The conflict inbox, oldest first.
    pub async fn conflicts(&self) -> Result<Vec<ConflictEntry>> {
        self.all(CONFLICTS).await
    }

    /// Puts entries into the conflict inbox, in one transaction.
    pub async fn add_conflicts(&self, entries: &[ConflictEntry]) -> Result<()> {
        let transaction = self.transaction(&[CONFLICTS], TransactionMode::ReadWrite)?;
        let outcome = async {
            let store = transaction
                .store(CONFLICTS)
                .map_err(StorageError::from_rexie)?;
            for entry in entries {
                store
                    .put(&to_js(entry)?, None)
                    .await
                    .map_err(StorageError::from_rexie)?;
            }
            Ok(())
        }
        .await;
        Self::finish(transaction, outcome).await
    }

    /// Removes an entry from the conflict inbox (the user dealt with it).
    pub async fn remove_conflict(&self, id: &str) -> Result<()> {
        self.delete_key(CONFLICTS, id).await
    }

    /// The base copy of a document, as last pulled.
    pub async fn base_copy(&self, path: &str) -> Result<Option<BaseCopy>> {
        let transaction = self.transaction(&[BASES], TransactionMode::ReadOnly)?;
        let store = transaction.store(BASES).map_err(StorageError::from_rexie)?;
        match store
            .get(JsValue::from_str(path))
            .await
            .map_err(StorageError::from_rexie)?
        {
            Some(value) if !value.is_undefined() => from_js(value).map(Some),
            _ => Ok(None),
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

    /// Every product, by name.
    pub async fn products(&self) -> Result<Vec<Product>> {
        let transaction = self.transaction(&[PRODUCTS], TransactionMode::ReadOnly)?;
        let store = transaction
            .store(PRODUCTS)
            .map_err(StorageError::from_rexie)?;
        let index = store.index("name").map_err(StorageError::from_rexie)?;
        let values = index
            .get_all(None, None)
            .await
            .map_err(StorageError::from_rexie)?;
        values.into_iter().map(from_js).collect()
    }

    /// The outbox: pending units and dead letters, oldest first.
    pub async fn outbox(&self) -> Result<OutboxContents> {
        let transaction = self.transaction(&[OUTBOX], TransactionMode::ReadOnly)?;
        let store = transaction
            .store(OUTBOX)
            .map_err(StorageError::from_rexie)?;
        let values = store
            .get_all(None, None)
            .await
            .map_err(StorageError::from_rexie)?;
        let mut contents = OutboxContents::default();
        for value in values {
            let record: OutboxRecord = from_js(value)?;
            match record.state {
                OutboxRecordState::Pending => contents.pending.push(record.unit),
                OutboxRecordState::Dead => contents
                    .dead_letters
                    .push((record.unit, record.reason.unwrap_or_default())),
            }
        }
        Ok(contents)
    }

    /// The unit reached the server exactly once: remove it from the outbox.
    pub async fn mark_unit_done(&self, unit_id: &str) -> Result<()> {
        self.delete_unit(unit_id).await
    }

    /// The user discarded a dead letter.
    pub async fn discard_unit(&self, unit_id: &str) -> Result<()> {
        self.delete_unit(unit_id).await
    }

    async fn delete_unit(&self, unit_id: &str) -> Result<()> {
        self.delete_key(OUTBOX, unit_id).await
    }

    /// Flags a unit as a dead letter (`Some(reason)`) or pending again (`None`).
    pub async fn set_dead_letter(&self, unit_id: &str, reason: Option<&str>) -> Result<()> {
        let transaction = self.transaction(&[OUTBOX], TransactionMode::ReadWrite)?;
        let outcome = async {
            let store = transaction
                .store(OUTBOX)
                .map_err(StorageError::from_rexie)?;
            let Some(value) = store
                .get(JsValue::from_str(unit_id))
                .await
                .map_err(StorageError::from_rexie)?
            else {
                return Ok(());
            };
            let mut record: OutboxRecord = from_js(value)?;
            record.state = match reason {
                Some(_) => OutboxRecordState::Dead,
                None => OutboxRecordState::Pending,
            };
            record.reason = reason.map(str::to_owned);
            store
                .put(&to_js(&record)?, None)
                .await
                .map_err(StorageError::from_rexie)?;
            Ok(())
        }
        .await;
        Self::finish(transaction, outcome).await
    }

    /// The last applied position of `collection`'s pull, if any.
    pub async fn checkpoint(&self, collection: &str) -> Result<Option<Checkpoint>> {
        let transaction = self.transaction(&[META], TransactionMode::ReadOnly)?;
        let store = transaction.store(META).map_err(StorageError::from_rexie)?;
        let key = JsValue::from_str(&format!("checkpoint/{collection}"));
        match store.get(key).await.map_err(StorageError::from_rexie)? {
            Some(value) if !value.is_undefined() => from_js(value).map(Some),
            _ => Ok(None),
        }
    }

    /// The resume token saved for the listen target with this key, if any.
    pub async fn resume_token(&self, target_key: &str) -> Result<Option<String>> {
        let transaction = self.transaction(&[META], TransactionMode::ReadOnly)?;
        let store = transaction.store(META).map_err(StorageError::from_rexie)?;
        let key = JsValue::from_str(&format!("resumeToken/{target_key}"));
        Ok(store
            .get(key)
            .await
            .map_err(StorageError::from_rexie)?
            .and_then(|value| value.as_string()))
    }

    /// Saves (or with `None` forgets) the resume token of the listen target with this key.
    pub async fn save_resume_token(&self, target_key: &str, token: Option<&str>) -> Result<()> {
        let transaction = self.transaction(&[META], TransactionMode::ReadWrite)?;
        let outcome = async {
            let store = transaction.store(META).map_err(StorageError::from_rexie)?;
            let key = JsValue::from_str(&format!("resumeToken/{target_key}"));
            match token {
                Some(token) => store
                    .put(&JsValue::from_str(token), Some(&key))
                    .await
                    .map(|_| ()),
                None => store.delete(key).await,
            }
            .map_err(StorageError::from_rexie)
        }
        .await;
        Self::finish(transaction, outcome).await
    }

    /// Applies a snapshot of a listen target in ONE transaction: the documents' base copies and
    /// the products to show (see [`Store::take_server_documents`]), products no longer in the
    /// target hidden, and the conflicts the documents raise. The pull checkpoint does not move:
    /// a snapshot is not an ordered page.
    pub async fn apply_listened_documents(
        &self,
        documents: &[Document],
        removed_paths: &[String],
        conflicts: &[ConflictEntry],
    ) -> Result<()> {
        let transaction = self.transaction(
            &[PRODUCTS, BASES, CONFLICTS, OUTBOX],
            TransactionMode::ReadWrite,
        )?;
        let outcome =
            Self::take_server_documents(&transaction, documents, removed_paths, conflicts).await;
        Self::finish(transaction, outcome).await
    }

    /// Applies one pulled page in ONE transaction: the documents' base copies, the products
    /// the page changes (see [`Store::take_server_documents`]), the conflicts it raises and the
    /// checkpoint. A crash can never skip or half-apply a page.
    pub async fn apply_pulled_page(&self, page: &PulledPage) -> Result<()> {
        let transaction = self.transaction(
            &[PRODUCTS, BASES, CONFLICTS, OUTBOX, META],
            TransactionMode::ReadWrite,
        )?;
        let outcome = async {
            // The page's `deletes` are its upserts marked `deleted`, which the shared step
            // hides already.
            Self::take_server_documents(&transaction, &page.upserts, &[], &page.conflicts).await?;
            let key = JsValue::from_str(&format!("checkpoint/{}", page.collection));
            transaction
                .store(META)
                .map_err(StorageError::from_rexie)?
                .put(&to_js(&page.checkpoint)?, Some(&key))
                .await
                .map_err(StorageError::from_rexie)?;
            Ok(())
        }
        .await;
        Self::finish(transaction, outcome).await
    }

    /// Takes documents just read from the server (after a unit reached it), in one transaction
    /// (see [`Store::take_server_documents`]). The pull checkpoint does not move.
    pub async fn apply_server_documents(&self, documents: &[Document]) -> Result<()> {
        let transaction = self.transaction(
            &[PRODUCTS, BASES, CONFLICTS, OUTBOX],
            TransactionMode::ReadWrite,
        )?;
        let outcome = Self::take_server_documents(&transaction, documents, &[], &[]).await;
        Self::finish(transaction, outcome).await
    }

    /// The one way documents from the server enter the store, inside the caller's transaction
    /// (which must cover products, bases, conflicts and outbox): every document's base copy;
    /// each product shown as it will be once this device's pending units land (the server's
    /// version with them laid over it, see [`rebased`]), or hidden when the server marks it
    /// `deleted` or it is in `hidden_paths`; and `conflicts` added to the inbox. A document this
    /// version cannot read is kept only as a base copy rather than blocking every later change
    /// behind it.
    async fn take_server_documents(
        transaction: &rexie::Transaction,
        documents: &[Document],
        hidden_paths: &[String],
        conflicts: &[ConflictEntry],
    ) -> Result<()> {
        let store = |name: &str| transaction.store(name).map_err(StorageError::from_rexie);
        let pending = pending_writes_by_path(&store(OUTBOX)?).await?;
        let bases = store(BASES)?;
        let products = store(PRODUCTS)?;
        for document in documents {
            let Some(base) = BaseCopy::of_document(document) else {
                continue;
            };
            bases
                .put(&to_js(&base)?, None)
                .await
                .map_err(StorageError::from_rexie)?;
            let Some(id) = product_id_of_path(&base.path) else {
                continue;
            };
            if Product::is_deleted(document) {
                products
                    .delete(JsValue::from_str(id))
                    .await
                    .map_err(StorageError::from_rexie)?;
                continue;
            }
            match Product::from_document(&rebased(document, pending.get(&base.path))) {
                Ok(product) => products
                    .put(&to_js(&product)?, None)
                    .await
                    .map(|_| ())
                    .map_err(StorageError::from_rexie)?,
                Err(invalid) => web_sys::console::warn_1(&invalid.to_string().into()),
            }
        }
        for path in hidden_paths {
            if let Some(id) = product_id_of_path(path) {
                products
                    .delete(JsValue::from_str(id))
                    .await
                    .map_err(StorageError::from_rexie)?;
            }
        }
        let inbox = store(CONFLICTS)?;
        for entry in conflicts {
            inbox
                .put(&to_js(entry)?, None)
                .await
                .map_err(StorageError::from_rexie)?;
        }
        Ok(())
    }

    /// The unit waiting in the outbox under this id, if any.
    pub async fn pending_unit(&self, unit_id: &str) -> Result<Option<Unit>> {
        let transaction = self.transaction(&[OUTBOX], TransactionMode::ReadOnly)?;
        let store = transaction
            .store(OUTBOX)
            .map_err(StorageError::from_rexie)?;
        match store
            .get(JsValue::from_str(unit_id))
            .await
            .map_err(StorageError::from_rexie)?
        {
            Some(value) if !value.is_undefined() => Ok(Some(from_js::<OutboxRecord>(value)?.unit)),
            _ => Ok(None),
        }
    }

    /// Replaces a pending unit with a new version of it (merged by the engine), keeping its
    /// place in the outbox.
    pub async fn rewrite_unit(&self, unit: &Unit) -> Result<()> {
        let transaction = self.transaction(&[OUTBOX], TransactionMode::ReadWrite)?;
        let outcome = async {
            let store = transaction
                .store(OUTBOX)
                .map_err(StorageError::from_rexie)?;
            let record = OutboxRecord {
                id: unit.id.clone(),
                unit: unit.clone(),
                state: OutboxRecordState::Pending,
                reason: None,
            };
            store
                .put(&to_js(&record)?, None)
                .await
                .map_err(StorageError::from_rexie)?;
            Ok(())
        }
        .await;
        Self::finish(transaction, outcome).await
    }

    /// Drops a unit a conflict rejected and shows its products as the server has them (their
    /// base copies), in one transaction. A product the server never had disappears.
    pub async fn reject_unit(&self, unit_id: &str) -> Result<()> {
        let transaction =
            self.transaction(&[OUTBOX, BASES, PRODUCTS], TransactionMode::ReadWrite)?;
        let outcome = async {
            let outbox = transaction
                .store(OUTBOX)
                .map_err(StorageError::from_rexie)?;
            let key = JsValue::from_str(unit_id);
            let Some(value) = outbox
                .get(key.clone())
                .await
                .map_err(StorageError::from_rexie)?
            else {
                return Ok(());
            };
            let record: OutboxRecord = from_js(value)?;
            let bases = transaction.store(BASES).map_err(StorageError::from_rexie)?;
            let products = transaction
                .store(PRODUCTS)
                .map_err(StorageError::from_rexie)?;
            for write in &record.unit.writes {
                let Some(product_id) = product_id_of_path(&write.path) else {
                    continue;
                };
                let base = bases
                    .get(JsValue::from_str(&write.path))
                    .await
                    .map_err(StorageError::from_rexie)?
                    .filter(|value| !value.is_undefined())
                    .map(from_js::<BaseCopy>)
                    .transpose()?;
                let restored =
                    base.and_then(|base| Product::from_document(&base.to_document()).ok());
                match restored {
                    Some(product) => {
                        products
                            .put(&to_js(&product)?, None)
                            .await
                            .map_err(StorageError::from_rexie)?;
                    }
                    None => products
                        .delete(JsValue::from_str(product_id))
                        .await
                        .map_err(StorageError::from_rexie)?,
                }
            }
            outbox.delete(key).await.map_err(StorageError::from_rexie)
        }
        .await;
        Self::finish(transaction, outcome).await
    }
}

/// The writes of every unit still in the outbox, by document path, oldest first.
async fn pending_writes_by_path(
    outbox: &rexie::Store,
) -> Result<BTreeMap<String, Vec<DocumentWrite>>> {
    let mut by_path: BTreeMap<String, Vec<DocumentWrite>> = BTreeMap::new();
    // Keys are UUID v7 unit ids, so the store's order is creation order.
    for value in outbox
        .get_all(None, None)
        .await
        .map_err(StorageError::from_rexie)?
    {
        let record: OutboxRecord = from_js(value)?;
        if record.state == OutboxRecordState::Dead {
            continue;
        }
        for write in record.unit.writes {
            by_path.entry(write.path.clone()).or_default().push(write);
        }
    }
    Ok(by_path)
}

/// The server's document with this device's pending writes laid over it, in order: what the
/// document will be once they reach the server, and so what the shop should see meanwhile.
/// Masked fields are set or removed, unmasked writes replace, counters add up.
pub fn rebased(server: &Document, pending: Option<&Vec<DocumentWrite>>) -> Document {
    let mut document = server.clone();
    for write in pending.into_iter().flatten() {
        let fields = &mut document.fields;
        match &write.mask {
            None => *fields = write.fields.clone(),
            Some(mask) => {
                for path in mask {
                    match write.fields.get(path) {
                        Some(value) => fields.insert(path.clone(), value.clone()),
                        None => fields.remove(path),
                    };
                }
            }
        }
        for (field, delta) in &write.increments {
            let current = fields.get(field).and_then(Value::as_integer).unwrap_or(0);
            fields.insert(
                field.clone(),
                Value::Integer(current.saturating_add(*delta)),
            );
        }
    }
    document
}

/// The product id in `shops/{shop}/products/{id}`, if the path is a product's.
fn product_id_of_path(path: &str) -> Option<&str> {
    let mut segments = path.split('/');
    match (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) {
        (Some("shops"), Some(_), Some("products"), Some(id), None) => Some(id),
        _ => None,
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
