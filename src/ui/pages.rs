//! The app's pages and the small client-side router between them. Each page has one path;
//! links change the address with `history.pushState` and the browser's back and forward
//! buttons (`popstate`) change the page back. Any path is the same app shell on reload (the
//! server's and the service worker's fallback to `index.html`), so the page comes from
//! `location.pathname` at start.
//!
//! Not `leptos_router`: it added 56 KB to the gzipped release wasm (390 KB to 446 KB, of a
//! 500 KB budget), mostly URL parsing with Unicode tables, for a few fixed paths.

use leptos::ev::MouseEvent;
use leptos::prelude::*;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

/// A page of the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    /// `/counter`, and `/`: the start page, where a sale is rung up.
    Counter,
    /// `/products`: the catalogue, stock and CSV import.
    Products,
    /// `/bills`: the recent bills, found by number, voided or refunded.
    Bills,
    /// `/sync`: refused changes, the conflict inbox, the sync engine's status.
    Sync,
    /// `/people`: who is signed in on this tablet, PINs, signing out; the owner's people.
    People,
    /// `/settings`: the shop's settings (synced) and this device's.
    Settings,
    /// Any other path.
    NotFound,
}

impl Page {
    /// The page at `path` (a `location.pathname`); a trailing slash does not matter.
    pub fn from_path(path: &str) -> Page {
        match path.trim_end_matches('/') {
            "" | "/counter" => Page::Counter,
            "/products" => Page::Products,
            "/bills" => Page::Bills,
            "/sync" => Page::Sync,
            "/people" => Page::People,
            "/settings" => Page::Settings,
            _ => Page::NotFound,
        }
    }

    /// The path links use for this page.
    pub fn path(self) -> &'static str {
        match self {
            Page::Counter | Page::NotFound => "/counter",
            Page::Products => "/products",
            Page::Bills => "/bills",
            Page::Sync => "/sync",
            Page::People => "/people",
            Page::Settings => "/settings",
        }
    }
}

/// Which page is open; cheap to copy, shared through Leptos context by [`provide_navigation`].
#[derive(Clone, Copy)]
pub struct Navigation {
    page: RwSignal<Page>,
}

fn current_path() -> String {
    web_sys::window()
        .and_then(|window| window.location().pathname().ok())
        .unwrap_or_default()
}

impl Navigation {
    /// The open page (tracked: a view reading it changes with it).
    pub fn page(&self) -> Page {
        self.page.get()
    }

    /// Opens `page` and puts its path in the address bar (a new history entry).
    pub fn open(&self, page: Page) {
        if self.page.get_untracked() == page {
            return;
        }
        if let Some(history) = web_sys::window().and_then(|window| window.history().ok()) {
            // A refused pushState (never expected on our own origin) still opens the page.
            let _ = history.push_state_with_url(&JsValue::NULL, "", Some(page.path()));
        }
        self.page.set(page);
    }
}

/// Reads the page from the address, follows the back and forward buttons, and provides the
/// [`Navigation`] to every component below.
pub fn provide_navigation() -> Navigation {
    let navigation = Navigation {
        page: RwSignal::new(Page::from_path(&current_path())),
    };
    if let Some(window) = web_sys::window() {
        let page = navigation.page;
        let on_pop_state = Closure::<dyn Fn()>::new(move || {
            // The app may have been unmounted (tests mount several); then nobody listens.
            page.try_set(Page::from_path(&current_path()));
        });
        let _ = window
            .add_event_listener_with_callback("popstate", on_pop_state.as_ref().unchecked_ref());
        // Lives as long as the page.
        on_pop_state.forget();
    }
    provide_context(navigation);
    navigation
}

/// A link to `page`: a real `<a href>` (so it opens in a new tab as links do), followed in
/// place on a plain click, and marked `aria-current="page"` while its page is open.
#[component]
pub fn PageLink(page: Page, children: Children) -> impl IntoView {
    let navigation = expect_context::<Navigation>();
    let follow = move |event: MouseEvent| {
        let modified = event.ctrl_key() || event.meta_key() || event.shift_key() || event.alt_key();
        if modified || event.button() != 0 {
            return;
        }
        event.prevent_default();
        navigation.open(page);
    };
    view! {
        <a href=page.path() on:click=follow
            aria-current=move || (navigation.page() == page).then_some("page")>
            {children()}
        </a>
    }
}
