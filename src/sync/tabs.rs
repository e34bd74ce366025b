//! Several tabs of the app in one browser profile share one IndexedDB. Exactly one of them, the
//! leader, runs the sync engine: leadership is an exclusive Web Lock, so the browser hands it to
//! the next tab as soon as the leader closes or crashes. A frozen leader keeps its lock but stops
//! its heartbeat, and a follower then steals the lock. The tabs tell each other about changes
//! over a `BroadcastChannel`.
//!
//! The service worker can lead too, with no tab open: on a Background Sync event it takes the
//! same leader lock (only if free) and drains the outbox ([`crate::sync::background`]). While it
//! does, it also holds [`background_sync_lock_name`], which tells a tab opened meanwhile that
//! the leader without a heartbeat is a worker at work, not a frozen tab: the tab waits for the
//! lock instead of stealing it, so a page and the worker never push at once. A tab asks for a
//! Background Sync ([`ask_for_background_sync`]) when units wait and the network or the server
//! is gone.

use std::cell::RefCell;
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use crate::storage::ChangedDocuments;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

/// What one tab tells the others.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum TabMessage {
    /// Entity records changed (a local write or a pulled page): re-read these, or with `None`
    /// (or from a version that did not say) anything shown.
    DataChanged {
        #[serde(default)]
        changed: Option<ChangedDocuments>,
    },
    /// The conflict inbox changed.
    ConflictsChanged,
    /// The outbox changed (a new unit, a unit done, a dead letter retried or discarded).
    OutboxChanged,
    /// Someone signed in or out, switched or got a fresh token: read the people again.
    PeopleChanged,
}

/// The channel between the tabs using one database.
pub struct TabChannel {
    channel: web_sys::BroadcastChannel,
    // Kept alive as long as the channel: dropping it would detach the handler.
    _on_message: Closure<dyn Fn(web_sys::MessageEvent)>,
}

impl TabChannel {
    /// Opens the channel for `database_name`; `on_message` runs for every message another tab
    /// posts. `None` where the browser has no BroadcastChannel (then tabs do not hear each other
    /// until they reload, which only matters with several tabs open).
    pub fn open(database_name: &str, on_message: impl Fn(TabMessage) + 'static) -> Option<Self> {
        let channel =
            web_sys::BroadcastChannel::new(&format!("counterbook/{database_name}")).ok()?;
        let handler =
            Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
                let parsed = event
                    .data()
                    .as_string()
                    .and_then(|text| serde_json::from_str::<TabMessage>(&text).ok());
                // Messages from a newer or older version of the app that this one cannot read are
                // ignored: they are hints to re-read the store, never data.
                if let Some(message) = parsed {
                    on_message(message);
                }
            });
        channel.set_onmessage(Some(handler.as_ref().unchecked_ref()));
        Some(TabChannel {
            channel,
            _on_message: handler,
        })
    }

    pub fn post(&self, message: &TabMessage) {
        if let Ok(text) = serde_json::to_string(message) {
            // A closed channel (the page is unloading) has nobody left to tell.
            let _ = self.channel.post_message(&JsValue::from_str(&text));
        }
    }
}

/// Held by the leader tab; dropping it or calling [`Leadership::release`] lets the next tab lead.
pub struct Leadership {
    resolve: Option<js_sys::Function>,
}

impl Leadership {
    /// Leadership whose lock someone else requested and holds for this code (the service
    /// worker's script holds it around a Background Sync drain): releasing it is theirs.
    pub fn held_by_caller() -> Leadership {
        Leadership { resolve: None }
    }

    pub fn release(mut self) {
        self.release_now();
    }

    /// Drops the handle without settling the lock's promise: the lock was stolen, and settling
    /// it now would do nothing.
    pub fn forget(mut self) {
        self.resolve = None;
    }

    fn release_now(&mut self) {
        if let Some(resolve) = self.resolve.take() {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.release_now();
    }
}

/// How the tabs notice a leader that stopped without letting go (a frozen background tab keeps
/// its lock but runs no timers): the leader writes a heartbeat to `localStorage` every few
/// seconds; a follower that sees it older than this steals the lock.
pub const LEADER_HEARTBEAT_STALE_MILLIS: f64 = 6_000.0;

fn heartbeat_key(database_name: &str) -> String {
    format!("counterbook.leaderHeartbeat/{database_name}")
}

/// The leader's "still here", written on every tick.
pub fn write_leader_heartbeat(database_name: &str) {
    if let Some(storage) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
        let _ = storage.set_item(
            &heartbeat_key(database_name),
            &js_sys::Date::now().to_string(),
        );
    }
}

/// Whether the leader's heartbeat is missing or too old: its tab is gone or frozen.
pub fn leader_heartbeat_is_stale(database_name: &str) -> bool {
    let last = web_sys::window()
        .and_then(|w| w.local_storage().ok().flatten())
        .and_then(|s| s.get_item(&heartbeat_key(database_name)).ok().flatten())
        .and_then(|text| text.parse::<f64>().ok());
    match last {
        Some(at) => js_sys::Date::now() - at > LEADER_HEARTBEAT_STALE_MILLIS,
        None => true,
    }
}

