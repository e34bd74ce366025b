//! Counterbook's shop domain, pure Rust: what a sale, a product, a customer and a payment are,
//! and the rules money follows. No IO, no clock, no browser: the app (wasm32) and native tests
//! use the same code, and everything here is tested natively in milliseconds.
//!
//! Modules, from the bottom up:
//! - [`money`]: integer minor units and milli-units, decimal text in and out, the rounding rule;
//! - [`product`], [`customer`], [`settings`]: the records and their Firestore document forms
//!   (field names shared with every tablet and backend);
//! - [`bill`]: bill lines and totals, discounts, taxes inclusive or exclusive, the tax summary;
//! - [`cart`]: the bill being rung up: repeat scans, labels with weight or price, typed
//!   quantities, discounts (serde, so parked bills survive a reload);
//! - [`payment`]: tenders, splits, cash rounding on the cash part only, change, credit limits;
//! - [`series`]: the device's bill numbers, `T2-000123`;
//! - [`barcode`]: EAN-13/EAN-8/UPC-A check digits and price- or weight-embedded in-store codes;
//! - [`records`]: bills, payments, stock moves, audit entries and their document forms;
//! - [`refunds`]: refund records and the money rule that keeps a refund's parts exact;
//! - [`reversals`]: voiding and refunding a completed bill, each one unit of work;
//! - [`roles`]: cashier, manager, owner, and the actions that need a manager or the owner;
//! - [`scanner`]: recognising a keyboard-wedge scanner by key timing, read by physical key;
//! - [`csv_import`]: the product CSV format, import with per-row errors and export;
//! - [`escpos`]: a 1-bit receipt bitmap to ESC/POS raster bytes and back; canvas pixels to bits;
//! - [`receipt`]: the receipt as data and text, WhatsApp and UPI links, the bill's QR code;
//! - [`actions`]: each user action's unit of work (records, audit, the sync core's `Unit`).
//!
//! Money is always an `i64` count of minor units; no float appears in a money rule (only the
//! scanner's key timestamps are the browser's `f64` milliseconds).

// Amounts in tests are written as major_minor units (₹118.00 is `118_00`), on purpose.
#![cfg_attr(test, allow(clippy::inconsistent_digit_grouping))]

// The tests' shared fixtures name the crate `counterbook_shop`, as the integration tests do.
#[cfg(test)]
extern crate self as counterbook_shop;
#[cfg(test)]
#[path = "../tests/fixtures/mod.rs"]
mod fixtures;

pub mod actions;
pub mod barcode;
pub mod bill;
pub mod cart;
pub mod csv_import;
pub mod customer;
pub mod escpos;
pub mod money;
pub mod payment;
pub mod product;
pub mod receipt;
pub mod records;
pub mod refunds;
pub mod reversals;
pub mod roles;
pub mod scanner;
pub mod series;
pub mod settings;

pub use actions::{ActionContext, Record, UnitOfWork};
pub use barcode::{Nomenclature, ScannedCode};
pub use bill::{
    bill_totals, BillError, BillLine, BillTotals, LineAmounts, LineDiscount, TaxSummaryRow,
};
pub use customer::Customer;
pub use payment::{settle, PaymentError, PaymentMethod, SettledPayment, Settlement, Tender};
pub use product::{Product, QuantityUnit};
pub use records::{AuditEntry, Bill, BillStatus, PaymentRecord, StockMove, StockMoveKind};
pub use refunds::{Refund, RefundError, RefundLine, RefundRequest};
pub use reversals::{refund_bill, void_bill, RefundMade, VoidError, VoidRequest};
pub use roles::{GuardedAction, Role};
pub use series::BillNumber;
pub use settings::{ShopSettings, TaxMode};
