//! A form field's value while it is being edited: what the person typed, or, until they type,
//! the value as the tablet keeps it, followed live.
//!
//! A form must never copy the stored values into its fields at some later moment (when it is
//! opened, or when an IndexedDB read answers): on a busy tablet that moment can come after the
//! person, or a test, has started typing, and the copy silently replaces what was typed (the
//! counter's shop profile saved "My shop" for the name typed, or "My shopSharma General
//! Store", when its `toggle` event was handled after the first keys). With a [`Draft`] the
//! stored value is only ever shown where nothing was typed, whenever it arrives.

use leptos::prelude::*;

/// One field: typed text wins over the stored value until [`Draft::forget_typed`].
#[derive(Debug)]
pub struct Draft<T: Send + Sync + 'static> {
    typed: RwSignal<Option<T>>,
    stored: Signal<T>,
}

impl<T: Send + Sync + 'static> Clone for Draft<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Send + Sync + 'static> Copy for Draft<T> {}

impl<T: Clone + Send + Sync + 'static> Draft<T> {
    /// A field showing `stored` (read reactively: a value pulled or loaded later shows at once
    /// where nothing was typed).
    pub fn new(stored: impl Fn() -> T + Send + Sync + 'static) -> Self {
        Self {
            typed: RwSignal::new(None),
            stored: Signal::derive(stored),
        }
    }

    /// What the field shows (tracked, for `prop:value`).
    pub fn shown(&self) -> T {
        self.typed.get().unwrap_or_else(|| self.stored.get())
    }

    /// What the field shows, for saving (untracked).
    pub fn shown_untracked(&self) -> T {
        self.typed
            .get_untracked()
            .unwrap_or_else(|| self.stored.get_untracked())
    }

    /// The person typed or chose `value`.
    pub fn typed(&self, value: T) {
        self.typed.set(Some(value));
    }

    /// Shows the stored value again (after a save, or when the form is put away).
    pub fn forget_typed(&self) {
        self.typed.set(None);
    }
}
