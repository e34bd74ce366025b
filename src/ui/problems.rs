//! Problems as people read them: each error a screen shows, variant by variant, as a message
//! of the catalogue in the tablet's language ([`Shown`]). An error's `Display` (thiserror) is
//! English for logs and the console; what is not mapped here shows its `Display`.

use crate::i18n::{count_text, t, tn, tr, Msg};
use crate::money::{format_price, PriceError};
use crate::people::PinError;
use crate::storage::StorageError;
use crate::sync::identity::SignInError;
use crate::sync::session::{SessionError, SetupError, SetupField};
use counterbook_shop::receipt::ReceiptNumbers;

/// What ends a problem's sentence when a detail from elsewhere follows it (see [`with_detail`]).
const DETAIL_SEPARATOR: char = '\n';

/// A problem's sentence (the catalogue's) with a detail from elsewhere (a server's reply, the
/// browser's words) after it, never inside it: [`ProblemText`] shows the detail on a line of
/// its own, marked as data.
pub fn with_detail(sentence: &str, detail: &str) -> String {
    let detail = detail.trim();
    if detail.is_empty() {
        sentence.to_owned()
    } else {
        format!("{sentence}{DETAIL_SEPARATOR}{detail}")
    }
}

/// `msg` with `problem` (a [`Shown`] text, perhaps [`with_detail`]) as its `{problem}`: the
/// problem's sentence goes inside, its detail stays after the whole sentence.
pub fn nested(msg: Msg, problem: &str) -> String {
    match problem.split_once(DETAIL_SEPARATOR) {
        Some((sentence, detail)) => with_detail(&tr(msg, &[("problem", sentence)]), detail),
        None => tr(msg, &[("problem", problem)]),
    }
}

/// A problem as a screen shows it: the sentence in the tablet's language, then its detail (if
/// [`with_detail`] gave it one) on its own line, as data: `data-quoted` (not the app's words,
/// so never translated) and `dir="auto"` (an English detail stays left to right in Arabic).
#[leptos::component]
pub fn ProblemText(#[prop(into)] text: String) -> impl leptos::IntoView {
    use leptos::prelude::*;
    let (sentence, detail) = match text.split_once(DETAIL_SEPARATOR) {
        Some((sentence, detail)) => (sentence.to_owned(), Some(detail.to_owned())),
        None => (text, None),
    };
    view! {
        {sentence}
        {detail.map(|detail| view! { <Detail text=detail/> })}
    }
}

/// A detail from elsewhere on its own line: "Details:" and the text as it came.
#[leptos::component]
pub fn Detail(#[prop(into)] text: String) -> impl leptos::IntoView {
    use leptos::prelude::*;
    view! {
        <span class="problem-detail">{t(Msg::ProblemDetail)} " "
            <bdi data-quoted="" dir="auto">{text}</bdi>
        </span>
    }
}

/// An error as a screen shows it, in the tablet's language.
pub trait Shown {
    fn shown(&self) -> String;
}

impl Shown for SignInError {
    fn shown(&self) -> String {
        match self {
            SignInError::WrongCredentials => t(Msg::ProblemWrongCredentials).into(),
            SignInError::Disabled => t(Msg::ProblemAccountDisabled).into(),
            SignInError::TooManyAttempts => t(Msg::ProblemTooManyAttempts).into(),
            SignInError::SessionEnded => t(Msg::ProblemSessionEnded).into(),
            SignInError::Network(detail) => with_detail(t(Msg::ProblemNetwork), detail),
            SignInError::Refused(detail) => with_detail(t(Msg::ProblemRefused), detail),
            SignInError::MalformedReply(detail) => {
                with_detail(t(Msg::ProblemMalformedReply), detail)
            }
        }
    }
}

