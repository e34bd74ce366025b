//! The bill's customer: found by phone or name as you type (index lookups with a limit), or
//! created on the spot with a name, a phone and an optional credit limit (a manager's to set:
//! a cashier's asks for a manager's PIN). The results follow the store: customers arriving
//! while a search is shown (from another tablet) join them.

use crate::i18n::{t, tr, Msg};
use crate::ui::problems::ProblemText;
use counterbook_shop::money::parse_decimal;
use counterbook_shop::{Customer, GuardedAction};
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::{Counter, Notice};
use crate::actions::sale::CreateCustomerError;
use crate::actions::Approval;
use crate::money::format_price;
use crate::sync::change_log::ChangesSince;
use crate::ui::problems::Shown;
use crate::ui::sign_in::ManagerApproval;

const CUSTOMER_RESULTS: u32 = 5;

#[component]
pub(super) fn CustomerPanel(counter: Counter) -> impl IntoView {
    let query = RwSignal::new(String::new());
    let found = RwSignal::new(Vec::<Customer>::new());
    let creating = RwSignal::new(false);
    let name = RwSignal::new(String::new());
    let phone = RwSignal::new(String::new());
    let limit = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let currency = move || counter.settings.with(|s| s.currency.clone());

    let look_up = move |text: String| {
        query.set(text.clone());
        if text.trim().is_empty() {
            found.set(Vec::new());
            return;
        }
        spawn_local(async move {
            let driver = counter.driver.get_value();
            match driver.store().find_customers(&text, CUSTOMER_RESULTS).await {
                // Only the answer to what the field still holds.
                Ok(customers) if query.get_untracked() == text => found.set(customers),
                Ok(_) => {}
                Err(problem) => counter.notice.set(Some(Notice::Error(problem.shown()))),
            }
        });
    };
    // Customers that arrive while a search is shown (pulled or listened to from another
    // tablet, or added here) join its results: the search runs again.
    counter
        .driver
        .with_value(|d| d.changes())
        .watch(move |since| {
            let customers_changed = match since {
                ChangesSince::Nothing => false,
                ChangesSince::Documents(changed) => {
                    changed.touches(counterbook_shop::customer::CUSTOMERS_COLLECTION)
                }
                ChangesSince::Everything => true,
            };
            let text = query.get_untracked();
            if customers_changed && !text.trim().is_empty() {
                look_up(text);
            }
        });
    let choose = move |customer: Customer| {
        counter.customer.set(Some(customer));
        query.set(String::new());
        found.set(Vec::new());
    };
    // A cashier's customer with a credit limit waits here for a manager's PIN.
    let awaiting_approval = RwSignal::new(None::<Customer>);
    let save = move |customer: Customer, approval: Option<Approval>| {
        spawn_local(async move {
            let driver = counter.driver.get_value();
            match crate::actions::sale::create_customer(&driver, &customer, approval.as_ref()).await
            {
                Ok(()) => {
                    error.set(None);
                    creating.set(false);
                    name.set(String::new());
                    phone.set(String::new());
                    limit.set(String::new());
                    choose(customer);
                }
                Err(CreateCustomerError::NeedsApproval(_)) => awaiting_approval.set(Some(customer)),
                Err(problem) => error.set(Some(problem.shown())),
            }
        });
    };
    let create = move |_| {
        let limit_text = limit.get_untracked();
        let credit_limit_minor = if limit_text.trim().is_empty() {
            None
        } else {
            match parse_decimal(&limit_text, counter.exponent()) {
                Ok(minor) => Some(minor),
                Err(problem) => {
                    error.set(Some(tr(
                        Msg::CustomerCreditLimitProblem,
                        &[("problem", &problem.shown())],
                    )));
                    return;
                }
            }
        };
        let phone_text = phone.get_untracked();
        let mut customer = Customer::new(
            crate::ids::new_id(),
            &name.get_untracked(),
            Some(phone_text.as_str()),
        );
        customer.credit_limit_minor = credit_limit_minor;
        save(customer, None);
    };
    let approved = move |approval: Approval| {
        if let Some(customer) = awaiting_approval.get_untracked() {
            awaiting_approval.set(None);
            save(customer, Some(approval));
        }
    };

    view! {
        <section class="customer" data-testid="customer" aria-label=t(Msg::CustomerLabel)>
            {move || match counter.customer.get() {
                Some(customer) => {
                    let balance = format_price(customer.credit_balance_minor, &currency());
                    let limit = customer.credit_limit_minor.map(|l| format_price(l, &currency()));
                    view! {
                        <div class="customer-chosen" data-testid="customer-chosen">
                            <strong data-testid="customer-name">{customer.name.clone()}</strong>
                            <span>{customer.phone.clone()}</span>
                            <span class="balance">{match limit {
                                Some(limit) => tr(Msg::CustomerOwesOfLimit, &[("balance", &balance), ("limit", &limit)]),
                                None => tr(Msg::CustomerOwes, &[("balance", &balance)]),
                            }}</span>
                            <button type="button" class="secondary" data-testid="remove-customer"
                                on:click=move |_| counter.customer.set(None)>{t(Msg::CustomerRemove)}</button>
                        </div>
                    }
                    .into_any()
                }
                None => view! {
                    <div class="customer-find">
                        <label>
                            {t(Msg::CustomerFind)}
                            <input type="text" data-testid="customer-search" autocomplete="off"
                                prop:value=move || query.get()
                                on:input=move |ev| look_up(event_target_value(&ev))/>
                        </label>
                        <ul class="customer-results">
                            <For each=move || found.get() key=|c| c.id.clone()
                                children=move |customer| {
                                    let label = format!("{} {}", customer.name, customer.phone.clone().unwrap_or_default());
                                    view! {
                                        <li><button type="button" class="secondary" data-testid="customer-result"
                                            on:click=move |_| choose(customer.clone())>{label}</button></li>
                                    }
                                }/>
                        </ul>
                        <button type="button" class="link" data-testid="new-customer"
                            on:click=move |_| creating.update(|c| *c = !*c)>{t(Msg::CustomerNew)}</button>
                    </div>
                }
                .into_any(),
            }}
            <Show when=move || creating.get() && counter.customer.with(Option::is_none)>
                <div class="customer-new" data-testid="customer-form">
                    <label>{t(Msg::CustomerName)}
                        <input type="text" data-testid="customer-new-name" prop:value=move || name.get()
                            on:input=move |ev| name.set(event_target_value(&ev))/></label>
                    <label>{t(Msg::CustomerPhone)}
                        <input type="tel" data-testid="customer-new-phone" prop:value=move || phone.get()
                            on:input=move |ev| phone.set(event_target_value(&ev))/></label>
                    <label>{t(Msg::CustomerCreditLimit)}
                        <input type="text" inputmode="decimal" data-testid="customer-new-limit"
                            placeholder=t(Msg::CustomerNoLimit) prop:value=move || limit.get()
                            on:input=move |ev| limit.set(event_target_value(&ev))/></label>
                    <button type="button" data-testid="add-customer" on:click=create>{t(Msg::CustomerAdd)}</button>
                    {move || error.get().map(|e| view! { <p class="form-error" role="alert"><ProblemText text=e/></p> })}
                </div>
            </Show>
            <Show when=move || awaiting_approval.with(Option::is_some)>
                <ManagerApproval driver=counter.driver action=GuardedAction::OverrideCreditLimit
                    on_approved=approved on_cancel=move |_| awaiting_approval.set(None)/>
            </Show>
        </section>
    }
}
