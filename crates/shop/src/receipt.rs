//! The receipt: as data for the screen, the print stylesheet and the thermal-printer canvas;
//! as plain text for "Send on WhatsApp" (a `https://wa.me/<digits>?text=…` link); the bill's
//! QR code (its id, as SVG or as modules to draw); and the UPI payment link
//! `upi://pay?pa=…&pn=…&am=…&tn=<bill number>&cu=…` that a payment QR carries.
//!
//! Its words come from the catalogue of the language asked for (`counterbook-i18n`), so a
//! receipt prints in the tablet's language.
//!
//! Its numbers (amounts, quantities, rates) are written by the [`ReceiptNumbers`] the caller
//! gives: the app's writes them with `Intl.NumberFormat` in the tablet's language and the
//! shop's region ("1,234.50", "١٬٢٣٤٫٥٠"), [`PlainNumbers`] as ASCII decimals ("1234.50").
//! Every receipt the app makes (screen, WhatsApp text, printer) uses the app's: the thermal
//! printer gets a picture of the receipt drawn on a canvas, not ESC/POS text, so it prints
//! any script and any digits. Only the UPI link keeps ASCII ([`upi_payment_url`]: a payment
//! app reads it). The date and time come in already formatted (the browser's `Intl` knows the
//! shop's locale and time zone; this crate reads no clock).

use serde::{Deserialize, Serialize};

use counterbook_i18n::{Catalogue, Msg};

use crate::customer::{phone_digits, Customer};
use crate::money::{format_decimal, format_decimal_trimmed};
use crate::product::QuantityUnit;
use crate::records::Bill;
use crate::settings::ShopSettings;

/// One line of a receipt, ready to show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptLine {
    pub name: String,
    /// "3" or "1.250 kg".
    pub quantity: String,
    /// The unit price, "25.00" (per kg, l, … for loose goods).
    pub unit_price: String,
    /// "−5.00" or "−10%", empty without a discount.
    pub discount: String,
    /// What the line comes to.
    pub amount: String,
}

/// One row of the receipt's tax summary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptTaxRow {
    /// "18%".
    pub rate: String,
    pub taxable: String,
    pub tax: String,
}

/// One payment as the receipt shows it: "Cash 500.00", "UPI (unconfirmed) 50.00".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptPayment {
    pub label: String,
    pub amount: String,
}

/// Everything a receipt shows, in order, as text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    pub shop_name: String,
    pub address: Option<String>,
    pub phone: Option<String>,
    pub tax_id: Option<String>,
    /// The shop's receipt header (settings), under its name and address.
    #[serde(default)]
    pub header: Option<String>,
    pub bill_number: String,
    pub bill_id: String,
    pub date_time: String,
    pub cashier: Option<String>,
    pub device: String,
    pub currency: String,
    pub lines: Vec<ReceiptLine>,
    pub subtotal: String,
    /// Empty without discounts.
    pub discount: String,
    pub tax_summary: Vec<ReceiptTaxRow>,
    pub tax: String,
    /// Empty without rounding.
    pub rounding: String,
    /// What was paid: the total with its cash rounding.
    pub total: String,
    pub payments: Vec<ReceiptPayment>,
    /// Empty without change.
    pub change: String,
    /// A credit customer's name and new balance.
    pub customer_name: Option<String>,
    pub customer_balance: Option<String>,
    pub footer: Option<String>,
}

/// How a receipt writes its numbers (see the module's doc).
pub trait ReceiptNumbers {
    /// `value / 10^decimals`, with at least `min_decimals` of its decimals shown (trailing
    /// zeros beyond them dropped): amounts are `(minor, 2, 2)` in a two-digit currency, a
    /// loose quantity `(1250, 3, 3)`, a count of pieces `(3, 0, 0)`.
    fn decimal(&self, value: i64, decimals: u32, min_decimals: u32) -> String;
    /// A rate in basis points as a percentage: "18%", "12.5%", "-10%".
    fn percent(&self, basis_points: i64) -> String;
}

/// ASCII decimals with a point and no grouping ("1234.50", "12.5%").
#[derive(Clone, Copy, Debug, Default)]
pub struct PlainNumbers;

