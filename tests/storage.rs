//! The local store on the real IndexedDB in headless Chromium.
#![cfg(target_arch = "wasm32")]

use std::collections::BTreeMap;

use counterbook::ids::new_id;
use counterbook::model::{add_product_unit, Product};
use counterbook::storage::{StorageError, Store};
use counterbook_firestore_wire::Document;
use counterbook_firestore_wire::{Code, Timestamp, Value};
use counterbook_shop::{
    bill_totals, settle, AuditEntry, Bill, BillLine, BillStatus, Customer, LineDiscount,
    QuantityUnit, Record, StockMove, StockMoveKind, TaxMode, Tender,
};
use counterbook_sync::{
    Checkpoint, ConflictEntry, ConflictKind, DeadLetterReason, DocumentWrite, PulledPage, Unit,
    UnitLabel,
};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

mod common;

wasm_bindgen_test_configure!(run_in_browser);

async fn fresh_store() -> (Store, String) {
    let name = format!("test-{}", new_id());
    (Store::open(&name).await.unwrap(), name)
}

fn product(name: &str, price_minor: i64) -> Product {
    Product::new(new_id(), name, price_minor, "INR")
}

/// `product` as the server sends it in shop `s1`, updated at `micros`, with `changed` fields
/// set over its own (`stock`, `deleted`, a new `price`).
fn server_document(product: &Product, micros: i64, changed: &[(&str, Value)]) -> Document {
    let mut fields = product.to_fields();
    fields.insert(
        "updatedAt".into(),
        Value::Timestamp(Timestamp::from_unix_micros(micros)),
    );
    for (field, value) in changed {
        fields.insert((*field).into(), value.clone());
    }
    Document {
        name: format!(
            "projects/p/databases/(default)/documents/shops/s1/products/{}",
            product.id
        ),
        fields,
        create_time: None,
        update_time: Some(Timestamp::from_unix_micros(micros)),
    }
}

#[wasm_bindgen_test]
async fn a_product_and_its_outbox_unit_are_saved_together_and_survive_reopening() {
    let (store, name) = fresh_store().await;
    let chai = product("Chai 250g", 12_000);
    let unit = add_product_unit(new_id(), &chai, "s1", 0);
    store.add_product(&chai, &[], &unit).await.unwrap();

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
    store.add_product(&first, &[], &unit).await.unwrap();

    // Same unit id again: the outbox write fails inside the transaction, after the product
    // write succeeded; the whole unit must disappear.
    let second = product("Salt 1kg", 2_800);
    let clashing = Unit {
        id: unit.id.clone(),
        ..add_product_unit(new_id(), &second, "s1", 0)
    };
    let error = store
        .add_product(&second, &[], &clashing)
        .await
        .unwrap_err();
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
        store
            .add_product(&product(n, 100), &[], unit)
            .await
            .unwrap();
    }
    let refused = DeadLetterReason::Refused {
        code: Code::InvalidArgument,
        message: "bad price".into(),
    };
    store
        .set_dead_letter(&units[1].id, Some(&refused))
        .await
        .unwrap();
    store.mark_unit_done(&units[0].id).await.unwrap();

    let store = {
        drop(store);
        Store::open(&name).await.unwrap()
    };
    let outbox = store.outbox().await.unwrap();
    assert_eq!(outbox.pending, vec![units[2].clone()]);
    assert_eq!(outbox.dead_letters, vec![(units[1].clone(), refused)]);

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
    // A product with a change still in the outbox keeps its local version.
    let local = product("Local soap", 3_000);
    store
        .add_product(&local, &[], &add_product_unit(new_id(), &local, "s1", 0))
        .await
        .unwrap();
    let mut stale_server_copy = local.clone();
    stale_server_copy.price_minor = 2_500;

    let mut pulled = product("Pulled rice", 9_900);
    pulled.server_updated_at_millis = Some(1_000);
    let mut gone = product("Discontinued", 100);
    gone.server_updated_at_millis = Some(1_000);
    store
        .add_product(&gone, &[], &add_product_unit(new_id(), &gone, "s1", 0))
        .await
        .unwrap();
    let gone_unit = store.outbox().await.unwrap().pending[1].id.clone();
    store.mark_unit_done(&gone_unit).await.unwrap();

    let document = |p: &Product, deleted: bool| {
        let mut fields = p.to_fields();
        fields.insert(
            "updatedAt".into(),
            Value::Timestamp(Timestamp::from_unix_millis(1_000)),
        );
        fields.insert("deleted".into(), Value::Boolean(deleted));
        Document {
            name: format!(
                "projects/p/databases/(default)/documents/shops/s1/products/{}",
                p.id
            ),
            fields,
            create_time: None,
            update_time: Some(Timestamp::from_unix_millis(1_000)),
        }
    };
    let page = PulledPage {
        collection: "products".into(),
        query_id: counterbook_sync::PullQueryId(1),
        upserts: vec![
            document(&pulled, false),
            document(&stale_server_copy, false),
            document(&gone, true),
        ],
        deletes: vec![format!("shops/s1/products/{}", gone.id)],
        conflicts: vec![],
        checkpoint: Checkpoint {
            updated_at: Timestamp::from_unix_millis(1_000),
            name: format!(
                "projects/p/databases/(default)/documents/shops/s1/products/{}",
                gone.id
            ),
            settled_through: None,
        },
    };
    store.apply_pulled_page(&page).await.unwrap();

    let mut products = store.products().await.unwrap();
    products.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(products, vec![local.clone(), pulled.clone()]);
    assert_eq!(
        store.checkpoint("products").await.unwrap(),
        Some(page.checkpoint.clone())
    );
    let base = store
        .base_copy(&format!("shops/s1/products/{}", local.id))
        .await
        .unwrap()
        .expect("the base copy moves on even when the product keeps its local version");
    assert_eq!(base.fields["price"], Value::Integer(2_500));
    assert_eq!(base.update_time_micros, 1_000_000);
}

