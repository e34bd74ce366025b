//! A minimal form for the shop profile the receipt prints (name, address, phone, tax id, UPI
//! id, footer): saved on the tablet and pushed as the shop's `settings/profile` document, in
//! one unit of work, so every tablet of the shop prints the same. Beside it, this tablet's own
//! name (a device setting, never synced), which its receipts print as the device. The full
//! settings page comes with issue 10.

use crate::i18n::{t, Msg};
use crate::ui::draft::Draft;
use crate::ui::problems::Shown;
use counterbook_shop::ShopSettings;
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::Counter;

fn optional(text: String) -> Option<String> {
    let text = text.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// Where a field of the form is kept in [`ShopSettings`].
type KeptIn = fn(&ShopSettings) -> Option<String>;

/// The profile's text fields: label, test id, and where each is kept.
const PROFILE_FIELDS: [(Msg, &str, KeptIn); 6] = [
    (Msg::SettingsShopName, "profile-name", |s| {
        Some(s.shown_shop_name(crate::i18n::catalogue()).to_owned())
    }),
    (Msg::SettingsAddress, "profile-address", |s| {
        s.address.clone()
    }),
    (Msg::SettingsPhone, "profile-phone", |s| s.phone.clone()),
    (Msg::SettingsTaxId, "profile-tax-id", |s| s.tax_id.clone()),
    (Msg::SettingsUpiId, "profile-upi-id", |s| s.upi_id.clone()),
    (Msg::SettingsReceiptFooter, "profile-footer", |s| {
        s.receipt_footer.clone()
    }),
];

#[component]
pub(super) fn ShopProfile(counter: Counter) -> impl IntoView {
    // Each field shows the profile as this tablet has it (the default, then the one loaded or
    // pulled, whenever it arrives) until something is typed in it: opening the form copies
    // nothing, so nothing typed is ever overwritten by a late copy (see `ui::draft`).
    let fields = PROFILE_FIELDS.map(|(label, testid, kept)| {
        let draft = Draft::new(move || counter.settings.with(|s| kept(s).unwrap_or_default()));
        (draft, t(label), testid)
    });
    let device_name = Draft::new(|| crate::settings::device_name().unwrap_or_default());
    let forget_typed = move || {
        for (draft, _, _) in &fields {
            draft.forget_typed();
        }
        device_name.forget_typed();
    };
    let message = RwSignal::new(None::<String>);
    let save = move |_| {
        if let Err(problem) = crate::settings::save_device_name(&device_name.shown_untracked()) {
            message.set(Some(problem.shown()));
            return;
        }
        let value = |index: usize| fields[index].0.shown_untracked();
        let before = counter.settings.get_untracked();
        let after = ShopSettings {
            shop_name: ShopSettings::kept_shop_name(&value(0), crate::i18n::catalogue()),
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
                    forget_typed();
                    message.set(Some(t(Msg::SettingsSaved).into()));
                }
                Err(problem) => message.set(Some(problem.shown())),
            }
        });
    };
    view! {
        <details class="shop-profile" data-testid="shop-profile"
            on:toggle=move |ev| {
                // Put away unsaved, what was typed is dropped: opened again, the form shows
                // the profile as kept. (Read when handled, so a late event for a form opened
                // again since changes nothing.)
                if !event_target::<web_sys::HtmlDetailsElement>(&ev).open() {
                    forget_typed();
                }
            }>
            <summary>{t(Msg::ProfileTitle)} " "
                <span data-testid="profile-shop-name">{move || counter.settings.with(|s| s.shown_shop_name(crate::i18n::catalogue()).to_owned())}</span>
            </summary>
            <div class="profile-fields">
                {fields.iter().map(|(draft, label, testid)| {
                    let draft = *draft;
                    view! {
                        <label>{*label}
                            <input type="text" data-testid=*testid prop:value=move || draft.shown()
                                on:input=move |ev| draft.typed(event_target_value(&ev))/>
                        </label>
                    }
                }).collect_view()}
                <label>{t(Msg::ProfileDeviceName)}
                    <input type="text" data-testid="profile-device-name" placeholder=t(Msg::ProfileDeviceNameExample)
                        maxlength=crate::settings::MAX_DEVICE_NAME_CHARS.to_string()
                        prop:value=move || device_name.shown()
                        on:input=move |ev| device_name.typed(event_target_value(&ev))/>
                </label>
                <button type="button" data-testid="save-profile" on:click=save>{t(Msg::ProfileSave)}</button>
                {move || message.get().map(|m| view! { <p class="print-message" role="status" data-testid="profile-message">{m}</p> })}
            </div>
        </details>
    }
}
