//! The last sync error and the dead letters (units the server refused for good), with retry
//! and discard.

use crate::i18n::{t, Msg};
use leptos::prelude::*;

use crate::sync::SyncDriver;

/// The last sync error and any dead letters, with retry and discard.
#[component]
pub fn SyncProblems(driver: StoredValue<SyncDriver, LocalStorage>) -> impl IntoView {
    let status = driver.with_value(|d| d.status());
    view! {
        <Show when=move || status.with(|s| s.last_error.is_some())>
            <p class="sync-error" data-testid="sync-error" role="status">
                {move || status.with(|s| s.last_error.clone().unwrap_or_default())}
            </p>
        </Show>
        <Show when=move || status.with(|s| !s.dead_letters.is_empty())>
            <section class="dead-letters" data-testid="dead-letters">
                <h2>{t(Msg::SyncRefusedTitle)}</h2>
                <p>{t(Msg::SyncRefusedHelp)}</p>
                <ul>
                    <For each=move || status.with(|s| s.dead_letters.clone())
                        key=|dead| dead.unit_id.clone()
                        children=move |dead| {
                            let retry_id = dead.unit_id.clone();
                            let discard_id = dead.unit_id.clone();
                            view! {
                                <li data-testid="dead-letter">
                                    <strong>{dead.label}</strong>
                                    <span class="reason" data-testid="dead-letter-reason">{dead.reason}</span>
                                    <button data-testid="retry-dead-letter"
                                        on:click=move |_| driver.with_value(|d| d.retry_dead_letter(retry_id.clone()))>
                                        {t(Msg::SyncRetry)}
                                    </button>
                                    <button data-testid="discard-dead-letter"
                                        on:click=move |_| driver.with_value(|d| d.discard_dead_letter(discard_id.clone()))>
                                        {t(Msg::SyncDiscard)}
                                    </button>
                                </li>
                            }
                        }
                    />
                </ul>
            </section>
        </Show>
    }
}
