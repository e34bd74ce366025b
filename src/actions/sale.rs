//! The counter's actions: finding what a scan names, completing a sale (over a customer's
//! credit limit with a manager's approval), opening a bill again (from the server when another
//! tablet sold it),
//! confirming its UPI payment later, creating a customer, saving the shop profile. Each write
//! is ONE transaction through [`crate::storage`] with its outbox unit, handed to the sync
//! driver afterwards; every rule is `counterbook-shop`'s.

use counterbook_shop::actions::{self, ActionContext, Sale};
use counterbook_shop::{
    Bill, BillLine, Customer, Nomenclature, PaymentMethod, PaymentRecord, Product, ScannedCode,
    ShopSettings, Tender,
};

use crate::storage::sales::{device_series, RecordSaleError};
use crate::storage::StorageError;
use crate::sync::driver::FetchError;
use crate::sync::SyncDriver;

/// A bill as the counter has it when the cashier completes it.
#[derive(Clone, Debug, PartialEq)]
pub struct SaleDraft {
    pub lines: Vec<BillLine>,
    pub tenders: Vec<Tender>,
    pub customer_id: Option<String>,
    pub settings: ShopSettings,
    /// The credit goes on the customer's balance past their limit (a manager's override).
    pub override_credit_limit: bool,
}

/// A bill ready for its receipt: the bill, its payment records as they stand now (a UPI
/// payment may be confirmed after the sale), the customer as they stand after it, the profile.
#[derive(Clone, Debug, PartialEq)]
pub struct CompletedBill {
    pub bill: Bill,
    pub payments: Vec<PaymentRecord>,
    pub customer: Option<Customer>,
    pub settings: ShopSettings,
    /// The refunds made of it (on this tablet, or pulled from the server), oldest first; a
    /// refund the server refused is among them, marked so ([`counterbook_shop::Refund::refused`]).
    pub refunds: Vec<counterbook_shop::Refund>,
    /// Why the server refused this tablet's void of the bill, if it did (the void was undone).
    pub refused_void: Option<String>,
}

impl CompletedBill {
    /// The bill as its receipt shows it: with the UPI confirmations made since the sale.
    pub fn shown_bill(&self) -> Bill {
        self.bill.with_payment_confirmations(&self.payments)
    }

    /// The UPI payment still waiting for the cashier's confirmation, if any.
    pub fn unconfirmed_upi(&self) -> Option<&PaymentRecord> {
        self.payments.iter().find(|payment| {
            payment.method == PaymentMethod::Upi && payment.confirmed == Some(false)
        })
    }
}

/// Why a sale did not complete; nothing of it was saved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CompleteSaleError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The shop's rules refuse the sale.
    #[error("The sale cannot be completed: {0}")]
    Refused(actions::SaleError),
    /// Credit past the customer's limit: a manager may override it.
    #[error("The sale cannot be completed: {0}")]
    OverCreditLimit(actions::SaleError),
    #[error("The sale cannot be completed: the customer is not on this tablet.")]
    UnknownCustomer,
    #[error("The sale cannot be completed: the bill series cannot give a number: {0}")]
    Series(counterbook_shop::series::SeriesError),
    /// The sale's unit of work holds no bill (a fault of the shop's rules, never expected).
    #[error("The sale cannot be completed: it made no bill.")]
    NoBill,
    #[error(transparent)]
    NeedsApproval(#[from] super::NeedsApproval),
    /// The app's part that completes a sale could not be loaded (`crate::ui::lazy`); nothing
    /// was tried.
    #[error("The sale cannot be completed: its part of the app could not be loaded.")]
    PartNotLoaded,
}

fn now_millis() -> i64 {
    js_sys::Date::now() as i64
}

/// The local calendar day, `YYYY-MM-DD`, in the browser's time zone.
fn local_day(millis: i64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(millis as f64));
    format!(
        "{:04}-{:02}-{:02}",
        date.get_full_year(),
        date.get_month() + 1,
        date.get_date()
    )
}

