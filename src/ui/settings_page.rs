//! The settings page (`/settings`), one page in two parts: the shop's settings, which sync to
//! every tablet (`counterbook-shop`'s `ShopSettings`, the `settings/profile` document, saved
//! as one unit of work; only the owner's token may write it), and this device's settings,
//! which stay on it (the backend and how it signs in, real time, battery saver, when it
//! locks, the tablet's name on receipts, the receipt paper, the language; its bill series is shown). Device settings take effect when the app starts again, which saving does.
//!
//! Every visible string is a message of the catalogue ([`crate::i18n`]).

use crate::i18n::{t, tr, Msg};
use crate::ui::draft::Draft;
use crate::ui::problems::ProblemText;
use crate::ui::problems::Shown;
use counterbook_i18n::Language;
use counterbook_shop::money::{format_decimal_trimmed, parse_decimal};
use counterbook_shop::{GuardedAction, Nomenclature, ShopSettings, TaxMode};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::settings::{save_device_setting, Backend};
use crate::sync::SyncDriver;

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
    // The profile as this tablet keeps it, read below. Each field shows it until typed in, so
    // a read that answers late never overwrites what was typed meanwhile (see `ui::draft`).
    let loaded = RwSignal::new(ShopSettings::default());
    let text = |kept: fn(&ShopSettings) -> String| Draft::new(move || loaded.with(kept));
    let name = text(|s| s.shown_shop_name(crate::i18n::catalogue()).to_owned());
    let address = text(|s| s.address.clone().unwrap_or_default());
    let phone = text(|s| s.phone.clone().unwrap_or_default());
    let tax_id = text(|s| s.tax_id.clone().unwrap_or_default());
    let currency = text(|s| s.currency.clone());
    let inclusive = Draft::new(move || loaded.with(|s| s.tax_mode == TaxMode::Inclusive));
    let rounding = text(|s| s.cash_rounding_step_minor.to_string());
    let upi = text(|s| s.upi_id.clone().unwrap_or_default());
    let header = text(|s| s.receipt_header.clone().unwrap_or_default());
    let footer = text(|s| s.receipt_footer.clone().unwrap_or_default());
    let tax_rates = text(|s| tax_rates_text(&s.tax_rates_basis_points));
    let barcode_rules = text(|s| s.barcode_nomenclature.to_text());
    let locale = text(|s| s.locale.clone().unwrap_or_default());
    let texts = [
        name,
        address,
        phone,
        tax_id,
        currency,
        rounding,
        upi,
        header,
        footer,
        tax_rates,
        barcode_rules,
        locale,
    ];
    let forget_typed = move || {
        for field in texts {
            field.forget_typed();
        }
        inclusive.forget_typed();
    };
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
        loaded.set(settings);
    });
    let save = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let before = loaded.get_untracked();
        // What is typed wrong is said, and nothing is saved until it is right.
        let typed = (|| {
            let rounding = rounding
                .shown_untracked()
                .trim()
                .parse::<i64>()
                .map_err(|_| t(Msg::SettingsBadRounding).to_owned())?;
            let rates = parse_tax_rates(&tax_rates.shown_untracked())?;
            let nomenclature = Nomenclature::parse_text(&barcode_rules.shown_untracked())
                .map_err(|problem| problem.shown())?;
            Ok::<_, String>((rounding, rates, nomenclature))
        })();
        let (rounding_step, rates, nomenclature) = match typed {
            Ok(typed) => typed,
            Err(problem) => {
                message.set(Some(problem));
                return;
            }
        };
        let after = ShopSettings {
            shop_name: ShopSettings::kept_shop_name(
                &name.shown_untracked(),
                crate::i18n::catalogue(),
            ),
            address: optional(address.shown_untracked()),
            phone: optional(phone.shown_untracked()),
            tax_id: optional(tax_id.shown_untracked()),
            currency: currency.shown_untracked().trim().to_uppercase(),
            tax_mode: if inclusive.shown_untracked() {
                TaxMode::Inclusive
            } else {
                TaxMode::Exclusive
            },
            cash_rounding_step_minor: rounding_step,
            tax_rates_basis_points: rates,
            barcode_nomenclature: nomenclature,
            receipt_header: optional(header.shown_untracked()),
            upi_id: optional(upi.shown_untracked()),
            receipt_footer: optional(footer.shown_untracked()),
            locale: optional(locale.shown_untracked()),
            ..before.clone()
        };
        spawn_local(async move {
            let driver = driver.get_value();
            match crate::actions::sale::save_shop_profile(&driver, &before, &after).await {
                Ok(()) => {
                    loaded.set(after);
                    forget_typed();
                    message.set(Some(t(Msg::SettingsSaved).to_owned()));
                }
                Err(problem) => message.set(Some(problem.shown())),
            }
        });
    };
    let field = |label: &'static str, value: Draft<String>, test_id: &'static str| {
        view! {
            <label>{label}
                <input type="text" data-testid=test_id prop:value=move || value.shown()
                    on:input=move |ev| value.typed(event_target_value(&ev))/>
            </label>
        }
    };
    view! {
        <form class="settings card" data-testid="shop-settings" on:submit=save>
            <h2>{t(Msg::SettingsShopTitle)}</h2>
            <p class="help">{t(Msg::SettingsShopHelp)}</p>
            <fieldset prop:disabled=move || !may_change()>
                {field(t(Msg::SettingsShopName), name, "settings-shop-name")}
                {field(t(Msg::SettingsAddress), address, "settings-address")}
                {field(t(Msg::SettingsPhone), phone, "settings-phone")}
                {field(t(Msg::SettingsTaxId), tax_id, "settings-tax-id")}
                {field(t(Msg::SettingsCurrency), currency, "settings-currency")}
                <label class="check">
                    <input type="checkbox" data-testid="settings-inclusive"
                        prop:checked=move || inclusive.shown()
                        on:change=move |ev| inclusive.typed(event_target_checked(&ev))/>
                    {t(Msg::SettingsPricesIncludeTax)}
                </label>
                {field(t(Msg::SettingsCashRounding), rounding, "settings-rounding")}
                {field(t(Msg::SettingsUpiId), upi, "settings-upi")}
                {field(t(Msg::SettingsTaxRates), tax_rates, "settings-tax-rates")}
                {field(t(Msg::SettingsReceiptHeader), header, "settings-header")}
                {field(t(Msg::SettingsReceiptFooter), footer, "settings-footer")}
                <label class="wide">{t(Msg::SettingsBarcodeRules)}
                    <textarea rows="3" data-testid="settings-barcode-rules" autocomplete="off"
                        prop:value=move || barcode_rules.shown()
                        on:input=move |ev| barcode_rules.typed(event_target_value(&ev))></textarea>
                </label>
                {field(t(Msg::SettingsLocale), locale, "settings-locale")}
                <button type="submit" data-testid="save-shop-settings">{t(Msg::SettingsSaveShop)}</button>
            </fieldset>
            <Show when=move || !may_change()>
                <p class="help">{t(Msg::SettingsOwnerOnly)}</p>
            </Show>
            <Show when=move || message.get().is_some()>
                <p class="form-message" role="status">{move || message.get()}</p>
            </Show>
        </form>
    }
}