#[wasm_bindgen_test]
async fn a_rejected_unit_shows_the_servers_version_again() {
    let (store, _) = fresh_store().await;
    let rice = product("Rice", 5_000);
    let created = add_product_unit(new_id(), &rice, "s1", 0);
    store.add_product(&rice, &[], &created).await.unwrap();
    store.mark_unit_done(&created.id).await.unwrap();
    let mut server = rice.to_fields();
    server.insert(
        "updatedAt".into(),
        Value::Timestamp(Timestamp::from_unix_millis(7)),
    );
    let page = PulledPage {
        collection: "products".into(),
        query_id: counterbook_sync::PullQueryId(1),
        upserts: vec![Document {
            name: format!(
                "projects/p/databases/(default)/documents/shops/s1/products/{}",
                rice.id
            ),
            fields: server,
            create_time: None,
            update_time: Some(Timestamp::from_unix_millis(7)),
        }],
        deletes: vec![],
        conflicts: vec![],
        checkpoint: Checkpoint {
            updated_at: Timestamp::from_unix_millis(7),
            name: "x".into(),
            settled_through: None,
        },
    };
    store.apply_pulled_page(&page).await.unwrap();

    // A local edit that the engine later rejects.
    let mut edited = rice.clone();
    edited.price_minor = 1;
    let edit = add_product_unit(new_id(), &edited, "s1", 0);
    store.add_product(&edited, &[], &edit).await.unwrap();
    let brand_new = product("Never synced", 10);
    let creation = add_product_unit(new_id(), &brand_new, "s1", 0);
    store.add_product(&brand_new, &[], &creation).await.unwrap();

    store.reject_unit(&edit.id).await.unwrap();
    store.reject_unit(&creation.id).await.unwrap();
    let products = store.products().await.unwrap();
    assert_eq!(products.len(), 1);
    assert_eq!(products[0].price_minor, 5_000);
    assert!(store.outbox().await.unwrap().pending.is_empty());
}

/// Regression test for the stale tablet of issue 8: a re-read after a unit landed brought an
/// older version of a product after a listen snapshot had stored a newer one, the older one
/// replaced it, and the listener never sent the newer one again.
#[wasm_bindgen_test]
async fn an_older_server_version_arriving_after_a_newer_one_changes_nothing() {
    let (store, _) = fresh_store().await;
    let sugar = product("Sugar 1kg", 1_000);
    let version = |stock: i64, price: i64, micros: i64| {
        server_document(
            &sugar,
            micros,
            &[
                ("stock", Value::Integer(stock)),
                ("price", Value::Integer(price)),
            ],
        )
    };
    let path = format!("shops/s1/products/{}", sugar.id);
    let shown = |products: Vec<Product>| {
        products
            .into_iter()
            .map(|p| (p.stock_on_hand, p.price_minor))
            .collect::<Vec<_>>()
    };
    // The snapshot with the newer version, then the re-read of the older one.
    store
        .apply_listened_documents(&[version(17, 7_600, 2_000)], &[], &[])
        .await
        .unwrap();
    store
        .apply_server_documents(&[version(18, 1_000, 1_000)])
        .await
        .unwrap();
    assert_eq!(shown(store.products().await.unwrap()), vec![(17, 7_600)]);
    let base = store.base_copy(&path).await.unwrap().unwrap();
    assert_eq!(base.update_time_micros, 2_000);
    // The same on a pulled page (the overlap window re-reads documents).
    let page = PulledPage {
        collection: "products".into(),
        query_id: counterbook_sync::PullQueryId(1),
        upserts: vec![version(18, 1_000, 1_000)],
        deletes: vec![],
        conflicts: vec![],
        checkpoint: Checkpoint {
            updated_at: Timestamp::from_unix_micros(1_000),
            name: version(18, 1_000, 1_000).name,
            settled_through: None,
        },
    };
    store.apply_pulled_page(&page).await.unwrap();
    assert_eq!(shown(store.products().await.unwrap()), vec![(17, 7_600)]);
    // A newer version still replaces it.
    store
        .apply_server_documents(&[version(16, 7_600, 3_000)])
        .await
        .unwrap();
    assert_eq!(shown(store.products().await.unwrap()), vec![(16, 7_600)]);
}

