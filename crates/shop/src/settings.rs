//! The shop's settings that money, receipts and scanning depend on: the shop profile.
//!
//! Stored and synced as one document, `shops/{shop}/settings/profile` (field names in
//! [`ShopSettings::to_fields`]), so every tablet prices, rounds and prints alike.

use std::collections::BTreeMap;

use counterbook_firestore_wire::{map_by_insertion, Document, Value};
use serde::{Deserialize, Serialize};

use crate::barcode::{EmbeddedRule, EmbeddedValue, Nomenclature};

/// Whether shelf prices include tax (the usual case for Indian MRP) or tax is added on top.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TaxMode {
    #[default]
    Inclusive,
    Exclusive,
}

impl TaxMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TaxMode::Inclusive => "inclusive",
            TaxMode::Exclusive => "exclusive",
        }
    }
}

/// The shop profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShopSettings {
    /// ISO 4217 code, e.g. "INR".
    pub currency: String,
    /// Minor units per major unit as a power of ten: 2 for INR (100 paise), 3 for KWD, 0 for JPY.
    pub minor_unit_exponent: u32,
    pub tax_mode: TaxMode,
    /// Cash is rounded to the nearest multiple of this many minor units (100: whole rupees; 5:
    /// 0.05 CHF); 1 means no rounding. Only the cash part of a payment is ever rounded.
    pub cash_rounding_step_minor: i64,
    /// The shop's UPI id (VPA) for payment QR codes, e.g. "shop@okbank".
    #[serde(default)]
    pub upi_id: Option<String>,
    pub shop_name: String,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    /// GSTIN or VAT number, printed on receipts.
    #[serde(default)]
    pub tax_id: Option<String>,
    /// Printed under the shop's name and address (a greeting, opening hours, a licence).
    #[serde(default)]
    pub receipt_header: Option<String>,
    #[serde(default)]
    pub receipt_footer: Option<String>,
    /// The tax rates the shop uses, in basis points (1800: 18%), offered when a product's
    /// rate is typed. Each product still carries its own rate.
    #[serde(default = "default_tax_rates")]
    pub tax_rates_basis_points: Vec<u32>,
    /// The shop's locale, a BCP 47 tag such as "en-IN" or "ar-DZ": the region the tablets
    /// write numbers, money and dates for (in each tablet's own language).
    #[serde(default)]
    pub locale: Option<String>,
    #[serde(default)]
    pub barcode_nomenclature: Nomenclature,
}

/// The name a shop has until one is set. Screens and receipts show the catalogue's words for
/// it in the tablet's language ([`ShopSettings::shown_shop_name`]); it stays these words in
/// the profile document and in a UPI link.
pub const UNNAMED_SHOP: &str = "My shop";

impl ShopSettings {
    /// The shop's name as screens and receipts show it: its name, or until one is set the
    /// catalogue's "My shop" in `words`' language.
    pub fn shown_shop_name<'a>(&'a self, words: &'a counterbook_i18n::Catalogue) -> &'a str {
        if self.shop_name == UNNAMED_SHOP {
            words.text(counterbook_i18n::Msg::SettingsDefaultShopName)
        } else {
            &self.shop_name
        }
    }

    /// The name to keep for what a form shows as the shop's name: the form shows
    /// [`ShopSettings::shown_shop_name`], so its words for an unnamed shop, left as they were,
    /// keep the shop unnamed (each tablet then shows its own language's words).
    pub fn kept_shop_name(typed: &str, words: &counterbook_i18n::Catalogue) -> String {
        let typed = typed.trim();
        if typed == words.text(counterbook_i18n::Msg::SettingsDefaultShopName) {
            UNNAMED_SHOP.to_owned()
        } else {
            typed.to_owned()
        }
    }
}

/// India's GST slabs: 0, 5, 12, 18 and 28%.
fn default_tax_rates() -> Vec<u32> {
    vec![0, 500, 1200, 1800, 2800]
}

