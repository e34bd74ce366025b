//! Property tests of the money rules: whatever the lines and payments, totals are sums of
//! their lines, tax parts sum to the tax, rounding never touches a non-cash payment, change is
//! never negative, and every figure is an integer count of minor units that adds up exactly.

use counterbook_shop::bill::{bill_totals, BillLine, LineDiscount};
use counterbook_shop::payment::{settle, PaymentMethod, Tender};
use counterbook_shop::product::QuantityUnit;
use counterbook_shop::settings::TaxMode;
use proptest::prelude::*;

fn any_unit() -> impl Strategy<Value = QuantityUnit> {
    prop::sample::select(QuantityUnit::ALL.to_vec())
}

fn any_tax_mode() -> impl Strategy<Value = TaxMode> {
    prop_oneof![Just(TaxMode::Inclusive), Just(TaxMode::Exclusive)]
}

/// Lines as a counter makes them: prices up to ₹1,00,000, quantities up to 1,000 pieces or
/// 100 kg, GST-like and arbitrary rates, discounts that fit the line.
fn any_line() -> impl Strategy<Value = BillLine> {
    (
        any_unit(),
        0i64..10_000_000,
        1i64..100_000,
        prop_oneof![
            prop::sample::select(vec![0u32, 500, 1200, 1800, 2800]),
            0u32..=10_000
        ],
        prop_oneof![
            Just(LineDiscount::None),
            (0u32..=10_000).prop_map(|basis_points| LineDiscount::Percent { basis_points }),
            (0i64..1_000).prop_map(|minor| LineDiscount::Amount { minor }),
        ],
    )
        .prop_map(|(unit, price, quantity, rate, discount)| {
            let quantity = if unit.is_loose() {
                quantity
            } else {
                quantity % 1000 + 1
            };
            let mut line = BillLine {
                product_id: "p".into(),
                name: "Item".into(),
                unit,
                unit_price_minor: price,
                quantity,
                discount: LineDiscount::None,
                tax_rate_basis_points: rate,
            };
            // An amount discount is kept within the line's gross amount.
            let gross = counterbook_shop::bill::line_amounts(&line, 0, TaxMode::Inclusive)
                .map(|amounts| amounts.gross_minor)
                .unwrap_or(0);
            line.discount = match discount {
                LineDiscount::Amount { minor } => LineDiscount::Amount {
                    minor: minor.min(gross),
                },
                other => other,
            };
            line
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn totals_are_the_sums_of_their_lines(
        lines in prop::collection::vec(any_line(), 0..12),
        mode in any_tax_mode(),
    ) {
        let totals = bill_totals(&lines, mode).unwrap();
        let sum = |figure: fn(&counterbook_shop::LineAmounts) -> i64| -> i64 {
            totals.lines.iter().map(figure).sum()
        };
        prop_assert_eq!(totals.subtotal_minor, sum(|a| a.gross_minor));
        prop_assert_eq!(totals.discount_minor, sum(|a| a.discount_minor));
        prop_assert_eq!(totals.taxable_minor, sum(|a| a.taxable_minor));
        prop_assert_eq!(totals.tax_minor, sum(|a| a.tax_minor));
        prop_assert_eq!(totals.total_minor, sum(|a| a.total_minor));
        prop_assert_eq!(totals.total_minor, totals.taxable_minor + totals.tax_minor);
        for amounts in &totals.lines {
            prop_assert_eq!(amounts.net_minor, amounts.gross_minor - amounts.discount_minor);
            prop_assert!(amounts.discount_minor >= 0 && amounts.net_minor >= 0);
            prop_assert!(amounts.tax_minor >= 0 && amounts.taxable_minor >= 0);
            match mode {
                // Inclusive prices: the customer pays the shelf price, tax inside it.
                TaxMode::Inclusive => prop_assert_eq!(amounts.total_minor, amounts.net_minor),
                TaxMode::Exclusive => prop_assert_eq!(amounts.taxable_minor, amounts.net_minor),
            }
        }
    }

    #[test]
    fn tax_parts_sum_to_the_tax(
        lines in prop::collection::vec(any_line(), 0..12),
        mode in any_tax_mode(),
    ) {
        let totals = bill_totals(&lines, mode).unwrap();
        let tax: i64 = totals.tax_summary.iter().map(|row| row.tax_minor).sum();
        let taxable: i64 = totals.tax_summary.iter().map(|row| row.taxable_minor).sum();
        prop_assert_eq!(tax, totals.tax_minor);
        prop_assert_eq!(taxable, totals.taxable_minor);
        for row in &totals.tax_summary {
            let (central, state) = row.central_and_state_parts();
            prop_assert_eq!(central + state, row.tax_minor);
            prop_assert!((state - central).abs() <= 1);
        }
        let rates: Vec<u32> = totals.tax_summary.iter().map(|row| row.tax_rate_basis_points).collect();
        let mut sorted = rates.clone();
        sorted.sort_unstable();
        sorted.dedup();
        prop_assert_eq!(rates, sorted, "one row per rate, ascending");
    }

    #[test]
    fn rounding_touches_only_cash_and_change_is_never_negative(
        total in 0i64..100_000_000,
        card_share in 0u32..=100,
        upi_share in 0u32..=100,
        with_cash in any::<bool>(),
        extra_cash in 0i64..100_000,
        step in prop::sample::select(vec![1i64, 5, 10, 25, 50, 100, 500]),
    ) {
        let card = total * i64::from(card_share) / 100;
        let upi = (total - card) * i64::from(upi_share) / 100;
        let remaining = total - card - upi;
        let mut tenders = vec![
            Tender::Card { amount_minor: card },
            Tender::Upi { amount_minor: upi, confirmed: true },
        ];
        if with_cash {
            // Enough cash for the remaining part rounded up, plus some.
            tenders.push(Tender::Cash { received_minor: remaining + step + extra_cash });
        }
        match settle(total, &tenders, step, None) {
            Ok(settlement) => {
                prop_assert!(settlement.change_minor >= 0);
                prop_assert!(settlement.rounding_minor.abs() <= step / 2);
                prop_assert_eq!(settlement.payable_minor, total + settlement.rounding_minor);
                let paid: i64 = settlement.payments.iter().map(|p| p.amount_minor).sum();
                prop_assert_eq!(paid, settlement.payable_minor);
                for payment in &settlement.payments {
                    match payment.method {
                        PaymentMethod::Card => prop_assert_eq!(payment.amount_minor, card),
                        PaymentMethod::Upi => prop_assert_eq!(payment.amount_minor, upi),
                        PaymentMethod::Cash => {
                            prop_assert_eq!(payment.amount_minor % step, 0);
                            prop_assert_eq!(
                                payment.amount_minor,
                                remaining + settlement.rounding_minor
                            );
                            prop_assert_eq!(
                                payment.received_minor.unwrap() - payment.change_minor.unwrap(),
                                payment.amount_minor
                            );
                        }
                        PaymentMethod::Credit => prop_assert!(false, "no credit was tendered"),
                    }
                }
                if !with_cash {
                    prop_assert_eq!(settlement.rounding_minor, 0);
                }
            }
            Err(error) => {
                // Only a bill not covered without cash may be refused.
                prop_assert!(!with_cash && remaining > 0, "{error}");
            }
        }
    }
}