/// Regression test for the compact base copies: a base copy stored by an earlier version, its
/// fields as objects, must still be read (a pending edit merges against it).
#[wasm_bindgen_test]
async fn a_dead_letter_stored_before_labels_and_reasons_were_typed_reads_as_its_text() {
    let name = format!("test-old-dead-letter-{}", new_id());
    let record = js_sys::JSON::parse(
        r#"{"id": "u1", "state": "dead", "reason": "the server refused it (permission denied): no",
            "unit": {"id": "u1", "label": "Add product Old Tea", "writes": [], "createdAtMillis": 5}}"#,
    )
    .unwrap();
    common::put_raw_record(
        &name,
        counterbook::storage::SCHEMA_VERSION,
        "outbox",
        &record,
    )
    .await;
    let store = Store::open(&name).await.unwrap();
    let outbox = store.outbox().await.unwrap();
    let [(unit, reason)] = &outbox.dead_letters[..] else {
        panic!("{outbox:?}");
    };
    assert_eq!(unit.label, UnitLabel::text("Add product Old Tea"));
    assert_eq!(
        *reason,
        DeadLetterReason::Text {
            text: "the server refused it (permission denied): no".into()
        }
    );
    // Retried and refused again, it is kept typed.
    let typed = DeadLetterReason::Refused {
        code: Code::PermissionDenied,
        message: "no".into(),
    };
    store.set_dead_letter("u1", None).await.unwrap();
    store.set_dead_letter("u1", Some(&typed)).await.unwrap();
    assert_eq!(store.outbox().await.unwrap().dead_letters[0].1, typed);
}

#[wasm_bindgen_test]
async fn a_base_copy_stored_with_fields_as_objects_is_still_read() {
    let name = format!("test-old-base-{}", new_id());
    let record = js_sys::JSON::parse(
        r#"{"path": "shops/s1/products/old", "updateTimeMicros": 5,
            "fields": {"name": {"stringValue": "Old Tea"}, "price": {"integerValue": "1200"}}}"#,
    )
    .unwrap();
    common::put_raw_record(
        &name,
        counterbook::storage::SCHEMA_VERSION,
        "bases",
        &record,
    )
    .await;
    let store = Store::open(&name).await.unwrap();
    let base = store
        .base_copy("shops/s1/products/old")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(base.update_time_micros, 5);
    assert_eq!(base.fields["price"], Value::Integer(1_200));
    assert_eq!(base.fields["name"], Value::String("Old Tea".into()));
    // Written again, it takes today's form and reads back the same.
    let mut document = base.to_document();
    document.update_time = Some(Timestamp::from_unix_micros(6));
    store.apply_server_documents(&[document]).await.unwrap();
    let again = store
        .base_copy("shops/s1/products/old")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.update_time_micros, again.fields), (6, base.fields));
}

/// Regression test for the resume tokens left behind: the screen's target is stamped after the
/// pulls' settled time, so each one has a new key, and the tokens of older ones must go.
#[wasm_bindgen_test]
async fn resume_tokens_of_targets_no_longer_watched_are_forgotten() {
    let (store, _) = fresh_store().await;
    for key in ["devices", "products-after-1", "products-after-2"] {
        store
            .save_resume_token(key, Some(&format!("token of {key}")))
            .await
            .unwrap();
    }
    let checkpoint = Checkpoint {
        updated_at: Timestamp::from_unix_millis(1_000),
        name: "projects/p/databases/(default)/documents/shops/s1/products/a".into(),
        settled_through: None,
    };
    let page = PulledPage {
        collection: "products".into(),
        query_id: counterbook_sync::PullQueryId(1),
        upserts: vec![],
        deletes: vec![],
        conflicts: vec![],
        checkpoint: checkpoint.clone(),
    };
    store.apply_pulled_page(&page).await.unwrap();
    store
        .forget_resume_tokens_except(&["devices".to_owned(), "products-after-2".to_owned()])
        .await
        .unwrap();
    assert_eq!(
        store.resume_token("devices").await.unwrap().as_deref(),
        Some("token of devices")
    );
    assert_eq!(store.resume_token("products-after-1").await.unwrap(), None);
    assert_eq!(
        store
            .resume_token("products-after-2")
            .await
            .unwrap()
            .as_deref(),
        Some("token of products-after-2")
    );
    // Nothing else in `meta` goes with them.
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
        increments: BTreeMap::from([("visits".to_string(), 3)]),
        ..DocumentWrite::default()
    });
    store.add_product(&p, &[], &unit).await.unwrap();
    assert_eq!(store.outbox().await.unwrap().pending, vec![unit]);
}

fn audit(action: &str, path: &str) -> AuditEntry {
    AuditEntry {
        id: new_id(),
        at_millis: js_sys::Date::now() as i64,
        device_id: "device-A".into(),
        cashier: Some("asha".into()),
        approved_by: None,
        requested_by: None,
        action: action.into(),
        path: path.into(),
        before: None,
        after: None,
    }
}

