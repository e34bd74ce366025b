//! Products: the indexed queries screens make, each costing what it returns. A barcode or SKU
//! is one index get; a list (everything, a name prefix, a category, low stock, and their
//! combinations) is a range of one compound index read a page at a time, by cursor after the
//! last row read or by offset for a jump (skipped from the nearer end); counts come from the index.
//!
//! Every product record is written through [`product_to_js`] (or, pulled, through
//! [`pulled_products_to_js`]), which adds the index-only field
//! `lowStock` (`1` while the stock is at or below the threshold, absent otherwise), so that the
//! low-stock indexes hold exactly the products low on stock (IndexedDB leaves a record out of
//! an index whose key path does not resolve to a key).
//!
//! Since schema 7 a pulled product's record also holds its base copy (the server's version as
//! last pulled, for three-way merges) in its `base` field, in the `bases` record form, instead
//! of a record of its own in `bases`: a pulled product costs one put, not two. A record that
//! shows exactly that version, with no pending unit laid over it, is marked `asPulled`, so the
//! same version pulled again is not written again. Local writes put a product through
//! [`product_record`], which keeps the base copy of the record it replaces. A product the
//! server deleted (its record gone) keeps its base copy in `bases`.

use rexie::{Direction, KeyRange, TransactionMode};
use serde::Serialize;
use wasm_bindgen::JsValue;

use super::bases::BaseCopyRecordOut;
use super::schema::PRODUCTS;
use super::{from_js, key_range, many_to_js, to_js, Result, StorageError, Store};
use crate::entities::BaseCopy;
use crate::model::{name_key, Product};
use counterbook_shop::{AuditEntry, Record};
use counterbook_sync::Unit;

/// The index-only field of products low on stock.
const LOW_STOCK_FIELD: &str = "lowStock";
/// The field of a product's record holding its base copy (schema 7).
const BASE_FIELD: &str = "base";
/// `true` on a product's record that shows its base copy exactly (no pending unit laid over).
const AS_PULLED_FIELD: &str = "asPulled";
/// Sorts after every character a name key holds (JavaScript compares UTF-16 code units).
const AFTER_EVERY_NAME: &str = "\u{ffff}";

/// A product as its IndexedDB record, with the index-only fields.
pub(super) fn product_to_js(product: &Product) -> Result<JsValue> {
    let value = to_js(product)?;
    mark_low_stock(product, &value)?;
    Ok(value)
}

/// A product as its IndexedDB record, keeping the base copy of `previous` (the record it
/// replaces, if any): how every local write puts a product (a unit, a sale, a reversal taken
/// back, a rejected unit), so that a pulled product's base copy stays with it. Such a record
/// is not marked as pulled: it may show pending units.
pub(super) fn product_record(product: &Product, previous: Option<&JsValue>) -> Result<JsValue> {
    let value = product_to_js(product)?;
    if let Some(base) = previous.and_then(embedded_base) {
        embed_base(&value, &base)?;
    }
    Ok(value)
}

/// The base copy's record held in a product's record, if any.
pub(super) fn embedded_base(record: &JsValue) -> Option<JsValue> {
    js_sys::Reflect::get(record, &JsValue::from_str(BASE_FIELD))
        .ok()
        .filter(JsValue::is_object)
}

/// Gives the product record `record` the base copy's record `base`, not marked as pulled: how
/// a local write keeps it ([`product_record`]) and the upgrade to schema 7 moves it in.
pub(super) fn embed_base(record: &JsValue, base: &JsValue) -> Result<()> {
    js_sys::Reflect::set(record, &JsValue::from_str(BASE_FIELD), base)
        .map(|_| ())
        .map_err(|_| StorageError::Transaction("cannot keep a product's base copy".into()))
}

/// Whether a product's record shows its base copy exactly, marked so when it was stored.
pub(super) fn is_as_pulled(record: &JsValue) -> bool {
    js_sys::Reflect::get(record, &JsValue::from_str(AS_PULLED_FIELD))
        .ok()
        .and_then(|value| value.as_bool())
        .unwrap_or(false)
}

/// A pulled product's record: the product shown, its base copy, and whether it shows that
/// copy exactly.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PulledProductRecord<'a> {
    #[serde(flatten)]
    product: &'a Product,
    /// [`LOW_STOCK_FIELD`].
    #[serde(skip_serializing_if = "Option::is_none")]
    low_stock: Option<u8>,
    /// [`BASE_FIELD`].
    base: BaseCopyRecordOut<'a>,
    /// [`AS_PULLED_FIELD`].
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    as_pulled: bool,
}

