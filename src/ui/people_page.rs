//! The people page (`/people`): who is signed in on this tablet (PINs, switching, signing out,
//! "Sign out and clear this tablet"), and for the owner the shop's people (add a cashier or a
//! manager, disable or enable them) through counterbook-server's people endpoints.
//!
//! Signing out while units wait to be sent is refused until the person confirms, and the page
//! offers to export those units to a file first. Every visible string is a message of the catalogue ([`crate::i18n`]).

use crate::i18n::{t, tn, Msg};
use crate::ui::problems::ProblemText;
use crate::ui::problems::Shown;
use counterbook_shop::Role;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::sync::shop_people::{self, NewShopPerson, ShopPerson};
use crate::sync::SyncDriver;
use crate::ui::sign_in::{ChoosePin, SignInForm, SignInPurpose};

/// What the confirmation is about.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Leaving {
    SignOut(String),
    ClearTablet,
}

#[component]
pub fn PeoplePage(driver: StoredValue<SyncDriver, LocalStorage>) -> impl IntoView {
    let people = driver.with_value(|d| d.sessions().people());
    let active = driver.with_value(|d| d.sessions().active());
    let status = driver.with_value(|d| d.status());
    let adding = RwSignal::new(false);
    let choosing_pin = RwSignal::new(false);
    let confirming = RwSignal::new(None::<Leaving>);
    let problem = RwSignal::new(None::<String>);

    let leave = move |leaving: Leaving| {
        spawn_local(async move {
            let driver = driver.get_value();
            let outcome = match &leaving {
                Leaving::SignOut(user_id) => driver.sessions().sign_out(user_id).await,
                Leaving::ClearTablet => driver.clear_tablet().await,
            };
            confirming.set(None);
            match outcome {
                Ok(()) if leaving == Leaving::ClearTablet => {
                    if let Some(window) = web_sys::window() {
                        let _ = window.location().replace("/");
                    }
                }
                Ok(()) => {}
                Err(error) => problem.set(Some(error.shown())),
            }
        });
    };
    // Refused while units wait, until the person confirms.
    let ask_to_leave = move |leaving: Leaving| {
        if status.with_untracked(|s| s.pending + s.dead_letters.len()) > 0 {
            confirming.set(Some(leaving));
        } else {
            leave(leaving);
        }
    };
    let export = move |_| {
        spawn_local(async move {
            let driver = driver.get_value();
            match driver.store().outbox().await {
                Ok(outbox) => {
                    let units: Vec<_> = outbox
                        .pending
                        .iter()
                        .chain(outbox.dead_letters.iter().map(|(unit, _)| unit))
                        .collect();
                    let json = serde_json::to_string_pretty(&units).unwrap_or_default();
                    let name = format!("counterbook-pending-{}.json", driver.device_id());
                    if crate::ui::products::csv_file::download(&json, &name, "application/json")
                        .is_err()
                    {
                        problem.set(Some(t(Msg::PeopleFileNotMade).into()));
                    }
                }
                Err(error) => problem.set(Some(error.shown())),
            }
        });
    };

    view! {
        <section class="people-page card" data-testid="tablet-people">
            <h2>{t(Msg::PeopleOnThisTablet)}</h2>
            <ul class="people-list">
                <For each=move || people.get() key=|p| format!("{}{}{}", p.user_id, p.pin.is_some(), p.needs_sign_in)
                    let:person>
                    {
                        let user_id = person.user_id.clone();
                        let is_active = {
                            let user_id = user_id.clone();
                            move || active.get().as_deref() == Some(user_id.as_str())
                        };
                        let sign_out_id = user_id.clone();
                        view! {
                            <li data-testid="tablet-person" data-email=person.email.clone()>
                                <span class="email">{person.email.clone()}</span>
                                <span class="role">{crate::i18n::role_name(person.role.as_claim())}</span>
                                <Show when=is_active.clone()>
                                    <span class="role">{t(Msg::PeopleAtTheCounter)}</span>
                                    <button type="button" class="secondary" data-testid="set-pin"
                                        on:click=move |_| choosing_pin.set(true)>
                                        {if person.pin.is_some() { t(Msg::PeopleChangePin) } else { t(Msg::PeopleSetPin) }}
                                    </button>
                                </Show>
                                {person.needs_sign_in.then(|| view! {
                                    <span class="form-error">{t(Msg::PeopleNeedsSignIn)}</span>
                                })}
                                <button type="button" class="secondary" data-testid="sign-out"
                                    on:click=move |_| ask_to_leave(Leaving::SignOut(sign_out_id.clone()))>
                                    {t(Msg::PeopleSignOut)}
                                </button>
                            </li>
                        }
                    }
                </For>
            </ul>
            <Show when=move || choosing_pin.get()>
                <ChoosePin driver=driver on_done=move |_| choosing_pin.set(false)/>
            </Show>
            <Show when=move || adding.get()
                fallback=move || view! {
                    <button type="button" class="secondary" data-testid="add-tablet-person"
                        on:click=move |_| adding.set(true)>{t(Msg::PeopleAddPerson)}</button>
                }>
                <SignInForm driver=driver purpose=SignInPurpose::AnotherPerson
                    on_done=move |_| adding.set(false)
                    on_cancel=Some(Callback::new(move |_| adding.set(false)))/>
            </Show>
            <Show when=move || confirming.get().is_some()>
                <div class="confirm" role="alertdialog" data-testid="confirm-leaving">
                    <p data-testid="pending-warning">
                        {move || tn(Msg::PeoplePendingWarning, status.with(|s| s.pending + s.dead_letters.len()), &[])}
                    </p>
                    <div class="form-buttons">
                        <button type="button" data-testid="export-pending" on:click=export>
                            {t(Msg::PeopleExportPending)}
                        </button>
                        <button type="button" class="danger" data-testid="leave-anyway"
                            on:click=move |_| {
                                if let Some(leaving) = confirming.get_untracked() {
                                    leave(leaving);
                                }
                            }>
                            {move || match confirming.get() {
                                Some(Leaving::ClearTablet) => t(Msg::PeopleClearAnyway),
                                _ => t(Msg::PeopleSignOutAnyway),
                            }}
                        </button>
                        <button type="button" class="secondary" data-testid="cancel-leaving"
                            on:click=move |_| confirming.set(None)>{t(Msg::PeopleCancel)}</button>
                    </div>
                </div>
            </Show>
            <Show when=move || problem.get().is_some()>
                <p class="form-error" role="alert">{move || problem.get().map(|text| view! { <ProblemText text/> })}</p>
            </Show>
            <div class="clear-tablet">
                <p class="help">{t(Msg::PeopleClearTabletHelp)}</p>
                <button type="button" class="danger" data-testid="clear-tablet"
                    on:click=move |_| ask_to_leave(Leaving::ClearTablet)>{t(Msg::PeopleClearTablet)}</button>
            </div>
        </section>
        <ShopPeople driver=driver/>
    }
}

