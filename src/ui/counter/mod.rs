//! The counter page (`/counter`, the start page): where a sale is rung up by scanner in a few
//! seconds, on or offline. Scan or search, the cart with its totals, the customer, payment by
//! cash, card, UPI, credit or a split, Complete sale, and the receipt.
//!
//! Everything here reads through indexed queries (a scan is one index get, a search an index
//! range with a limit), never the whole catalogue, and every money or barcode rule is
//! `counterbook-shop`'s. Completing a sale is ONE IndexedDB transaction
//! ([`crate::actions::sale`]). Every action has a key, shown on its button.
//!
//! Modules: [`scanner`] (the keyboard-wedge scanner on the whole page), `lookahead` (a scan
//! looked up before its Enter), `cart` (lines, totals),
//! `payment` (tenders and Complete sale), `customer`, `receipt` (shown, printed, sent),
//! `new_product` (an unknown code added as a product from the counter).

mod cart;
mod customer;
mod lookahead;
mod new_product;
pub(crate) mod payment;
mod profile;
pub(crate) mod receipt;
pub mod scanner;
mod search;

use crate::i18n::{t, tn, tr, Msg};
use crate::ui::problems::ProblemText;
use counterbook_shop::cart::Cart;
use counterbook_shop::{
    Customer, GuardedAction, PaymentMethod, Product, ScannedCode, ShopSettings,
};
use futures::future::{FutureExt, LocalBoxFuture, Shared};
use leptos::prelude::*;
use leptos::task::spawn_local;
use web_sys::KeyboardEvent;

use crate::actions::sale::{self as sale_action, CompletedBill, SaleDraft};
use crate::storage::sales::ParkedBill;
use crate::sync::change_log::ChangesSince;
use crate::sync::SyncDriver;
use crate::ui::problems::Shown;
use crate::ui::sign_in::ManagerApproval;

/// Search results shown at once.
pub(crate) const SEARCH_LIMIT: u32 = 8;

/// A message for the cashier above the cart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    Info(String),
    Error(String),
    /// A scanned code no product has.
    UnknownCode(String),
}

/// One part of the payment as the cashier is entering it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenderDraft {
    pub method: PaymentMethod,
    /// The amount as typed (for cash: the amount received; empty means exact).
    pub amount_text: String,
    /// UPI only: the cashier saw it arrive.
    pub confirmed: bool,
}

/// What a scanned code found: the product and how the code reads, nothing, or why the
/// lookup failed.
type ScanAnswer = Result<Option<(Product, ScannedCode)>, String>;

/// A scan's lookup started before its Enter, which the Enter can wait on or read.
type ScanLookup = Shared<LocalBoxFuture<'static, ScanAnswer>>;

/// The counter's state: signals shared by its parts (all `Copy`).
#[derive(Clone, Copy)]
pub struct Counter {
    pub driver: StoredValue<SyncDriver, LocalStorage>,
    pub settings: RwSignal<ShopSettings>,
    pub lines: RwSignal<Cart>,
    pub selected: RwSignal<Option<usize>>,
    pub customer: RwSignal<Option<Customer>>,
    pub tenders: RwSignal<Vec<TenderDraft>>,
    pub paying: RwSignal<bool>,
    pub receipt: RwSignal<Option<CompletedBill>>,
    pub notice: RwSignal<Option<Notice>>,
    pub busy: RwSignal<bool>,
    /// The form adding an unknown code as a product is open.
    pub adding_product: RwSignal<bool>,
    /// A sale over the customer's credit limit waits for a manager's PIN.
    pub awaiting_credit_override: RwSignal<bool>,
    /// A UPI confirmation on the receipt is on its way, or what stopped it.
    pub confirming_upi: RwSignal<bool>,
    pub receipt_problem: RwSignal<Option<String>>,
    pub parked: RwSignal<Vec<ParkedBill>>,
    pub query: RwSignal<String>,
    pub results: RwSignal<Vec<Product>>,
    pub highlighted: RwSignal<Option<usize>>,
    pub scan_input: NodeRef<leptos::html::Input>,
    pub received_input: NodeRef<leptos::html::Input>,
    /// The scan being typed, looked up before its Enter.
    lookahead: StoredValue<lookahead::ScanLookahead<ScanLookup>, LocalStorage>,
    /// Scans whose lookups run (their lines are added in the order scanned).
    scans_in_flight: StoredValue<u32, LocalStorage>,
    /// The cart's totals and how the tenders settle them, each made once for the page.
    totals: Memo<Result<counterbook_shop::BillTotals, counterbook_shop::BillError>>,
    settlement: Memo<Result<counterbook_shop::Settlement, payment::PaymentProblem>>,
}

