//! The keyboard-wedge scanner at the counter, in the browser: every `keydown` on the page (in
//! the capture phase, before any field sees it) goes to `counterbook-shop`'s pure
//! [`ScanDetector`], which tells a scanner's burst from a person typing by its timing and reads
//! the code by `KeyboardEvent.code` (so an AZERTY or Arabic layout does not garble it). This
//! module carries out what it decides: suppress a key, give held typing back to the focused
//! field, take a scan's leaked characters out of it (its first, or all of a burst given back
//! before its late keys came), and hand the scan to the page.

use std::cell::RefCell;
use std::rc::Rc;

use counterbook_shop::scanner::{KeyOutcome, ScanDetector, ScannerConfig};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{HtmlInputElement, KeyboardEvent};

/// Puts `text` into the focused text field at its caret, as if typed there (an `input` event
/// follows, so the page's signals see it). Returns false if no text field has the focus.
pub fn type_into_focused_field(text: &str) -> bool {
    let Some(input) = focused_text_field() else {
        return false;
    };
    let start = input.selection_start().ok().flatten().unwrap_or(0);
    let end = input.selection_end().ok().flatten().unwrap_or(start);
    if input
        .set_range_text_with_start_and_end_and_selection_mode(
            text,
            start,
            end,
            web_sys::SelectionMode::End,
        )
        .is_err()
    {
        input.set_value(&format!("{}{text}", input.value()));
    }
    announce_input(&input);
    true
}

/// Takes `leaked` back out of the focused field, just before its caret, where a scan's leaked
/// keys went.
pub fn remove_from_focused_field(leaked: &str) {
    let Some(input) = focused_text_field() else {
        return;
    };
    let value: Vec<u16> = input.value().encode_utf16().collect();
    let typed: Vec<u16> = leaked.encode_utf16().collect();
    let caret = input
        .selection_start()
        .ok()
        .flatten()
        .map(|c| c as usize)
        .unwrap_or(value.len());
    if typed.is_empty()
        || caret < typed.len()
        || value.get(caret - typed.len()..caret) != Some(&typed)
    {
        return;
    }
    let mut kept = value[..caret - typed.len()].to_vec();
    kept.extend_from_slice(&value[caret..]);
    input.set_value(&String::from_utf16_lossy(&kept));
    let at = (caret - typed.len()) as u32;
    let _ = input.set_selection_range(at, at);
    announce_input(&input);
}

fn announce_input(input: &HtmlInputElement) {
    let init = web_sys::EventInit::new();
    init.set_bubbles(true);
    if let Ok(event) = web_sys::Event::new_with_event_init_dict("input", &init) {
        let _ = input.dispatch_event(&event);
    }
}

fn focused_text_field() -> Option<HtmlInputElement> {
    let active = web_sys::window()?.document()?.active_element()?;
    let input: HtmlInputElement = active.dyn_into().ok()?;
    matches!(input.type_().as_str(), "text" | "search" | "tel" | "").then_some(input)
}

/// What the page does with a recognised scan and with the keys the scanner does not take.
pub struct ScannerHandlers {
    /// A scanned code.
    pub on_scan: Box<dyn Fn(String)>,
    /// The code a scanner has typed so far, before its Enter (for a lookup ahead of it; only
    /// `on_scan` may act on a code).
    pub on_code_so_far: Box<dyn Fn(String)>,
    /// Held typing for which no text field had the focus (it goes to the scan field).
    pub on_stray_text: Box<dyn Fn(String)>,
    /// Every key the scanner let pass, for the page's own shortcuts. Returns whether the page
    /// used it (then its default action is prevented).
    pub on_key: Box<dyn Fn(&KeyboardEvent) -> bool>,
}

/// The scanner listening on the whole page; dropping it stops the listening.
pub struct ScannerListener {
    listener: Closure<dyn FnMut(KeyboardEvent)>,
    timer: Rc<RefCell<Option<i32>>>,
}

impl Drop for ScannerListener {
    fn drop(&mut self) {
        if let Some(window) = web_sys::window() {
            let _ = window.remove_event_listener_with_callback_and_bool(
                "keydown",
                self.listener.as_ref().unchecked_ref(),
                true,
            );
            if let Some(timer) = self.timer.borrow_mut().take() {
                window.clear_timeout_with_handle(timer);
            }
        }
    }
}

