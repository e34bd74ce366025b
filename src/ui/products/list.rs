//! The virtualized product list: only the rows in view (and a few beyond) are in the DOM, in a
//! scroller as tall as the whole list. Rows are read a page at a time from the query's index:
//! after the row before the page when that one is loaded (a cursor), by offset for a jump.
//!
//! A change repaints the rows it touched: the store's change feed names the products, the
//! shown ones among them are re-read by id and replaced in place. Only when rows shift (a
//! product enters or leaves the list, or moves in it) are the pages in view read again.

use crate::i18n::{t, Msg};
use std::collections::{BTreeMap, BTreeSet};

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::model::Product;
use crate::money::format_price;
use crate::storage::{ProductPosition, ProductQuery};
use crate::sync::{ChangesSince, SyncDriver};
use crate::ui::virtual_list::VirtualList;

/// Every row has this height, so a row's place is its position times this.
pub const ROW_HEIGHT_PX: f64 = 64.0;
/// Rows read at once.
const PAGE_ROWS: u32 = 40;
/// The products collection, as the change feed names it.
const PRODUCTS: &str = "products";

/// A loaded row: the product and the read that brought it. Reads are numbered as they start,
/// so a later read saw at least as new a store; the number also tells the row's views apart.
#[derive(Clone, Debug)]
struct Row {
    product: Product,
    read: u64,
}

/// The list's state; cheap to copy.
#[derive(Clone, Copy)]
struct ListState {
    driver: StoredValue<SyncDriver, LocalStorage>,
    query: Memo<ProductQuery>,
    list: VirtualList<Row>,
    reads: StoredValue<u64>,
}

impl ListState {
    /// The number of a read starting now.
    fn next_read(&self) -> u64 {
        self.reads.update_value(|reads| *reads += 1);
        self.reads.get_value()
    }

    fn load_visible_pages(&self) {
        for first in self.list.pages_to_read() {
            self.load_page(first);
        }
    }

    fn load_page(&self, first: u32) {
        let state = *self;
        let generation = self.list.generation();
        let read = self.next_read();
        let query = self.query.get_untracked();
        let after = match first {
            0 => None,
            _ => self
                .list
                .row_at(first - 1, |row| ProductPosition::of(&row.product)),
        };
        let count = self.list.total.get_untracked();
        let driver = self.driver.get_value();
        spawn_local(async move {
            let store = driver.store();
            let products = match (first, &after) {
                (0, _) => store.products_after(&query, None, PAGE_ROWS).await,
                (_, Some(position)) => {
                    store
                        .products_after(&query, Some(position), PAGE_ROWS)
                        .await
                }
                (_, None) => {
                    store
                        .products_at_offset(&query, first, PAGE_ROWS, count)
                        .await
                }
            };
            if !state.list.is_current(generation) {
                return;
            }
            match products {
                Ok(products) => state.list.put_page_keeping(
                    first,
                    products.into_iter().map(|product| Row { product, read }),
                    |shown, page| shown.product.id == page.product.id && shown.read > page.read,
                ),
                Err(error) => driver.report_storage_error(error),
            }
        });
    }

    /// Reads the list again: its count, then the pages in view. With `keep_rows` the rows
    /// shown stay until their page arrives (no flicker when a change shifts them).
    fn reread(&self, keep_rows: bool) {
        let generation = self.list.start_reading_again();
        if !keep_rows {
            self.list.rows.set(BTreeMap::new());
        }
        let state = *self;
        let query = self.query.get_untracked();
        let driver = self.driver.get_value();
        spawn_local(async move {
            match driver.store().count_products(&query).await {
                Ok(count) if state.list.is_current(generation) => {
                    state.list.set_count(count);
                    state.load_visible_pages();
                }
                Ok(_) => {}
                Err(error) => driver.report_storage_error(error),
            }
        });
    }

