//! The bills page (`/bills`): the tablet's bills (its own and those pulled from other tablets),
//! newest first, in a virtualized list ([`list`]: a count and the pages in view, never every
//! bill), found by bill number as you type (a range of the `number` index, a page of it), and
//! one bill opened with its lines and "Void bill" and "Refund" ([`undo`]). The bill opened is
//! read again when it, or a refund, changes (a refund from another tablet, a void the server
//! refused), so it offers only what is still possible.

pub mod list;
pub mod undo;

use crate::i18n::{t, Msg};
use crate::ui::problems::ProblemText;
use counterbook_shop::Bill;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::actions::sale::{open_bill, CompletedBill};
use crate::money::format_price;
use crate::sync::{ChangesSince, SyncDriver};
use crate::ui::problems::Shown;

/// Bills found by number shown at once.
const FOUND_LIMIT: u32 = 25;

fn date_time(millis: i64) -> String {
    crate::i18n::format_date_time(millis)
}

#[component]
pub fn BillsPage(driver: StoredValue<SyncDriver, LocalStorage>) -> impl IntoView {
    // Bills from other tablets arrive as they are made.
    driver.with_value(|d| d.show_collection(Some(counterbook_shop::records::BILLS_COLLECTION)));
    let found = RwSignal::new(Vec::<Bill>::new());
    let query = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<String>);
    let opened = RwSignal::new(None::<CompletedBill>);
    let find = move || {
        spawn_local(async move {
            let typed = query.get_untracked().trim().to_uppercase();
            if typed.is_empty() {
                return found.set(Vec::new());
            }
            match driver
                .get_value()
                .store()
                .bills_with_number_prefix(&typed, FOUND_LIMIT)
                .await
            {
                Ok(bills) => {
                    found.set(bills);
                    problem.set(None);
                }
                Err(error) => problem.set(Some(error.shown())),
            }
        });
    };
    let open = Callback::new(move |id: String| {
        spawn_local(async move {
            match open_bill(&driver.get_value(), &id).await {
                // Read again unchanged, it stays as it is (a form being filled in included).
                Ok(found) if opened.with_untracked(|shown| *shown == found) => {}
                Ok(found) => opened.set(found),
                Err(error) => problem.set(Some(error.shown())),
            }
        });
    });
    follow_opened_bill(driver, opened, move |shown| problem.set(Some(shown)));
    // The bills found, read again when anything changes.
    driver.with_value(|d| d.changes()).watch(move |since| {
        if !matches!(since, ChangesSince::Nothing) && !query.with_untracked(|q| q.trim().is_empty())
        {
            find();
        }
    });
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
                        find();
                    }/>
            </label>
            {move || problem.get().map(|p| view! { <p class="form-error" role="alert"><ProblemText text=p/></p> })}
            <Show when=move || searching()
                fallback=move || view! { <list::BillList driver=driver on_open=open/> }>
                <Show when=move || found.with(Vec::is_empty)>
                    <p class="help" data-testid="no-bills">{t(Msg::BillsNotFound)}</p>
                </Show>
                <ul class="bill-list" data-testid="bill-list">
                    <For each=move || found.get() key=|bill| (bill.id.clone(), bill.status.as_str())
                        children=move |bill| view! {
                            <list::BillRow bill=bill top=None currency=currency.get_value() on_open=open/>
                        }/>
                </ul>
            </Show>
            {move || opened.get().map(|completed| view! {
                <BillDetail driver=driver completed=completed
                    on_changed=move |after: CompletedBill| opened.set(Some(after))
                    on_close=move |_| opened.set(None)/>
            })}
        </section>
    }
}

/// Keeps the bill opened in `opened` (the bills page's, the counter's receipt) as the store
/// has it, for as long as the calling component lives: read again when it, or any refund,
/// changes here (a refund from another tablet, a void or refund the server refused and this
/// tablet undid), so that it says so and offers only what is still possible. What is read
/// again replaces the bill, its payments, its refunds and why a void was refused; the customer
/// and the shop profile shown stay (a receipt shows the customer's balance as the sale left
/// it). Read again unchanged ([`same_bill_state`]: so also when the sale's own unit lands and
/// its documents are read back), it stays as it is (a form being filled in included). `problem`
/// gets what stopped a read, as shown.
pub fn follow_opened_bill(
    driver: StoredValue<SyncDriver, LocalStorage>,
    opened: RwSignal<Option<CompletedBill>>,
    problem: impl Fn(String) + Copy + 'static,
) {
    let opened_id =
        move || opened.with_untracked(|opened| opened.as_ref().map(|c| c.bill.id.clone()));
    driver.with_value(|d| d.changes()).watch(move |since| {
        let Some(id) = opened_id() else {
            return;
        };
        let again = match &since {
            ChangesSince::Nothing => false,
            ChangesSince::Everything => true,
            ChangesSince::Documents(changed) => {
                changed.contains(counterbook_shop::records::BILLS_COLLECTION, &id)
                    || changed.touches(counterbook_shop::refunds::REFUNDS_COLLECTION)
            }
        };
        if !again {
            return;
        }
        spawn_local(async move {
            let read = match open_bill(&driver.get_value(), &id).await {
                Ok(Some(read)) => read,
                Ok(None) => return,
                Err(error) => return problem(error.shown()),
            };
            // Closed, or another bill opened, meanwhile: that one stands.
            if opened_id().as_deref() != Some(id.as_str()) {
                return;
            }
            let Some(shown) = opened.get_untracked() else {
                return;
            };
            if !same_bill_state(&read, &shown) {
                opened.set(Some(CompletedBill {
                    customer: shown.customer,
                    settings: shown.settings,
                    ..read
                }));
            }
        });
    });
}

/// Whether two reads of a bill agree on the bill, its payments (in any order: the store reads
/// them by id, a sale lists them as tendered), its refunds and why a void was refused.
fn same_bill_state(read: &CompletedBill, shown: &CompletedBill) -> bool {
    fn payments_by_id(completed: &CompletedBill) -> Vec<&counterbook_shop::PaymentRecord> {
        let mut payments: Vec<_> = completed.payments.iter().collect();
        counterbook_firestore_wire::sort::sort_by(&mut payments, |a, b| a.id.cmp(&b.id));
        payments
    }
    read.bill == shown.bill
        && read.refunds == shown.refunds
        && read.refused_void == shown.refused_void
        && payments_by_id(read) == payments_by_id(shown)
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
                // What was paid: the total after the cash rounding, as the receipt's total and
                // the list's row say.
                <p class="bill-total" data-testid="bill-total"><strong>{t(Msg::BillsTotal)} " " {money(bill.settlement.payable_minor)}</strong></p>
            </section>
            <div class="receipt-actions">
                <undo::BillUndo driver=driver completed=completed.clone() on_changed=on_changed/>
                <button type="button" class="secondary" data-testid="close-bill"
                    on:click=move |_| on_close.run(())>{t(Msg::BillsClose)}</button>
            </div>
        </div>
    }
}
