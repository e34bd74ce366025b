//! The device's bill number series: `{series}-{000123}`.
//!
//! Each device owns a series (`T2`), so two tablets selling offline never make the same bill
//! number; within a series numbers count up from 1, shown with at least six digits.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Digits a bill number is padded to (more when it grows past 999999).
pub const BILL_NUMBER_DIGITS: usize = 6;

/// A bill number: a device's series and a number in it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BillNumber {
    pub series: String,
    pub number: u64,
}

/// Why text is not a bill number, or a series name not usable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SeriesError {
    #[error("the series name is empty")]
    EmptySeries,
    #[error("the series \"{0}\" may only have letters, digits and inner hyphens")]
    BadSeries(String),
    #[error("\"{0}\" is not a bill number like T2-000123")]
    NotABillNumber(String),
    #[error("the series {0} has no numbers left")]
    Exhausted(String),
}

/// Checks a series name: ASCII letters and digits, hyphens only between them.
pub fn validate_series(series: &str) -> Result<(), SeriesError> {
    if series.is_empty() {
        return Err(SeriesError::EmptySeries);
    }
    let allowed = series
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !allowed || series.starts_with('-') || series.ends_with('-') || series.contains("--") {
        return Err(SeriesError::BadSeries(series.to_owned()));
    }
    Ok(())
}

/// A series for a device that has not been given one: `D` and the last six hex digits of its
/// id (a UUID v7, whose tail is random), e.g. `D3F9A2C`. Ten devices share a shop with about
/// one chance in 370,000 of two drawing the same series; a shop that names its tablets (`T1`,
/// `T2`) sets the series itself.
pub fn default_series_for_device(device_id: &str) -> String {
    let hex: String = device_id
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .take(6)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("D{}", hex.to_ascii_uppercase())
}

impl BillNumber {
    /// The first number of a series.
    pub fn first(series: &str) -> Result<BillNumber, SeriesError> {
        validate_series(series)?;
        Ok(BillNumber {
            series: series.to_owned(),
            number: 1,
        })
    }

    /// The number after this one.
    pub fn next(&self) -> Result<BillNumber, SeriesError> {
        Ok(BillNumber {
            series: self.series.clone(),
            number: self
                .number
                .checked_add(1)
                .ok_or_else(|| SeriesError::Exhausted(self.series.clone()))?,
        })
    }

    /// Reads `T2-000123` (the number is what follows the last hyphen).
    pub fn parse(text: &str) -> Result<BillNumber, SeriesError> {
        let text = text.trim();
        let not_one = || SeriesError::NotABillNumber(text.to_owned());
        let (series, digits) = text.rsplit_once('-').ok_or_else(not_one)?;
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(not_one());
        }
        validate_series(series).map_err(|_| not_one())?;
        let number: u64 = digits.parse().map_err(|_| not_one())?;
        if number == 0 {
            return Err(not_one());
        }
        Ok(BillNumber {
            series: series.to_owned(),
            number,
        })
    }
}

impl fmt::Display for BillNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{:0width$}",
            self.series,
            self.number,
            width = BILL_NUMBER_DIGITS
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Result<(&str, u64), SeriesError>) {
        assert_eq!(
            BillNumber::parse(text),
            expected.map(|(series, number)| BillNumber {
                series: series.into(),
                number
            }),
            "parsing {text:?}"
        );
    }

    #[test]
    fn bill_numbers_format_parse_and_count_up() {
        let first = BillNumber::first("T2").unwrap();
        assert_eq!(first.to_string(), "T2-000001");
        let next = first.next().unwrap();
        assert_eq!(next.to_string(), "T2-000002");
        assert_eq!(BillNumber::parse(&next.to_string()), Ok(next));
        let big = BillNumber {
            series: "SHOP-A".into(),
            number: 1_234_567,
        };
        assert_eq!(big.to_string(), "SHOP-A-1234567");
        assert_eq!(BillNumber::parse("SHOP-A-1234567"), Ok(big));
        check("T2-000123", Ok(("T2", 123)));
        check("T2-", Err(SeriesError::NotABillNumber("T2-".into())));
        check("000123", Err(SeriesError::NotABillNumber("000123".into())));
        check(
            "T2-00x1",
            Err(SeriesError::NotABillNumber("T2-00x1".into())),
        );
        check(
            "T2-000000",
            Err(SeriesError::NotABillNumber("T2-000000".into())),
        );
        check(
            "T 2-000001",
            Err(SeriesError::NotABillNumber("T 2-000001".into())),
        );
        let last = BillNumber {
            series: "T2".into(),
            number: u64::MAX,
        };
        assert_eq!(last.next(), Err(SeriesError::Exhausted("T2".into())));
        assert_eq!(validate_series(""), Err(SeriesError::EmptySeries));
        let series = default_series_for_device("0193a0b0-0000-7000-8000-0000003f9a2c");
        assert_eq!(series, "D3F9A2C");
        assert_eq!(validate_series(&series), Ok(()));
        assert_eq!(default_series_for_device("dev-A"), "DDEA");
        assert_eq!(
            validate_series("T2-"),
            Err(SeriesError::BadSeries("T2-".into()))
        );
    }
}
