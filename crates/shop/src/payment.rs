//! Paying a bill: tenders (cash, card, UPI, credit, and splits across them), cash rounding,
//! change due, and the credit limit.
//!
//! Rules ([`settle`]):
//! 1. Card, UPI and credit are taken at their amounts, never rounded, and together they may not
//!    exceed the bill's total (no change is given from a card).
//! 2. What they leave is the cash part. Only it is rounded, to the nearest multiple of the
//!    shop's cash rounding step, halves up; the difference is the bill's "Rounding" line.
//! 3. Cash received must cover the rounded cash part; the rest is change, never negative.
//! 4. Without cash, the other tenders must cover the total exactly.
//! 5. Credit needs a customer, and the customer's balance plus the credit may not go above
//!    their credit limit (no limit: any amount); refused with [`PaymentError::CreditOverLimit`].

use serde::{Deserialize, Serialize};

use crate::customer::Customer;

/// How a payment is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PaymentMethod {
    Cash,
    Upi,
    Card,
    /// Added to the customer's khata.
    Credit,
}

impl PaymentMethod {
    /// The method's name on the wire: "cash", "upi", "card", "credit".
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentMethod::Cash => "cash",
            PaymentMethod::Upi => "upi",
            PaymentMethod::Card => "card",
            PaymentMethod::Credit => "credit",
        }
    }

    /// The method's label on screens and receipts.
    pub fn label(self) -> &'static str {
        match self {
            PaymentMethod::Cash => "Cash",
            PaymentMethod::Upi => "UPI",
            PaymentMethod::Card => "Card",
            PaymentMethod::Credit => "Credit",
        }
    }
}

/// What the cashier entered for one part of the payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "method")]
pub enum Tender {
    /// The cash handed over ("Amount received").
    Cash {
        received_minor: i64,
    },
    Card {
        amount_minor: i64,
    },
    /// A UPI payment; `confirmed` once the cashier saw it arrive.
    Upi {
        amount_minor: i64,
        confirmed: bool,
    },
    Credit {
        amount_minor: i64,
    },
}

impl Tender {
    pub fn method(&self) -> PaymentMethod {
        match self {
            Tender::Cash { .. } => PaymentMethod::Cash,
            Tender::Card { .. } => PaymentMethod::Card,
            Tender::Upi { .. } => PaymentMethod::Upi,
            Tender::Credit { .. } => PaymentMethod::Credit,
        }
    }

    /// The amount entered (for cash: received).
    pub fn entered_minor(&self) -> i64 {
        match *self {
            Tender::Cash { received_minor } => received_minor,
            Tender::Card { amount_minor }
            | Tender::Upi { amount_minor, .. }
            | Tender::Credit { amount_minor } => amount_minor,
        }
    }
}

/// One part of a settled payment, as the bill records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettledPayment {
    pub method: PaymentMethod,
    /// What this part pays of the bill (for cash: the rounded cash part).
    pub amount_minor: i64,
    /// Cash only: what was handed over, and the change given back.
    #[serde(default)]
    pub received_minor: Option<i64>,
    #[serde(default)]
    pub change_minor: Option<i64>,
    /// UPI only: whether the cashier confirmed it arrived.
    #[serde(default)]
    pub confirmed: Option<bool>,
}

/// How a bill is paid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settlement {
    /// The bill's total before rounding.
    pub total_minor: i64,
    /// The cash rounding line (negative: rounded down).
    pub rounding_minor: i64,
    /// Total + rounding: what was actually paid.
    pub payable_minor: i64,
    /// The rounded cash part (0 without cash).
    pub cash_due_minor: i64,
    pub cash_received_minor: i64,
    pub change_minor: i64,
    /// The part added to the customer's balance.
    pub credit_minor: i64,
    /// One entry per method used, in the order cash, UPI, card, credit.
    pub payments: Vec<SettledPayment>,
}

