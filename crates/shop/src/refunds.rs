//! Refunds of a completed bill: chosen lines and quantities (or all of them) given back, each
//! its own record with lines, tax and the money handed back, and the money rule that keeps
//! every part exact.
//!
//! A line is refunded by its share of what was paid for it: refunding `q` of `Q` sold, after
//! `r` already refunded, gives back `part(r + q) − part(r)`, where `part(n)` is the line's
//! figure × n ÷ Q rounded once ([`crate::money::divide_rounding_half_away`]). So refunds of a
//! line in any pieces add up to exactly its total and its tax, never a minor unit more or less,
//! and a whole bill refunded line by line gives back exactly its total. Cash handed back is
//! rounded to the shop's cash step like cash taken (the rounding is on the record); money back
//! on credit lowers the customer's balance by the exact amount.
//!
//! Document fields (`shops/{shop}/refunds/{id}`): `billId`, `billNumber`, `customerId`,
//! `lines` (maps of `line`, `productId`, `name`, `unit`, `quantity`, `taxRateBp`, `taxable`,
//! `tax`, `total`), `taxable`, `tax`, `total`, `rounding`, `moneyBack`, `method`, `paymentId`,
//! `reason`, `device`, `cashier`, `atMillis`, `deleted`.

use std::collections::BTreeMap;

use counterbook_firestore_wire::{map_by_insertion, Document, Value};
use serde::{Deserialize, Serialize};

use crate::bill::LineAmounts;
use crate::money::divide_rounding_half_away;
use crate::payment::{round_to_step, PaymentMethod};
use crate::product::InvalidDocument;
use crate::product::QuantityUnit;
use crate::records::{document_id, invalid, method_from, Bill, BillStatus, Fields};

pub const REFUNDS_COLLECTION: &str = "refunds";

/// Under each bill, the tallies of its refunds (`shops/{shop}/bills/{bill}/refunded/{key}`),
/// which the server and `firestore.rules` judge each refund and void against inside its
/// commit, since neither can run a query there: `{line}` (the line's 0-based index) counts the
/// `quantity` of that line refunded so far, never above what was sold; `all` counts the
/// refunds (`count`) and names the `lastRefund`. A bill with an `all` tally is not voided, and
/// a refund moves its tallies in the same commit or is refused. Every write to them is an
/// increment, so refunds from two tablets both count (and the second one past what was sold
/// is refused).
pub const REFUNDED_COLLECTION: &str = "refunded";
pub const ALL_REFUNDS_TALLY: &str = "all";
pub const REFUNDED_QUANTITY_FIELD: &str = "quantity";
pub const REFUND_COUNT_FIELD: &str = "count";
pub const LAST_REFUND_FIELD: &str = "lastRefund";

/// The tally of line `line` of bill `bill_id`'s refunds.
pub fn refunded_line_path(shop_id: &str, bill_id: &str, line: usize) -> String {
    format!(
        "shops/{shop_id}/{}/{bill_id}/{REFUNDED_COLLECTION}/{line}",
        crate::records::BILLS_COLLECTION
    )
}

/// The tally of all of bill `bill_id`'s refunds.
pub fn all_refunds_path(shop_id: &str, bill_id: &str) -> String {
    format!(
        "shops/{shop_id}/{}/{bill_id}/{REFUNDED_COLLECTION}/{ALL_REFUNDS_TALLY}",
        crate::records::BILLS_COLLECTION
    )
}

/// One refunded line: which line of the bill, how much of it, and what it gives back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundLine {
    /// The 0-based index of the line on the bill.
    pub line: usize,
    pub product_id: String,
    pub name: String,
    #[serde(default)]
    pub unit: QuantityUnit,
    /// Pieces, or milli-units for loose goods, given back.
    pub quantity: i64,
    #[serde(default)]
    pub tax_rate_basis_points: u32,
    pub taxable_minor: i64,
    pub tax_minor: i64,
    pub total_minor: i64,
}

