//! The settings page (`/settings`), one page in two parts: the shop's settings, which sync to
//! every tablet (`counterbook-shop`'s `ShopSettings`, the `settings/profile` document, saved
//! as one unit of work; only the owner's token may write it), and this device's settings,
//! which stay on it (the backend and how it signs in, real time, battery saver, when it
//! locks, the tablet's name on receipts, the receipt paper; its bill series is shown). Device settings take effect when the app starts again, which saving does.
//!
//! Every visible string is in [`text`].

use counterbook_shop::{GuardedAction, ShopSettings, TaxMode};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::settings::{save_device_setting, Backend};
use crate::sync::SyncDriver;

/// The words of the settings page.
pub mod text {
    pub const SHOP_TITLE: &str = "Shop settings";
    pub const SHOP_HELP: &str = "Every tablet of the shop uses these.";
    pub const SHOP_NAME: &str = "Shop name";
    pub const ADDRESS: &str = "Address";
    pub const PHONE: &str = "Phone";
    pub const TAX_ID: &str = "Tax id (GSTIN)";
    pub const CURRENCY: &str = "Currency";
    pub const PRICES_INCLUDE_TAX: &str = "Prices include tax";
    pub const CASH_ROUNDING: &str = "Cash rounding (minor units)";
    pub const UPI_ID: &str = "UPI id";
    pub const RECEIPT_FOOTER: &str = "Receipt footer";
    pub const SAVE_SHOP: &str = "Save shop settings";
    pub const OWNER_ONLY: &str = "Only the owner changes the shop's settings.";
    pub const DEVICE_TITLE: &str = "This device";
    pub const DEVICE_HELP: &str = "These stay on this tablet. Saving starts the app again.";
    pub const BACKEND: &str = "Backend";
    pub const BACKEND_SERVER: &str = "counterbook-server";
    pub const BACKEND_FIRESTORE: &str = "Cloud Firestore";
    pub const ENDPOINT: &str = "Server address";
    pub const PROJECT: &str = "Project id";
    pub const API_KEY: &str = "Web API key";
    pub const AUTH_ENDPOINT: &str = "Sign-in address (Auth emulator)";
    pub const REALTIME: &str = "Real-time updates";
    pub const BATTERY_SAVER: &str = "Battery saver";
    pub const LOCK_MINUTES: &str = "Lock after minutes idle (0: never)";
    pub const SAVE_DEVICE: &str = "Save and restart";
    pub const DEVICE_NAME: &str = "Tablet name (on receipts)";
    pub const BILL_SERIES: &str = "Bill series";
    pub const PAPER_WIDTH: &str = "Receipt paper";
    pub const PAPER_58: &str = "58 mm";
    pub const PAPER_80: &str = "80 mm";
    pub const SAVED: &str = "Saved.";
}

