//! Money and quantities as integers, and the one rounding rule everything here uses.
//!
//! Money is an `i64` count of minor units (paise, centimes, cents) of the shop's currency; the
//! shop's `minor_unit_exponent` says how many minor units make one major unit (2 for INR: 100
//! paise make a rupee). Quantities are `i64` too: whole pieces, or milli-units for loose goods
//! (see [`crate::product::QuantityUnit`]). No float is ever used for either.
//!
//! Rounding rule: every division rounds to the nearest integer, halves away from zero
//! ([`divide_rounding_half_away`]). It is applied once per computed amount (a line's amount, its
//! discount, its tax), never on a sum, so that sums of rounded parts are exact.

/// Why a decimal amount typed by a person (or read from a file) is not an amount.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("the amount is empty")]
    Empty,
    #[error("the amount cannot be negative")]
    Negative,
    #[error("\"{0}\" is not a number: use digits and at most one decimal point, like 12.50")]
    NotANumber(String),
    #[error("\"{text}\" has more than {allowed} digits after the decimal point")]
    TooManyDecimals { text: String, allowed: u32 },
    #[error("\"{0}\" is too large")]
    TooLarge(String),
}

/// The largest amount accepted from text: 2^53, so that every amount stays exact as a
/// JavaScript number in the browser.
pub const MAX_EXACT_AMOUNT: i64 = 1 << 53;

/// `numerator / denominator`, rounded to the nearest integer, halves away from zero.
/// `denominator` must be positive. Computed in `i128`, so no product of two `i64`s overflows;
/// results outside `i64` saturate.
pub fn divide_rounding_half_away(numerator: i128, denominator: i128) -> i64 {
    debug_assert!(denominator > 0, "denominators here are positive constants");
    let half = denominator / 2;
    let rounded = if numerator >= 0 {
        (numerator + half) / denominator
    } else {
        (numerator - half) / denominator
    };
    clamp_to_i64(rounded)
}

/// Saturates an `i128` into `i64`.
pub fn clamp_to_i64(value: i128) -> i64 {
    value.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Parses a non-negative decimal like "12.50", "12,50", "12" or ".5" into an integer scaled by
/// `10^decimals` (minor units for a price with the currency's exponent; milli-units with 3).
pub fn parse_decimal(text: &str, decimals: u32) -> Result<i64, AmountError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(AmountError::Empty);
    }
    if text.starts_with('-') {
        return Err(AmountError::Negative);
    }
    let normalized = text.replace(',', ".");
    let (whole, fraction) = normalized
        .split_once('.')
        .unwrap_or((normalized.as_str(), ""));
    let all_digits = |part: &str| part.chars().all(|c| c.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return Err(AmountError::NotANumber(text.to_owned()));
    }
    if fraction.len() as u32 > decimals {
        return Err(AmountError::TooManyDecimals {
            text: text.to_owned(),
            allowed: decimals,
        });
    }
    let too_large = || AmountError::TooLarge(text.to_owned());
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_large())?
    };
    let padded = format!("{fraction:0<width$}", width = decimals as usize);
    let fraction: i64 = if padded.is_empty() {
        0
    } else {
        padded.parse().map_err(|_| too_large())?
    };
    10i64
        .checked_pow(decimals)
        .and_then(|scale| whole.checked_mul(scale))
        .and_then(|scaled| scaled.checked_add(fraction))
        .filter(|scaled| *scaled <= MAX_EXACT_AMOUNT)
        .ok_or_else(too_large)
}

/// Formats an integer scaled by `10^decimals` as a plain decimal: 1250 with 2 decimals is
/// "12.50", -5 is "-0.05". For receipts as text and CSV export (the app's screens format money
/// with the browser's `Intl.NumberFormat`).
pub fn format_decimal(value: i64, decimals: u32) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let magnitude = value.unsigned_abs();
    if decimals == 0 {
        return format!("{sign}{magnitude}");
    }
    let scale = 10u64.pow(decimals);
    format!(
        "{sign}{}.{:0width$}",
        magnitude / scale,
        magnitude % scale,
        width = decimals as usize
    )
}

/// Formats a decimal without trailing zeros after the point: 1800 basis points as a percent
/// with 2 decimals is "18", 1250 is "12.5".
pub fn format_decimal_trimmed(value: i64, decimals: u32) -> String {
    let text = format_decimal(value, decimals);
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_parse(text: &str, decimals: u32, expected: Result<i64, AmountError>) {
        assert_eq!(parse_decimal(text, decimals), expected, "parsing {text:?}");
    }

    #[test]
    fn decimals_parse_to_exact_integers() {
        check_parse("12.50", 2, Ok(1250));
        check_parse("12,5", 2, Ok(1250));
        check_parse(" 7 ", 2, Ok(700));
        check_parse(".99", 2, Ok(99));
        check_parse("3.", 2, Ok(300));
        check_parse("1.25", 3, Ok(1250));
        check_parse("500", 0, Ok(500));
        check_parse("", 2, Err(AmountError::Empty));
        check_parse("-1", 2, Err(AmountError::Negative));
        check_parse(
            "1.234",
            2,
            Err(AmountError::TooManyDecimals {
                text: "1.234".into(),
                allowed: 2,
            }),
        );
        check_parse("1.2.3", 2, Err(AmountError::NotANumber("1.2.3".into())));
        check_parse("12 rs", 2, Err(AmountError::NotANumber("12 rs".into())));
        check_parse(
            "99999999999999999999",
            2,
            Err(AmountError::TooLarge("99999999999999999999".into())),
        );
    }

    #[test]
    fn decimals_format_back_exactly() {
        assert_eq!(format_decimal(1250, 2), "12.50");
        assert_eq!(format_decimal(-5, 2), "-0.05");
        assert_eq!(format_decimal(7, 0), "7");
        assert_eq!(format_decimal(1, 3), "0.001");
        assert_eq!(format_decimal_trimmed(1800, 2), "18");
        assert_eq!(format_decimal_trimmed(1250, 2), "12.5");
        assert_eq!(format_decimal_trimmed(0, 2), "0");
        for value in [0, 1, 99, 100, 12345, 9_007_199_254_740_992] {
            assert_eq!(parse_decimal(&format_decimal(value, 2), 2), Ok(value));
        }
    }

    #[test]
    fn division_rounds_halves_away_from_zero() {
        let check = |numerator: i128, denominator: i128, expected: i64| {
            assert_eq!(
                divide_rounding_half_away(numerator, denominator),
                expected,
                "{numerator} / {denominator}"
            );
        };
        check(5, 10, 1);
        check(4, 10, 0);
        check(-5, 10, -1);
        check(-4, 10, 0);
        check(15, 10, 2);
        check(25, 10, 3);
        check(2, 3, 1);
        check(1, 3, 0);
        check(-2, 3, -1);
        check(i128::from(i64::MAX) * 4, 2, i64::MAX);
    }
}