    /// The products in `ids` changed: repaint the shown ones in place, or read the view again
    /// if rows shift.
    fn products_changed(&self, ids: Vec<String>) {
        let state = *self;
        let query = self.query.get_untracked();
        let driver = self.driver.get_value();
        let generation = self.list.generation();
        let read = self.next_read();
        let shown: BTreeSet<String> = self
            .list
            .rows
            .with_untracked(|rows| rows.values().map(|row| row.product.id.clone()).collect());
        let (ids, others_unread) = changed_ids_to_read(ids, |id| shown.contains(id));
        spawn_local(async move {
            let products = match driver.store().products_by_ids(&ids).await {
                Ok(products) => products,
                Err(error) => return driver.report_storage_error(error),
            };
            if !state.list.is_current(generation) {
                return;
            }
            // The rows as they are now: pages may have arrived while the products were read.
            let (replaced, shifts) = state.list.rows.with_untracked(|rows| {
                repaint_in_place(rows, &ids, products, read, |p| query.matches(p))
            });
            if !replaced.is_empty() {
                state.list.rows.update(|rows| rows.extend(replaced));
            }
            if shifts || others_unread {
                state.reread(true);
            }
        });
    }
}

/// What a change to `ids`, read back as `products` by read number `read`, does to the loaded
/// `rows`: the rows it replaces in place (the same product at the same place in the list, at
/// every position it holds now), and whether rows shift (a product entered or left the list,
/// or moved in it), so the view is read again. A row brought by a later read is newer than
/// what was read here and is left alone.
fn repaint_in_place(
    rows: &BTreeMap<u32, Row>,
    ids: &[String],
    products: Vec<Product>,
    read: u64,
    matches: impl Fn(&Product) -> bool,
) -> (Vec<(u32, Row)>, bool) {
    let mut by_id = BTreeMap::new();
    by_id.extend(products.into_iter().map(|p| (p.id.clone(), p)));
    let mut replaced = Vec::new();
    let mut shifts = false;
    let mut shown = BTreeSet::new();
    for (position, row) in rows {
        let id = &row.product.id;
        if !ids.contains(id) {
            continue;
        }
        shown.insert(id.as_str());
        if row.read > read {
            continue;
        }
        match by_id.get(id) {
            Some(product) if matches(product) && product.name_key == row.product.name_key => {
                replaced.push((
                    *position,
                    Row {
                        product: product.clone(),
                        read,
                    },
                ));
            }
            // Left the list, was deleted, or moved in it.
            _ => shifts = true,
        }
    }
    for id in ids.iter().filter(|id| !shown.contains(id.as_str())) {
        // Not shown: it shifts the rows if it joins the list or may have left it.
        shifts |= by_id.get(id).is_none_or(&matches);
    }
    (replaced, shifts)
}

/// Changed products not shown that are read to learn whether they join the list, at most: a
/// larger change (an import's unit of 498 products, a pulled page) reads the view again
/// instead, which costs a count and the pages in view, not a read of every product changed.
const CHANGED_NOT_SHOWN_READ: usize = PAGE_ROWS as usize;

/// Which of the changed `ids` to read: every shown one (repainted in place), and the others
/// only when they are few; `true` when others were left unread.
fn changed_ids_to_read(ids: Vec<String>, is_shown: impl Fn(&str) -> bool) -> (Vec<String>, bool) {
    let (mut read, others): (Vec<String>, Vec<String>) =
        ids.into_iter().partition(|id| is_shown(id));
    if others.len() > CHANGED_NOT_SHOWN_READ {
        return (read, true);
    }
    read.extend(others);
    (read, false)
}

