//! Bills: lookups by day.

use rexie::KeyRange;
use wasm_bindgen::JsValue;

use super::schema::BILLS;
use super::{key_range, Result, Store};
use counterbook_shop::Bill;

impl Store {
    /// The bills of one local day (`YYYY-MM-DD`).
    pub async fn bills_on_day(&self, day: &str) -> Result<Vec<Bill>> {
        let range = key_range(KeyRange::only(&JsValue::from_str(day)))?;
        self.index_lookup(BILLS, "day", range).await
    }
}