impl Shown for SetupError {
    fn shown(&self) -> String {
        match self {
            SetupError::WrongCode => t(Msg::ProblemWrongSetupCode).into(),
            SetupError::AlreadyClaimed => t(Msg::ProblemAlreadyClaimed).into(),
            SetupError::TooManyAttempts => t(Msg::ProblemTooManyCodes).into(),
            SetupError::SignIn(error) => error.shown(),
            SetupError::Session(error) => error.shown(),
            SetupError::Storage(error) => error.shown(),
            SetupError::InvalidField {
                field,
                limit,
                detail,
            } => setup_field_problem(*field, *limit)
                .unwrap_or_else(|| with_detail(t(Msg::ProblemRefused), detail)),
            // A refusal the app has no words for: the server's own, said to be its.
            SetupError::Invalid(detail) => with_detail(t(Msg::ProblemRefused), detail),
        }
    }
}

/// What to fix in a field of "Set up your shop" the server refused; `None` when the rule
/// needs its limit and the server's words had none.
fn setup_field_problem(field: SetupField, limit: Option<usize>) -> Option<String> {
    Some(match field {
        SetupField::ShopName => tn(Msg::ProblemSetupShopName, limit?, &[]),
        SetupField::DisplayName => tn(Msg::ProblemSetupDisplayName, limit?, &[]),
        SetupField::Password => tn(Msg::ProblemSetupPassword, limit?, &[]),
        SetupField::Currency => t(Msg::ProblemSetupCurrency).to_owned(),
        SetupField::Country => t(Msg::ProblemSetupCountry).to_owned(),
        SetupField::Locale => t(Msg::ProblemSetupLocale).to_owned(),
        SetupField::Email => t(Msg::ProblemSetupEmail).to_owned(),
    })
}

impl Shown for SessionError {
    fn shown(&self) -> String {
        match self {
            SessionError::SignIn(error) => error.shown(),
            SessionError::NoShop => t(Msg::ProblemNoShop).into(),
            SessionError::NoRole => t(Msg::ProblemNoRole).into(),
            SessionError::AnotherShop(shop) => tr(Msg::ProblemOtherShop, &[("shop", shop)]),
            SessionError::WrongPin => t(Msg::ProblemWrongPin).into(),
            SessionError::Pin(error) => error.shown(),
            SessionError::Storage(error) => error.shown(),
        }
    }
}

impl Shown for PinError {
    fn shown(&self) -> String {
        match self {
            PinError::NotFourToSixDigits => t(Msg::SigninPinRule).into(),
            PinError::NoWebCrypto(detail) => with_detail(t(Msg::ProblemNoWebCrypto), detail),
        }
    }
}

impl Shown for StorageError {
    fn shown(&self) -> String {
        match self {
            StorageError::Open(detail) => with_detail(t(Msg::ProblemStorageOpen), detail),
            StorageError::QuotaExceeded => t(Msg::ProblemStorageFull).into(),
            StorageError::Transaction(detail) => {
                with_detail(t(Msg::ProblemStorageTransaction), detail)
            }
            StorageError::Corrupt(detail) => with_detail(t(Msg::ProblemStorageCorrupt), detail),
        }
    }
}

impl Shown for PriceError {
    fn shown(&self) -> String {
        match self {
            PriceError::Empty => t(Msg::ProblemPriceEmpty).into(),
            PriceError::Negative => t(Msg::ProblemPriceNegative).into(),
            PriceError::NotANumber(text) => tr(Msg::ProblemPriceNotANumber, &[("text", text)]),
            PriceError::TooManyDecimals(digits) => tr(
                Msg::ProblemPriceTooManyDecimals,
                &[("digits", &digits.to_string())],
            ),
            PriceError::TooLarge => t(Msg::ProblemPriceTooLarge).into(),
        }
    }
}

impl Shown for crate::actions::NeedsApproval {
    fn shown(&self) -> String {
        t(Msg::ProblemNeedsApproval).into()
    }
}

impl Shown for counterbook_shop::money::AmountError {
    fn shown(&self) -> String {
        use counterbook_shop::money::AmountError;
        match self {
            AmountError::Empty => t(Msg::ProblemAmountEmpty).into(),
            AmountError::Negative => t(Msg::ProblemAmountNegative).into(),
            AmountError::NotANumber(text) => tr(Msg::ProblemAmountNotANumber, &[("text", text)]),
            AmountError::TooManyDecimals { text, allowed } => tr(
                Msg::ProblemAmountTooManyDecimals,
                &[("text", text), ("allowed", &allowed.to_string())],
            ),
            AmountError::TooLarge(text) => tr(Msg::ProblemAmountTooLarge, &[("text", text)]),
        }
    }
}

