//! The parts of the app a sale at the counter never needs, each loaded when first used.
//!
//! The app shell (what a tablet downloads and compiles before the counter starts, issue 11's
//! 500 KB gzip budget) holds the counter and what every page shares. Each function here is a
//! *split point*: in the release app (cargo feature `split`, turned on by `index.html`) it is
//! a `wasm_split_helpers::wasm_split` function (what Leptos's `#[lazy]` is made of, here with
//! its `fallible` option, so a load that fails is an error to show, not a panic), so its code,
//! and whatever only it reaches, moves into a wasm module of its own that is fetched and
//! instantiated on its first call (`tools/finish-build.mjs` runs the wasm-split step and precaches every module in the service worker, so a tablet offline
//! opens every part). A caller gets a view at once: the part itself as soon as its module is
//! there (at once when it is loaded already), nothing while it loads, and a notice with
//! "Reload" if the module cannot be had (offline on a tablet whose service worker never kept
//! it): the rest of the app goes on (a module that failed to load is tried again on the next
//! call). Without the feature (tests, clippy, debug builds) each is a plain call.
//!
//! The parts: the products, bills, sync, people and settings pages; completing a sale (the
//! bill's one transaction: a counter starts, scans and rings up a bill without it); the receipt
//! (printing, ESC/POS, its QR code, WhatsApp, void and refund); the UPI payment's QR code; and
//! the forms before the shop opens (setting the shop up, signing in, also from the lock screen,
//! choosing a PIN). An action's part (completing a sale) gives a boxed future, and a module
//! that cannot be had is the action's own error (`PartNotLoaded`), shown where its other errors
//! are, with nothing saved. [`preload_sale_parts`] loads the modules of completing a sale, the
//! receipt and the UPI code once the counter is up, so the first sale does not wait for them.

use leptos::prelude::*;

use std::future::Future;
use std::pin::Pin;

use crate::actions::sale::{CompleteSaleError, CompletedBill, SaleDraft};
use crate::actions::Approval;
use crate::i18n::{t, Msg};
use crate::sync::SyncDriver;
use crate::ui::counter::Counter;
use crate::ui::sign_in::SignInPurpose;

type Driver = StoredValue<SyncDriver, LocalStorage>;

/// A part's module could not be fetched or instantiated.
#[derive(Debug)]
pub struct PartNotLoaded;

#[cfg(feature = "split")]
impl From<wasm_split_helpers::SplitLoaderError> for PartNotLoaded {
    fn from(_: wasm_split_helpers::SplitLoaderError) -> Self {
        PartNotLoaded
    }
}

type Part = Result<AnyView, PartNotLoaded>;

/// What shows where a part could not be loaded.
fn not_loaded() -> AnyView {
    let reload = |_| {
        if let Some(window) = web_sys::window() {
            let _ = window.location().reload();
        }
    };
    view! {
        <p class="notice error" role="alert" data-testid="part-not-loaded">
            {t(Msg::AppPartNotLoaded)} " "
            <button type="button" on:click=reload>{t(Msg::BootReload)}</button>
        </p>
    }
    .into_any()
}

/// The view a split point's future gives, shown once it is ready.
#[cfg(feature = "split")]
fn when_loaded(load: impl std::future::Future<Output = Part> + 'static) -> impl IntoView {
    // `Suspend` polls the future once at once (a module loaded already shows its part in the
    // same frame) and keeps the reactive owner, so what the part makes is disposed with it.
    // Suspend asks for a `Send` future; wasm has one thread, where this one stays.
    Suspend::new(send_wrapper::SendWrapper::new(async move {
        load.await.unwrap_or_else(|PartNotLoaded| not_loaded())
    }))
}

#[cfg(not(feature = "split"))]
fn when_loaded(part: Part) -> impl IntoView {
    part.unwrap_or_else(|PartNotLoaded| not_loaded())
}

/// `/products`: the catalogue, stock, CSV import and export.
pub fn products_page(driver: Driver) -> impl IntoView {
    when_loaded(products_page_part(driver))
}
#[cfg_attr(
    feature = "split",
    wasm_split_helpers::wasm_split(products_page, fallible)
)]
fn products_page_part(driver: Driver) -> Part {
    Ok(view! { <crate::ui::products::ProductsPage driver=driver/> }.into_any())
}

/// `/bills`: the recent bills, voids and refunds.
pub fn bills_page(driver: Driver) -> impl IntoView {
    when_loaded(bills_page_part(driver))
}
#[cfg_attr(
    feature = "split",
    wasm_split_helpers::wasm_split(bills_page, fallible)
)]
fn bills_page_part(driver: Driver) -> Part {
    Ok(view! { <crate::ui::bills::BillsPage driver=driver/> }.into_any())
}

/// `/sync`: refused changes, the conflict inbox, the sync details.
pub fn sync_page(driver: Driver) -> impl IntoView {
    when_loaded(sync_page_part(driver))
}
#[cfg_attr(feature = "split", wasm_split_helpers::wasm_split(sync_page, fallible))]
fn sync_page_part(driver: Driver) -> Part {
    Ok(view! { <crate::ui::sync_page::SyncPage driver=driver/> }.into_any())
}

/// `/people`: who is signed in here, PINs; the owner's people.
pub fn people_page(driver: Driver) -> impl IntoView {
    when_loaded(people_page_part(driver))
}
#[cfg_attr(
    feature = "split",
    wasm_split_helpers::wasm_split(people_page, fallible)
)]
fn people_page_part(driver: Driver) -> Part {
    Ok(view! { <crate::ui::people_page::PeoplePage driver=driver/> }.into_any())
}

