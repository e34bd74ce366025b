//! The virtualized list of the bills page: the tablet's bills newest first, however many there
//! are, with only the rows in view (and a few beyond) in the DOM, in a scroller as tall as the
//! whole list. Rows are read a page at a time from the bills' keys (UUID v7: the order of
//! time): after the row before the page when that one is loaded (a cursor), by offset for a
//! jump. So the page costs what it shows, never what the shop holds: a count, and the pages in
//! view.
//!
//! A change to bills (one voided here, one pulled from another tablet) reads the count and the
//! pages in view again, keeping the rows shown until their page arrives.

use std::collections::{BTreeMap, BTreeSet};

use counterbook_shop::{Bill, BillStatus};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::i18n::{t, tn, Msg};
use crate::money::format_price;
use crate::sync::{ChangesSince, SyncDriver};

/// Every row has this height, so a row's place is its position times this.
pub const ROW_HEIGHT_PX: f64 = 52.0;
/// Rows read at once.
const PAGE_ROWS: u32 = 30;
/// Rows kept in the DOM beyond each edge of the view.
const OVERSCAN_ROWS: u32 = 4;
/// The bills store, as the change feed names it.
const BILLS: &str = "bills";

/// The positions of a list of `total` rows in view when scrolled to `scroll_top` in a view
/// `viewport_height` high, overscan included.
fn positions_in_view(total: u32, scroll_top: f64, viewport_height: f64) -> std::ops::Range<u32> {
    let first = (scroll_top / ROW_HEIGHT_PX).floor().max(0.0) as u32;
    let shown = (viewport_height / ROW_HEIGHT_PX).ceil() as u32 + 1;
    let start = first.saturating_sub(OVERSCAN_ROWS).min(total);
    let end = (first + shown + OVERSCAN_ROWS).min(total);
    start..end
}

/// The list's state; cheap to copy.
#[derive(Clone, Copy)]
struct ListState {
    driver: StoredValue<SyncDriver, LocalStorage>,
    total: RwSignal<u32>,
    rows: RwSignal<BTreeMap<u32, Bill>>,
    /// Pages asked for since the list was last (re)read.
    requested: StoredValue<BTreeSet<u32>>,
    /// Bumped when the list is read again; answers for an older generation are dropped.
    generation: StoredValue<u64>,
    scroll_top: RwSignal<f64>,
    viewport_height: RwSignal<f64>,
}

impl ListState {
    /// The positions in view, overscan included (tracked: a view or effect reading it runs
    /// again when the list scrolls or its count changes).
    fn visible(&self) -> std::ops::Range<u32> {
        positions_in_view(
            self.total.get(),
            self.scroll_top.get(),
            self.viewport_height.get(),
        )
    }

    fn load_visible_pages(&self) {
        let range = positions_in_view(
            self.total.get_untracked(),
            self.scroll_top.get_untracked(),
            self.viewport_height.get_untracked(),
        );
        if range.is_empty() {
            return;
        }
        for page in range.start / PAGE_ROWS..=(range.end - 1) / PAGE_ROWS {
            self.load_page(page);
        }
    }

    fn load_page(&self, page: u32) {
        let mut fresh = false;
        self.requested
            .update_value(|requested| fresh = requested.insert(page));
        if !fresh {
            return;
        }
        let state = *self;
        let generation = self.generation.get_value();
        let first = page * PAGE_ROWS;
        let before = match first {
            0 => None,
            _ => self
                .rows
                .with_untracked(|rows| rows.get(&(first - 1)).map(|bill| bill.id.clone())),
        };
        let driver = self.driver.get_value();
        spawn_local(async move {
            let store = driver.store();
            let read = match (first, &before) {
                (0, _) => store.recent_bills(None, PAGE_ROWS).await,
                (_, Some(id)) => store.recent_bills(Some(id), PAGE_ROWS).await,
                (_, None) => store.bills_at_offset(first, PAGE_ROWS).await,
            };
            if state.generation.get_value() != generation {
                return;
            }
            match read {
                Ok(bills) => state.rows.update(|rows| {
                    for (offset, bill) in bills.into_iter().enumerate() {
                        rows.insert(first + offset as u32, bill);
                    }
                }),
                Err(error) => driver.report_problem(&error.to_string()),
            }
        });
    }

    /// Reads the list again: its count, then the pages in view, the rows shown staying until
    /// their page arrives.
    fn reread(&self) {
        self.generation.update_value(|generation| *generation += 1);
        self.requested.update_value(BTreeSet::clear);
        let state = *self;
        let generation = self.generation.get_value();
        let driver = self.driver.get_value();
        spawn_local(async move {
            match driver.store().count_bills().await {
                Ok(count) if state.generation.get_value() == generation => {
                    state
                        .rows
                        .update(|rows| rows.retain(|position, _| *position < count));
                    state.total.set(count);
                    state.load_visible_pages();
                }
                Ok(_) => {}
                Err(error) => driver.report_problem(&error.to_string()),
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
    let state = ListState {
        driver,
        total: RwSignal::new(0),
        rows: RwSignal::new(BTreeMap::new()),
        requested: StoredValue::new(BTreeSet::new()),
        generation: StoredValue::new(0),
        scroll_top: RwSignal::new(0.0),
        viewport_height: RwSignal::new(480.0),
    };
    let scroller = NodeRef::<leptos::html::Div>::new();
    state.reread();
    // Scrolling: read the pages coming into view.
    Effect::new(move |_| {
        let _ = state.visible();
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
    let on_scroll = move |_| {
        if let Some(element) = scroller.get_untracked() {
            state.scroll_top.set(f64::from(element.scroll_top()));
            state
                .viewport_height
                .set(f64::from(element.client_height()).max(ROW_HEIGHT_PX));
        }
    };
    scroller.on_load(move |element| {
        state
            .viewport_height
            .set(f64::from(element.client_height()).max(ROW_HEIGHT_PX));
    });
    let shown_rows = move || {
        let range = state.visible();
        state.rows.with(|rows| {
            range
                .map(|position| (position, rows.get(&position).cloned()))
                .collect::<Vec<_>>()
        })
    };
    let currency = StoredValue::new(driver.with_value(|d| d.settings().currency.clone()));
    let total = state.total;
    view! {
        <p class="help" data-testid="bill-count">{move || tn(Msg::BillsCount, total.get() as usize, &[])}</p>
        <Show when=move || total.get() == 0>
            <p class="help" data-testid="no-bills">{t(Msg::BillsNone)}</p>
        </Show>
        <div class="bill-scroller" node_ref=scroller on:scroll=on_scroll data-testid="bill-scroller">
            <ul class="bill-list bill-rows" data-testid="bill-list"
                style:height=move || format!("{}px", f64::from(total.get()) * ROW_HEIGHT_PX)>
                <For each=shown_rows
                    key=|(position, bill)| (*position, bill.as_ref().map(|bill| (bill.id.clone(), bill.status.as_str())))
                    children=move |(position, bill)| {
                        let top = format!("{}px", f64::from(position) * ROW_HEIGHT_PX);
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