impl Counter {
    pub fn exponent(&self) -> u32 {
        self.settings.with_untracked(|s| s.minor_unit_exponent)
    }

    pub fn currency(&self) -> String {
        self.settings.with_untracked(|s| s.currency.clone())
    }

    pub fn focus_scan_field(&self) {
        if let Some(input) = self.scan_input.get_untracked() {
            let _ = input.focus();
        }
    }

    /// Adds what a scan or a pick found. A repeat scan adds to its line's quantity; a price
    /// or weight label gets its own line (the shop's cart rules).
    pub fn add_to_cart(&self, product: &Product, scanned: &ScannedCode) {
        let settings = self.settings.get_untracked();
        let mut added = Ok(0);
        self.lines
            .update(|cart| added = cart.add_scanned(product, scanned, &settings));
        match added {
            Ok(index) => {
                self.selected.set(Some(index));
                self.clear_notice();
            }
            Err(problem) => self.notice.set(Some(Notice::Error(problem.shown()))),
        }
    }

    /// Adds one piece (or one whole unit) of a product picked from the search results.
    pub fn add_picked(&self, product: &Product) {
        let mut added = Ok(0);
        self.lines
            .update(|cart| added = cart.add_product(product, product.unit.quantity_scale()));
        match added {
            Ok(index) => {
                self.selected.set(Some(index));
                self.clear_notice();
            }
            Err(problem) => self.notice.set(Some(Notice::Error(problem.shown()))),
        }
    }

    /// Takes the notice away, if there is one (a scan with none shown repaints nothing there).
    fn clear_notice(&self) {
        if self.notice.with_untracked(Option::is_some) {
            self.notice.set(None);
        }
    }

    fn changes_seen(&self) -> u64 {
        self.driver.with_value(|d| d.changes().version_untracked())
    }

    /// The scanner has typed `code` so far (its Enter has not come): look it up now if it is
    /// as long as a barcode, so that the Enter finds the answer ready (see [`lookahead`]).
    pub fn scanning(&self, code: String) {
        if sale_action::looks_like_bill_id(&code) {
            return;
        }
        let changes_seen = self.changes_seen();
        let this = *self;
        let begin = || {
            let code = code.clone();
            async move { this.find(&code).await }.boxed_local().shared()
        };
        let started = self
            .lookahead
            .try_update_value(|lookahead| lookahead.start(&code, changes_seen, begin))
            .flatten();
        if let Some(lookup) = started {
            spawn_local(lookup.map(|_| ()));
        }
    }

    async fn find(&self, code: &str) -> ScanAnswer {
        let driver = self.driver.get_value();
        let nomenclature = self
            .settings
            .with_untracked(|s| s.barcode_nomenclature.clone());
        sale_action::find_scanned(&driver, &nomenclature, code)
            .await
            .map_err(|error| error.shown())
    }

    /// A scanned code: a bill's QR opens the bill; otherwise the product by barcode (a price
    /// or weight label read by the shop's nomenclature), then by SKU. Looked up before the
    /// Enter (and nothing stored since), it goes on the bill at once, or as soon as that
    /// lookup answers.
    pub fn scanned(&self, code: String) {
        let changes_now = self.changes_seen();
        let looked_up = self
            .lookahead
            .try_update_value(|lookahead| lookahead.take(&code, changes_now))
            .flatten();
        // A scan still being looked up goes on the bill first.
        let earlier_scans_pending = self.scans_in_flight.get_value() > 0;
        if let Some(answer) = looked_up.as_ref().and_then(|lookup| lookup.peek()) {
            if !earlier_scans_pending {
                return self.show_scanned(code, answer.clone());
            }
        }
        let this = *self;
        this.scans_in_flight.update_value(|n| *n += 1);
        spawn_local(async move {
            if let Some(lookup) = looked_up {
                let answer = lookup.await;
                this.show_scanned(code, answer);
            } else if sale_action::looks_like_bill_id(&code) {
                let driver = this.driver.get_value();
                match sale_action::open_bill(&driver, &code.to_lowercase()).await {
                    Ok(Some(bill)) => this.receipt.set(Some(bill)),
                    Ok(None) => this.notice.set(Some(Notice::Error(tr(
                        Msg::CounterNoSuchBill,
                        &[("code", &code)],
                    )))),
                    Err(error) => this.notice.set(Some(Notice::Error(error.shown()))),
                }
            } else {
                let answer = this.find(&code).await;
                this.show_scanned(code, answer);
            }
            this.scans_in_flight.try_update_value(|n| *n -= 1);
        });
    }