/// The product list for `query`. `on_edit` and `on_stock` open the edit and stock forms.
#[component]
pub fn ProductList(
    driver: StoredValue<SyncDriver, LocalStorage>,
    query: Memo<ProductQuery>,
    total: RwSignal<u32>,
    on_edit: Callback<Product>,
    on_stock: Callback<Product>,
) -> impl IntoView {
    let list = VirtualList::new(ROW_HEIGHT_PX, PAGE_ROWS, total, 640.0);
    let state = ListState {
        driver,
        query,
        list,
        reads: StoredValue::new(0),
    };
    let scroller = NodeRef::<leptos::html::Div>::new();

    // A new query: a new list, from the top.
    Effect::new(move |_| {
        query.track();
        list.scroll_to_top(scroller);
        state.reread(false);
    });
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
            ChangesSince::Everything => state.reread(true),
            ChangesSince::Documents(changed) => {
                let ids: Vec<String> = changed.ids(PRODUCTS).map(str::to_owned).collect();
                if !ids.is_empty() {
                    state.products_changed(ids);
                }
            }
        });
    let on_scroll = list.follow_scroller(scroller);

    view! {
        <div class="product-scroller" node_ref=scroller on:scroll=on_scroll>
            <Show when=move || total.get() == 0>
                <p class="empty">{t(Msg::ProductsNone)}</p>
            </Show>
            <ul data-testid="product-list" class="product-rows"
                style:height=move || list.height()>
                <For each=move || list.shown_rows()
                    key=|(position, row)| (*position, row.as_ref().map(|row| row.read))
                    children=move |(position, row)| {
                        let top = list.top_of(position);
                        match row {
                            Some(row) => view! {
                                <ProductRow product=row.product top=top on_edit=on_edit on_stock=on_stock/>
                            }.into_any(),
                            None => view! { <li class="loading" style:top=top>"…"</li> }.into_any(),
                        }
                    }
                />
            </ul>
        </div>
    }
}

/// A product's stock in its unit, in `Intl`'s digits: whole pieces (ungrouped, as counts
/// are), or kilograms and litres with three decimals.
pub fn format_stock(product: &Product) -> String {
    use counterbook_shop::receipt::ReceiptNumbers;
    if product.unit.is_loose() {
        crate::i18n::IntlNumbers.decimal(product.stock_on_hand, 3, 3)
    } else if product.stock_on_hand < 0 {
        format!(
            "-{}",
            crate::i18n::count_text(product.stock_on_hand.unsigned_abs() as usize)
        )
    } else {
        crate::i18n::count_text(product.stock_on_hand as usize)
    }
}

