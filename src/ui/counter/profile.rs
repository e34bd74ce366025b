//! A minimal form for the shop profile the receipt prints (name, address, phone, tax id, UPI
//! id, footer): saved on the tablet and pushed as the shop's `settings/profile` document, in
//! one unit of work, so every tablet of the shop prints the same. Beside it, this tablet's own
//! name (a device setting, never synced), which its receipts print as the device. The full
//! settings page comes with issue 10.

use crate::i18n::{t, Msg};
use crate::ui::problems::Shown;
use counterbook_shop::ShopSettings;
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::Counter;

fn optional(text: String) -> Option<String> {
    let text = text.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

#[component]
pub(super) fn ShopProfile(counter: Counter) -> impl IntoView {
    let fields: [(RwSignal<String>, &'static str, &'static str); 6] = [
        (
            RwSignal::new(String::new()),
            t(Msg::SettingsShopName),
            "profile-name",
        ),
        (
            RwSignal::new(String::new()),
            t(Msg::SettingsAddress),
            "profile-address",
        ),
        (
            RwSignal::new(String::new()),
            t(Msg::SettingsPhone),
            "profile-phone",
        ),
        (
            RwSignal::new(String::new()),
            t(Msg::SettingsTaxId),
            "profile-tax-id",
        ),
        (
            RwSignal::new(String::new()),
            t(Msg::SettingsUpiId),
            "profile-upi-id",
        ),
        (
            RwSignal::new(String::new()),
            t(Msg::SettingsReceiptFooter),
            "profile-footer",
        ),
    ];
    let device_name = RwSignal::new(String::new());
    let message = RwSignal::new(None::<String>);
    let open = RwSignal::new(false);
    let fill = move || {
        let settings = counter.settings.get_untracked();
        let values = [
            Some(settings.shop_name),
            settings.address,
            settings.phone,
            settings.tax_id,
            settings.upi_id,
            settings.receipt_footer,
        ];
        for ((signal, _, _), value) in fields.iter().zip(values) {
            signal.set(value.unwrap_or_default());
        }
        device_name.set(crate::settings::device_name().unwrap_or_default());
    };
    let save = move |_| {
        if let Err(problem) = crate::settings::save_device_name(&device_name.get_untracked()) {
            message.set(Some(problem.shown()));
            return;
        }
        let value = |index: usize| fields[index].0.get_untracked();
        let before = counter.settings.get_untracked();
        let after = ShopSettings {
            shop_name: value(0).trim().to_owned(),
            address: optional(value(1)),
            phone: optional(value(2)),
            tax_id: optional(value(3)),
            upi_id: optional(value(4)),
            receipt_footer: optional(value(5)),
            ..before.clone()
        };
        spawn_local(async move {
            let driver = counter.driver.get_value();
            match crate::actions::sale::save_shop_profile(&driver, &before, &after).await {
                Ok(()) => {
                    counter.settings.set(after);
                    message.set(Some(t(Msg::SettingsSaved).into()));
                }
                Err(problem) => message.set(Some(problem)),
            }
        });
    };
    view! {
        <details class="shop-profile" data-testid="shop-profile"
            prop:open=move || open.get()
            on:toggle=move |ev| {
                let now_open = event_target::<web_sys::HtmlDetailsElement>(&ev).open();
                if now_open && !open.get_untracked() {
                    fill();
                }
                open.set(now_open);
            }>
            <summary>{t(Msg::ProfileTitle)} " "
                <span data-testid="profile-shop-name">{move || counter.settings.with(|s| s.shop_name.clone())}</span>
            </summary>
            <div class="profile-fields">
                {fields.iter().map(|(signal, label, testid)| {
                    let signal = *signal;
                    view! {
                        <label>{*label}
                            <input type="text" data-testid=*testid prop:value=move || signal.get()
                                on:input=move |ev| signal.set(event_target_value(&ev))/>
                        </label>
                    }
                }).collect_view()}
                <label>{t(Msg::ProfileDeviceName)}
                    <input type="text" data-testid="profile-device-name" placeholder=t(Msg::ProfileDeviceNameExample)
                        maxlength=crate::settings::MAX_DEVICE_NAME_CHARS.to_string()
                        prop:value=move || device_name.get()
                        on:input=move |ev| device_name.set(event_target_value(&ev))/>
                </label>
                <button type="button" data-testid="save-profile" on:click=save>{t(Msg::ProfileSave)}</button>
                {move || message.get().map(|m| view! { <p class="print-message" role="status" data-testid="profile-message">{m}</p> })}
            </div>
        </details>
    }
}
