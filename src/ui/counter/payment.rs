//! Paying: cash with the amount received and the change due, card, UPI with a QR code drawn
//! on the tablet from the shop's UPI id (kept as "UPI, unconfirmed" until the cashier confirms
//! it), credit on the customer's account (refused over their limit), and splits across these;
//! then "Complete sale". The rules are `counterbook-shop`'s `settle`.

use crate::i18n::{method_name, t, tr, Msg};
use counterbook_shop::cart::Cart;
use counterbook_shop::money::parse_decimal;
use counterbook_shop::payment::round_to_step;
use counterbook_shop::{
    settle, BillError, BillTotals, Customer, PaymentError, PaymentMethod, Settlement, ShopSettings,
    Tender,
};
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::{Counter, TenderDraft};
use crate::money::format_price;
use crate::ui::problems::Shown;

/// The cart's totals, made once for the page: the lines' amounts, the totals, the payment
/// and the Complete button all read this one memo (each part making its own recomputed the
/// whole bill two more times on every scan).
pub(super) fn totals_memo(
    lines: RwSignal<Cart>,
    settings: RwSignal<ShopSettings>,
) -> Memo<Result<BillTotals, BillError>> {
    Memo::new(move |_| {
        let tax_mode = settings.with(|s| s.tax_mode);
        lines.with(|cart| cart.totals(tax_mode))
    })
}

/// The tenders as typed. An empty cash amount means the exact cash.
pub(super) fn tenders(counter: &Counter) -> Result<Vec<Tender>, String> {
    let exponent = counter.exponent();
    let drafts = counter.tenders.get_untracked();
    let totals = counter
        .lines
        .with_untracked(|cart| cart.totals(counter.settings.with_untracked(|s| s.tax_mode)))
        .map_err(|e| e.shown())?;
    tenders_of(
        &drafts,
        exponent,
        totals.total_minor,
        counter
            .settings
            .with_untracked(|s| s.cash_rounding_step_minor),
    )
}

fn tenders_of(
    drafts: &[TenderDraft],
    exponent: u32,
    total_minor: i64,
    rounding_step: i64,
) -> Result<Vec<Tender>, String> {
    let amount = |draft: &TenderDraft| -> Result<i64, String> {
        parse_decimal(&draft.amount_text, exponent).map_err(|e| {
            tr(
                Msg::ProblemAbout,
                &[
                    ("subject", method_name(draft.method)),
                    ("problem", &e.shown()),
                ],
            )
        })
    };
    let mut tenders = Vec::new();
    let mut non_cash = 0;
    for draft in drafts.iter().filter(|d| d.method != PaymentMethod::Cash) {
        let amount_minor = amount(draft)?;
        non_cash += amount_minor;
        tenders.push(match draft.method {
            PaymentMethod::Card => Tender::Card { amount_minor },
            PaymentMethod::Upi => Tender::Upi {
                amount_minor,
                confirmed: draft.confirmed,
            },
            _ => Tender::Credit { amount_minor },
        });
    }
    for draft in drafts.iter().filter(|d| d.method == PaymentMethod::Cash) {
        let received_minor = if draft.amount_text.trim().is_empty() {
            round_to_step((total_minor - non_cash).max(0), rounding_step)
        } else {
            amount(draft)?
        };
        tenders.insert(0, Tender::Cash { received_minor });
    }
    if tenders.is_empty() {
        // No method picked: exact cash, the most common sale.
        tenders.push(Tender::Cash {
            received_minor: round_to_step(total_minor, rounding_step),
        });
    }
    Ok(tenders)
}

/// Why the payment does not settle, in the cashier's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PaymentProblem {
    pub text: String,
    /// Credit past the customer's limit, which a manager may override.
    pub over_credit_limit: bool,
}

impl From<String> for PaymentProblem {
    fn from(text: String) -> PaymentProblem {
        PaymentProblem {
            text,
            over_credit_limit: false,
        }
    }
}

