//! What a shopkeeper does, as units of work: each action builds its records, audit entries and
//! document writes and hands them to the [`crate::sync::SyncDriver`] in one piece. Neither UI
//! (components call these) nor sync (the driver only stores and pushes what it is given).
//!
//! Every action says who acts through [`at_the_counter`]: the tablet's name and the person
//! signed in at the counter, which bills, receipts and audit entries carry.

use counterbook_shop::actions::ActionContext;
use counterbook_shop::{GuardedAction, UnitOfWork};

use crate::sync::SyncDriver;

pub mod bills;
pub mod products;
pub mod sale;

/// Who is at the counter: the tablet (its name, printed on receipts) and the cashier.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AtTheCounter {
    pub device_name: Option<String>,
    /// The person signed in at the counter (their email); `None` where nobody signs in (a
    /// `--dev` server, the emulator).
    pub cashier: Option<String>,
    /// Their user id: their sign-in sends what they do.
    pub person_id: Option<String>,
}

/// Who is at the counter now.
pub fn at_the_counter(driver: &SyncDriver) -> AtTheCounter {
    AtTheCounter {
        device_name: crate::settings::device_name(),
        cashier: driver.person_at_counter(),
        person_id: driver
            .sessions()
            .active_person()
            .map(|person| person.user_id),
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
        person_id: who.person_id.as_deref(),
        now_millis: now_millis(),
    };
    act(&context)
}

/// Who acts, where and when, owned: for an action whose unit is built inside a storage
/// transaction, after an `.await` ([`with_context`] lends its context for a closure only).
pub(crate) struct ActingNow {
    shop_id: String,
    device_id: String,
    who: AtTheCounter,
    now_millis: i64,
}

impl ActingNow {
    pub(crate) fn of(driver: &SyncDriver) -> ActingNow {
        ActingNow {
            shop_id: driver.settings().shop_id.clone(),
            device_id: driver.device_id().to_owned(),
            who: at_the_counter(driver),
            now_millis: now_millis(),
        }
    }

    pub(crate) fn context(&self) -> ActionContext<'_> {
        ActionContext {
            shop_id: &self.shop_id,
            device_id: &self.device_id,
            device_name: self.who.device_name.as_deref(),
            cashier: self.who.cashier.as_deref(),
            person_id: self.who.person_id.as_deref(),
            now_millis: self.now_millis,
        }
    }
}

/// A manager's approval given on the spot, their PIN checked on this tablet: the unit names
/// them and who asked in its audit entry, and is sent with the approver's own sign-in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    /// The approver's user id.
    pub approver: String,
    /// The user id of who asked (the person at the counter).
    pub requested_by: String,
}

/// The person at the counter may not take this action alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("A manager must approve this. Ask one to enter their PIN.")]
pub struct NeedsApproval(pub GuardedAction);

/// Whether `action` may go ahead: where nobody signs in, or the person at the counter may
/// take it, or `approval` names someone signed in here who may.
pub fn check_role(
    driver: &SyncDriver,
    action: GuardedAction,
    approval: Option<&Approval>,
) -> Result<(), NeedsApproval> {
    let sessions = driver.sessions();
    let Some(person) = sessions.active_person() else {
        return Ok(());
    };
    if person.role.may(action) {
        return Ok(());
    }
    let approved = approval
        .and_then(|approval| sessions.person(&approval.approver))
        .is_some_and(|approver| approver.role.may(action));
    if approved {
        Ok(())
    } else {
        Err(NeedsApproval(action))
    }
}

/// `work`, approved if `approval` says so.
pub(crate) fn with_approval(work: UnitOfWork, approval: Option<&Approval>) -> UnitOfWork {
    match approval {
        Some(approval) => work.approved(&approval.approver, &approval.requested_by),
        None => work,
    }
}
