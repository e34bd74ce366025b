//! The bills page (`/bills`): the recent bills of this tablet, newest first, a page at a time
//! (one cursor read back over the bills' UUID v7 keys per page, never every bill), found by
//! bill number as you type (a range of the `number` index), and one bill opened with its lines
//! and "Void bill" and "Refund" ([`undo`]).

pub mod undo;

use crate::i18n::{t, Msg};
use counterbook_shop::{Bill, BillStatus};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::actions::sale::{open_bill, CompletedBill};
use crate::money::format_price;
use crate::sync::SyncDriver;

/// Bills read and shown at once.
const PAGE_SIZE: u32 = 25;

fn date_time(millis: i64) -> String {
    crate::i18n::format_date_time(millis)
}

#[component]
pub fn BillsPage(driver: StoredValue<SyncDriver, LocalStorage>) -> impl IntoView {
    // Nothing to listen to here: bills are this tablet's own.
    driver.with_value(|d| d.show_collection(None));
    let bills = RwSignal::new(Vec::<Bill>::new());
    let more = RwSignal::new(false);
    let query = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<String>);
    let opened = RwSignal::new(None::<CompletedBill>);
    let load = move |after: Option<String>| {
        spawn_local(async move {
            let driver = driver.get_value();
            let typed = query.get_untracked().trim().to_uppercase();
            let page = if typed.is_empty() {
                driver
                    .store()
                    .recent_bills(after.as_deref(), PAGE_SIZE + 1)
                    .await
            } else {
                driver
                    .store()
                    .bills_with_number_prefix(&typed, PAGE_SIZE + 1)
                    .await
            };
            match page {
                Ok(mut page) => {
                    more.set(typed.is_empty() && page.len() > PAGE_SIZE as usize);
                    page.truncate(PAGE_SIZE as usize);
                    if after.is_some() {
                        bills.update(|bills| bills.extend(page));
                    } else {
                        bills.set(page);
                    }
                    problem.set(None);
                }
                Err(error) => problem.set(Some(error.to_string())),
            }
        });
    };
    load(None);
    let open = move |id: String| {
        spawn_local(async move {
            match open_bill(&driver.get_value(), &id).await {
                Ok(found) => opened.set(found),
                Err(error) => problem.set(Some(error.to_string())),
            }
        });
    };
    let searching = move || !query.with(|q| q.trim().is_empty());
    let currency = StoredValue::new(driver.with_value(|d| d.settings().currency.clone()));
    view! {
        <section class="bills-page" data-testid="bills-page">
            <h2>{t(Msg::BillsTitle)}</h2>
            <label class="find-bill">{t(Msg::BillsFind)}
                <input type="search" data-testid="find-bill" autocomplete="off"
                    prop:value=move || query.get()
                    on:input=move |ev| {
                        query.set(event_target_value(&ev));
                        load(None);
                    }/>
            </label>
            {move || problem.get().map(|p| view! { <p class="form-error" role="alert">{p}</p> })}
            <Show when=move || bills.with(Vec::is_empty)>
                <p class="help" data-testid="no-bills">
                    {move || if searching() { t(Msg::BillsNotFound) } else { t(Msg::BillsNone) }}
                </p>
            </Show>
            <ul class="bill-list" data-testid="bill-list">
                <For each=move || bills.get() key=|bill| (bill.id.clone(), bill.status.as_str())
                    children=move |bill| {
                        let id = bill.id.clone();
                        let void = bill.status == BillStatus::Void;
                        let amount = format_price(bill.settlement.payable_minor, &currency.get_value());
                        view! {
                            <li>
                                <button type="button" class="bill-row" class:void=void
                                    data-testid="bill-row" data-number=bill.number.clone()
                                    on:click=move |_| open(id.clone())>
                                    <span class="number">{bill.number.clone()}</span>
                                    <span class="when">{date_time(bill.created_at_millis)}</span>
                                    <span class="status">{void.then_some(t(Msg::BillsVoid))}</span>
                                    <span class="amount">{amount}</span>
                                </button>
                            </li>
                        }
                    }/>
            </ul>
            <Show when=move || more.get()>
                <button type="button" class="secondary" data-testid="more-bills"
                    on:click=move |_| load(bills.with_untracked(|b| b.last().map(|b| b.id.clone())))>
                    {t(Msg::BillsMore)}
                </button>
            </Show>
            {move || opened.get().map(|completed| view! {
                <BillDetail driver=driver completed=completed
                    on_changed=move |after: CompletedBill| {
                        let changed = after.bill.clone();
                        bills.update(|bills| {
                            if let Some(shown) = bills.iter_mut().find(|b| b.id == changed.id) {
                                *shown = changed;
                            }
                        });
                        opened.set(Some(after));
                    }
                    on_close=move |_| opened.set(None)/>
            })}
        </section>
    }
}

/// One bill opened from the list: its lines and totals, and "Void bill" and "Refund".
#[component]
fn BillDetail(
    driver: StoredValue<SyncDriver, LocalStorage>,
    completed: CompletedBill,
    #[prop(into)] on_changed: Callback<CompletedBill>,
    #[prop(into)] on_close: Callback<()>,
) -> impl IntoView {
    let bill = completed.bill.clone();
    let currency = completed.settings.currency.clone();
    let money = move |minor: i64| format_price(minor, &currency);
    view! {
        <div class="receipt-overlay">
            <section class="bill-detail" role="region" aria-label=bill.number.clone()
                data-testid="bill-detail" data-bill-id=bill.id.clone()>
                <h3>{bill.number.clone()}</h3>
                <p class="receipt-meta">{date_time(bill.created_at_millis)}
                    {bill.cashier.clone().map(|c| format!(" · {c}"))}</p>
                <table class="receipt-lines">
                    <tbody>
                        {bill.lines.iter().zip(bill.totals.lines.iter()).map(|(line, amounts)| view! {
                            <tr data-testid="bill-line">
                                <td class="name">{line.name.clone()}</td>
                                <td class="amount">{money(amounts.total_minor)}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
                <p class="bill-total"><strong>{t(Msg::BillsTotal)} " " {money(bill.totals.total_minor)}</strong></p>
            </section>
            <div class="receipt-actions">
                <undo::BillUndo driver=driver completed=completed.clone() on_changed=on_changed/>
                <button type="button" class="secondary" data-testid="close-bill"
                    on:click=move |_| on_close.run(())>{t(Msg::BillsClose)}</button>
            </div>
        </div>
    }
}
