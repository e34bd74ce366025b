//! Completing a sale on the real IndexedDB in headless Chromium: one transaction for the bill,
//! its payments and stock moves, the stock, the customer's balance, the audit entry, the bill
//! number and the outbox unit; nothing of a failing sale is kept; the series survives a reload.
#![cfg(target_arch = "wasm32")]
// Amounts are written as major_minor units (₹120.00 is `120_00`), on purpose.
#![allow(clippy::inconsistent_digit_grouping)]

use counterbook::ids::new_id;
use counterbook::storage::sales::{device_series, RecordSaleError};
use counterbook::storage::Store;
use counterbook_firestore_wire::Code;
use counterbook_shop::actions::{complete_sale, ActionContext, Sale};
use counterbook_shop::{
    Bill, BillLine, BillNumber, Customer, Product, Record, ShopSettings, Tender, UnitOfWork,
};
use counterbook_sync::DeadLetterReason;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const DEVICE: &str = "0193a0b0-0000-7000-8000-00000000beef";

async fn fresh_store() -> (Store, String) {
    let name = format!("test-sales-{}", new_id());
    (Store::open(&name).await.unwrap(), name)
}

fn context() -> ActionContext<'static> {
    ActionContext {
        shop_id: "s1",
        device_id: DEVICE,
        device_name: None,
        cashier: None,
        person_id: None,
        now_millis: 1_700_000_000_000,
    }
}

/// Puts records on the tablet as a unit of work would (its own unit in the outbox).
async fn put(store: &Store, records: Vec<Record>) {
    let mut work = counterbook_shop::actions::create_customer(
        &context(),
        &Customer::new(new_id(), "Seed", None),
        &mut new_id,
    )
    .unwrap();
    work.records = records;
    store.commit_work(&work).await.unwrap();
}

fn product(name: &str, price: i64, stock: i64) -> Product {
    let mut product = Product::new(new_id(), name, price, "INR");
    product.stock_on_hand = stock;
    product
}

/// Sells `lines` paid by `tenders`, for `customer`, in one transaction.
async fn sell(
    store: &Store,
    lines: &[BillLine],
    tenders: &[Tender],
    customer_id: Option<&str>,
) -> Result<(String, UnitOfWork), RecordSaleError<String>> {
    let settings = ShopSettings::default();
    let ids: Vec<String> = lines.iter().map(|l| l.product_id.clone()).collect();
    store
        .record_sale(
            &device_series(DEVICE),
            &ids,
            customer_id,
            |number, products, customer| {
                let sale = Sale {
                    number,
                    lines,
                    tenders,
                    customer,
                    products,
                    settings: &settings,
                    day: "2026-12-01",
                };
                complete_sale(&context(), &sale, &mut new_id)
                    .map(|completed| completed.work)
                    .map_err(|e| e.to_string())
            },
        )
        .await
        .map(|(number, work)| (number.to_string(), work))
}

/// A bill numbered `number` for one `product` paid with 35.00 in cash, made and not stored.
fn cash_bill(number: &BillNumber, product: &Product) -> Bill {
    let lines = [BillLine::of_product(product, 1)];
    let sale = Sale {
        number,
        lines: &lines,
        tenders: &[Tender::Cash {
            received_minor: 35_00,
        }],
        customer: None,
        products: &[],
        settings: &ShopSettings::default(),
        day: "2026-12-01",
    };
    complete_sale(&context(), &sale, &mut new_id).unwrap().bill
}

/// A product's stock on the tablet (test products have their id as SKU).
async fn stock_of(store: &Store, id: &str) -> i64 {
    store
        .product_for_code(id)
        .await
        .unwrap()
        .map(|p| p.stock_on_hand)
        .unwrap_or_else(|| panic!("product {id} not found"))
}

