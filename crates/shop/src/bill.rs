//! Bill lines and bill totals: price × quantity, line discounts, tax per rate, and the tax
//! summary a GST invoice shows.
//!
//! Rules, all in integer minor units (see [`crate::money`] for the one rounding rule):
//! 1. A line's gross amount is `unit price × quantity ÷ scale`, rounded (scale 1 for pieces,
//!    1000 for loose goods counted in milli-units): 1.250 kg at ₹80.00/kg is ₹100.00.
//! 2. Its discount is an amount (at most the gross) or a percentage of the gross, rounded.
//! 3. Its net amount is gross − discount, in the shop's price convention.
//! 4. Tax is computed per line, rounded once: with tax-inclusive prices it is the part of the
//!    net amount that is tax, `net × rate ÷ (10000 + rate)`, and the taxable value is the rest;
//!    with tax-exclusive prices the taxable value is the net amount, the tax `net × rate ÷ 10000`.
//! 5. A line's total is taxable value + tax; the bill's total is the sum of its lines' totals, its
//!    tax summary groups lines by rate (taxable value and tax per rate are sums of lines).
//!
//! So every figure on the bill is a sum of rounded line figures and the receipt always adds up.

use counterbook_sync::sorted_map::SortedMap;
use serde::{Deserialize, Serialize};

use crate::money::{clamp_to_i64, divide_rounding_half_away, MAX_EXACT_AMOUNT};
use crate::product::{Product, QuantityUnit};
use crate::settings::TaxMode;

/// A line's discount (in serde, an object tagged by `kind`: `{"kind": "percent",
/// "basis_points": 1000}`). Read through [`DiscountFields`]: serde's derived reading of a
/// tagged enum buffers the object first, and inlined into every bill line's it was 8 KB of
/// the app's wasm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind", try_from = "DiscountFields")]
pub enum LineDiscount {
    #[default]
    None,
    /// This many minor units off the line.
    Amount { minor: i64 },
    /// This share of the line's gross amount off, in basis points (1000 = 10%).
    Percent { basis_points: u32 },
}

/// A stored [`LineDiscount`]'s fields, every kind's (the kinds are camelCase, their fields
/// as written: `basis_points`).
#[derive(Deserialize)]
struct DiscountFields {
    kind: String,
    minor: Option<i64>,
    basis_points: Option<u32>,
}

/// Why a stored discount could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoredDiscountError {
    #[error("unknown discount kind `{0}`, expected `none`, `amount` or `percent`")]
    UnknownKind(String),
    #[error("a discount of kind `{kind}` has no `{field}`")]
    Missing {
        kind: &'static str,
        field: &'static str,
    },
}

impl TryFrom<DiscountFields> for LineDiscount {
    type Error = StoredDiscountError;
    fn try_from(fields: DiscountFields) -> Result<LineDiscount, StoredDiscountError> {
        match fields.kind.as_str() {
            "none" => Ok(LineDiscount::None),
            "amount" => Ok(LineDiscount::Amount {
                minor: fields.minor.ok_or(StoredDiscountError::Missing {
                    kind: "amount",
                    field: "minor",
                })?,
            }),
            "percent" => Ok(LineDiscount::Percent {
                basis_points: fields.basis_points.ok_or(StoredDiscountError::Missing {
                    kind: "percent",
                    field: "basis_points",
                })?,
            }),
            _ => Err(StoredDiscountError::UnknownKind(fields.kind)),
        }
    }
}

/// One line of a bill, with the name and price as sold (the product may change later).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BillLine {
    pub product_id: String,
    pub name: String,
    #[serde(default)]
    pub unit: QuantityUnit,
    /// Price of one whole unit, as sold.
    pub unit_price_minor: i64,
    /// Pieces, or milli-units for loose goods.
    pub quantity: i64,
    #[serde(default)]
    pub discount: LineDiscount,
    /// The product's tax rate when sold, in basis points.
    #[serde(default)]
    pub tax_rate_basis_points: u32,
}

impl BillLine {
    /// A line of `quantity` of `product` at its current price and tax rate.
    pub fn of_product(product: &Product, quantity: i64) -> BillLine {
        BillLine {
            product_id: product.id.clone(),
            name: product.name.clone(),
            unit: product.unit,
            unit_price_minor: product.price_minor,
            quantity,
            discount: LineDiscount::None,
            tax_rate_basis_points: product.tax_rate_basis_points,
        }
    }
}

/// A line's computed amounts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineAmounts {
    /// Unit price × quantity.
    pub gross_minor: i64,
    pub discount_minor: i64,
    /// Gross − discount, in the shop's price convention (tax included or not).
    pub net_minor: i64,
    /// The value tax is computed on.
    pub taxable_minor: i64,
    pub tax_minor: i64,
    /// Taxable value + tax: what the customer pays for the line.
    pub total_minor: i64,
}

