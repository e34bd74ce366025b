//! The top bar: the app's name, the shop, the pages, who is at the counter and the sync badge.

use leptos::prelude::*;

use crate::sync::{SyncDriver, SyncStatus};
use crate::ui::pages::{Page, PageLink};

/// The words of the top bar.
pub mod text {
    pub const COUNTER: &str = "Counter";
    pub const PRODUCTS: &str = "Products";
    pub const BILLS: &str = "Bills";
    pub const SYNC: &str = "Sync";
    pub const PEOPLE: &str = "People";
    pub const SETTINGS: &str = "Settings";
    pub const SWITCH: &str = "Switch";
    pub const SWITCH_HELP: &str = "Lock the tablet so that someone else switches in with their PIN";
}

/// The bar at the top of every page, with links to the pages.
#[component]
pub fn Header(
    shop_name: String,
    status: RwSignal<SyncStatus>,
    driver: StoredValue<SyncDriver, LocalStorage>,
) -> impl IntoView {
    let problems = move || status.with(|s| s.dead_letters.len() + s.conflicts);
    let people = driver.with_value(|d| d.sessions().people());
    let active = driver.with_value(|d| d.sessions().active());
    let person_at_counter = move || {
        let active = active.get()?;
        people.with(|people| {
            people
                .iter()
                .find(|p| p.user_id == active)
                .map(|p| p.email.clone())
        })
    };
    let someone_has_a_pin = move || people.with(|people| people.iter().any(|p| p.pin.is_some()));
    let lock = move |_| driver.with_value(|d| d.sessions().lock());
    view! {
        <header class="topbar">
            <h1>"Counterbook"</h1>
            <span class="shop">{shop_name}</span>
            <nav class="pages" aria-label="Pages">
                <PageLink page=Page::Counter>{text::COUNTER}</PageLink>
                <PageLink page=Page::Products>{text::PRODUCTS}</PageLink>
                <PageLink page=Page::Bills>{text::BILLS}</PageLink>
                <PageLink page=Page::People>{text::PEOPLE}</PageLink>
                <PageLink page=Page::Settings>{text::SETTINGS}</PageLink>
                <PageLink page=Page::Sync>
                    {text::SYNC}
                    <Show when=move || { problems() > 0 }>
                        <span class="problems" data-testid="sync-problem-count"
                            title="Changes refused or needing a look">{problems}</span>
                    </Show>
                </PageLink>
            </nav>
            <Show when=move || person_at_counter().is_some()>
                <span class="person-at-counter" data-testid="person-at-counter">
                    {person_at_counter}
                </span>
                <Show when=someone_has_a_pin>
                    <button type="button" class="switch" data-testid="switch-person"
                        title=text::SWITCH_HELP on:click=lock>{text::SWITCH}</button>
                </Show>
            </Show>
            <SyncBadge status=status/>
        </header>
    }
}

/// "Online · 0 pending" / "Offline · 3 pending" in the header.
#[component]
pub fn SyncBadge(status: RwSignal<SyncStatus>) -> impl IntoView {
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
