//! "Void bill" and "Refund" on an opened bill (the counter's receipt, the bills page): a reason,
//! for a refund the quantities to give back per line (all that is left, to start with) and how
//! the money goes back. A cashier pressing them gets the manager's PIN dialog on the spot;
//! without the approval nothing is written ([`crate::actions::bills`]).

use crate::i18n::{count_text, t, tr, Msg};
use crate::ui::problems::{Detail, ProblemText};
use counterbook_shop::money::format_decimal_trimmed;
use counterbook_shop::receipt::ReceiptNumbers;
use counterbook_shop::refunds::refundable_quantities;
use counterbook_shop::{BillStatus, GuardedAction, PaymentMethod, RefundError};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::actions::bills::{self as bill_actions, BillActionError};
use crate::actions::sale::CompletedBill;
use crate::actions::Approval;
use crate::sync::SyncDriver;
use crate::ui::problems::Shown;
use crate::ui::sign_in::ManagerApproval;

/// Which form is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Undoing {
    Nothing,
    Void,
    Refund,
}

/// A void or refund asked for, kept while a manager's PIN is asked.
#[derive(Clone, Debug, PartialEq)]
enum Asked {
    Void {
        reason: String,
    },
    Refund {
        quantities: Vec<(usize, i64)>,
        method: PaymentMethod,
        reason: String,
    },
}

impl Asked {
    fn guarded_action(&self) -> GuardedAction {
        match self {
            Asked::Void { .. } => GuardedAction::VoidBill,
            Asked::Refund { .. } => GuardedAction::Refund,
        }
    }
}

/// A quantity as typed in the refund form ("1.25", ASCII: the field reads it back).
fn quantity_text(quantity: i64, unit: counterbook_shop::QuantityUnit) -> String {
    if unit.is_loose() {
        format_decimal_trimmed(quantity, 3)
    } else {
        quantity.to_string()
    }
}

/// Why a void or refund was refused, as shown: the conflict's words, or the server's after
/// the sentence as data.
fn refusal_view(reason: &str) -> AnyView {
    if reason == crate::storage::REFUSED_BY_CONFLICT {
        view! { <span class="detail">{format!(" ({})", t(Msg::UndoRefusedConflict))}</span> }
            .into_any()
    } else {
        view! { <Detail text=reason.to_owned()/> }.into_any()
    }
}

/// A quantity as shown ("1.25 kg", `Intl`'s digits, the unit in the tablet's language).
fn shown_quantity(quantity: i64, unit: counterbook_shop::QuantityUnit) -> String {
    let number = crate::i18n::IntlNumbers.decimal(quantity, unit.quantity_decimals(), 0);
    if unit.is_loose() {
        format!("{number} {}", crate::i18n::unit_name(unit))
    } else {
        number
    }
}