impl Shown for counterbook_shop::product::ProductError {
    fn shown(&self) -> String {
        use counterbook_shop::product::ProductError;
        match self {
            ProductError::EmptyName => t(Msg::ProblemNameEmpty).into(),
            ProductError::NameTooLong => tr(
                Msg::ProblemNameTooLong,
                &[(
                    "max",
                    &counterbook_shop::product::MAX_PRODUCT_NAME_CHARS.to_string(),
                )],
            ),
            ProductError::NegativePrice => t(Msg::ProblemNegativePrice).into(),
            ProductError::TaxRateTooHigh(basis_points) => tr(
                Msg::ProblemTaxRateTooHigh,
                &[("basis_points", &basis_points.to_string())],
            ),
            ProductError::BadBarcode(code) => tr(Msg::ProblemBadBarcode, &[("code", code)]),
            ProductError::BarcodeCheckDigit(code) => {
                tr(Msg::ProblemBarcodeCheckDigit, &[("code", code)])
            }
            ProductError::NegativeLowStockThreshold => t(Msg::ProblemNegativeLowStock).into(),
        }
    }
}

impl Shown for counterbook_shop::actions::StockError {
    fn shown(&self) -> String {
        use counterbook_shop::actions::StockError;
        match self {
            StockError::NonPositiveReceipt => t(Msg::ProblemReceiptNotPositive).into(),
            StockError::ZeroAdjustment => t(Msg::ProblemZeroAdjustment).into(),
            StockError::AdjustmentWithoutReason => t(Msg::ProblemAdjustmentReason).into(),
            StockError::NotAManualMove => t(Msg::ProblemNotAManualMove).into(),
        }
    }
}

impl Shown for crate::actions::products::ProductActionError {
    fn shown(&self) -> String {
        use crate::actions::products::ProductActionError;
        match self {
            ProductActionError::Product(error) => nested(Msg::ProblemCheckProduct, &error.shown()),
            ProductActionError::Stock(error) => nested(Msg::ProblemCheckStock, &error.shown()),
            ProductActionError::BarcodeTaken { barcode, owner } => tr(
                Msg::ProblemBarcodeTaken,
                &[("barcode", barcode), ("owner", owner)],
            ),
            ProductActionError::SkuTaken { sku, owner } => {
                tr(Msg::ProblemSkuTaken, &[("sku", sku), ("owner", owner)])
            }
            ProductActionError::NeedsApproval(error) => error.shown(),
            ProductActionError::Storage(error) => error.shown(),
        }
    }
}

impl Shown for counterbook_shop::product::QuantityError {
    fn shown(&self) -> String {
        use counterbook_shop::money::AmountError;
        use counterbook_shop::product::QuantityError;
        match self {
            QuantityError::WholePieces(text) => tr(Msg::ProblemWholePieces, &[("text", text)]),
            QuantityError::Amount(AmountError::Empty) => t(Msg::ProblemQuantityEmpty).into(),
            QuantityError::Amount(AmountError::Negative) => t(Msg::ProblemQuantityNegative).into(),
            QuantityError::Amount(error) => error.shown(),
        }
    }
}

impl Shown for counterbook_shop::csv_import::RowProblem {
    fn shown(&self) -> String {
        use counterbook_shop::csv_import::RowProblem;
        match self {
            RowProblem::Unreadable(detail) => with_detail(t(Msg::ProblemCsvRowUnreadable), detail),
            RowProblem::Amount(error) => error.shown(),
            RowProblem::Unit(error) => error.shown(),
            RowProblem::Quantity(error) => error.shown(),
            RowProblem::TaxRateAbove100(text) => {
                tr(Msg::ProblemCsvTaxRateAbove100, &[("text", text)])
            }
            RowProblem::Product(error) => error.shown(),
            RowProblem::RepeatedBarcode { barcode, first_row } => tr(
                Msg::ProblemCsvRepeatedBarcode,
                &[
                    ("barcode", barcode),
                    ("row", &count_text(*first_row as usize)),
                ],
            ),
            RowProblem::RepeatedSku { sku, first_row } => tr(
                Msg::ProblemCsvRepeatedSku,
                &[("sku", sku), ("row", &count_text(*first_row as usize))],
            ),
            RowProblem::BarcodeInCatalogue { barcode, owner } => {
                tr(Msg::CsvBarcodeUsed, &[("code", barcode), ("owner", owner)])
            }
            RowProblem::SkuInCatalogue { sku, owner } => {
                tr(Msg::CsvSkuUsed, &[("sku", sku), ("owner", owner)])
            }
        }
    }
}

