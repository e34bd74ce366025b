//! The records a sale and the stock trail leave behind: bills, payments, stock moves and audit
//! entries, with their Firestore document forms.
//!
//! A final bill is never edited (DESIGN.md section 3): it keeps the lines, prices, taxes and
//! the settlement as they were when it was completed, so a reprint on any tablet shows the
//! same receipt. A UPI payment's later confirmation changes its `payments` document only.
//!
//! Document fields (under `shops/{shop}/`):
//! - `bills/{id}`: `number`, `status`, `device`, `deviceName`, `cashier`, `customerId`, `day`,
//!   `createdAtMillis`, `lines` (array of maps), `subtotal`, `discount`, `taxable`, `tax`,
//!   `total`, `rounding`, `payable`, `change`, `credit`, `taxSummary`, `payments` (arrays of
//!   maps), `paymentIds`, `deleted`;
//! - `payments/{id}`: `billId`, `customerId`, `method`, `amount`, `received`, `change`,
//!   `confirmed`, `atMillis`, `device`, `deleted`;
//! - `stockMoves/{id}`: `productId`, `kind`, `quantity`, `billId`, `reason`, `device`,
//!   `atMillis`, `deleted` (the first five as the app wrote them before this crate).

use std::collections::BTreeMap;

use counterbook_firestore_wire::{map_by_insertion, Document, DocumentName, Value};
use serde::{Deserialize, Serialize};

use crate::bill::{BillLine, BillTotals, LineAmounts, LineDiscount, TaxSummaryRow};
use crate::payment::{PaymentMethod, SettledPayment, Settlement};
use crate::product::{InvalidDocument, QuantityUnit};

pub const BILLS_COLLECTION: &str = "bills";
pub const PAYMENTS_COLLECTION: &str = "payments";
pub const STOCK_MOVES_COLLECTION: &str = "stockMoves";

/// Where a bill is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BillStatus {
    Draft,
    /// Never edited again; only voided.
    Final,
    Void,
}

impl BillStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BillStatus::Draft => "draft",
            BillStatus::Final => "final",
            BillStatus::Void => "void",
        }
    }
}

/// A completed (or voided) bill.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bill {
    pub id: String,
    /// `T2-000123`: unique (an index), from the device's own series.
    pub number: String,
    pub status: BillStatus,
    pub lines: Vec<BillLine>,
    pub totals: BillTotals,
    pub settlement: Settlement,
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub payment_ids: Vec<String>,
    pub device_id: String,
    /// The name the shop gave the device ("Counter 1"), as it was at the sale.
    #[serde(default)]
    pub device_name: Option<String>,
    #[serde(default)]
    pub cashier: Option<String>,
    /// Local calendar day of the sale, `YYYY-MM-DD`, for the bills-by-day index.
    pub day: String,
    pub created_at_millis: i64,
}

/// One payment record (the `payments` collection), one per method used on a bill.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRecord {
    pub id: String,
    #[serde(default)]
    pub bill_id: Option<String>,
    #[serde(default)]
    pub customer_id: Option<String>,
    pub method: PaymentMethod,
    pub amount_minor: i64,
    #[serde(default)]
    pub received_minor: Option<i64>,
    #[serde(default)]
    pub change_minor: Option<i64>,
    /// UPI only: "UPI, unconfirmed" until the cashier confirms it arrived.
    #[serde(default)]
    pub confirmed: Option<bool>,
    pub at_millis: i64,
    #[serde(default)]
    pub device_id: String,
}

/// Why stock moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StockMoveKind {
    Receive,
    Sale,
    Adjust,
    /// The compensating move of a voided bill.
    Void,
    /// Goods a customer brought back, refunded, back on the shelf.
    Return,
}

impl StockMoveKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StockMoveKind::Receive => "receive",
            StockMoveKind::Sale => "sale",
            StockMoveKind::Adjust => "adjust",
            StockMoveKind::Void => "void",
            StockMoveKind::Return => "return",
        }
    }

    fn parse(text: &str) -> Option<StockMoveKind> {
        [
            StockMoveKind::Receive,
            StockMoveKind::Sale,
            StockMoveKind::Adjust,
            StockMoveKind::Void,
            StockMoveKind::Return,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }
}

