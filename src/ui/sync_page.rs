//! The sync page (`/sync`): the last problem, dead letters, the conflict inbox and the status.

use crate::i18n::{t, Msg};
use leptos::prelude::*;

use crate::sync::SyncDriver;
use crate::ui::conflict_inbox::ConflictInbox;
use crate::ui::status_panel::StatusPanel;
use crate::ui::sync_problems::SyncProblems;

/// The sync page.
#[component]
pub fn SyncPage(driver: StoredValue<SyncDriver, LocalStorage>) -> impl IntoView {
    // No collection on this page: the listener keeps only the devices target.
    driver.with_value(|d| d.show_collection(None));
    let status = driver.with_value(|d| d.status());
    view! {
        <SyncProblems driver=driver/>
        <ConflictInbox driver=driver/>
        <Show when=move || status.with(|s| s.dead_letters.is_empty() && s.conflicts == 0)>
            <p class="empty" data-testid="sync-all-clear">{t(Msg::SyncAllClear)}</p>
        </Show>
        <StatusPanel status=status open=true/>
    }
}