/// A payment problem in the cashier's words, amounts in `currency` through `Intl`.
pub fn payment_problem(error: &counterbook_shop::PaymentError, currency: &str) -> String {
    use counterbook_shop::PaymentError;
    let money = |minor: i64| format_price(minor, currency);
    match error {
        PaymentError::CreditOverLimit {
            balance_minor,
            limit_minor,
            available_minor,
            ..
        } => tr(
            Msg::PaymentCreditOverLimit,
            &[
                ("limit", &money(*limit_minor)),
                ("balance", &money(*balance_minor)),
                ("available", &money(*available_minor)),
            ],
        ),
        PaymentError::CashShort { short_minor, .. } => {
            tr(Msg::PaymentCashShort, &[("amount", &money(*short_minor))])
        }
        PaymentError::Underpaid { remaining_minor } => tr(
            Msg::PaymentUnderpaid,
            &[("amount", &money(*remaining_minor))],
        ),
        PaymentError::CreditNeedsCustomer => t(Msg::PaymentCreditNeedsCustomer).into(),
        PaymentError::NegativeAmount => t(Msg::ProblemPaymentNegative).into(),
        PaymentError::NonCashAboveTotal {
            non_cash_minor,
            total_minor,
        } => tr(
            Msg::ProblemNonCashAboveTotal,
            &[
                ("non_cash", &money(*non_cash_minor)),
                ("total", &money(*total_minor)),
            ],
        ),
        PaymentError::TooLarge => t(Msg::ProblemPaymentTooLarge).into(),
    }
}

/// Why the shop's rules refuse a sale, amounts in `currency`.
pub fn sale_problem(error: &counterbook_shop::actions::SaleError, currency: &str) -> String {
    use counterbook_shop::actions::SaleError;
    match error {
        SaleError::NoLines => t(Msg::ProblemSaleNoLines).into(),
        SaleError::Bill(error) => error.shown(),
        SaleError::Payment(error) => payment_problem(error, currency),
        SaleError::TooManyWrites { writes } => tr(
            Msg::ProblemSaleTooManyWrites,
            &[
                ("writes", &count_text(*writes)),
                (
                    "max",
                    &count_text(counterbook_shop::actions::MAX_UNIT_WRITES),
                ),
            ],
        ),
    }
}

/// Why a sale did not complete, amounts in `currency`.
pub fn complete_sale_problem(
    error: &crate::actions::sale::CompleteSaleError,
    currency: &str,
) -> String {
    use crate::actions::sale::CompleteSaleError;
    let cannot = |problem: &str| tr(Msg::ProblemSaleCannotComplete, &[("problem", problem)]);
    match error {
        CompleteSaleError::Storage(error) => error.shown(),
        CompleteSaleError::Refused(error) | CompleteSaleError::OverCreditLimit(error) => {
            cannot(&sale_problem(error, currency))
        }
        CompleteSaleError::UnknownCustomer => cannot(t(Msg::ProblemCustomerNotHere)),
        CompleteSaleError::Series(error) => cannot(&tr(
            Msg::ProblemSeriesNoNumber,
            &[("problem", &error.shown())],
        )),
        CompleteSaleError::NoBill => cannot(t(Msg::ProblemSaleNoBill)),
        CompleteSaleError::NeedsApproval(error) => error.shown(),
        CompleteSaleError::PartNotLoaded => t(Msg::AppPartNotLoaded).into(),
    }
}

