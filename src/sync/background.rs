//! Background Sync: the service worker drains the outbox when the network returns, also after
//! every tab of the app was closed.
//!
//! A page asks for it ([`crate::sync::tabs::ask_for_background_sync`]) when a unit waits while
//! the browser is offline or the server unreachable. The browser then fires a `sync` event in
//! the service worker once it is online (Chromium-based browsers; Firefox and Safari have no
//! Background Sync). `www/sw.js` starts this same wasm there (its `main` mounts nothing in a
//! worker), takes the Web Locks named by [`background_sync_lock_names`] if they are free, and
//! calls [`drain_outbox`], which runs the sync driver's drain with the device settings and the
//! people's tokens the page left in IndexedDB. A page that leads holds the leader lock: the
//! worker then sends nothing, and asks the browser to try again later if units wait.

use wasm_bindgen::JsValue;

use crate::storage::Store;
use crate::sync::driver::{DrainOutcome, SyncDriver};
use crate::sync::tabs::{background_sync_lock_name, leader_lock_name};

/// Why a drain could not run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BackgroundSyncError {
    #[error("the store: {0}")]
    Storage(#[from] crate::storage::StorageError),
    #[error(transparent)]
    Start(#[from] crate::sync::StartError),
    #[error("{0} units wait while a tab of the app is sending: try again later")]
    PageIsSending(usize),
    #[error("{}: try again later", .0.describe())]
    TryAgain(DrainOutcome),
}

/// The two Web Locks the service worker takes, in this order, before it drains `database`'s
/// outbox: the one that tells tabs a worker leads, then the tabs' own leader lock.
pub fn background_sync_lock_names(database: &str) -> [String; 2] {
    [
        background_sync_lock_name(database),
        leader_lock_name(database),
    ]
}

/// Drains `database`'s outbox in the service worker. `leading`: the caller holds the leader
/// lock (else a tab leads and sends; this only checks whether anything waits). Resolves with
/// what happened; rejects when the browser should fire the event again later.
pub fn drain_outbox(database: String, leading: bool) -> js_sys::Promise {
    // The driver spawns its requests as tasks; in a page, mounting the app sets this up.
    let _ = any_spawner::Executor::init_wasm_bindgen();
    wasm_bindgen_futures::future_to_promise(async move {
        match drain(&database, leading).await {
            Ok(outcome) => Ok(JsValue::from_str(outcome.describe())),
            Err(error) => Err(js_sys::Error::new(&error.to_string()).into()),
        }
    })
}

async fn drain(database: &str, leading: bool) -> Result<DrainOutcome, BackgroundSyncError> {
    let store = Store::open(database).await?;
    let settings = store.sync_settings().await?;
    let pending = store.outbox_summary().await?.pending_senders.len();
    store.close();
    let Some(settings) = settings.filter(|_| pending > 0) else {
        // Nothing waits (or the app never started here): nothing to do.
        return Ok(DrainOutcome::Drained);
    };
    if !leading {
        return Err(BackgroundSyncError::PageIsSending(pending));
    }
    let outcome = SyncDriver::drain_in_background(settings).await?;
    if outcome.wants_another_try() {
        return Err(BackgroundSyncError::TryAgain(outcome));
    }
    Ok(outcome)
}