/// One row of the tax summary: all lines at one rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaxSummaryRow {
    pub tax_rate_basis_points: u32,
    pub taxable_minor: i64,
    pub tax_minor: i64,
}

impl TaxSummaryRow {
    /// GST splits intra-state tax into equal central and state parts: (CGST, SGST), the odd
    /// minor unit, if any, going to the state part so the two always sum to the tax.
    pub fn central_and_state_parts(&self) -> (i64, i64) {
        let central = self.tax_minor / 2;
        (central, self.tax_minor - central)
    }
}

/// A bill's totals, each the sum of its lines' figures.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BillTotals {
    /// Sum of the lines' gross amounts.
    pub subtotal_minor: i64,
    pub discount_minor: i64,
    pub taxable_minor: i64,
    pub tax_minor: i64,
    /// What the bill comes to, before any cash rounding (which belongs to the payment).
    pub total_minor: i64,
    /// Each line's amounts, in the order of the lines.
    pub lines: Vec<LineAmounts>,
    /// Per tax rate, ascending.
    pub tax_summary: Vec<TaxSummaryRow>,
}

/// Why a bill's lines cannot be totalled; `line` is the 0-based line index.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BillError {
    #[error("line {} ({name}): the quantity must be above zero", line + 1)]
    NonPositiveQuantity { line: usize, name: String },
    #[error("line {} ({name}): the price cannot be negative", line + 1)]
    NegativePrice { line: usize, name: String },
    #[error("line {} ({name}): the discount cannot be negative", line + 1)]
    NegativeDiscount { line: usize, name: String },
    #[error("line {} ({name}): the discount is more than the line's amount", line + 1)]
    DiscountAboveAmount { line: usize, name: String },
    #[error("line {} ({name}): the tax rate is above 100%", line + 1)]
    TaxRateTooHigh { line: usize, name: String },
    #[error("the bill's amounts are too large")]
    TooLarge,
}

/// Computes one line's amounts (rules 1–4 of the module documentation).
pub fn line_amounts(
    line: &BillLine,
    index: usize,
    tax_mode: TaxMode,
) -> Result<LineAmounts, BillError> {
    let name = || line.name.clone();
    if line.quantity <= 0 {
        return Err(BillError::NonPositiveQuantity {
            line: index,
            name: name(),
        });
    }
    if line.unit_price_minor < 0 {
        return Err(BillError::NegativePrice {
            line: index,
            name: name(),
        });
    }
    if line.tax_rate_basis_points > 10_000 {
        return Err(BillError::TaxRateTooHigh {
            line: index,
            name: name(),
        });
    }
    let gross = divide_rounding_half_away(
        i128::from(line.unit_price_minor) * i128::from(line.quantity),
        i128::from(line.unit.quantity_scale()),
    );
    if gross > MAX_EXACT_AMOUNT {
        return Err(BillError::TooLarge);
    }
    let discount = match line.discount {
        LineDiscount::None => 0,
        LineDiscount::Amount { minor } if minor < 0 => {
            return Err(BillError::NegativeDiscount {
                line: index,
                name: name(),
            })
        }
        LineDiscount::Amount { minor } if minor > gross => {
            return Err(BillError::DiscountAboveAmount {
                line: index,
                name: name(),
            })
        }
        LineDiscount::Amount { minor } => minor,
        LineDiscount::Percent { basis_points } if basis_points > 10_000 => {
            return Err(BillError::DiscountAboveAmount {
                line: index,
                name: name(),
            })
        }
        LineDiscount::Percent { basis_points } => {
            divide_rounding_half_away(i128::from(gross) * i128::from(basis_points), 10_000)
        }
    };
    let net = gross - discount;
    let rate = i128::from(line.tax_rate_basis_points);
    let (taxable, tax) = match tax_mode {
        TaxMode::Inclusive => {
            let tax = divide_rounding_half_away(i128::from(net) * rate, 10_000 + rate);
            (net - tax, tax)
        }
        TaxMode::Exclusive => (
            net,
            divide_rounding_half_away(i128::from(net) * rate, 10_000),
        ),
    };
    Ok(LineAmounts {
        gross_minor: gross,
        discount_minor: discount,
        net_minor: net,
        taxable_minor: taxable,
        tax_minor: tax,
        total_minor: taxable + tax,
    })
}

