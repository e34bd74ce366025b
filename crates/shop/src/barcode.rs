//! Barcodes: EAN-13, EAN-8 and UPC-A check digits, and the shop's nomenclature for in-store
//! EAN-13 codes with an embedded price or weight (prefix 2, as scales and price labels print).
//!
//! A nomenclature is data ([`Nomenclature`], with [`Nomenclature::default`] the common
//! layout): each rule says which prefix marks the code, how many digits name the item, and
//! whether the following digits are a price or a weight. For `22 IIIII WWWWW C`, a 1.250 kg
//! bag of rice labelled by the scale reads `2212345012505`: item `12345`, weight `01250` grams.
//! The product carries the code with the value digits zeroed (and its check digit recomputed),
//! Odoo's convention, so the lookup is one barcode index get ([`ScannedCode::lookup_barcode`]).

use serde::{Deserialize, Serialize};

/// The GS1 check digit of `digits` without it (the weights 3 and 1 alternate from the right).
pub fn check_digit(digits_without_check: &str) -> Option<u8> {
    let mut sum = 0u32;
    for (position_from_right, character) in digits_without_check.chars().rev().enumerate() {
        let digit = character.to_digit(10)?;
        sum += if position_from_right % 2 == 0 {
            digit * 3
        } else {
            digit
        };
    }
    Some(((10 - sum % 10) % 10) as u8)
}

/// Whether an EAN-13, EAN-8, UPC-A (12 digits) or GTIN-14 code has a right check digit.
pub fn has_valid_check_digit(code: &str) -> bool {
    if !matches!(code.len(), 8 | 12 | 13 | 14) || !code.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let (body, check) = code.split_at(code.len() - 1);
    check_digit(body).map(u32::from) == check.chars().next().and_then(|c| c.to_digit(10))
}

/// The symbology a scanned digit string has, by its length and check digit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Symbology {
    Ean13,
    Ean8,
    UpcA,
    /// Anything else (Code 128 labels, a shop's own short codes): taken as typed.
    Other,
}

/// Which symbology `code` is; a GTIN-length code with a wrong check digit is `Other`.
pub fn symbology(code: &str) -> Symbology {
    if !has_valid_check_digit(code) {
        return Symbology::Other;
    }
    match code.len() {
        13 => Symbology::Ean13,
        8 => Symbology::Ean8,
        12 => Symbology::UpcA,
        _ => Symbology::Other,
    }
}

/// What digits after the item code mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EmbeddedValue {
    /// The price of this item, with `decimals` decimal digits in the shop's currency.
    Price { decimals: u32 },
    /// The quantity, with `decimals` decimal digits of the product's unit (3: grams of a kg).
    Weight { decimals: u32 },
}

/// One rule of a nomenclature: EAN-13 codes starting with `prefix` carry `item_digits` digits
/// naming the item, then the value digits up to the check digit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmbeddedRule {
    pub prefix: String,
    pub item_digits: u32,
    pub value: EmbeddedValue,
}

/// The shop's rules for in-store codes, tried in order (the first matching prefix wins).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Nomenclature {
    pub rules: Vec<EmbeddedRule>,
}

impl Default for Nomenclature {
    /// `21 IIIII PPPPP C`: price with 2 decimals; `22`, `23` `IIIII WWWWW C`: weight with 3
    /// decimals (grams of a kilogram, millilitres of a litre). The layout of most price-
    /// computing scales, and of Odoo's and opensourcepos's defaults.
    fn default() -> Self {
        let rule = |prefix: &str, value| EmbeddedRule {
            prefix: prefix.into(),
            item_digits: 5,
            value,
        };
        Nomenclature {
            rules: vec![
                rule("21", EmbeddedValue::Price { decimals: 2 }),
                rule("22", EmbeddedValue::Weight { decimals: 3 }),
                rule("23", EmbeddedValue::Weight { decimals: 3 }),
            ],
        }
    }
}

