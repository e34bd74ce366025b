//! The screens before the shop: "Set up your shop" (claiming a counterbook-server that holds
//! no shop, with the one-time code from its log), signing in with email and password, choosing
//! a PIN, and the lock screen where people switch with their PIN.
//!
//! Every visible string is a message of the catalogue ([`crate::i18n`]).

use crate::i18n::{t, Msg};
use crate::ui::problems::ProblemText;
use crate::ui::problems::Shown;
use counterbook_shop::ShopSettings;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::people::is_valid_pin;
use crate::sync::session::{ShopClaim, SignedIn};
use crate::sync::SyncDriver;

/// "Set up your shop": the shop's name, currency, country and locale, the owner's email and
/// password, and the setup code. The owner is signed in when it succeeds.
#[component]
pub fn SetUpShop(driver: StoredValue<SyncDriver, LocalStorage>) -> impl IntoView {
    let shop_name = RwSignal::new(String::new());
    let currency = RwSignal::new(driver.with_value(|d| d.settings().currency.clone()));
    let country = RwSignal::new("IN".to_owned());
    let locale = RwSignal::new("en-IN".to_owned());
    let display_name = RwSignal::new(String::new());
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let setup_code = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        let claim = ShopClaim {
            setup_code: setup_code.get_untracked(),
            shop_name: shop_name.get_untracked().trim().to_owned(),
            currency: currency.get_untracked().trim().to_uppercase(),
            country: country.get_untracked().trim().to_uppercase(),
            locale: locale.get_untracked().trim().to_owned(),
            email: email.get_untracked().trim().to_owned(),
            password: password.get_untracked(),
            display_name: display_name.get_untracked().trim().to_owned(),
        };
        spawn_local(async move {
            let driver = driver.get_value();
            match driver.sessions().claim_shop(&claim).await {
                Ok(signed_in) => {
                    let shop = match &signed_in {
                        SignedIn::Ready => driver.settings().shop_id.clone(),
                        SignedIn::RestartForShop(shop) => shop.clone(),
                    };
                    let profile = ShopSettings {
                        shop_name: claim.shop_name.clone(),
                        currency: claim.currency.clone(),
                        locale: Some(claim.locale.clone()).filter(|l| !l.is_empty()),
                        ..ShopSettings::default()
                    };
                    if let Err(problem) =
                        crate::actions::sale::save_first_shop_profile(&driver, &shop, &profile)
                            .await
                    {
                        error.set(Some(problem.shown()));
                    }
                    if let SignedIn::RestartForShop(shop) = signed_in {
                        super::restart_for_shop(&shop);
                    }
                }
                Err(problem) => {
                    error.set(Some(problem.shown()));
                    busy.set(false);
                }
            }
        });
    };
    let field = |label: &'static str,
                 value: RwSignal<String>,
                 test_id: &'static str,
                 kind: &'static str| {
        view! {
            <label>{label}
                <input type=kind data-testid=test_id required=true
                    prop:value=move || value.get()
                    on:input=move |ev| value.set(event_target_value(&ev))/>
            </label>
        }
    };
    view! {
        <form class="sign-in-card setup" data-testid="setup-form" on:submit=submit>
            <h2>{t(Msg::SigninSetUpTitle)}</h2>
            <p class="help">{t(Msg::SigninSetUpHelp)}</p>
            {field(t(Msg::SigninShopName), shop_name, "setup-shop-name", "text")}
            <div class="row">
                {field(t(Msg::SigninCurrency), currency, "setup-currency", "text")}
                {field(t(Msg::SigninCountry), country, "setup-country", "text")}
                {field(t(Msg::SigninLocale), locale, "setup-locale", "text")}
            </div>
            {field(t(Msg::SigninYourName), display_name, "setup-display-name", "text")}
            {field(t(Msg::SigninOwnerEmail), email, "setup-email", "email")}
            {field(t(Msg::SigninPassword), password, "setup-password", "password")}
            {field(t(Msg::SigninSetupCode), setup_code, "setup-code", "text")}
            <Show when=move || error.get().is_some()>
                <p class="form-error" role="alert" data-testid="setup-error">{move || error.get().map(|text| view! { <ProblemText text/> })}</p>
            </Show>
            <button type="submit" data-testid="setup-submit" prop:disabled=move || busy.get()>
                {move || if busy.get() { t(Msg::SigninSettingUp) } else { t(Msg::SigninSetUpButton) }}
            </button>
        </form>
    }
}

