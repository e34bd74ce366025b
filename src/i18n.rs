//! The words on screen, in the tablet's language (a device setting, [`crate::settings`]):
//! every visible string of the app is a [`Msg`] of `counterbook-i18n`'s catalogue, looked up
//! with [`t`] (a text), [`tr`] (a text with placeholders) or [`tn`] (a count, in the
//! language's plural form), never written in a component.
//!
//! English is built into the wasm. Another language's catalogue is its own file,
//! `/locales/{code}.json`, downloaded once at start ([`use_language`], before the shop
//! opens; the service worker keeps it for offline starts): a tablet loads only the language it
//! speaks, and the wasm carries no other language. The language is set once per start (the
//! settings page restarts the app when it changes), so looking a word up is an index into a
//! table, with no signal to track. `<html lang dir>` follow it: `dir="rtl"` mirrors the whole
//! layout for Arabic (the style sheets use logical properties).
//!
//! Numbers, money and dates go through `Intl` with [`intl_locales`]: the language of the
//! tablet in the shop's region.

use std::cell::{Cell, RefCell};

pub use counterbook_i18n::Msg;
use counterbook_i18n::{Catalogue, Language};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

thread_local! {
    /// The catalogue in use. Leaked: one per start of the app (tests install several).
    static CATALOGUE: Cell<&'static Catalogue> = Cell::new(Box::leak(Box::new(Catalogue::english())));
    /// The region of the shop's locale ("IN" of "en-IN"), once known.
    static SHOP_REGION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The catalogue of the language spoken now (for code that takes one, such as receipts).
// Called from hundreds of places: one copy, not one inlined per call, keeps the wasm small.
#[inline(never)]
pub fn catalogue() -> &'static Catalogue {
    CATALOGUE.with(Cell::get)
}

/// The text of `msg` in the tablet's language.
// Called from hundreds of places: one copy, not one inlined per call, keeps the wasm small.
#[inline(never)]
pub fn t(msg: Msg) -> &'static str {
    catalogue().text(msg)
}

/// The text of `msg` with its placeholders filled: `tr(Msg::X, &[("name", "Asha")])`.
// Called from hundreds of places: one copy, not one inlined per call, keeps the wasm small.
#[inline(never)]
pub fn tr(msg: Msg, arguments: &[(&str, &str)]) -> String {
    catalogue().format(msg, arguments)
}

/// The text of `msg` for `count` things, in the plural form the language uses for that
/// count (`Intl.PluralRules`), `{count}` as [`count_text`] writes it.
// Called from hundreds of places: one copy, not one inlined per call, keeps the wasm small.
#[inline(never)]
pub fn tn(msg: Msg, count: usize, arguments: &[(&str, &str)]) -> String {
    let locales = intl_locales();
    let category =
        js_sys::Intl::PluralRules::new(&locales, &js_sys::Object::new()).select(count as f64);
    let category = String::from(category);
    catalogue().format_count(msg, &category, &count_text(count), arguments)
}

/// A count in the digits of [`intl_locales`], with no grouping ("9940"; "٩٩٤٠" in ar-EG):
/// counts of things read as they always have in English.
pub fn count_text(count: usize) -> String {
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"useGrouping".into(), &JsValue::FALSE);
    js_sys::Intl::NumberFormat::new(&intl_locales(), &options)
        .format()
        .call1(&JsValue::UNDEFINED, &JsValue::from_f64(count as f64))
        .ok()
        .and_then(|text| text.as_string())
        .unwrap_or_else(|| count.to_string())
}

/// The language this tablet speaks now.
pub fn language() -> Language {
    catalogue().language()
}

/// Why a language's catalogue could not be used (the app then speaks English).
#[derive(Debug, thiserror::Error)]
pub enum LanguageError {
    #[error("the catalogue {0} could not be downloaded: {1}")]
    Download(String, String),
    #[error("the catalogue {0} is broken: {1}")]
    Broken(String, counterbook_i18n::CatalogueError),
}

fn describe(value: JsValue) -> String {
    value
        .as_string()
        .or_else(|| {
            value
                .dyn_ref::<js_sys::Error>()
                .map(|error| String::from(error.message()))
        })
        .unwrap_or_else(|| format!("{value:?}"))
}

async fn download(path: &str) -> Result<String, LanguageError> {
    let failed = |error: JsValue| LanguageError::Download(path.to_owned(), describe(error));
    let window = web_sys::window().ok_or_else(|| failed(JsValue::from_str("no window")))?;
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str(path))
        .await
        .map_err(failed)?
        .unchecked_into();
    if !response.ok() {
        return Err(failed(JsValue::from_str(&format!(
            "HTTP {}",
            response.status()
        ))));
    }
    let text = JsFuture::from(response.text().map_err(failed)?)
        .await
        .map_err(failed)?;
    text.as_string()
        .ok_or_else(|| failed(JsValue::from_str("not text")))
}