/// A refund of (part of) a bill: its own record, never an edit of the final bill.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refund {
    pub id: String,
    pub bill_id: String,
    pub bill_number: String,
    #[serde(default)]
    pub customer_id: Option<String>,
    pub lines: Vec<RefundLine>,
    pub taxable_minor: i64,
    pub tax_minor: i64,
    /// The sum of the lines' totals.
    pub total_minor: i64,
    /// Cash handed back is rounded to the shop's step: `money_back − total`.
    pub rounding_minor: i64,
    /// What the customer gets back (cash, card, UPI) or has taken off their balance (credit).
    pub money_back_minor: i64,
    pub method: PaymentMethod,
    /// The payment record of the money back (a negative amount).
    pub payment_id: String,
    pub reason: String,
    pub device_id: String,
    #[serde(default)]
    pub cashier: Option<String>,
    pub at_millis: i64,
    /// Only on the tablet that made it, never in the document: the server refused this refund
    /// (why, as the server said). It gave nothing back, and is kept so that people see so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// Why a refund cannot be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RefundError {
    #[error("the bill is void: nothing is left to refund")]
    BillVoided,
    #[error("only a completed bill can be refunded")]
    NotFinal,
    #[error("choose what to refund: no line has a quantity")]
    NothingToRefund,
    #[error("the bill has no line {}", line + 1)]
    NoSuchLine { line: usize },
    #[error("line {} ({name}): the quantity must be above zero", line + 1)]
    NonPositiveQuantity { line: usize, name: String },
    #[error("line {} ({name}): only {left} is left to refund", line + 1)]
    MoreThanSold {
        line: usize,
        name: String,
        left: i64,
    },
    #[error("a refund needs a reason")]
    NoReason,
    #[error("money back on credit needs the bill's customer")]
    CreditNeedsCustomer,
}

/// How much of each line of `bill` the `refunds` already made give back (by line index).
pub fn refunded_quantities(bill: &Bill, refunds: &[Refund]) -> Vec<i64> {
    let mut refunded = vec![0i64; bill.lines.len()];
    let given = refunds
        .iter()
        .filter(|refund| refund.bill_id == bill.id && refund.refused.is_none());
    for refund in given {
        for line in &refund.lines {
            if let Some(quantity) = refunded.get_mut(line.line) {
                *quantity = quantity.saturating_add(line.quantity);
            }
        }
    }
    refunded
}

/// What is still left to refund of each line of `bill`, after `refunds`.
pub fn refundable_quantities(bill: &Bill, refunds: &[Refund]) -> Vec<i64> {
    refunded_quantities(bill, refunds)
        .into_iter()
        .zip(&bill.lines)
        .map(|(refunded, line)| (line.quantity - refunded).max(0))
        .collect()
}

/// `figure × part ÷ whole`, rounded once.
fn share(figure: i64, part: i64, whole: i64) -> i64 {
    divide_rounding_half_away(i128::from(figure) * i128::from(part), i128::from(whole))
}

/// The taxable value, tax and total that refunding `quantity` of a line sold as `sold` (of
/// which `already` was refunded before) gives back: `part(already + quantity) − part(already)`
/// of the line's taxable value and of its tax, each rounded once, and the total their sum.
///
/// Both parts are shares of a figure that never shrink as more is refunded, so neither is ever
/// negative, and refunds of a line in any pieces add up to exactly its taxable value, its tax
/// and (their sum) its total. Taking the total and the tax as the shares and the taxable value
/// as the rest (as before) could give a piece −1 of taxable value beside +1 of tax: 2 of 4
/// refunded, then a third, of a line of total 0.03 with 0.02 tax, is a refund of 0.00 whose
/// tax is 0.01.
pub fn refund_line_amounts(
    amounts: &LineAmounts,
    sold: i64,
    already: i64,
    quantity: i64,
) -> (i64, i64, i64) {
    if sold <= 0 {
        return (0, 0, 0);
    }
    let part = |figure: i64| share(figure, already + quantity, sold) - share(figure, already, sold);
    let taxable = part(amounts.taxable_minor);
    let tax = part(amounts.tax_minor);
    (taxable, tax, taxable + tax)
}

/// What a refund asks for.
#[derive(Clone, Copy, Debug)]
pub struct RefundRequest<'a> {
    /// (line index on the bill, quantity to give back); a line may appear once.
    pub quantities: &'a [(usize, i64)],
    /// How the money goes back: cash, card, UPI, or off the customer's balance (credit).
    pub method: PaymentMethod,
    pub reason: &'a str,
    pub cash_rounding_step_minor: i64,
}

/// The refund's lines and figures (ids are the caller's), checked against the bill and the
/// refunds already made of it.
pub(crate) struct RefundFigures {
    pub lines: Vec<RefundLine>,
    pub taxable_minor: i64,
    pub tax_minor: i64,
    pub total_minor: i64,
    pub rounding_minor: i64,
    pub money_back_minor: i64,
}