/// How the tenders settle the total, made once for the page (the totals and the payment
/// panel read it).
pub(super) fn settlement_memo(
    settings: RwSignal<ShopSettings>,
    tenders: RwSignal<Vec<TenderDraft>>,
    customer: RwSignal<Option<Customer>>,
    totals: Memo<Result<BillTotals, BillError>>,
) -> Memo<Result<Settlement, PaymentProblem>> {
    Memo::new(move |_| {
        let totals = totals.get().map_err(|e| e.shown())?;
        let (exponent, step) =
            settings.with(|s| (s.minor_unit_exponent, s.cash_rounding_step_minor));
        let tenders =
            tenders.with(|drafts| tenders_of(drafts, exponent, totals.total_minor, step))?;
        customer.with(|customer| {
            settle(totals.total_minor, &tenders, step, customer.as_ref()).map_err(|e| {
                PaymentProblem {
                    over_credit_limit: matches!(e, PaymentError::CreditOverLimit { .. }),
                    // A payment problem in the cashier's words, amounts in the shop's currency.
                    text: crate::ui::problems::payment_problem(
                        &e,
                        &settings.with_untracked(|s| s.currency.clone()),
                    ),
                }
            })
        })
    })
}

/// What a new card, UPI or credit part should take: the total less the other non-cash parts.
pub(super) fn remaining_for_new_tender(counter: &Counter) -> i64 {
    let tax_mode = counter.settings.with_untracked(|s| s.tax_mode);
    let total = counter
        .lines
        .with_untracked(|cart| cart.totals(tax_mode))
        .map(|t| t.total_minor)
        .unwrap_or(0);
    let exponent = counter.exponent();
    let paid: i64 = counter.tenders.with_untracked(|drafts| {
        drafts
            .iter()
            .filter(|d| d.method != PaymentMethod::Cash)
            .filter_map(|d| parse_decimal(&d.amount_text, exponent).ok())
            .sum()
    });
    total - paid
}

fn update_tender(counter: Counter, method: PaymentMethod, change: impl FnOnce(&mut TenderDraft)) {
    counter.tenders.update(|tenders| {
        if let Some(tender) = tenders.iter_mut().find(|t| t.method == method) {
            change(tender);
        }
    });
}

#[component]
pub(super) fn PaymentPanel(counter: Counter) -> impl IntoView {
    let settlement = counter.settlement;
    let currency = move || counter.settings.with(|s| s.currency.clone());
    let money = move |minor: i64| format_price(minor, &currency());
    let method_button = move |method: PaymentMethod, testid: &'static str| {
        view! {
            <button type="button" class="method" data-testid=testid
                class:chosen=move || counter.tenders.with(|t| t.iter().any(|d| d.method == method))
                on:click=move |_| counter.add_tender(method)>
                {method_name(method)}
            </button>
        }
    };
    view! {
        <section class="payment" data-testid="payment" aria-label=t(Msg::PaymentLabel)>
            <div class="methods" role="group" aria-label=t(Msg::PaymentMethods)>
                {method_button(PaymentMethod::Cash, "method-cash")}
                {method_button(PaymentMethod::Card, "method-card")}
                {method_button(PaymentMethod::Upi, "method-upi")}
                {method_button(PaymentMethod::Credit, "method-credit")}
            </div>
            <Show when=move || counter.paying.get()>
                <ul class="tenders">
                    <For each=move || counter.tenders.get() key=|t| t.method
                        children=move |tender| view! { <TenderRow counter=counter method=tender.method/> }/>
                </ul>
            </Show>
            {move || settlement.with(|s| match s {
                Ok(s) if s.change_minor > 0 => Some(view! {
                    <p class="change">{t(Msg::PaymentChangeDue)} " " <strong data-testid="change-due">{money(s.change_minor)}</strong></p>
                }.into_any()),
                Ok(_) => None,
                Err(problem) => counter.paying.get().then(|| view! {
                    <p class="form-error" role="alert" data-testid="payment-error">{problem.text.clone()}</p>
                    {problem.over_credit_limit.then(|| view! {
                        <button type="button" class="secondary" data-testid="credit-override"
                            disabled=move || counter.busy.get()
                            on:click=move |_| counter.override_credit_limit(None)>
                            {t(Msg::PaymentManagerApproval)}
                        </button>
                    })}
                }.into_any()),
            })}
            <button type="button" class="complete" data-testid="complete-sale" aria-label=t(Msg::PaymentCompleteSale)
                disabled=move || counter.busy.get() || counter.lines.with(|cart| cart.is_empty())
                    || (counter.paying.get() && settlement.with(Result::is_err))
                on:click=move |_| counter.complete()>
                {t(Msg::PaymentCompleteSale)} <kbd>"F9"</kbd>
            </button>
        </section>
    }
}