/// Why a payment does not settle the bill.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    #[error("a payment amount cannot be negative")]
    NegativeAmount,
    #[error("card, UPI and credit come to {non_cash_minor}, more than the total {total_minor}")]
    NonCashAboveTotal {
        non_cash_minor: i64,
        total_minor: i64,
    },
    #[error("the cash received is {short_minor} short of {cash_due_minor}")]
    CashShort {
        cash_due_minor: i64,
        short_minor: i64,
    },
    #[error("{remaining_minor} is still to pay")]
    Underpaid { remaining_minor: i64 },
    #[error("credit needs a customer")]
    CreditNeedsCustomer,
    #[error(
        "credit of {credit_minor} refused: the customer owes {balance_minor} and their limit is {limit_minor}"
    )]
    CreditOverLimit {
        balance_minor: i64,
        credit_minor: i64,
        limit_minor: i64,
        /// How much credit would still be allowed.
        available_minor: i64,
    },
    #[error("the amounts are too large")]
    TooLarge,
}

/// `amount` rounded to the nearest multiple of `step` (halves up); a step below 2 changes nothing.
pub fn round_to_step(amount_minor: i64, step_minor: i64) -> i64 {
    if step_minor < 2 {
        return amount_minor;
    }
    let remainder = amount_minor.rem_euclid(step_minor);
    let down = amount_minor - remainder;
    if remainder * 2 >= step_minor {
        down + step_minor
    } else {
        down
    }
}

