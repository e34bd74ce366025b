//! Counterbook: an offline-first point of sale that runs in the browser.
//!
//! Every user action ([`actions`]) is written to IndexedDB first ([`storage`]), in one
//! transaction with its outbox entry; the sync driver ([`sync`]) pushes the outbox and pulls
//! other tablets' changes whenever the network allows, and listens for them in real time while
//! the page is visible. The screens ([`ui`]) read through the store's queries and the driver's
//! signals, and call actions. See ARCHITECTURE.md for the map and the rules.
//!
//! The crate is empty on other targets than wasm32.
#![cfg(target_arch = "wasm32")]

pub mod actions;
pub mod devices;
pub mod entities;
pub mod global_scope;
pub mod i18n;
pub mod ids;
pub mod model;
pub mod money;
pub mod people;
pub mod settings;
pub mod storage;
pub mod sync;
pub mod ui;

#[cfg(test)]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
