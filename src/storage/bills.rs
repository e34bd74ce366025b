//! Bills: lookups by day, and the bills newest first for the bills page's virtualized list: a
//! count, and a page at a time by cursor (backwards over the bills' keys) or by offset for a
//! jump. The key is the bill's UUID v7 id, made on the device when the bill was: the store's
//! own key order is the order of time, on every tablet, bills pulled from others included.

use rexie::{Direction, KeyRange, TransactionMode};
use wasm_bindgen::JsValue;

use super::schema::BILLS;
use super::{from_js, key_range, to_js, Result, StorageError, Store};
use counterbook_shop::Bill;

impl Store {
    /// The bills of one local day (`YYYY-MM-DD`).
    pub async fn bills_on_day(&self, day: &str) -> Result<Vec<Bill>> {
        let range = key_range(KeyRange::only(&JsValue::from_str(day)))?;
        self.index_lookup(BILLS, "day", range).await
    }

    /// How many bills the tablet holds (one count of the store, no record read).
    pub async fn count_bills(&self) -> Result<u32> {
        let transaction = self.transaction(&[BILLS], TransactionMode::ReadOnly)?;
        let store = transaction.store(BILLS).map_err(StorageError::from_rexie)?;
        store.count(None).await.map_err(StorageError::from_rexie)
    }

    /// Up to `limit` bills, newest first, from the newest or from just before the bill
    /// `before` (the last row of the page before): one cursor read backwards over the bills'
    /// keys. Bill ids are UUID v7, made on the device, so their order is the order they were
    /// made in, on every tablet.
    pub async fn recent_bills(&self, before: Option<&str>, limit: u32) -> Result<Vec<Bill>> {
        let range = before
            .map(|id| key_range(KeyRange::upper_bound(&JsValue::from_str(id), Some(true))))
            .transpose()?;
        self.bills_backwards(range, limit, None).await
    }

    /// Up to `limit` bills, newest first, from the `offset`-th newest on, of the `count` bills
    /// stored: a jump of the list to where it was scrolled. The cursor skips keys without
    /// reading their bills, from whichever end is nearer (a jump to the oldest bills skips
    /// forwards from the oldest), so a jump costs at most half the keys. Bills stored since
    /// `count` was read shift the rows a jump finds, as they shift a jump from the newest; the
    /// list counts again and reads again on every change.
    pub async fn bills_at_offset(&self, offset: u32, limit: u32, count: u32) -> Result<Vec<Bill>> {
        let end = offset.saturating_add(limit).min(count);
        let older_than_the_page = count.saturating_sub(end);
        if offset == 0 || offset >= count || offset <= older_than_the_page {
            return self.bills_backwards(None, limit, Some(offset)).await;
        }
        let transaction = self.transaction(&[BILLS], TransactionMode::ReadOnly)?;
        let store = transaction.store(BILLS).map_err(StorageError::from_rexie)?;
        let skip = Some(older_than_the_page).filter(|skip| *skip > 0);
        let mut rows = store
            .scan(None, Some(end - offset), skip, Some(Direction::Next))
            .await
            .map_err(StorageError::from_rexie)?;
        rows.reverse();
        rows.into_iter().map(|(_, value)| from_js(value)).collect()
    }

    async fn bills_backwards(
        &self,
        range: Option<KeyRange>,
        limit: u32,
        offset: Option<u32>,
    ) -> Result<Vec<Bill>> {
        let transaction = self.transaction(&[BILLS], TransactionMode::ReadOnly)?;
        let store = transaction.store(BILLS).map_err(StorageError::from_rexie)?;
        let rows = store
            .scan(
                range,
                Some(limit),
                offset.filter(|offset| *offset > 0),
                Some(Direction::Prev),
            )
            .await
            .map_err(StorageError::from_rexie)?;
        rows.into_iter().map(|(_, value)| from_js(value)).collect()
    }

    /// Up to `limit` bills whose number starts with `prefix` (`TK7QXM-0001`), in number order.
    pub async fn bills_with_number_prefix(&self, prefix: &str, limit: u32) -> Result<Vec<Bill>> {
        self.index_prefix(BILLS, "number", prefix, limit).await
    }

    /// Puts bills straight into the store in one transaction, as a pull would (tests and
    /// benchmarks fill a tablet this way).
    pub async fn seed_bills(&self, bills: &[Bill]) -> Result<()> {
        self.seed_records(BILLS, bills, |bill| &bill.id, |bill, _| to_js(bill))
            .await
    }
}