#[component]
fn TenderRow(counter: Counter, method: PaymentMethod) -> impl IntoView {
    let draft = Memo::new(move |_| {
        counter
            .tenders
            .with(|t| t.iter().find(|d| d.method == method).cloned())
    });
    let text = move || {
        draft.with(|d| {
            d.as_ref()
                .map(|d| d.amount_text.clone())
                .unwrap_or_default()
        })
    };
    let set_text = move |value: String| update_tender(counter, method, |t| t.amount_text = value);
    let remove = move |_| {
        counter
            .tenders
            .update(|tenders| tenders.retain(|t| t.method != method))
    };
    let input = if method == PaymentMethod::Cash {
        view! {
            <label class="tender-amount">
                {t(Msg::PaymentAmountReceived)}
                <input type="text" inputmode="decimal" data-testid="amount-received"
                    node_ref=counter.received_input autocomplete="off" placeholder=t(Msg::PaymentExact)
                    prop:value=text on:input=move |ev| set_text(event_target_value(&ev))/>
            </label>
        }
        .into_any()
    } else {
        view! {
            <label class="tender-amount">
                {tr(Msg::PaymentMethodAmount, &[("method", method_name(method))])}
                <input type="text" inputmode="decimal" data-testid=format!("amount-{}", method.as_str())
                    autocomplete="off" prop:value=text on:input=move |ev| set_text(event_target_value(&ev))/>
            </label>
        }
        .into_any()
    };
    view! {
        <li class="tender" data-testid="tender" data-method=method.as_str()>
            <span class="tender-name">{method_name(method)}</span>
            {input}
            <button type="button" class="remove" aria-label=tr(Msg::PaymentRemoveMethod, &[("method", method_name(method))])
                on:click=remove>"×"</button>
            {(method == PaymentMethod::Upi).then(|| crate::ui::lazy::upi_code(counter))}
        </li>
    }
}

/// The UPI payment QR code for the UPI part, drawn on the tablet, and its confirmation.
#[component]
pub(crate) fn UpiCode(counter: Counter) -> impl IntoView {
    let next_number = RwSignal::new(String::new());
    spawn_local(async move {
        let driver = counter.driver.get_value();
        let series = crate::storage::sales::device_series(driver.device_id());
        let next = match driver.store().last_bill_number(&series).await {
            Ok(Some(last)) => last.next().map(|n| n.to_string()).unwrap_or_default(),
            Ok(None) => counterbook_shop::BillNumber::first(&series)
                .map(|n| n.to_string())
                .unwrap_or_default(),
            Err(_) => String::new(),
        };
        next_number.set(next);
    });
    let confirmed = move || {
        counter.tenders.with(|t| {
            t.iter()
                .any(|d| d.method == PaymentMethod::Upi && d.confirmed)
        })
    };
    let qr = move || {
        let exponent = counter.settings.with(|s| s.minor_unit_exponent);
        let amount = counter.tenders.with(|t| {
            t.iter()
                .find(|d| d.method == PaymentMethod::Upi)
                .and_then(|d| parse_decimal(&d.amount_text, exponent).ok())
                .unwrap_or(0)
        });
        let url = counter.settings.with(|settings| {
            counterbook_shop::receipt::upi_payment_url(settings, amount, &next_number.get())
        });
        match url {
            Ok(url) => match counterbook_shop::receipt::qr_svg(&url, 160) {
                Ok(svg) => view! {
                    <div class="upi-qr" data-testid="upi-qr" data-upi-url=url.clone()
                        role="img" aria-label=tr(Msg::PaymentUpiQrFor, &[("amount", &format_price(amount, &counter.currency()))])
                        inner_html=svg></div>
                }
                .into_any(),
                // The only way a QR code fails: its text is too long.
                Err(_) => view! {
                    <p class="form-error">{tr(Msg::PaymentNoUpiQr, &[("problem", t(Msg::ProblemQrTooLong))])}</p>
                }
                .into_any(),
            },
            Err(problem) => view! {
                <p class="form-error" data-testid="upi-problem">
                    {tr(Msg::PaymentNoUpiQr, &[("problem", &problem.shown())])}
                </p>
            }
            .into_any(),
        }
    };
    view! {
        <div class="upi">
            {qr}
            <p class="upi-status" class:confirmed=confirmed data-testid="upi-status">
                {move || if confirmed() { t(Msg::PaymentUpiConfirmed) } else { t(Msg::PaymentUpiUnconfirmed) }}
            </p>
            <button type="button" class="secondary" data-testid="confirm-upi"
                disabled=confirmed
                on:click=move |_| update_tender(counter, PaymentMethod::Upi, |t| t.confirmed = true)>
                {t(Msg::PaymentConfirmUpi)}
            </button>
        </div>
    }
}
