//! The products' indexed queries on the real IndexedDB in headless Chromium: a catalogue of
//! 100,000 products, the lookups a screen makes on it, the change feed, and the migration from
//! schema version 2 (before the list indexes).
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::rc::Rc;

use counterbook::ids::new_id;
use counterbook::model::{add_product_unit, Product};
use counterbook::storage::{ChangedDocuments, ProductPosition, ProductQuery, Store, DATA_VERSION};
use counterbook_shop::actions::{self as shop_actions, ActionContext};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

mod common;

wasm_bindgen_test_configure!(run_in_browser);

const CATALOGUE: usize = 100_000;
const CATEGORIES: [&str; 4] = ["Biscuits", "Dairy", "Rice", "Soap"];

/// Product `n` of the seeded catalogue: "Item 000042", SKU "SKU-42", barcode "20000000042",
/// a category by `n % 4`, and every 100th low on stock.
fn seeded_product(n: usize) -> Product {
    let mut product = Product::new(format!("p{n:06}"), &format!("Item {n:06}"), 1_000, "INR");
    product.sku = Some(format!("SKU-{n}"));
    product.barcodes = vec![format!("2{n:010}")];
    product.category = Some(CATEGORIES[n % 4].to_owned());
    product.low_stock_threshold = Some(5);
    product.stock_on_hand = if n.is_multiple_of(100) { 2 } else { 50 };
    product
}

async fn seeded_store() -> Store {
    let store = Store::open(&format!("test-catalogue-{}", new_id()))
        .await
        .unwrap();
    let products: Vec<Product> = (0..CATALOGUE).map(seeded_product).collect();
    store.seed_products(&products).await.unwrap();
    store
}

fn names(products: &[Product]) -> Vec<&str> {
    products.iter().map(|p| p.name.as_str()).collect()
}

#[wasm_bindgen_test]
async fn lookups_in_a_catalogue_of_100000_products_read_only_what_they_return() {
    let store = seeded_store().await;

    // Codes: one index get each.
    let by_barcode = store.product_by_barcode("20000077777").await.unwrap();
    assert_eq!(by_barcode.map(|p| p.name), Some("Item 077777".to_owned()));
    let by_sku = store.product_by_sku("SKU-31415").await.unwrap();
    assert_eq!(by_sku.map(|p| p.id), Some("p031415".to_owned()));
    assert_eq!(store.product_by_barcode("29999999999").await.unwrap(), None);

    // Name search: a range with a limit, in name order.
    let found = store
        .products_with_name_prefix("item 0999", 5)
        .await
        .unwrap();
    assert_eq!(
        names(&found),
        [
            "Item 099900",
            "Item 099901",
            "Item 099902",
            "Item 099903",
            "Item 099904"
        ]
    );

    // Counts per filter, from the indexes.
    let all = ProductQuery::default();
    assert_eq!(store.count_products(&all).await.unwrap(), CATALOGUE as u32);
    let low = ProductQuery {
        low_stock_only: true,
        ..ProductQuery::default()
    };
    assert_eq!(store.count_products(&low).await.unwrap(), 1_000);
    let dairy = ProductQuery {
        category: Some("Dairy".into()),
        ..ProductQuery::default()
    };
    assert_eq!(store.count_products(&dairy).await.unwrap(), 25_000);
    let low_soap_prefix = ProductQuery {
        name_prefix: "Item 01".into(),
        category: Some("Soap".into()),
        low_stock_only: true,
    };
    // Soap is n % 4 == 3, low is n % 100 == 0: never both.
    assert_eq!(store.count_products(&low_soap_prefix).await.unwrap(), 0);
    let low_biscuits_prefix = ProductQuery {
        name_prefix: "item 01".into(),
        category: Some("Biscuits".into()),
        low_stock_only: true,
    };
    // n in 10000..20000 with n % 100 == 0 (so n % 4 == 0 as well): 100.
    assert_eq!(
        store.count_products(&low_biscuits_prefix).await.unwrap(),
        100
    );

    // Pages: a jump by offset, then the next page by cursor after its last row.
    let count = CATALOGUE as u32;
    let page = store
        .products_at_offset(&all, 50_000, 3, count)
        .await
        .unwrap();
    assert_eq!(names(&page), ["Item 050000", "Item 050001", "Item 050002"]);
    // Jumps near the end skip from the end backwards, in the same order.
    let near_end = store
        .products_at_offset(&all, 99_990, 3, count)
        .await
        .unwrap();
    assert_eq!(
        names(&near_end),
        ["Item 099990", "Item 099991", "Item 099992"]
    );
    let last = store
        .products_at_offset(&all, 99_998, 3, count)
        .await
        .unwrap();
    assert_eq!(names(&last), ["Item 099998", "Item 099999"]);
    let past_the_end = store
        .products_at_offset(&all, 100_000, 3, count)
        .await
        .unwrap();
    assert!(past_the_end.is_empty());
    let next = store
        .products_after(&all, Some(&ProductPosition::of(&page[2])), 2)
        .await
        .unwrap();
    assert_eq!(names(&next), ["Item 050003", "Item 050004"]);
    let low_page = store.products_at_offset(&low, 10, 2, 1_000).await.unwrap();
    assert_eq!(names(&low_page), ["Item 001000", "Item 001100"]);
    assert!(low_page.iter().all(Product::is_low_on_stock));
    let low_end = store.products_at_offset(&low, 998, 2, 1_000).await.unwrap();
    assert_eq!(names(&low_end), ["Item 099800", "Item 099900"]);

    // By ids, and the categories.
    let wanted = vec![
        "p000007".to_owned(),
        "missing".to_owned(),
        "p099999".to_owned(),
    ];
    let by_ids = store.products_by_ids(&wanted).await.unwrap();
    assert_eq!(names(&by_ids), ["Item 000007", "Item 099999"]);
    assert_eq!(store.product_categories().await.unwrap(), CATEGORIES);
}

