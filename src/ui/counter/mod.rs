//! The counter page (`/counter`, the start page): where a sale is rung up. This is its place in
//! the app; the selling screen itself comes with the counter work of issue 9.

use leptos::prelude::*;

use crate::sync::SyncDriver;

/// The counter page.
#[component]
pub fn CounterPage(driver: StoredValue<SyncDriver, LocalStorage>) -> impl IntoView {
    let _ = driver;
    view! {
        <section class="counter" data-testid="counter-page">
            <h2>"Counter"</h2>
            <p class="empty">"Selling at the counter comes here."</p>
        </section>
    }
}