impl Default for ShopSettings {
    /// An Indian shop: rupees, tax-inclusive prices, cash rounded to whole rupees.
    fn default() -> Self {
        ShopSettings {
            currency: "INR".into(),
            minor_unit_exponent: 2,
            tax_mode: TaxMode::Inclusive,
            cash_rounding_step_minor: 100,
            upi_id: None,
            shop_name: UNNAMED_SHOP.into(),
            address: None,
            phone: None,
            tax_id: None,
            receipt_header: None,
            receipt_footer: None,
            tax_rates_basis_points: default_tax_rates(),
            locale: None,
            barcode_nomenclature: Nomenclature::default(),
        }
    }
}

/// Why settings cannot be saved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("the currency \"{0}\" is not a three-letter code")]
    BadCurrency(String),
    #[error("a currency has at most 4 minor digits, not {0}")]
    BadExponent(u32),
    #[error("the cash rounding step must be at least 1 minor unit")]
    BadRoundingStep,
    #[error("the shop name is empty")]
    EmptyShopName,
    #[error("the UPI id \"{0}\" is not like name@bank")]
    BadUpiId(String),
    #[error("a tax rate of {0} basis points is over 100%")]
    BadTaxRate(u32),
    #[error(transparent)]
    Nomenclature(#[from] crate::barcode::NomenclatureError),
}

/// The collection and id of the shop profile document.
pub const SETTINGS_COLLECTION: &str = "settings";
pub const PROFILE_DOCUMENT_ID: &str = "profile";