#[wasm_bindgen_test]
async fn a_sale_is_one_transaction_and_the_series_survives_a_reload() {
    let (store, name) = fresh_store().await;
    let mut tea = product("Tea 250g", 120_00, 10);
    tea.sku = Some(tea.id.clone());
    let mut rice = product("Rice", 60_00, 5_000);
    rice.sku = Some(rice.id.clone());
    rice.unit = counterbook_shop::QuantityUnit::Kilogram;
    put(
        &store,
        vec![Record::Product(tea.clone()), Record::Product(rice.clone())],
    )
    .await;
    let before = store.outbox().await.unwrap().pending.len();

    let lines = [
        BillLine::of_product(&tea, 2),
        BillLine::of_product(&rice, 1_250),
    ];
    let (first, work) = sell(
        &store,
        &lines,
        &[Tender::Cash {
            received_minor: 400_00,
        }],
        None,
    )
    .await
    .unwrap();
    let series = device_series(DEVICE);
    assert_eq!(first, format!("{series}-000001"));
    assert_eq!(stock_of(&store, &tea.id).await, 8);
    assert_eq!(stock_of(&store, &rice.id).await, 3_750);
    let bill = store
        .bill_by_number(&first)
        .await
        .unwrap()
        .expect("the bill is stored");
    assert_eq!(bill.totals.total_minor, 2 * 120_00 + 75_00);
    let outbox = store.outbox().await.unwrap().pending;
    assert_eq!(outbox.len(), before + 1);
    assert_eq!(outbox.last(), Some(&work.unit));

    let (second, _) = sell(
        &store,
        &lines[..1],
        &[Tender::Card {
            amount_minor: 240_00,
        }],
        None,
    )
    .await
    .unwrap();
    assert_eq!(second, format!("{series}-000002"));

    // A reload: the series goes on where it was.
    store.close();
    let store = Store::open(&name).await.unwrap();
    assert_eq!(
        store
            .last_bill_number(&series)
            .await
            .unwrap()
            .map(|n| n.to_string()),
        Some(second)
    );
    let (third, _) = sell(
        &store,
        &lines[..1],
        &[Tender::Cash {
            received_minor: 240_00,
        }],
        None,
    )
    .await
    .unwrap();
    assert_eq!(third, format!("{series}-000003"));
    assert_eq!(stock_of(&store, &tea.id).await, 4);
}

#[wasm_bindgen_test]
async fn a_refused_or_failing_sale_leaves_nothing() {
    let (store, _) = fresh_store().await;
    let mut soap = product("Soap", 35_00, 20);
    soap.sku = Some(soap.id.clone());
    let mut customer = Customer::new(new_id(), "Ravi", Some("98765 43210"));
    customer.credit_balance_minor = 80_00;
    customer.credit_limit_minor = Some(100_00);
    let series = device_series(DEVICE);
    // A bill that already holds the number the next sale would take (as if restored from an
    // old backup): the bills' unique number index will refuse the sale's bill.
    let first = BillNumber::first(&series).unwrap();
    let lines = [BillLine::of_product(&soap, 1)];
    let squatter = cash_bill(&first, &soap);
    put(
        &store,
        vec![
            Record::Product(soap.clone()),
            Record::Customer(customer.clone()),
            Record::Bill(squatter),
        ],
    )
    .await;
    let outbox_before = store.outbox().await.unwrap().pending;

    // Credit over the limit, judged on the balance read in the same transaction: refused.
    let refused = sell(
        &store,
        &lines,
        &[Tender::Credit {
            amount_minor: 35_00,
        }],
        Some(&customer.id),
    )
    .await;
    assert!(
        matches!(&refused, Err(RecordSaleError::Refused(reason)) if reason.contains("limit")),
        "{refused:?}"
    );

    // A failure inside IndexedDB after the stock and the balance were written in the
    // transaction: the bill's number is taken. All of it is rolled back.
    let clash = sell(
        &store,
        &lines,
        &[
            Tender::Cash {
                received_minor: 20_00,
            },
            Tender::Credit {
                amount_minor: 15_00,
            },
        ],
        Some(&customer.id),
    )
    .await;
    assert!(
        matches!(clash, Err(RecordSaleError::Storage(_))),
        "{clash:?}"
    );

    assert_eq!(stock_of(&store, &soap.id).await, 20, "stock untouched");
    assert_eq!(
        store
            .customer(&customer.id)
            .await
            .unwrap()
            .map(|c| c.credit_balance_minor),
        Some(80_00),
        "balance untouched"
    );
    assert_eq!(
        store.outbox().await.unwrap().pending,
        outbox_before,
        "no unit queued"
    );
    assert_eq!(
        store.last_bill_number(&series).await.unwrap(),
        None,
        "no number used"
    );
}