fn optional(text: String) -> Option<String> {
    let text = text.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

#[component]
pub fn SettingsPage(driver: StoredValue<SyncDriver, LocalStorage>) -> impl IntoView {
    view! {
        <ShopSettingsForm driver=driver/>
        <DeviceSettingsForm driver=driver/>
    }
}

#[component]
fn ShopSettingsForm(driver: StoredValue<SyncDriver, LocalStorage>) -> impl IntoView {
    let loaded = RwSignal::new(ShopSettings::default());
    let name = RwSignal::new(String::new());
    let address = RwSignal::new(String::new());
    let phone = RwSignal::new(String::new());
    let tax_id = RwSignal::new(String::new());
    let currency = RwSignal::new(String::new());
    let inclusive = RwSignal::new(true);
    let rounding = RwSignal::new(String::new());
    let upi = RwSignal::new(String::new());
    let footer = RwSignal::new(String::new());
    let message = RwSignal::new(None::<String>);
    let may_change = move || {
        driver.with_value(|d| {
            d.sessions().active().get();
            let person = d.sessions().active_person();
            // With no accounts (a `--dev` server, the emulator) anyone may.
            person.is_none_or(|p| p.role.may(GuardedAction::ChangeShopSettings))
        })
    };
    spawn_local(async move {
        let settings = driver
            .get_value()
            .store()
            .shop_settings()
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        name.set(settings.shop_name.clone());
        address.set(settings.address.clone().unwrap_or_default());
        phone.set(settings.phone.clone().unwrap_or_default());
        tax_id.set(settings.tax_id.clone().unwrap_or_default());
        currency.set(settings.currency.clone());
        inclusive.set(settings.tax_mode == TaxMode::Inclusive);
        rounding.set(settings.cash_rounding_step_minor.to_string());
        upi.set(settings.upi_id.clone().unwrap_or_default());
        footer.set(settings.receipt_footer.clone().unwrap_or_default());
        loaded.set(settings);
    });
    let save = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let before = loaded.get_untracked();
        let after = ShopSettings {
            shop_name: name.get_untracked().trim().to_owned(),
            address: optional(address.get_untracked()),
            phone: optional(phone.get_untracked()),
            tax_id: optional(tax_id.get_untracked()),
            currency: currency.get_untracked().trim().to_uppercase(),
            tax_mode: if inclusive.get_untracked() {
                TaxMode::Inclusive
            } else {
                TaxMode::Exclusive
            },
            cash_rounding_step_minor: rounding
                .get_untracked()
                .trim()
                .parse()
                .unwrap_or(before.cash_rounding_step_minor),
            upi_id: optional(upi.get_untracked()),
            receipt_footer: optional(footer.get_untracked()),
            ..before.clone()
        };
        spawn_local(async move {
            let driver = driver.get_value();
            match crate::actions::sale::save_shop_profile(&driver, &before, &after).await {
                Ok(()) => {
                    loaded.set(after);
                    message.set(Some(text::SAVED.to_owned()));
                }
                Err(problem) => message.set(Some(problem)),
            }
        });
    };
    let field = |label: &'static str, value: RwSignal<String>, test_id: &'static str| {
        view! {
            <label>{label}
                <input type="text" data-testid=test_id prop:value=move || value.get()
                    on:input=move |ev| value.set(event_target_value(&ev))/>
            </label>
        }
    };
    view! {
        <form class="settings card" data-testid="shop-settings" on:submit=save>
            <h2>{text::SHOP_TITLE}</h2>
            <p class="help">{text::SHOP_HELP}</p>
            <fieldset prop:disabled=move || !may_change()>
                {field(text::SHOP_NAME, name, "settings-shop-name")}
                {field(text::ADDRESS, address, "settings-address")}
                {field(text::PHONE, phone, "settings-phone")}
                {field(text::TAX_ID, tax_id, "settings-tax-id")}
                {field(text::CURRENCY, currency, "settings-currency")}
                <label class="check">
                    <input type="checkbox" data-testid="settings-inclusive"
                        prop:checked=move || inclusive.get()
                        on:change=move |ev| inclusive.set(event_target_checked(&ev))/>
                    {text::PRICES_INCLUDE_TAX}
                </label>
                {field(text::CASH_ROUNDING, rounding, "settings-rounding")}
                {field(text::UPI_ID, upi, "settings-upi")}
                {field(text::RECEIPT_FOOTER, footer, "settings-footer")}
                <button type="submit" data-testid="save-shop-settings">{text::SAVE_SHOP}</button>
            </fieldset>
            <Show when=move || !may_change()>
                <p class="help">{text::OWNER_ONLY}</p>
            </Show>
            <Show when=move || message.get().is_some()>
                <p class="form-message" role="status">{move || message.get()}</p>
            </Show>
        </form>
    }
}