/// Whether a scanned code is a receipt's QR code (a bill id).
pub fn looks_like_bill_id(code: &str) -> bool {
    counterbook_shop::receipt::bill_id_from_scan(code).is_some()
}

/// What `code` names: a product by barcode (a price or weight label read by the shop's
/// nomenclature finds its product by the label's zeroed code), or by SKU; with the code as
/// read, for the cart.
pub async fn find_scanned(
    driver: &SyncDriver,
    nomenclature: &Nomenclature,
    code: &str,
) -> Result<Option<(Product, ScannedCode)>, StorageError> {
    let scanned = nomenclature.parse(code);
    let store = driver.store();
    if let Some(product) = store.product_for_code(scanned.lookup_barcode()).await? {
        return Ok(Some((product, scanned)));
    }
    let plain = ScannedCode::Plain {
        code: code.trim().to_owned(),
        symbology: counterbook_shop::barcode::symbology(code.trim()),
    };
    if scanned != plain {
        // A label whose product is not known by its zeroed code may be a product's own code.
        if let Some(product) = store.product_for_code(code.trim()).await? {
            return Ok(Some((product, plain)));
        }
    }
    Ok(None)
}

/// Completes a sale in ONE transaction: the bill with the device's next number, payments,
/// stock decrements and moves, the credit customer's balance, audit, outbox. Then the driver
/// pushes it.
pub async fn complete_sale(
    driver: &SyncDriver,
    draft: &SaleDraft,
    approval: Option<&super::Approval>,
) -> Result<CompletedBill, CompleteSaleError> {
    if draft.override_credit_limit {
        super::check_role(
            driver,
            counterbook_shop::GuardedAction::OverrideCreditLimit,
            approval,
        )?;
    }
    let now = now_millis();
    let day = local_day(now);
    let who = super::at_the_counter(driver);
    let device_id = driver.device_id().to_owned();
    let shop_id = driver.settings().shop_id.clone();
    let series = device_series(&device_id);
    let mut product_ids: Vec<String> = Vec::new();
    for line in &draft.lines {
        if !product_ids.contains(&line.product_id) {
            product_ids.push(line.product_id.clone());
        }
    }
    let recorded = driver
        .store()
        .record_sale(
            &series,
            &product_ids,
            draft.customer_id.as_deref(),
            |number, products, customer| {
                let context = ActionContext {
                    shop_id: &shop_id,
                    device_id: &device_id,
                    device_name: who.device_name.as_deref(),
                    cashier: who.cashier.as_deref(),
                    person_id: who.person_id.as_deref(),
                    now_millis: now,
                };
                let sale = Sale {
                    number,
                    lines: &draft.lines,
                    tenders: &draft.tenders,
                    customer,
                    products,
                    settings: &draft.settings,
                    day: &day,
                };
                let completed = if draft.override_credit_limit {
                    actions::complete_sale_over_credit_limit(
                        &context,
                        &sale,
                        &mut crate::ids::new_id,
                    )
                } else {
                    actions::complete_sale(&context, &sale, &mut crate::ids::new_id)
                };
                completed.map(|completed| super::with_approval(completed.work, approval))
            },
        )
        .await;
    let (_, work) = match recorded {
        Ok(recorded) => recorded,
        Err(RecordSaleError::Storage(error)) => return Err(CompleteSaleError::Storage(error)),
        Err(RecordSaleError::Refused(
            refused @ actions::SaleError::Payment(counterbook_shop::PaymentError::CreditOverLimit {
                ..
            }),
        )) => return Err(CompleteSaleError::OverCreditLimit(refused)),
        Err(RecordSaleError::Refused(refused)) => return Err(CompleteSaleError::Refused(refused)),
        Err(RecordSaleError::UnknownCustomer) => return Err(CompleteSaleError::UnknownCustomer),
        Err(RecordSaleError::Series(error)) => return Err(CompleteSaleError::Series(error)),
    };
    let bill = work.records.iter().find_map(|record| match record {
        counterbook_shop::Record::Bill(bill) => Some(bill.clone()),
        _ => None,
    });
    let customer = work.records.iter().find_map(|record| match record {
        counterbook_shop::Record::Customer(customer) => Some(customer.clone()),
        _ => None,
    });
    let payments = work
        .records
        .iter()
        .filter_map(|record| match record {
            counterbook_shop::Record::Payment(payment) => Some(payment.clone()),
            _ => None,
        })
        .collect();
    driver.unit_saved(work.unit.clone());
    let bill = bill.ok_or(CompleteSaleError::NoBill)?;
    let customer = match (customer, &bill.customer_id) {
        (Some(customer), _) => Some(customer),
        (None, Some(id)) => driver.store().customer(id).await?,
        (None, None) => None,
    };
    Ok(CompletedBill {
        bill,
        payments,
        customer,
        settings: draft.settings.clone(),
        refunds: Vec::new(),
        refused_void: None,
    })
}