/// Speaks `language` from now on: downloads its catalogue (English is built in) and sets
/// `<html lang dir>`. On failure the app speaks English and says why in the console; a
/// message the file lacks shows in English.
pub async fn use_language(language: Language) -> Result<(), LanguageError> {
    let result = install(language).await;
    if result.is_err() {
        CATALOGUE.with(|current| current.set(Box::leak(Box::new(Catalogue::english()))));
    }
    mark_document(self::language());
    result
}

async fn install(language: Language) -> Result<(), LanguageError> {
    if language == Language::English {
        CATALOGUE.with(|current| current.set(Box::leak(Box::new(Catalogue::english()))));
        return Ok(());
    }
    let path = format!("/locales/{}.json", language.code());
    let json = download(&path).await?;
    let (parsed, problems) = Catalogue::parse(language, &json)
        .map_err(|error| LanguageError::Broken(path.clone(), error))?;
    for problem in problems {
        web_sys::console::warn_1(&format!("{path}: {problem}").into());
    }
    CATALOGUE.with(|current| current.set(Box::leak(Box::new(parsed))));
    Ok(())
}

/// `<html lang="ar" dir="rtl">` for the language spoken.
fn mark_document(language: Language) {
    let Some(root) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
    else {
        return;
    };
    let _ = root.set_attribute("lang", language.code());
    let _ = root.set_attribute("dir", language.direction());
}

/// Remembers the shop's locale (its settings' `locale`, e.g. "en-IN"), whose region the
/// tablet's numbers, money and dates follow.
pub fn set_shop_locale(locale: Option<&str>) {
    let region = locale
        .and_then(|locale| locale.trim().split(['-', '_']).nth(1))
        .filter(|region| region.len() == 2 && region.chars().all(|c| c.is_ascii_alphabetic()))
        .map(str::to_ascii_uppercase);
    SHOP_REGION.with(|current| *current.borrow_mut() = region);
}

/// The locales to give `Intl`: the tablet's language in the shop's region ("hi-IN",
/// "ar-DZ"); the language alone when the shop's region is not known; none (the browser's
/// own) for English in a shop without a locale, as the app has always shown it.
pub fn intl_locales() -> js_sys::Array {
    let locales = js_sys::Array::new();
    if let Some(tag) = intl_locale_tag() {
        locales.push(&JsValue::from_str(&tag));
    }
    locales
}

/// The one locale [`intl_locales`] gives, as a language tag ("hi-IN", "ar"), or `None` for
/// the browser's own: read without building anything in JavaScript, so that a format made
/// once can be found again by it on every amount shown.
pub fn intl_locale_tag() -> Option<String> {
    let language = language();
    let region = SHOP_REGION.with(|current| current.borrow().clone());
    match (language, region) {
        (language, Some(region)) => Some(format!("{}-{region}", language.code())),
        (Language::English, None) => None,
        (language, None) => Some(language.code().to_owned()),
    }
}

/// `number` as `Intl.NumberFormat` writes it in [`intl_locales`] ("1,234", "१,२३४" where the
/// locale writes its own digits).
pub fn format_number(number: f64) -> String {
    let format = js_sys::Intl::NumberFormat::new(&intl_locales(), &js_sys::Object::new());
    format
        .format()
        .call1(&JsValue::UNDEFINED, &JsValue::from_f64(number))
        .ok()
        .and_then(|text| text.as_string())
        .unwrap_or_else(|| number.to_string())
}

thread_local! {
    /// Each decimal or percent `Intl.NumberFormat` by what it is made from, made once (a
    /// receipt writes a few dozen numbers; making a format costs more than using one).
    static DECIMAL_FORMATS: RefCell<std::collections::HashMap<String, js_sys::Intl::NumberFormat>> =
        RefCell::default();
}

/// `number` through a format of `style` ("decimal", "percent") with `min_decimals` to
/// `max_decimals` decimals, in [`intl_locales`].
fn format_with(number: f64, style: &str, min_decimals: u32, max_decimals: u32) -> Option<String> {
    let locales = intl_locales();
    let key = format!(
        "{}|{style}|{min_decimals}|{max_decimals}",
        String::from(locales.join(","))
    );
    let format = DECIMAL_FORMATS.with(|formats| {
        formats
            .borrow_mut()
            .entry(key)
            .or_insert_with(|| {
                let options = js_sys::Object::new();
                let set = |name: &str, value: JsValue| {
                    let _ = js_sys::Reflect::set(&options, &name.into(), &value);
                };
                set("style", style.into());
                set("minimumFractionDigits", f64::from(min_decimals).into());
                set("maximumFractionDigits", f64::from(max_decimals).into());
                js_sys::Intl::NumberFormat::new(&locales, &options)
            })
            .clone()
    });
    format
        .format()
        .call1(&JsValue::UNDEFINED, &JsValue::from_f64(number))
        .ok()
        .and_then(|text| text.as_string())
}