#[component]
fn DeviceSettingsForm(driver: StoredValue<SyncDriver, LocalStorage>) -> impl IntoView {
    let settings = driver.with_value(|d| d.settings().clone());
    let firestore = RwSignal::new(settings.backend == Backend::Firestore);
    let endpoint = RwSignal::new(settings.endpoint.clone());
    let project = RwSignal::new(settings.project.clone());
    let api_key = RwSignal::new(settings.api_key.clone());
    let auth_endpoint = RwSignal::new(settings.auth_endpoint.clone().unwrap_or_default());
    let realtime = RwSignal::new(settings.realtime);
    let battery_saver = RwSignal::new(settings.battery_saver);
    let lock_minutes = RwSignal::new(format!("{}", f64::from(settings.lock_seconds) / 60.0));
    let device_name = RwSignal::new(crate::settings::device_name().unwrap_or_default());
    let paper_80 = RwSignal::new(crate::ui::counter::receipt::paper_width_mm() == 80);
    let series = driver.with_value(|d| crate::storage::sales::device_series(d.device_id()));
    let problem = RwSignal::new(None::<String>);
    let save = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let backend = if firestore.get_untracked() {
            Backend::Firestore
        } else {
            Backend::Server
        };
        save_device_setting("backend", Some(backend.as_setting()));
        save_device_setting("endpoint", optional(endpoint.get_untracked()).as_deref());
        save_device_setting("project", optional(project.get_untracked()).as_deref());
        save_device_setting("apiKey", Some(api_key.get_untracked().trim()));
        save_device_setting(
            "authEndpoint",
            optional(auth_endpoint.get_untracked()).as_deref(),
        );
        save_device_setting(
            "realtime",
            Some(if realtime.get_untracked() {
                "on"
            } else {
                "off"
            }),
        );
        save_device_setting(
            "batterySaver",
            Some(if battery_saver.get_untracked() {
                "on"
            } else {
                "off"
            }),
        );
        save_device_setting("lockMinutes", Some(lock_minutes.get_untracked().trim()));
        crate::ui::counter::receipt::set_paper_width_mm(if paper_80.get_untracked() {
            80
        } else {
            58
        });
        if let Err(error) = crate::settings::save_device_name(&device_name.get_untracked()) {
            problem.set(Some(error.to_string()));
            return;
        }
        if let Some(window) = web_sys::window() {
            // The URL's own parameters would override what was just saved.
            let path = window.location().pathname().unwrap_or_default();
            let _ = window.location().replace(&path);
        }
    };
    let field = |label: &'static str, value: RwSignal<String>, test_id: &'static str| {
        view! {
            <label>{label}
                <input type="text" data-testid=test_id prop:value=move || value.get()
                    on:input=move |ev| value.set(event_target_value(&ev))/>
            </label>
        }
    };
    let check = |label: &'static str, value: RwSignal<bool>, test_id: &'static str| {
        view! {
            <label class="check">
                <input type="checkbox" data-testid=test_id prop:checked=move || value.get()
                    on:change=move |ev| value.set(event_target_checked(&ev))/>
                {label}
            </label>
        }
    };
    view! {
        <form class="settings card" data-testid="device-settings" on:submit=save>
            <h2>{text::DEVICE_TITLE}</h2>
            <p class="help">{text::DEVICE_HELP}</p>
            <label>{text::BACKEND}
                <select data-testid="settings-backend"
                    on:change=move |ev| firestore.set(event_target_value(&ev) == "firestore")>
                    <option value="server" selected=move || !firestore.get()>{text::BACKEND_SERVER}</option>
                    <option value="firestore" selected=move || firestore.get()>{text::BACKEND_FIRESTORE}</option>
                </select>
            </label>
            {field(text::ENDPOINT, endpoint, "settings-endpoint")}
            {field(text::PROJECT, project, "settings-project")}
            <Show when=move || firestore.get()>
                {field(text::API_KEY, api_key, "settings-api-key")}
                {field(text::AUTH_ENDPOINT, auth_endpoint, "settings-auth-endpoint")}
            </Show>
            {check(text::REALTIME, realtime, "settings-realtime")}
            {check(text::BATTERY_SAVER, battery_saver, "settings-battery-saver")}
            {field(text::LOCK_MINUTES, lock_minutes, "settings-lock-minutes")}
            {field(text::DEVICE_NAME, device_name, "settings-device-name")}
            <label>{text::BILL_SERIES}
                <input type="text" readonly=true data-testid="settings-bill-series" prop:value=series/>
            </label>
            <label>{text::PAPER_WIDTH}
                <select data-testid="settings-paper"
                    on:change=move |ev| paper_80.set(event_target_value(&ev) == "80")>
                    <option value="58" selected=move || !paper_80.get()>{text::PAPER_58}</option>
                    <option value="80" selected=move || paper_80.get()>{text::PAPER_80}</option>
                </select>
            </label>
            <Show when=move || problem.get().is_some()>
                <p class="form-error" role="alert">{move || problem.get()}</p>
            </Show>
            <button type="submit" data-testid="save-device-settings">{text::SAVE_DEVICE}</button>
        </form>
    }
}
