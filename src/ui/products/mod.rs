//! The products page (`/products`): search by name, SKU or barcode, category and low-stock
//! filters, the virtualized list ([`list`]), adding and editing ([`form`]), receiving and
//! adjusting stock ([`stock`]), and CSV import and export ([`csv_file`]).
//!
//! Everything on it costs what it shows: the list reads its visible pages from an index, a
//! code typed in the search is one index get, and a change repaints the rows it touched.

pub mod csv_file;
pub mod form;
pub mod list;
pub mod stock;

use crate::i18n::{count_text, t, Msg};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::model::Product;
use crate::money::format_price;
use crate::storage::ProductQuery;
use crate::sync::{ChangesSince, SyncDriver};
use csv_file::CsvImportExport;
use form::ProductForm;
use list::{format_stock, ProductList};
use stock::StockForm;

/// The products page.
#[component]
pub fn ProductsPage(driver: StoredValue<SyncDriver, LocalStorage>) -> impl IntoView {
    driver.with_value(|d| d.show_collection(Some("products")));
    let search = RwSignal::new(String::new());
    let category = RwSignal::new(String::new());
    let low_stock_only = RwSignal::new(false);
    let total = RwSignal::new(0u32);
    let editing = RwSignal::new(None::<Product>);
    let stock_for = RwSignal::new(None::<Product>);
    let categories = RwSignal::new(Vec::<String>::new());
    // A typed code that is a product's barcode or SKU: that product, found by one index get.
    let code_match = RwSignal::new(None::<Product>);

    let query = Memo::new(move |_| ProductQuery {
        name_prefix: search.get().trim().to_owned(),
        category: Some(category.get()).filter(|c| !c.is_empty()),
        low_stock_only: low_stock_only.get(),
    });

    let read_categories = move || {
        let driver = driver.get_value();
        spawn_local(async move {
            if let Ok(found) = driver.store().product_categories().await {
                categories.try_set(found);
            }
        });
    };
    read_categories();
    driver.with_value(|d| d.changes()).watch(move |since| {
        let touches_products = match &since {
            ChangesSince::Nothing => false,
            ChangesSince::Everything => true,
            ChangesSince::Documents(changed) => changed.touches("products"),
        };
        if touches_products {
            read_categories();
        }
    });
    Effect::new(move |_| {
        let code = search.get().trim().to_owned();
        let driver = driver.get_value();
        spawn_local(async move {
            let store = driver.store();
            let found = match store.product_by_barcode(&code).await {
                Ok(Some(product)) => Some(product),
                _ => store.product_by_sku(&code).await.ok().flatten(),
            };
            // A later keystroke may have answered first.
            if search.with_untracked(|typed| typed.trim() == code) {
                code_match.try_set(found);
            }
        });
    });

    let on_edit = Callback::new(move |product: Product| {
        stock_for.set(None);
        editing.set(Some(product));
    });
    let on_stock = Callback::new(move |product: Product| {
        editing.set(None);
        stock_for.set(Some(product));
    });

    view! {
        <ProductForm driver=driver editing=editing/>
        <StockForm driver=driver product=stock_for/>
        <section class="catalogue">
            <div class="toolbar">
                <input type="search" data-testid="product-search" aria-label=t(Msg::ProductsSearchLabel)
                    placeholder=t(Msg::ProductsSearchPlaceholder) autocomplete="off"
                    prop:value=move || search.get()
                    on:input=move |ev| search.set(event_target_value(&ev))/>
                <select data-testid="filter-category" aria-label=t(Msg::ProductsCategory)
                    prop:value=move || category.get()
                    on:change=move |ev| category.set(event_target_value(&ev))>
                    <option value="">{t(Msg::ProductsAllCategories)}</option>
                    <For each=move || categories.get() key=|c| c.clone()
                        children=|c| view! { <option value=c.clone()>{c.clone()}</option> }/>
                </select>
                <label class="check">
                    <input type="checkbox" data-testid="filter-low-stock"
                        prop:checked=move || low_stock_only.get()
                        on:change=move |ev| low_stock_only.set(event_target_checked(&ev))/>
                    {t(Msg::ProductsLowStockOnly)}
                </label>
                <CsvImportExport driver=driver/>
            </div>
            {move || code_match.get().map(|product| {
                let for_stock = product.clone();
                let for_edit = product.clone();
                view! {
                    <p class="code-match" data-testid="code-match">
                        {t(Msg::ProductsCodeMatch)} " " <strong>{product.name.clone()}</strong>
                        {format!(" · {} {} · {}", format_stock(&product), crate::i18n::unit_name(product.unit),
                            format_price(product.price_minor, &product.currency))}
                        <button type="button" class="secondary" on:click=move |_| on_stock.run(for_stock.clone())>{t(Msg::ProductsStock)}</button>
                        <button type="button" class="secondary" on:click=move |_| on_edit.run(for_edit.clone())>{t(Msg::ProductsEdit)}</button>
                    </p>
                }
            })}
            <h2>{t(Msg::ProductsTitle)} " " <span class="count" data-testid="product-count">{move || count_text(total.get() as usize)}</span></h2>
            <ProductList driver=driver query=query total=total on_edit=on_edit on_stock=on_stock/>
        </section>
    }
}