impl ShopSettings {
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.currency.len() != 3 || !self.currency.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(SettingsError::BadCurrency(self.currency.clone()));
        }
        if self.minor_unit_exponent > 4 {
            return Err(SettingsError::BadExponent(self.minor_unit_exponent));
        }
        if self.cash_rounding_step_minor < 1 {
            return Err(SettingsError::BadRoundingStep);
        }
        if self.shop_name.trim().is_empty() {
            return Err(SettingsError::EmptyShopName);
        }
        if let Some(upi_id) = &self.upi_id {
            let well_formed = upi_id.split_once('@').is_some_and(|(name, bank)| {
                !name.is_empty() && !bank.is_empty() && !upi_id.chars().any(char::is_whitespace)
            });
            if !well_formed {
                return Err(SettingsError::BadUpiId(upi_id.clone()));
            }
        }
        if let Some(rate) = self
            .tax_rates_basis_points
            .iter()
            .find(|rate| **rate > 10_000)
        {
            return Err(SettingsError::BadTaxRate(*rate));
        }
        self.barcode_nomenclature.validate()?;
        Ok(())
    }

    /// `shops/{shop}/settings/profile`.
    pub fn document_path(shop_id: &str) -> String {
        format!("shops/{shop_id}/{SETTINGS_COLLECTION}/{PROFILE_DOCUMENT_ID}")
    }

    /// The profile document's fields.
    pub fn to_fields(&self) -> BTreeMap<String, Value> {
        let optional_text =
            |value: &Option<String>| value.clone().map(Value::String).unwrap_or(Value::Null);
        map_by_insertion([
            ("currency".to_string(), Value::String(self.currency.clone())),
            (
                "minorUnitExponent".to_string(),
                Value::Integer(i64::from(self.minor_unit_exponent)),
            ),
            (
                "taxMode".to_string(),
                Value::String(self.tax_mode.as_str().to_owned()),
            ),
            (
                "cashRoundingStep".to_string(),
                Value::Integer(self.cash_rounding_step_minor),
            ),
            ("upiId".to_string(), optional_text(&self.upi_id)),
            (
                "shopName".to_string(),
                Value::String(self.shop_name.clone()),
            ),
            ("address".to_string(), optional_text(&self.address)),
            ("phone".to_string(), optional_text(&self.phone)),
            ("taxId".to_string(), optional_text(&self.tax_id)),
            (
                "receiptHeader".to_string(),
                optional_text(&self.receipt_header),
            ),
            (
                "receiptFooter".to_string(),
                optional_text(&self.receipt_footer),
            ),
            (
                "taxRates".to_string(),
                Value::Array(
                    self.tax_rates_basis_points
                        .iter()
                        .map(|rate| Value::Integer(i64::from(*rate)))
                        .collect(),
                ),
            ),
            ("locale".to_string(), optional_text(&self.locale)),
            (
                "barcodeNomenclature".to_string(),
                nomenclature_value(&self.barcode_nomenclature),
            ),
        ])
    }

    /// Reads the profile document; missing or malformed fields take their defaults, so an
    /// older or partial profile still gives usable settings.
    pub fn from_document(document: &Document) -> ShopSettings {
        let defaults = ShopSettings::default();
        let fields = &document.fields;
        let text = |field: &str| fields.get(field).and_then(Value::as_str).map(str::to_owned);
        let integer = |field: &str| fields.get(field).and_then(Value::as_integer);
        ShopSettings {
            currency: text("currency").unwrap_or(defaults.currency),
            minor_unit_exponent: integer("minorUnitExponent")
                .and_then(|exponent| u32::try_from(exponent).ok())
                .filter(|exponent| *exponent <= 4)
                .unwrap_or(defaults.minor_unit_exponent),
            tax_mode: match text("taxMode").as_deref() {
                Some("exclusive") => TaxMode::Exclusive,
                Some("inclusive") => TaxMode::Inclusive,
                _ => defaults.tax_mode,
            },
            cash_rounding_step_minor: integer("cashRoundingStep")
                .filter(|step| *step >= 1)
                .unwrap_or(defaults.cash_rounding_step_minor),
            upi_id: text("upiId"),
            shop_name: text("shopName").unwrap_or(defaults.shop_name),
            address: text("address"),
            phone: text("phone"),
            tax_id: text("taxId"),
            receipt_header: text("receiptHeader"),
            receipt_footer: text("receiptFooter"),
            tax_rates_basis_points: match fields.get("taxRates") {
                Some(Value::Array(rates)) => rates
                    .iter()
                    .filter_map(Value::as_integer)
                    .filter_map(|rate| u32::try_from(rate).ok())
                    .filter(|rate| *rate <= 10_000)
                    .collect(),
                _ => defaults.tax_rates_basis_points,
            },
            locale: text("locale"),
            barcode_nomenclature: fields
                .get("barcodeNomenclature")
                .and_then(nomenclature_from_value)
                .unwrap_or(defaults.barcode_nomenclature),
        }
    }
}

/// The nomenclature as a Firestore array of maps: `{prefix, itemDigits, value: "price" |
/// "weight", decimals}`.
fn nomenclature_value(nomenclature: &Nomenclature) -> Value {
    Value::Array(
        nomenclature
            .rules
            .iter()
            .map(|rule| {
                let (kind, decimals) = match rule.value {
                    EmbeddedValue::Price { decimals } => ("price", decimals),
                    EmbeddedValue::Weight { decimals } => ("weight", decimals),
                };
                Value::Map(map_by_insertion([
                    ("prefix".to_string(), Value::String(rule.prefix.clone())),
                    (
                        "itemDigits".to_string(),
                        Value::Integer(i64::from(rule.item_digits)),
                    ),
                    ("value".to_string(), Value::String(kind.to_owned())),
                    ("decimals".to_string(), Value::Integer(i64::from(decimals))),
                ]))
            })
            .collect(),
    )
}

