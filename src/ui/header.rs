//! The top bar: the app's name, the shop's name, the pages, who is at the counter and the sync badge.

use crate::i18n::{count_text, t, Msg};
use leptos::prelude::*;

use crate::sync::{SyncDriver, SyncStatus};
use crate::ui::pages::{Page, PageLink};

/// The bar at the top of every page, with links to the pages.
#[component]
pub fn Header(
    shop_name: RwSignal<String>,
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
            <h1>{t(Msg::AppName)}</h1>
            <span class="shop" data-testid="shop-name">{move || shop_name.get()}</span>
            <nav class="pages" aria-label=t(Msg::HeaderPagesLabel)>
                <PageLink page=Page::Counter>{t(Msg::HeaderCounter)}</PageLink>
                <PageLink page=Page::Products>{t(Msg::HeaderProducts)}</PageLink>
                <PageLink page=Page::Bills>{t(Msg::HeaderBills)}</PageLink>
                <PageLink page=Page::People>{t(Msg::HeaderPeople)}</PageLink>
                <PageLink page=Page::Settings>{t(Msg::HeaderSettings)}</PageLink>
                <PageLink page=Page::Sync>
                    {t(Msg::HeaderSync)}
                    <Show when=move || { problems() > 0 }>
                        <span class="problems" data-testid="sync-problem-count"
                            title=t(Msg::HeaderProblemsHelp)>{problems}</span>
                    </Show>
                </PageLink>
            </nav>
            <Show when=move || person_at_counter().is_some()>
                <span class="person-at-counter" data-testid="person-at-counter">
                    {person_at_counter}
                </span>
                <Show when=someone_has_a_pin>
                    <button type="button" class="switch" data-testid="switch-person"
                        title=t(Msg::HeaderSwitchHelp) on:click=lock>{t(Msg::HeaderSwitch)}</button>
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
                ("offline", t(Msg::BadgeOffline))
            } else if s.starting {
                ("starting", t(Msg::BadgeStarting))
            } else if s.paused_for_sign_in {
                ("paused", t(Msg::BadgeSignInNeeded))
            } else if !s.server_reachable {
                ("unreachable", t(Msg::BadgeUnreachable))
            } else {
                ("online", t(Msg::BadgeOnline))
            }
        })
    };
    view! {
        <span class=move || format!("badge {}", state().0) data-testid="sync-badge"
            data-state=move || state().0
            data-leader=move || status.with(|s| s.leader.to_string())
            data-realtime=move || status.with(|s| s.realtime.to_string())
            title=move || if status.with(|s| s.leader) {
                t(Msg::BadgeLeaderHelp)
            } else {
                t(Msg::BadgeFollowerHelp)
            }>
            <span data-testid="connection">{move || state().1}</span>
            " · "
            <span data-testid="pending-count">{move || count_text(status.with(|s| s.pending))}</span>
            " " {t(Msg::BadgePending)}
        </span>
    }
}