/// The void and refund controls of `completed`; `on_changed` gets the bill as it stands after
/// a void or refund.
#[component]
pub fn BillUndo(
    driver: StoredValue<SyncDriver, LocalStorage>,
    completed: CompletedBill,
    #[prop(into)] on_changed: Callback<CompletedBill>,
) -> impl IntoView {
    let bill = completed.bill.clone();
    let left = refundable_quantities(&bill, &completed.refunds);
    let anything_left = left.iter().any(|quantity| *quantity > 0);
    let open = RwSignal::new(Undoing::Nothing);
    let reason = RwSignal::new(String::new());
    let method = RwSignal::new(bill_actions::default_refund_method(&bill));
    let typed: Vec<RwSignal<String>> = bill
        .lines
        .iter()
        .zip(&left)
        .map(|(line, left)| RwSignal::new(quantity_text(*left, line.unit)))
        .collect();
    let typed = StoredValue::new(typed);
    let problem = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let awaiting = RwSignal::new(None::<Asked>);
    let shown = StoredValue::new(completed.clone());
    let lines = StoredValue::new(bill.lines.clone());

    let run = move |asked: Asked, approval: Option<Approval>| {
        busy.set(true);
        problem.set(None);
        spawn_local(async move {
            let driver = driver.get_value();
            let shown = shown.get_value();
            let outcome = match &asked {
                Asked::Void { reason } => {
                    bill_actions::void_bill(&driver, &shown, reason, approval.as_ref()).await
                }
                Asked::Refund {
                    quantities,
                    method,
                    reason,
                } => {
                    bill_actions::refund_bill(
                        &driver,
                        &shown,
                        quantities,
                        *method,
                        reason,
                        approval.as_ref(),
                    )
                    .await
                }
            };
            busy.set(false);
            match outcome {
                Ok(after) => {
                    open.set(Undoing::Nothing);
                    on_changed.run(after);
                }
                Err(BillActionError::NeedsApproval(_)) => awaiting.set(Some(asked)),
                // Nothing was written (one transaction): the form stays for another try.
                // A quantity left to refund in the line's unit, which the form knows.
                Err(BillActionError::Refund(RefundError::MoreThanSold { line, name, left })) => {
                    let unit = lines.with_value(|lines| lines.get(line).map(|l| l.unit));
                    let left = unit
                        .map(|unit| shown_quantity(left, unit))
                        .unwrap_or_default();
                    let problem_text = tr(
                        Msg::ProblemRefundMoreThanSold,
                        &[
                            ("line", &count_text(line + 1)),
                            ("name", &name),
                            ("left", &left),
                        ],
                    );
                    problem.set(Some(tr(
                        Msg::ProblemRefundRefused,
                        &[("problem", &problem_text)],
                    )))
                }
                Err(other) => problem.set(Some(other.shown())),
            }
        });
    };
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let reason = reason.get_untracked().trim().to_owned();
        let asked = match open.get_untracked() {
            Undoing::Nothing => return,
            Undoing::Void => Asked::Void { reason },
            Undoing::Refund => {
                let mut quantities = Vec::new();
                for (index, line) in lines.get_value().iter().enumerate() {
                    let text = typed.with_value(|typed| typed[index].get_untracked());
                    let text = text.trim();
                    if text.is_empty() || text == "0" {
                        continue;
                    }
                    match counterbook_shop::cart::parse_quantity(text, line.unit) {
                        Ok(quantity) => quantities.push((index, quantity)),
                        Err(error) => {
                            return problem.set(Some(tr(
                                Msg::ProblemAbout,
                                &[("subject", &line.name), ("problem", &error.shown())],
                            )));
                        }
                    }
                }
                Asked::Refund {
                    quantities,
                    method: method.get_untracked(),
                    reason,
                }
            }
        };
        run(asked, None);
    };
    let approved = move |approval: Approval| {
        if let Some(asked) = awaiting.get_untracked() {
            awaiting.set(None);
            run(asked, Some(approval));
        }
    };
    let refunded_lines = completed
        .refunds
        .iter()
        .filter(|refund| refund.stands())
        .flat_map(|refund| refund.lines.iter().cloned())
        .collect::<Vec<_>>();
    // Refunds the server refused: kept, said so, giving nothing back.
    let refused_refunds = completed
        .refunds
        .iter()
        .filter_map(|refund| Some((refund.refused.clone()?, refund.lines.clone())))
        .collect::<Vec<_>>();
    let refused_void = completed.refused_void.clone();
    let currency = completed.settings.currency.clone();
    let is_void = bill.status == BillStatus::Void;
    let methods = [
        PaymentMethod::Cash,
        PaymentMethod::Card,
        PaymentMethod::Upi,
        PaymentMethod::Credit,
    ];
    let has_customer = bill.customer_id.is_some();
    let no_refunds = !completed.refunds.iter().any(|refund| refund.stands());
    view! {
        <div class="bill-undo" data-testid="bill-undo">
            {is_void.then(|| view! {
                <p class="bill-void" role="status" data-testid="bill-void">{t(Msg::UndoBillIsVoid)}</p>
            })}
            {(refused_void.is_some() && !is_void).then(|| view! {
                <p class="form-error" role="alert" data-testid="void-refused">{t(Msg::UndoVoidRefused)}
                    {refused_void.as_deref().map(refusal_view)}</p>
            })}
            {(!refused_refunds.is_empty()).then(|| view! {
                <ul class="refunded refused" data-testid="refused-refunds">
                    {refused_refunds.iter().map(|(reason, lines)| view! {
                        <li class="form-error" data-testid="refund-refused">
                            {t(Msg::UndoRefundRefused)}
                            {lines.iter().map(|line| format!(" {} × {}", quantity_text(line.quantity, line.unit), line.name)).collect::<String>()}
                            {refusal_view(reason)}
                        </li>
                    }).collect_view()}
                </ul>
            })}
            {(!refunded_lines.is_empty()).then(|| {
                let currency = currency.clone();
                view! {
                    <ul class="refunded" data-testid="refunded-lines">
                        {refunded_lines.iter().map(|line| view! {
                            <li data-testid="refunded-line">
                                {format!("{} {} × {}", t(Msg::UndoRefunded), shown_quantity(line.quantity, line.unit), line.name)}
                                <span class="amount">{crate::money::format_price(line.total_minor, &currency)}</span>
                            </li>
                        }).collect_view()}
                    </ul>
                }
            })}
            {(!is_void && !anything_left).then(|| view! { <p class="help">{t(Msg::UndoNothingLeft)}</p> })}
            <Show when=move || !is_void && open.get() == Undoing::Nothing>
                <div class="undo-buttons">
                    {no_refunds.then(|| view! {
                        <button type="button" class="secondary danger" data-testid="void-bill"
                            on:click=move |_| open.set(Undoing::Void)>{t(Msg::UndoVoidBill)}</button>
                    })}
                    {anything_left.then(|| view! {
                        <button type="button" class="secondary" data-testid="refund-bill"
                            on:click=move |_| open.set(Undoing::Refund)>{t(Msg::UndoRefund)}</button>
                    })}
                </div>
            </Show>
            <Show when=move || open.get() != Undoing::Nothing>
                <form class="undo-form" data-testid="undo-form" on:submit=submit
                    aria-label=move || if open.get() == Undoing::Void { t(Msg::UndoVoidBill) } else { t(Msg::UndoRefund) }>
                    <Show when=move || open.get() == Undoing::Refund>
                        <table class="refund-lines">
                            <tbody>
                                {lines.with_value(|lines| lines.iter().enumerate().map(|(index, line)| {
                                    let quantity = typed.with_value(|typed| typed[index]);
                                    let sold = shown_quantity(line.quantity, line.unit);
                                    view! {
                                        <tr data-testid="refund-line">
                                            <td class="name">{line.name.clone()}
                                                <span class="detail">{format!(" / {sold}")}</span></td>
                                            <td>
                                                <label class="quantity-back">
                                                    <span class="visually-hidden">{t(Msg::UndoQuantityBack)}</span>
                                                    <input type="text" inputmode="decimal" autocomplete="off"
                                                        data-testid="refund-quantity"
                                                        prop:value=move || quantity.get()
                                                        on:input=move |ev| quantity.set(event_target_value(&ev))/>
                                                </label>
                                            </td>
                                        </tr>
                                    }
                                }).collect_view())}
                            </tbody>
                        </table>
                        <label>{t(Msg::UndoMoneyBack)}
                            <select data-testid="refund-method"
                                on:change=move |ev| {
                                    let chosen = event_target_value(&ev);
                                    if let Some(found) = methods.iter().find(|m| m.as_str() == chosen) {
                                        method.set(*found);
                                    }
                                }>
                                {methods.iter().filter(|m| has_customer || **m != PaymentMethod::Credit).map(|m| {
                                    let m = *m;
                                    view! {
                                        <option value=m.as_str() selected=move || method.get() == m>{crate::i18n::method_name(m)}</option>
                                    }
                                }).collect_view()}
                            </select>
                        </label>
                    </Show>
                    <label>{t(Msg::UndoReason)}
                        <input type="text" data-testid="undo-reason" autocomplete="off" required=true
                            prop:value=move || reason.get()
                            on:input=move |ev| reason.set(event_target_value(&ev))/>
                    </label>
                    <Show when=move || problem.get().is_some()>
                        <p class="form-error" role="alert" data-testid="undo-error">{move || problem.get().map(|text| view! { <ProblemText text/> })}</p>
                    </Show>
                    <div class="form-buttons">
                        <button type="submit" class="danger" prop:disabled=move || busy.get()
                            data-testid=move || if open.get() == Undoing::Void { "confirm-void" } else { "confirm-refund" }>
                            {move || if open.get() == Undoing::Void { t(Msg::UndoVoidBill) } else { t(Msg::UndoRefund) }}
                        </button>
                        <button type="button" class="secondary" data-testid="cancel-undo"
                            on:click=move |_| {
                                open.set(Undoing::Nothing);
                                problem.set(None);
                            }>{t(Msg::UndoCancel)}</button>
                    </div>
                </form>
            </Show>
            {move || awaiting.get().map(|asked| view! {
                <ManagerApproval driver=driver action=asked.guarded_action()
                    on_approved=approved on_cancel=move |_| awaiting.set(None)/>
            })}
        </div>
    }
}