impl Shown for counterbook_shop::series::SeriesError {
    fn shown(&self) -> String {
        use counterbook_shop::series::SeriesError;
        match self {
            SeriesError::EmptySeries => t(Msg::ProblemSeriesEmpty).into(),
            SeriesError::BadSeries(series) => tr(Msg::ProblemSeriesBad, &[("series", series)]),
            SeriesError::NotABillNumber(text) => {
                tr(Msg::ProblemSeriesNotANumber, &[("text", text)])
            }
            SeriesError::Exhausted(series) => {
                tr(Msg::ProblemSeriesExhausted, &[("series", series)])
            }
        }
    }
}

impl Shown for crate::actions::sale::ConfirmUpiError {
    fn shown(&self) -> String {
        use crate::actions::sale::ConfirmUpiError;
        use counterbook_shop::actions::ConfirmError;
        match self {
            ConfirmUpiError::Refused(error) => {
                let problem = match error {
                    ConfirmError::NotUpi => t(Msg::ProblemConfirmNotUpi),
                    ConfirmError::AlreadyConfirmed => t(Msg::ProblemConfirmAlready),
                };
                tr(Msg::ProblemUpiNotConfirmed, &[("problem", problem)])
            }
            ConfirmUpiError::Storage(error) => error.shown(),
        }
    }
}

impl Shown for counterbook_shop::customer::CustomerError {
    fn shown(&self) -> String {
        use counterbook_shop::customer::CustomerError;
        match self {
            CustomerError::EmptyName => t(Msg::ProblemCustomerNameEmpty).into(),
            CustomerError::PhoneWithoutDigits(phone) => {
                tr(Msg::ProblemCustomerPhoneNoDigits, &[("phone", phone)])
            }
            CustomerError::NegativeCreditLimit => t(Msg::ProblemCustomerNegativeLimit).into(),
        }
    }
}

impl Shown for crate::actions::sale::CreateCustomerError {
    fn shown(&self) -> String {
        use crate::actions::sale::CreateCustomerError;
        match self {
            CreateCustomerError::NeedsApproval(error) => error.shown(),
            CreateCustomerError::Refused(error) => error.shown(),
            CreateCustomerError::Storage(error) => error.shown(),
        }
    }
}

impl Shown for counterbook_shop::barcode::NomenclatureError {
    /// The rule that cannot be used, named as the person typed it.
    fn shown(&self) -> String {
        use counterbook_shop::barcode::NomenclatureError;
        let rule = match self {
            NomenclatureError::BadPrefix(prefix) => prefix,
            NomenclatureError::NoValueDigits { prefix } => prefix,
            NomenclatureError::UnreadableRule(rule) => rule,
        };
        tr(Msg::SettingsBadBarcodeRule, &[("rule", rule)])
    }
}

impl Shown for counterbook_shop::settings::SettingsError {
    fn shown(&self) -> String {
        use counterbook_shop::settings::SettingsError;
        match self {
            SettingsError::BadCurrency(currency) => {
                tr(Msg::ProblemSettingsBadCurrency, &[("currency", currency)])
            }
            SettingsError::BadExponent(digits) => tr(
                Msg::ProblemSettingsBadExponent,
                &[("digits", &count_text(*digits as usize))],
            ),
            SettingsError::BadRoundingStep => t(Msg::ProblemSettingsBadRounding).into(),
            SettingsError::EmptyShopName => t(Msg::ProblemSettingsEmptyName).into(),
            SettingsError::BadUpiId(upi) => tr(Msg::ProblemSettingsBadUpi, &[("upi", upi)]),
            SettingsError::BadTaxRate(basis_points) => tr(
                Msg::ProblemSettingsBadTaxRate,
                &[(
                    "rate",
                    &crate::i18n::IntlNumbers.percent(i64::from(*basis_points)),
                )],
            ),
            SettingsError::Nomenclature(error) => error.shown(),
        }
    }
}

impl Shown for crate::actions::sale::ShopProfileError {
    fn shown(&self) -> String {
        use crate::actions::sale::ShopProfileError;
        match self {
            ShopProfileError::Invalid(error) => nested(Msg::ProblemProfileNotSaved, &error.shown()),
            ShopProfileError::Storage(error) => error.shown(),
        }
    }
}

