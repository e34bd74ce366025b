//! Problems as people read them: each error a screen shows, variant by variant, as a message
//! of the catalogue in the tablet's language ([`Shown`]). An error's `Display` (thiserror) is
//! English for logs and the console; what is not mapped here shows its `Display`.

use crate::i18n::{t, tn, tr, Msg};
use crate::money::PriceError;
use crate::people::PinError;
use crate::storage::StorageError;
use crate::sync::identity::SignInError;
use crate::sync::session::{SessionError, SetupError, SetupField};

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
            SignInError::Network(detail) => tr(Msg::ProblemNetwork, &[("detail", detail)]),
            SignInError::Refused(detail) => tr(Msg::ProblemRefused, &[("detail", detail)]),
            SignInError::MalformedReply(detail) => {
                tr(Msg::ProblemMalformedReply, &[("detail", detail)])
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
                .unwrap_or_else(|| tr(Msg::ProblemRefused, &[("detail", detail)])),
            // A refusal the app has no words for: the server's own, said to be its.
            SetupError::Invalid(detail) => tr(Msg::ProblemRefused, &[("detail", detail)]),
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
            PinError::NoWebCrypto(detail) => tr(Msg::ProblemNoWebCrypto, &[("detail", detail)]),
        }
    }
}

impl Shown for StorageError {
    fn shown(&self) -> String {
        match self {
            StorageError::Open(detail) => tr(Msg::ProblemStorageOpen, &[("detail", detail)]),
            StorageError::QuotaExceeded => t(Msg::ProblemStorageFull).into(),
            StorageError::Transaction(detail) => {
                tr(Msg::ProblemStorageTransaction, &[("detail", detail)])
            }
            StorageError::Corrupt(detail) => tr(Msg::ProblemStorageCorrupt, &[("detail", detail)]),
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
            ProductActionError::Product(error) => {
                tr(Msg::ProblemCheckProduct, &[("problem", &error.shown())])
            }
            ProductActionError::Stock(error) => {
                tr(Msg::ProblemCheckStock, &[("problem", &error.shown())])
            }
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
            // Already in words: the quantity's own problem as the cart read it.
            CartError::Quantity(problem) => problem.clone(),
            CartError::WeightForPieces { name } => {
                tr(Msg::ProblemWeightForPieces, &[("name", name)])
            }
            CartError::NoPriceForLabel { name } => {
                tr(Msg::ProblemNoPriceForLabel, &[("name", name)])
            }
            CartError::LabelPrice => t(Msg::ProblemLabelPrice).into(),
            CartError::Discount(problem) => tr(Msg::ProblemDiscount, &[("problem", problem)]),
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
            CsvFileError::Unreadable(detail) => {
                tr(Msg::ProblemCsvUnreadable, &[("detail", detail)])
            }
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