/// Asks to lead the tabs using `database_name`. `on_granted` runs when this tab becomes the
/// leader (at once if no other tab leads); `on_stolen` runs if another tab later takes the lock
/// by force (`steal`, used against a frozen leader). Without the Web Locks API (very old
/// browsers) the tab leads at once: one tab per profile is then the user's responsibility.
pub fn request_leadership(
    database_name: &str,
    steal: bool,
    on_granted: impl FnOnce(Leadership) + 'static,
    on_stolen: impl FnOnce() + 'static,
) {
    let on_granted = Rc::new(RefCell::new(Some(on_granted)));
    let locks = crate::global_scope::locks();
    let request = locks.as_ref().and_then(|locks| {
        js_sys::Reflect::get(locks, &"request".into())
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
    });
    let (Some(locks), Some(request)) = (locks, request) else {
        if let Some(granted) = on_granted.borrow_mut().take() {
            granted(Leadership { resolve: None });
        }
        return;
    };
    let callback = Closure::once_into_js(move |_lock: JsValue| -> JsValue {
        // The lock is held until the promise returned here settles.
        let mut resolve_slot = None;
        let held = js_sys::Promise::new(&mut |resolve, _reject| resolve_slot = Some(resolve));
        if let Some(granted) = on_granted.borrow_mut().take() {
            granted(Leadership {
                resolve: resolve_slot,
            });
        }
        held.into()
    });
    let name = JsValue::from_str(&leader_lock_name(database_name));
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"steal".into(), &JsValue::from_bool(steal));
    match request.call3(&locks, &name, &options, &callback) {
        Ok(outcome) => {
            // The request's promise rejects (AbortError) when another tab steals the lock.
            if let Ok(outcome) = outcome.dyn_into::<js_sys::Promise>() {
                let stolen = Closure::once(move |_error: JsValue| on_stolen());
                let _ = outcome.catch(&stolen);
                // Lives until the lock is released or stolen, as long as the page at most.
                stolen.forget();
            }
        }
        Err(_) => {
            web_sys::console::warn_1(&"counterbook: could not ask for the leader lock".into())
        }
    }
}

/// The exclusive Web Lock whose holder leads the tabs (and the service worker) of a database.
pub fn leader_lock_name(database_name: &str) -> String {
    format!("counterbook-leader/{database_name}")
}

/// The Web Lock the service worker holds while it drains the outbox of a database in the
/// background, around the leader lock.
pub fn background_sync_lock_name(database_name: &str) -> String {
    format!("counterbook-background-sync/{database_name}")
}

/// The Background Sync tag of a database's outbox: the service worker drains that database.
pub const BACKGROUND_SYNC_TAG_PREFIX: &str = "counterbook-outbox/";

/// Whether the service worker is draining this database's outbox right now (it holds
/// [`background_sync_lock_name`]); `false` where the browser cannot say.
pub async fn background_sync_is_running(database_name: &str) -> bool {
    let Some(locks) = crate::global_scope::locks() else {
        return false;
    };
    let query = js_sys::Reflect::get(&locks, &"query".into())
        .ok()
        .and_then(|query| query.dyn_into::<js_sys::Function>().ok());
    let Some(promise) = query
        .and_then(|query| query.call0(&locks).ok())
        .and_then(|promise| promise.dyn_into::<js_sys::Promise>().ok())
    else {
        return false;
    };
    let Ok(snapshot) = wasm_bindgen_futures::JsFuture::from(promise).await else {
        return false;
    };
    let name = JsValue::from_str(&background_sync_lock_name(database_name));
    js_sys::Reflect::get(&snapshot, &"held".into())
        .ok()
        .map(|held| js_sys::Array::from(&held))
        .is_some_and(|held| {
            held.iter().any(|lock| {
                js_sys::Reflect::get(&lock, &"name".into()).is_ok_and(|held| held == name)
            })
        })
}

/// Asks the browser for a Background Sync of this database's outbox: where it has one
/// (`registration.sync`, Chromium-based browsers), the service worker gets a `sync` event once
/// the network is back, also after every tab is closed. Elsewhere this does nothing and the
/// outbox drains the next time the app is open.
pub fn ask_for_background_sync(database_name: &str) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let Ok(ready) = window.navigator().service_worker().ready() else {
        return;
    };
    let tag = JsValue::from_str(&format!("{BACKGROUND_SYNC_TAG_PREFIX}{database_name}"));
    wasm_bindgen_futures::spawn_local(async move {
        let Ok(registration) = wasm_bindgen_futures::JsFuture::from(ready).await else {
            return;
        };
        let Some(sync) = js_sys::Reflect::get(&registration, &"sync".into())
            .ok()
            .filter(|sync| !sync.is_undefined() && !sync.is_null())
        else {
            return;
        };
        let register = js_sys::Reflect::get(&sync, &"register".into())
            .ok()
            .and_then(|register| register.dyn_into::<js_sys::Function>().ok());
        let registered = register
            .and_then(|register| register.call1(&sync, &tag).ok())
            .and_then(|promise| promise.dyn_into::<js_sys::Promise>().ok());
        if let Some(registered) = registered {
            if let Err(error) = wasm_bindgen_futures::JsFuture::from(registered).await {
                web_sys::console::warn_2(&"counterbook: no Background Sync:".into(), &error);
            }
        }
    });
}
