//! The browser's global scope, as a page's `window` or the service worker's `self`: the few
//! things the sync path needs from it (`fetch`, timers, `navigator.onLine`, Web Locks,
//! `crypto` and `indexedDB`), reached the same way in both. The service worker runs the same wasm as the page
//! to drain the outbox on a Background Sync event ([`crate::sync::background`]), where
//! `web_sys::window()` is `None`; code on the sync path asks here instead.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
extern "C" {
    /// The global `fetch` (`WindowOrWorkerGlobalScope.fetch`).
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(request: &web_sys::Request) -> js_sys::Promise;

    /// The global `setTimeout`.
    #[wasm_bindgen(js_name = setTimeout, catch)]
    fn global_set_timeout(handler: &js_sys::Function, delay_millis: i32) -> Result<i32, JsValue>;

    /// The global `clearTimeout`.
    #[wasm_bindgen(js_name = clearTimeout)]
    fn global_clear_timeout(handle: i32);
}

/// Whether this code runs in a page (a `Window`), not in a worker.
pub fn is_page() -> bool {
    web_sys::window().is_some()
}

/// `fetch(request)` in a page or a worker.
pub fn fetch(request: &web_sys::Request) -> js_sys::Promise {
    global_fetch(request)
}

/// Runs `handler` once after `delay_millis`; the timer's handle, for [`clear_timeout`].
pub fn set_timeout(handler: &js_sys::Function, delay_millis: i32) -> Option<i32> {
    global_set_timeout(handler, delay_millis).ok()
}

pub fn clear_timeout(handle: i32) {
    global_clear_timeout(handle);
}

/// `navigator`: a page's `Navigator` or a worker's `WorkerNavigator`.
pub fn navigator() -> Option<JsValue> {
    js_sys::Reflect::get(&js_sys::global(), &"navigator".into())
        .ok()
        .filter(|navigator| !navigator.is_undefined() && !navigator.is_null())
}

/// `navigator.onLine`, `true` where the browser does not say.
pub fn on_line() -> bool {
    navigator()
        .and_then(|navigator| js_sys::Reflect::get(&navigator, &"onLine".into()).ok())
        .and_then(|online| online.as_bool())
        .unwrap_or(true)
}

/// `navigator.locks` (the Web Locks API), where the browser has it.
pub fn locks() -> Option<JsValue> {
    navigator()
        .and_then(|navigator| js_sys::Reflect::get(&navigator, &"locks".into()).ok())
        .filter(|locks| !locks.is_undefined() && !locks.is_null())
}

/// The global `crypto`, where the browser has it.
pub fn crypto() -> Option<web_sys::Crypto> {
    js_sys::Reflect::get(&js_sys::global(), &"crypto".into())
        .ok()
        .filter(|crypto| !crypto.is_undefined() && !crypto.is_null())
        .map(JsCast::unchecked_into)
}

/// The global `indexedDB`, where the browser has it (a page's and a worker's alike).
pub fn indexed_db() -> Option<web_sys::IdbFactory> {
    js_sys::Reflect::get(&js_sys::global(), &"indexedDB".into())
        .ok()
        .filter(|factory| !factory.is_undefined() && !factory.is_null())
        .map(JsCast::unchecked_into)
}