/// The owner's list of the shop's people, with adding and disabling.
#[component]
fn ShopPeople(driver: StoredValue<SyncDriver, LocalStorage>) -> impl IntoView {
    let owner = move || {
        driver.with_value(|d| {
            let sessions = d.sessions();
            sessions.active().get();
            sessions
                .active_person()
                .filter(|person| person.role == Role::Owner)
        })
    };
    let listed = RwSignal::new(Vec::<ShopPerson>::new());
    let problem = RwSignal::new(None::<String>);
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let name = RwSignal::new(String::new());
    let role = RwSignal::new("cashier".to_owned());
    let endpoint = driver.with_value(|d| d.settings().endpoint.clone());
    let endpoint = StoredValue::new(endpoint);

    let reload = move || {
        let Some(owner) = owner() else {
            return;
        };
        spawn_local(async move {
            let endpoint = endpoint.get_value();
            match shop_people::list(&endpoint, &owner.shop, &owner.id_token).await {
                Ok(people) => {
                    listed.set(people);
                    problem.set(None);
                }
                Err(error) => problem.set(Some(error.shown())),
            }
        });
    };
    Effect::new(move |_| reload());

    let add = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let Some(owner) = owner() else {
            return;
        };
        let person = NewShopPerson {
            email: email.get_untracked().trim().to_owned(),
            password: password.get_untracked(),
            display_name: name.get_untracked().trim().to_owned(),
            role: role.get_untracked(),
        };
        spawn_local(async move {
            let endpoint = endpoint.get_value();
            match shop_people::add(&endpoint, &owner.shop, &owner.id_token, &person).await {
                Ok(_) => {
                    email.set(String::new());
                    password.set(String::new());
                    name.set(String::new());
                    reload();
                }
                Err(error) => problem.set(Some(error.shown())),
            }
        });
    };
    let toggle = move |user_id: String, disabled: bool| {
        let Some(owner) = owner() else {
            return;
        };
        spawn_local(async move {
            let endpoint = endpoint.get_value();
            match shop_people::set_disabled(
                &endpoint,
                &owner.shop,
                &owner.id_token,
                &user_id,
                disabled,
            )
            .await
            {
                Ok(_) => reload(),
                Err(error) => problem.set(Some(error.shown())),
            }
        });
    };

    view! {
        <section class="people-page card" data-testid="shop-people">
            <h2>{t(Msg::PeopleShopPeople)}</h2>
            <Show when=move || owner().is_some()
                fallback=|| view! { <p class="help">{t(Msg::PeopleOnlyTheOwner)}</p> }>
                <ul class="people-list">
                    <For each=move || listed.get() key=|p| format!("{}{}", p.user_id, p.disabled) let:person>
                        {
                            let user_id = person.user_id.clone();
                            let disabled = person.disabled;
                            let is_owner = person.role == "owner";
                            view! {
                                <li data-testid="shop-person" data-email=person.email.clone()>
                                    <span class="email">{person.email.clone()}</span>
                                    <span class="role">{crate::i18n::role_name(&person.role)}</span>
                                    {disabled.then(|| view! { <span class="role">{t(Msg::PeopleDisabled)}</span> })}
                                    {(!is_owner).then(|| view! {
                                        <button type="button" class="secondary" data-testid="toggle-person"
                                            on:click=move |_| toggle(user_id.clone(), !disabled)>
                                            {if disabled { t(Msg::PeopleEnable) } else { t(Msg::PeopleDisable) }}
                                        </button>
                                    })}
                                </li>
                            }
                        }
                    </For>
                </ul>
                <form class="add-person" data-testid="add-shop-person" on:submit=add>
                    <label>{t(Msg::PeopleEmail)}
                        <input type="email" required=true data-testid="new-person-email"
                            prop:value=move || email.get()
                            on:input=move |ev| email.set(event_target_value(&ev))/>
                    </label>
                    <label>{t(Msg::PeopleName)}
                        <input type="text" data-testid="new-person-name"
                            prop:value=move || name.get()
                            on:input=move |ev| name.set(event_target_value(&ev))/>
                    </label>
                    <label>{t(Msg::PeoplePassword)}
                        <input type="password" required=true data-testid="new-person-password"
                            prop:value=move || password.get()
                            on:input=move |ev| password.set(event_target_value(&ev))/>
                    </label>
                    <label>{t(Msg::PeopleRole)}
                        <select data-testid="new-person-role"
                            on:change=move |ev| role.set(event_target_value(&ev))>
                            <option value="cashier" selected=true>{t(Msg::PeopleCashier)}</option>
                            <option value="manager">{t(Msg::PeopleManager)}</option>
                        </select>
                    </label>
                    <button type="submit" data-testid="new-person-add">{t(Msg::PeopleAdd)}</button>
                </form>
            </Show>
            <Show when=move || problem.get().is_some()>
                <p class="form-error" role="alert" data-testid="shop-people-error">{move || problem.get().map(|text| view! { <ProblemText text/> })}</p>
            </Show>
        </section>
    }
}
