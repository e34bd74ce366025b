//! The Counterbook PWA entry point: install the panic hook and mount the app. The same wasm
//! runs in the service worker for Background Sync (`www/sw.js`), where there is no page to
//! mount anything on: there `main` stops after the panic hook, and the worker calls
//! [`drain_outbox_in_background`].

#[cfg(target_arch = "wasm32")]
fn main() {
    console_error_panic_hook::set_once();
    if !counterbook::global_scope::is_page() {
        return;
    }
    leptos::mount::mount_to_body(counterbook::ui::App);
}

/// The service worker's `sync` event handler: drains `database`'s outbox
/// (`counterbook::sync::background::drain_outbox`). Exported from the binary itself, so that
/// the bindings Trunk builds for the page carry it too.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn drain_outbox_in_background(database: String, leading: bool) -> js_sys::Promise {
    counterbook::sync::background::drain_outbox(database, leading)
}

/// The Web Locks the service worker takes before it drains `database`'s outbox, in order
/// (`counterbook::sync::background::background_sync_lock_names`).
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn background_sync_lock_names(database: String) -> Vec<String> {
    counterbook::sync::background::background_sync_lock_names(&database).to_vec()
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("Counterbook runs in the browser: `make run` builds it and serves it.");
    std::process::exit(2);
}
