//! Bringing the database's stores and indexes up to a schema version with our own
//! `upgradeneeded` handler, before rexie opens it.
//!
//! rexie opens through the idb crate, whose `upgradeneeded` handler `.expect`s every step (the
//! event's database, each store created or deleted): a failure there would panic inside the
//! wasm, from a browser event, instead of reaching the app as an error. So [`upgrade_to`] opens
//! the database at the version first and creates, in the browser's upgrade transaction, every
//! store and index of [`stores_of`] that is missing, keeping every record: it never deletes a
//! store, and deletes an index only where the schema says the version dropped it
//! ([`dropped_indexes`]; records are not touched). Any step that fails aborts the upgrade,
//! which keeps the database as it was, and comes back as [`StorageError::Open`]. rexie then
//! finds nothing to upgrade.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbIndexParameters, IdbObjectStoreParameters, IdbOpenDbRequest};

use super::schema::{dropped_indexes, stores_of, StoreSpec};
use super::{Result, StorageError};

/// What a DOM exception or any other thrown value says.
fn describe(error: &JsValue) -> String {
    error
        .dyn_ref::<web_sys::DomException>()
        .map(|exception| format!("{}: {}", exception.name(), exception.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| format!("{error:?}"))
}

/// Opens the database `name` at `version`, creating the missing stores and indexes of that
/// version in its upgrade, then closes it again.
pub(super) async fn upgrade_to(name: &str, version: u32) -> Result<()> {
    let open_failed = |error: JsValue| StorageError::Open(describe(&error));
    // The global scope's, not the window's: the service worker opens the store too (Background
    // Sync, `sync::background`).
    let factory = crate::global_scope::indexed_db()
        .ok_or_else(|| StorageError::Open("this browser has no IndexedDB".into()))?;
    let request = factory.open_with_u32(name, version).map_err(open_failed)?;
    let upgrade_failure: Rc<RefCell<Option<String>>> = Rc::default();
    let on_upgrade = {
        let request = request.clone();
        let upgrade_failure = Rc::clone(&upgrade_failure);
        Closure::<dyn FnMut(web_sys::Event)>::new(move |_event: web_sys::Event| {
            if let Err(error) = create_missing(&request, version) {
                *upgrade_failure.borrow_mut() = Some(describe(&error));
                // Aborting keeps the database as it was; the open request then fails.
                if let Some(transaction) = request.transaction() {
                    let _ = transaction.abort();
                }
            }
        })
    };
    request.set_onupgradeneeded(Some(on_upgrade.as_ref().unchecked_ref()));
    let opened = js_sys::Promise::new(&mut |resolve, reject| {
        request.set_onsuccess(Some(&resolve));
        request.set_onerror(Some(&reject));
    });
    let outcome = JsFuture::from(opened).await;
    request.set_onupgradeneeded(None);
    request.set_onsuccess(None);
    request.set_onerror(None);
    drop(on_upgrade);
    match outcome {
        Ok(_) => {
            if let Ok(database) = request
                .result()
                .and_then(|result| result.dyn_into::<IdbDatabase>())
            {
                database.close();
            }
            Ok(())
        }
        Err(_) => {
            let reason = upgrade_failure.borrow_mut().take().or_else(|| {
                request
                    .error()
                    .ok()
                    .flatten()
                    .map(|error| format!("{}: {}", error.name(), error.message()))
            });
            Err(StorageError::Open(
                reason.unwrap_or_else(|| "the browser refused to open it".into()),
            ))
        }
    }
}

/// In the upgrade transaction of `request`: every store and index of `version` that is
/// missing, and no index the version dropped.
fn create_missing(request: &IdbOpenDbRequest, version: u32) -> std::result::Result<(), JsValue> {
    let database: IdbDatabase = request.result()?.dyn_into()?;
    let transaction = request
        .transaction()
        .ok_or_else(|| JsValue::from_str("the upgrade has no transaction"))?;
    for (store_name, index_name) in dropped_indexes(version) {
        if database.object_store_names().contains(store_name) {
            let store = transaction.object_store(store_name)?;
            if store.index_names().contains(index_name) {
                store.delete_index(index_name)?;
            }
        }
    }
    for StoreSpec {
        name,
        key_path,
        indexes,
    } in stores_of(version)
    {
        let store = if database.object_store_names().contains(name) {
            transaction.object_store(name)?
        } else {
            let parameters = IdbObjectStoreParameters::new();
            if let Some(key_path) = key_path {
                parameters.set_key_path(&JsValue::from_str(key_path));
            }
            database.create_object_store_with_optional_parameters(name, &parameters)?
        };
        let existing = store.index_names();
        for index in indexes
            .iter()
            .filter(|index| !existing.contains(index.name))
        {
            let parameters = IdbIndexParameters::new();
            parameters.set_unique(index.unique);
            parameters.set_multi_entry(index.multi_entry);
            match index.key_path {
                [field] => store.create_index_with_str_and_optional_parameters(
                    index.name,
                    field,
                    &parameters,
                )?,
                fields => {
                    let key_path: js_sys::Array = fields
                        .iter()
                        .map(|field| JsValue::from_str(field))
                        .collect();
                    store.create_index_with_str_sequence_and_optional_parameters(
                        index.name,
                        &key_path,
                        &parameters,
                    )?
                }
            };
        }
    }
    Ok(())
}
