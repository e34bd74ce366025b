//! The counter's records: completing a sale in ONE IndexedDB transaction, the device's bill
//! series, parked bills, and the shop profile as this tablet has it.
//!
//! A completed sale writes the bill, its payments and stock moves, the products' lowered stock,
//! the credit customer's new balance, the audit entry, the device's next bill number and the
//! outbox unit together (DESIGN.md section 4). The number, the products and the customer are
//! read inside the same transaction and handed to the caller's `build` (the shop's pure
//! `complete_sale`), so the stock and balance written are exact even when two tabs sell at once,
//! a credit limit is judged on the balance being written, and a number is never used without
//! its bill or twice. Either the whole sale is on the tablet or none of it is: a refused credit,
//! a full disk or a clash of bill numbers leaves the series, the stock and the balances as they
//! were.
//!
//! Each device has its own series ([`device_series`]), so tablets selling offline never share a
//! number; `meta` key `billSeries/{series}` holds the last number used.

use counterbook_shop::{BillNumber, Customer, Product, Record, ShopSettings, UnitOfWork};
use futures::future::{try_join3, try_join_all, LocalBoxFuture};
use rexie::{KeyRange, TransactionMode};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use wasm_bindgen::JsValue;

use super::outbox::{OutboxRecord, OutboxRecordState};
use super::products::ProductQuery;
use super::schema::{
    AUDIT, BILLS, CUSTOMERS, META, OUTBOX, PARKED_BILLS, PAYMENTS, PRODUCTS, STOCK_MOVES,
};
use super::units::{record_key, record_value};
use super::{from_js, key_range, to_js, StorageError, Store};

/// The `meta` key of the shop profile as last saved or pulled.
pub(super) const SHOP_SETTINGS_KEY: &str = "shopSettings";

/// Why a sale was not recorded. Nothing of it is kept in any case.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordSaleError<E> {
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The sale itself is refused (the shop's rules, e.g. credit over the limit).
    #[error("{0}")]
    Refused(E),
    #[error("The customer is not on this tablet.")]
    UnknownCustomer,
    #[error("The bill series cannot give a number: {0}")]
    Series(counterbook_shop::series::SeriesError),
}

/// A bill put aside at the counter, to be finished later. Local to this tablet, never synced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParkedBill {
    pub id: String,
    pub parked_at_millis: i64,
    pub cart: counterbook_shop::cart::Cart,
    #[serde(default)]
    pub customer: Option<Customer>,
}

/// This device's bill series: `T` and five characters from the random part of its id (UUID
/// v7), in an alphabet without look-alikes. Two tablets share a series with a chance of one in
/// 33 million; a shop can still tell them apart by the device on each bill.
pub fn device_series(device_id: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let hex: String = device_id.chars().filter(char::is_ascii_hexdigit).collect();
    // The last 12 hex digits of a UUID v7 are random.
    let tail = &hex[hex.len().saturating_sub(7)..];
    let mut value = u64::from_str_radix(tail, 16).unwrap_or(0);
    let mut series = String::from("T");
    for _ in 0..5 {
        series.push(char::from(ALPHABET[(value % 32) as usize]));
        value /= 32;
    }
    series
}

fn series_key(series: &str) -> JsValue {
    JsValue::from_str(&format!("billSeries/{series}"))
}

fn rexie<E>(error: rexie::Error) -> RecordSaleError<E> {
    RecordSaleError::Storage(StorageError::from_rexie(error))
}

/// A customer as stored: with the folded name the `nameKey` index reads, and the phone's
/// digits for the `phone` index.
pub(super) fn customer_value(customer: &Customer) -> Result<JsValue, StorageError> {
    let mut record = serde_json::to_value(customer)
        .map_err(|e| StorageError::Transaction(format!("cannot encode a customer: {e}")))?;
    if let Some(fields) = record.as_object_mut() {
        fields.insert(
            "nameKey".into(),
            counterbook_shop::product::name_key(&customer.name).into(),
        );
        let digits = customer
            .phone
            .as_deref()
            .map(counterbook_shop::customer::phone_digits);
        fields.insert("phoneDigits".into(), digits.into());
    }
    to_js(&record)
}