/// Why a nomenclature rule cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NomenclatureError {
    #[error("the prefix \"{0}\" must be one or more digits starting with 2")]
    BadPrefix(String),
    #[error("the rule for prefix {prefix} leaves no digit for the value (13 digits in all)")]
    NoValueDigits { prefix: String },
    #[error(
        "the rule \"{0}\" is not like \"21 5 price 2\" (prefix, item digits, price or weight, decimals)"
    )]
    UnreadableRule(String),
}

impl Nomenclature {
    /// The rules as a person writes them on the settings page, one per line: prefix, item
    /// digits, `price` or `weight`, decimals (`21 5 price 2`).
    pub fn to_text(&self) -> String {
        self.rules
            .iter()
            .map(|rule| {
                let (kind, decimals) = match rule.value {
                    EmbeddedValue::Price { decimals } => ("price", decimals),
                    EmbeddedValue::Weight { decimals } => ("weight", decimals),
                };
                format!("{} {} {kind} {decimals}", rule.prefix, rule.item_digits)
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Reads what [`Nomenclature::to_text`] writes (rules separated by lines or commas, blank
    /// ones skipped) and checks the result; the first unreadable or invalid rule is the error.
    pub fn parse_text(text: &str) -> Result<Nomenclature, NomenclatureError> {
        let rules = text
            .split(['\n', ','])
            .map(str::trim)
            .filter(|rule| !rule.is_empty())
            .map(|rule| {
                let unreadable = || NomenclatureError::UnreadableRule(rule.to_owned());
                let words: Vec<&str> = rule.split_whitespace().collect();
                let [prefix, item_digits, kind, decimals] = words[..] else {
                    return Err(unreadable());
                };
                let item_digits: u32 = item_digits.parse().map_err(|_| unreadable())?;
                let decimals: u32 = decimals.parse().map_err(|_| unreadable())?;
                let value = match kind.to_ascii_lowercase().as_str() {
                    "price" => EmbeddedValue::Price { decimals },
                    "weight" => EmbeddedValue::Weight { decimals },
                    _ => return Err(unreadable()),
                };
                Ok(EmbeddedRule {
                    prefix: prefix.to_owned(),
                    item_digits,
                    value,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let nomenclature = Nomenclature { rules };
        nomenclature.validate()?;
        Ok(nomenclature)
    }

    /// Checks every rule: digit prefixes starting with 2 (GS1's in-store range), room for
    /// at least one value digit.
    pub fn validate(&self) -> Result<(), NomenclatureError> {
        for rule in &self.rules {
            if rule.prefix.is_empty()
                || !rule.prefix.starts_with('2')
                || !rule.prefix.chars().all(|c| c.is_ascii_digit())
            {
                return Err(NomenclatureError::BadPrefix(rule.prefix.clone()));
            }
            if rule.prefix.len() as u32 + rule.item_digits >= 12 {
                return Err(NomenclatureError::NoValueDigits {
                    prefix: rule.prefix.clone(),
                });
            }
        }
        Ok(())
    }

    /// Reads a scanned code: an in-store code of one of the rules, or a plain code.
    pub fn parse(&self, scanned: &str) -> ScannedCode {
        let code = scanned.trim();
        if code.len() == 13 && has_valid_check_digit(code) {
            if let Some(rule) = self
                .rules
                .iter()
                .find(|rule| code.starts_with(&rule.prefix))
            {
                let item_end = rule.prefix.len() + rule.item_digits as usize;
                if item_end < 12 {
                    let item_code = code[rule.prefix.len()..item_end].to_owned();
                    // Up to 12 digits: fits an i64.
                    let value: i64 = code[item_end..12].parse().unwrap_or(0);
                    let mut zeroed = format!("{}{}", &code[..item_end], "0".repeat(12 - item_end));
                    if let Some(check) = check_digit(&zeroed) {
                        zeroed.push(char::from(b'0' + check));
                    }
                    return match rule.value {
                        EmbeddedValue::Price { decimals } => ScannedCode::PriceEmbedded {
                            code: code.to_owned(),
                            item_code,
                            lookup_barcode: zeroed,
                            value,
                            decimals,
                        },
                        EmbeddedValue::Weight { decimals } => ScannedCode::WeightEmbedded {
                            code: code.to_owned(),
                            item_code,
                            lookup_barcode: zeroed,
                            value,
                            decimals,
                        },
                    };
                }
            }
        }
        ScannedCode::Plain {
            code: code.to_owned(),
            symbology: symbology(code),
        }
    }
}

/// A scanned code, read with the shop's nomenclature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum ScannedCode {
    /// A product's own barcode (or a shop's own code): look it up as it is.
    Plain { code: String, symbology: Symbology },
    /// A price label: `value` with `decimals` decimals in the shop's currency.
    PriceEmbedded {
        code: String,
        item_code: String,
        lookup_barcode: String,
        value: i64,
        decimals: u32,
    },
    /// A scale label: `value` with `decimals` decimals of the product's unit.
    WeightEmbedded {
        code: String,
        item_code: String,
        lookup_barcode: String,
        value: i64,
        decimals: u32,
    },
}

impl ScannedCode {
    /// The barcode to look the product up by: the code itself, or for an in-store code the
    /// code with the value digits zeroed, as the product stores it.
    pub fn lookup_barcode(&self) -> &str {
        match self {
            ScannedCode::Plain { code, .. } => code,
            ScannedCode::PriceEmbedded { lookup_barcode, .. }
            | ScannedCode::WeightEmbedded { lookup_barcode, .. } => lookup_barcode,
        }
    }

    /// The embedded price in minor units of a currency with `minor_unit_exponent` decimals
    /// (`None` for other codes, or if the label has more decimals than the currency).
    pub fn embedded_price_minor(&self, minor_unit_exponent: u32) -> Option<i64> {
        match self {
            ScannedCode::PriceEmbedded {
                value, decimals, ..
            } => rescale(*value, *decimals, minor_unit_exponent),
            _ => None,
        }
    }

    /// The embedded quantity in milli-units (`None` for other codes).
    pub fn embedded_quantity_milli(&self) -> Option<i64> {
        match self {
            ScannedCode::WeightEmbedded {
                value, decimals, ..
            } => rescale(*value, *decimals, 3),
            _ => None,
        }
    }
}

/// `value` with `from` decimals as an integer with `to` decimals; `None` if digits would be lost.
fn rescale(value: i64, from: u32, to: u32) -> Option<i64> {
    if to >= from {
        value.checked_mul(10i64.checked_pow(to - from)?)
    } else {
        let divisor = 10i64.checked_pow(from - to)?;
        (value % divisor == 0).then_some(value / divisor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nomenclature_survives_its_text_and_bad_rules_are_named() {
        let default = Nomenclature::default();
        assert_eq!(
            default.to_text(),
            "21 5 price 2\n22 5 weight 3\n23 5 weight 3"
        );
        assert_eq!(Nomenclature::parse_text(&default.to_text()), Ok(default));
        let typed = Nomenclature::parse_text(" 24 4 Weight 3 ,\n\n 250 5 price 0 ").unwrap();
        assert_eq!(typed.to_text(), "24 4 weight 3\n250 5 price 0");
        assert_eq!(
            Nomenclature::parse_text(""),
            Ok(Nomenclature { rules: vec![] })
        );
        for bad in [
            "21 5 price",
            "21 five price 2",
            "21 5 volume 2",
            "21 5 price 2 extra",
        ] {
            assert_eq!(
                Nomenclature::parse_text(bad),
                Err(NomenclatureError::UnreadableRule(bad.to_owned())),
                "{bad}"
            );
        }
        assert_eq!(
            Nomenclature::parse_text("21 5 price 2, 31 5 price 2"),
            Err(NomenclatureError::BadPrefix("31".into()))
        );
        assert_eq!(
            Nomenclature::parse_text("21 10 price 2"),
            Err(NomenclatureError::NoValueDigits {
                prefix: "21".into()
            })
        );
    }

    #[test]
    fn check_digits_of_real_codes() {
        for valid in [
            "8901063010017", // EAN-13, Parle-G
            "4006381333931", // EAN-13
            "96385074",      // EAN-8
            "036000291452",  // UPC-A
            "5901234123457", // EAN-13, GS1's example
        ] {
            assert!(has_valid_check_digit(valid), "{valid}");
        }
        for invalid in [
            "8901063010018",
            "96385075",
            "036000291453",
            "12345",
            "abcdefghijklm",
        ] {
            assert!(!has_valid_check_digit(invalid), "{invalid}");
        }
        assert_eq!(check_digit("590123412345"), Some(7));
        assert_eq!(symbology("8901063010017"), Symbology::Ean13);
        assert_eq!(symbology("96385074"), Symbology::Ean8);
        assert_eq!(symbology("036000291452"), Symbology::UpcA);
        assert_eq!(symbology("ABC-123"), Symbology::Other);
    }

    fn with_check_digit(body: &str) -> String {
        format!("{body}{}", check_digit(body).unwrap())
    }

    #[test]
    fn a_scale_label_carries_the_weight() {
        let code = with_check_digit("221234501250");
        let scanned = Nomenclature::default().parse(&code);
        assert_eq!(
            scanned,
            ScannedCode::WeightEmbedded {
                code: code.clone(),
                item_code: "12345".into(),
                lookup_barcode: with_check_digit("221234500000"),
                value: 1250,
                decimals: 3,
            }
        );
        assert_eq!(scanned.embedded_quantity_milli(), Some(1250));
        assert_eq!(scanned.embedded_price_minor(2), None);
        assert_eq!(scanned.lookup_barcode(), with_check_digit("221234500000"));
    }

    #[test]
    fn a_price_label_carries_the_price() {
        let code = with_check_digit("210004203575");
        let scanned = Nomenclature::default().parse(&code);
        assert_eq!(scanned.embedded_price_minor(2), Some(3575));
        assert_eq!(scanned.embedded_price_minor(3), Some(35750));
        assert_eq!(
            scanned.embedded_price_minor(0),
            None,
            "35.75 has no whole yen"
        );
        assert_eq!(scanned.lookup_barcode(), with_check_digit("210004200000"));
        let ScannedCode::PriceEmbedded { item_code, .. } = scanned else {
            panic!("{scanned:?}")
        };
        assert_eq!(item_code, "00042");
    }

    #[test]
    fn other_codes_are_taken_as_they_are() {
        let nomenclature = Nomenclature::default();
        // A prefix-2 code with a wrong check digit is not an in-store code.
        let check = |code: &str, symbology: Symbology| {
            assert_eq!(
                nomenclature.parse(code),
                ScannedCode::Plain {
                    code: code.into(),
                    symbology
                }
            );
        };
        check("2212345012500", Symbology::Other);
        check("8901063010017", Symbology::Ean13);
        check("PG-250", Symbology::Other);
        // A prefix no rule names.
        check(&with_check_digit("291234501250"), Symbology::Ean13);
    }

    #[test]
    fn a_shop_can_lay_out_its_own_rules() {
        let nomenclature = Nomenclature {
            rules: vec![EmbeddedRule {
                prefix: "20".into(),
                item_digits: 4,
                value: EmbeddedValue::Price { decimals: 2 },
            }],
        };
        assert_eq!(nomenclature.validate(), Ok(()));
        let scanned = nomenclature.parse(&with_check_digit("200042012345"));
        assert_eq!(scanned.embedded_price_minor(2), Some(12345));
        let bad = |prefix: &str, item_digits| Nomenclature {
            rules: vec![EmbeddedRule {
                prefix: prefix.into(),
                item_digits,
                value: EmbeddedValue::Weight { decimals: 3 },
            }],
        };
        assert_eq!(
            bad("12", 5).validate(),
            Err(NomenclatureError::BadPrefix("12".into()))
        );
        assert_eq!(
            bad("22", 10).validate(),
            Err(NomenclatureError::NoValueDigits {
                prefix: "22".into()
            })
        );
        assert_eq!(Nomenclature::default().validate(), Ok(()));
    }
}