/// Why a bill could not be opened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenBillError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Not on this tablet, and the server cannot be asked now.
    #[error("This bill is not on this tablet, and the tablet is offline: it opens here once the tablet is online again.")]
    OfflineAndNotHere,
    #[error("The bill could not be read from the server: {0}")]
    Server(String),
    /// The sync engine's module, which reads and stores the server's documents, could not be
    /// loaded.
    #[error("The sync engine could not be loaded to read the bill")]
    EngineNotLoaded,
}

/// Opens a bill again (its receipt's QR code scanned, or picked on the bills page): the bill,
/// its customer as they stand now, the shop profile. A bill another tablet sold is not kept on
/// this one: it is read from the server when online (and its server version kept, so that a
/// void of it starts from that version), and `OfflineAndNotHere` says so when offline.
/// `Ok(None)`: no such bill here or on the server.
pub async fn open_bill(
    driver: &SyncDriver,
    code: &str,
) -> Result<Option<CompletedBill>, OpenBillError> {
    let Some(id) = counterbook_shop::receipt::bill_id_from_scan(code) else {
        return Ok(None);
    };
    let store = driver.store();
    let bill = match store.bill(&id).await? {
        Some(bill) => bill,
        None => {
            let path = format!(
                "shops/{}/{}/{id}",
                driver.settings().shop_id,
                counterbook_shop::records::BILLS_COLLECTION
            );
            match driver.read_server_bill(&path).await {
                Ok(Some(bill)) => bill,
                Ok(None) => return Ok(None),
                Err(FetchError::Offline) => return Err(OpenBillError::OfflineAndNotHere),
                Err(FetchError::Server(problem)) => return Err(OpenBillError::Server(problem)),
                Err(FetchError::EngineNotLoaded) => return Err(OpenBillError::EngineNotLoaded),
                Err(FetchError::Storage(error)) => return Err(error.into()),
            }
        }
    };
    let customer = match &bill.customer_id {
        Some(id) => store.customer(id).await?,
        None => None,
    };
    let settings = store.shop_settings().await?.unwrap_or_default();
    let payments = store.payments_of_bill(&bill.id).await?;
    let refunds = store.refunds_of_bill(&bill.id).await?;
    let refused_void = store.refused_void(&bill.id).await?;
    Ok(Some(CompletedBill {
        bill,
        payments,
        customer,
        settings,
        refunds,
        refused_void,
    }))
}

