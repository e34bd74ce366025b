//! The local store on the real IndexedDB in headless Chromium.
#![cfg(target_arch = "wasm32")]

use std::collections::BTreeMap;

use counterbook::ids::new_id;
use counterbook::model::{add_product_unit, Product};
use counterbook::storage::{StorageError, Store};
use counterbook_firestore_wire::{Timestamp, Value};
use counterbook_sync::{Checkpoint, DocumentWrite, Unit};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

async fn fresh_store() -> (Store, String) {
    let name = format!("test-{}", new_id());
    (Store::open(&name).await.unwrap(), name)
}

fn product(name: &str, price_minor: i64) -> Product {
    Product {
        id: new_id(),
        name: name.into(),
        price_minor,
        currency: "INR".into(),
        server_updated_at_millis: None,
    }
}

#[wasm_bindgen_test]
async fn a_product_and_its_outbox_unit_are_saved_together_and_survive_reopening() {
    let (store, name) = fresh_store().await;
    let chai = product("Chai 250g", 12_000);
    let unit = add_product_unit(new_id(), &chai, "s1", 0);
    store.add_product(&chai, &unit).await.unwrap();

    drop(store);
    let store = Store::open(&name).await.unwrap();
    assert_eq!(store.products().await.unwrap(), vec![chai]);
    assert_eq!(store.outbox().await.unwrap().pending, vec![unit]);
}

#[wasm_bindgen_test]
async fn a_unit_that_cannot_be_saved_leaves_no_product_behind() {
    let (store, _) = fresh_store().await;
    let first = product("Sugar 1kg", 4_500);
    let unit = add_product_unit(new_id(), &first, "s1", 0);
    store.add_product(&first, &unit).await.unwrap();

    // Same unit id again: the outbox write fails inside the transaction, after the product
    // write succeeded; the whole unit must disappear.
    let second = product("Salt 1kg", 2_800);
    let clashing = Unit {
        id: unit.id.clone(),
        ..add_product_unit(new_id(), &second, "s1", 0)
    };
    let error = store.add_product(&second, &clashing).await.unwrap_err();
    assert!(matches!(error, StorageError::Transaction(_)), "{error:?}");

    assert_eq!(store.products().await.unwrap(), vec![first]);
    assert_eq!(store.outbox().await.unwrap().pending.len(), 1);
}

#[wasm_bindgen_test]
async fn outbox_units_move_between_pending_dead_and_done() {
    let (store, name) = fresh_store().await;
    let units: Vec<Unit> = ["a", "b", "c"]
        .iter()
        .map(|n| {
            let p = product(n, 100);
            add_product_unit(new_id(), &p, "s1", 0)
        })
        .collect();
    for (unit, n) in units.iter().zip(["a", "b", "c"]) {
        store.add_product(&product(n, 100), unit).await.unwrap();
    }
    store
        .set_dead_letter(&units[1].id, Some("InvalidArgument: bad price"))
        .await
        .unwrap();
    store.mark_unit_done(&units[0].id).await.unwrap();

    let store = {
        drop(store);
        Store::open(&name).await.unwrap()
    };
    let outbox = store.outbox().await.unwrap();
    assert_eq!(outbox.pending, vec![units[2].clone()]);
    assert_eq!(
        outbox.dead_letters,
        vec![(units[1].clone(), "InvalidArgument: bad price".to_string())]
    );

    store.set_dead_letter(&units[1].id, None).await.unwrap();
    assert_eq!(store.outbox().await.unwrap().pending.len(), 2);
    store.discard_unit(&units[1].id).await.unwrap();
    assert_eq!(
        store.outbox().await.unwrap().pending,
        vec![units[2].clone()]
    );
}

#[wasm_bindgen_test]
async fn a_pulled_page_and_its_checkpoint_are_applied_together() {
    let (store, _) = fresh_store().await;
    assert_eq!(store.checkpoint("products").await.unwrap(), None);
    let local = product("Local soap", 3_000);
    store
        .add_product(&local, &add_product_unit(new_id(), &local, "s1", 0))
        .await
        .unwrap();

    let mut pulled = product("Pulled rice", 9_900);
    pulled.server_updated_at_millis = Some(1_000);
    let checkpoint = Checkpoint {
        updated_at: Timestamp::from_unix_millis(1_000),
        name: format!(
            "projects/p/databases/(default)/documents/shops/s1/products/{}",
            pulled.id
        ),
    };
    store
        .apply_pulled_products(
            &[pulled.clone()],
            std::slice::from_ref(&local.id),
            &checkpoint,
        )
        .await
        .unwrap();
    assert_eq!(store.products().await.unwrap(), vec![pulled]);
    assert_eq!(
        store.checkpoint("products").await.unwrap(),
        Some(checkpoint)
    );
}

#[wasm_bindgen_test]
async fn the_device_id_is_made_once() {
    let (store, name) = fresh_store().await;
    let id = store.device_id().await.unwrap();
    assert!(counterbook::ids::is_valid_id(&id));
    drop(store);
    assert_eq!(
        Store::open(&name).await.unwrap().device_id().await.unwrap(),
        id
    );
}

#[wasm_bindgen_test]
async fn units_keep_every_value_type_through_indexeddb() {
    let (store, _) = fresh_store().await;
    let p = product("Mixed", 1);
    let mut unit = add_product_unit(new_id(), &p, "s1", 0);
    unit.writes.push(DocumentWrite {
        path: "shops/s1/customers/c1".into(),
        fields: BTreeMap::from([
            ("big".to_string(), Value::Integer(i64::MAX)),
            ("ratio".to_string(), Value::Double(0.1)),
            (
                "nested".to_string(),
                Value::Map(BTreeMap::from([("ok".to_string(), Value::Boolean(true))])),
            ),
            (
                "when".to_string(),
                Value::Timestamp(Timestamp::from_unix_millis(5)),
            ),
        ]),
        mask: Some(vec!["big".into()]),
    });
    store.add_product(&p, &unit).await.unwrap();
    assert_eq!(store.outbox().await.unwrap().pending, vec![unit]);
}