/// One movement of stock: the event trail behind a product's stock counter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StockMove {
    pub id: String,
    pub product_id: String,
    pub kind: StockMoveKind,
    /// Signed, in the product's quantity steps: a sale is negative.
    pub quantity: i64,
    #[serde(default)]
    pub bill_id: Option<String>,
    /// Why, for adjustments ("damaged", "count correction").
    #[serde(default)]
    pub reason: Option<String>,
    pub device_id: String,
    pub at_millis: i64,
}

/// Who did what, when, on which device, before and after. Append-only, kept on the device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: String,
    pub at_millis: i64,
    pub device_id: String,
    #[serde(default)]
    pub cashier: Option<String>,
    /// The user id of who approved this on the spot (a manager entering their PIN for an
    /// action the person at the counter may not take alone); the unit is sent with the
    /// approver's own sign-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// With `approved_by`: the user id of who asked for the approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    /// "product.create", "bill.finalize", ...
    pub action: String,
    /// Document path relative to the database root.
    pub path: String,
    #[serde(default)]
    pub before: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub after: Option<BTreeMap<String, Value>>,
}

fn text(value: &str) -> Value {
    Value::String(value.to_owned())
}

fn optional_text(value: &Option<String>) -> Value {
    value.clone().map(Value::String).unwrap_or(Value::Null)
}

fn optional_integer(value: Option<i64>) -> Value {
    value.map(Value::Integer).unwrap_or(Value::Null)
}

fn map(pairs: Vec<(&str, Value)>) -> Value {
    Value::Map(map_by_insertion(
        pairs
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value)),
    ))
}

/// Reads fields of one map, refusing what is missing with the field's name.
pub(crate) struct Fields<'a> {
    pub(crate) fields: &'a BTreeMap<String, Value>,
    pub(crate) context: &'a str,
}

impl<'a> Fields<'a> {
    pub(crate) fn missing(&self, field: &str, kind: &str) -> String {
        format!("{}`{field}` is missing or not {kind}", self.context)
    }
    pub(crate) fn integer(&self, field: &str) -> Result<i64, String> {
        self.fields
            .get(field)
            .and_then(Value::as_integer)
            .ok_or_else(|| self.missing(field, "an integer"))
    }
    pub(crate) fn small(&self, field: &str) -> Result<u32, String> {
        u32::try_from(self.integer(field)?).map_err(|_| self.missing(field, "a small integer"))
    }
    pub(crate) fn text(&self, field: &str) -> Result<String, String> {
        self.optional_text(field)
            .ok_or_else(|| self.missing(field, "a string"))
    }
    pub(crate) fn optional_text(&self, field: &str) -> Option<String> {
        self.fields
            .get(field)
            .and_then(Value::as_str)
            .map(str::to_owned)
    }
    pub(crate) fn optional_integer(&self, field: &str) -> Option<i64> {
        self.fields.get(field).and_then(Value::as_integer)
    }
    pub(crate) fn optional_bool(&self, field: &str) -> Option<bool> {
        self.fields.get(field).and_then(Value::as_bool)
    }
    pub(crate) fn maps(&self, field: &str) -> Result<Vec<&'a BTreeMap<String, Value>>, String> {
        match self.fields.get(field) {
            Some(Value::Array(values)) => values
                .iter()
                .map(|value| match value {
                    Value::Map(fields) => Ok(fields),
                    _ => Err(self.missing(field, "an array of maps")),
                })
                .collect(),
            None | Some(Value::Null) => Ok(Vec::new()),
            _ => Err(self.missing(field, "an array of maps")),
        }
    }
}

pub(crate) fn method_from(text: &str) -> Option<PaymentMethod> {
    [
        PaymentMethod::Cash,
        PaymentMethod::Upi,
        PaymentMethod::Card,
        PaymentMethod::Credit,
    ]
    .into_iter()
    .find(|method| method.as_str() == text)
}

