//! The products page (`/products`).

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::actions;
use crate::entities::StockMoveKind;
use crate::model::{Product, MAX_PRODUCT_NAME_CHARS};
use crate::money::{format_price, minor_digits, parse_price};
use crate::sync::SyncDriver;

/// The products page.
#[component]
pub fn ProductsPage(driver: StoredValue<SyncDriver, LocalStorage>) -> impl IntoView {
    view! {
        <AddProductForm driver=driver/>
        <ProductList driver=driver/>
    }
}

#[component]
fn AddProductForm(driver: StoredValue<SyncDriver, LocalStorage>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let price = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let saving = RwSignal::new(false);
    let currency = driver.with_value(|d| d.settings().currency.clone());
    let name_input = NodeRef::<leptos::html::Input>::new();

    let on_submit = move |event: SubmitEvent| {
        event.prevent_default();
        if saving.get_untracked() {
            return;
        }
        let typed_name = name.get_untracked().trim().to_owned();
        if typed_name.is_empty() {
            error.set(Some("Enter the product's name.".into()));
            return;
        }
        if typed_name.chars().count() > MAX_PRODUCT_NAME_CHARS {
            error.set(Some(format!(
                "Use at most {MAX_PRODUCT_NAME_CHARS} characters for the name."
            )));
            return;
        }
        let currency = driver.with_value(|d| d.settings().currency.clone());
        let price_minor = match parse_price(&price.get_untracked(), minor_digits(&currency)) {
            Ok(minor) => minor,
            Err(problem) => {
                error.set(Some(problem.to_string()));
                return;
            }
        };
        let driver = driver.get_value();
        saving.set(true);
        spawn_local(async move {
            match actions::products::add_product(&driver, &typed_name, price_minor).await {
                Ok(_) => {
                    error.set(None);
                    name.set(String::new());
                    price.set(String::new());
                    if let Some(input) = name_input.get_untracked() {
                        let _ = input.focus();
                    }
                }
                // Nothing was saved (one transaction); the typed values stay for another try.
                Err(problem) => error.set(Some(problem.to_string())),
            }
            saving.set(false);
        });
    };

    view! {
        <form class="add-product" on:submit=on_submit data-testid="add-product-form">
            <h2>"Add a product"</h2>
            <label>
                "Name"
                <input type="text" node_ref=name_input data-testid="product-name" autocomplete="off"
                    prop:value=move || name.get()
                    on:input=move |ev| name.set(event_target_value(&ev))/>
            </label>
            <label>
                {format!("Price ({currency})")}
                <input type="text" inputmode="decimal" data-testid="product-price" autocomplete="off"
                    prop:value=move || price.get()
                    on:input=move |ev| price.set(event_target_value(&ev))/>
            </label>
            <button type="submit" data-testid="add-product" disabled=move || saving.get()>
                "Add"
            </button>
            <Show when=move || error.with(Option::is_some)>
                <p class="form-error" role="alert" data-testid="form-error">
                    {move || error.get().unwrap_or_default()}
                </p>
            </Show>
        </form>
    }
}

#[component]
fn ProductList(driver: StoredValue<SyncDriver, LocalStorage>) -> impl IntoView {
    let products = driver.with_value(|d| d.products());
    view! {
        <section class="products">
            <h2>"Products " <span class="count" data-testid="product-count">{move || products.with(Vec::len)}</span></h2>
            <Show when=move || products.with(Vec::is_empty)>
                <p class="empty">"No products yet. Add the first one above."</p>
            </Show>
            <ul data-testid="product-list">
                // Keyed by id only: a row (and an edit in progress in it) survives a sync that
                // changes the product; the row reads the product's current values reactively.
                <For each=move || products.get() key=|p| p.id.clone()
                    children=move |product| {
                        let id = product.id.clone();
                        let current = Memo::new(move |_| {
                            products.with(|all| all.iter().find(|p| p.id == id).cloned())
                                .unwrap_or_else(|| product.clone())
                        });
                        view! { <ProductRow driver=driver product=current/> }
                    }
                />
            </ul>
        </section>
    }
}