/// Reads what [`nomenclature_value`] writes; `None` for anything malformed or invalid.
fn nomenclature_from_value(value: &Value) -> Option<Nomenclature> {
    let Value::Array(rules) = value else {
        return None;
    };
    let rules = rules
        .iter()
        .map(|rule| {
            let Value::Map(fields) = rule else {
                return None;
            };
            let small = |field: &str| {
                fields
                    .get(field)
                    .and_then(Value::as_integer)
                    .and_then(|n| u32::try_from(n).ok())
            };
            let decimals = small("decimals")?;
            let value = match fields.get("value").and_then(Value::as_str)? {
                "price" => EmbeddedValue::Price { decimals },
                "weight" => EmbeddedValue::Weight { decimals },
                _ => return None,
            };
            Some(EmbeddedRule {
                prefix: fields.get("prefix").and_then(Value::as_str)?.to_owned(),
                item_digits: small("itemDigits")?,
                value,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let nomenclature = Nomenclature { rules };
    nomenclature.validate().ok()?;
    Some(nomenclature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_survive_the_trip_through_a_document() {
        let settings = ShopSettings {
            currency: "DZD".into(),
            tax_mode: TaxMode::Exclusive,
            cash_rounding_step_minor: 500,
            upi_id: Some("shop@okbank".into()),
            shop_name: "Épicerie Amine".into(),
            address: Some("12 rue Didouche Mourad, Alger".into()),
            tax_id: Some("000016001234567".into()),
            receipt_header: Some("Ouvert 7j/7".into()),
            receipt_footer: Some("Merci !".into()),
            tax_rates_basis_points: vec![0, 900, 1900],
            locale: Some("fr-DZ".into()),
            ..ShopSettings::default()
        };
        assert_eq!(settings.validate(), Ok(()));
        let document = Document {
            name: format!(
                "projects/p/databases/(default)/documents/{}",
                ShopSettings::document_path("s1")
            ),
            fields: settings.to_fields(),
            ..Document::default()
        };
        assert_eq!(ShopSettings::from_document(&document), settings);
        assert_eq!(
            ShopSettings::from_document(&Document::default()),
            ShopSettings::default()
        );
    }

    #[test]
    fn validation_names_the_broken_rule() {
        let check = |edit: fn(&mut ShopSettings), expected: Result<(), SettingsError>| {
            let mut settings = ShopSettings::default();
            edit(&mut settings);
            assert_eq!(settings.validate(), expected);
        };
        check(|_| {}, Ok(()));
        check(
            |s| s.currency = "rupees".into(),
            Err(SettingsError::BadCurrency("rupees".into())),
        );
        check(
            |s| s.minor_unit_exponent = 5,
            Err(SettingsError::BadExponent(5)),
        );
        check(
            |s| s.cash_rounding_step_minor = 0,
            Err(SettingsError::BadRoundingStep),
        );
        check(
            |s| s.shop_name = " ".into(),
            Err(SettingsError::EmptyShopName),
        );
        check(
            |s| s.upi_id = Some("shop".into()),
            Err(SettingsError::BadUpiId("shop".into())),
        );
        check(
            |s| s.tax_rates_basis_points = vec![1800, 18_000],
            Err(SettingsError::BadTaxRate(18_000)),
        );
    }

    #[test]
    fn an_unnamed_shop_shows_its_name_in_the_tablets_language_and_stays_unnamed() {
        let (hindi, _) = counterbook_i18n::Catalogue::parse(
            counterbook_i18n::Language::Hindi,
            include_str!("../../../locales/hi.json"),
        )
        .unwrap();
        let unnamed = ShopSettings::default();
        assert_eq!(unnamed.shown_shop_name(&hindi), "मेरी दुकान");
        assert_eq!(
            ShopSettings::kept_shop_name(" मेरी दुकान ", &hindi),
            UNNAMED_SHOP
        );
        assert_eq!(
            ShopSettings::kept_shop_name(" Sharma Store ", &hindi),
            "Sharma Store"
        );
        let named = ShopSettings {
            shop_name: "Sharma Store".into(),
            ..ShopSettings::default()
        };
        assert_eq!(named.shown_shop_name(&hindi), "Sharma Store");
    }
}
