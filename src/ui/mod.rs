//! The screens: one module per page (`counter`, `products`, `sync_page`) and the components
//! they share beside them (`header`, `sync_problems`, `conflict_inbox`, `status_panel`).
//! [`pages`] maps paths to pages: `/counter` (also `/`, the start page), `/products` and
//! `/sync`. Components read through the store's queries and the driver's signals, and change
//! things only through [`crate::actions`]; they never touch IndexedDB or the network.

pub mod conflict_inbox;
pub mod counter;
pub mod header;
pub mod pages;
pub mod products;
pub mod status_panel;
pub mod sync_page;
pub mod sync_problems;

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::settings::Settings;
use crate::sync::SyncDriver;
use counter::CounterPage;
use header::Header;
use pages::{provide_navigation, Page};
use products::ProductsPage;
use sync_page::SyncPage;

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

/// The pages of a started shop, under the header.
#[component]
fn Shop(driver: SyncDriver) -> impl IntoView {
    let status = driver.status();
    let shop_name = driver.settings().shop_id.clone();
    let driver = StoredValue::new_local(driver);
    let navigation = provide_navigation();
    view! {
        <Header shop_name=shop_name status=status/>
        <main>
            {move || match navigation.page() {
                Page::Counter => view! { <CounterPage driver=driver/> }.into_any(),
                Page::Products => view! { <ProductsPage driver=driver/> }.into_any(),
                Page::Sync => view! { <SyncPage driver=driver/> }.into_any(),
                Page::NotFound => view! {
                    <p class="notice" data-testid="not-found">"There is no such page."</p>
                }
                .into_any(),
            }}
        </main>
    }
}