/// The shop's tax rates as typed: percentages separated by commas ("0, 5, 18").
fn tax_rates_text(rates_basis_points: &[u32]) -> String {
    rates_basis_points
        .iter()
        .map(|rate| format_decimal_trimmed(i64::from(*rate), 2))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads [`tax_rates_text`]'s form back: each a percentage of at most two decimals, 0 to 100.
fn parse_tax_rates(text: &str) -> Result<Vec<u32>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|rate| !rate.is_empty())
        .map(|rate| {
            parse_decimal(rate.trim_end_matches('%').trim(), 2)
                .ok()
                .and_then(|basis_points| u32::try_from(basis_points).ok())
                .filter(|basis_points| *basis_points <= 10_000)
                .ok_or_else(|| tr(Msg::SettingsBadTaxRate, &[("rate", rate)]))
        })
        .collect()
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
    let language = RwSignal::new(settings.language);
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
        save_device_setting("language", Some(language.get_untracked().code()));
        crate::ui::counter::receipt::set_paper_width_mm(if paper_80.get_untracked() {
            80
        } else {
            58
        });
        if let Err(error) = crate::settings::save_device_name(&device_name.get_untracked()) {
            problem.set(Some(error.shown()));
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
            <h2>{t(Msg::SettingsDeviceTitle)}</h2>
            <p class="help">{t(Msg::SettingsDeviceHelp)}</p>
            <label>{t(Msg::SettingsBackend)}
                <select data-testid="settings-backend"
                    on:change=move |ev| firestore.set(event_target_value(&ev) == "firestore")>
                    <option value="server" selected=move || !firestore.get()>{t(Msg::SettingsBackendServer)}</option>
                    <option value="firestore" selected=move || firestore.get()>{t(Msg::SettingsBackendFirestore)}</option>
                </select>
            </label>
            {field(t(Msg::SettingsEndpoint), endpoint, "settings-endpoint")}
            {field(t(Msg::SettingsProject), project, "settings-project")}
            <Show when=move || firestore.get()>
                {field(t(Msg::SettingsApiKey), api_key, "settings-api-key")}
                {field(t(Msg::SettingsAuthEndpoint), auth_endpoint, "settings-auth-endpoint")}
            </Show>
            {check(t(Msg::SettingsRealtime), realtime, "settings-realtime")}
            {check(t(Msg::SettingsBatterySaver), battery_saver, "settings-battery-saver")}
            {field(t(Msg::SettingsLockMinutes), lock_minutes, "settings-lock-minutes")}
            {field(t(Msg::SettingsDeviceName), device_name, "settings-device-name")}
            <label>{t(Msg::SettingsBillSeries)}
                <input type="text" readonly=true data-testid="settings-bill-series" prop:value=series/>
            </label>
            <label>{t(Msg::SettingsPaperWidth)}
                <select data-testid="settings-paper"
                    on:change=move |ev| paper_80.set(event_target_value(&ev) == "80")>
                    <option value="58" selected=move || !paper_80.get()>{t(Msg::SettingsPaper58)}</option>
                    <option value="80" selected=move || paper_80.get()>{t(Msg::SettingsPaper80)}</option>
                </select>
            </label>
            <label>{t(Msg::SettingsLanguage)}
                <select data-testid="settings-language"
                    on:change=move |ev| {
                        if let Some(chosen) = Language::from_code(&event_target_value(&ev)) {
                            language.set(chosen);
                        }
                    }>
                    {Language::ALL
                        .into_iter()
                        .map(|choice| {
                            view! {
                                <option value=choice.code() lang=choice.code()
                                    selected=move || language.get() == choice>
                                    {choice.own_name()}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
            </label>
            <Show when=move || problem.get().is_some()>
                <p class="form-error" role="alert">{move || problem.get().map(|text| view! { <ProblemText text/> })}</p>
            </Show>
            <button type="submit" data-testid="save-device-settings">{t(Msg::SettingsSaveDevice)}</button>
        </form>
    }
}