    fn show_scanned(&self, code: String, answer: ScanAnswer) {
        match answer {
            Ok(Some((product, scanned))) => self.add_to_cart(&product, &scanned),
            Ok(None) => self.notice.set(Some(Notice::UnknownCode(code))),
            Err(error) => self.notice.set(Some(Notice::Error(error))),
        }
    }

    /// The cashier saw the shown bill's UPI payment arrive: its payment record is confirmed
    /// (one unit of work) and the receipt shows it so.
    pub fn confirm_receipt_upi(&self) {
        let Some(completed) = self.receipt.get_untracked() else {
            return;
        };
        if completed.unconfirmed_upi().is_none() || self.confirming_upi.get_untracked() {
            return;
        }
        let this = *self;
        this.confirming_upi.set(true);
        spawn_local(async move {
            let driver = this.driver.get_value();
            match sale_action::confirm_upi_payment(&driver, &completed).await {
                Ok(confirmed) => {
                    this.receipt_problem.set(None);
                    this.receipt.set(Some(confirmed));
                }
                Err(problem) => this.receipt_problem.set(Some(problem.shown())),
            }
            this.confirming_upi.set(false);
        });
    }

    /// Starts again: an empty cart, no customer, no payment.
    pub fn clear(&self) {
        self.lines.set(Cart::default());
        self.selected.set(None);
        self.customer.set(None);
        self.tenders.set(Vec::new());
        self.paying.set(false);
        self.notice.set(None);
        self.query.set(String::new());
        self.results.set(Vec::new());
    }

    /// Opens the payment, with cash ready for the amount received.
    pub fn pay(&self) {
        if self.lines.with_untracked(Cart::is_empty) {
            self.notice
                .set(Some(Notice::Info(t(Msg::CounterScanFirst).into())));
            return;
        }
        self.paying.set(true);
        if self.tenders.with_untracked(Vec::is_empty) {
            self.add_tender(PaymentMethod::Cash);
        }
        let input = self.received_input;
        request_animation_frame(move || {
            if let Some(input) = input.get_untracked() {
                let _ = input.focus();
            }
        });
    }

    /// Adds a part of the payment (or finds the one there is) for `method`. A new part other
    /// than cash takes what is still to pay.
    pub fn add_tender(&self, method: PaymentMethod) {
        self.paying.set(true);
        if self
            .tenders
            .with_untracked(|tenders| tenders.iter().any(|t| t.method == method))
        {
            return;
        }
        let amount_text = if method == PaymentMethod::Cash {
            String::new()
        } else {
            let remaining = payment::remaining_for_new_tender(self);
            counterbook_shop::money::format_decimal(remaining.max(0), self.exponent())
        };
        self.tenders.update(|tenders| {
            tenders.push(TenderDraft {
                method,
                amount_text,
                confirmed: false,
            })
        });
    }

    /// Completes the sale: one transaction, then the receipt.
    pub fn complete(&self) {
        self.complete_with(false, None);
    }

    /// Completes the sale with the customer's credit past their limit: a manager's override,
    /// so a cashier's asks for a manager's PIN first (`approval`, once given).
    pub fn override_credit_limit(&self, approval: Option<crate::actions::Approval>) {
        self.complete_with(true, approval);
    }

    fn complete_with(
        &self,
        override_credit_limit: bool,
        approval: Option<crate::actions::Approval>,
    ) {
        if self.busy.get_untracked() || self.lines.with_untracked(Cart::is_empty) {
            return;
        }
        let draft = SaleDraft {
            lines: self.lines.with_untracked(Cart::bill_lines),
            tenders: match payment::tenders(self) {
                Ok(tenders) => tenders,
                Err(problem) => {
                    self.notice.set(Some(Notice::Error(problem)));
                    return;
                }
            },
            customer_id: self
                .customer
                .with_untracked(|c| c.as_ref().map(|c| c.id.clone())),
            settings: self.settings.get_untracked(),
            override_credit_limit,
        };
        let this = *self;
        this.busy.set(true);
        spawn_local(async move {
            let driver = this.driver.get_value();
            match crate::ui::lazy::complete_sale(driver, draft, approval).await {
                Ok(completed) => {
                    this.clear();
                    this.receipt.set(Some(completed));
                }
                // Nothing was written: a manager's PIN first.
                Err(sale_action::CompleteSaleError::NeedsApproval(_)) => {
                    this.awaiting_credit_override.set(true)
                }
                // Nothing was saved (one transaction): the cart stays for another try.
                Err(problem) => this.notice.set(Some(Notice::Error(
                    crate::ui::problems::complete_sale_problem(&problem, &this.currency()),
                ))),
            }
            this.busy.set(false);
        });
    }

