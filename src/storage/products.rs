//! Products: the indexed lookups a screen makes (by barcode, SKU, name prefix).

use rexie::{KeyRange, TransactionMode};
use wasm_bindgen::JsValue;

use super::schema::PRODUCTS;
use super::{from_js, key_range, Result, StorageError, Store};
use crate::entities::{AuditEntry, EntityRecord};
use crate::model::{name_key, Product};
use counterbook_sync::Unit;

impl Store {
    /// Saves a new product and the unit that will push it, in one transaction.
    pub async fn add_product(
        &self,
        product: &Product,
        audit: &[AuditEntry],
        unit: &Unit,
    ) -> Result<()> {
        self.commit_unit(&[EntityRecord::Product(product.clone())], audit, unit)
            .await
    }

    /// Every product, by name.
    pub async fn products(&self) -> Result<Vec<Product>> {
        let transaction = self.transaction(&[PRODUCTS], TransactionMode::ReadOnly)?;
        let store = transaction
            .store(PRODUCTS)
            .map_err(StorageError::from_rexie)?;
        let index = store.index("name").map_err(StorageError::from_rexie)?;
        let values = index
            .get_all(None, None)
            .await
            .map_err(StorageError::from_rexie)?;
        values.into_iter().map(from_js).collect()
    }

    /// The products whose name starts with `prefix` (case and spacing ignored), by name.
    pub async fn products_with_name_prefix(&self, prefix: &str) -> Result<Vec<Product>> {
        let key = name_key(prefix);
        let range = key_range(KeyRange::bound(
            &JsValue::from_str(&key),
            &JsValue::from_str(&format!("{key}\u{ffff}")),
            Some(false),
            Some(false),
        ))?;
        self.index_lookup(PRODUCTS, "nameKey", range).await
    }

    /// The product a scanner's barcode belongs to, if any.
    pub async fn product_by_barcode(&self, barcode: &str) -> Result<Option<Product>> {
        let range = key_range(KeyRange::only(&JsValue::from_str(barcode)))?;
        Ok(self
            .index_lookup(PRODUCTS, "barcode", range)
            .await?
            .into_iter()
            .next())
    }

    pub async fn product_by_sku(&self, sku: &str) -> Result<Option<Product>> {
        let range = key_range(KeyRange::only(&JsValue::from_str(sku)))?;
        Ok(self
            .index_lookup(PRODUCTS, "sku", range)
            .await?
            .into_iter()
            .next())
    }
}