/// One product: name, price and stock, with quick sale, stock receipt and editing.
#[component]
fn ProductRow(
    driver: StoredValue<SyncDriver, LocalStorage>,
    product: Memo<Product>,
) -> impl IntoView {
    let synced = move || product.with(|p| p.server_updated_at_millis.is_some());
    let editing = RwSignal::new(false);
    let name = RwSignal::new(String::new());
    let price = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let digits = move || product.with_untracked(|p| minor_digits(&p.currency));

    let move_stock = move |kind: StockMoveKind, quantity: i64| {
        let driver = driver.get_value();
        let product = product.get_untracked();
        spawn_local(async move {
            if let Err(problem) =
                actions::products::move_stock(&driver, &product, kind, quantity).await
            {
                error.set(Some(problem.to_string()));
            }
        });
    };
    let start_editing = move |_| {
        let (current_name, current_price) =
            product.with_untracked(|p| (p.name.clone(), p.price_minor));
        name.set(current_name);
        let scale = 10f64.powi(digits() as i32);
        price.set(format!(
            "{:.*}",
            digits() as usize,
            current_price as f64 / scale
        ));
        editing.set(true);
    };
    let save = move |event: SubmitEvent| {
        event.prevent_default();
        let typed_name = name.get_untracked().trim().to_owned();
        if typed_name.is_empty() {
            error.set(Some("Enter the product's name.".into()));
            return;
        }
        let price_minor = match parse_price(&price.get_untracked(), digits()) {
            Ok(minor) => minor,
            Err(problem) => {
                error.set(Some(problem.to_string()));
                return;
            }
        };
        let driver = driver.get_value();
        let product = product.get_untracked();
        spawn_local(async move {
            match actions::products::edit_product(&driver, &product, &typed_name, price_minor).await
            {
                Ok(()) => {
                    error.set(None);
                    editing.set(false);
                }
                Err(problem) => error.set(Some(problem.to_string())),
            }
        });
    };

    view! {
        <li data-testid="product-row" data-synced=move || synced().to_string()
            data-product-id=product.with_untracked(|p| p.id.clone())>
            <Show when=move || !editing.get()
                fallback=move || view! {
                    <form class="edit-product" on:submit=save>
                        <input type="text" data-testid="edit-name" prop:value=move || name.get()
                            on:input=move |ev| name.set(event_target_value(&ev))/>
                        <input type="text" inputmode="decimal" data-testid="edit-price"
                            prop:value=move || price.get()
                            on:input=move |ev| price.set(event_target_value(&ev))/>
                        <button type="submit" data-testid="save-edit">"Save"</button>
                        <button type="button" class="secondary" on:click=move |_| editing.set(false)>"Cancel"</button>
                    </form>
                }>
                <span class="name" data-testid="product-row-name">{move || product.with(|p| p.name.clone())}</span>
                <span class="stock" data-testid="product-stock" title="Stock on hand">
                    {move || product.with(|p| p.stock_on_hand)}
                </span>
                <span class="price" data-testid="product-price-shown">
                    {move || product.with(|p| format_price(p.price_minor, &p.currency))}
                </span>
                <Show when=move || !synced()>
                    <span class="unsynced" title="Not yet on the server">"●"</span>
                </Show>
                <span class="actions">
                    <button type="button" data-testid="sell-one"
                        on:click=move |_| move_stock(StockMoveKind::Sale, -1)>"Sell 1"</button>
                    <button type="button" class="secondary" data-testid="receive-ten"
                        on:click=move |_| move_stock(StockMoveKind::Receive, 10)>"+10"</button>
                    <button type="button" class="secondary" data-testid="edit-product"
                        on:click=start_editing>"Edit"</button>
                </span>
            </Show>
            <Show when=move || error.with(Option::is_some)>
                <p class="form-error" role="alert" data-testid="row-error">{move || error.get().unwrap_or_default()}</p>
            </Show>
        </li>
    }
}
