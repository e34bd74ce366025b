//! The screens. Components read the driver's signals and call its methods; they never touch
//! storage or the network themselves.

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::entities::StockMoveKind;
use crate::model::Product;
use crate::model::MAX_PRODUCT_NAME_CHARS;
use crate::money::{format_price, minor_digits, parse_price};
use crate::settings::Settings;
use crate::sync::driver::{SyncDriver, SyncStatus};

/// The whole app, with settings from the URL and `localStorage`.
#[component]
pub fn App() -> impl IntoView {
    view! { <Counterbook settings=Settings::load()/> }
}

enum Startup {
    Opening,
    Ready(SyncDriver),
    Failed(String),
}

/// The app for explicit settings (tests mount this with their own database name).
#[component]
pub fn Counterbook(settings: Settings) -> impl IntoView {
    let startup = RwSignal::new_local(Startup::Opening);
    spawn_local(async move {
        let next = match SyncDriver::start(settings).await {
            Ok(driver) => Startup::Ready(driver),
            Err(error) => Startup::Failed(error.to_string()),
        };
        startup.set(next);
    });
    move || {
        startup.with(|state| match state {
            Startup::Opening => view! { <p class="notice">"Opening the shop…"</p> }.into_any(),
            Startup::Failed(message) => view! {
                <p class="notice error" data-testid="startup-error">
                    "Counterbook cannot start: " {message.clone()}
                </p>
            }
            .into_any(),
            Startup::Ready(driver) => view! { <Shop driver=driver.clone()/> }.into_any(),
        })
    }
}

#[component]
fn Shop(driver: SyncDriver) -> impl IntoView {
    let status = driver.status();
    let shop_name = driver.settings().shop_id.clone();
    let driver = StoredValue::new_local(driver);
    view! {
        <header class="topbar">
            <h1>"Counterbook"</h1>
            <span class="shop">{shop_name}</span>
            <SyncBadge status=status/>
        </header>
        <main>
            <SyncProblems driver=driver/>
            <ConflictInbox driver=driver/>
            <AddProductForm driver=driver/>
            <ProductList driver=driver/>
            <StatusPanel status=status/>
        </main>
    }
}

/// "Online · 0 pending" / "Offline · 3 pending" in the header.
#[component]
fn SyncBadge(status: RwSignal<SyncStatus>) -> impl IntoView {
    let state = move || {
        status.with(|s| {
            if !s.browser_online {
                ("offline", "Offline")
            } else if s.paused_for_sign_in {
                ("paused", "Sign in needed")
            } else if !s.server_reachable {
                ("unreachable", "Server unreachable")
            } else {
                ("online", "Online")
            }
        })
    };
    view! {
        <span class=move || format!("badge {}", state().0) data-testid="sync-badge"
            data-state=move || state().0
            data-leader=move || status.with(|s| s.leader.to_string())
            data-realtime=move || status.with(|s| s.realtime.to_string())
            title=move || if status.with(|s| s.leader) {
                "This tab syncs for every tab of this browser."
            } else {
                "Another tab of this browser syncs; this one follows it."
            }>
            <span data-testid="connection">{move || state().1}</span>
            " · "
            <span data-testid="pending-count">{move || status.with(|s| s.pending)}</span>
            " pending"
        </span>
    }
}