pub(crate) fn refund_figures(
    bill: &Bill,
    refunds: &[Refund],
    request: &RefundRequest<'_>,
) -> Result<RefundFigures, RefundError> {
    match bill.status {
        BillStatus::Void => return Err(RefundError::BillVoided),
        BillStatus::Draft => return Err(RefundError::NotFinal),
        BillStatus::Final => {}
    }
    if request.reason.trim().is_empty() {
        return Err(RefundError::NoReason);
    }
    if request.method == PaymentMethod::Credit && bill.customer_id.is_none() {
        return Err(RefundError::CreditNeedsCustomer);
    }
    let refunded = refunded_quantities(bill, refunds);
    let mut lines: Vec<RefundLine> = Vec::new();
    for &(index, quantity) in request.quantities {
        if quantity == 0 {
            continue;
        }
        let line = bill
            .lines
            .get(index)
            .ok_or(RefundError::NoSuchLine { line: index })?;
        if quantity < 0 {
            return Err(RefundError::NonPositiveQuantity {
                line: index,
                name: line.name.clone(),
            });
        }
        let already = refunded[index]
            + lines
                .iter()
                .filter(|refund_line| refund_line.line == index)
                .map(|refund_line| refund_line.quantity)
                .sum::<i64>();
        let left = (line.quantity - already).max(0);
        if quantity > left {
            return Err(RefundError::MoreThanSold {
                line: index,
                name: line.name.clone(),
                left,
            });
        }
        let amounts = bill.totals.lines.get(index).copied().unwrap_or_default();
        let (taxable, tax, total) = refund_line_amounts(&amounts, line.quantity, already, quantity);
        lines.push(RefundLine {
            line: index,
            product_id: line.product_id.clone(),
            name: line.name.clone(),
            unit: line.unit,
            quantity,
            tax_rate_basis_points: line.tax_rate_basis_points,
            taxable_minor: taxable,
            tax_minor: tax,
            total_minor: total,
        });
    }
    if lines.is_empty() {
        return Err(RefundError::NothingToRefund);
    }
    let sum = |figure: fn(&RefundLine) -> i64| lines.iter().map(figure).sum::<i64>();
    let total = sum(|line| line.total_minor);
    let money_back = match request.method {
        PaymentMethod::Cash => round_to_step(total, request.cash_rounding_step_minor),
        _ => total,
    };
    Ok(RefundFigures {
        taxable_minor: sum(|line| line.taxable_minor),
        tax_minor: sum(|line| line.tax_minor),
        total_minor: total,
        rounding_minor: money_back - total,
        money_back_minor: money_back,
        lines,
    })
}

fn text(value: &str) -> Value {
    Value::String(value.to_owned())
}

fn optional_text(value: &Option<String>) -> Value {
    value.clone().map(Value::String).unwrap_or(Value::Null)
}

impl Refund {
    /// Whether the refund gave money and goods back (the server did not refuse it).
    pub fn stands(&self) -> bool {
        self.refused.is_none()
    }

    /// Reads a refund document as pulled from the server.
    pub fn from_document(document: &Document) -> Result<Refund, InvalidDocument> {
        Refund::read(document).map_err(invalid(document))
    }

    fn read(document: &Document) -> Result<Refund, String> {
        let fields = Fields {
            fields: &document.fields,
            context: "",
        };
        let mut lines = Vec::new();
        for (index, line) in fields.maps("lines")?.into_iter().enumerate() {
            let context = format!("line {}: ", index + 1);
            let line = Fields {
                fields: line,
                context: &context,
            };
            lines.push(RefundLine {
                line: usize::try_from(line.integer("line")?)
                    .map_err(|_| format!("{context}bad line index"))?,
                product_id: line.text("productId")?,
                name: line.text("name")?,
                unit: QuantityUnit::parse(&line.text("unit")?)
                    .map_err(|unknown| format!("{context}{unknown}"))?,
                quantity: line.integer("quantity")?,
                tax_rate_basis_points: line.small("taxRateBp")?,
                taxable_minor: line.integer("taxable")?,
                tax_minor: line.integer("tax")?,
                total_minor: line.integer("total")?,
            });
        }
        let method = fields.text("method")?;
        Ok(Refund {
            id: document_id(document)?,
            bill_id: fields.text("billId")?,
            bill_number: fields.text("billNumber")?,
            customer_id: fields.optional_text("customerId"),
            lines,
            taxable_minor: fields.integer("taxable")?,
            tax_minor: fields.integer("tax")?,
            total_minor: fields.integer("total")?,
            rounding_minor: fields.integer("rounding")?,
            money_back_minor: fields.integer("moneyBack")?,
            method: method_from(&method)
                .ok_or_else(|| format!("`method` \"{method}\" is not a payment method"))?,
            payment_id: fields.text("paymentId")?,
            reason: fields.text("reason")?,
            device_id: fields.text("device")?,
            cashier: fields.optional_text("cashier"),
            at_millis: fields.integer("atMillis")?,
            refused: None,
        })
    }

