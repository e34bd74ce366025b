//! Demo data for `make demo` (`serve --dev --demo-data`): a small catalogue and two customers
//! in `projects/counterbook/databases/(default)/documents/shops/demo-shop`, the project and shop
//! the app uses by default, so trying the app without accounts shows something to sell.
//!
//! The documents have the shapes `crates/shop` writes (`Product::to_fields`,
//! `Customer::to_fields`, stock and balances as plain numbers), with the sync metadata a commit
//! of the app adds (`updatedAt` as the commit's `REQUEST_TIME`, `updatedBy`, `lastOp`), so a
//! tablet pulls them like any other change. Seeding is skipped when the shop already has its
//! first demo product, so a restart neither duplicates nor overwrites what was sold since.

use std::collections::BTreeMap;

use counterbook_firestore_wire::{
    CommitRequest, Document, DocumentName, FieldTransform, ServerValue, TransformKind, Value,
    Write, WriteOperation,
};

use crate::commit::{run_commit, AdmitEveryWrite};
use crate::documents::DatabaseId;
use crate::error::ServerError;
use crate::store::Store;

/// The app's default project and shop.
pub const DEMO_PROJECT: &str = "counterbook";
pub const DEMO_SHOP: &str = "demo-shop";

/// id, name, price in paise, barcode, tax rate in basis points, category, stock, low-stock
/// threshold.
type DemoProduct = (
    &'static str,
    &'static str,
    i64,
    &'static str,
    i64,
    &'static str,
    i64,
    i64,
);

const PRODUCTS: [DemoProduct; 7] = [
    (
        "demo-tea",
        "Tata Tea Gold 500 g",
        28_500,
        "8901058000016",
        500,
        "Tea",
        40,
        10,
    ),
    (
        "demo-rice",
        "Basmati Rice 1 kg",
        14_000,
        "8901234000021",
        500,
        "Grocery",
        25,
        5,
    ),
    (
        "demo-soap",
        "Lux Soap 100 g",
        4_500,
        "8901234000038",
        1_800,
        "Personal care",
        60,
        12,
    ),
    (
        "demo-biscuits",
        "Parle-G 250 g",
        2_500,
        "8901234000045",
        1_800,
        "Snacks",
        100,
        20,
    ),
    (
        "demo-oil",
        "Sunflower Oil 1 l",
        16_500,
        "8901234000052",
        500,
        "Grocery",
        18,
        6,
    ),
    (
        "demo-milk",
        "Amul Milk 500 ml",
        3_000,
        "8901234000069",
        0,
        "Dairy",
        30,
        10,
    ),
    (
        "demo-atta",
        "Aashirvaad Atta 5 kg",
        26_500,
        "8901234000076",
        0,
        "Grocery",
        12,
        5,
    ),
];

/// id, name, phone, credit limit (paise, if any), balance owed (paise).
const CUSTOMERS: [(&str, &str, &str, Option<i64>, i64); 2] = [
    (
        "demo-asha",
        "Asha Verma",
        "98765 43210",
        Some(500_000),
        120_000,
    ),
    ("demo-ravi", "Ravi Kumar", "91234 56789", None, 0),
];

fn text(value: &str) -> Value {
    Value::String(value.to_owned())
}

fn demo_write(database: &DatabaseId, path: &str, mut fields: BTreeMap<String, Value>) -> Write {
    fields.insert("updatedBy".into(), text("demo-data"));
    fields.insert("lastOp".into(), text("demo-data"));
    fields.insert("deleted".into(), Value::Boolean(false));
    Write {
        operation: WriteOperation::Update(Document {
            name: format!("{}/documents/{path}", database.resource_name()),
            fields,
            ..Document::default()
        }),
        update_mask: None,
        update_transforms: vec![FieldTransform {
            field_path: "updatedAt".into(),
            kind: TransformKind::SetToServerValue(ServerValue::RequestTime),
        }],
        current_document: None,
    }
}

/// Writes the demo documents in one commit unless they are there already; returns how many
/// documents were written (0 when skipped).
pub fn seed_demo_shop(store: &Store) -> Result<usize, ServerError> {
    let database = DatabaseId {
        project: DEMO_PROJECT.to_owned(),
        database: "(default)".to_owned(),
    };
    let shop = format!("shops/{DEMO_SHOP}");
    let first = DocumentName::new(
        DEMO_PROJECT,
        "(default)",
        &format!("{shop}/products/{}", PRODUCTS[0].0),
    )
    .map_err(|error| ServerError::invalid_name("document name", error))?;
    let already_seeded = store.read_snapshot(|snapshot| Ok(snapshot.get_document(&first)?))?;
    if already_seeded.is_some() {
        return Ok(0);
    }
    let mut writes = Vec::new();
    for (id, name, price, barcode, tax, category, stock, low) in PRODUCTS {
        let fields = BTreeMap::from([
            ("name".to_owned(), text(name)),
            ("price".to_owned(), Value::Integer(price)),
            ("currency".to_owned(), text("INR")),
            (
                "sku".to_owned(),
                text(&id.replace("demo-", "").to_uppercase()),
            ),
            ("barcodes".to_owned(), Value::Array(vec![text(barcode)])),
            ("unit".to_owned(), text("piece")),
            ("category".to_owned(), text(category)),
            ("taxRateBp".to_owned(), Value::Integer(tax)),
            ("lowStockThreshold".to_owned(), Value::Integer(low)),
            ("stock".to_owned(), Value::Integer(stock)),
        ]);
        writes.push(demo_write(
            &database,
            &format!("{shop}/products/{id}"),
            fields,
        ));
    }
    for (id, name, phone, limit, balance) in CUSTOMERS {
        let fields = BTreeMap::from([
            ("name".to_owned(), text(name)),
            ("phone".to_owned(), text(phone)),
            ("phoneDigits".to_owned(), text(&phone.replace(' ', ""))),
            (
                "creditLimit".to_owned(),
                limit.map_or(Value::Null, Value::Integer),
            ),
            ("creditBalance".to_owned(), Value::Integer(balance)),
        ]);
        writes.push(demo_write(
            &database,
            &format!("{shop}/customers/{id}"),
            fields,
        ));
    }
    let count = writes.len();
    run_commit(
        store,
        &database,
        CommitRequest {
            database: None,
            writes,
            transaction: None,
        },
        &AdmitEveryWrite,
    )?;
    Ok(count)
}
