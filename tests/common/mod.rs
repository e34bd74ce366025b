//! What the browser tests of the store share: databases as an older release of the app left
//! them (a pending unit and a dead letter, records written straight into a store) and the
//! check that an upgrade kept those units.

use counterbook::ids::new_id;
use counterbook::model::{add_product_unit, Product};
use counterbook::storage::{declare_schema, Store};
use counterbook_firestore_wire::Code;
use counterbook_sync::{DeadLetterReason, Unit};
use wasm_bindgen::JsValue;

/// Why the server refused the dead letter [`old_database_with_units`] leaves.
pub fn refusal() -> DeadLetterReason {
    DeadLetterReason::Refused {
        code: Code::PermissionDenied,
        message: "the server refused it".into(),
    }
}

/// The database `name` at the older schema `version`, with `pending` added by a unit still
/// pending and `refused` by a unit the server refused (a dead letter). Returns the store, still
/// open, and the two units.
pub async fn old_database_with_units(
    name: &str,
    version: u32,
    pending: &Product,
    refused: &Product,
) -> (Store, Unit, Unit) {
    let old = Store::open_with_old_schema(name, version).await.unwrap();
    let first = add_product_unit(new_id(), pending, "s1", 0);
    old.add_product(pending, &[], &first).await.unwrap();
    let second = add_product_unit(new_id(), refused, "s1", 0);
    old.add_product(refused, &[], &second).await.unwrap();
    old.set_dead_letter(&second.id, Some(&refusal()))
        .await
        .unwrap();
    (old, first, second)
}

/// Puts `record` straight into `store_name` of the database `name` at schema `version`, as a
/// release of that version wrote it (no data migration, no index-only fields).
pub async fn put_raw_record(name: &str, version: u32, store_name: &str, record: &JsValue) {
    let raw = declare_schema(name, version).build().await.unwrap();
    let transaction = raw
        .transaction(&[store_name], rexie::TransactionMode::ReadWrite)
        .unwrap();
    transaction
        .store(store_name)
        .unwrap()
        .put(record, None)
        .await
        .unwrap();
    transaction.done().await.unwrap();
    raw.close();
}

/// The upgraded `store` kept the pending unit `first` and the dead letter `second`.
pub async fn assert_units_kept(store: &Store, first: Unit, second: Unit) {
    let outbox = store.outbox().await.unwrap();
    assert_eq!(outbox.pending, vec![first]);
    assert_eq!(outbox.dead_letters, vec![(second, refusal())]);
}