/// A finalized sale as one unit: bill, stock moves, customer balance, audit and outbox.
fn sale(
    customer: &Customer,
    chai: &Product,
    day: &str,
    number: &str,
) -> (Vec<Record>, Vec<AuditEntry>, Unit) {
    let lines = vec![BillLine {
        product_id: chai.id.clone(),
        name: chai.name.clone(),
        unit: QuantityUnit::Piece,
        unit_price_minor: chai.price_minor,
        quantity: 2,
        discount: LineDiscount::None,
        tax_rate_basis_points: 0,
    }];
    let totals = bill_totals(&lines, TaxMode::Inclusive).unwrap();
    let settlement = settle(
        totals.total_minor,
        &[Tender::Credit {
            amount_minor: totals.total_minor,
        }],
        1,
        Some(customer),
    )
    .unwrap();
    let bill = Bill {
        id: new_id(),
        number: number.into(),
        status: BillStatus::Final,
        lines,
        totals,
        settlement,
        customer_id: Some(customer.id.clone()),
        payment_ids: vec![],
        device_id: "device-A".into(),
        device_name: None,
        cashier: Some("asha".into()),
        day: day.into(),
        created_at_millis: 0,
    };
    let stock_move = StockMove {
        id: new_id(),
        product_id: chai.id.clone(),
        kind: StockMoveKind::Sale,
        quantity: -2,
        bill_id: Some(bill.id.clone()),
        reason: None,
        device_id: "device-A".into(),
        at_millis: 0,
    };
    let mut owing = customer.clone();
    owing.credit_balance_minor += bill.totals.total_minor;
    let unit = Unit {
        id: new_id(),
        label: format!("Bill {number}").into(),
        writes: vec![],
        created_at_millis: 0,
        sender: None,
    };
    let audit = vec![audit(
        "bill.finalize",
        &format!("shops/s1/bills/{}", bill.id),
    )];
    (
        vec![
            Record::Bill(bill),
            Record::StockMove(stock_move),
            Record::Customer(owing),
        ],
        audit,
        unit,
    )
}

fn customer(name: &str, phone: &str) -> Customer {
    Customer {
        id: new_id(),
        name: name.into(),
        phone: Some(phone.into()),
        phone_digits: None,
        credit_balance_minor: 0,
        credit_limit_minor: Some(100_000),
        deleted: false,
    }
}

#[wasm_bindgen_test]
async fn a_sale_writes_bill_stock_move_balance_audit_and_outbox_in_one_unit() {
    let (store, _) = fresh_store().await;
    let chai = product("Chai", 1_000);
    let ravi = customer("Ravi", "+91 98765-43210");
    let (records, entries, unit) = sale(&ravi, &chai, "2026-11-22", "T2-000001");
    store.commit_unit(&records, &entries, &unit).await.unwrap();

    let bills = store.bills_on_day("2026-11-22").await.unwrap();
    assert_eq!(bills.len(), 1);
    assert_eq!(bills[0].number, "T2-000001");
    assert!(store.bills_on_day("2026-11-21").await.unwrap().is_empty());
    let found = store.customers_by_phone("919876543210").await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].credit_balance_minor, 2_000);
    assert_eq!(store.audit_entries().await.unwrap(), entries);
    assert_eq!(store.outbox().await.unwrap().pending, vec![unit]);
}

#[wasm_bindgen_test]
async fn a_sale_that_fails_half_way_leaves_nothing_behind() {
    let (store, _) = fresh_store().await;
    let chai = product("Chai", 1_000);
    let ravi = customer("Ravi", "98765 43210");
    let (records, entries, unit) = sale(&ravi, &chai, "2026-11-22", "T2-000001");
    store.commit_unit(&records, &entries, &unit).await.unwrap();

    // A second bill reusing the number breaks the unique index after the stock move and the
    // customer were already put in the same transaction.
    let (mut records, entries, unit) = sale(&ravi, &chai, "2026-11-22", "T2-000001");
    records.reverse();
    let error = store
        .commit_unit(&records, &entries, &unit)
        .await
        .unwrap_err();
    assert!(matches!(error, StorageError::Transaction(_)), "{error:?}");

    assert_eq!(store.bills_on_day("2026-11-22").await.unwrap().len(), 1);
    let found = store.customers_by_phone("9876543210").await.unwrap();
    assert_eq!(
        found[0].credit_balance_minor, 2_000,
        "the balance was not changed twice"
    );
    assert_eq!(store.audit_entries().await.unwrap().len(), 1);
    assert_eq!(store.outbox().await.unwrap().pending.len(), 1);
}

#[wasm_bindgen_test]
async fn products_are_found_by_barcode_sku_and_name_prefix() {
    let (store, _) = fresh_store().await;
    let mut marie = product("Britannia Marie Gold", 3_000);
    marie.barcodes = vec!["8901063092341".into(), "8901063092358".into()];
    marie.sku = Some("BRIT-MG".into());
    let mut maggi = product("Maggi  Masala 70g", 1_400);
    maggi.barcodes = vec!["8901058851434".into()];
    for p in [&marie, &maggi] {
        store
            .add_product(p, &[], &add_product_unit(new_id(), p, "s1", 0))
            .await
            .unwrap();
    }
    assert_eq!(
        store.product_by_barcode("8901063092358").await.unwrap(),
        Some(marie.clone())
    );
    assert_eq!(store.product_by_barcode("0000").await.unwrap(), None);
    assert_eq!(
        store.product_by_sku("BRIT-MG").await.unwrap(),
        Some(marie.clone())
    );
    let names = |products: Vec<Product>| products.into_iter().map(|p| p.name).collect::<Vec<_>>();
    assert_eq!(
        names(store.products_with_name_prefix("ma", 100).await.unwrap()),
        vec!["Maggi  Masala 70g"]
    );
    assert_eq!(
        names(
            store
                .products_with_name_prefix("MAGGI masala", 100)
                .await
                .unwrap()
        ),
        vec!["Maggi  Masala 70g"]
    );
    assert_eq!(
        names(store.products_with_name_prefix("b", 100).await.unwrap()),
        vec!["Britannia Marie Gold"]
    );
    assert!(store
        .products_with_name_prefix("z", 100)
        .await
        .unwrap()
        .is_empty());
}

