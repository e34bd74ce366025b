//! The last sync error and the dead letters (units the server refused for good), with retry
//! and discard. Each is a typed value worded here in the tablet's language: a unit's label
//! ([`UnitLabel`]), why it stopped ([`DeadLetterReason`]), the last problem
//! ([`LastProblem`]); what came from elsewhere (the server's words, the browser's) is shown
//! after the sentence as data ([`Detail`]).

use crate::i18n::{field_name, t, tn, tr, unit_quantity, Msg};
use crate::ui::problems::{Detail, ProblemText, Shown};
use counterbook_firestore_wire::Code;
use counterbook_shop::QuantityUnit;
use counterbook_sync::{DeadLetterReason, PushFailure, SyncProblem, UnitLabel};
use leptos::prelude::*;

use crate::sync::{LastProblem, SyncDriver};

/// What a unit did, in the tablet's language ("Sale T2-000007", "Receive 1.5 kg × Rice").
pub fn label_text(label: &UnitLabel) -> String {
    let quantity = |quantity: i64, unit: &str| {
        unit_quantity(quantity, QuantityUnit::parse(unit).unwrap_or_default())
    };
    match label {
        UnitLabel::Sale { bill } => tr(Msg::SyncLabelSale, &[("bill", bill)]),
        UnitLabel::AddProduct { name } => tr(Msg::SyncLabelAddProduct, &[("name", name)]),
        UnitLabel::EditProduct { name } => tr(Msg::SyncLabelEditProduct, &[("name", name)]),
        UnitLabel::ReceiveStock {
            quantity: moved,
            unit,
            name,
        } => tr(
            Msg::SyncLabelReceiveStock,
            &[("quantity", &quantity(*moved, unit)), ("name", name)],
        ),
        UnitLabel::AdjustStock {
            quantity: moved,
            unit,
            name,
        } => tr(
            Msg::SyncLabelAdjustStock,
            &[("quantity", &quantity(*moved, unit)), ("name", name)],
        ),
        UnitLabel::ImportProducts { first, last, total } => tr(
            Msg::SyncLabelImportProducts,
            &[
                ("first", &crate::i18n::count_text(*first)),
                ("last", &crate::i18n::count_text(*last)),
                ("total", &crate::i18n::count_text(*total)),
            ],
        ),
        UnitLabel::AddCustomer { name } => tr(Msg::SyncLabelAddCustomer, &[("name", name)]),
        UnitLabel::EditCustomer { name } => tr(Msg::SyncLabelEditCustomer, &[("name", name)]),
        UnitLabel::ConfirmUpiPayment => t(Msg::SyncLabelConfirmUpi).into(),
        UnitLabel::SaveShopSettings => t(Msg::SyncLabelSaveSettings).into(),
        UnitLabel::VoidBill { bill } => tr(Msg::SyncLabelVoidBill, &[("bill", bill)]),
        UnitLabel::RefundBill { bill } => tr(Msg::SyncLabelRefundBill, &[("bill", bill)]),
        UnitLabel::ReapplyChange { field: Some(field) } => {
            tr(Msg::SyncLabelReapply, &[("field", &field_name(field))])
        }
        UnitLabel::ReapplyChange { field: None } => t(Msg::SyncLabelReapplyChange).into(),
        UnitLabel::Text { text } => text.clone(),
    }
}

/// A refusal's status code as people read it ("permission denied").
fn code_text(code: Code) -> &'static str {
    t(match code {
        Code::InvalidArgument => Msg::SyncCodeInvalidArgument,
        Code::PermissionDenied => Msg::SyncCodePermissionDenied,
        Code::OutOfRange => Msg::SyncCodeOutOfRange,
        Code::Unimplemented => Msg::SyncCodeUnimplemented,
        Code::DataLoss => Msg::SyncCodeDataLoss,
        Code::FailedPrecondition | Code::AlreadyExists | Code::NotFound => Msg::SyncCodeConflict,
        Code::Unauthenticated => Msg::SyncCodeNotSignedIn,
        _ => Msg::SyncCodeOther,
    })
}

/// Why a unit stopped, in the tablet's language, then what the server said as data.
pub fn reason_view(reason: &DeadLetterReason) -> impl IntoView {
    let sentence = match reason {
        DeadLetterReason::Refused { code, .. } => {
            tr(Msg::SyncReasonRefused, &[("why", code_text(*code))])
        }
        DeadLetterReason::GaveUp {
            failures, checking, ..
        } => tn(
            if *checking {
                Msg::SyncReasonGaveUpChecking
            } else {
                Msg::SyncReasonGaveUp
            },
            *failures as usize,
            &[],
        ),
        DeadLetterReason::CannotCheck { .. } => t(Msg::SyncReasonCannotCheck).into(),
        DeadLetterReason::Text { .. } => t(Msg::SyncReasonKept).into(),
    };
    let detail = match reason {
        DeadLetterReason::Text { text } => Some(text.clone()),
        other => other.server_message().map(str::to_owned),
    }
    .filter(|detail| !detail.trim().is_empty());
    view! {
        {sentence}
        {detail.map(|text| view! { <Detail text/> })}
    }
}

/// The sentence for a failed request, and its detail (the server's words or the browser's).
fn failure_text(failure: &PushFailure, sending: bool) -> (String, String) {
    let pick = |send: Msg, pull: Msg| if sending { send } else { pull };
    match failure {
        PushFailure::Network(detail) => (
            t(pick(
                Msg::SyncProblemSendNetwork,
                Msg::SyncProblemPullNetwork,
            ))
            .into(),
            detail.clone(),
        ),
        PushFailure::Server {
            http_status,
            message,
            ..
        } => (
            tr(
                pick(Msg::SyncProblemSendServer, Msg::SyncProblemPullServer),
                &[("status", &http_status.to_string())],
            ),
            message.clone(),
        ),
        PushFailure::MalformedReply(detail) => (
            t(pick(Msg::SyncProblemSendReply, Msg::SyncProblemPullReply)).into(),
            detail.clone(),
        ),
    }
}

/// The last problem in the tablet's language, its detail on a line of its own.
pub fn last_problem_view(problem: &LastProblem) -> impl IntoView {
    let text = match problem {
        LastProblem::Sync(problem) => {
            let (sentence, detail) =
                failure_text(problem.failure(), matches!(problem, SyncProblem::Send(_)));
            crate::ui::problems::with_detail(&sentence, &detail)
        }
        LastProblem::Storage(error) => error.shown(),
        LastProblem::Listen(detail) => {
            crate::ui::problems::with_detail(t(Msg::SyncProblemListen), detail)
        }
        LastProblem::EngineNotLoaded => t(Msg::SyncProblemEngineNotLoaded).into(),
    };
    view! { <ProblemText text/> }
}

/// The last sync error and any dead letters, with retry and discard.
#[component]
pub fn SyncProblems(driver: StoredValue<SyncDriver, LocalStorage>) -> impl IntoView {
    let status = driver.with_value(|d| d.status());
    view! {
        <Show when=move || status.with(|s| s.last_error.is_some())>
            <p class="sync-error" data-testid="sync-error" role="status">
                {move || status.with(|s| s.last_error.as_ref().map(|problem| last_problem_view(problem).into_any()))}
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
                                    <strong>{label_text(&dead.label)}</strong>
                                    <span class="reason" data-testid="dead-letter-reason">{reason_view(&dead.reason)}</span>
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
