//! The screens: one module per page (`counter`, `products`, `sync_page`, `people_page`,
//! `settings_page`), the screens before the shop (`sign_in`: setting the shop up, signing in,
//! PINs and the lock screen) and the components they share beside them (`header`,
//! `sync_problems`, `conflict_inbox`, `status_panel`, `virtual_list`, the rows in view of the
//! products' and the bills' lists, and `draft`, a form field's value). [`pages`] maps paths to pages:
//! `/counter` (also `/`, the start page), `/products`, `/sync`, `/people` and `/settings`. Components read through the store's queries and the driver's signals, and change
//! things only through [`crate::actions`]; they never touch IndexedDB or the network.

pub mod bills;
pub mod conflict_inbox;
pub mod counter;
pub mod draft;
pub mod header;
pub mod lazy;
pub mod pages;
pub mod people_page;
pub mod problems;
pub mod products;
pub mod settings_page;
pub mod sign_in;
pub mod status_panel;
pub mod sync_page;
pub mod sync_problems;
pub mod virtual_list;

use crate::i18n::{t, tn, tr, Msg};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::people::Person;
use crate::settings::Settings;
use crate::sync::session::Access;
use crate::sync::SyncDriver;
use counter::CounterPage;
use header::Header;
use pages::{provide_navigation, Page};
use problems::{ProblemText, Shown};
use sign_in::{LockScreen, SignInPurpose};

/// The banner's first line: how many of this person's sales wait for them to sign in again,
/// or, when nothing waits (nobody here can sync at all), why to sign in anyway.
pub fn sign_in_again_message(pending: usize) -> String {
    if pending == 0 {
        t(Msg::AppSignInAgainToSync).to_owned()
    } else {
        tn(Msg::AppSignInAgainToSend, pending, &[])
    }
}

/// Starts the app again on `shop` (a sign-in named another shop than the tablet was opened
/// for): remembered on the device, and in the address when the address names a shop.
pub fn restart_for_shop(shop: &str) {
    let Some(window) = web_sys::window() else {
        return;
    };
    if let Ok(Some(storage)) = window.local_storage() {
        let _ = storage.set_item("counterbook.shop", shop);
    }
    let location = window.location();
    let search = location.search().unwrap_or_default();
    if let Ok(query) = web_sys::UrlSearchParams::new_with_str(&search) {
        if query.get("shop").is_some() {
            query.set("shop", shop);
            let path = location.pathname().unwrap_or_default();
            let _ = location.replace(&format!("{path}?{}", String::from(query.to_string())));
            return;
        }
    }
    let _ = location.reload();
}

/// The whole app, with settings from the URL and `localStorage`.
#[component]
pub fn App() -> impl IntoView {
    view! { <Counterbook settings=Settings::load()/> }
}

enum Startup {
    Opening,
    Ready(SyncDriver),
    Failed(String),
}

/// The app for explicit settings (tests mount this with their own database name).
#[component]
pub fn Counterbook(settings: Settings) -> impl IntoView {
    let startup = RwSignal::new_local(Startup::Opening);
    spawn_local(async move {
        // The words come first: every screen after this one is in the tablet's language.
        if let Err(error) = crate::i18n::use_language(settings.language).await {
            web_sys::console::warn_1(&error.to_string().into());
        }
        let next = match SyncDriver::start(settings).await {
            Ok(driver) => {
                // Numbers, money and dates follow the shop's region from the first screen on.
                if let Ok(Some(shop)) = driver.store().shop_settings().await {
                    crate::i18n::set_shop_locale(shop.locale.as_deref());
                }
                Startup::Ready(driver)
            }
            Err(crate::sync::StartError::Storage(error)) => Startup::Failed(error.shown()),
        };
        startup.set(next);
    });
    move || {
        startup.with(|state| match state {
            Startup::Opening => view! { <p class="notice">{t(Msg::AppOpening)}</p> }.into_any(),
            Startup::Failed(message) => view! {
                <p class="notice error" data-testid="startup-error">
                    {t(Msg::AppCannotStart)} " " <ProblemText text=message.clone()/>
                </p>
            }
            .into_any(),
            Startup::Ready(driver) => view! { <Gate driver=driver.clone()/> }.into_any(),
        })
    }
}

/// What comes before the shop: setting it up, signing in, the lock screen.
#[component]
fn Gate(driver: SyncDriver) -> impl IntoView {
    let access = driver.sessions().access();
    let locked = driver.sessions().locked();
    let checking = driver.sessions().clone();
    spawn_local(async move { checking.check_access().await });
    let driver = StoredValue::new_local(driver);
    // After a sign-in, the person chooses the PIN they switch with (unless they said "Not
    // now" once).
    let choosing_pin = move || driver.with_value(|d| d.sessions().asks_for_pin());
    watch_idle(driver);
    move || {
        match access.get() {
        Access::Checking => view! { <p class="notice">{t(Msg::AppOpening)}</p> }.into_any(),
        Access::SetUpShop => view! {
            <main class="before-shop">{lazy::set_up_shop(driver)}</main>
        }
        .into_any(),
        Access::SignIn => view! {
            <main class="before-shop">
                {lazy::sign_in_form(driver, SignInPurpose::First, None, Callback::new(|_| {}), None)}
            </main>
        }
        .into_any(),
        Access::Open | Access::SignedIn => view! {
            <Show when=choosing_pin>
                <div class="lock-screen">
                    {move || lazy::choose_pin(driver, Callback::new(|_| {}))}
                </div>
            </Show>
            <Show when=move || locked.get() && !choosing_pin()>
                <LockScreen driver=driver/>
            </Show>
            <Shop driver=driver/>
        }
        .into_any(),
    }
    }
}

