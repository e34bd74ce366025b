//! The local store: IndexedDB through rexie. The only module that touches IndexedDB; it speaks
//! domain types ([`Product`], [`Unit`], [`Checkpoint`]), never `JsValue`, to the rest of the app.
//!
//! Every user action is ONE IndexedDB transaction across the entity stores and the outbox, so
//! the UI never shows a state that is not durable and a crash can never leave an entity without
//! its outbox entry or the reverse.
//!
//! Schema version 1:
//! - `products`: key path `id`, index `name`;
//! - `outbox`: key path `id`; `{id, unit, state: "pending" | "dead", reason}`;
//! - `meta`: out-of-line string keys: `deviceId`, `checkpoint/{collection}`.

use counterbook_sync::{Checkpoint, Unit};
use rexie::{Index, ObjectStore, Rexie, TransactionMode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;

use crate::model::Product;

pub const SCHEMA_VERSION: u32 = 1;
const PRODUCTS: &str = "products";
const OUTBOX: &str = "outbox";
const META: &str = "meta";

/// What went wrong in the local store. Every failing write leaves nothing behind.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error("Could not open the local database: {0}")]
    Open(String),
    #[error("This device's storage is full, so nothing was saved. Free some space and try again.")]
    QuotaExceeded,
    #[error("Saving to the local database failed, so nothing was saved: {0}")]
    Transaction(String),
    #[error("A record in the local database could not be read: {0}")]
    Corrupt(String),
}

impl StorageError {
    fn from_rexie(error: rexie::Error) -> StorageError {
        let detail = match &error {
            rexie::Error::IdbError(inner) => format!("{inner} ({inner:?})"),
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

/// The open local database.
pub struct Store {
    db: Rexie,
}

impl Store {
    /// Opens (creating or upgrading) the database called `name`.
    pub async fn open(name: &str) -> Result<Store> {
        let db = Rexie::builder(name)
            .version(SCHEMA_VERSION)
            .add_object_store(
                ObjectStore::new(PRODUCTS)
                    .key_path("id")
                    .add_index(Index::new("name", "name")),
            )
            .add_object_store(ObjectStore::new(OUTBOX).key_path("id"))
            .add_object_store(ObjectStore::new(META))
            .build()
            .await
            .map_err(|e| StorageError::Open(StorageError::from_rexie(e).to_string()))?;
        Ok(Store { db })
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
            Err(StorageError::Transaction(
                "the transaction was aborted".into(),
            ))
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
    pub async fn add_product(&self, product: &Product, unit: &Unit) -> Result<()> {
        let transaction = self.transaction(&[PRODUCTS, OUTBOX], TransactionMode::ReadWrite)?;
        let outcome = async {
            let products = transaction
                .store(PRODUCTS)
                .map_err(StorageError::from_rexie)?;
            let outbox = transaction
                .store(OUTBOX)
                .map_err(StorageError::from_rexie)?;
            products
                .add(&to_js(product)?, None)
                .await
                .map_err(StorageError::from_rexie)?;
            let record = OutboxRecord {
                id: unit.id.clone(),
                unit: unit.clone(),
                state: OutboxRecordState::Pending,
                reason: None,
            };
            // `add`, not `put`: a unit id is never reused, and a clash must fail the whole unit.
            outbox
                .add(&to_js(&record)?, None)
                .await
                .map_err(StorageError::from_rexie)?;
            Ok(())
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
        let transaction = self.transaction(&[OUTBOX], TransactionMode::ReadWrite)?;
        let outcome = async {
            let store = transaction
                .store(OUTBOX)
                .map_err(StorageError::from_rexie)?;
            store
                .delete(JsValue::from_str(unit_id))
                .await
                .map_err(StorageError::from_rexie)
        }
        .await;
        Self::finish(transaction, outcome).await
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

    /// Applies one pulled page of products and its checkpoint in one transaction: a crash
    /// between the two can never skip or half-apply a page.
    pub async fn apply_pulled_products(
        &self,
        upserts: &[Product],
        deleted_ids: &[String],
        checkpoint: &Checkpoint,
    ) -> Result<()> {
        let transaction = self.transaction(&[PRODUCTS, META], TransactionMode::ReadWrite)?;
        let outcome = async {
            let products = transaction
                .store(PRODUCTS)
                .map_err(StorageError::from_rexie)?;
            let meta = transaction.store(META).map_err(StorageError::from_rexie)?;
            for product in upserts {
                products
                    .put(&to_js(product)?, None)
                    .await
                    .map_err(StorageError::from_rexie)?;
            }
            for id in deleted_ids {
                products
                    .delete(JsValue::from_str(id))
                    .await
                    .map_err(StorageError::from_rexie)?;
            }
            let key = JsValue::from_str(&format!("checkpoint/{PRODUCTS}"));
            meta.put(&to_js(checkpoint)?, Some(&key))
                .await
                .map_err(StorageError::from_rexie)?;
            Ok(())
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