pub(crate) fn document_id(document: &Document) -> Result<String, String> {
    let name = DocumentName::parse(&document.name).map_err(|e| e.to_string())?;
    name.id()
        .map(str::to_owned)
        .ok_or_else(|| "no document id".to_owned())
}

pub(crate) fn invalid(document: &Document) -> impl Fn(String) -> InvalidDocument + '_ {
    move |reason| InvalidDocument {
        name: document.name.clone(),
        reason,
    }
}

impl Bill {
    pub fn document_path(&self, shop_id: &str) -> String {
        format!("shops/{shop_id}/{BILLS_COLLECTION}/{}", self.id)
    }

    /// The bill document's fields.
    pub fn to_fields(&self) -> BTreeMap<String, Value> {
        let lines = self
            .lines
            .iter()
            .zip(
                self.totals
                    .lines
                    .iter()
                    .copied()
                    .chain(std::iter::repeat(LineAmounts::default())),
            )
            .map(|(line, amounts)| {
                let (discount_kind, discount_value) = match line.discount {
                    LineDiscount::None => ("none", 0),
                    LineDiscount::Amount { minor } => ("amount", minor),
                    LineDiscount::Percent { basis_points } => ("percent", i64::from(basis_points)),
                };
                map(vec![
                    ("productId", text(&line.product_id)),
                    ("name", text(&line.name)),
                    ("unit", text(line.unit.as_str())),
                    ("unitPrice", Value::Integer(line.unit_price_minor)),
                    ("quantity", Value::Integer(line.quantity)),
                    ("discountKind", text(discount_kind)),
                    ("discountValue", Value::Integer(discount_value)),
                    (
                        "taxRateBp",
                        Value::Integer(i64::from(line.tax_rate_basis_points)),
                    ),
                    ("gross", Value::Integer(amounts.gross_minor)),
                    ("discount", Value::Integer(amounts.discount_minor)),
                    ("net", Value::Integer(amounts.net_minor)),
                    ("taxable", Value::Integer(amounts.taxable_minor)),
                    ("tax", Value::Integer(amounts.tax_minor)),
                    ("total", Value::Integer(amounts.total_minor)),
                ])
            })
            .collect();
        let tax_summary = self
            .totals
            .tax_summary
            .iter()
            .map(|row| {
                map(vec![
                    (
                        "taxRateBp",
                        Value::Integer(i64::from(row.tax_rate_basis_points)),
                    ),
                    ("taxable", Value::Integer(row.taxable_minor)),
                    ("tax", Value::Integer(row.tax_minor)),
                ])
            })
            .collect();
        let payments = self
            .settlement
            .payments
            .iter()
            .map(|payment| {
                map(vec![
                    ("method", text(payment.method.as_str())),
                    ("amount", Value::Integer(payment.amount_minor)),
                    ("received", optional_integer(payment.received_minor)),
                    ("change", optional_integer(payment.change_minor)),
                    (
                        "confirmed",
                        payment.confirmed.map(Value::Boolean).unwrap_or(Value::Null),
                    ),
                ])
            })
            .collect();
        let totals = &self.totals;
        let settlement = &self.settlement;
        map_by_insertion([
            ("number".to_string(), text(&self.number)),
            ("status".to_string(), text(self.status.as_str())),
            ("device".to_string(), text(&self.device_id)),
            ("deviceName".to_string(), optional_text(&self.device_name)),
            ("cashier".to_string(), optional_text(&self.cashier)),
            ("customerId".to_string(), optional_text(&self.customer_id)),
            ("day".to_string(), text(&self.day)),
            (
                "createdAtMillis".to_string(),
                Value::Integer(self.created_at_millis),
            ),
            ("lines".to_string(), Value::Array(lines)),
            (
                "subtotal".to_string(),
                Value::Integer(totals.subtotal_minor),
            ),
            (
                "discount".to_string(),
                Value::Integer(totals.discount_minor),
            ),
            ("taxable".to_string(), Value::Integer(totals.taxable_minor)),
            ("tax".to_string(), Value::Integer(totals.tax_minor)),
            ("total".to_string(), Value::Integer(totals.total_minor)),
            ("taxSummary".to_string(), Value::Array(tax_summary)),
            (
                "rounding".to_string(),
                Value::Integer(settlement.rounding_minor),
            ),
            (
                "payable".to_string(),
                Value::Integer(settlement.payable_minor),
            ),
            (
                "cashDue".to_string(),
                Value::Integer(settlement.cash_due_minor),
            ),
            (
                "cashReceived".to_string(),
                Value::Integer(settlement.cash_received_minor),
            ),
            (
                "change".to_string(),
                Value::Integer(settlement.change_minor),
            ),
            (
                "credit".to_string(),
                Value::Integer(settlement.credit_minor),
            ),
            ("payments".to_string(), Value::Array(payments)),
            (
                "paymentIds".to_string(),
                Value::Array(self.payment_ids.iter().map(|id| text(id)).collect()),
            ),
            ("deleted".to_string(), Value::Boolean(false)),
        ])
    }

