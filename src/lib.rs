//! Counterbook: an offline-first point of sale that runs in the browser.
//!
//! Every user action is written to IndexedDB first ([`storage`]), in one transaction with its
//! outbox entry; the [`sync::driver`] pushes the outbox and pulls other tablets' changes through
//! [`sync::remote`] whenever the network allows, and listens for them in real time through
//! [`sync::listen_channel`] while the page is visible. The UI ([`ui`]) only reads signals and calls
//! the driver. See ARCHITECTURE.md for the map and the rules.
//!
//! The crate is empty on other targets than wasm32.
#![cfg(target_arch = "wasm32")]

pub mod devices;
pub mod entities;
pub mod ids;
pub mod model;
pub mod money;
pub mod settings;
pub mod storage;
pub mod sync;
pub mod ui;

#[cfg(test)]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