#[wasm_bindgen_test]
async fn the_conflict_inbox_keeps_entries_until_dealt_with() {
    let (store, _) = fresh_store().await;
    let entry = ConflictEntry {
        id: new_id(),
        kind: ConflictKind::Field,
        path: "shops/s1/products/p1".into(),
        unit_id: Some(new_id()),
        field: Some("price".into()),
        local_value: Some(Value::Integer(1_200)),
        server_value: Some(Value::Integer(1_100)),
        explanation: "Another tablet changed the price first.".into(),
    };
    store
        .add_conflicts(std::slice::from_ref(&entry))
        .await
        .unwrap();
    // Recording the same conflict again keeps one entry.
    store
        .add_conflicts(std::slice::from_ref(&entry))
        .await
        .unwrap();
    assert_eq!(store.conflicts().await.unwrap(), vec![entry.clone()]);
    store.remove_conflict(&entry.id).await.unwrap();
    assert!(store.conflicts().await.unwrap().is_empty());
}

/// Regression guard for schema migrations: a database written by schema version 1, with
/// products and pending units, must open with the current schema with every record kept.
#[wasm_bindgen_test]
async fn a_version_1_database_upgrades_keeping_every_record_and_pending_unit() {
    let name = format!("test-migration-{}", new_id());
    let tea = product("Assam  TEA 500g", 24_000);
    let mut v1_tea = tea.clone();
    v1_tea.name_key = String::new(); // version 1 did not have the field
    let (old, first, second) =
        common::old_database_with_units(&name, 1, &v1_tea, &product("Sugar", 4_500)).await;
    assert_eq!(old.data_version().await.unwrap(), 1);
    old.close();

    let store = Store::open(&name).await.unwrap();
    assert_eq!(
        store.data_version().await.unwrap(),
        counterbook::storage::DATA_VERSION
    );
    common::assert_units_kept(&store, first, second).await;
    assert_eq!(store.products().await.unwrap().len(), 2);
    // The data migration backfilled the name-prefix key.
    let found = store
        .products_with_name_prefix("assam tea", 100)
        .await
        .unwrap();
    assert_eq!(found, vec![tea]);
    // New stores exist and work.
    assert!(store.conflicts().await.unwrap().is_empty());
    assert!(store.bills_on_day("2026-11-22").await.unwrap().is_empty());
}

/// The store's own schema upgrade keeps what it does not know: a store the schema does not
/// declare (one a later version stopped using, say) keeps its records through an upgrade
/// (rexie's upgrade deleted every undeclared store).
#[wasm_bindgen_test]
async fn an_upgrade_never_deletes_a_store_or_its_records() {
    let name = format!("test-upgrade-{}", new_id());
    let old = counterbook::storage::declare_schema(&name, 1)
        .add_object_store(rexie::ObjectStore::new("legacyNotes"))
        .build()
        .await
        .unwrap();
    let transaction = old
        .transaction(&["legacyNotes"], rexie::TransactionMode::ReadWrite)
        .unwrap();
    let notes = transaction.store("legacyNotes").unwrap();
    notes
        .put(&JsValue::from_str("kept"), Some(&JsValue::from_str("note")))
        .await
        .unwrap();
    transaction.done().await.unwrap();
    old.close();

    Store::open(&name).await.unwrap().close();
    let upgraded = rexie::Rexie::builder(&name).build().await.unwrap();
    assert_eq!(
        upgraded.version().unwrap(),
        counterbook::storage::SCHEMA_VERSION
    );
    let transaction = upgraded
        .transaction(&["legacyNotes"], rexie::TransactionMode::ReadOnly)
        .unwrap();
    let kept = transaction
        .store("legacyNotes")
        .unwrap()
        .get(JsValue::from_str("note"))
        .await
        .unwrap();
    assert_eq!(
        kept.and_then(|value| value.as_string()).as_deref(),
        Some("kept")
    );
}