/// Guards what a second tablet sees of the first's work: customers and the shop profile
/// arriving in a pulled page were kept only as base copies, so another tablet never found the
/// customer nor printed the shop's name. They are kept as records now, with this tablet's
/// pending changes laid over them.
#[wasm_bindgen_test]
async fn customers_and_the_shop_profile_pulled_from_the_server_are_kept() {
    use counterbook_firestore_wire::{Document, Timestamp, Value};
    use counterbook_sync::{Checkpoint, PulledPage};

    let (store, _) = fresh_store().await;
    let named = |path: &str| format!("projects/p/databases/(default)/documents/{path}");
    let mut customer = Customer::new(new_id(), "Ravi Kumar", Some("98765 43210"));
    customer.credit_limit_minor = Some(500_00);
    let mut customer_fields = customer.to_fields();
    customer_fields.insert("creditBalance".into(), Value::Integer(120_00));
    let profile = ShopSettings {
        shop_name: "Sharma General Store".into(),
        address: Some("12 MG Road, Pune".into()),
        upi_id: Some("sharma@okbank".into()),
        ..ShopSettings::default()
    };
    let document = |path: String, fields| Document {
        name: named(&path),
        fields,
        create_time: None,
        update_time: Some(Timestamp::from_unix_millis(1_000)),
    };
    for (collection, upsert) in [
        (
            "customers",
            document(customer.document_path("s1"), customer_fields),
        ),
        (
            "settings",
            document(ShopSettings::document_path("s1"), profile.to_fields()),
        ),
    ] {
        let page = PulledPage {
            collection: collection.into(),
            query_id: counterbook_sync::PullQueryId(1),
            checkpoint: Checkpoint {
                updated_at: Timestamp::from_unix_millis(1_000),
                name: upsert.name.clone(),
                settled_through: None,
            },
            upserts: vec![upsert],
            deletes: vec![],
            conflicts: vec![],
        };
        store.apply_pulled_page(&page).await.unwrap();
    }

    let found = store.find_customers("ravi", 5).await.unwrap();
    assert_eq!(found.len(), 1, "found by name");
    assert_eq!(found[0].credit_balance_minor, 120_00);
    assert_eq!(found[0].credit_limit_minor, Some(500_00));
    let by_phone = store.find_customers("98765", 5).await.unwrap();
    assert_eq!(by_phone.len(), 1, "found by phone");
    assert_eq!(store.shop_settings().await.unwrap(), Some(profile));
}

/// Guards the counter's customer lookup by name: a customer created at the counter was stored
/// without the folded name the name index reads, so only the phone found them.
#[wasm_bindgen_test]
async fn a_customer_created_at_the_counter_is_found_by_name() {
    let (store, _) = fresh_store().await;
    let customer = Customer::new(new_id(), "Asha Patel", None);
    let work =
        counterbook_shop::actions::create_customer(&context(), &customer, &mut new_id).unwrap();
    store.commit_work(&work).await.unwrap();
    let found = store.find_customers("asha", 5).await.unwrap();
    assert_eq!(
        found.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        [customer.id]
    );
}

/// Guards the counter's search as you type (its three index ranges read together in one
/// transaction): an exact barcode first, then an exact SKU, then names by prefix, then
/// barcodes and SKUs by prefix, without repeats, at most the limit.
#[wasm_bindgen_test]
async fn search_lists_exact_codes_then_names_then_code_prefixes() {
    let (store, _) = fresh_store().await;
    let mut by_barcode = product("Zeera 100g", 40_00, 1);
    by_barcode.barcodes = vec!["8901".into()];
    let mut by_barcode_prefix = product("Yeast", 30_00, 1);
    by_barcode_prefix.barcodes = vec!["89012".into()];
    let mut named = product("8901 Gold tea", 90_00, 1);
    named.sku = Some("8901-GOLD".into());
    let mut by_sku = product("Xylitol", 10_00, 1);
    by_sku.sku = Some("8901".into());
    let chai: Vec<Product> = (0..5)
        .map(|i| product(&format!("Chai {i}"), 10_00, 1))
        .collect();
    let mut all = vec![
        by_barcode.clone(),
        by_barcode_prefix.clone(),
        named.clone(),
        by_sku.clone(),
    ];
    all.extend(chai.iter().cloned());
    store.seed_products(&all).await.unwrap();

    let names = |found: Vec<Product>| found.into_iter().map(|p| p.name).collect::<Vec<_>>();
    assert_eq!(
        names(store.search_products("8901", 8).await.unwrap()),
        vec!["Zeera 100g", "Xylitol", "8901 Gold tea", "Yeast"]
    );
    assert_eq!(
        names(store.search_products("8901", 2).await.unwrap()),
        vec!["Zeera 100g", "Xylitol"]
    );
    assert_eq!(
        names(store.search_products(" chai ", 3).await.unwrap()),
        vec!["Chai 0", "Chai 1", "Chai 2"]
    );
    assert!(store
        .search_products("nothing", 8)
        .await
        .unwrap()
        .is_empty());
}