/// Receipts' numbers (and rates on screen) through `Intl.NumberFormat` in [`intl_locales`]:
/// grouped, in the digits the locale writes ("1,234.50", "१,२३४.५०" in hi-IN if the
/// locale uses Devanagari digits, "١٬٢٣٤٫٥٠" in ar-EG). ASCII ([`PlainNumbers`]) where `Intl`
/// refuses.
///
/// [`PlainNumbers`]: counterbook_shop::receipt::PlainNumbers
#[derive(Clone, Copy, Debug, Default)]
pub struct IntlNumbers;

impl counterbook_shop::receipt::ReceiptNumbers for IntlNumbers {
    fn decimal(&self, value: i64, decimals: u32, min_decimals: u32) -> String {
        let number = value as f64 / 10f64.powi(decimals as i32);
        format_with(number, "decimal", min_decimals.min(decimals), decimals).unwrap_or_else(|| {
            counterbook_shop::receipt::PlainNumbers.decimal(value, decimals, min_decimals)
        })
    }

    fn percent(&self, basis_points: i64) -> String {
        format_with(basis_points as f64 / 10_000.0, "percent", 0, 2)
            .unwrap_or_else(|| counterbook_shop::receipt::PlainNumbers.percent(basis_points))
    }
}

/// A role as the screens name it ("cashier"); a claim the app does not know shows as it is.
pub fn role_name(claim: &str) -> String {
    match counterbook_shop::Role::from_claim(claim) {
        Some(counterbook_shop::Role::Owner) => t(Msg::PeopleRoleOwner).to_owned(),
        Some(counterbook_shop::Role::Manager) => t(Msg::PeopleRoleManager).to_owned(),
        Some(counterbook_shop::Role::Cashier) => t(Msg::PeopleRoleCashier).to_owned(),
        None => claim.to_owned(),
    }
}

/// A payment method as screens and receipts name it ("Cash", "UPI").
pub fn method_name(method: counterbook_shop::PaymentMethod) -> &'static str {
    use counterbook_shop::PaymentMethod;
    t(match method {
        PaymentMethod::Cash => Msg::PaymentMethodCash,
        PaymentMethod::Card => Msg::PaymentMethodCard,
        PaymentMethod::Upi => Msg::PaymentMethodUpi,
        PaymentMethod::Credit => Msg::PaymentMethodCredit,
    })
}

/// A moment (milliseconds since 1970) as date and time, in [`intl_locales`] and the
/// browser's time zone ("1/12/2026, 10:42:05 am" in hi-IN).
pub fn format_date_time(millis: i64) -> String {
    let date = js_sys::Date::new(&JsValue::from_f64(millis as f64));
    match intl_locales().get(0).as_string() {
        Some(locale) => String::from(date.to_locale_string(&locale, &js_sys::Object::new())),
        None => String::from(date.to_locale_string("default", &js_sys::Object::new())),
    }
}

/// A moment's time of day, in [`intl_locales`] and the browser's time zone.
pub fn format_time(millis: i64) -> String {
    let date = js_sys::Date::new(&JsValue::from_f64(millis as f64));
    match intl_locales().get(0).as_string() {
        Some(locale) => String::from(date.to_locale_time_string(&locale)),
        None => String::from(date.to_locale_time_string("default")),
    }
}

/// A quantity unit as screens name it ("piece", "kg"); the unit's code stays what forms send.
pub fn unit_name(unit: counterbook_shop::QuantityUnit) -> &'static str {
    use counterbook_shop::QuantityUnit;
    t(match unit {
        QuantityUnit::Piece => Msg::UnitPiece,
        QuantityUnit::Kilogram => Msg::UnitKg,
        QuantityUnit::Gram => Msg::UnitG,
        QuantityUnit::Litre => Msg::UnitL,
        QuantityUnit::Millilitre => Msg::UnitMl,
    })
}

