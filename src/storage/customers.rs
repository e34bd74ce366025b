//! Customers: lookups by phone.

use rexie::KeyRange;
use wasm_bindgen::JsValue;

use super::schema::CUSTOMERS;
use super::{key_range, Result, Store};
use counterbook_shop::Customer;

impl Store {
    /// Customers by phone number; only the digits count ("+91 98765-43210" = "919876543210").
    pub async fn customers_by_phone(&self, phone: &str) -> Result<Vec<Customer>> {
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        let range = key_range(KeyRange::only(&JsValue::from_str(&digits)))?;
        self.index_lookup(CUSTOMERS, "phone", range).await
    }
}