    /// Puts the bill aside (it survives a reload) and starts a new one.
    pub fn park(&self) {
        if self.lines.with_untracked(Cart::is_empty) {
            return;
        }
        let parked = ParkedBill {
            id: crate::ids::new_id(),
            parked_at_millis: js_sys::Date::now() as i64,
            cart: self.lines.get_untracked(),
            customer: self.customer.get_untracked(),
        };
        let this = *self;
        spawn_local(async move {
            let driver = this.driver.get_value();
            match driver.store().park_bill(&parked).await {
                Ok(()) => {
                    this.clear();
                    this.notice
                        .set(Some(Notice::Info(t(Msg::CounterParked).into())));
                    this.refresh_parked().await;
                }
                Err(error) => this.notice.set(Some(Notice::Error(error.shown()))),
            }
        });
    }

    /// Brings a parked bill back (the current one, if any, is parked in its place).
    pub fn resume(&self, id: String) {
        let this = *self;
        spawn_local(async move {
            let Some(parked) = this
                .parked
                .with_untracked(|all| all.iter().find(|p| p.id == id).cloned())
            else {
                return;
            };
            let driver = this.driver.get_value();
            if !this.lines.with_untracked(Cart::is_empty) {
                let current = ParkedBill {
                    id: crate::ids::new_id(),
                    parked_at_millis: js_sys::Date::now() as i64,
                    cart: this.lines.get_untracked(),
                    customer: this.customer.get_untracked(),
                };
                if let Err(error) = driver.store().park_bill(&current).await {
                    this.notice.set(Some(Notice::Error(error.shown())));
                    return;
                }
            }
            match driver.store().unpark_bill(&id).await {
                Ok(()) => {
                    this.clear();
                    this.lines.set(parked.cart);
                    this.customer.set(parked.customer);
                    this.refresh_parked().await;
                }
                Err(error) => this.notice.set(Some(Notice::Error(error.shown()))),
            }
        });
    }

    /// Reads the shop profile as this tablet has it (saved here or pulled). Until there is one,
    /// the currency comes with the tablet's settings.
    pub async fn load_shop_settings(&self) {
        let driver = self.driver.get_value();
        let settings = match driver.store().shop_settings().await {
            Ok(Some(settings)) => settings,
            Ok(None) => {
                let currency = driver.settings().currency.clone();
                ShopSettings {
                    minor_unit_exponent: crate::money::minor_digits(&currency),
                    currency,
                    ..ShopSettings::default()
                }
            }
            Err(error) => {
                self.notice.set(Some(Notice::Error(error.shown())));
                return;
            }
        };
        crate::i18n::set_shop_locale(settings.locale.as_deref());
        self.settings.set(settings);
    }

    pub async fn refresh_parked(&self) {
        let driver = self.driver.get_value();
        match driver.store().parked_bills().await {
            Ok(parked) => self.parked.set(parked),
            Err(error) => self.notice.set(Some(Notice::Error(error.shown()))),
        }
    }