impl ReceiptNumbers for PlainNumbers {
    fn decimal(&self, value: i64, decimals: u32, min_decimals: u32) -> String {
        let mut text = format_decimal(value, decimals);
        let mut extra = decimals.saturating_sub(min_decimals);
        while extra > 0 && text.ends_with('0') {
            text.pop();
            extra -= 1;
        }
        if text.ends_with('.') {
            text.pop();
        }
        text
    }

    fn percent(&self, basis_points: i64) -> String {
        format!("{}%", format_decimal_trimmed(basis_points, 2))
    }
}

fn quantity_text(
    quantity: i64,
    unit: QuantityUnit,
    words: &Catalogue,
    numbers: &dyn ReceiptNumbers,
) -> String {
    if unit.is_loose() {
        format!(
            "{} {}",
            numbers.decimal(quantity, 3, 3),
            unit_label(words, unit)
        )
    } else {
        numbers.decimal(quantity, 0, 0)
    }
}

/// A unit's symbol in `words`' language ("kg"; "किग्रा" in Hindi).
pub fn unit_label(words: &Catalogue, unit: QuantityUnit) -> &str {
    words.text(match unit {
        QuantityUnit::Piece => Msg::UnitPiece,
        QuantityUnit::Kilogram => Msg::UnitKg,
        QuantityUnit::Gram => Msg::UnitG,
        QuantityUnit::Litre => Msg::UnitL,
        QuantityUnit::Millilitre => Msg::UnitMl,
    })
}

/// The device a receipt names: the name the shop gave it, else its bill series (the part of
/// the bill number before the dash, one per device), which is shorter than its id.
fn device_of(bill: &Bill) -> String {
    if let Some(name) = bill
        .device_name
        .as_deref()
        .filter(|name| !name.trim().is_empty())
    {
        return name.trim().to_owned();
    }
    match bill.number.rsplit_once('-') {
        Some((series, _)) if !series.is_empty() => series.to_owned(),
        _ => bill.device_id.clone(),
    }
}

/// A payment method as receipts name it, in `words`' language.
pub fn method_label(words: &Catalogue, method: crate::payment::PaymentMethod) -> &str {
    use crate::payment::PaymentMethod;
    words.text(match method {
        PaymentMethod::Cash => Msg::PaymentMethodCash,
        PaymentMethod::Card => Msg::PaymentMethodCard,
        PaymentMethod::Upi => Msg::PaymentMethodUpi,
        PaymentMethod::Credit => Msg::PaymentMethodCredit,
    })
}

/// The receipt of `bill`, in the language of `words`, its numbers written by `numbers`.
/// `customer` is the bill's customer as the device has it after the sale (its balance then
/// includes this bill's credit); `date_time` is the sale's time, formatted by the caller.
pub fn receipt_of(
    bill: &Bill,
    settings: &ShopSettings,
    customer: Option<&Customer>,
    date_time: &str,
    words: &Catalogue,
    numbers: &dyn ReceiptNumbers,
) -> Receipt {
    let exponent = settings.minor_unit_exponent;
    let money = |minor: i64| numbers.decimal(minor, exponent, exponent);
    let lines = bill
        .lines
        .iter()
        .zip(bill.totals.lines.iter())
        .map(|(line, amounts)| ReceiptLine {
            name: line.name.clone(),
            quantity: quantity_text(line.quantity, line.unit, words, numbers),
            unit_price: money(line.unit_price_minor),
            discount: match line.discount {
                crate::bill::LineDiscount::None => String::new(),
                crate::bill::LineDiscount::Amount { minor } => money(-minor),
                crate::bill::LineDiscount::Percent { basis_points } => {
                    numbers.percent(-i64::from(basis_points))
                }
            },
            amount: money(amounts.total_minor),
        })
        .collect();
    let settlement = &bill.settlement;
    let payments = settlement
        .payments
        .iter()
        .map(|payment| ReceiptPayment {
            label: match payment.confirmed {
                Some(false) => words.format(
                    Msg::ReceiptUnconfirmed,
                    &[("method", method_label(words, payment.method))],
                ),
                _ => method_label(words, payment.method).to_owned(),
            },
            amount: money(payment.received_minor.unwrap_or(payment.amount_minor)),
        })
        .collect();
    let nonzero = |minor: i64| {
        if minor == 0 {
            String::new()
        } else {
            money(minor)
        }
    };
    let credit_customer = customer.filter(|_| settlement.credit_minor > 0);
    Receipt {
        shop_name: settings.shown_shop_name(words).to_owned(),
        address: settings.address.clone(),
        phone: settings.phone.clone(),
        tax_id: settings.tax_id.clone(),
        header: settings.receipt_header.clone(),
        bill_number: bill.number.clone(),
        bill_id: bill.id.clone(),
        date_time: date_time.to_owned(),
        cashier: bill.cashier.clone(),
        device: device_of(bill),
        currency: settings.currency.clone(),
        lines,
        subtotal: money(bill.totals.subtotal_minor),
        discount: if bill.totals.discount_minor == 0 {
            String::new()
        } else {
            money(-bill.totals.discount_minor)
        },
        tax_summary: bill
            .totals
            .tax_summary
            .iter()
            .filter(|row| row.tax_rate_basis_points > 0)
            .map(|row| ReceiptTaxRow {
                rate: numbers.percent(i64::from(row.tax_rate_basis_points)),
                taxable: money(row.taxable_minor),
                tax: money(row.tax_minor),
            })
            .collect(),
        tax: money(bill.totals.tax_minor),
        rounding: nonzero(settlement.rounding_minor),
        total: money(settlement.payable_minor),
        payments,
        change: nonzero(settlement.change_minor),
        customer_name: credit_customer.map(|customer| customer.name.clone()),
        customer_balance: credit_customer.map(|customer| money(customer.credit_balance_minor)),
        footer: settings.receipt_footer.clone(),
    }
}

