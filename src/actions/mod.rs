//! What a shopkeeper does, as units of work: each action builds its records, audit entries and
//! document writes and hands them to the [`crate::sync::SyncDriver`] in one piece. Neither UI
//! (components call these) nor sync (the driver only stores and pushes what it is given).
//!
//! Every action says who acts through [`at_the_counter`]: the tablet's name and the person
//! signed in at the counter, which bills, receipts and audit entries carry.

use counterbook_shop::actions::ActionContext;

use crate::sync::SyncDriver;

pub mod products;
pub mod sale;

/// Who is at the counter: the tablet (its name, printed on receipts) and the cashier.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AtTheCounter {
    pub device_name: Option<String>,
    /// The person signed in at the counter (their email); `None` where nobody signs in (a
    /// `--dev` server, the emulator).
    pub cashier: Option<String>,
}

/// Who is at the counter now.
pub fn at_the_counter(driver: &SyncDriver) -> AtTheCounter {
    AtTheCounter {
        device_name: crate::settings::device_name(),
        cashier: driver.person_at_counter(),
    }
}

fn now_millis() -> i64 {
    js_sys::Date::now() as i64
}

/// Runs `act` with who acts, where and when.
pub(crate) fn with_context<T>(driver: &SyncDriver, act: impl FnOnce(&ActionContext<'_>) -> T) -> T {
    let who = at_the_counter(driver);
    let context = ActionContext {
        shop_id: &driver.settings().shop_id,
        device_id: driver.device_id(),
        device_name: who.device_name.as_deref(),
        cashier: who.cashier.as_deref(),
        now_millis: now_millis(),
    };
    act(&context)
}