/// Totals a bill's lines (rule 5 of the module documentation).
pub fn bill_totals(lines: &[BillLine], tax_mode: TaxMode) -> Result<BillTotals, BillError> {
    let amounts = lines
        .iter()
        .enumerate()
        .map(|(index, line)| line_amounts(line, index, tax_mode))
        .collect::<Result<Vec<_>, _>>()?;
    let sum = |figure: fn(&LineAmounts) -> i64| -> Result<i64, BillError> {
        let total: i128 = amounts.iter().map(|a| i128::from(figure(a))).sum();
        if total > i128::from(MAX_EXACT_AMOUNT) {
            Err(BillError::TooLarge)
        } else {
            Ok(clamp_to_i64(total))
        }
    };
    // A handful of rates: a sorted vector, not a BTreeMap (smaller in the wasm).
    let mut by_rate: SortedMap<u32, (i64, i64)> = SortedMap::new();
    for (line, amount) in lines.iter().zip(&amounts) {
        let row = by_rate.get_or_insert_with(line.tax_rate_basis_points, Default::default);
        row.0 += amount.taxable_minor;
        row.1 += amount.tax_minor;
    }
    Ok(BillTotals {
        subtotal_minor: sum(|a| a.gross_minor)?,
        discount_minor: sum(|a| a.discount_minor)?,
        taxable_minor: sum(|a| a.taxable_minor)?,
        tax_minor: sum(|a| a.tax_minor)?,
        total_minor: sum(|a| a.total_minor)?,
        tax_summary: by_rate
            .iter()
            .map(|(rate, (taxable, tax))| TaxSummaryRow {
                tax_rate_basis_points: *rate,
                taxable_minor: *taxable,
                tax_minor: *tax,
            })
            .collect(),
        lines: amounts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_discount_reads_back_and_a_bad_one_is_refused() {
        for (discount, stored) in [
            (LineDiscount::None, serde_json::json!({"kind": "none"})),
            (
                LineDiscount::Amount { minor: 250 },
                serde_json::json!({"kind": "amount", "minor": 250}),
            ),
            (
                LineDiscount::Percent { basis_points: 1000 },
                serde_json::json!({"kind": "percent", "basis_points": 1000}),
            ),
        ] {
            assert_eq!(serde_json::to_value(discount).unwrap(), stored);
            let read: LineDiscount = serde_json::from_value(stored).unwrap();
            assert_eq!(read, discount);
        }
        let unknown = serde_json::from_value::<LineDiscount>(serde_json::json!({"kind": "half"}));
        assert!(unknown
            .unwrap_err()
            .to_string()
            .contains("unknown discount kind `half`"));
        let missing = serde_json::from_value::<LineDiscount>(serde_json::json!({"kind": "amount"}));
        assert!(missing.unwrap_err().to_string().contains("has no `minor`"));
    }

    fn line(price: i64, quantity: i64, rate: u32) -> BillLine {
        BillLine {
            product_id: "p".into(),
            name: "Item".into(),
            unit: QuantityUnit::Piece,
            unit_price_minor: price,
            quantity,
            discount: LineDiscount::None,
            tax_rate_basis_points: rate,
        }
    }

    fn check_line(line: BillLine, mode: TaxMode, expected: [i64; 6]) {
        let amounts = line_amounts(&line, 0, mode).unwrap();
        assert_eq!(
            [
                amounts.gross_minor,
                amounts.discount_minor,
                amounts.net_minor,
                amounts.taxable_minor,
                amounts.tax_minor,
                amounts.total_minor
            ],
            expected,
            "{line:?} {mode:?}: [gross, discount, net, taxable, tax, total]"
        );
    }

    #[test]
    fn inclusive_prices_hold_their_tax() {
        // ₹118.00 at 18% inclusive: ₹100.00 taxable, ₹18.00 tax.
        check_line(
            line(118_00, 1, 1800),
            TaxMode::Inclusive,
            [11800, 0, 11800, 10000, 1800, 11800],
        );
        // ₹10.00 at 5%: 47.619… paise of tax, rounded to 48.
        check_line(
            line(10_00, 1, 500),
            TaxMode::Inclusive,
            [1000, 0, 1000, 952, 48, 1000],
        );
        check_line(
            line(25_00, 3, 0),
            TaxMode::Inclusive,
            [7500, 0, 7500, 7500, 0, 7500],
        );
    }

    #[test]
    fn exclusive_prices_get_their_tax_added() {
        check_line(
            line(100_00, 2, 1800),
            TaxMode::Exclusive,
            [20000, 0, 20000, 20000, 3600, 23600],
        );
        // 12% of ₹0.99 is 11.88 paise, rounded to 12.
        check_line(
            line(99, 1, 1200),
            TaxMode::Exclusive,
            [99, 0, 99, 99, 12, 111],
        );
    }

    #[test]
    fn loose_goods_count_milli_units() {
        let rice = BillLine {
            unit: QuantityUnit::Kilogram,
            ..line(80_00, 1250, 0)
        };
        check_line(rice, TaxMode::Inclusive, [10000, 0, 10000, 10000, 0, 10000]);
        // 0.333 kg at ₹45.55/kg = 1516.815 paise, rounded to 1517.
        let sugar = BillLine {
            unit: QuantityUnit::Kilogram,
            ..line(45_55, 333, 500)
        };
        check_line(sugar, TaxMode::Exclusive, [1517, 0, 1517, 1517, 76, 1593]);
    }

    #[test]
    fn discounts_come_off_before_tax() {
        let amount_off = BillLine {
            discount: LineDiscount::Amount { minor: 18_00 },
            ..line(118_00, 1, 1800)
        };
        check_line(
            amount_off,
            TaxMode::Inclusive,
            [11800, 1800, 10000, 8475, 1525, 10000],
        );
        let ten_percent = BillLine {
            discount: LineDiscount::Percent { basis_points: 1000 },
            ..line(100_00, 2, 1800)
        };
        check_line(
            ten_percent,
            TaxMode::Exclusive,
            [20000, 2000, 18000, 18000, 3240, 21240],
        );
        let all_off = BillLine {
            discount: LineDiscount::Percent {
                basis_points: 10_000,
            },
            ..line(5_00, 1, 1800)
        };
        check_line(all_off, TaxMode::Inclusive, [500, 500, 0, 0, 0, 0]);
    }

    #[test]
    fn bad_lines_are_refused_by_number() {
        let check = |bad: BillLine, expected: BillError| {
            let lines = vec![line(1_00, 1, 0), bad];
            assert_eq!(bill_totals(&lines, TaxMode::Inclusive), Err(expected));
        };
        let named = |line: usize| ("Item".to_string(), line);
        let (name, index) = named(1);
        check(
            line(1_00, 0, 0),
            BillError::NonPositiveQuantity {
                line: index,
                name: name.clone(),
            },
        );
        check(
            line(-1, 1, 0),
            BillError::NegativePrice {
                line: index,
                name: name.clone(),
            },
        );
        check(
            line(1_00, 1, 10_001),
            BillError::TaxRateTooHigh {
                line: index,
                name: name.clone(),
            },
        );
        check(
            BillLine {
                discount: LineDiscount::Amount { minor: 1_01 },
                ..line(1_00, 1, 0)
            },
            BillError::DiscountAboveAmount {
                line: index,
                name: name.clone(),
            },
        );
        check(
            BillLine {
                discount: LineDiscount::Amount { minor: -1 },
                ..line(1_00, 1, 0)
            },
            BillError::NegativeDiscount {
                line: index,
                name: name.clone(),
            },
        );
        check(
            BillLine {
                discount: LineDiscount::Percent {
                    basis_points: 10_001,
                },
                ..line(1_00, 1, 0)
            },
            BillError::DiscountAboveAmount { line: index, name },
        );
        check(line(MAX_EXACT_AMOUNT, 2, 0), BillError::TooLarge);
        assert_eq!(
            BillError::NonPositiveQuantity {
                line: 1,
                name: "Tea".into()
            }
            .to_string(),
            "line 2 (Tea): the quantity must be above zero"
        );
    }

    #[test]
    fn a_gst_bill_sums_per_rate() {
        let lines = vec![
            line(118_00, 1, 1800),
            line(10_00, 3, 500),
            line(59_00, 2, 1800),
            line(20_00, 1, 0),
        ];
        let totals = bill_totals(&lines, TaxMode::Inclusive).unwrap();
        assert_eq!(totals.subtotal_minor, 118_00 + 30_00 + 118_00 + 20_00);
        assert_eq!(totals.total_minor, totals.subtotal_minor);
        assert_eq!(
            totals.tax_summary,
            vec![
                TaxSummaryRow {
                    tax_rate_basis_points: 0,
                    taxable_minor: 20_00,
                    tax_minor: 0
                },
                TaxSummaryRow {
                    tax_rate_basis_points: 500,
                    taxable_minor: 2857,
                    tax_minor: 143
                },
                TaxSummaryRow {
                    tax_rate_basis_points: 1800,
                    taxable_minor: 200_00,
                    tax_minor: 36_00
                },
            ]
        );
        assert_eq!(totals.tax_minor, 143 + 36_00);
        assert_eq!(totals.taxable_minor + totals.tax_minor, totals.total_minor);
        assert_eq!(totals.tax_summary[1].central_and_state_parts(), (71, 72));
        assert_eq!(
            bill_totals(&[], TaxMode::Exclusive).unwrap(),
            BillTotals::default()
        );
    }
}
