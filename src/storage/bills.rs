//! Bills: lookups by day, and the recent bills newest first, a page at a time.

use rexie::{Direction, KeyRange, TransactionMode};
use wasm_bindgen::JsValue;

use super::schema::BILLS;
use super::{from_js, key_range, Result, StorageError, Store};
use counterbook_shop::Bill;

impl Store {
    /// The bills of one local day (`YYYY-MM-DD`).
    pub async fn bills_on_day(&self, day: &str) -> Result<Vec<Bill>> {
        let range = key_range(KeyRange::only(&JsValue::from_str(day)))?;
        self.index_lookup(BILLS, "day", range).await
    }

    /// Up to `limit` bills, newest first, from the newest or from just before the bill
    /// `before` (the last row of the page before): one cursor read backwards over the bills'
    /// keys. Bill ids are UUID v7, made on the device, so their order is the order they were
    /// made in, on every tablet.
    pub async fn recent_bills(&self, before: Option<&str>, limit: u32) -> Result<Vec<Bill>> {
        let range = before
            .map(|id| key_range(KeyRange::upper_bound(&JsValue::from_str(id), Some(true))))
            .transpose()?;
        let transaction = self.transaction(&[BILLS], TransactionMode::ReadOnly)?;
        let store = transaction.store(BILLS).map_err(StorageError::from_rexie)?;
        let rows = store
            .scan(range, Some(limit), None, Some(Direction::Prev))
            .await
            .map_err(StorageError::from_rexie)?;
        rows.into_iter().map(|(_, value)| from_js(value)).collect()
    }

    /// Up to `limit` bills whose number starts with `prefix` (`TK7QXM-0001`), in number order.
    pub async fn bills_with_number_prefix(&self, prefix: &str, limit: u32) -> Result<Vec<Bill>> {
        self.index_prefix(BILLS, "number", prefix, limit).await
    }
}