/// Settles a bill of `total_minor` with `tenders` (rules 1–5 of the module documentation).
/// `customer` is the bill's customer, if any, with the balance this device knows.
pub fn settle(
    total_minor: i64,
    tenders: &[Tender],
    cash_rounding_step_minor: i64,
    customer: Option<&Customer>,
) -> Result<Settlement, PaymentError> {
    if tenders.iter().any(|tender| tender.entered_minor() < 0) || total_minor < 0 {
        return Err(PaymentError::NegativeAmount);
    }
    let too_large = |amount: i64| amount > crate::money::MAX_EXACT_AMOUNT;
    if too_large(total_minor)
        || tenders
            .iter()
            .any(|tender| too_large(tender.entered_minor()))
    {
        return Err(PaymentError::TooLarge);
    }
    let sum_of = |method: PaymentMethod| -> Result<i64, PaymentError> {
        tenders
            .iter()
            .filter(|tender| tender.method() == method)
            .try_fold(0i64, |sum, tender| sum.checked_add(tender.entered_minor()))
            .ok_or(PaymentError::TooLarge)
    };
    let card = sum_of(PaymentMethod::Card)?;
    let upi = sum_of(PaymentMethod::Upi)?;
    let credit = sum_of(PaymentMethod::Credit)?;
    let cash_received = sum_of(PaymentMethod::Cash)?;
    let non_cash = card
        .checked_add(upi)
        .and_then(|sum| sum.checked_add(credit))
        .ok_or(PaymentError::TooLarge)?;
    if non_cash > total_minor {
        return Err(PaymentError::NonCashAboveTotal {
            non_cash_minor: non_cash,
            total_minor,
        });
    }
    let remaining = total_minor - non_cash;
    let pays_cash = tenders
        .iter()
        .any(|tender| tender.method() == PaymentMethod::Cash);
    let (cash_due, rounding, change) = if pays_cash {
        let cash_due = round_to_step(remaining, cash_rounding_step_minor);
        if cash_received < cash_due {
            return Err(PaymentError::CashShort {
                cash_due_minor: cash_due,
                short_minor: cash_due - cash_received,
            });
        }
        (cash_due, cash_due - remaining, cash_received - cash_due)
    } else if remaining > 0 {
        return Err(PaymentError::Underpaid {
            remaining_minor: remaining,
        });
    } else {
        (0, 0, 0)
    };
    if credit > 0 {
        let customer = customer.ok_or(PaymentError::CreditNeedsCustomer)?;
        if let Some(limit) = customer.credit_limit_minor {
            let balance = customer.credit_balance_minor;
            if balance.saturating_add(credit) > limit {
                return Err(PaymentError::CreditOverLimit {
                    balance_minor: balance,
                    credit_minor: credit,
                    limit_minor: limit,
                    available_minor: (limit - balance).max(0),
                });
            }
        }
    }
    let mut payments = Vec::new();
    if pays_cash {
        payments.push(SettledPayment {
            method: PaymentMethod::Cash,
            amount_minor: cash_due,
            received_minor: Some(cash_received),
            change_minor: Some(change),
            confirmed: None,
        });
    }
    let upi_tenders: Vec<bool> = tenders
        .iter()
        .filter_map(|tender| match tender {
            Tender::Upi { confirmed, .. } => Some(*confirmed),
            _ => None,
        })
        .collect();
    if !upi_tenders.is_empty() {
        payments.push(SettledPayment {
            method: PaymentMethod::Upi,
            amount_minor: upi,
            received_minor: None,
            change_minor: None,
            confirmed: Some(upi_tenders.iter().all(|confirmed| *confirmed)),
        });
    }
    for (method, amount) in [(PaymentMethod::Card, card), (PaymentMethod::Credit, credit)] {
        if tenders.iter().any(|tender| tender.method() == method) {
            payments.push(SettledPayment {
                method,
                amount_minor: amount,
                received_minor: None,
                change_minor: None,
                confirmed: None,
            });
        }
    }
    Ok(Settlement {
        total_minor,
        rounding_minor: rounding,
        payable_minor: total_minor + rounding,
        cash_due_minor: cash_due,
        cash_received_minor: cash_received,
        change_minor: change,
        credit_minor: credit,
        payments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(balance: i64, limit: Option<i64>) -> Customer {
        Customer {
            id: "c1".into(),
            name: "Asha".into(),
            credit_balance_minor: balance,
            credit_limit_minor: limit,
            ..Customer::default()
        }
    }

    #[test]
    fn cash_is_rounded_to_the_step_and_change_given() {
        // ₹236.40 paid with a ₹500 note, rounding to whole rupees: ₹236, change ₹264.
        let settlement = settle(
            236_40,
            &[Tender::Cash {
                received_minor: 500_00,
            }],
            100,
            None,
        )
        .unwrap();
        assert_eq!(settlement.rounding_minor, -40);
        assert_eq!(settlement.payable_minor, 236_00);
        assert_eq!(settlement.cash_due_minor, 236_00);
        assert_eq!(settlement.change_minor, 264_00);
        // Halves go up.
        let settlement = settle(
            236_50,
            &[Tender::Cash {
                received_minor: 237_00,
            }],
            100,
            None,
        )
        .unwrap();
        assert_eq!(
            (settlement.rounding_minor, settlement.change_minor),
            (50, 0)
        );
        // No rounding step: exact.
        let settlement = settle(
            236_43,
            &[Tender::Cash {
                received_minor: 236_43,
            }],
            1,
            None,
        )
        .unwrap();
        assert_eq!((settlement.rounding_minor, settlement.change_minor), (0, 0));
    }

    #[test]
    fn rounding_touches_only_the_cash_part_of_a_split() {
        let settlement = settle(
            236_40,
            &[
                Tender::Card {
                    amount_minor: 100_33,
                },
                Tender::Upi {
                    amount_minor: 50_00,
                    confirmed: false,
                },
                Tender::Cash {
                    received_minor: 100_00,
                },
            ],
            100,
            None,
        )
        .unwrap();
        // 236.40 − 150.33 = 86.07 in cash, rounded to 86.00.
        assert_eq!(settlement.cash_due_minor, 86_00);
        assert_eq!(settlement.rounding_minor, -7);
        assert_eq!(settlement.change_minor, 14_00);
        assert_eq!(
            settlement.payments,
            vec![
                SettledPayment {
                    method: PaymentMethod::Cash,
                    amount_minor: 86_00,
                    received_minor: Some(100_00),
                    change_minor: Some(14_00),
                    confirmed: None
                },
                SettledPayment {
                    method: PaymentMethod::Upi,
                    amount_minor: 50_00,
                    received_minor: None,
                    change_minor: None,
                    confirmed: Some(false)
                },
                SettledPayment {
                    method: PaymentMethod::Card,
                    amount_minor: 100_33,
                    received_minor: None,
                    change_minor: None,
                    confirmed: None
                },
            ]
        );
        // Without cash nothing is rounded: the card pays to the paisa.
        let settlement = settle(
            236_40,
            &[Tender::Card {
                amount_minor: 236_40,
            }],
            100,
            None,
        )
        .unwrap();
        assert_eq!(
            (settlement.rounding_minor, settlement.payable_minor),
            (0, 236_40)
        );
    }

    #[test]
    fn short_and_excess_payments_are_refused() {
        assert_eq!(
            settle(
                100_00,
                &[Tender::Cash {
                    received_minor: 50_00
                }],
                100,
                None
            ),
            Err(PaymentError::CashShort {
                cash_due_minor: 100_00,
                short_minor: 50_00
            })
        );
        assert_eq!(
            settle(
                100_00,
                &[Tender::Card {
                    amount_minor: 60_00
                }],
                100,
                None
            ),
            Err(PaymentError::Underpaid {
                remaining_minor: 40_00
            })
        );
        assert_eq!(
            settle(
                100_00,
                &[Tender::Card {
                    amount_minor: 100_01
                }],
                100,
                None
            ),
            Err(PaymentError::NonCashAboveTotal {
                non_cash_minor: 100_01,
                total_minor: 100_00
            })
        );
        assert_eq!(
            settle(100_00, &[Tender::Cash { received_minor: -1 }], 100, None),
            Err(PaymentError::NegativeAmount)
        );
        assert_eq!(
            settle(
                i64::MAX,
                &[Tender::Cash {
                    received_minor: i64::MAX
                }],
                100,
                None
            ),
            Err(PaymentError::TooLarge)
        );
        assert_eq!(
            settle(100_00, &[], 100, None),
            Err(PaymentError::Underpaid {
                remaining_minor: 100_00
            })
        );
    }

    #[test]
    fn credit_goes_up_to_the_limit_and_no_further() {
        let credit = |amount| {
            [Tender::Credit {
                amount_minor: amount,
            }]
        };
        assert_eq!(
            settle(100_00, &credit(100_00), 100, None),
            Err(PaymentError::CreditNeedsCustomer)
        );
        let near_limit = customer(400_00, Some(500_00));
        let settlement = settle(100_00, &credit(100_00), 100, Some(&near_limit)).unwrap();
        assert_eq!(settlement.credit_minor, 100_00);
        assert_eq!(
            settle(100_01, &credit(100_01), 1, Some(&near_limit)),
            Err(PaymentError::CreditOverLimit {
                balance_minor: 400_00,
                credit_minor: 100_01,
                limit_minor: 500_00,
                available_minor: 100_00,
            })
        );
        let unlimited = customer(1_000_000_00, None);
        assert!(settle(100_00, &credit(100_00), 100, Some(&unlimited)).is_ok());
        // Part credit, part cash: the credit is exact, the cash rounded.
        let settlement = settle(
            150_75,
            &[
                Tender::Credit {
                    amount_minor: 100_00,
                },
                Tender::Cash {
                    received_minor: 51_00,
                },
            ],
            100,
            Some(&near_limit),
        )
        .unwrap();
        assert_eq!(settlement.cash_due_minor, 51_00);
        assert_eq!(settlement.rounding_minor, 25);
        assert_eq!(settlement.credit_minor, 100_00);
    }

    #[test]
    fn steps_round_to_the_nearest_multiple() {
        let check = |amount, step, expected| {
            assert_eq!(round_to_step(amount, step), expected, "{amount} to {step}");
        };
        check(1234, 100, 1200);
        check(1250, 100, 1300);
        check(1249, 100, 1200);
        check(1232, 5, 1230);
        check(1233, 5, 1235);
        check(1235, 10, 1240);
        check(7, 1, 7);
        check(0, 100, 0);
        check(30, 100, 0);
    }
}