impl Shown for counterbook_shop::VoidError {
    fn shown(&self) -> String {
        use counterbook_shop::VoidError;
        t(match self {
            VoidError::AlreadyVoid => Msg::ProblemVoidAlready,
            VoidError::NotFinal => Msg::ProblemVoidNotFinal,
            VoidError::HasRefunds => Msg::ProblemVoidHasRefunds,
            VoidError::NoReason => Msg::ProblemVoidNoReason,
        })
        .into()
    }
}

impl Shown for counterbook_shop::RefundError {
    /// A quantity left to refund shows as stored (whole pieces); the refund form, which knows
    /// each line's unit, writes loose goods' itself.
    fn shown(&self) -> String {
        use counterbook_shop::RefundError;
        let line_number = |line: usize| count_text(line + 1);
        match self {
            RefundError::BillVoided => t(Msg::ProblemRefundBillVoid).into(),
            RefundError::NotFinal => t(Msg::ProblemRefundNotFinal).into(),
            RefundError::NothingToRefund => t(Msg::ProblemRefundNothing).into(),
            RefundError::NoSuchLine { line } => {
                tr(Msg::ProblemNoSuchLine, &[("line", &line_number(*line))])
            }
            RefundError::NonPositiveQuantity { line, name } => tr(
                Msg::ProblemLineQuantity,
                &[("line", &line_number(*line)), ("name", name)],
            ),
            RefundError::MoreThanSold { line, name, left } => tr(
                Msg::ProblemRefundMoreThanSold,
                &[
                    ("line", &line_number(*line)),
                    ("name", name),
                    ("left", &crate::i18n::format_number(*left as f64)),
                ],
            ),
            RefundError::NoReason => t(Msg::ProblemRefundNoReason).into(),
            RefundError::CreditNeedsCustomer => t(Msg::ProblemRefundCreditNeedsCustomer).into(),
        }
    }
}

impl Shown for crate::actions::bills::BillActionError {
    fn shown(&self) -> String {
        use crate::actions::bills::BillActionError;
        match self {
            BillActionError::NeedsApproval(error) => error.shown(),
            BillActionError::Void(error) => nested(Msg::ProblemVoidRefused, &error.shown()),
            BillActionError::Refund(error) => nested(Msg::ProblemRefundRefused, &error.shown()),
            BillActionError::UnknownBill => t(Msg::ProblemBillNotHere).into(),
            BillActionError::Storage(error) => error.shown(),
        }
    }
}

impl Shown for crate::actions::sale::OpenBillError {
    fn shown(&self) -> String {
        use crate::actions::sale::OpenBillError;
        match self {
            OpenBillError::Storage(error) => error.shown(),
            OpenBillError::OfflineAndNotHere => t(Msg::ProblemBillOfflineNotHere).into(),
            // What the server said, in its words.
            OpenBillError::Server(detail) => with_detail(t(Msg::ProblemBillServer), detail),
            OpenBillError::EngineNotLoaded => t(Msg::AppPartNotLoaded).into(),
        }
    }
}

impl Shown for crate::devices::camera::CameraError {
    fn shown(&self) -> String {
        use crate::devices::camera::CameraError;
        match self {
            CameraError::Unsupported => t(Msg::ProblemCameraUnsupported).into(),
            CameraError::NoCamera(detail) => with_detail(t(Msg::ProblemCameraOpen), detail),
            CameraError::NothingSeen => t(Msg::ProblemCameraNothingSeen).into(),
        }
    }
}

impl Shown for crate::devices::printer::PrinterError {
    fn shown(&self) -> String {
        use crate::devices::printer::PrinterError;
        match self {
            PrinterError::Unsupported => t(Msg::ProblemPrinterUnsupported).into(),
            PrinterError::NotChosen => t(Msg::ProblemPrinterNotChosen).into(),
            PrinterError::Open(detail) => with_detail(t(Msg::ProblemPrinterOpen), detail),
            PrinterError::Send(detail) => with_detail(t(Msg::ProblemPrinterSend), detail),
        }
    }
}

