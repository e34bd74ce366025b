//! The shop's product actions (add, edit, move stock), each turned into ONE unit of work:
//! the entity records as this device now shows them, an audit entry, and the document writes
//! the sync engine pushes. They hand the finished unit to the driver; they never sync.

use counterbook_sync::{DocumentWrite, Unit};

use crate::entities::{AuditEntry, EntityRecord, StockMove, StockMoveKind};
use crate::model::{add_product_unit, Product};
use crate::storage::StorageError;
use crate::sync::SyncDriver;

fn now_millis() -> i64 {
    js_sys::Date::now() as i64
}

fn audit_entry(
    driver: &SyncDriver,
    action: &str,
    path: &str,
    before: Option<&Product>,
    after: Option<&Product>,
) -> AuditEntry {
    AuditEntry {
        id: crate::ids::new_id(),
        at_millis: now_millis(),
        device_id: driver.device_id().to_owned(),
        cashier: None,
        action: action.into(),
        path: path.into(),
        before: before.map(Product::to_fields),
        after: after.map(Product::to_fields),
    }
}

/// Changes a product's name and price: a masked write that checks the version it started
/// from, so a change made meanwhile on another tablet is merged, not overwritten.
pub async fn edit_product(
    driver: &SyncDriver,
    product: &Product,
    name: &str,
    price_minor: i64,
) -> Result<(), StorageError> {
    let shop = &driver.settings().shop_id;
    let path = product.document_path(shop);
    let mut edited = product.clone();
    edited.name = name.trim().to_owned();
    edited.name_key = crate::model::name_key(&edited.name);
    edited.price_minor = price_minor;
    let fields = edited.to_fields();
    let write = DocumentWrite::patch(
        path.clone(),
        fields
            .into_iter()
            .filter(|(field, _)| field == "name" || field == "price")
            .collect(),
        driver.base_of(&path).await?,
    );
    let unit = Unit {
        id: crate::ids::new_id(),
        label: format!("Change {} to {}", product.name, edited.name),
        writes: vec![write],
        created_at_millis: now_millis(),
    };
    let audit = audit_entry(driver, "product.edit", &path, Some(product), Some(&edited));
    driver
        .submit_unit(&[EntityRecord::Product(edited)], &[audit], unit)
        .await
}

/// Moves stock: `quantity` units sold (negative) or received (positive). Stock travels as
/// an `increment`, so two tablets selling the last items both count.
pub async fn move_stock(
    driver: &SyncDriver,
    product: &Product,
    kind: StockMoveKind,
    quantity: i64,
) -> Result<(), StorageError> {
    let shop = &driver.settings().shop_id;
    let path = product.document_path(shop);
    let stock_move = StockMove {
        id: crate::ids::new_id(),
        product_id: product.id.clone(),
        kind,
        quantity,
        bill_id: None,
        device_id: driver.device_id().to_owned(),
        at_millis: now_millis(),
    };
    let mut moved = product.clone();
    moved.stock_on_hand += quantity;
    let move_fields = std::collections::BTreeMap::from([
        (
            "productId".to_string(),
            counterbook_firestore_wire::Value::String(product.id.clone()),
        ),
        (
            "quantity".to_string(),
            counterbook_firestore_wire::Value::Integer(quantity),
        ),
        (
            "kind".to_string(),
            counterbook_firestore_wire::Value::String(format!("{kind:?}").to_lowercase()),
        ),
        (
            "device".to_string(),
            counterbook_firestore_wire::Value::String(driver.device_id().to_owned()),
        ),
        (
            "deleted".to_string(),
            counterbook_firestore_wire::Value::Boolean(false),
        ),
    ]);
    let unit = Unit {
        id: crate::ids::new_id(),
        label: format!(
            "{} {} × {}",
            if quantity < 0 { "Sell" } else { "Receive" },
            quantity.abs(),
            product.name
        ),
        writes: vec![
            // Counters only: a masked write of no field, so the rest of the product stays.
            DocumentWrite::increment(
                path.clone(),
                std::collections::BTreeMap::from([("stock".to_string(), quantity)]),
            ),
            DocumentWrite::create(
                format!("shops/{shop}/stockMoves/{}", stock_move.id),
                move_fields,
            ),
        ],
        created_at_millis: now_millis(),
    };
    let audit = audit_entry(driver, "stock.move", &path, Some(product), Some(&moved));
    driver
        .submit_unit(
            &[
                EntityRecord::Product(moved),
                EntityRecord::StockMove(stock_move),
            ],
            &[audit],
            unit,
        )
        .await
}

/// Saves a new product with its outbox unit, shows it, and starts pushing it.
pub async fn add_product(
    driver: &SyncDriver,
    name: &str,
    price_minor: i64,
) -> Result<Product, StorageError> {
    let settings = &driver.settings();
    let product = Product::new(
        crate::ids::new_id(),
        name.trim(),
        price_minor,
        &settings.currency,
    );
    let unit = add_product_unit(
        crate::ids::new_id(),
        &product,
        &settings.shop_id,
        now_millis(),
    );
    let path = product.document_path(&settings.shop_id);
    let audit = audit_entry(driver, "product.create", &path, None, Some(&product));
    driver
        .submit_unit(&[EntityRecord::Product(product.clone())], &[audit], unit)
        .await?;
    Ok(product)
}