/// Which sign-in form this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignInPurpose {
    /// Nobody is signed in on this tablet.
    First,
    /// Someone's sign-in ended (the outbox waits for it).
    Again,
    /// Another person joins the tablet.
    AnotherPerson,
}

/// Email and password. `on_done` runs after a sign-in on this tablet's shop, with the
/// person's user id (a sign-in to another shop restarts the app on it instead).
#[component]
pub fn SignInForm(
    driver: StoredValue<SyncDriver, LocalStorage>,
    purpose: SignInPurpose,
    #[prop(optional_no_strip)] email: Option<String>,
    #[prop(into)] on_done: Callback<String>,
    #[prop(optional_no_strip)] on_cancel: Option<Callback<()>>,
) -> impl IntoView {
    let email = RwSignal::new(email.unwrap_or_default());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            let driver = driver.get_value();
            let outcome = driver
                .sessions()
                .sign_in(&email.get_untracked(), &password.get_untracked())
                .await;
            match outcome {
                Ok(SignedIn::Ready) => {
                    busy.set(false);
                    password.set(String::new());
                    if let Some(person) = driver.sessions().active_person() {
                        on_done.run(person.user_id);
                    }
                }
                // The form stays busy ("Signing in…") until the app has started again.
                Ok(SignedIn::RestartForShop(shop)) => super::restart_for_shop(&shop),
                Err(problem) => {
                    busy.set(false);
                    error.set(Some(problem.shown()));
                }
            }
        });
    };
    let title = match purpose {
        SignInPurpose::First => t(Msg::SigninSignInTitle),
        SignInPurpose::Again => t(Msg::SigninSignInAgainTitle),
        SignInPurpose::AnotherPerson => t(Msg::SigninAddPersonTitle),
    };
    view! {
        <form class="sign-in-card" data-testid="sign-in-form" on:submit=submit>
            <h2>{title}</h2>
            <label>{t(Msg::SigninEmail)}
                <input type="email" data-testid="sign-in-email" required=true autocomplete="username"
                    prop:value=move || email.get()
                    on:input=move |ev| email.set(event_target_value(&ev))/>
            </label>
            <label>{t(Msg::SigninPassword)}
                <input type="password" data-testid="sign-in-password" required=true
                    autocomplete="current-password"
                    prop:value=move || password.get()
                    on:input=move |ev| password.set(event_target_value(&ev))/>
            </label>
            <Show when=move || error.get().is_some()>
                <p class="form-error" role="alert" data-testid="sign-in-error">{move || error.get().map(|text| view! { <ProblemText text/> })}</p>
            </Show>
            <div class="form-buttons">
                <button type="submit" data-testid="sign-in-submit" prop:disabled=move || busy.get()>
                    {move || if busy.get() { t(Msg::SigninSigningIn) } else { t(Msg::SigninSignInButton) }}
                </button>
                {on_cancel.map(|cancel| view! {
                    <button type="button" class="secondary" on:click=move |_| cancel.run(())>
                        {t(Msg::SigninCancel)}
                    </button>
                })}
            </div>
        </form>
    }
}