    /// The page's keys. Returns whether the key was used.
    fn key(&self, event: &KeyboardEvent) -> bool {
        if self.receipt.with_untracked(Option::is_some) {
            return match event.key().as_str() {
                "Escape" | "F9" => {
                    self.receipt.set(None);
                    self.focus_scan_field();
                    true
                }
                "F10" => {
                    receipt::print_now();
                    true
                }
                "F8" => {
                    self.confirm_receipt_upi();
                    true
                }
                _ => false,
            };
        }
        let in_field = active_element_is_field();
        // A key on the digit row is a scan's first digit as often as a shortcut: on AZERTY "-"
        // is the 6 key, and a scan of 6901234567892 must not take one off the selected line
        // before the scanner is recognised (its first key reaches the page). The numpad's and
        // the screen's + and − still work.
        let digit_row = event.code().starts_with("Digit");
        match event.key().as_str() {
            "F2" => self.pay(),
            "F4" => self.park(),
            "F9" => {
                if self.paying.get_untracked() {
                    self.complete()
                } else {
                    self.pay()
                }
            }
            "Escape" => {
                if self.paying.get_untracked() {
                    self.paying.set(false);
                    self.focus_scan_field();
                } else {
                    self.clear();
                    self.focus_scan_field();
                }
            }
            "F3" => self.focus_scan_field(),
            // F8 does what the notice offers (F7 is the browser's caret browsing).
            "F8" if self
                .notice
                .with_untracked(|n| matches!(n, Some(Notice::UnknownCode(_)))) =>
            {
                self.adding_product.set(true)
            }
            "Delete" if !in_field => cart::remove_selected(self),
            "+" if !in_field && !digit_row => cart::change_selected_quantity(self, 1),
            "-" if !in_field && !digit_row => cart::change_selected_quantity(self, -1),
            _ => return false,
        }
        true
    }
}