/// A quantity in its unit as screens show it, in `Intl`'s digits: pieces as a count ("3",
/// "-2"), loose goods with their unit ("1.5 kg", "-0.25 l"). `quantity` is the integer a
/// stock field keeps: pieces, or milli-units of a loose product.
pub fn unit_quantity(quantity: i64, unit: counterbook_shop::QuantityUnit) -> String {
    use counterbook_shop::receipt::ReceiptNumbers;
    let digits = if unit.is_loose() {
        let magnitude = i64::try_from(quantity.unsigned_abs()).unwrap_or(i64::MAX);
        IntlNumbers.decimal(magnitude, unit.quantity_decimals(), 0)
    } else {
        count_text(quantity.unsigned_abs() as usize)
    };
    // A minus sign keeps to the left of its digits in Arabic too: the sign and the digits are
    // isolated left to right (in a right-to-left line "-1.5" showed as "1.5-"; `Intl`'s own
    // negative in Arabic starts with a right-to-left mark, so the sign is ours).
    let number = if quantity < 0 {
        format!("\u{2066}-{digits}\u{2069}")
    } else {
        digits
    };
    if unit.is_loose() {
        format!("{number} {}", unit_name(unit))
    } else {
        number
    }
}

/// A document field as screens name it ("price", "credit limit"), from its stored name
/// (`price`, `creditLimit`); a field the app has no words for shows its stored name.
pub fn field_name(field: &str) -> String {
    field_message(field)
        .map(|msg| t(msg).to_owned())
        .unwrap_or_else(|| field.to_owned())
}

/// The catalogue's name of a product's, customer's or shop profile's field, by its stored name.
pub fn field_message(field: &str) -> Option<Msg> {
    Some(match field {
        "name" => Msg::FieldName,
        "price" => Msg::FieldPrice,
        "currency" => Msg::FieldCurrency,
        "sku" => Msg::FieldSku,
        "barcodes" => Msg::FieldBarcodes,
        "unit" => Msg::FieldUnit,
        "category" => Msg::FieldCategory,
        "taxRateBp" => Msg::FieldTaxRate,
        "lowStockThreshold" => Msg::FieldLowStock,
        "deleted" => Msg::FieldDeleted,
        "phone" | "phoneDigits" => Msg::FieldPhone,
        counterbook_shop::customer::CREDIT_LIMIT_FIELD => Msg::FieldCreditLimit,
        "minorUnitExponent" => Msg::FieldCurrencyDecimals,
        "taxMode" => Msg::FieldTaxMode,
        "cashRoundingStep" => Msg::FieldCashRounding,
        "upiId" => Msg::FieldUpiId,
        "shopName" => Msg::FieldShopName,
        "address" => Msg::FieldAddress,
        "taxId" => Msg::FieldTaxId,
        "receiptHeader" => Msg::FieldReceiptHeader,
        "receiptFooter" => Msg::FieldReceiptFooter,
        "taxRates" => Msg::FieldTaxRates,
        "locale" => Msg::FieldLocale,
        "barcodeNomenclature" => Msg::FieldBarcodeRules,
        _ => return None,
    })
}

/// For `www/boot.js` (its update, install and reload notices): the text of the message named
/// `key` ("boot.update_available") in the tablet's language, in its plural form for `count`
/// when given; nothing for a key English lacks, and boot.js keeps its own English text.
#[wasm_bindgen::prelude::wasm_bindgen(js_name = counterbookText)]
pub fn counterbook_text(key: &str, count: Option<u32>) -> Option<String> {
    let index = counterbook_i18n::KEYS
        .iter()
        .position(|known| *known == key)?;
    let msg = counterbook_i18n::ALL[index];
    Some(match count {
        Some(count) => tn(msg, count as usize, &[]),
        None => t(msg).to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn every_field_a_product_customer_or_shop_profile_stores_has_a_name_on_screen() {
        let product = counterbook_shop::Product::new("p".into(), "Tea", 100, "INR");
        let customer = counterbook_shop::Customer::new("c".into(), "Asha", Some("98765 43210"));
        let fields = product
            .to_fields()
            .into_keys()
            .chain(customer.to_fields().into_keys())
            .chain(
                counterbook_shop::ShopSettings::default()
                    .to_fields()
                    .into_keys(),
            );
        for field in fields {
            assert!(
                field_message(&field).is_some(),
                "no words for the field {field}"
            );
        }
    }

    #[wasm_bindgen_test]
    fn a_loose_quantity_shows_in_its_unit_and_pieces_as_a_count() {
        use counterbook_shop::QuantityUnit;
        assert_eq!(
            unit_quantity(-1_500, QuantityUnit::Kilogram),
            "\u{2066}-1.5\u{2069} kg"
        );
        assert_eq!(unit_quantity(250, QuantityUnit::Litre), "0.25 l");
        assert_eq!(unit_quantity(-2, QuantityUnit::Piece), "\u{2066}-2\u{2069}");
        assert_eq!(unit_quantity(3, QuantityUnit::Piece), "3");
        assert_eq!(field_name("price"), "price");
        assert_eq!(field_name("creditLimit"), "credit limit");
    }
}