fn release(text: String, handlers: &ScannerHandlers) {
    if !text.is_empty() && !type_into_focused_field(&text) {
        (handlers.on_stray_text)(text);
    }
}

/// The timing the counter uses. Scanners send a key every 1 to 15 ms; a tablet's USB or
/// Bluetooth stack sometimes bunches or delays them, so keys up to 60 ms apart still count as
/// one burst. People rarely type four keys in a row that fast and then Enter within 100 ms.
fn detector_config() -> ScannerConfig {
    ScannerConfig {
        max_gap_ms: 60.0,
        ..ScannerConfig::default()
    }
}

/// Listens to every key on the page (in the capture phase, before any field sees it).
pub fn listen(handlers: ScannerHandlers) -> Option<ScannerListener> {
    let window = web_sys::window()?;
    let handlers = Rc::new(handlers);
    let detector = Rc::new(RefCell::new(ScanDetector::new(detector_config())));
    let timer: Rc<RefCell<Option<i32>>> = Rc::new(RefCell::new(None));

    let timer_slot = Rc::clone(&timer);
    let listener = Closure::<dyn FnMut(KeyboardEvent)>::new(move |event: KeyboardEvent| {
        if event.is_composing() || event.repeat() {
            return;
        }
        let modified = event.ctrl_key() || event.alt_key() || event.meta_key();
        let outcome = if modified {
            // Shortcuts are never scans; they end any burst (its held keys were typing).
            KeyOutcome {
                release: detector.borrow_mut().tick(f64::INFINITY),
                ..KeyOutcome::default()
            }
        } else {
            detector
                .borrow_mut()
                // When the key was pressed, not when this handler got to it: a page busy for
                // a moment must not split a scan.
                .key_down(&event.code(), &event.key(), event.time_stamp())
        };
        if let Some(text) = outcome.release {
            release(text, &handlers);
        }
        if let Some(scan) = outcome.scan {
            event.prevent_default();
            event.stop_propagation();
            if scan.leaked_chars > 0 {
                remove_from_focused_field(&scan.leaked_text);
            }
            (handlers.on_scan)(scan.code);
        } else if outcome.suppress || (handlers.on_key)(&event) {
            event.prevent_default();
            event.stop_propagation();
            if outcome.suppress {
                let so_far = detector.borrow().code_so_far();
                if let Some(code) = so_far {
                    (handlers.on_code_so_far)(code);
                }
            }
        }
        schedule_tick(&detector, &handlers, &timer_slot, event.time_stamp());
    });
    window
        .add_event_listener_with_callback_and_bool(
            "keydown",
            listener.as_ref().unchecked_ref(),
            true,
        )
        .ok()?;
    Some(ScannerListener { listener, timer })
}

/// How long, on the page's clock, held keys wait for the rest of a burst before they are given
/// back as typing. The detector judges bursts by the keys' own time stamps; this wait only has
/// to outlast the moments a busy page or USB stack delivers keys late, and a person who pressed
/// two keys at once sees the second a quarter of a second later. Keys later still, whose stamps
/// show they continue the burst, take back what was given (the detector's scan leaks it all).
const RELEASE_AFTER_MILLIS: f64 = 250.0;

/// Asks for a tick once no key has come for a while, so held keys that turn out to be typing
/// reach their field even if no other key follows.
fn schedule_tick(
    detector: &Rc<RefCell<ScanDetector>>,
    handlers: &Rc<ScannerHandlers>,
    timer_slot: &Rc<RefCell<Option<i32>>>,
    last_key_stamp: f64,
) {
    let Some(window) = web_sys::window() else {
        return;
    };
    if let Some(previous) = timer_slot.borrow_mut().take() {
        window.clear_timeout_with_handle(previous);
    }
    let Some(deadline) = detector.borrow().next_deadline() else {
        return;
    };
    let delay = (deadline - last_key_stamp).max(RELEASE_AFTER_MILLIS) as i32;
    let detector = Rc::clone(detector);
    let handlers = Rc::clone(handlers);
    let callback = Closure::once_into_js(move || {
        // No key came since: the burst is over, whatever the stamps said.
        let released = detector.borrow_mut().tick(f64::INFINITY);
        if let Some(text) = released {
            release(text, &handlers);
        }
    });
    *timer_slot.borrow_mut() = window
        .set_timeout_with_callback_and_timeout_and_arguments_0(callback.unchecked_ref(), delay)
        .ok();
}