/// Why a UPI payment was not confirmed; nothing was saved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfirmUpiError {
    #[error("The UPI payment cannot be confirmed: {0}.")]
    Refused(actions::ConfirmError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The cashier saw a bill's UPI payment arrive after the sale: its payment record becomes
/// confirmed (one unit of work). Returns the bill with its payments as they now stand.
pub async fn confirm_upi_payment(
    driver: &SyncDriver,
    completed: &CompletedBill,
) -> Result<CompletedBill, ConfirmUpiError> {
    let Some(payment) = completed.unconfirmed_upi() else {
        return Ok(completed.clone());
    };
    let work = super::with_context(driver, |context| {
        actions::confirm_upi_payment(context, payment, &mut crate::ids::new_id)
    })
    .map_err(ConfirmUpiError::Refused)?;
    driver.store().commit_work(&work).await?;
    driver.unit_saved(work.unit.clone());
    let mut confirmed = completed.clone();
    for record in &work.records {
        if let counterbook_shop::Record::Payment(updated) = record {
            if let Some(shown) = confirmed.payments.iter_mut().find(|p| p.id == updated.id) {
                *shown = updated.clone();
            }
        }
    }
    Ok(confirmed)
}

/// Adds a product from the counter, for a code no product has (its barcode), and returns it
/// for the cart. The same action as the products page's, so the same checks, and the same
/// role: adding a product is a manager's (a cashier's needs `approval`, as the server and
/// `firestore.rules` refuse a cashier's token creating a product).
pub async fn add_product_for_code(
    driver: &SyncDriver,
    product: Product,
    approval: Option<&super::Approval>,
) -> Result<Product, super::products::ProductActionError> {
    super::products::add_product(driver, product, approval).await
}

/// Why a customer was not created; nothing of it was saved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CreateCustomerError {
    #[error(transparent)]
    NeedsApproval(#[from] super::NeedsApproval),
    /// The customer as typed is not valid.
    #[error("{0}")]
    Refused(counterbook_shop::customer::CustomerError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Creates a customer at the counter (one unit of work). A credit limit is a manager's to
/// set (the server and `firestore.rules` refuse a cashier's customer created with one), so a
/// cashier's customer with a limit needs `approval`.
pub async fn create_customer(
    driver: &SyncDriver,
    customer: &Customer,
    approval: Option<&super::Approval>,
) -> Result<(), CreateCustomerError> {
    if customer.credit_limit_minor.is_some() {
        super::check_role(
            driver,
            counterbook_shop::GuardedAction::OverrideCreditLimit,
            approval,
        )?;
    }
    let work = super::with_context(driver, |context| {
        actions::create_customer(context, customer, &mut crate::ids::new_id)
    })
    .map_err(CreateCustomerError::Refused)?;
    let work = super::with_approval(work, approval);
    driver.store().commit_work(&work).await?;
    driver.unit_saved(work.unit);
    Ok(())
}

/// Why the shop profile was not saved; nothing of it was.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShopProfileError {
    #[error("The shop profile cannot be saved: {0}.")]
    Invalid(#[from] counterbook_shop::settings::SettingsError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Saves the shop profile: kept on the tablet and pushed as the shop's `settings/profile`
/// document (one unit of work, checked against the server's last known version).
pub async fn save_shop_profile(
    driver: &SyncDriver,
    before: &ShopSettings,
    after: &ShopSettings,
) -> Result<(), ShopProfileError> {
    let path = ShopSettings::document_path(&driver.settings().shop_id);
    let base = driver.base_of(&path).await?;
    let work = super::with_context(driver, |context| {
        actions::save_settings(context, Some(before), after, base, &mut crate::ids::new_id)
    })?;
    driver.store().save_shop_settings(after, &work).await?;
    driver.unit_saved(work.unit);
    Ok(())
}

/// Saves the first shop profile of a shop just set up (its name and currency as "Set up your
/// shop" asked them), as the owner who set it up. When the tablet was opened for another shop
/// id, the unit is only stored: the app starts again on the new shop and pushes it from there
/// (this driver's engine is for the old shop's paths).
pub async fn save_first_shop_profile(
    driver: &SyncDriver,
    shop_id: &str,
    profile: &ShopSettings,
) -> Result<(), ShopProfileError> {
    let who = super::at_the_counter(driver);
    let context = ActionContext {
        shop_id,
        device_id: driver.device_id(),
        device_name: who.device_name.as_deref(),
        cashier: who.cashier.as_deref(),
        person_id: who.person_id.as_deref(),
        now_millis: now_millis(),
    };
    let work = actions::save_settings(&context, None, profile, None, &mut crate::ids::new_id)?;
    driver.store().save_shop_settings(profile, &work).await?;
    if shop_id == driver.settings().shop_id {
        driver.unit_saved(work.unit);
    }
    Ok(())
}
