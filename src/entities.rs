//! The shop's other records (DESIGN.md section 3) as this device stores them: customers, bills,
//! payments, expenses, stock moves and the audit trail, plus the base copies kept for the
//! three-way merge (conflict inbox entries are the sync engine's `ConflictEntry`).
//!
//! Money is always an integer count of minor units; quantities are integers in the product's
//! smallest unit (milli-units for loose goods). Ids are UUID v7 made on the device.

use std::collections::BTreeMap;

use counterbook_firestore_wire::{Document, DocumentName, Timestamp, Value};
use counterbook_sync::BaseVersion;
use serde::{Deserialize, Serialize};

/// A customer, with the credit (khata) balance they owe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    pub id: String,
    pub name: String,
    /// As typed, digits only for the index (`phone_digits`).
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub phone_digits: Option<String>,
    /// What the customer owes, in minor units. A counter: travels as increments.
    #[serde(default)]
    pub credit_balance_minor: i64,
    #[serde(default)]
    pub credit_limit_minor: Option<i64>,
    #[serde(default)]
    pub deleted: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BillStatus {
    Draft,
    /// Never edited again; only voided.
    Final,
    Void,
}

/// One line of a bill, with the name and price as sold (the product may change later).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BillLine {
    pub product_id: String,
    pub name: String,
    pub unit_price_minor: i64,
    pub quantity: i64,
    #[serde(default)]
    pub discount_minor: i64,
    #[serde(default)]
    pub tax_minor: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BillTotals {
    pub subtotal_minor: i64,
    pub discount_minor: i64,
    pub tax_minor: i64,
    pub total_minor: i64,
}

/// A bill. Its number comes from the device's own series (`T2-000123`), so numbers never
/// collide offline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bill {
    pub id: String,
    pub number: String,
    pub lines: Vec<BillLine>,
    pub totals: BillTotals,
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub payment_ids: Vec<String>,
    pub status: BillStatus,
    pub device_id: String,
    #[serde(default)]
    pub cashier: Option<String>,
    /// Local calendar day of the sale, `YYYY-MM-DD`, for the bills-by-day index.
    pub day: String,
    pub created_at_millis: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PaymentMethod {
    Cash,
    Upi,
    Card,
    /// Added to the customer's khata.
    Credit,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub id: String,
    #[serde(default)]
    pub bill_id: Option<String>,
    #[serde(default)]
    pub customer_id: Option<String>,
    pub amount_minor: i64,
    pub method: PaymentMethod,
    pub at_millis: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Expense {
    pub id: String,
    pub category: String,
    pub amount_minor: i64,
    #[serde(default)]
    pub note: Option<String>,
    pub day: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StockMoveKind {
    Receive,
    Sale,
    Adjust,
    /// The compensating move of a voided bill.
    Void,
}

/// One movement of stock: the event trail behind a product's stock counter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StockMove {
    pub id: String,
    pub product_id: String,
    pub kind: StockMoveKind,
    /// Signed: a sale is negative.
    pub quantity: i64,
    #[serde(default)]
    pub bill_id: Option<String>,
    pub device_id: String,
    pub at_millis: i64,
}

/// Who did what, when, on which device, before and after. Append-only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: String,
    pub at_millis: i64,
    pub device_id: String,
    #[serde(default)]
    pub cashier: Option<String>,
    /// "product.create", "bill.finalize", ...
    pub action: String,
    /// Document path relative to the database root.
    pub path: String,
    #[serde(default)]
    pub before: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub after: Option<BTreeMap<String, Value>>,
}

/// The server's version of a document as last pulled: the base of a three-way merge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BaseCopy {
    /// Document path relative to the database root; the key.
    pub path: String,
    pub fields: BTreeMap<String, Value>,
    /// The server's `updateTime`, in Unix microseconds.
    pub update_time_micros: i64,
}

impl BaseCopy {
    /// The base copy of a document read from the server (it needs a name and an update time).
    pub fn of_document(document: &Document) -> Option<BaseCopy> {
        let name = DocumentName::parse(&document.name).ok()?;
        let update_time = BaseVersion::of_document(document)?.update_time;
        Some(BaseCopy {
            path: name.relative_path(),
            fields: document.fields.clone(),
            update_time_micros: update_time.to_unix_micros(),
        })
    }

    /// The base an edit of this document starts from.
    pub fn to_base_version(&self) -> BaseVersion {
        BaseVersion {
            update_time: Timestamp::from_unix_micros(self.update_time_micros),
            fields: self.fields.clone(),
        }
    }

    /// The document as the server had it (named relative to an unknown project: only the path
    /// segments are meaningful).
    pub fn to_document(&self) -> Document {
        Document {
            name: format!("projects/-/databases/(default)/documents/{}", self.path),
            fields: self.fields.clone(),
            create_time: None,
            update_time: Some(Timestamp::from_unix_micros(self.update_time_micros)),
        }
    }
}

/// Any entity record a unit of work can write, tagged with the store it lives in.
#[derive(Clone, Debug, PartialEq)]
pub enum EntityRecord {
    Product(crate::model::Product),
    Customer(Customer),
    Bill(Bill),
    Payment(Payment),
    Expense(Expense),
    StockMove(StockMove),
}