/// `left` and `right` on one line of `width` characters (at least one space between; a long
/// `left` pushes `right` to the next line).
fn two_columns(left: &str, right: &str, width: usize) -> String {
    let used = left.chars().count() + right.chars().count();
    if used < width {
        format!("{left}{}{right}", " ".repeat(width - used))
    } else {
        format!(
            "{left}\n{}{right}",
            " ".repeat(width.saturating_sub(right.chars().count()))
        )
    }
}

/// Characters across 58 mm paper in the printer's font, and a good width for WhatsApp.
pub const TEXT_WIDTH_58_MM: usize = 32;
/// Characters across 80 mm paper.
pub const TEXT_WIDTH_80_MM: usize = 48;

impl Receipt {
    /// The receipt as plain text, `width` characters a line, in the language of `words`.
    pub fn to_text(&self, width: usize, words: &Catalogue) -> String {
        let labelled = |msg: Msg, value: &str| format!("{} {value}", words.text(msg));
        let rule = "-".repeat(width);
        let mut out: Vec<String> = vec![self.shop_name.clone()];
        out.extend(self.address.iter().cloned());
        out.extend(
            self.phone
                .iter()
                .map(|phone| labelled(Msg::ReceiptPhone, phone)),
        );
        out.extend(
            self.tax_id
                .iter()
                .map(|tax_id| labelled(Msg::ReceiptTaxId, tax_id)),
        );
        out.extend(self.header.iter().cloned());
        out.push(rule.clone());
        out.push(labelled(Msg::ReceiptBill, &self.bill_number));
        out.push(self.date_time.clone());
        if let Some(cashier) = &self.cashier {
            out.push(labelled(Msg::ReceiptCashier, cashier));
        }
        out.push(labelled(Msg::ReceiptDevice, &self.device));
        out.push(rule.clone());
        for line in &self.lines {
            out.push(line.name.clone());
            let mut detail = format!("  {} x {}", line.quantity, line.unit_price);
            if !line.discount.is_empty() {
                detail.push_str(&format!(" {}", line.discount));
            }
            out.push(two_columns(&detail, &line.amount, width));
        }
        out.push(rule.clone());
        out.push(two_columns(
            words.text(Msg::ReceiptSubtotal),
            &self.subtotal,
            width,
        ));
        if !self.discount.is_empty() {
            out.push(two_columns(
                words.text(Msg::ReceiptDiscount),
                &self.discount,
                width,
            ));
        }
        for row in &self.tax_summary {
            out.push(two_columns(&self.tax_label(row, words), &row.tax, width));
        }
        if !self.rounding.is_empty() {
            out.push(two_columns(
                words.text(Msg::ReceiptRounding),
                &self.rounding,
                width,
            ));
        }
        out.push(two_columns(
            &labelled(Msg::ReceiptTotal, &self.currency),
            &self.total,
            width,
        ));
        for payment in &self.payments {
            out.push(two_columns(&payment.label, &payment.amount, width));
        }
        if !self.change.is_empty() {
            out.push(two_columns(
                words.text(Msg::ReceiptChange),
                &self.change,
                width,
            ));
        }
        if let (Some(name), Some(balance)) = (&self.customer_name, &self.customer_balance) {
            out.push(two_columns(
                &words.format(Msg::ReceiptOwes, &[("name", name)]),
                balance,
                width,
            ));
        }
        if let Some(footer) = &self.footer {
            out.push(rule);
            out.push(footer.clone());
        }
        out.join("\n")
    }
}