    /// The bill as its receipt shows it now: a UPI payment the cashier confirmed after the sale
    /// (its `payments` record, `confirmed` true) shows as confirmed. The bill itself is final
    /// and never rewritten; only its payment records change.
    pub fn with_payment_confirmations(&self, payments: &[PaymentRecord]) -> Bill {
        let mut shown = self.clone();
        for settled in &mut shown.settlement.payments {
            let confirmed_later = payments.iter().any(|record| {
                record.bill_id.as_deref() == Some(self.id.as_str())
                    && record.method == settled.method
                    && record.confirmed == Some(true)
            });
            if settled.confirmed == Some(false) && confirmed_later {
                settled.confirmed = Some(true);
            }
        }
        shown
    }

    /// Reads a bill document as pulled from the server.
    pub fn from_document(document: &Document) -> Result<Bill, InvalidDocument> {
        Bill::read(document).map_err(invalid(document))
    }

    fn read(document: &Document) -> Result<Bill, String> {
        let fields = Fields {
            fields: &document.fields,
            context: "",
        };
        let status = match fields.text("status")?.as_str() {
            "draft" => BillStatus::Draft,
            "final" => BillStatus::Final,
            "void" => BillStatus::Void,
            other => return Err(format!("`status` \"{other}\" is not draft, final or void")),
        };
        let mut lines = Vec::new();
        let mut line_amounts = Vec::new();
        for (index, line) in fields.maps("lines")?.into_iter().enumerate() {
            let context = format!("line {}: ", index + 1);
            let line = Fields {
                fields: line,
                context: &context,
            };
            let discount_value = line.integer("discountValue")?;
            let discount = match line.text("discountKind")?.as_str() {
                "none" => LineDiscount::None,
                "amount" => LineDiscount::Amount {
                    minor: discount_value,
                },
                "percent" => LineDiscount::Percent {
                    basis_points: u32::try_from(discount_value)
                        .map_err(|_| format!("{context}bad percent discount"))?,
                },
                other => return Err(format!("{context}unknown discount kind \"{other}\"")),
            };
            lines.push(BillLine {
                product_id: line.text("productId")?,
                name: line.text("name")?,
                unit: QuantityUnit::parse(&line.text("unit")?)
                    .map_err(|e| format!("{context}{e}"))?,
                unit_price_minor: line.integer("unitPrice")?,
                quantity: line.integer("quantity")?,
                discount,
                tax_rate_basis_points: line.small("taxRateBp")?,
            });
            line_amounts.push(LineAmounts {
                gross_minor: line.integer("gross")?,
                discount_minor: line.integer("discount")?,
                net_minor: line.integer("net")?,
                taxable_minor: line.integer("taxable")?,
                tax_minor: line.integer("tax")?,
                total_minor: line.integer("total")?,
            });
        }
        let tax_summary = fields
            .maps("taxSummary")?
            .into_iter()
            .map(|row| {
                let row = Fields {
                    fields: row,
                    context: "tax summary: ",
                };
                Ok(TaxSummaryRow {
                    tax_rate_basis_points: row.small("taxRateBp")?,
                    taxable_minor: row.integer("taxable")?,
                    tax_minor: row.integer("tax")?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let payments = fields
            .maps("payments")?
            .into_iter()
            .map(|payment| {
                let payment = Fields {
                    fields: payment,
                    context: "payment: ",
                };
                let method = payment.text("method")?;
                Ok(SettledPayment {
                    method: method_from(&method)
                        .ok_or_else(|| format!("payment: unknown method \"{method}\""))?,
                    amount_minor: payment.integer("amount")?,
                    received_minor: payment.optional_integer("received"),
                    change_minor: payment.optional_integer("change"),
                    confirmed: payment.optional_bool("confirmed"),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let payment_ids = match document.fields.get("paymentIds") {
            Some(Value::Array(ids)) => ids
                .iter()
                .filter_map(|id| id.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        Ok(Bill {
            id: document_id(document)?,
            number: fields.text("number")?,
            status,
            lines,
            totals: BillTotals {
                subtotal_minor: fields.integer("subtotal")?,
                discount_minor: fields.integer("discount")?,
                taxable_minor: fields.integer("taxable")?,
                tax_minor: fields.integer("tax")?,
                total_minor: fields.integer("total")?,
                lines: line_amounts,
                tax_summary,
            },
            settlement: Settlement {
                total_minor: fields.integer("total")?,
                rounding_minor: fields.integer("rounding")?,
                payable_minor: fields.integer("payable")?,
                cash_due_minor: fields.integer("cashDue")?,
                cash_received_minor: fields.integer("cashReceived")?,
                change_minor: fields.integer("change")?,
                credit_minor: fields.integer("credit")?,
                payments,
            },
            customer_id: fields.optional_text("customerId"),
            payment_ids,
            device_id: fields.text("device")?,
            device_name: fields.optional_text("deviceName"),
            cashier: fields.optional_text("cashier"),
            day: fields.text("day")?,
            created_at_millis: fields.integer("createdAtMillis")?,
        })
    }
}

impl PaymentRecord {
    pub fn document_path(&self, shop_id: &str) -> String {
        format!("shops/{shop_id}/{PAYMENTS_COLLECTION}/{}", self.id)
    }

    pub fn to_fields(&self) -> BTreeMap<String, Value> {
        map_by_insertion([
            ("billId".to_string(), optional_text(&self.bill_id)),
            ("customerId".to_string(), optional_text(&self.customer_id)),
            ("method".to_string(), text(self.method.as_str())),
            ("amount".to_string(), Value::Integer(self.amount_minor)),
            (
                "received".to_string(),
                optional_integer(self.received_minor),
            ),
            ("change".to_string(), optional_integer(self.change_minor)),
            (
                "confirmed".to_string(),
                self.confirmed.map(Value::Boolean).unwrap_or(Value::Null),
            ),
            ("atMillis".to_string(), Value::Integer(self.at_millis)),
            ("device".to_string(), text(&self.device_id)),
            ("deleted".to_string(), Value::Boolean(false)),
        ])
    }

    pub fn from_document(document: &Document) -> Result<PaymentRecord, InvalidDocument> {
        let read = || -> Result<PaymentRecord, String> {
            let fields = Fields {
                fields: &document.fields,
                context: "",
            };
            let method = fields.text("method")?;
            Ok(PaymentRecord {
                id: document_id(document)?,
                bill_id: fields.optional_text("billId"),
                customer_id: fields.optional_text("customerId"),
                method: method_from(&method)
                    .ok_or_else(|| format!("unknown payment method \"{method}\""))?,
                amount_minor: fields.integer("amount")?,
                received_minor: fields.optional_integer("received"),
                change_minor: fields.optional_integer("change"),
                confirmed: fields.optional_bool("confirmed"),
                at_millis: fields.integer("atMillis")?,
                device_id: fields.optional_text("device").unwrap_or_default(),
            })
        };
        read().map_err(invalid(document))
    }
}

impl StockMove {
    pub fn document_path(&self, shop_id: &str) -> String {
        format!("shops/{shop_id}/{STOCK_MOVES_COLLECTION}/{}", self.id)
    }

    pub fn to_fields(&self) -> BTreeMap<String, Value> {
        map_by_insertion([
            ("productId".to_string(), text(&self.product_id)),
            ("kind".to_string(), text(self.kind.as_str())),
            ("quantity".to_string(), Value::Integer(self.quantity)),
            ("billId".to_string(), optional_text(&self.bill_id)),
            ("reason".to_string(), optional_text(&self.reason)),
            ("device".to_string(), text(&self.device_id)),
            ("atMillis".to_string(), Value::Integer(self.at_millis)),
            ("deleted".to_string(), Value::Boolean(false)),
        ])
    }

    pub fn from_document(document: &Document) -> Result<StockMove, InvalidDocument> {
        let read = || -> Result<StockMove, String> {
            let fields = Fields {
                fields: &document.fields,
                context: "",
            };
            let kind = fields.text("kind")?;
            Ok(StockMove {
                id: document_id(document)?,
                product_id: fields.text("productId")?,
                kind: StockMoveKind::parse(&kind)
                    .ok_or_else(|| format!("unknown stock move kind \"{kind}\""))?,
                quantity: fields.integer("quantity")?,
                bill_id: fields.optional_text("billId"),
                reason: fields.optional_text("reason"),
                device_id: fields.optional_text("device").unwrap_or_default(),
                // Moves written before `atMillis` existed read as 0.
                at_millis: fields.optional_integer("atMillis").unwrap_or(0),
            })
        };
        read().map_err(invalid(document))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bill::bill_totals;
    use crate::payment::{settle, Tender};
    use crate::settings::TaxMode;

    fn named(path: &str, fields: BTreeMap<String, Value>) -> Document {
        Document {
            name: format!("projects/p/databases/(default)/documents/{path}"),
            fields,
            ..Document::default()
        }
    }

    pub(crate) fn sample_bill() -> Bill {
        let lines = vec![
            BillLine {
                product_id: "p1".into(),
                name: "Basmati rice".into(),
                unit: QuantityUnit::Kilogram,
                unit_price_minor: 120_00,
                quantity: 1250,
                discount: LineDiscount::Percent { basis_points: 500 },
                tax_rate_basis_points: 500,
            },
            BillLine {
                product_id: "p2".into(),
                name: "Soap".into(),
                unit: QuantityUnit::Piece,
                unit_price_minor: 45_00,
                quantity: 2,
                discount: LineDiscount::Amount { minor: 5_00 },
                tax_rate_basis_points: 1800,
            },
        ];
        let totals = bill_totals(&lines, TaxMode::Inclusive).unwrap();
        let settlement = settle(
            totals.total_minor,
            &[
                Tender::Upi {
                    amount_minor: 50_00,
                    confirmed: false,
                },
                Tender::Cash {
                    received_minor: 200_00,
                },
            ],
            100,
            None,
        )
        .unwrap();
        Bill {
            id: "b1".into(),
            number: "T2-000123".into(),
            status: BillStatus::Final,
            lines,
            totals,
            settlement,
            customer_id: Some("c1".into()),
            payment_ids: vec!["pay1".into(), "pay2".into()],
            device_id: "dev-A".into(),
            device_name: Some("Counter 1".into()),
            cashier: None,
            day: "2026-12-01".into(),
            created_at_millis: 1_764_000_000_000,
        }
    }

    #[test]
    fn a_bill_survives_the_trip_through_a_document() {
        let bill = sample_bill();
        let document = named(&bill.document_path("s1"), bill.to_fields());
        assert_eq!(Bill::from_document(&document), Ok(bill));
    }

    #[test]
    fn a_upi_payment_confirmed_after_the_sale_shows_as_confirmed() {
        let bill = sample_bill();
        let upi = |confirmed: Option<bool>, bill_id: &str| PaymentRecord {
            id: "pay1".into(),
            bill_id: Some(bill_id.into()),
            customer_id: None,
            method: PaymentMethod::Upi,
            amount_minor: 50_00,
            received_minor: None,
            change_minor: None,
            confirmed,
            at_millis: 5,
            device_id: "dev-A".into(),
        };
        let upi_confirmed = |bill: &Bill| {
            bill.settlement
                .payments
                .iter()
                .find(|p| p.method == PaymentMethod::Upi)
                .and_then(|p| p.confirmed)
        };
        assert_eq!(upi_confirmed(&bill), Some(false));
        let unconfirmed = bill.with_payment_confirmations(&[upi(Some(false), "b1")]);
        assert_eq!(unconfirmed, bill);
        // Another bill's confirmation changes nothing.
        let other = bill.with_payment_confirmations(&[upi(Some(true), "b2")]);
        assert_eq!(upi_confirmed(&other), Some(false));
        let confirmed = bill.with_payment_confirmations(&[upi(Some(true), "b1")]);
        assert_eq!(upi_confirmed(&confirmed), Some(true));
        // Cash is left as it was.
        let cash = |bill: &Bill| {
            bill.settlement
                .payments
                .iter()
                .find(|p| p.method == PaymentMethod::Cash)
                .cloned()
        };
        assert_eq!(cash(&confirmed), cash(&bill));
        assert!(cash(&bill).is_some());
    }

    #[test]
    fn a_malformed_bill_is_refused_with_the_reason() {
        let mut fields = sample_bill().to_fields();
        let Some(Value::Array(lines)) = fields.get_mut("lines") else {
            unreachable!()
        };
        let Value::Map(line) = &mut lines[1] else {
            unreachable!()
        };
        line.remove("quantity");
        let error = Bill::from_document(&named("shops/s1/bills/b1", fields)).unwrap_err();
        assert_eq!(
            error.reason,
            "line 2: `quantity` is missing or not an integer"
        );
    }

    #[test]
    fn payments_and_stock_moves_survive_the_trip_through_a_document() {
        let payment = PaymentRecord {
            id: "pay1".into(),
            bill_id: Some("b1".into()),
            customer_id: None,
            method: PaymentMethod::Upi,
            amount_minor: 50_00,
            received_minor: None,
            change_minor: None,
            confirmed: Some(false),
            at_millis: 5,
            device_id: "dev-A".into(),
        };
        let document = named(&payment.document_path("s1"), payment.to_fields());
        assert_eq!(PaymentRecord::from_document(&document), Ok(payment));
        let stock_move = StockMove {
            id: "m1".into(),
            product_id: "p1".into(),
            kind: StockMoveKind::Adjust,
            quantity: -3,
            bill_id: None,
            reason: Some("damaged".into()),
            device_id: "dev-A".into(),
            at_millis: 7,
        };
        let document = named(&stock_move.document_path("s1"), stock_move.to_fields());
        assert_eq!(StockMove::from_document(&document), Ok(stock_move));
    }

    #[test]
    fn stock_moves_the_app_wrote_before_still_read() {
        // Guards the shape `SyncDriver::move_stock` wrote before this crate existed.
        let document = named(
            "shops/s1/stockMoves/m0",
            BTreeMap::from([
                ("productId".to_string(), text("p1")),
                ("quantity".to_string(), Value::Integer(10)),
                ("kind".to_string(), text("receive")),
                ("device".to_string(), text("dev-A")),
                ("deleted".to_string(), Value::Boolean(false)),
            ]),
        );
        let stock_move = StockMove::from_document(&document).unwrap();
        assert_eq!(stock_move.kind, StockMoveKind::Receive);
        assert_eq!((stock_move.quantity, stock_move.at_millis), (10, 0));
    }
}
