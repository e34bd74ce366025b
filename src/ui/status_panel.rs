//! What the sync engine is doing, for the curious and for support calls.

use leptos::prelude::*;

use crate::sync::SyncStatus;

/// What the sync engine is doing, for the curious and for support calls.
#[component]
pub fn StatusPanel(
    status: RwSignal<SyncStatus>,
    /// Shown unfolded (the sync page) rather than as a one-line summary.
    #[prop(optional)]
    open: bool,
) -> impl IntoView {
    let time = |millis: Option<i64>| {
        millis
            .map(|m| {
                let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(m as f64));
                String::from(date.to_locale_time_string("default"))
            })
            .unwrap_or_else(|| "never".into())
    };
    view! {
        <details class="status-panel" data-testid="status-panel" open=open>
            <summary>"Sync details"</summary>
            <dl>
                <dt>"This tab"</dt>
                <dd>{move || if status.with(|s| s.leader) { "syncs for this browser" } else { "follows the tab that syncs" }}</dd>
                <dt>"Waiting to send"</dt><dd data-testid="status-pending">{move || status.with(|s| s.pending)}</dd>
                <dt>"Sending now"</dt><dd data-testid="status-in-flight">{move || status.with(|s| s.in_flight)}</dd>
                <dt>"Refused"</dt><dd>{move || status.with(|s| s.dead_letters.len())}</dd>
                <dt>"Conflicts"</dt><dd data-testid="status-conflicts">{move || status.with(|s| s.conflicts)}</dd>
                <dt>"Last sent"</dt><dd>{move || time(status.with(|s| s.last_push_millis))}</dd>
                <dt>"Last received"</dt><dd>{move || time(status.with(|s| s.last_pull_millis))}</dd>
                <dt>"Real time"</dt><dd data-testid="status-realtime">{move || if status.with(|s| s.realtime) { "listening" } else { "checking every few seconds" }}</dd>
                <dt>"Last problem"</dt><dd>{move || status.with(|s| s.last_error.clone().unwrap_or_else(|| "none".into()))}</dd>
            </dl>
        </details>
    }
}
