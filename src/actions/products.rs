//! The shop's product actions: add, edit, receive or adjust stock, import a catalogue. Each
//! builds its unit of work with `counterbook-shop` (records, audit entry, document writes),
//! checks what only this device's catalogue can tell (a barcode or SKU already in use), and
//! hands the unit whole to the driver, which stores it in one transaction and pushes it.

use counterbook_shop::actions::{self as shop_actions, StockError};
use counterbook_shop::product::ProductError;
use counterbook_shop::{GuardedAction, Product, StockMoveKind};

use super::{check_role, with_approval, with_context, Approval, NeedsApproval};
use crate::storage::{StorageError, Store};
use crate::sync::SyncDriver;

/// Why a product action saved nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProductActionError {
    #[error("Check the product: {0}.")]
    Product(#[from] ProductError),
    #[error("Check the stock: {0}.")]
    Stock(#[from] StockError),
    #[error("The barcode {barcode} is already used by {owner}.")]
    BarcodeTaken { barcode: String, owner: String },
    #[error("The SKU {sku} is already used by {owner}.")]
    SkuTaken { sku: String, owner: String },
    #[error(transparent)]
    NeedsApproval(#[from] NeedsApproval),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

fn new_id() -> String {
    crate::ids::new_id()
}

/// Refuses a barcode or SKU another product already has: a scan must find one product.
/// One index get per code.
pub async fn check_codes_are_free(
    store: &Store,
    product: &Product,
) -> Result<(), ProductActionError> {
    for barcode in &product.barcodes {
        if let Some(owner) = store.product_by_barcode(barcode).await? {
            if owner.id != product.id {
                return Err(ProductActionError::BarcodeTaken {
                    barcode: barcode.clone(),
                    owner: owner.name,
                });
            }
        }
    }
    if let Some(sku) = product.sku.as_deref() {
        if let Some(owner) = store.product_by_sku(sku).await? {
            if owner.id != product.id {
                return Err(ProductActionError::SkuTaken {
                    sku: sku.to_owned(),
                    owner: owner.name,
                });
            }
        }
    }
    Ok(())
}

/// Saves a new product (with its opening stock, if any, as a received stock move) and starts
/// pushing it. `product.id` is replaced by a new id.
pub async fn add_product(
    driver: &SyncDriver,
    mut product: Product,
    approval: Option<&Approval>,
) -> Result<Product, ProductActionError> {
    check_role(driver, GuardedAction::ChangeProducts, approval)?;
    product.id = new_id();
    product.currency = driver.settings().currency.clone();
    check_codes_are_free(driver.store(), &product).await?;
    let work = with_context(driver, |context| {
        shop_actions::add_product(context, &product, &mut new_id)
    })?;
    driver.submit_work(with_approval(work, approval)).await?;
    Ok(product)
}

/// Changes a product's fields (not its stock): a masked write of the fields that changed, from
/// the server version it started from, so a change made meanwhile on another tablet is merged.
pub async fn edit_product(
    driver: &SyncDriver,
    before: &Product,
    after: Product,
    approval: Option<&Approval>,
) -> Result<(), ProductActionError> {
    check_role(driver, GuardedAction::ChangeProducts, approval)?;
    let mut after = after;
    after.id = before.id.clone();
    check_codes_are_free(driver.store(), &after).await?;
    let base = driver
        .base_of(&before.document_path(&driver.settings().shop_id))
        .await?;
    let work = with_context(driver, |context| {
        shop_actions::edit_product(context, before, &after, base, &mut new_id)
    })?;
    if let Some(work) = work {
        driver.submit_work(with_approval(work, approval)).await?;
    }
    Ok(())
}

/// Receives (`quantity` above zero) or adjusts (either sign, with a reason) a product's stock:
/// an increment of its stock counter and a stock move, so two tablets' moves both count.
pub async fn move_stock(
    driver: &SyncDriver,
    product: &Product,
    kind: StockMoveKind,
    quantity: i64,
    reason: Option<&str>,
    approval: Option<&Approval>,
) -> Result<(), ProductActionError> {
    if kind != StockMoveKind::Receive {
        check_role(driver, GuardedAction::AdjustStock, approval)?;
    }
    let work = with_context(driver, |context| {
        shop_actions::move_stock(context, product, kind, quantity, reason, &mut new_id)
    })?;
    driver.submit_work(with_approval(work, approval)).await?;
    Ok(())
}

/// Imports products (already validated by the CSV reader) in as few units as the commit limit
/// allows, each saved in one transaction; `progress(saved, total)` after each unit. Stops at the
/// first unit that cannot be saved, keeping the ones before it.
pub async fn import_products(
    driver: &SyncDriver,
    products: &[Product],
    approval: Option<&Approval>,
    progress: impl Fn(usize, usize),
) -> Result<usize, ProductActionError> {
    // Adding products is a manager's: a cashier's import needs a manager's approval.
    check_role(driver, GuardedAction::ChangeProducts, approval)?;
    let units = with_context(driver, |context| {
        shop_actions::import_products(context, products, &mut new_id)
    });
    let total = products.len();
    let mut saved = 0;
    for work in units {
        let in_unit = work
            .records
            .iter()
            .filter(|record| matches!(record, counterbook_shop::Record::Product(_)))
            .count();
        driver.submit_work(with_approval(work, approval)).await?;
        saved += in_unit;
        progress(saved, total);
    }
    Ok(saved)
}