#[wasm_bindgen_test]
async fn every_committed_write_announces_the_documents_it_changed() {
    let store = Store::open(&format!("test-changes-{}", new_id()))
        .await
        .unwrap();
    let announced: Rc<RefCell<Vec<ChangedDocuments>>> = Rc::default();
    let sink = Rc::clone(&announced);
    store.on_change(move |changed| sink.borrow_mut().push(changed.clone()));

    let tea = Product::new(new_id(), "Tea", 100, "INR");
    let unit = add_product_unit(new_id(), &tea, "s1", 0);
    store.add_product(&tea, &[], &unit).await.unwrap();
    let mut rice = Product::new(new_id(), "Rice", 5_000, "INR");
    rice.stock_on_hand = 7;
    let context = ActionContext {
        shop_id: "s1",
        device_id: "d1",
        device_name: None,
        cashier: None,
        person_id: None,
        now_millis: 0,
    };
    let work = shop_actions::add_product(&context, &rice, &mut new_id).unwrap();
    store.commit_work(&work).await.unwrap();
    // A unit that fails (its id is taken) announces nothing.
    assert!(store.add_product(&tea, &[], &unit).await.is_err());

    let announced = announced.borrow();
    assert_eq!(announced.len(), 2, "{announced:?}");
    assert_eq!(
        announced[0].ids("products").collect::<Vec<_>>(),
        [tea.id.as_str()]
    );
    assert_eq!(
        announced[1].ids("products").collect::<Vec<_>>(),
        [rice.id.as_str()]
    );
    // The opening stock's move is named too.
    assert_eq!(announced[1].ids("stockMoves").count(), 1);
}

#[wasm_bindgen_test]
async fn a_version_2_database_upgrades_keeping_pending_units_and_finds_low_stock() {
    let name = format!("test-migration-v2-{}", new_id());
    let soap = Product::new(new_id(), "Lux Soap", 3_500, "INR");
    let refused = Product::new(new_id(), "Surf", 9_900, "INR");
    let (old, pending, dead) = common::old_database_with_units(&name, 2, &soap, &refused).await;
    old.close();

    // A product low on stock exactly as version 2 stored it: without the lowStock mark.
    let mut milk = Product::new(new_id(), "Milk 1l", 6_000, "INR");
    milk.low_stock_threshold = Some(10);
    milk.stock_on_hand = 3;
    let record =
        serde::Serialize::serialize(&milk, &serde_wasm_bindgen::Serializer::json_compatible())
            .unwrap();
    common::put_raw_record(&name, 2, "products", &record).await;

    let store = Store::open(&name).await.unwrap();
    assert_eq!(store.data_version().await.unwrap(), DATA_VERSION);
    common::assert_units_kept(&store, pending, dead).await;
    let all = ProductQuery::default();
    let listed = store.products_after(&all, None, 10).await.unwrap();
    assert_eq!(names(&listed), ["Lux Soap", "Milk 1l", "Surf"]);
    let low = ProductQuery {
        low_stock_only: true,
        ..ProductQuery::default()
    };
    // The data migration marked it, so the low-stock index holds it.
    assert_eq!(
        store.products_after(&low, None, 10).await.unwrap(),
        vec![milk]
    );
}
