//! The top bar: the app's name, the shop, the pages and the sync badge.

use leptos::prelude::*;

use crate::sync::SyncStatus;
use crate::ui::pages::{Page, PageLink};

/// The bar at the top of every page, with links to the pages.
#[component]
pub fn Header(shop_name: String, status: RwSignal<SyncStatus>) -> impl IntoView {
    let problems = move || status.with(|s| s.dead_letters.len() + s.conflicts);
    view! {
        <header class="topbar">
            <h1>"Counterbook"</h1>
            <span class="shop">{shop_name}</span>
            <nav class="pages" aria-label="Pages">
                <PageLink page=Page::Counter>"Counter"</PageLink>
                <PageLink page=Page::Products>"Products"</PageLink>
                <PageLink page=Page::Sync>
                    "Sync"
                    <Show when=move || { problems() > 0 }>
                        <span class="problems" data-testid="sync-problem-count"
                            title="Changes refused or needing a look">{problems}</span>
                    </Show>
                </PageLink>
            </nav>
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