/// The key range of every string key that starts with `prefix`.
fn prefix_range(prefix: &str) -> Result<KeyRange, StorageError> {
    key_range(KeyRange::bound(
        &JsValue::from_str(prefix),
        &JsValue::from_str(&format!("{prefix}\u{ffff}")),
        Some(false),
        Some(false),
    ))
}

/// The values of `index_name` whose key starts with `prefix`, at most `limit`, inside the
/// caller's transaction.
async fn prefix_values(
    store: &rexie::Store,
    index_name: &str,
    prefix: &str,
    limit: u32,
) -> Result<Vec<JsValue>, StorageError> {
    let range = prefix_range(prefix)?;
    store
        .index(index_name)
        .map_err(StorageError::from_rexie)?
        .get_all(Some(range), Some(limit))
        .await
        .map_err(StorageError::from_rexie)
}

fn decode_all<T: serde::de::DeserializeOwned>(
    values: Vec<JsValue>,
) -> Result<Vec<T>, StorageError> {
    values.into_iter().map(from_js).collect()
}

impl Store {
    /// The last bill number this device used in `series`, if any.
    pub async fn last_bill_number(&self, series: &str) -> Result<Option<BillNumber>, StorageError> {
        let transaction = self.transaction(&[META], TransactionMode::ReadOnly)?;
        let meta = transaction.store(META).map_err(StorageError::from_rexie)?;
        let last = meta
            .get(series_key(series))
            .await
            .map_err(StorageError::from_rexie)?
            .and_then(|value| value.as_f64());
        Ok(last.map(|number| BillNumber {
            series: series.to_owned(),
            number: number as u64,
        }))
    }