fn active_element_is_field() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.active_element())
        .is_some_and(|e| matches!(e.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"))
}

/// The counter page.
#[component]
pub fn CounterPage(driver: StoredValue<SyncDriver, LocalStorage>) -> impl IntoView {
    // The counter sells products: the listener keeps them current while it is open.
    driver.with_value(|d| d.show_collection(Some("products")));
    // A sale ends on its receipt: its module (and the UPI code's) loads while the cashier scans.
    crate::ui::lazy::preload_sale_parts();
    let settings = RwSignal::new(ShopSettings::default());
    let lines = RwSignal::new(Cart::default());
    let customer = RwSignal::new(None);
    let tenders = RwSignal::new(Vec::new());
    let totals = payment::totals_memo(lines, settings);
    let counter = Counter {
        driver,
        settings,
        lines,
        selected: RwSignal::new(None),
        customer,
        tenders,
        paying: RwSignal::new(false),
        receipt: RwSignal::new(None),
        notice: RwSignal::new(None),
        busy: RwSignal::new(false),
        adding_product: RwSignal::new(false),
        awaiting_credit_override: RwSignal::new(false),
        confirming_upi: RwSignal::new(false),
        receipt_problem: RwSignal::new(None),
        parked: RwSignal::new(Vec::new()),
        query: RwSignal::new(String::new()),
        results: RwSignal::new(Vec::new()),
        highlighted: RwSignal::new(None),
        scan_input: NodeRef::new(),
        received_input: NodeRef::new(),
        lookahead: StoredValue::new_local(lookahead::ScanLookahead::default()),
        scans_in_flight: StoredValue::new_local(0),
        totals,
        settlement: payment::settlement_memo(settings, tenders, customer, totals),
    };
    spawn_local(async move {
        counter.load_shop_settings().await;
        counter.refresh_parked().await;
    });
    // The bill on the receipt, read again when it or a refund changes here (a void or refund
    // the server refused and this tablet undid, a refund from another tablet).
    crate::ui::bills::follow_opened_bill(driver, counter.receipt, move |problem| {
        counter.receipt_problem.set(Some(problem))
    });
    // The profile saved on another tablet arrives by pull or listen: the receipt follows it.
    driver.with_value(|d| d.changes()).watch(move |since| {
        let profile_changed = match since {
            ChangesSince::Nothing => false,
            ChangesSince::Documents(changed) => {
                changed.touches(counterbook_shop::settings::SETTINGS_COLLECTION)
            }
            ChangesSince::Everything => true,
        };
        if profile_changed {
            spawn_local(async move { counter.load_shop_settings().await });
        }
    });

    let listener = scanner::listen(scanner::ScannerHandlers {
        on_scan: Box::new(move |code| counter.scanned(code)),
        on_code_so_far: Box::new(move |code| counter.scanning(code)),
        on_stray_text: Box::new(move |text| {
            counter.query.update(|query| query.push_str(&text));
            counter.focus_scan_field();
            search::search(counter);
        }),
        on_key: Box::new(move |event| counter.key(event)),
    });
    let listener = StoredValue::new_local(listener);
    on_cleanup(move || {
        // Dropping the listener removes it from the window.
        listener.update_value(|listener| {
            listener.take();
        });
    });
    request_animation_frame(move || counter.focus_scan_field());

    let camera = crate::devices::camera::barcode_detector_available();
    view! {
        <section class="counter" data-testid="counter-page">
            <div class="counter-main">
                <search::SearchBox counter=counter camera=camera/>
                <NoticeLine counter=counter/>
                <cart::CartView counter=counter/>
            </div>
            <aside class="counter-side">
                <customer::CustomerPanel counter=counter/>
                <cart::Totals counter=counter/>
                <payment::PaymentPanel counter=counter/>
                <Keys counter=counter/>
                <ParkedBills counter=counter/>
                <profile::ShopProfile counter=counter/>
            </aside>
            <receipt::ReceiptOverlay counter=counter/>
            <Show when=move || counter.awaiting_credit_override.get()>
                <ManagerApproval driver=driver action=GuardedAction::OverrideCreditLimit
                    on_approved=move |approval: crate::actions::Approval| {
                        counter.awaiting_credit_override.set(false);
                        counter.override_credit_limit(Some(approval));
                    }
                    on_cancel=move |_| counter.awaiting_credit_override.set(false)/>
            </Show>
        </section>
    }
}

#[component]
fn NoticeLine(counter: Counter) -> impl IntoView {
    move || {
        counter.notice.get().map(|notice| match notice {
            Notice::Info(text) => {
                view! { <p class="counter-notice" role="status" data-testid="counter-notice">{text}</p> }
                    .into_any()
            }
            Notice::Error(text) => view! {
                <p class="counter-notice error" role="alert" data-testid="counter-error"><ProblemText text=text/></p>
            }
            .into_any(),
            Notice::UnknownCode(code) => {
                view! { <new_product::UnknownCode counter=counter code=code/> }.into_any()
            }
        })
    }
}

/// The keys, shown on screen.
#[component]
fn Keys(counter: Counter) -> impl IntoView {
    view! {
        <div class="counter-actions">
            <button type="button" data-testid="pay" aria-label=t(Msg::CounterPay) on:click=move |_| counter.pay()>
                {t(Msg::CounterPay)} <kbd>"F2"</kbd>
            </button>
            <button type="button" class="secondary" data-testid="park" aria-label=t(Msg::CounterPark) on:click=move |_| counter.park()>
                {t(Msg::CounterPark)} <kbd>"F4"</kbd>
            </button>
            <button type="button" class="secondary" data-testid="clear" aria-label=t(Msg::CounterClear) on:click=move |_| counter.clear()>
                {t(Msg::CounterClear)} <kbd>{t(Msg::KeyEscape)}</kbd>
            </button>
            <p class="key-help">
                <kbd>"F3"</kbd> " " {t(Msg::CounterKeyScanField)} " · " <kbd>"+"</kbd> <kbd>"−"</kbd>
                " " {t(Msg::CounterKeyQuantity)} " · " <kbd>{t(Msg::KeyDelete)}</kbd> " " {t(Msg::CounterKeyRemoveLine)}
                " · " <kbd>"F9"</kbd> " " {t(Msg::CounterKeyCompleteSale)}
            </p>
        </div>
    }
}

#[component]
fn ParkedBills(counter: Counter) -> impl IntoView {
    let currency = move || counter.settings.with(|s| s.currency.clone());
    view! {
        <Show when=move || counter.parked.with(|p| !p.is_empty())>
            <section class="parked" data-testid="parked-bills">
                <h3>{t(Msg::CounterParkedBills)}</h3>
                <ul>
                    <For each=move || counter.parked.get() key=|bill| bill.id.clone()
                        children=move |bill| {
                            let id = bill.id.clone();
                            let items = bill.cart.lines.len();
                            let total = bill
                                .cart
                                .totals(counter.settings.with_untracked(|s| s.tax_mode))
                            .map(|t| t.total_minor)
                            .unwrap_or(0);
                            let who = bill.customer.as_ref().map(|c| c.name.clone());
                            view! {
                                <li data-testid="parked-bill">
                                    <span>{tn(Msg::CounterLines, items, &[])}
                                        {who.map(|w| format!(" · {w}"))}</span>
                                    <span class="amount">{move || crate::money::format_price(total, &currency())}</span>
                                    <button type="button" class="secondary" data-testid="resume-bill"
                                        on:click=move |_| counter.resume(id.clone())>{t(Msg::CounterResume)}</button>
                                </li>
                            }
                        }/>
                </ul>
            </section>
        </Show>
    }
}