/// Pulled products' records, in order, made at once (see [`many_to_js`]): each product as
/// shown, with its base copy and whether it shows that copy exactly.
pub(super) fn pulled_products_to_js(
    products: &[(&Product, &BaseCopy, bool)],
) -> Result<Vec<JsValue>> {
    let records = products
        .iter()
        .map(|(product, base, as_pulled)| {
            Ok(PulledProductRecord {
                product,
                low_stock: product.is_low_on_stock().then_some(1),
                base: BaseCopyRecordOut::of(base)?,
                as_pulled: *as_pulled,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    many_to_js(&records)
}

fn mark_low_stock(product: &Product, value: &JsValue) -> Result<()> {
    if product.is_low_on_stock() {
        js_sys::Reflect::set(
            value,
            &JsValue::from_str(LOW_STOCK_FIELD),
            &JsValue::from_f64(1.0),
        )
        .map_err(|_| StorageError::Transaction("cannot mark a product low on stock".into()))?;
    }
    Ok(())
}

/// Which products a list shows, always in name order (ties by id).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProductQuery {
    /// Only names starting with this (case and spacing ignored); empty for all.
    pub name_prefix: String,
    /// Only this category.
    pub category: Option<String>,
    /// Only products at or below their low-stock threshold.
    pub low_stock_only: bool,
}

/// Where a row sits in a list: the place to continue after.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductPosition {
    pub name_key: String,
    pub id: String,
}

impl ProductPosition {
    pub fn of(product: &Product) -> ProductPosition {
        ProductPosition {
            name_key: product.name_key.clone(),
            id: product.id.clone(),
        }
    }
}

impl ProductQuery {
    /// Whether `product` belongs in this list (for changes announced while it is shown).
    pub fn matches(&self, product: &Product) -> bool {
        product.name_key.starts_with(&name_key(&self.name_prefix))
            && self
                .category
                .as_ref()
                .is_none_or(|category| product.category.as_ref() == Some(category))
            && (!self.low_stock_only || product.is_low_on_stock())
    }

    /// The compound index that serves this query; its keys end with `[nameKey, id]`.
    fn index(&self) -> &'static str {
        match (self.low_stock_only, self.category.is_some()) {
            (false, false) => "byName",
            (true, false) => "lowStockByName",
            (false, true) => "byCategory",
            (true, true) => "lowStockByCategory",
        }
    }

    /// The key parts before `[nameKey, id]`.
    fn leading_parts(&self) -> Vec<JsValue> {
        let mut parts = Vec::new();
        if self.low_stock_only {
            parts.push(JsValue::from_f64(1.0));
        }
        if let Some(category) = &self.category {
            parts.push(JsValue::from_str(category));
        }
        parts
    }

    fn key(&self, tail: &[&str]) -> JsValue {
        let key = js_sys::Array::new();
        for part in self.leading_parts() {
            key.push(&part);
        }
        for part in tail {
            key.push(&JsValue::from_str(part));
        }
        key.into()
    }

    /// The first `limit` records of this query, in name order, inside the caller's transaction
    /// on `products` (one index range read).
    pub(super) async fn first_values(
        &self,
        products: &rexie::Store,
        limit: u32,
    ) -> Result<Vec<JsValue>> {
        products
            .index(self.index())
            .map_err(StorageError::from_rexie)?
            .get_all(Some(self.range(None)?), Some(limit))
            .await
            .map_err(StorageError::from_rexie)
    }

    /// Every key of this query, or those after `after`.
    fn range(&self, after: Option<&ProductPosition>) -> Result<KeyRange> {
        let prefix = name_key(&self.name_prefix);
        let upper = self.key(&[&format!("{prefix}{AFTER_EVERY_NAME}")]);
        let (lower, open) = match after {
            Some(position) => (self.key(&[&position.name_key, &position.id]), true),
            None => (self.key(&[&prefix]), false),
        };
        key_range(KeyRange::bound(&lower, &upper, Some(open), Some(false)))
    }
}

impl Store {
    /// Saves a new product and the unit that will push it, in one transaction.
    pub async fn add_product(
        &self,
        product: &Product,
        audit: &[AuditEntry],
        unit: &Unit,
    ) -> Result<()> {
        self.commit_unit(&[Record::Product(product.clone())], audit, unit)
            .await
    }

    /// How many products `query` lists.
    pub async fn count_products(&self, query: &ProductQuery) -> Result<u32> {
        let transaction = self.transaction(&[PRODUCTS], TransactionMode::ReadOnly)?;
        let store = transaction
            .store(PRODUCTS)
            .map_err(StorageError::from_rexie)?;
        let index = store
            .index(query.index())
            .map_err(StorageError::from_rexie)?;
        index
            .count(Some(query.range(None)?))
            .await
            .map_err(StorageError::from_rexie)
    }

    /// Up to `limit` products of `query`, in name order, from the start or after `after`
    /// (one cursor range read).
    pub async fn products_after(
        &self,
        query: &ProductQuery,
        after: Option<&ProductPosition>,
        limit: u32,
    ) -> Result<Vec<Product>> {
        self.products_in_index(query.index(), Some(query.range(after)?), Some(limit))
            .await
    }

    /// Up to `limit` products of the index `index_name` in `range`, in its order: one read.
    async fn products_in_index(
        &self,
        index_name: &str,
        range: Option<KeyRange>,
        limit: Option<u32>,
    ) -> Result<Vec<Product>> {
        let transaction = self.transaction(&[PRODUCTS], TransactionMode::ReadOnly)?;
        let store = transaction
            .store(PRODUCTS)
            .map_err(StorageError::from_rexie)?;
        let index = store.index(index_name).map_err(StorageError::from_rexie)?;
        let values = index
            .get_all(range, limit)
            .await
            .map_err(StorageError::from_rexie)?;
        values.into_iter().map(from_js).collect()
    }

    /// Up to `limit` products of `query` from row `offset` on, of the `count` rows it lists: a
    /// jump. The cursor skips index entries without reading their records, from whichever end
    /// of the list is nearer (a jump to the last rows skips from the end backwards), so a jump
    /// costs at most half the list's entries. Rows added or removed since `count` was read
    /// shift the rows a jump finds, as they shift the rows of a jump from the front; the list
    /// counts again and reads again on every change.
    pub async fn products_at_offset(
        &self,
        query: &ProductQuery,
        offset: u32,
        limit: u32,
        count: u32,
    ) -> Result<Vec<Product>> {
        if offset == 0 {
            return self.products_after(query, None, limit).await;
        }
        let end = offset.saturating_add(limit).min(count);
        let after_the_page = count.saturating_sub(end);
        let backwards = offset < count && after_the_page < offset;
        let transaction = self.transaction(&[PRODUCTS], TransactionMode::ReadOnly)?;
        let store = transaction
            .store(PRODUCTS)
            .map_err(StorageError::from_rexie)?;
        let index = store
            .index(query.index())
            .map_err(StorageError::from_rexie)?;
        let range = Some(query.range(None)?);
        let mut rows = if backwards {
            let skip = Some(after_the_page).filter(|skip| *skip > 0);
            index
                .scan(range, Some(end - offset), skip, Some(Direction::Prev))
                .await
        } else {
            index.scan(range, Some(limit), Some(offset), None).await
        }
        .map_err(StorageError::from_rexie)?;
        if backwards {
            rows.reverse();
        }
        rows.into_iter().map(|(_, value)| from_js(value)).collect()
    }

    /// The products with these ids that exist, in one transaction (one get each).
    pub async fn products_by_ids(&self, ids: &[String]) -> Result<Vec<Product>> {
        let transaction = self.transaction(&[PRODUCTS], TransactionMode::ReadOnly)?;
        let store = transaction
            .store(PRODUCTS)
            .map_err(StorageError::from_rexie)?;
        let mut products = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(value) = store
                .get(JsValue::from_str(id))
                .await
                .map_err(StorageError::from_rexie)?
                .filter(|value| !value.is_undefined())
            {
                products.push(from_js(value)?);
            }
        }
        Ok(products)
    }

    /// The product with this id, if any.
    pub async fn product(&self, id: &str) -> Result<Option<Product>> {
        Ok(self
            .products_by_ids(&[id.to_owned()])
            .await?
            .into_iter()
            .next())
    }

    /// Every product, by name. Reads the whole catalogue: only for exports and tests, never
    /// for a screen.
    pub async fn products(&self) -> Result<Vec<Product>> {
        self.products_in_index("byName", None, None).await
    }

    /// Up to `limit` products whose name starts with `prefix` (case and spacing ignored), by
    /// name: one index range.
    pub async fn products_with_name_prefix(
        &self,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<Product>> {
        let query = ProductQuery {
            name_prefix: prefix.to_owned(),
            ..ProductQuery::default()
        };
        self.products_after(&query, None, limit).await
    }

    /// The product a scanner's barcode belongs to, if any: one index get.
    pub async fn product_by_barcode(&self, barcode: &str) -> Result<Option<Product>> {
        self.product_by_index("barcode", barcode).await
    }

    /// The product with this SKU, if any: one index get.
    pub async fn product_by_sku(&self, sku: &str) -> Result<Option<Product>> {
        self.product_by_index("sku", sku).await
    }

    async fn product_by_index(&self, index_name: &str, key: &str) -> Result<Option<Product>> {
        if key.is_empty() {
            return Ok(None);
        }
        let transaction = self.transaction(&[PRODUCTS], TransactionMode::ReadOnly)?;
        let store = transaction
            .store(PRODUCTS)
            .map_err(StorageError::from_rexie)?;
        let index = store.index(index_name).map_err(StorageError::from_rexie)?;
        index
            .get(JsValue::from_str(key))
            .await
            .map_err(StorageError::from_rexie)?
            .filter(|value| !value.is_undefined())
            .map(from_js)
            .transpose()
    }

    /// The categories products have, sorted: one index read per category (each skips to the
    /// first key after the previous category).
    pub async fn product_categories(&self) -> Result<Vec<String>> {
        let transaction = self.transaction(&[PRODUCTS], TransactionMode::ReadOnly)?;
        let store = transaction
            .store(PRODUCTS)
            .map_err(StorageError::from_rexie)?;
        let index = store
            .index("byCategory")
            .map_err(StorageError::from_rexie)?;
        let mut categories: Vec<String> = Vec::new();
        loop {
            let range = match categories.last() {
                // Arrays sort after strings, so `[category, []]` follows every key of it.
                Some(last) => {
                    let after: JsValue =
                        js_sys::Array::of2(&JsValue::from_str(last), &js_sys::Array::new().into())
                            .into();
                    Some(key_range(KeyRange::lower_bound(&after, Some(true)))?)
                }
                None => None,
            };
            let next = index
                .get_all(range, Some(1))
                .await
                .map_err(StorageError::from_rexie)?;
            let Some(value) = next.into_iter().next() else {
                break;
            };
            let product: Product = from_js(value)?;
            match product.category {
                Some(category) => categories.push(category),
                None => break,
            }
        }
        Ok(categories)
    }

    /// Puts products straight into the store in ONE transaction, with no outbox unit: for
    /// seeding a catalogue in tests and benchmarks (a real import goes through units). A
    /// product already held keeps its base copy.
    pub async fn seed_products(&self, products: &[Product]) -> Result<()> {
        self.seed_records(PRODUCTS, products, |product| &product.id, product_record)
            .await
    }
}

/// Codes already in use: each code with the name of the product that has it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TakenCodes {
    pub barcodes: std::collections::BTreeMap<String, String>,
    pub skus: std::collections::BTreeMap<String, String>,
}

impl Store {
    /// Which of these barcodes and SKUs products already have, in one transaction (one index
    /// get per code): the CSV import's check against the catalogue.
    pub async fn taken_codes(&self, barcodes: &[String], skus: &[String]) -> Result<TakenCodes> {
        let transaction = self.transaction(&[PRODUCTS], TransactionMode::ReadOnly)?;
        let store = transaction
            .store(PRODUCTS)
            .map_err(StorageError::from_rexie)?;
        let mut taken = TakenCodes::default();
        for (index_name, codes, found) in [
            ("barcode", barcodes, &mut taken.barcodes),
            ("sku", skus, &mut taken.skus),
        ] {
            let index = store.index(index_name).map_err(StorageError::from_rexie)?;
            for code in codes.iter().filter(|code| !code.is_empty()) {
                if let Some(value) = index
                    .get(JsValue::from_str(code))
                    .await
                    .map_err(StorageError::from_rexie)?
                    .filter(|value| !value.is_undefined())
                {
                    let owner: Product = from_js(value)?;
                    found.insert(code.clone(), owner.name);
                }
            }
        }
        Ok(taken)
    }
}