/// Guards the batched store step (its reads and writes sent together, not one by one): within
/// one batch a document named twice keeps its newer version whichever order they come in, a
/// soft delete in the batch hides its product, and every other document of a large batch is
/// stored with its base copy.
#[wasm_bindgen_test]
async fn a_batch_from_the_server_keeps_each_documents_newest_version_and_hides_deletions() {
    let (store, _) = fresh_store().await;
    let named = |product: &Product, stock: i64, micros: i64, deleted: bool| {
        server_document(
            product,
            micros,
            &[
                ("stock", Value::Integer(stock)),
                ("deleted", Value::Boolean(deleted)),
            ],
        )
    };
    let twice = product("Ghee 500g", 30_000);
    let gone = product("Soap", 4_000);
    let many: Vec<Product> = (0..300)
        .map(|i| product(&format!("Rice {i:03}"), 5_000 + i))
        .collect();
    let mut documents: Vec<Document> = many.iter().map(|p| named(p, 1, 1_000, false)).collect();
    documents.push(named(&gone, 3, 1_000, false));
    documents.push(named(&twice, 9, 5_000, false));
    documents.push(named(&twice, 4, 2_000, false));
    store
        .apply_listened_documents(&documents, &[], &[])
        .await
        .unwrap();
    let held = store.products().await.unwrap();
    assert_eq!(held.len(), 302);
    let ghee = held.iter().find(|p| p.id == twice.id).unwrap();
    assert_eq!(ghee.stock_on_hand, 9, "the newer version stands");
    let base = store
        .base_copy(&format!("shops/s1/products/{}", twice.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(base.update_time_micros, 5_000);
    assert!(store
        .base_copy(&format!("shops/s1/products/{}", many[299].id))
        .await
        .unwrap()
        .is_some());

    // Older then newer in one batch: the newer one wins too; the deletion hides Soap.
    store
        .apply_listened_documents(
            &[
                named(&twice, 1, 6_000, false),
                named(&twice, 2, 7_000, false),
                named(&gone, 3, 7_000, true),
            ],
            &[],
            &[],
        )
        .await
        .unwrap();
    let held = store.products().await.unwrap();
    assert_eq!(held.len(), 301);
    assert!(!held.iter().any(|p| p.id == gone.id));
    assert_eq!(
        held.iter()
            .find(|p| p.id == twice.id)
            .unwrap()
            .stock_on_hand,
        2
    );
}

/// Guards the reads of a batch's stored copies (one range read when the batch's paths span few
/// other records, one get per path otherwise) and the pages prepared ahead: either way an older
/// version changes nothing and a newer one is taken, and a page stored with documents prepared
/// from another page is stored as itself.
#[wasm_bindgen_test]
async fn a_batch_reads_its_stored_copies_by_range_or_one_by_one_and_prepared_pages_are_checked() {
    let (store, _) = fresh_store().await;
    let stock = |held: &[Product], product: &Product| {
        held.iter()
            .find(|p| p.id == product.id)
            .map(|p| p.stock_on_hand)
    };
    let many: Vec<Product> = (0..50)
        .map(|i| product(&format!("Dal {i:02}"), 9_000))
        .collect();
    let at = |product: &Product, micros: i64, stock: i64| {
        server_document(product, micros, &[("stock", Value::Integer(stock))])
    };
    let first: Vec<Document> = many.iter().map(|p| at(p, 1_000, 5)).collect();
    store
        .apply_listened_documents(&first, &[], &[])
        .await
        .unwrap();

    // The lowest and highest path of 50 stored: two paths, so one get each. The first is
    // older than the stored copy, the last newer.
    let (lowest, highest) = {
        let mut sorted = many.clone();
        sorted.sort_by(|a, b| a.id.cmp(&b.id));
        (sorted[0].clone(), sorted[49].clone())
    };
    store
        .apply_server_documents(&[at(&lowest, 500, 1), at(&highest, 2_000, 2)])
        .await
        .unwrap();
    let held = store.products().await.unwrap();
    assert_eq!(
        stock(&held, &lowest),
        Some(5),
        "the older version changes nothing"
    );
    assert_eq!(stock(&held, &highest), Some(2));

    // All 50 again, every one older but one: one range read.
    let mut again: Vec<Document> = many.iter().map(|p| at(p, 900, 7)).collect();
    again[10] = at(&many[10], 3_000, 8);
    store
        .apply_listened_documents(&again, &[], &[])
        .await
        .unwrap();
    let held = store.products().await.unwrap();
    assert_eq!(stock(&held, &many[10]), Some(8));
    // Any other product but the highest (newer at 2,000): the ids are random, so the highest
    // may be any of them (it was `many[11]` once, and the check read its 2).
    let untouched = many
        .iter()
        .enumerate()
        .find(|(index, p)| *index != 10 && p.id != highest.id)
        .map(|(_, p)| p)
        .unwrap();
    assert_eq!(stock(&held, untouched), Some(5));
    assert_eq!(stock(&held, &highest), Some(2));

    // A page stored with another page's preparation is stored as itself.
    let newcomer = product("Jaggery", 7_000);
    let page = PulledPage {
        collection: "products".into(),
        query_id: counterbook_sync::PullQueryId(3),
        upserts: vec![at(&newcomer, 4_000, 3)],
        deletes: vec![],
        conflicts: vec![],
        checkpoint: Checkpoint {
            updated_at: Timestamp::from_unix_micros(4_000),
            name: at(&newcomer, 4_000, 3).name,
            settled_through: None,
        },
    };
    let other = counterbook::storage::PreparedDocuments::of(&[at(&many[0], 5_000, 99)]).unwrap();
    store.apply_prepared_page(&page, other).await.unwrap();
    let held = store.products().await.unwrap();
    assert_eq!(stock(&held, &newcomer), Some(3));
    assert_eq!(stock(&held, &many[0]), Some(5), "nothing of the other page");
    assert_eq!(
        store.checkpoint("products").await.unwrap(),
        Some(page.checkpoint.clone())
    );
}

/// The products' indexes in the database `name`, opened at the version it has.
async fn product_index_names(name: &str) -> Vec<String> {
    let raw = rexie::Rexie::builder(name).build().await.unwrap();
    let transaction = raw
        .transaction(&["products"], rexie::TransactionMode::ReadOnly)
        .unwrap();
    let products = transaction.store("products").unwrap();
    let mut names: Vec<String> = ["name", "nameKey", "sku", "barcode", "byName"]
        .into_iter()
        .filter(|index| products.index(index).is_ok())
        .map(str::to_owned)
        .collect();
    names.sort();
    drop(products);
    transaction.done().await.unwrap();
    raw.close();
    names
}

/// Regression guard for schema version 6, which dropped the products' `name` and `nameKey`
/// indexes (nothing read them; every product put paid for them): a version 5 database with
/// products, a pending unit and a dead letter opens without those two indexes, with every
/// record and unit kept and every lookup working.
#[wasm_bindgen_test]
async fn a_version_5_database_drops_the_unused_product_indexes_keeping_every_record_and_unit() {
    let name = format!("test-migration-v5-{}", new_id());
    let mut tea = product("Assam  TEA 500g", 24_000);
    tea.barcodes = vec!["8901063010017".into()];
    tea.sku = Some("TEA-500".into());
    let (old, first, second) =
        common::old_database_with_units(&name, 5, &tea, &product("Sugar", 4_500)).await;
    old.close();
    assert_eq!(
        product_index_names(&name).await,
        ["barcode", "byName", "name", "nameKey", "sku"]
    );

    let store = Store::open(&name).await.unwrap();
    common::assert_units_kept(&store, first, second).await;
    assert_eq!(store.products().await.unwrap().len(), 2);
    assert_eq!(
        store.product_by_barcode("8901063010017").await.unwrap(),
        Some(tea.clone())
    );
    assert_eq!(
        store.product_by_sku("TEA-500").await.unwrap(),
        Some(tea.clone())
    );
    assert_eq!(
        store
            .products_with_name_prefix("assam tea", 10)
            .await
            .unwrap(),
        vec![tea]
    );
    store.close();
    assert_eq!(
        product_index_names(&name).await,
        ["barcode", "byName", "sku"]
    );
}

/// The base copies' records the database `name` holds in `bases`, by path (opened raw, at the
/// version it has).
async fn raw_base_paths(name: &str) -> Vec<String> {
    let raw = rexie::Rexie::builder(name).build().await.unwrap();
    let transaction = raw
        .transaction(&["bases"], rexie::TransactionMode::ReadOnly)
        .unwrap();
    let keys = transaction
        .store("bases")
        .unwrap()
        .get_all_keys(None, None)
        .await
        .unwrap();
    transaction.done().await.unwrap();
    raw.close();
    keys.into_iter().filter_map(|key| key.as_string()).collect()
}

/// A base copy's record as schema 6 wrote it in `bases`: `document`'s fields as one JSON text.
fn version_6_base_record(document: &Document) -> JsValue {
    let base = counterbook::entities::BaseCopy::of_document(document).unwrap();
    let record = serde_json::json!({
        "path": base.path,
        "fieldsJson": serde_json::to_string(&base.fields).unwrap(),
        "updateTimeMicros": base.update_time_micros,
    });
    js_sys::JSON::parse(&record.to_string()).unwrap()
}

/// Regression guard for schema version 7, which moved a pulled product's base copy from its
/// record in `bases` into the product's own record: a version 6 database with pulled products'
/// base copies (one product edited here with its unit still pending, one as pulled, one the
/// server deleted), a pending unit and a dead letter opens with every base copy read where
/// merges, conflicts and rejections read it, every record and unit kept, and only the deleted
/// product's base copy left in `bases`.
#[wasm_bindgen_test]
async fn a_version_6_database_moves_products_base_copies_into_their_records_keeping_every_unit() {
    let name = format!("test-migration-v6-{}", new_id());
    let mut tea = product("Assam  TEA 500g", 24_000);
    tea.barcodes = vec!["8901063010017".into()];
    let (old, first, second) =
        common::old_database_with_units(&name, 6, &tea, &product("Sugar", 4_500)).await;
    old.close();
    // The server's versions: tea's before this tablet's pending edit, rice as shown, and soap,
    // which the server deleted (the tablet no longer holds its record).
    let tea_on_server = server_document(&tea, 1_000, &[("price", Value::Integer(20_000))]);
    let rice = product("Rice 5kg", 50_000);
    let rice_on_server = server_document(&rice, 2_000, &[]);
    let soap = product("Soap", 3_000);
    let soap_on_server = server_document(&soap, 3_000, &[("deleted", Value::Boolean(true))]);
    for document in [&tea_on_server, &rice_on_server, &soap_on_server] {
        common::put_raw_record(&name, 6, "bases", &version_6_base_record(document)).await;
    }
    let rice_record = js_sys::JSON::parse(&serde_json::to_string(&rice).unwrap()).unwrap();
    common::put_raw_record(&name, 6, "products", &rice_record).await;

    let store = Store::open(&name).await.unwrap();
    assert_eq!(store.data_version().await.unwrap(), 5);
    let first_id = first.id.clone();
    common::assert_units_kept(&store, first, second).await;
    for document in [&tea_on_server, &rice_on_server, &soap_on_server] {
        let path = counterbook::entities::BaseCopy::of_document(document)
            .unwrap()
            .path;
        let base = store.base_copy(&path).await.unwrap().unwrap();
        assert_eq!(
            base,
            counterbook::entities::BaseCopy::of_document(document).unwrap()
        );
    }
    assert_eq!(
        raw_base_paths(&name).await,
        vec![format!("shops/s1/products/{}", soap.id)],
        "only the deleted product's base copy stays in bases"
    );
    // Tea still shows this tablet's pending edit, found by its barcode.
    assert_eq!(
        store.product_by_barcode("8901063010017").await.unwrap(),
        Some(tea.clone())
    );
    assert_eq!(store.products().await.unwrap().len(), 3);
    // A sale of tea keeps its base copy in its record.
    let ravi = customer("Ravi", "+91 98765-43210");
    store
        .record_sale(
            "T1",
            std::slice::from_ref(&tea.id),
            None,
            |number, products, _| {
                let (mut records, audit, unit) =
                    sale(&ravi, &products[0], "2026-12-02", &number.to_string());
                let mut sold = products[0].clone();
                sold.stock_on_hand -= 2;
                records.push(Record::Product(sold));
                Ok::<_, String>(counterbook_shop::UnitOfWork {
                    records,
                    audit,
                    unit,
                })
            },
        )
        .await
        .unwrap();
    let tea_path = format!("shops/s1/products/{}", tea.id);
    let tea_base = counterbook::entities::BaseCopy::of_document(&tea_on_server).unwrap();
    assert_eq!(store.base_copy(&tea_path).await.unwrap(), Some(tea_base));
    assert_eq!(
        store
            .product(&tea.id)
            .await
            .unwrap()
            .map(|p| p.stock_on_hand),
        Some(tea.stock_on_hand - 2)
    );
    // Rejected, tea's edit gives way to the server's version, read from that base copy.
    store.reject_unit(&first_id).await.unwrap();
    assert_eq!(
        store.product(&tea.id).await.unwrap().map(|p| p.price_minor),
        Some(20_000)
    );
}

/// The listener delivering `pulled` again, as its snapshot after a first sync does.
async fn listen_again(store: &Store, pulled: &[Document]) {
    store
        .apply_listened_documents(pulled, &[], &[])
        .await
        .unwrap();
}

/// The price of the product `id` as the tablet shows it.
async fn price_of(store: &Store, id: &str) -> Option<i64> {
    store.product(id).await.unwrap().map(|p| p.price_minor)
}

/// Regression guard for the listener's second pass over an empty tablet's first sync (the
/// whole catalogue written again just after it was pulled): a version stored as pulled is not
/// written again, nor announced; a product shown otherwise (a unit pending, or one that was
/// pending) is shown again from the server's version with what is pending laid over; a product
/// the server deleted, or that left the listen target, keeps its base copy outside its record,
/// so an older version arriving later does not replace it.
#[wasm_bindgen_test]
async fn a_version_stored_as_pulled_is_not_written_again_and_hidden_products_keep_base_copies() {
    use std::cell::RefCell;
    use std::rc::Rc;
    let (store, _) = fresh_store().await;
    let announced: Rc<RefCell<Vec<String>>> = Rc::default();
    let sink = Rc::clone(&announced);
    store.on_change(move |changed| {
        sink.borrow_mut()
            .extend(changed.ids("products").map(str::to_owned))
    });
    let take_announced = || std::mem::take(&mut *announced.borrow_mut());
    let many: Vec<Product> = (0..3)
        .map(|i| product(&format!("Poha {i}"), 4_000 + i))
        .collect();
    let pulled: Vec<Document> = many
        .iter()
        .map(|p| server_document(p, 1_000, &[]))
        .collect();
    store.apply_server_documents(&pulled).await.unwrap();
    assert_eq!(take_announced().len(), 3);

    listen_again(&store, &pulled).await;
    assert!(take_announced().is_empty(), "nothing written again");

    // An edit pending here: the same version is shown again with the edit laid over.
    let mut edited = many[0].clone();
    edited.price_minor = 1;
    let edit = add_product_unit(new_id(), &edited, "s1", 0);
    store.add_product(&edited, &[], &edit).await.unwrap();
    take_announced();
    listen_again(&store, &pulled).await;
    assert_eq!(take_announced(), vec![many[0].id.clone()]);
    assert_eq!(price_of(&store, &many[0].id).await, Some(1));
    // Once it is no longer pending, the record shows the server's version again, once.
    store.mark_unit_done(&edit.id).await.unwrap();
    listen_again(&store, &pulled).await;
    assert_eq!(take_announced(), vec![many[0].id.clone()]);
    assert_eq!(
        price_of(&store, &many[0].id).await,
        Some(many[0].price_minor)
    );
    listen_again(&store, &pulled).await;
    assert!(take_announced().is_empty());

    // Deleted on the server, then an older version: the product stays hidden.
    let deleted_path = format!("shops/s1/products/{}", many[1].id);
    store
        .apply_server_documents(&[server_document(
            &many[1],
            2_000,
            &[("deleted", Value::Boolean(true))],
        )])
        .await
        .unwrap();
    store
        .apply_server_documents(&[server_document(&many[1], 1_500, &[])])
        .await
        .unwrap();
    assert_eq!(store.product(&many[1].id).await.unwrap(), None);
    assert_eq!(
        store
            .base_copy(&deleted_path)
            .await
            .unwrap()
            .map(|base| base.update_time_micros),
        Some(2_000)
    );
    // Out of the listen target, its base copy is kept: an older version arriving later shows
    // the product as that copy has it.
    let hidden_path = format!("shops/s1/products/{}", many[2].id);
    store
        .apply_listened_documents(&[], std::slice::from_ref(&hidden_path), &[])
        .await
        .unwrap();
    assert_eq!(store.product(&many[2].id).await.unwrap(), None);
    store
        .apply_server_documents(&[server_document(
            &many[2],
            500,
            &[("price", Value::Integer(1))],
        )])
        .await
        .unwrap();
    assert_eq!(
        store
            .product(&many[2].id)
            .await
            .unwrap()
            .map(|p| p.price_minor),
        Some(many[2].price_minor)
    );
    assert_eq!(
        store
            .base_copy(&hidden_path)
            .await
            .unwrap()
            .map(|base| base.update_time_micros),
        Some(1_000)
    );
}