/// What the payments of a bill on the tablet add up to.
async fn paid(store: &Store, bill_id: &str) -> i64 {
    let payments = store.payments_of_bill(bill_id).await.unwrap();
    payments.iter().map(|payment| payment.amount_minor).sum()
}

/// Regression guard (issue 10: a void or refund the server refused left the tablet saying it
/// happened): when such a unit becomes a dead letter, in the same transaction the refund is
/// marked refused and counts for nothing, the void is undone (the bill final again, why kept
/// beside it), and the stock and money they gave back come off again; the unit leaves the
/// outbox (its refusal shown on the bill), so units touching the same goods are not held.
#[wasm_bindgen_test]
async fn a_refund_and_a_void_the_server_refused_are_undone_and_say_so() {
    use counterbook_shop::refunds::RefundRequest;
    use counterbook_shop::reversals::{refund_bill, void_bill, VoidRequest};
    use counterbook_shop::{BillStatus, PaymentMethod};

    let (store, _) = fresh_store().await;
    let mut soap = product("Soap", 35_00, 10);
    soap.sku = Some(soap.id.clone());
    put(&store, vec![Record::Product(soap.clone())]).await;
    let lines = [BillLine::of_product(&soap, 2)];
    let cash = [Tender::Cash {
        received_minor: 70_00,
    }];
    let (_, sale) = sell(&store, &lines, &cash, None).await.unwrap();
    let bill = sale
        .records
        .iter()
        .find_map(|record| match record {
            Record::Bill(bill) => Some(bill.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(stock_of(&store, &soap.id).await, 8);

    // A refund of one soap, refused by the server.
    let refund = store
        .record_on_bill(&bill.id, None, |at_hand| {
            let request = RefundRequest {
                quantities: &[(0, 1)],
                method: PaymentMethod::Cash,
                reason: "damaged",
                cash_rounding_step_minor: 1,
            };
            refund_bill(
                &context(),
                &at_hand.bill,
                &at_hand.refunds,
                &at_hand.products,
                None,
                &request,
                &mut new_id,
            )
            .map(|made| made.work)
        })
        .await
        .unwrap();
    assert_eq!(stock_of(&store, &soap.id).await, 9);
    assert_eq!(paid(&store, &bill.id).await, 35_00);
    let dropped = store
        .set_dead_letter(
            &refund.unit.id,
            Some(&DeadLetterReason::Refused {
                code: Code::PermissionDenied,
                message: "a refund gives back more than was sold".into(),
            }),
        )
        .await
        .unwrap();
    assert!(dropped);
    assert_eq!(
        stock_of(&store, &soap.id).await,
        8,
        "the soap is sold again"
    );
    assert_eq!(paid(&store, &bill.id).await, 70_00, "no money went back");
    let refunds = store.refunds_of_bill(&bill.id).await.unwrap();
    assert_eq!(refunds.len(), 1, "the refund is kept, said refused");
    assert_eq!(
        refunds[0].refused.as_deref(),
        Some("a refund gives back more than was sold")
    );
    // Undone, it left the outbox: a refund of the same goods is not held behind it.
    let outbox = store.outbox().await.unwrap();
    assert!(outbox.dead_letters.is_empty());
    assert!(outbox.pending.iter().all(|unit| unit.id != refund.unit.id));

    // So the bill may still be voided here; the server refuses that too.
    let void = store
        .record_on_bill(&bill.id, None, |at_hand| {
            let request = VoidRequest {
                bill: &at_hand.bill,
                products: &at_hand.products,
                customer: None,
                refunds: &at_hand.refunds,
                base: None,
                reason: "mistake",
            };
            void_bill(&context(), &request, &mut new_id)
        })
        .await
        .unwrap();
    assert_eq!(stock_of(&store, &soap.id).await, 10);
    assert_eq!(paid(&store, &bill.id).await, 0);
    store
        .set_dead_letter(
            &void.unit.id,
            Some(&DeadLetterReason::Refused {
                code: Code::PermissionDenied,
                message: "the bill has refunds: it is not voided".into(),
            }),
        )
        .await
        .unwrap();
    let after = store.bill(&bill.id).await.unwrap().unwrap();
    assert_eq!(after.status, BillStatus::Final, "the void is undone");
    assert_eq!(stock_of(&store, &soap.id).await, 8);
    assert_eq!(paid(&store, &bill.id).await, 70_00);
    assert_eq!(
        store.refused_void(&bill.id).await.unwrap().as_deref(),
        Some("the bill has refunds: it is not voided")
    );
    let outbox = store.outbox().await.unwrap();
    assert!(outbox.dead_letters.is_empty());
    assert_eq!(
        outbox.pending.len(),
        2,
        "the sale and the seed wait; the void is gone"
    );
}

/// Regression guard (issue 10): a pulled bill whose number a bill on the tablet already holds
/// (two devices that drew the same series, or a bill another client wrote) broke the bills'
/// unique `number` index and aborted the whole page and its checkpoint, on every retry, so the
/// bills' pull never got past it. The page is applied: the bill that holds a number here keeps
/// it (stored, or the first of the page by id), the other is kept as its base copy only.
#[wasm_bindgen_test]
async fn a_pulled_bill_whose_number_is_taken_here_never_aborts_its_page() {
    use counterbook_firestore_wire::{Document, Timestamp};
    use counterbook_sync::{Checkpoint, PulledPage};

    let (store, _) = fresh_store().await;
    let soap = product("Soap", 35_00, 10);
    let bill_numbered = |number: u64| {
        let number = BillNumber {
            series: "T9".into(),
            number,
        };
        cash_bill(&number, &soap)
    };
    let here = bill_numbered(1);
    store.seed_bills(std::slice::from_ref(&here)).await.unwrap();
    let same_number = bill_numbered(1);
    let next = bill_numbered(2);
    let (twin, other_twin) = {
        let (a, b) = (bill_numbered(3), bill_numbered(3));
        if a.id < b.id {
            (a, b)
        } else {
            (b, a)
        }
    };
    let document = |bill: &counterbook_shop::Bill, millis: i64| Document {
        name: format!(
            "projects/p/databases/(default)/documents/{}",
            bill.document_path("s1")
        ),
        fields: bill.to_fields(),
        create_time: None,
        update_time: Some(Timestamp::from_unix_millis(millis)),
    };
    let upserts = vec![
        document(&same_number, 1_000),
        document(&next, 1_001),
        document(&other_twin, 1_002),
        document(&twin, 1_003),
    ];
    let page = PulledPage {
        collection: "bills".into(),
        query_id: counterbook_sync::PullQueryId(1),
        checkpoint: Checkpoint {
            updated_at: Timestamp::from_unix_millis(1_003),
            name: upserts[3].name.clone(),
            settled_through: None,
        },
        upserts,
        deletes: vec![],
        conflicts: vec![],
    };
    store.apply_pulled_page(&page).await.unwrap();

    assert_eq!(
        store.checkpoint("bills").await.unwrap().map(|c| c.name),
        Some(page.checkpoint.name.clone()),
        "the page and its checkpoint are applied"
    );
    let holder = |number: &'static str| {
        let store = &store;
        async move {
            store
                .bill_by_number(number)
                .await
                .unwrap()
                .map(|bill| bill.id)
        }
    };
    assert_eq!(
        holder("T9-000001").await,
        Some(here.id.clone()),
        "kept here"
    );
    assert_eq!(holder("T9-000002").await, Some(next.id.clone()));
    assert_eq!(
        holder("T9-000003").await,
        Some(twin.id.clone()),
        "first by id"
    );
    for (left_out, path) in [
        (&same_number, &page.upserts[0].name),
        (&other_twin, &page.upserts[2].name),
    ] {
        assert_eq!(store.bill(&left_out.id).await.unwrap(), None);
        let path = path.split("/documents/").nth(1).unwrap();
        assert!(
            store.base_copy(path).await.unwrap().is_some(),
            "{path} kept as its base copy"
        );
    }
    assert_eq!(store.count_bills().await.unwrap(), 3);
    // A listen snapshot bringing it again changes nothing either.
    store
        .apply_listened_documents(&page.upserts[..1], &[], &[])
        .await
        .unwrap();
    assert_eq!(holder("T9-000001").await, Some(here.id.clone()));
}
