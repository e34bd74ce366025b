//! Undoing a completed bill: "Void bill" and "Refund", each a manager's action (a cashier's
//! needs a manager's PIN on the spot, [`super::check_role`]) and ONE transaction through
//! [`crate::storage`] with its outbox unit, sent with the approver's token. Every rule is
//! `counterbook-shop`'s ([`counterbook_shop::reversals`]); nothing is written without the
//! approval.

use counterbook_shop::refunds::{RefundError, RefundRequest};
use counterbook_shop::reversals::{self, VoidError, VoidRequest};
use counterbook_shop::{Bill, GuardedAction, PaymentMethod, Record, UnitOfWork};

use super::sale::CompletedBill;
use super::{check_role, with_approval, ActingNow, Approval, NeedsApproval};
use crate::storage::reversals::RecordOnBillError;
use crate::storage::StorageError;
use crate::sync::SyncDriver;

/// Why a void or refund saved nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BillActionError {
    #[error(transparent)]
    NeedsApproval(#[from] NeedsApproval),
    #[error("The bill cannot be voided: {0}.")]
    Void(VoidError),
    #[error("The refund cannot be made: {0}.")]
    Refund(RefundError),
    #[error("The bill is not on this tablet.")]
    UnknownBill,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

fn recorded<E>(
    outcome: Result<UnitOfWork, RecordOnBillError<E>>,
    refused: fn(E) -> BillActionError,
) -> Result<UnitOfWork, BillActionError> {
    outcome.map_err(|error| match error {
        RecordOnBillError::Storage(error) => BillActionError::Storage(error),
        RecordOnBillError::Refused(error) => refused(error),
        RecordOnBillError::UnknownBill => BillActionError::UnknownBill,
    })
}

/// The bill as it stands after `work` (the voided bill, or the refunds and payments added).
async fn reopened(
    driver: &SyncDriver,
    shown: &CompletedBill,
    work: &UnitOfWork,
) -> Result<CompletedBill, BillActionError> {
    let mut after = shown.clone();
    for record in &work.records {
        match record {
            Record::Bill(bill) => after.bill = bill.clone(),
            Record::Customer(customer) => after.customer = Some(customer.clone()),
            Record::Payment(payment) => after.payments.push(payment.clone()),
            Record::Refund(refund) => after.refunds.push(refund.clone()),
            _ => {}
        }
    }
    if after.customer.is_none() {
        if let Some(id) = &after.bill.customer_id {
            after.customer = driver.store().customer(id).await?;
        }
    }
    Ok(after)
}

/// Voids the shown bill with `reason`: the bill marked void, stock back, the customer's
/// credit off their balance, the payments refunded, in one transaction. Returns the bill as it
/// now stands.
pub async fn void_bill(
    driver: &SyncDriver,
    shown: &CompletedBill,
    reason: &str,
    approval: Option<&Approval>,
) -> Result<CompletedBill, BillActionError> {
    check_role(driver, GuardedAction::VoidBill, approval)?;
    let bill = &shown.bill;
    let base = driver
        .base_of(&bill.document_path(&driver.settings().shop_id))
        .await?;
    let acting = ActingNow::of(driver);
    let context = acting.context();
    let work = driver
        .store()
        .record_on_bill(&bill.id, Some(bill), |at_hand| {
            let request = VoidRequest {
                bill: &at_hand.bill,
                products: &at_hand.products,
                customer: at_hand.customer.as_ref(),
                refunds: &at_hand.refunds,
                base,
                reason,
            };
            reversals::void_bill(&context, &request, &mut crate::ids::new_id)
                .map(|work| with_approval(work, approval))
        })
        .await;
    let work = recorded(work, BillActionError::Void)?;
    driver.unit_saved(work.unit.clone());
    reopened(driver, shown, &work).await
}

/// Refunds `quantities` (line index, quantity) of the shown bill with `reason`, the money
/// back by `method`: the refund record, stock back, the money back, in one transaction.
/// Returns the bill as it now stands.
pub async fn refund_bill(
    driver: &SyncDriver,
    shown: &CompletedBill,
    quantities: &[(usize, i64)],
    method: PaymentMethod,
    reason: &str,
    approval: Option<&Approval>,
) -> Result<CompletedBill, BillActionError> {
    check_role(driver, GuardedAction::Refund, approval)?;
    let bill = &shown.bill;
    let step = shown.settings.cash_rounding_step_minor;
    let acting = ActingNow::of(driver);
    let context = acting.context();
    let work = driver
        .store()
        .record_on_bill(&bill.id, Some(bill), |at_hand| {
            let request = RefundRequest {
                quantities,
                method,
                reason,
                cash_rounding_step_minor: step,
            };
            reversals::refund_bill(
                &context,
                &at_hand.bill,
                &at_hand.refunds,
                &at_hand.products,
                at_hand.customer.as_ref(),
                &request,
                &mut crate::ids::new_id,
            )
            .map(|made| with_approval(made.work, approval))
        })
        .await;
    let work = recorded(work, BillActionError::Refund)?;
    driver.unit_saved(work.unit.clone());
    reopened(driver, shown, &work).await
}

/// How the money of a refund goes back by default: on the customer's balance for a bill
/// paid (partly) on credit, else by the bill's first other method.
pub fn default_refund_method(bill: &Bill) -> PaymentMethod {
    if bill.settlement.credit_minor > 0 && bill.customer_id.is_some() {
        return PaymentMethod::Credit;
    }
    bill.settlement
        .payments
        .iter()
        .map(|payment| payment.method)
        .find(|method| *method != PaymentMethod::Credit)
        .unwrap_or(PaymentMethod::Cash)
}