/// Choosing (or changing) the PIN of the person at the counter.
#[component]
pub fn ChoosePin(
    driver: StoredValue<SyncDriver, LocalStorage>,
    #[prop(into)] on_done: Callback<()>,
) -> impl IntoView {
    let pin = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let typed = pin.get_untracked();
        if !is_valid_pin(&typed) {
            error.set(Some(t(Msg::SigninPinRule).to_owned()));
            return;
        }
        busy.set(true);
        spawn_local(async move {
            let outcome = driver.get_value().sessions().set_pin(&typed).await;
            busy.set(false);
            match outcome {
                Ok(()) => on_done.run(()),
                Err(problem) => error.set(Some(problem.shown())),
            }
        });
    };
    view! {
        // novalidate: a PIN of the wrong length gets the app's own words, in the tablet's
        // language, rather than the browser's bubble in the browser's.
        <form class="sign-in-card" data-testid="choose-pin-form" novalidate=true on:submit=submit>
            <h2>{t(Msg::SigninChoosePinTitle)}</h2>
            <p class="help">{t(Msg::SigninChoosePinHelp)}</p>
            <label>{t(Msg::SigninPin)}
                <input type="password" inputmode="numeric" pattern="[0-9]{4,6}" maxlength="6"
                    autocomplete="off" data-testid="choose-pin"
                    prop:value=move || pin.get()
                    on:input=move |ev| pin.set(event_target_value(&ev))/>
            </label>
            <Show when=move || error.get().is_some()>
                <p class="form-error" role="alert">{move || error.get().map(|text| view! { <ProblemText text/> })}</p>
            </Show>
            <div class="form-buttons">
                <button type="submit" data-testid="save-pin" prop:disabled=move || busy.get()>
                    {t(Msg::SigninSavePin)}
                </button>
                <button type="button" class="secondary" data-testid="skip-pin"
                    on:click=move |_| {
                        spawn_local(async move {
                            let outcome = driver.get_value().sessions().decline_pin().await;
                            match outcome {
                                Ok(()) => on_done.run(()),
                                Err(problem) => error.set(Some(problem.shown())),
                            }
                        });
                    }>{t(Msg::SigninNotNow)}</button>
            </div>
        </form>
    }
}

/// The `data-testid`s of one use of [`PersonPinForm`] (tests and screen readers find each
/// form's parts by them).
#[derive(Clone, Copy)]
struct PinFormIds {
    person: &'static str,
    pin: &'static str,
    error: &'static str,
    submit: &'static str,
    secondary: &'static str,
}

/// A PIN typed for a person: `on_pin` gets who and the PIN, and reports a problem through
/// `problem` (the form shows it) or moves on.
pub(crate) struct PinTyped {
    pub user_id: String,
    pub pin: String,
    pub problem: RwSignal<Option<String>>,
    pub busy: RwSignal<bool>,
}

/// The one PIN form: choose a person among `people` (someone without a PIN cannot be chosen),
/// type their PIN, submit. The lock screen and the manager's approval are both this form.
#[component]
fn PersonPinForm(
    #[prop(into)] people: Signal<Vec<crate::people::Person>>,
    chosen: RwSignal<Option<String>>,
    title: &'static str,
    #[prop(optional)] help: Option<&'static str>,
    /// Shown when nobody can be chosen.
    #[prop(optional)]
    nobody: Option<&'static str>,
    submit_label: &'static str,
    secondary_label: &'static str,
    ids: PinFormIds,
    #[prop(into)] on_pin: Callback<PinTyped>,
    #[prop(into)] on_secondary: Callback<()>,
) -> impl IntoView {
    let pin = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let Some(user_id) = chosen.get_untracked() else {
            return;
        };
        problem.set(None);
        let typed = pin.get_untracked();
        pin.set(String::new());
        on_pin.run(PinTyped {
            user_id,
            pin: typed,
            problem,
            busy,
        });
    };
    view! {
        <form class="sign-in-card" on:submit=submit>
            <h2>{title}</h2>
            {help.map(|help| view! { <p class="help">{help}</p> })}
            {nobody.map(|nobody| view! {
                <Show when=move || people.with(Vec::is_empty)>
                    <p class="form-error">{nobody}</p>
                </Show>
            })}
            <div class="people-choice" role="radiogroup">
                <For each=move || people.get() key=|p| (p.user_id.clone(), p.pin.is_some())
                    let:person>
                    {
                        let user_id = person.user_id.clone();
                        let id_for_click = user_id.clone();
                        let has_pin = person.pin.is_some();
                        view! {
                            <button type="button" role="radio" class="person"
                                data-testid=ids.person data-email=person.email.clone()
                                prop:disabled=!has_pin
                                aria-checked=move || (chosen.get().as_deref() == Some(user_id.as_str())).to_string()
                                on:click=move |_| chosen.set(Some(id_for_click.clone()))>
                                <span class="email">{person.email.clone()}</span>
                                <span class="role">{crate::i18n::role_name(person.role.as_claim())}</span>
                                {(!has_pin).then(|| view! { <span class="role">{t(Msg::SigninNoPinYet)}</span> })}
                            </button>
                        }
                    }
                </For>
            </div>
            <label>{t(Msg::SigninPin)}
                <input type="password" inputmode="numeric" maxlength="6" autocomplete="off"
                    data-testid=ids.pin
                    prop:value=move || pin.get()
                    on:input=move |ev| pin.set(event_target_value(&ev))/>
            </label>
            <Show when=move || problem.get().is_some()>
                <p class="form-error" role="alert" data-testid=ids.error>{move || problem.get().map(|text| view! { <ProblemText text/> })}</p>
            </Show>
            <div class="form-buttons">
                <button type="submit" data-testid=ids.submit prop:disabled=move || busy.get()>
                    {submit_label}
                </button>
                <button type="button" class="secondary" data-testid=ids.secondary
                    on:click=move |_| on_secondary.run(())>{secondary_label}</button>
            </div>
        </form>
    }
}