impl Shown for counterbook_shop::receipt::UpiError {
    fn shown(&self) -> String {
        use counterbook_shop::receipt::UpiError;
        t(match self {
            UpiError::NoUpiId => Msg::ProblemUpiNoId,
            UpiError::NonPositiveAmount => Msg::ProblemUpiNotPositive,
        })
        .into()
    }
}

impl Shown for counterbook_shop::product::UnknownUnit {
    fn shown(&self) -> String {
        tr(Msg::ProblemUnknownUnit, &[("text", &self.0)])
    }
}

impl Shown for counterbook_shop::bill::BillError {
    fn shown(&self) -> String {
        use counterbook_shop::bill::BillError;
        let on_line = |msg: Msg, line: usize, name: &str| {
            tr(msg, &[("line", &(line + 1).to_string()), ("name", name)])
        };
        match self {
            BillError::NonPositiveQuantity { line, name } => {
                on_line(Msg::ProblemLineQuantity, *line, name)
            }
            BillError::NegativePrice { line, name } => {
                on_line(Msg::ProblemLineNegativePrice, *line, name)
            }
            BillError::NegativeDiscount { line, name } => {
                on_line(Msg::ProblemLineNegativeDiscount, *line, name)
            }
            BillError::DiscountAboveAmount { line, name } => {
                on_line(Msg::ProblemLineDiscountAboveAmount, *line, name)
            }
            BillError::TaxRateTooHigh { line, name } => {
                on_line(Msg::ProblemLineTaxRate, *line, name)
            }
            BillError::TooLarge => t(Msg::ProblemAmountsTooLarge).into(),
        }
    }
}

impl Shown for counterbook_shop::cart::CartError {
    fn shown(&self) -> String {
        use counterbook_shop::cart::CartError;
        match self {
            CartError::NoSuchLine(line) => {
                tr(Msg::ProblemNoSuchLine, &[("line", &line.to_string())])
            }
            CartError::NonPositiveQuantity => t(Msg::ProblemQuantityNotPositive).into(),
            CartError::Quantity(problem) => problem.shown(),
            CartError::WeightForPieces { name } => {
                tr(Msg::ProblemWeightForPieces, &[("name", name)])
            }
            CartError::NoPriceForLabel { name } => {
                tr(Msg::ProblemNoPriceForLabel, &[("name", name)])
            }
            CartError::LabelPrice => t(Msg::ProblemLabelPrice).into(),
            CartError::Discount(problem) => {
                tr(Msg::ProblemDiscount, &[("problem", &problem.shown())])
            }
        }
    }
}

impl Shown for counterbook_shop::csv_import::CsvFileError {
    fn shown(&self) -> String {
        use counterbook_shop::csv_import::CsvFileError;
        match self {
            CsvFileError::Empty => t(Msg::ProblemCsvEmpty).into(),
            CsvFileError::NotUtf8 => t(Msg::ProblemCsvNotUtf8).into(),
            CsvFileError::MissingColumn(column) => {
                tr(Msg::ProblemCsvMissingColumn, &[("column", column)])
            }
            CsvFileError::DuplicateColumn(column) => {
                tr(Msg::ProblemCsvDuplicateColumn, &[("column", column)])
            }
            CsvFileError::Unreadable(detail) => with_detail(t(Msg::ProblemCsvUnreadable), detail),
        }
    }
}

impl Shown for crate::sync::shop_people::ShopPeopleError {
    fn shown(&self) -> String {
        use crate::sync::shop_people::ShopPeopleError;
        match self {
            // What the server said, in its words.
            ShopPeopleError::Refused(detail) => detail.clone(),
            ShopPeopleError::Network(error) => error.shown(),
        }
    }
}

impl Shown for crate::settings::DeviceNameError {
    fn shown(&self) -> String {
        use crate::settings::DeviceNameError;
        match self {
            DeviceNameError::TooLong => tr(
                Msg::ProblemDeviceNameTooLong,
                &[("max", &crate::settings::MAX_DEVICE_NAME_CHARS.to_string())],
            ),
            DeviceNameError::NotKept => t(Msg::ProblemSettingsNotKept).into(),
        }
    }
}
