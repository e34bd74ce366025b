//! The virtualized list of the bills page: the tablet's bills newest first, however many there
//! are, with only the rows in view (and a few beyond) in the DOM, in a scroller as tall as the
//! whole list. Rows are read a page at a time from the bills' keys (UUID v7: the order of
//! time): after the row before the page when that one is loaded (a cursor), by offset for a
//! jump. So the page costs what it shows, never what the shop holds: a count, and the pages in
//! view.
//!
//! A change to bills (one voided here, one pulled from another tablet) reads the count and the
//! pages in view again, keeping the rows shown until their page arrives.

use counterbook_shop::{Bill, BillStatus};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::i18n::{t, tn, Msg};
use crate::money::format_price;
use crate::sync::{ChangesSince, SyncDriver};
use crate::ui::virtual_list::VirtualList;

/// Every row has this height, so a row's place is its position times this.
pub const ROW_HEIGHT_PX: f64 = 52.0;
/// Rows read at once.
const PAGE_ROWS: u32 = 30;
/// The bills store, as the change feed names it.
const BILLS: &str = "bills";

/// The list's state; cheap to copy.
#[derive(Clone, Copy)]
struct ListState {
    driver: StoredValue<SyncDriver, LocalStorage>,
    list: VirtualList<Bill>,
}

impl ListState {
    fn load_visible_pages(&self) {
        for first in self.list.pages_to_read() {
            self.load_page(first);
        }
    }

    fn load_page(&self, first: u32) {
        let list = self.list;
        let generation = list.generation();
        let before = match first {
            0 => None,
            _ => list.row_at(first - 1, |bill| bill.id.clone()),
        };
        let count = list.total.get_untracked();
        let driver = self.driver.get_value();
        spawn_local(async move {
            let store = driver.store();
            let read = match (first, &before) {
                (0, _) => store.recent_bills(None, PAGE_ROWS).await,
                (_, Some(id)) => store.recent_bills(Some(id), PAGE_ROWS).await,
                (_, None) => store.bills_at_offset(first, PAGE_ROWS, count).await,
            };
            if !list.is_current(generation) {
                return;
            }
            match read {
                Ok(bills) => list.put_page(first, bills),
                Err(error) => driver.report_storage_error(error),
            }
        });
    }

    /// Reads the list again: its count, then the pages in view, the rows shown staying until
    /// their page arrives.
    fn reread(&self) {
        let state = *self;
        let generation = self.list.start_reading_again();
        let driver = self.driver.get_value();
        spawn_local(async move {
            match driver.store().count_bills().await {
                Ok(count) if state.list.is_current(generation) => {
                    state.list.set_count(count);
                    state.load_visible_pages();
                }
                Ok(_) => {}
                Err(error) => driver.report_storage_error(error),
            }
        });
    }
}

/// The tablet's bills, newest first; `on_open` opens one (by id).
#[component]
pub fn BillList(
    driver: StoredValue<SyncDriver, LocalStorage>,
    #[prop(into)] on_open: Callback<String>,
) -> impl IntoView {
    let list = VirtualList::new(ROW_HEIGHT_PX, PAGE_ROWS, RwSignal::new(0), 480.0);
    let state = ListState { driver, list };
    let scroller = NodeRef::<leptos::html::Div>::new();
    state.reread();
    // Scrolling: read the pages coming into view.
    Effect::new(move |_| {
        let _ = list.visible();
        state.load_visible_pages();
    });
    driver
        .get_value()
        .changes()
        .watch(move |since| match since {
            ChangesSince::Nothing => {}
            ChangesSince::Everything => state.reread(),
            ChangesSince::Documents(changed) if changed.touches(BILLS) => state.reread(),
            ChangesSince::Documents(_) => {}
        });
    let on_scroll = list.follow_scroller(scroller);
    let currency = StoredValue::new(driver.with_value(|d| d.settings().currency.clone()));
    let total = list.total;
    view! {
        <p class="help" data-testid="bill-count">{move || tn(Msg::BillsCount, total.get() as usize, &[])}</p>
        <Show when=move || total.get() == 0>
            <p class="help" data-testid="no-bills">{t(Msg::BillsNone)}</p>
        </Show>
        <div class="bill-scroller" node_ref=scroller on:scroll=on_scroll data-testid="bill-scroller">
            <ul class="bill-list bill-rows" data-testid="bill-list"
                style:height=move || list.height()>
                <For each=move || list.shown_rows()
                    key=|(position, bill)| (*position, bill.as_ref().map(|bill| (bill.id.clone(), bill.status.as_str())))
                    children=move |(position, bill)| {
                        let top = list.top_of(position);
                        match bill {
                            Some(bill) => view! {
                                <BillRow bill=bill top=Some(top) currency=currency.get_value() on_open=on_open/>
                            }.into_any(),
                            None => view! { <li class="loading" style:top=top>"…"</li> }.into_any(),
                        }
                    }
                />
            </ul>
        </div>
    }
}

/// One bill's row: number, when, void or not, amount; `top` places it in a virtualized list.
#[component]
pub fn BillRow(
    bill: Bill,
    top: Option<String>,
    currency: String,
    on_open: Callback<String>,
) -> impl IntoView {
    let id = bill.id.clone();
    let void = bill.status == BillStatus::Void;
    let amount = format_price(bill.settlement.payable_minor, &currency);
    view! {
        <li style:top=top>
            <button type="button" class="bill-row" class:void=void
                data-testid="bill-row" data-number=bill.number.clone()
                on:click=move |_| on_open.run(id.clone())>
                <span class="number">{bill.number.clone()}</span>
                <span class="when">{crate::i18n::format_date_time(bill.created_at_millis)}</span>
                <span class="status">{void.then_some(t(Msg::BillsVoid))}</span>
                <span class="amount">{amount}</span>
            </button>
        </li>
    }
}