impl Receipt {
    /// "Tax 5% on 142.86", in the language of `words`.
    pub fn tax_label(&self, row: &ReceiptTaxRow, words: &Catalogue) -> String {
        words.format(
            Msg::ReceiptTaxOn,
            &[("rate", &row.rate), ("taxable", &row.taxable)],
        )
    }
}

/// Percent-encodes `text` for a URL query value (RFC 3986: everything but `A–Z a–z 0–9 - . _
/// ~` becomes `%XX` of its UTF-8 bytes, spaces included).
pub fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Why a WhatsApp link cannot be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WhatsAppError {
    #[error("the phone number \"{0}\" has too few digits for WhatsApp")]
    TooFewDigits(String),
}

/// The `https://wa.me/<digits>?text=<receipt>` link. WhatsApp wants the full international
/// number: a number written with `+` or `00` keeps its own country code; a national number
/// (up to 10 digits once a leading trunk `0` is dropped) gets `country_code` (e.g. "91").
pub fn whatsapp_url(phone: &str, country_code: &str, text: &str) -> Result<String, WhatsAppError> {
    let trimmed = phone.trim();
    let mut digits = phone_digits(trimmed);
    let international = trimmed.starts_with('+') || digits.starts_with("00");
    if digits.starts_with("00") {
        digits.drain(..2);
    } else if !international {
        let national = digits.trim_start_matches('0');
        if national.len() <= 10 {
            digits = format!("{}{national}", phone_digits(country_code));
        }
    }
    if digits.len() < 8 {
        return Err(WhatsAppError::TooFewDigits(phone.to_owned()));
    }
    Ok(format!(
        "https://wa.me/{digits}?text={}",
        percent_encode(text)
    ))
}

/// Why a UPI link cannot be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UpiError {
    #[error("the shop has no UPI id in its settings")]
    NoUpiId,
    #[error("a UPI payment must be above zero")]
    NonPositiveAmount,
}

/// The UPI deep link a payment QR carries: payee (the shop's UPI id), payee name, amount
/// with the currency's decimals, the bill number as the note, the currency.
pub fn upi_payment_url(
    settings: &ShopSettings,
    amount_minor: i64,
    bill_number: &str,
) -> Result<String, UpiError> {
    let upi_id = settings
        .upi_id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .ok_or(UpiError::NoUpiId)?;
    if amount_minor <= 0 {
        return Err(UpiError::NonPositiveAmount);
    }
    // `@` is allowed in a query and UPI apps expect the id as written, so it stays.
    let payee = percent_encode(upi_id).replace("%40", "@");
    Ok(format!(
        "upi://pay?pa={payee}&pn={}&am={}&tn={}&cu={}",
        percent_encode(&settings.shop_name),
        format_decimal(amount_minor, settings.minor_unit_exponent),
        percent_encode(bill_number),
        percent_encode(&settings.currency),
    ))
}

/// Why a QR code cannot be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the text does not fit in a QR code: {0}")]
pub struct QrError(String);

/// A QR code of `data` as an SVG image at least `min_size` pixels square, black on white
/// with the standard quiet zone.
pub fn qr_svg(data: &str, min_size: u32) -> Result<String, QrError> {
    let code = qrcode::QrCode::new(data.as_bytes()).map_err(|e| QrError(e.to_string()))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(min_size, min_size)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build())
}

