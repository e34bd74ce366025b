//! Money is an integer count of minor units (paise, centimes, cents), never a float.
//! This module turns what a cashier types into minor units and formats them for display.

use wasm_bindgen::JsValue;

/// Why typed text is not a price.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    #[error("Enter a price.")]
    Empty,
    #[error("A price cannot be negative.")]
    Negative,
    #[error("\"{0}\" is not a number. Use digits and at most one decimal point, like 12.50.")]
    NotANumber(String),
    #[error("Use at most {0} digits after the decimal point.")]
    TooManyDecimals(u32),
    #[error("That price is too large.")]
    TooLarge,
}

/// Parses "12.50" (or "12,50", or "12") into minor units, given the currency's decimal digits.
pub fn parse_price(text: &str, minor_digits: u32) -> Result<i64, PriceError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(PriceError::Empty);
    }
    if text.starts_with('-') {
        return Err(PriceError::Negative);
    }
    let normalized = text.replace(',', ".");
    let (whole, fraction) = match normalized.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (normalized.as_str(), ""),
    };
    let all_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return Err(PriceError::NotANumber(text.to_owned()));
    }
    if fraction.len() as u32 > minor_digits {
        return Err(PriceError::TooManyDecimals(minor_digits));
    }
    let scale = 10i64.pow(minor_digits);
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| PriceError::TooLarge)?
    };
    let padded = format!("{fraction:0<width$}", width = minor_digits as usize);
    let fraction: i64 = if padded.is_empty() {
        0
    } else {
        padded.parse().map_err(|_| PriceError::TooLarge)?
    };
    whole
        .checked_mul(scale)
        .and_then(|minor| minor.checked_add(fraction))
        .filter(|minor| *minor < (1i64 << 53)) // stays exact in JavaScript numbers
        .ok_or(PriceError::TooLarge)
}

thread_local! {
    /// Each currency's format by its locale and currency (`None`: the browser refused the
    /// code), made once: constructing an `Intl.NumberFormat` costs about as much as rendering
    /// a cart line, and a scan's repaint formats a few amounts. Beside it, its bound `format`
    /// function and the currency's minor digits, so that formatting an amount is one call
    /// into JavaScript (asking the format for them on each amount, with the locales built
    /// again for the key, was a tenth of a scan's own work).
    static NUMBER_FORMATS: std::cell::RefCell<
        std::collections::HashMap<String, Option<CurrencyFormat>>,
    > = Default::default();
}

/// A currency's `Intl.NumberFormat`, ready to use.
#[derive(Clone)]
struct CurrencyFormat {
    /// The format's `format` (bound to it, as `Intl` gives it).
    format: js_sys::Function,
    /// Its `maximumFractionDigits`: the currency's minor digits.
    minor_digits: Option<u32>,
}

/// The currency's format in the tablet's language now, made on first use (see
/// [`NUMBER_FORMATS`]). The key is everything the format is made from, so a change of language
/// or region gets its own.
fn number_format(currency: &str) -> Option<CurrencyFormat> {
    // The tablet's language in the shop's region (`crate::i18n`); none: the browser's own.
    let tag = crate::i18n::intl_locale_tag();
    let key = format!("{}|{currency}", tag.as_deref().unwrap_or(""));
    NUMBER_FORMATS.with(|formats| {
        formats
            .borrow_mut()
            .entry(key)
            .or_insert_with(|| new_number_format(&crate::i18n::intl_locales(), currency))
            .clone()
    })
}

fn new_number_format(locales: &js_sys::Array, currency: &str) -> Option<CurrencyFormat> {
    let options = js_sys::Object::new();
    js_sys::Reflect::set(&options, &"style".into(), &"currency".into()).ok()?;
    js_sys::Reflect::set(&options, &"currency".into(), &currency.into()).ok()?;
    // An invalid currency code makes the constructor throw; `Intl.NumberFormat` here is built
    // through `Reflect.construct` so the exception comes back as an error instead of a panic.
    let constructor: js_sys::Function = js_sys::Reflect::get(
        &js_sys::Reflect::get(&js_sys::global(), &"Intl".into()).ok()?,
        &"NumberFormat".into(),
    )
    .ok()?
    .into();
    let arguments = js_sys::Array::of2(locales, &options);
    let format: js_sys::Intl::NumberFormat = js_sys::Reflect::construct(&constructor, &arguments)
        .ok()?
        .into();
    let minor_digits =
        js_sys::Reflect::get(&format.resolved_options(), &"maximumFractionDigits".into())
            .ok()
            .and_then(|digits| digits.as_f64())
            .map(|digits| digits as u32);
    Some(CurrencyFormat {
        format: format.format(),
        minor_digits,
    })
}