    pub fn document_path(&self, shop_id: &str) -> String {
        format!("shops/{shop_id}/{REFUNDS_COLLECTION}/{}", self.id)
    }

    /// The refund document's fields.
    pub fn to_fields(&self) -> BTreeMap<String, Value> {
        let lines = self
            .lines
            .iter()
            .map(|line| {
                Value::Map(map_by_insertion([
                    ("line".to_string(), Value::Integer(line.line as i64)),
                    ("productId".to_string(), text(&line.product_id)),
                    ("name".to_string(), text(&line.name)),
                    ("unit".to_string(), text(line.unit.as_str())),
                    ("quantity".to_string(), Value::Integer(line.quantity)),
                    (
                        "taxRateBp".to_string(),
                        Value::Integer(i64::from(line.tax_rate_basis_points)),
                    ),
                    ("taxable".to_string(), Value::Integer(line.taxable_minor)),
                    ("tax".to_string(), Value::Integer(line.tax_minor)),
                    ("total".to_string(), Value::Integer(line.total_minor)),
                ]))
            })
            .collect();
        map_by_insertion([
            ("billId".to_string(), text(&self.bill_id)),
            ("billNumber".to_string(), text(&self.bill_number)),
            ("customerId".to_string(), optional_text(&self.customer_id)),
            ("lines".to_string(), Value::Array(lines)),
            ("taxable".to_string(), Value::Integer(self.taxable_minor)),
            ("tax".to_string(), Value::Integer(self.tax_minor)),
            ("total".to_string(), Value::Integer(self.total_minor)),
            ("rounding".to_string(), Value::Integer(self.rounding_minor)),
            (
                "moneyBack".to_string(),
                Value::Integer(self.money_back_minor),
            ),
            ("method".to_string(), text(self.method.as_str())),
            ("paymentId".to_string(), text(&self.payment_id)),
            ("reason".to_string(), text(&self.reason)),
            ("device".to_string(), text(&self.device_id)),
            ("cashier".to_string(), optional_text(&self.cashier)),
            ("atMillis".to_string(), Value::Integer(self.at_millis)),
            ("deleted".to_string(), Value::Boolean(false)),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amounts(total: i64, tax: i64) -> LineAmounts {
        LineAmounts {
            gross_minor: total,
            net_minor: total,
            taxable_minor: total - tax,
            tax_minor: tax,
            total_minor: total,
            ..LineAmounts::default()
        }
    }

    fn check(amounts: &LineAmounts, sold: i64, pieces: &[i64], expected: &[(i64, i64, i64)]) {
        let mut already = 0;
        let mut got = Vec::new();
        for &piece in pieces {
            got.push(refund_line_amounts(amounts, sold, already, piece));
            already += piece;
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn a_line_refunded_in_pieces_gives_back_exactly_its_total_and_tax() {
        // 3 soaps for ₹100.00 with ₹15.25 tax: one at a time, 33.33 + 33.34 + 33.33.
        check(
            &amounts(100_00, 15_25),
            3,
            &[1, 1, 1],
            &[
                (28_25, 5_08, 33_33),
                (28_25, 5_09, 33_34),
                (28_25, 5_08, 33_33),
            ],
        );
        // 1.250 kg refunded as 0.250 then 1.000.
        check(
            &amounts(150_00, 7_14),
            1250,
            &[250, 1000],
            &[(28_57, 1_43, 30_00), (114_29, 5_71, 120_00)],
        );
        check(&amounts(10_00, 0), 1, &[1], &[(10_00, 0, 10_00)]);
    }

    #[test]
    fn no_piece_of_a_refund_has_a_negative_taxable_value() {
        // Regression guard (found by tests/reversal_properties.rs): 4 pieces for 0.03 with
        // 0.02 tax, refunded as 2, 1, 1. Sharing out the total and the tax gave the second
        // refund a taxable value of -0.01 beside 0.01 of tax; sharing out the taxable value and
        // the tax gives each piece its parts, never below zero, and they still add up to the
        // line.
        check(
            &amounts(3, 2),
            4,
            &[2, 1, 1],
            &[(1, 1, 2), (0, 1, 1), (0, 0, 0)],
        );
    }
}