/// The modules of a QR code of `data` (row by row, `true` = dark) and its width in modules,
/// without the quiet zone: for drawing it on the thermal printer's canvas.
pub fn qr_modules(data: &str) -> Result<(usize, Vec<bool>), QrError> {
    let code = qrcode::QrCode::new(data.as_bytes()).map_err(|e| QrError(e.to_string()))?;
    let modules = code
        .to_colors()
        .into_iter()
        .map(|color| color == qrcode::Color::Dark)
        .collect();
    Ok((code.width(), modules))
}

/// The bill id a scan of a receipt's QR code gives, if it is one: a UUID, in lower case.
/// (A keyboard-wedge scanner reports letters by key, in capitals: `0193A0B0-…`.)
pub fn bill_id_from_scan(code: &str) -> Option<String> {
    let id = code.trim().to_ascii_lowercase();
    let groups: Vec<&str> = id.split('-').collect();
    let shaped = groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(group, length)| {
            group.len() == length && group.chars().all(|c| c.is_ascii_hexdigit())
        });
    shaped.then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::{complete_sale, ActionContext, Sale};
    use crate::bill::{BillLine, LineDiscount};
    use crate::payment::Tender;
    use crate::product::Product;
    use crate::series::BillNumber;

    fn settings() -> ShopSettings {
        ShopSettings {
            shop_name: "Sharma General Store".into(),
            address: Some("12 MG Road, Pune".into()),
            phone: Some("020 2612 3456".into()),
            tax_id: Some("27AAPFU0939F1ZV".into()),
            upi_id: Some("sharma@okbank".into()),
            receipt_header: Some("Open 8 am to 10 pm".into()),
            receipt_footer: Some("Thank you! Visit again.".into()),
            ..ShopSettings::default()
        }
    }

    fn sold_bill(customer: &Customer) -> (Bill, Customer) {
        let mut rice = Product::new("rice".into(), "Basmati rice", 120_00, "INR");
        rice.unit = QuantityUnit::Kilogram;
        rice.tax_rate_basis_points = 500;
        let mut soap = Product::new("soap".into(), "Soap", 45_00, "INR");
        soap.tax_rate_basis_points = 1800;
        let lines = [
            BillLine::of_product(&rice, 1250),
            BillLine {
                discount: LineDiscount::Percent { basis_points: 1000 },
                ..BillLine::of_product(&soap, 2)
            },
        ];
        let number = BillNumber::parse("T2-000123").unwrap();
        let settings = settings();
        let tenders = [
            Tender::Credit {
                amount_minor: 100_00,
            },
            Tender::Cash {
                received_minor: 200_00,
            },
        ];
        let sale = Sale {
            number: &number,
            lines: &lines,
            tenders: &tenders,
            customer: Some(customer),
            products: &[],
            settings: &settings,
            day: "2026-12-01",
        };
        let mut next = 0;
        let context = ActionContext {
            shop_id: "s1",
            device_id: "T2",
            device_name: Some("Counter 2"),
            cashier: Some("Asha"),
            person_id: None,
            now_millis: 0,
        };
        let completed = complete_sale(&context, &sale, &mut || {
            next += 1;
            format!("id-{next}")
        })
        .unwrap();
        let after = completed
            .work
            .records
            .iter()
            .find_map(|record| match record {
                crate::actions::Record::Customer(customer) => Some(customer.clone()),
                _ => None,
            })
            .unwrap();
        (completed.bill, after)
    }

    #[test]
    fn a_receipt_shows_the_bill_as_sold() {
        let customer = Customer::new("c1".into(), "Ravi", Some("98765 43210"));
        let (bill, customer) = sold_bill(&customer);
        let english = Catalogue::english();
        let receipt = receipt_of(
            &bill,
            &settings(),
            Some(&customer),
            "1 Dec 2026, 10:42",
            &english,
            &PlainNumbers,
        );
        assert_eq!(receipt.lines[0].quantity, "1.250 kg");
        assert_eq!(receipt.lines[0].amount, "150.00");
        assert_eq!(receipt.lines[1].discount, "-10%");
        assert_eq!(receipt.lines[1].amount, "81.00");
        assert_eq!(receipt.total, "231.00");
        assert_eq!(receipt.customer_balance.as_deref(), Some("100.00"));
        let text = receipt.to_text(TEXT_WIDTH_58_MM, &english);
        let expected = "\
Sharma General Store
12 MG Road, Pune
Phone 020 2612 3456
Tax id 27AAPFU0939F1ZV
Open 8 am to 10 pm
--------------------------------
Bill T2-000123
1 Dec 2026, 10:42
Cashier Asha
Device Counter 2
--------------------------------
Basmati rice
  1.250 kg x 120.00       150.00
Soap
  2 x 45.00 -10%           81.00
--------------------------------
Subtotal                  240.00
Discount                   -9.00
Tax 5% on 142.86            7.14
Tax 18% on 68.64           12.36
Total INR                 231.00
Cash                      200.00
Credit                    100.00
Change                     69.00
Ravi owes                 100.00
--------------------------------
Thank you! Visit again.";
        assert_eq!(text, expected);
        assert!(text
            .lines()
            .all(|line| line.chars().count() <= TEXT_WIDTH_58_MM));
    }

    /// Regression guard: a receipt is printed in the tablet's language, its words from that
    /// language's catalogue (Hindi and Arabic here), its amounts and names as sold.
    #[test]
    fn a_receipt_speaks_the_language_asked_for() {
        let customer = Customer::new("c1".into(), "Ravi", Some("98765 43210"));
        let (bill, customer) = sold_bill(&customer);
        let (hindi, problems) = Catalogue::parse(
            counterbook_i18n::Language::Hindi,
            include_str!("../../../locales/hi.json"),
        )
        .expect("the Hindi catalogue");
        assert!(problems.is_empty(), "{problems:?}");
        let receipt = receipt_of(
            &bill,
            &settings(),
            Some(&customer),
            "1/12/2026",
            &hindi,
            &PlainNumbers,
        );
        let text = receipt.to_text(TEXT_WIDTH_80_MM, &hindi);
        for expected in [
            "बिल T2-000123",
            "कैशियर Asha",
            "कुल INR",
            "नकद",
            "उधार",
            "Ravi पर बाकी",
            "1.250 किग्रा x 120.00",
        ] {
            assert!(text.contains(expected), "{expected:?} not in\n{text}");
        }
        assert!(!text.contains("Total"), "{text}");
        let (arabic, _) = Catalogue::parse(
            counterbook_i18n::Language::Arabic,
            include_str!("../../../locales/ar.json"),
        )
        .expect("the Arabic catalogue");
        let text = receipt_of(
            &bill,
            &settings(),
            Some(&customer),
            "",
            &arabic,
            &PlainNumbers,
        )
        .to_text(TEXT_WIDTH_80_MM, &arabic);
        for expected in ["فاتورة T2-000123", "المجموع INR", "نقدًا"] {
            assert!(text.contains(expected), "{expected:?} not in\n{text}");
        }
        // A shop not named yet is "My shop" in the receipt's language, a named one its name.
        let unnamed = ShopSettings::default();
        let in_arabic = receipt_of(&bill, &unnamed, None, "", &arabic, &PlainNumbers);
        assert_eq!(in_arabic.shop_name, "متجري");
        let in_english = receipt_of(
            &bill,
            &unnamed,
            None,
            "",
            &Catalogue::english(),
            &PlainNumbers,
        );
        assert_eq!(in_english.shop_name, "My shop");
        assert_eq!(
            receipt_of(&bill, &settings(), None, "", &arabic, &PlainNumbers).shop_name,
            "Sharma General Store"
        );
    }

    #[test]
    fn plain_numbers_are_ascii_decimals_with_their_decimals_as_asked() {
        assert_eq!(PlainNumbers.decimal(123_450, 2, 2), "1234.50");
        assert_eq!(PlainNumbers.decimal(-900, 2, 2), "-9.00");
        assert_eq!(PlainNumbers.decimal(1_250, 3, 3), "1.250");
        assert_eq!(PlainNumbers.decimal(1_250, 3, 0), "1.25");
        assert_eq!(PlainNumbers.decimal(2_000, 3, 0), "2");
        assert_eq!(PlainNumbers.decimal(3, 0, 0), "3");
        assert_eq!(PlainNumbers.percent(1_250), "12.5%");
        assert_eq!(PlainNumbers.percent(-1_000), "-10%");
    }

    #[test]
    fn a_receipt_names_the_device_by_its_name_else_by_its_bill_series() {
        let customer = Customer::new("c1".into(), "Ravi", Some("98765 43210"));
        let (mut bill, _) = sold_bill(&customer);
        let english = Catalogue::english();
        let device =
            |bill: &Bill| receipt_of(bill, &settings(), None, "", &english, &PlainNumbers).device;
        assert_eq!(device(&bill), "Counter 2");
        bill.device_name = None;
        assert_eq!(device(&bill), "T2");
        bill.device_name = Some("  ".into());
        assert_eq!(device(&bill), "T2");
    }

    #[test]
    fn whatsapp_links_carry_the_full_number_and_the_encoded_text() {
        let check = |phone: &str, expected: Result<&str, WhatsAppError>| {
            assert_eq!(
                whatsapp_url(phone, "91", "Bill T2-000123\nTotal ₹231 & thanks"),
                expected.map(|digits| format!(
                    "https://wa.me/{digits}?text=Bill%20T2-000123%0ATotal%20%E2%82%B9231%20%26%20thanks"
                ))
            );
        };
        check("98765 43210", Ok("919876543210"));
        check("098765-43210", Ok("919876543210"));
        check("+91 98765 43210", Ok("919876543210"));
        check("0033 6 12 34 56 78", Ok("33612345678"));
        check("+213 550 12 34 56", Ok("213550123456"));
        check("123", Err(WhatsAppError::TooFewDigits("123".into())));
    }

    #[test]
    fn the_upi_link_names_payee_amount_and_bill() {
        let mut settings = settings();
        assert_eq!(
            upi_payment_url(&settings, 231_00, "T2-000123"),
            Ok("upi://pay?pa=sharma@okbank&pn=Sharma%20General%20Store&am=231.00&tn=T2-000123&cu=INR".into())
        );
        settings.shop_name = "Café & Co".into();
        assert_eq!(
            upi_payment_url(&settings, 5, "T2-1"),
            Ok("upi://pay?pa=sharma@okbank&pn=Caf%C3%A9%20%26%20Co&am=0.05&tn=T2-1&cu=INR".into())
        );
        assert_eq!(
            upi_payment_url(&settings, 0, "T2-1"),
            Err(UpiError::NonPositiveAmount)
        );
        settings.upi_id = None;
        assert_eq!(
            upi_payment_url(&settings, 1, "T2-1"),
            Err(UpiError::NoUpiId)
        );
    }

    #[test]
    fn the_bill_qr_code_is_an_svg_and_reads_back_from_a_scan() {
        let id = "0193a0b0-0000-7000-8000-00000000abcd";
        let svg = qr_svg(id, 160).unwrap();
        assert!(svg.starts_with("<?xml"));
        assert!(svg.contains("<svg") && svg.contains("#000000"));
        let (width, modules) = qr_modules(id).unwrap();
        assert_eq!(modules.len(), width * width);
        // Finder pattern: the top-left module is dark, the one inside its ring light.
        assert!(modules[0] && !modules[width + 1]);
        assert_eq!(
            bill_id_from_scan("0193A0B0-0000-7000-8000-00000000ABCD").as_deref(),
            Some(id)
        );
        assert_eq!(bill_id_from_scan("8901063010017"), None);
        assert_eq!(
            bill_id_from_scan("0193a0b0-0000-7000-8000-00000000abcz"),
            None
        );
        assert!(qr_svg(&"x".repeat(8000), 100).is_err());
    }

    #[test]
    fn encoding_leaves_only_unreserved_characters() {
        assert_eq!(percent_encode("a-z_0.9~"), "a-z_0.9~");
        assert_eq!(percent_encode("a b+c/d?e=f"), "a%20b%2Bc%2Fd%3Fe%3Df");
        assert_eq!(percent_encode("चाय"), "%E0%A4%9A%E0%A4%BE%E0%A4%AF");
    }
}