    /// Records a completed sale in ONE transaction (see the module's documentation): reads the
    /// next number in `series`, the products and the customer, lets `build` make the sale's
    /// unit of work from them, and writes it all.
    pub async fn record_sale<E>(
        &self,
        series: &str,
        product_ids: &[String],
        customer_id: Option<&str>,
        build: impl FnOnce(&BillNumber, &[Product], Option<&Customer>) -> Result<UnitOfWork, E>,
    ) -> Result<(BillNumber, UnitOfWork), RecordSaleError<E>> {
        let stores = [
            AUDIT,
            BILLS,
            CUSTOMERS,
            META,
            OUTBOX,
            PAYMENTS,
            PRODUCTS,
            STOCK_MOVES,
        ];
        let transaction = self.transaction(&stores, TransactionMode::ReadWrite)?;
        let outcome = async {
            let store = |name: &str| transaction.store(name).map_err(rexie::<E>);
            let meta = store(META)?;
            let products_store = store(PRODUCTS)?;
            let customers = store(CUSTOMERS)?;
            // The reads go out together, then the writes together: a sale costs two round trips
            // to IndexedDB's backend, not one per record (IndexedDB runs them in order).
            let customer_read = async {
                match customer_id {
                    None => Ok(None),
                    Some(id) => customers.get(JsValue::from_str(id)).await.map(Some),
                }
            };
            let (last, product_values, customer_value) = try_join3(
                meta.get(series_key(series)),
                try_join_all(
                    product_ids
                        .iter()
                        .map(|id| products_store.get(JsValue::from_str(id))),
                ),
                customer_read,
            )
            .await
            .map_err(rexie)?;
            let last = last.and_then(|value| value.as_f64());
            let number = match last {
                None => BillNumber::first(series),
                Some(last) => BillNumber {
                    series: series.to_owned(),
                    number: last as u64,
                }
                .next(),
            }
            .map_err(RecordSaleError::Series)?;
            // A product deleted meanwhile is still sold; only its local count is gone. The
            // stored records stay at hand: the products put again keep their base copies.
            let stored_products: HashMap<&str, JsValue> = product_ids
                .iter()
                .map(String::as_str)
                .zip(product_values)
                .filter_map(|(id, value)| Some((id, value.filter(JsValue::is_object)?)))
                .collect();
            let products = product_ids
                .iter()
                .filter_map(|id| stored_products.get(id.as_str()).cloned())
                .map(from_js::<Product>)
                .collect::<Result<Vec<_>, _>>()?;
            let customer = match customer_value {
                None => None,
                Some(value) => Some(from_js::<Customer>(
                    value
                        .filter(|value| !value.is_undefined())
                        .ok_or(RecordSaleError::UnknownCustomer)?,
                )?),
            };
            let work =
                build(&number, &products, customer.as_ref()).map_err(RecordSaleError::Refused)?;

            // (store, value, key, whether it must be new)
            let mut writes: Vec<(rexie::Store, JsValue, Option<JsValue>, bool)> = Vec::new();
            for record in &work.records {
                // Counters as this device now knows them are put; new records are added, so a
                // clash (the bill number's unique index included) fails the whole sale.
                let new = !matches!(record, Record::Product(_) | Record::Customer(_));
                let (store_name, id) = record_key(record);
                let previous = stored_products.get(id).filter(|_| store_name == PRODUCTS);
                writes.push((
                    store(store_name)?,
                    record_value(record, previous)?,
                    None,
                    new,
                ));
            }
            for entry in &work.audit {
                writes.push((store(AUDIT)?, to_js(entry)?, None, true));
            }
            let outbox_record = OutboxRecord {
                id: work.unit.id.clone(),
                unit: work.unit.clone(),
                state: OutboxRecordState::Pending,
                reason: None,
            };
            writes.push((store(OUTBOX)?, to_js(&outbox_record)?, None, true));
            writes.push((
                store(META)?,
                JsValue::from_f64(number.number as f64),
                Some(series_key(series)),
                false,
            ));
            try_join_all(writes.iter().map(
                |(target, value, key, new)| -> LocalBoxFuture<'_, rexie::Result<JsValue>> {
                    if *new {
                        Box::pin(target.add(value, key.as_ref()))
                    } else {
                        Box::pin(target.put(value, key.as_ref()))
                    }
                },
            ))
            .await
            .map_err(rexie)?;
            Ok((number, work))
        }
        .await;
        match outcome {
            Ok(recorded) => {
                Self::finish(transaction, Ok(())).await?;
                let mut changed = super::ChangedDocuments::new();
                for record in &recorded.1.records {
                    let (store_name, id) = record_key(record);
                    changed.insert(store_name, id);
                }
                self.changes.publish(&changed);
                Ok(recorded)
            }
            Err(error) => {
                // Aborting an already-aborted transaction fails; the original error matters.
                let _ = transaction.abort().await;
                Err(error)
            }
        }
    }

    /// The product a scanned code names: by barcode (one index get), else by SKU.
    pub async fn product_for_code(&self, code: &str) -> Result<Option<Product>, StorageError> {
        for index in ["barcode", "sku"] {
            let range = key_range(KeyRange::only(&JsValue::from_str(code)))?;
            let transaction = self.transaction(&[PRODUCTS], TransactionMode::ReadOnly)?;
            let store = transaction
                .store(PRODUCTS)
                .map_err(StorageError::from_rexie)?;
            let values = store
                .index(index)
                .map_err(StorageError::from_rexie)?
                .get_all(Some(range), Some(1))
                .await
                .map_err(StorageError::from_rexie)?;
            if let Some(value) = values.into_iter().next() {
                return from_js(value).map(Some);
            }
        }
        Ok(None)
    }

    /// The counter's search as you type: a product whose barcode or SKU is `text`, then
    /// products whose name starts with it, then (for digits) barcodes that start with it, then
    /// SKUs that do; at most `limit`. Three index ranges with a limit, in ONE read-only
    /// transaction, sent together (one round trip to IndexedDB, not one per range); an exact
    /// barcode or SKU sorts first in its prefix range. Never a scan of the catalogue.
    pub async fn search_products(
        &self,
        text: &str,
        limit: u32,
    ) -> Result<Vec<Product>, StorageError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let key = counterbook_shop::product::name_key(text);
        let digits = text.chars().all(|c| c.is_ascii_digit());
        let transaction = self.transaction(&[PRODUCTS], TransactionMode::ReadOnly)?;
        let store = transaction
            .store(PRODUCTS)
            .map_err(StorageError::from_rexie)?;
        let barcode_limit = if digits { limit } else { 1 };
        let (by_barcode, by_sku, by_name) = try_join3(
            prefix_values(&store, "barcode", text, barcode_limit),
            prefix_values(&store, "sku", text, limit),
            ProductQuery {
                name_prefix: key,
                ..ProductQuery::default()
            }
            .first_values(&store, limit),
        )
        .await?;
        let by_barcode = decode_all::<Product>(by_barcode)?;
        let by_sku = decode_all::<Product>(by_sku)?;
        let by_name = decode_all::<Product>(by_name)?;
        let exact_barcode = by_barcode
            .iter()
            .filter(|p| p.barcodes.iter().any(|b| b == text))
            .take(1);
        let exact_sku = by_sku
            .iter()
            .filter(|p| p.sku.as_deref() == Some(text))
            .take(1);
        let barcode_prefixes = by_barcode.iter().filter(|_| digits);
        let mut found: Vec<Product> = Vec::new();
        for product in exact_barcode
            .chain(exact_sku)
            .chain(by_name.iter())
            .chain(barcode_prefixes)
            .chain(by_sku.iter())
        {
            if found.len() >= limit as usize {
                break;
            }
            if !found.iter().any(|p| p.id == product.id) {
                found.push(product.clone());
            }
        }
        Ok(found)
    }

    /// Customers whose phone digits or name start with `text`, at most `limit` of each.
    pub async fn find_customers(
        &self,
        text: &str,
        limit: u32,
    ) -> Result<Vec<Customer>, StorageError> {
        let text = text.trim();
        let digits = counterbook_shop::customer::phone_digits(text);
        let mut found: Vec<Customer> = Vec::new();
        if !digits.is_empty()
            && digits.len() * 2 >= text.chars().filter(|c| !c.is_whitespace()).count()
        {
            found = self
                .index_prefix(CUSTOMERS, "phone", &digits, limit)
                .await?;
        }
        let key = counterbook_shop::product::name_key(text);
        if !key.is_empty() {
            for customer in self
                .index_prefix::<Customer>(CUSTOMERS, "nameKey", &key, limit)
                .await?
            {
                if !found.iter().any(|c| c.id == customer.id) {
                    found.push(customer);
                }
            }
        }
        found.retain(|customer| !customer.deleted);
        Ok(found)
    }

    /// Up to `limit` records whose `index` key starts with `prefix`, in index order.
    pub(super) async fn index_prefix<T: serde::de::DeserializeOwned>(
        &self,
        store_name: &str,
        index_name: &str,
        prefix: &str,
        limit: u32,
    ) -> Result<Vec<T>, StorageError> {
        let range = prefix_range(prefix)?;
        let transaction = self.transaction(&[store_name], TransactionMode::ReadOnly)?;
        let store = transaction
            .store(store_name)
            .map_err(StorageError::from_rexie)?;
        let index = store.index(index_name).map_err(StorageError::from_rexie)?;
        let values = index
            .get_all(Some(range), Some(limit))
            .await
            .map_err(StorageError::from_rexie)?;
        values.into_iter().map(from_js).collect()
    }

    /// A bill by id.
    pub async fn bill(&self, id: &str) -> Result<Option<counterbook_shop::Bill>, StorageError> {
        self.get_by_key(BILLS, id).await
    }

    /// A bill by its number (`T2-000123`).
    pub async fn bill_by_number(
        &self,
        number: &str,
    ) -> Result<Option<counterbook_shop::Bill>, StorageError> {
        let range = key_range(KeyRange::only(&JsValue::from_str(number)))?;
        Ok(self
            .index_lookup(BILLS, "number", range)
            .await?
            .into_iter()
            .next())
    }

    /// A bill's payment records (one per method), as they stand now: a UPI payment confirmed
    /// after the sale says so here, never on the final bill.
    pub async fn payments_of_bill(
        &self,
        bill_id: &str,
    ) -> Result<Vec<counterbook_shop::PaymentRecord>, StorageError> {
        let range = key_range(KeyRange::only(&JsValue::from_str(bill_id)))?;
        self.index_lookup(PAYMENTS, "billId", range).await
    }

    /// A customer by id.
    pub async fn customer(&self, id: &str) -> Result<Option<Customer>, StorageError> {
        self.get_by_key(CUSTOMERS, id).await
    }

    async fn get_by_key<T: serde::de::DeserializeOwned>(
        &self,
        store_name: &str,
        key: &str,
    ) -> Result<Option<T>, StorageError> {
        let transaction = self.transaction(&[store_name], TransactionMode::ReadOnly)?;
        let store = transaction
            .store(store_name)
            .map_err(StorageError::from_rexie)?;
        match store
            .get(JsValue::from_str(key))
            .await
            .map_err(StorageError::from_rexie)?
        {
            Some(value) if !value.is_undefined() => from_js(value).map(Some),
            _ => Ok(None),
        }
    }

    /// Parks a bill (or replaces a parked bill with the same id).
    pub async fn park_bill(&self, bill: &ParkedBill) -> Result<(), StorageError> {
        let transaction = self.transaction(&[PARKED_BILLS], TransactionMode::ReadWrite)?;
        let outcome = async {
            transaction
                .store(PARKED_BILLS)
                .map_err(StorageError::from_rexie)?
                .put(&to_js(bill)?, None)
                .await
                .map(|_| ())
                .map_err(StorageError::from_rexie)
        }
        .await;
        Self::finish(transaction, outcome).await
    }

    /// The parked bills, oldest first.
    pub async fn parked_bills(&self) -> Result<Vec<ParkedBill>, StorageError> {
        let mut bills: Vec<ParkedBill> = self.all(PARKED_BILLS).await?;
        counterbook_firestore_wire::sort::sort_by(&mut bills, |a, b| {
            a.parked_at_millis.cmp(&b.parked_at_millis)
        });
        Ok(bills)
    }

    /// Takes a parked bill off the shelf (it was resumed).
    pub async fn unpark_bill(&self, id: &str) -> Result<(), StorageError> {
        self.delete_key(PARKED_BILLS, id).await
    }

    /// The shop profile as last saved or pulled on this tablet (defaults before that).
    pub async fn shop_settings(&self) -> Result<Option<ShopSettings>, StorageError> {
        let transaction = self.transaction(&[META], TransactionMode::ReadOnly)?;
        let meta = transaction.store(META).map_err(StorageError::from_rexie)?;
        match meta
            .get(JsValue::from_str(SHOP_SETTINGS_KEY))
            .await
            .map_err(StorageError::from_rexie)?
        {
            Some(value) if !value.is_undefined() => from_js(value).map(Some),
            _ => Ok(None),
        }
    }

    /// Keeps the shop profile on this tablet, with the unit that pushes it, in one transaction,
    /// then announces the profile changed.
    pub async fn save_shop_settings(
        &self,
        settings: &ShopSettings,
        work: &UnitOfWork,
    ) -> Result<(), StorageError> {
        let transaction = self.transaction(&[AUDIT, META, OUTBOX], TransactionMode::ReadWrite)?;
        let outcome = async {
            let store = |name: &str| transaction.store(name).map_err(StorageError::from_rexie);
            store(META)?
                .put(
                    &to_js(settings)?,
                    Some(&JsValue::from_str(SHOP_SETTINGS_KEY)),
                )
                .await
                .map_err(StorageError::from_rexie)?;
            for entry in &work.audit {
                store(AUDIT)?
                    .add(&to_js(entry)?, None)
                    .await
                    .map_err(StorageError::from_rexie)?;
            }
            let record = OutboxRecord {
                id: work.unit.id.clone(),
                unit: work.unit.clone(),
                state: OutboxRecordState::Pending,
                reason: None,
            };
            store(OUTBOX)?
                .add(&to_js(&record)?, None)
                .await
                .map_err(StorageError::from_rexie)?;
            Ok(())
        }
        .await;
        Self::finish(transaction, outcome).await?;
        // Screens showing the profile (the top bar's shop name) follow it at once, offline too.
        let mut changed = super::changes::ChangedDocuments::new();
        changed.insert(
            counterbook_shop::settings::SETTINGS_COLLECTION,
            counterbook_shop::settings::PROFILE_DOCUMENT_ID,
        );
        self.changes.publish(&changed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn each_device_has_its_own_series() {
        let a = device_series("0193a0b0-0000-7000-8000-00000000a1f3");
        let b = device_series("0193a0b0-0000-7000-8000-00000000a1f4");
        assert_ne!(a, b);
        assert_eq!(a.len(), 6);
        assert!(counterbook_shop::series::validate_series(&a).is_ok());
        assert_eq!(a, device_series("0193a0b0-0000-7000-8000-00000000a1f3"));
    }
}