/// One row: name, codes, category, stock and price, with edit and stock buttons.
#[component]
fn ProductRow(
    product: Product,
    top: String,
    on_edit: Callback<Product>,
    on_stock: Callback<Product>,
) -> impl IntoView {
    let synced = product.server_updated_at_millis.is_some();
    let low = product.is_low_on_stock();
    let codes = product
        .sku
        .iter()
        .chain(product.barcodes.iter())
        .cloned()
        .collect::<Vec<_>>()
        .join(" · ");
    let stock = format_stock(&product);
    let unit = crate::i18n::unit_name(product.unit);
    let price = format_price(product.price_minor, &product.currency);
    let for_edit = product.clone();
    let for_stock = product.clone();
    view! {
        <li data-testid="product-row" data-synced=synced.to_string()
            data-product-id=product.id.clone() style:top=top class:low=low>
            <span class="name" data-testid="product-row-name">{product.name.clone()}</span>
            <span class="price" data-testid="product-price-shown">{price}</span>
            <span class="details">
                <span class="codes">{codes}</span>
                {product.category.clone().map(|category| view! { <span class="category">{category}</span> })}
            </span>
            <span class="stock-line">
                <span class="stock" data-testid="product-stock" title=t(Msg::ProductsStockOnHand)>{stock}</span>
                <span class="unit">{unit}</span>
                {low.then(|| view! { <span class="low-badge" data-testid="low-stock">{t(Msg::ProductsLow)}</span> })}
                {(!synced).then(|| view! { <span class="unsynced" title=t(Msg::ProductsNotSynced)>"●"</span> })}
            </span>
            <span class="actions">
                <button type="button" class="secondary" data-testid="stock-product"
                    on:click=move |_| on_stock.run(for_stock.clone())>{t(Msg::ProductsStock)}</button>
                <button type="button" class="secondary" data-testid="edit-product"
                    on:click=move |_| on_edit.run(for_edit.clone())>{t(Msg::ProductsEdit)}</button>
            </span>
        </li>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn rows(shown: &[(&str, &str, u64)]) -> BTreeMap<u32, Row> {
        let mut rows = BTreeMap::new();
        for (position, (id, name, read)) in shown.iter().enumerate() {
            let product = Product::new(id.to_string(), name, 1_000, "INR");
            rows.insert(
                position as u32,
                Row {
                    product,
                    read: *read,
                },
            );
        }
        rows
    }

    fn stocked(id: &str, name: &str, stock: i64) -> Product {
        let mut product = Product::new(id.to_owned(), name, 1_000, "INR");
        product.stock_on_hand = stock;
        product
    }

    /// Regression guard (a convergence e2e run showed "Sugar 1kg" in two rows): a change read
    /// while a product joining the list shifted the rows repainted the place it had held when
    /// the change arrived, beside the new page's row for it. It now repaints where the product
    /// is when its read lands, and never over a row a later read brought.
    #[wasm_bindgen_test]
    fn a_change_repaints_where_the_product_is_now_and_never_over_a_later_read() {
        let ids = vec!["sugar".to_owned()];
        // Read 2 (the change to Sugar) started before read 3 (the page with Atta) landed.
        let page_landed = rows(&[
            ("atta", "Atta 5kg", 3),
            ("chai", "Chai 250g", 3),
            ("sugar", "Sugar 1kg", 3),
        ]);
        let (replaced, shifts) = repaint_in_place(
            &page_landed,
            &ids,
            vec![stocked("sugar", "Sugar 1kg", 9)],
            2,
            |_| true,
        );
        assert!(
            replaced.is_empty(),
            "the page read later is newer: {replaced:?}"
        );
        assert!(!shifts);
        // Read 4 started after the page: it replaces Sugar where it is now, position 2.
        let (replaced, shifts) = repaint_in_place(
            &page_landed,
            &ids,
            vec![stocked("sugar", "Sugar 1kg", 9)],
            4,
            |_| true,
        );
        let places: Vec<_> = replaced
            .iter()
            .map(|(position, row)| (*position, row.product.stock_on_hand, row.read))
            .collect();
        assert_eq!(places, [(2, 9, 4)]);
        assert!(!shifts);
        // Renamed (it moves in the list), left the query, or gone: the view is read again.
        let renamed = stocked("sugar", "Brown sugar 1kg", 9);
        assert!(repaint_in_place(&page_landed, &ids, vec![renamed], 4, |_| true).1);
        assert!(
            repaint_in_place(
                &page_landed,
                &ids,
                vec![stocked("sugar", "Sugar 1kg", 9)],
                4,
                |_| false
            )
            .1
        );
        assert!(repaint_in_place(&page_landed, &ids, Vec::new(), 4, |_| true).1);
        // Not shown: it shifts the rows when it joins the list, or when it is gone.
        let salt = vec!["salt".to_owned()];
        assert!(
            repaint_in_place(
                &page_landed,
                &salt,
                vec![stocked("salt", "Salt 1kg", 1)],
                4,
                |_| true
            )
            .1
        );
        assert!(
            !repaint_in_place(
                &page_landed,
                &salt,
                vec![stocked("salt", "Salt 1kg", 1)],
                4,
                |_| false
            )
            .1
        );
        assert!(repaint_in_place(&page_landed, &salt, Vec::new(), 4, |_| true).1);
    }

    /// Regression guard (an import of 9,580 products into 100,000 read each changed product
    /// back by id for the list, every unit of 498 twice over, to repaint the 15 rows in view):
    /// a change reads the rows shown and at most a page of the others.
    #[wasm_bindgen_test]
    fn a_change_reads_the_rows_shown_and_a_page_of_the_others_at_most() {
        let ids =
            |range: std::ops::Range<usize>| range.map(|n| format!("p{n}")).collect::<Vec<_>>();
        let shown = |id: &str| matches!(id, "p1" | "p2" | "p3");
        let (read, unread) = changed_ids_to_read(ids(0..498), shown);
        assert_eq!(read, ["p1", "p2", "p3"]);
        assert!(unread, "the others left unread: the view is read again");
        let (read, unread) = changed_ids_to_read(ids(0..10), shown);
        assert_eq!(read.len(), 10);
        assert!(!unread);
        let (read, unread) = changed_ids_to_read(ids(2..2 + 1 + CHANGED_NOT_SHOWN_READ), shown);
        assert_eq!(read.len(), 2 + CHANGED_NOT_SHOWN_READ - 1);
        assert!(!unread, "a page of others is still read");
    }
}