/// How many minor-unit digits a currency has (2 for INR, DZD and EGP; 3 for KWD; 0 for JPY),
/// from the browser's `Intl`; 2 if the browser does not know the code.
pub fn minor_digits(currency: &str) -> u32 {
    number_format(currency)
        .and_then(|format| format.minor_digits)
        .unwrap_or(2)
}

/// "₹12.50" for 1250 paise, in the tablet's language and the shop's region (`Intl`).
pub fn format_price(minor: i64, currency: &str) -> String {
    let format = number_format(currency);
    let digits = format
        .as_ref()
        .and_then(|format| format.minor_digits)
        .unwrap_or(2);
    let major = minor as f64 / 10f64.powi(digits as i32);
    match format {
        Some(format) => format
            .format
            .call1(&JsValue::UNDEFINED, &JsValue::from_f64(major))
            .ok()
            .and_then(|text| text.as_string())
            .unwrap_or_else(|| format!("{major:.*} {currency}", digits as usize)),
        None => format!("{major:.*} {currency}", digits as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn check(text: &str, digits: u32, expected: Result<i64, PriceError>) {
        assert_eq!(parse_price(text, digits), expected, "parsing {text:?}");
    }

    #[wasm_bindgen_test]
    fn prices_parse_to_exact_minor_units() {
        check("12.50", 2, Ok(1250));
        check("12,5", 2, Ok(1250));
        check(" 7 ", 2, Ok(700));
        check(".99", 2, Ok(99));
        check("3.", 2, Ok(300));
        check("0.1", 3, Ok(100));
        check("500", 0, Ok(500));
        check("0.10", 2, Ok(10));
    }

    #[wasm_bindgen_test]
    fn bad_prices_say_what_is_wrong() {
        check("", 2, Err(PriceError::Empty));
        check("-1", 2, Err(PriceError::Negative));
        check("1.234", 2, Err(PriceError::TooManyDecimals(2)));
        check("1.5", 0, Err(PriceError::TooManyDecimals(0)));
        check("abc", 2, Err(PriceError::NotANumber("abc".into())));
        check("1.2.3", 2, Err(PriceError::NotANumber("1.2.3".into())));
        check(".", 2, Err(PriceError::NotANumber(".".into())));
        check("99999999999999999999", 2, Err(PriceError::TooLarge));
    }

    #[wasm_bindgen_test]
    fn currencies_use_the_browsers_minor_digits() {
        assert_eq!(minor_digits("INR"), 2);
        assert_eq!(minor_digits("KWD"), 3);
        assert_eq!(minor_digits("JPY"), 0);
        assert_eq!(minor_digits("not a code"), 2);
        assert!(format_price(1250, "INR").contains("12.50"));
        assert!(format_price(1250, "not a code").contains("12.50"));
    }

    /// Regression test for the cached formats: each currency keeps its own (a format made for
    /// one must never format another), and a refused code stays refused.
    #[wasm_bindgen_test]
    fn each_currency_keeps_its_own_format() {
        let rupees = format_price(1250, "INR");
        let yen = format_price(1250, "JPY");
        assert!(yen.contains("1,250") || yen.contains("1250"), "{yen}");
        assert_ne!(rupees, yen);
        for _ in 0..3 {
            assert_eq!(format_price(1250, "INR"), rupees);
            assert_eq!(format_price(1250, "JPY"), yen);
            assert_eq!(minor_digits("KWD"), 3);
            assert_eq!(minor_digits("not a code"), 2);
        }
    }
}