/// The last sync error and any dead letters, with retry and discard.
#[component]
fn SyncProblems(driver: StoredValue<SyncDriver, LocalStorage>) -> impl IntoView {
    let status = driver.with_value(|d| d.status());
    view! {
        <Show when=move || status.with(|s| s.last_error.is_some())>
            <p class="sync-error" data-testid="sync-error" role="status">
                {move || status.with(|s| s.last_error.clone().unwrap_or_default())}
            </p>
        </Show>
        <Show when=move || status.with(|s| !s.dead_letters.is_empty())>
            <section class="dead-letters" data-testid="dead-letters">
                <h2>"Changes the server refused"</h2>
                <p>"They are kept on this tablet. Retry them, or discard them if they are wrong."</p>
                <ul>
                    <For each=move || status.with(|s| s.dead_letters.clone())
                        key=|dead| dead.unit_id.clone()
                        children=move |dead| {
                            let retry_id = dead.unit_id.clone();
                            let discard_id = dead.unit_id.clone();
                            view! {
                                <li data-testid="dead-letter">
                                    <strong>{dead.label}</strong>
                                    <span class="reason" data-testid="dead-letter-reason">{dead.reason}</span>
                                    <button data-testid="retry-dead-letter"
                                        on:click=move |_| driver.with_value(|d| d.retry_dead_letter(retry_id.clone()))>
                                        "Retry"
                                    </button>
                                    <button data-testid="discard-dead-letter"
                                        on:click=move |_| driver.with_value(|d| d.discard_dead_letter(discard_id.clone()))>
                                        "Discard"
                                    </button>
                                </li>
                            }
                        }
                    />
                </ul>
            </section>
        </Show>
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
            match driver.add_product(&typed_name, price_minor).await {
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
            if let Err(problem) = driver.move_stock(&product, kind, quantity).await {
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
            match driver
                .edit_product(&product, &typed_name, price_minor)
                .await
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

/// The conflict inbox: changes that lost to another tablet's, and broken business rules.
#[component]
fn ConflictInbox(driver: StoredValue<SyncDriver, LocalStorage>) -> impl IntoView {
    let conflicts = driver.with_value(|d| d.conflicts());
    let products = driver.with_value(|d| d.products());
    // Entries name documents by path; people know products by name.
    let subject = move |path: &str| {
        let id = path.rsplit('/').next().unwrap_or_default().to_owned();
        products
            .with(|all| all.iter().find(|p| p.id == id).map(|p| p.name.clone()))
            .unwrap_or_else(|| path.to_owned())
    };
    view! {
        <Show when=move || conflicts.with(|c| !c.is_empty())>
            <section class="conflicts" data-testid="conflicts">
                <h2>"Needs a look"</h2>
                <ul>
                    <For each=move || conflicts.get() key=|entry| entry.id.clone()
                        children=move |entry| {
                            let id = entry.id.clone();
                            let reapply = entry.clone();
                            let can_reapply = entry.local_value.is_some();
                            view! {
                                <li data-testid="conflict" data-kind=format!("{:?}", entry.kind)>
                                    <span>
                                        <strong>{subject(&entry.path)}</strong>
                                        ": "
                                        {entry.explanation.clone()}
                                    </span>
                                    {can_reapply.then(|| view! {
                                        <button type="button" data-testid="reapply-conflict"
                                            on:click=move |_| {
                                                let driver = driver.get_value();
                                                let entry = reapply.clone();
                                                spawn_local(async move { driver.reapply_conflict(&entry).await; });
                                            }>"Use mine"</button>
                                    })}
                                    <button type="button" class="secondary" data-testid="dismiss-conflict"
                                        on:click=move |_| {
                                            let driver = driver.get_value();
                                            let id = id.clone();
                                            spawn_local(async move { driver.dismiss_conflict(&id).await; });
                                        }>"OK"</button>
                                </li>
                            }
                        }
                    />
                </ul>
            </section>
        </Show>
    }
}

/// What the sync engine is doing, for the curious and for support calls.
#[component]
fn StatusPanel(status: RwSignal<SyncStatus>) -> impl IntoView {
    let time = |millis: Option<i64>| {
        millis
            .map(|m| {
                let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(m as f64));
                String::from(date.to_locale_time_string("default"))
            })
            .unwrap_or_else(|| "never".into())
    };
    view! {
        <details class="status-panel" data-testid="status-panel">
            <summary>"Sync details"</summary>
            <dl>
                <dt>"This tab"</dt>
                <dd>{move || if status.with(|s| s.leader) { "syncs for this browser" } else { "follows the tab that syncs" }}</dd>
                <dt>"Waiting to send"</dt><dd data-testid="status-pending">{move || status.with(|s| s.pending)}</dd>
                <dt>"Sending now"</dt><dd data-testid="status-in-flight">{move || status.with(|s| s.in_flight)}</dd>
                <dt>"Refused"</dt><dd>{move || status.with(|s| s.dead_letters.len())}</dd>
                <dt>"Conflicts"</dt><dd data-testid="status-conflicts">{move || status.with(|s| s.conflicts)}</dd>
                <dt>"Last sent"</dt><dd>{move || time(status.with(|s| s.last_push_millis))}</dd>
                <dt>"Last received"</dt><dd>{move || time(status.with(|s| s.last_pull_millis))}</dd>
                <dt>"Real time"</dt><dd data-testid="status-realtime">{move || if status.with(|s| s.realtime) { "listening" } else { "checking every few seconds" }}</dd>
                <dt>"Last problem"</dt><dd>{move || status.with(|s| s.last_error.clone().unwrap_or_else(|| "none".into()))}</dd>
            </dl>
        </details>
    }
}
