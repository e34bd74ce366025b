//! The people signed in on this tablet and who is at the counter, kept in `meta` (out-of-line
//! keys `person/{userId}` and `activePerson`, so no new object store and no schema version),
//! and clearing the whole tablet.
//!
//! Tokens live here, in IndexedDB, not in `localStorage`: README.md says why.

use rexie::{KeyRange, TransactionMode};
use wasm_bindgen::JsValue;

use super::schema::META;
use super::{from_js, key_range, to_js, Result, StorageError, Store};
use crate::people::Person;
use crate::settings::Settings;

const PERSON_PREFIX: &str = "person/";
const ACTIVE_PERSON_KEY: &str = "activePerson";
/// The backend at this endpoint answered that it needs no sign-in (a `--dev` server or the
/// emulator): an offline start goes straight to the shop.
const OPEN_BACKEND_KEY: &str = "openBackend";
/// The device settings the page started with, for the service worker's Background Sync.
const SYNC_SETTINGS_KEY: &str = "syncSettings";

impl Store {
    /// Everyone signed in on this tablet, by user id.
    pub async fn people(&self) -> Result<Vec<Person>> {
        let transaction = self.transaction(&[META], TransactionMode::ReadOnly)?;
        let store = transaction.store(META).map_err(StorageError::from_rexie)?;
        // Every key starting with the prefix: from it up to the prefix with its last
        // character's successor.
        let range = key_range(KeyRange::bound(
            &JsValue::from_str(PERSON_PREFIX),
            &JsValue::from_str("person0"),
            Some(false),
            Some(true),
        ))?;
        let values = store
            .get_all(Some(range), None)
            .await
            .map_err(StorageError::from_rexie)?;
        values.into_iter().map(from_js).collect()
    }

    /// Saves a person (their tokens, PIN, sign-in state).
    pub async fn save_person(&self, person: &Person) -> Result<()> {
        let key = JsValue::from_str(&format!("{PERSON_PREFIX}{}", person.user_id));
        let value = to_js(person)?;
        self.put_meta(&key, Some(&value)).await
    }

    /// Forgets a person (signed out); if they were at the counter, nobody is.
    pub async fn remove_person(&self, user_id: &str) -> Result<()> {
        let transaction = self.transaction(&[META], TransactionMode::ReadWrite)?;
        let outcome = async {
            let store = transaction.store(META).map_err(StorageError::from_rexie)?;
            store
                .delete(JsValue::from_str(&format!("{PERSON_PREFIX}{user_id}")))
                .await
                .map_err(StorageError::from_rexie)?;
            let active = store
                .get(JsValue::from_str(ACTIVE_PERSON_KEY))
                .await
                .map_err(StorageError::from_rexie)?
                .and_then(|value| value.as_string());
            if active.as_deref() == Some(user_id) {
                store
                    .delete(JsValue::from_str(ACTIVE_PERSON_KEY))
                    .await
                    .map_err(StorageError::from_rexie)?;
            }
            Ok(())
        }
        .await;
        Self::finish(transaction, outcome).await
    }

    /// Who is at the counter (a user id), if anyone.
    pub async fn active_person_id(&self) -> Result<Option<String>> {
        Ok(self
            .get_meta(ACTIVE_PERSON_KEY)
            .await?
            .and_then(|value| value.as_string()))
    }

    pub async fn set_active_person(&self, user_id: Option<&str>) -> Result<()> {
        let value = user_id.map(JsValue::from_str);
        self.put_meta(&JsValue::from_str(ACTIVE_PERSON_KEY), value.as_ref())
            .await
    }

    /// The endpoint last found to need no sign-in, if any.
    pub async fn open_backend(&self) -> Result<Option<String>> {
        Ok(self
            .get_meta(OPEN_BACKEND_KEY)
            .await?
            .and_then(|value| value.as_string()))
    }

    pub async fn set_open_backend(&self, endpoint: Option<&str>) -> Result<()> {
        let value = endpoint.map(JsValue::from_str);
        self.put_meta(&JsValue::from_str(OPEN_BACKEND_KEY), value.as_ref())
            .await
    }

    /// The device settings the app last started with, if it ever did: what the service worker
    /// syncs with when it drains the outbox with no page open.
    pub async fn sync_settings(&self) -> Result<Option<Settings>> {
        self.get_meta(SYNC_SETTINGS_KEY)
            .await?
            .map(from_js)
            .transpose()
    }

    pub async fn save_sync_settings(&self, settings: &Settings) -> Result<()> {
        self.put_meta(
            &JsValue::from_str(SYNC_SETTINGS_KEY),
            Some(&to_js(settings)?),
        )
        .await
    }

    /// Empties every store of this tablet's database in one transaction (records, outbox,
    /// people, the device id): "Sign out and clear this tablet".
    pub async fn clear_everything(&self) -> Result<()> {
        let names = self.db.store_names();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let transaction = self.transaction(&names, TransactionMode::ReadWrite)?;
        let outcome = async {
            for name in &names {
                transaction
                    .store(name)
                    .map_err(StorageError::from_rexie)?
                    .clear()
                    .await
                    .map_err(StorageError::from_rexie)?;
            }
            Ok(())
        }
        .await;
        Self::finish(transaction, outcome).await
    }

    async fn get_meta(&self, key: &str) -> Result<Option<JsValue>> {
        let transaction = self.transaction(&[META], TransactionMode::ReadOnly)?;
        let store = transaction.store(META).map_err(StorageError::from_rexie)?;
        Ok(store
            .get(JsValue::from_str(key))
            .await
            .map_err(StorageError::from_rexie)?
            .filter(|value| !value.is_undefined()))
    }

    /// Puts (or with `None` deletes) one `meta` value.
    async fn put_meta(&self, key: &JsValue, value: Option<&JsValue>) -> Result<()> {
        let transaction = self.transaction(&[META], TransactionMode::ReadWrite)?;
        let outcome = async {
            let store = transaction.store(META).map_err(StorageError::from_rexie)?;
            match value {
                Some(value) => store.put(value, Some(key)).await.map(|_| ()),
                None => store.delete(key.clone()).await,
            }
            .map_err(StorageError::from_rexie)
        }
        .await;
        Self::finish(transaction, outcome).await
    }
}