/// The lock screen: pick yourself, enter your PIN. Also how people switch.
#[component]
pub fn LockScreen(driver: StoredValue<SyncDriver, LocalStorage>) -> impl IntoView {
    let sessions = driver.with_value(|d| d.sessions().clone());
    let people = sessions.people();
    let chosen = RwSignal::new(sessions.active().get_untracked());
    let adding = RwSignal::new(false);
    let unlock = move |typed: PinTyped| {
        typed.busy.set(true);
        spawn_local(async move {
            let outcome = driver
                .get_value()
                .sessions()
                .switch_to(&typed.user_id, &typed.pin)
                .await;
            typed.busy.set(false);
            if let Err(problem) = outcome {
                typed.problem.set(Some(problem.shown()));
            }
        });
    };
    view! {
        <div class="lock-screen locked" data-testid="lock-screen">
            <Show when=move || !adding.get() fallback=move || view! {
                {crate::ui::lazy::sign_in_form(driver, SignInPurpose::AnotherPerson, None,
                    Callback::new(move |_| adding.set(false)),
                    Some(Callback::new(move |_| adding.set(false))))}
            }>
                <PersonPinForm people=people chosen=chosen title=t(Msg::SigninLockedTitle)
                    submit_label=t(Msg::SigninUnlock) secondary_label=t(Msg::SigninSignInSomeoneElse)
                    ids=PinFormIds {
                        person: "lock-person",
                        pin: "lock-pin",
                        error: "lock-error",
                        submit: "unlock",
                        secondary: "lock-add-person",
                    }
                    on_pin=unlock on_secondary=move |_| adding.set(true)/>
            </Show>
        </div>
    }
}

/// Asks a manager (or the owner) signed in on this tablet for their PIN, on the spot;
/// `on_approved` gets the approval for `action`.
#[component]
pub fn ManagerApproval(
    driver: StoredValue<SyncDriver, LocalStorage>,
    action: counterbook_shop::GuardedAction,
    #[prop(into)] on_approved: Callback<crate::actions::Approval>,
    #[prop(into)] on_cancel: Callback<()>,
) -> impl IntoView {
    let people = driver.with_value(|d| d.sessions().people());
    let approvers = Signal::derive(move || {
        people.with(|people| {
            people
                .iter()
                .filter(|p| p.role.may(action) && p.pin.is_some())
                .cloned()
                .collect::<Vec<_>>()
        })
    });
    let chosen = RwSignal::new(approvers.get_untracked().first().map(|p| p.user_id.clone()));
    let approve = move |typed: PinTyped| {
        spawn_local(async move {
            let driver = driver.get_value();
            let sessions = driver.sessions();
            match sessions.check_pin(&typed.user_id, &typed.pin).await {
                Ok(_) => {
                    let requested_by = sessions.active().get_untracked().unwrap_or_default();
                    on_approved.run(crate::actions::Approval {
                        approver: typed.user_id,
                        requested_by,
                    });
                }
                Err(problem) => typed.problem.set(Some(problem.shown())),
            }
        });
    };
    view! {
        <div class="lock-screen" data-testid="manager-approval">
            <PersonPinForm people=approvers chosen=chosen title=t(Msg::ApprovalTitle)
                help=t(Msg::ApprovalHelp) nobody=t(Msg::ApprovalNobody)
                submit_label=t(Msg::ApprovalApprove) secondary_label=t(Msg::ApprovalCancel)
                ids=PinFormIds {
                    person: "approver",
                    pin: "approval-pin",
                    error: "approval-error",
                    submit: "approve",
                    secondary: "cancel-approval",
                }
                on_pin=approve on_secondary=on_cancel/>
        </div>
    }
}