/// Locks the app after the device's lock time with no touch, click or key.
fn watch_idle(driver: StoredValue<SyncDriver, LocalStorage>) {
    let seconds = driver.with_value(|d| d.settings().lock_seconds);
    let Some(window) = web_sys::window() else {
        return;
    };
    if seconds == 0 {
        return;
    }
    let last_activity = std::rc::Rc::new(std::cell::Cell::new(js_sys::Date::now()));
    for event in ["pointerdown", "keydown"] {
        let last_activity = std::rc::Rc::clone(&last_activity);
        let on_activity = wasm_bindgen::closure::Closure::<dyn Fn()>::new(move || {
            last_activity.set(js_sys::Date::now());
        });
        let _ = window.add_event_listener_with_callback_and_bool(
            event,
            wasm_bindgen::JsCast::unchecked_ref(on_activity.as_ref()),
            true,
        );
        // Lives as long as the page.
        on_activity.forget();
    }
    let limit = f64::from(seconds) * 1_000.0;
    let check = wasm_bindgen::closure::Closure::<dyn Fn()>::new(move || {
        if js_sys::Date::now() - last_activity.get() >= limit {
            // The app may have been unmounted (tests mount several).
            if let Some(sessions) = driver.try_with_value(|d| d.sessions().clone()) {
                sessions.lock();
            }
            last_activity.set(js_sys::Date::now());
        }
    });
    let _ = window.set_interval_with_callback_and_timeout_and_arguments_0(
        wasm_bindgen::JsCast::unchecked_ref(check.as_ref()),
        1_000,
    );
    check.forget();
}

/// The pages of a started shop, under the header.
#[component]
fn Shop(driver: StoredValue<SyncDriver, LocalStorage>) -> impl IntoView {
    let status = driver.with_value(|d| d.status());
    // The shop's name from its profile (saved here or pulled from another tablet), followed as
    // it changes; its id until the tablet has the profile.
    let shop_name = RwSignal::new(driver.with_value(|d| d.settings().shop_id.clone()));
    let read_shop_name = move || {
        let driver = driver.get_value();
        spawn_local(async move {
            if let Ok(Some(profile)) = driver.store().shop_settings().await {
                shop_name.try_set(profile.shop_name);
            }
        });
    };
    read_shop_name();
    driver.with_value(|d| d.changes()).watch(move |since| {
        let profile_changed = match since {
            crate::sync::ChangesSince::Nothing => false,
            crate::sync::ChangesSince::Documents(changed) => {
                changed.touches(counterbook_shop::settings::SETTINGS_COLLECTION)
            }
            crate::sync::ChangesSince::Everything => true,
        };
        if profile_changed {
            read_shop_name();
        }
    });
    let navigation = provide_navigation();
    // One banner for each person whose sign-in ended while units of theirs wait (or, when
    // nobody here can send at all, for the person at the counter, counting every unit).
    let to_sign_in_again = move || {
        driver.with_value(|d| {
            let sessions = d.sessions();
            let ended = sessions.people_to_sign_in_again();
            let nobody_can_send = sessions.nobody_can_send();
            let active = sessions.active().get();
            status.with(|s| {
                let mut banners: Vec<(Person, usize)> = ended
                    .iter()
                    .filter_map(|person| {
                        let own = s
                            .pending_by_sender
                            .get(&Some(person.user_id.clone()))
                            .copied()
                            .unwrap_or(0);
                        (own > 0).then(|| (person.clone(), own))
                    })
                    .collect();
                if nobody_can_send && banners.is_empty() {
                    let person = ended
                        .iter()
                        .find(|p| Some(&p.user_id) == active.as_ref())
                        .or_else(|| ended.first());
                    banners.extend(person.map(|person| (person.clone(), s.pending)));
                }
                banners
            })
        })
    };
    view! {
        <Header shop_name=shop_name status=status driver=driver/>
        <For each=to_sign_in_again key=|(person, pending)| (person.user_id.clone(), *pending)
            let:banner>
            <section class="sign-in-again" data-testid="sign-in-again" role="alert"
                data-email=banner.0.email.clone()>
                <p data-testid="sign-in-again-message">
                    {sign_in_again_message(banner.1)}
                </p>
                <p data-testid="sign-in-again-who">
                    {tr(Msg::AppWhoseSignInEnded, &[("who", banner.0.display_name())])}
                </p>
                {lazy::sign_in_form(driver, SignInPurpose::Again, Some(banner.0.email.clone()),
                    Callback::new(|_| {}), None)}
            </section>
        </For>
        <main>
            {move || match navigation.page() {
                Page::Counter => view! { <CounterPage driver=driver/> }.into_any(),
                Page::Products => lazy::products_page(driver).into_any(),
                Page::Bills => lazy::bills_page(driver).into_any(),
                Page::Sync => lazy::sync_page(driver).into_any(),
                Page::People => lazy::people_page(driver).into_any(),
                Page::Settings => lazy::settings_page(driver).into_any(),
                Page::NotFound => view! {
                    <p class="notice" data-testid="not-found">{t(Msg::AppNoSuchPage)}</p>
                }
                .into_any(),
            }}
        </main>
    }
}
