//! What the sync engine is doing, for the curious and for support calls.

use crate::i18n::{count_text, t, Msg};
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
            .map(crate::i18n::format_time)
            .unwrap_or_else(|| t(Msg::StatusNever).into())
    };
    view! {
        <details class="status-panel" data-testid="status-panel" open=open>
            <summary>{t(Msg::StatusTitle)}</summary>
            <dl>
                <dt>{t(Msg::StatusThisTab)}</dt>
                <dd>{move || if status.with(|s| s.leader) { t(Msg::StatusLeader) } else { t(Msg::StatusFollower) }}</dd>
                <dt>{t(Msg::StatusWaiting)}</dt><dd data-testid="status-pending">{move || count_text(status.with(|s| s.pending))}</dd>
                <dt>{t(Msg::StatusSending)}</dt><dd data-testid="status-in-flight">{move || count_text(status.with(|s| s.in_flight))}</dd>
                <dt>{t(Msg::StatusRefused)}</dt><dd>{move || count_text(status.with(|s| s.dead_letters.len()))}</dd>
                <dt>{t(Msg::StatusConflicts)}</dt><dd data-testid="status-conflicts">{move || count_text(status.with(|s| s.conflicts))}</dd>
                <dt>{t(Msg::StatusLastSent)}</dt><dd>{move || time(status.with(|s| s.last_push_millis))}</dd>
                <dt>{t(Msg::StatusLastReceived)}</dt><dd>{move || time(status.with(|s| s.last_pull_millis))}</dd>
                <dt>{t(Msg::StatusRealtime)}</dt><dd data-testid="status-realtime">{move || if status.with(|s| s.realtime) { t(Msg::StatusListening) } else { t(Msg::StatusPolling) }}</dd>
                <dt>{t(Msg::StatusLastProblem)}</dt><dd data-testid="status-last-problem">{move || status.with(|s| match &s.last_error {
                    Some(problem) => crate::ui::sync_problems::last_problem_view(problem).into_any(),
                    None => t(Msg::StatusNone).into_any(),
                })}</dd>
            </dl>
        </details>
    }
}