/// `/settings`: the shop's settings and this device's.
pub fn settings_page(driver: Driver) -> impl IntoView {
    when_loaded(settings_page_part(driver))
}
#[cfg_attr(
    feature = "split",
    wasm_split_helpers::wasm_split(settings_page, fallible)
)]
fn settings_page_part(driver: Driver) -> Part {
    Ok(view! { <crate::ui::settings_page::SettingsPage driver=driver/> }.into_any())
}

/// The receipt of `completed` over the counter, with printing, WhatsApp, void and refund.
pub fn receipt(counter: Counter, completed: CompletedBill) -> impl IntoView {
    when_loaded(receipt_part(counter, completed))
}
#[cfg_attr(
    feature = "split",
    wasm_split_helpers::wasm_split(receipt, fallible, preload(preload_receipt))
)]
fn receipt_part(counter: Counter, completed: CompletedBill) -> Part {
    Ok(view! {
        <crate::ui::counter::receipt::ReceiptView counter=counter completed=completed/>
    }
    .into_any())
}

/// The UPI payment's QR code and its confirmation.
pub fn upi_code(counter: Counter) -> impl IntoView {
    when_loaded(upi_code_part(counter))
}
#[cfg_attr(
    feature = "split",
    wasm_split_helpers::wasm_split(upi_code, fallible, preload(preload_upi_code))
)]
fn upi_code_part(counter: Counter) -> Part {
    Ok(view! { <crate::ui::counter::payment::UpiCode counter=counter/> }.into_any())
}

/// "Set up your shop", with the server's setup code.
pub fn set_up_shop(driver: Driver) -> impl IntoView {
    when_loaded(set_up_shop_part(driver))
}
#[cfg_attr(
    feature = "split",
    wasm_split_helpers::wasm_split(set_up_shop, fallible)
)]
fn set_up_shop_part(driver: Driver) -> Part {
    Ok(view! { <crate::ui::sign_in::SetUpShop driver=driver/> }.into_any())
}

/// Email and password ([`crate::ui::sign_in::SignInForm`]), with "Cancel" when `on_cancel`
/// is given.
pub fn sign_in_form(
    driver: Driver,
    purpose: SignInPurpose,
    email: Option<String>,
    on_done: Callback<String>,
    on_cancel: Option<Callback<()>>,
) -> impl IntoView {
    when_loaded(sign_in_form_part(
        driver, purpose, email, on_done, on_cancel,
    ))
}
#[cfg_attr(
    feature = "split",
    wasm_split_helpers::wasm_split(sign_in_form, fallible)
)]
fn sign_in_form_part(
    driver: Driver,
    purpose: SignInPurpose,
    email: Option<String>,
    on_done: Callback<String>,
    on_cancel: Option<Callback<()>>,
) -> Part {
    Ok(view! {
        <crate::ui::sign_in::SignInForm driver=driver purpose=purpose email=email
            on_done=on_done on_cancel=on_cancel/>
    }
    .into_any())
}

/// Choosing the PIN of the person at the counter.
pub fn choose_pin(driver: Driver, on_done: Callback<()>) -> impl IntoView {
    when_loaded(choose_pin_part(driver, on_done))
}
#[cfg_attr(
    feature = "split",
    wasm_split_helpers::wasm_split(choose_pin, fallible)
)]
fn choose_pin_part(driver: Driver, on_done: Callback<()>) -> Part {
    Ok(view! { <crate::ui::sign_in::ChoosePin driver=driver on_done=on_done/> }.into_any())
}

/// A sale completing: what [`complete_sale`]'s module gives.
type SaleCompleting = Pin<Box<dyn Future<Output = Result<CompletedBill, CompleteSaleError>>>>;

/// Completes a sale ([`crate::actions::sale::complete_sale`]: the bill, its stock, payments
/// and unit of work in one transaction). The code is a part of its own, loaded with the
/// receipt's once the counter is up (a counter starts, scans and rings up a bill without it);
/// if it cannot be had, nothing is saved and the cart stays for another try.
pub async fn complete_sale(
    driver: SyncDriver,
    draft: SaleDraft,
    approval: Option<Approval>,
) -> Result<CompletedBill, CompleteSaleError> {
    let completing = complete_sale_part(driver, draft, approval);
    #[cfg(feature = "split")]
    let completing = completing.await;
    completing
        .map_err(|PartNotLoaded| CompleteSaleError::PartNotLoaded)?
        .await
}
#[cfg_attr(
    feature = "split",
    wasm_split_helpers::wasm_split(complete_sale, fallible, preload(preload_complete_sale))
)]
fn complete_sale_part(
    driver: SyncDriver,
    draft: SaleDraft,
    approval: Option<Approval>,
) -> Result<SaleCompleting, PartNotLoaded> {
    Ok(Box::pin(async move {
        crate::actions::sale::complete_sale(&driver, &draft, approval.as_ref()).await
    }))
}

/// Loads the modules of completing a sale, the receipt and the UPI code in the background
/// (the counter calls it once it is up), so that a sale never waits for them. Nothing without
/// the `split` feature; a module that does not load now is tried again when it is needed.
pub fn preload_sale_parts() {
    #[cfg(feature = "split")]
    leptos::task::spawn_local(async {
        let _ = preload_complete_sale().await;
        let _ = preload_receipt().await;
        let _ = preload_upi_code().await;
    });
}
