//! Receiving and adjusting a product's stock, each a stock move with an optional (receive) or
//! required (adjust) reason.

use crate::i18n::{t, tr, Msg};
use crate::ui::problems::ProblemText;
use counterbook_shop::money::parse_decimal;
use counterbook_shop::{GuardedAction, StockMoveKind};
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::actions;
use crate::model::Product;
use crate::sync::SyncDriver;
use crate::ui::problems::Shown;
use crate::ui::products::list::format_stock;
use crate::ui::sign_in::ManagerApproval;

/// A signed quantity typed in the product's unit ("-2", "1.5").
fn read_quantity(text: &str, product: &Product) -> Result<i64, String> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let quantity = parse_decimal(digits, product.unit.quantity_decimals())
        .map_err(|e| tr(Msg::StockQuantityProblem, &[("problem", &e.shown())]))?;
    Ok(if negative { -quantity } else { quantity })
}

/// The stock form of `product` (shown while it is `Some`).
#[component]
pub fn StockForm(
    driver: StoredValue<SyncDriver, LocalStorage>,
    product: RwSignal<Option<Product>>,
) -> impl IntoView {
    let kind = RwSignal::new("receive".to_owned());
    let quantity = RwSignal::new(String::new());
    let reason = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        product.track();
        kind.set("receive".to_owned());
        quantity.set(String::new());
        reason.set(String::new());
        error.set(None);
    });
    // An adjustment by a cashier waits here for a manager's PIN.
    let awaiting_approval = RwSignal::new(None::<(Product, StockMoveKind, i64, String)>);
    let save = move |current: Product,
                     move_kind: StockMoveKind,
                     amount: i64,
                     reason_text: String,
                     approval: Option<actions::Approval>| {
        let driver = driver.get_value();
        spawn_local(async move {
            let reason = Some(reason_text.as_str()).filter(|r| !r.trim().is_empty());
            match actions::products::move_stock(
                &driver,
                &current,
                move_kind,
                amount,
                reason,
                approval.as_ref(),
            )
            .await
            {
                Ok(()) => product.set(None),
                Err(actions::products::ProductActionError::NeedsApproval(_)) => {
                    awaiting_approval.set(Some((current, move_kind, amount, reason_text)));
                }
                Err(problem) => error.set(Some(problem.shown())),
            }
        });
    };
    let on_submit = move |event: SubmitEvent| {
        event.prevent_default();
        let Some(current) = product.get_untracked() else {
            return;
        };
        let amount = match read_quantity(&quantity.get_untracked(), &current) {
            Ok(amount) => amount,
            Err(problem) => return error.set(Some(problem)),
        };
        let move_kind = match kind.get_untracked().as_str() {
            "adjust" => StockMoveKind::Adjust,
            _ => StockMoveKind::Receive,
        };
        let reason_text = reason.get_untracked();
        save(current, move_kind, amount, reason_text, None);
    };
    let approved = move |approval: actions::Approval| {
        if let Some((current, move_kind, amount, reason_text)) = awaiting_approval.get_untracked() {
            awaiting_approval.set(None);
            save(current, move_kind, amount, reason_text, Some(approval));
        }
    };
    view! {
        <Show when=move || product.with(Option::is_some)>
            <form class="stock-form" on:submit=on_submit data-testid="stock-form">
                <h2>{move || product.with(|p| p.as_ref().map(|p| tr(
                    Msg::StockTitle,
                    &[("name", &p.name), ("stock", &format_stock(p)), ("unit", crate::i18n::unit_name(p.unit))],
                )).unwrap_or_default())}</h2>
                <label>
                    {t(Msg::StockMove)}
                    <select data-testid="stock-kind" prop:value=move || kind.get()
                        on:change=move |ev| kind.set(event_target_value(&ev))>
                        <option value="receive">{t(Msg::StockReceive)}</option>
                        <option value="adjust">{t(Msg::StockAdjust)}</option>
                    </select>
                </label>
                <label>
                    {t(Msg::StockQuantity)}
                    <input type="text" inputmode="decimal" data-testid="stock-quantity" autocomplete="off"
                        prop:value=move || quantity.get()
                        on:input=move |ev| quantity.set(event_target_value(&ev))/>
                </label>
                <label class="wide">
                    {t(Msg::StockReason)}
                    <input type="text" data-testid="stock-reason" autocomplete="off"
                        prop:value=move || reason.get()
                        on:input=move |ev| reason.set(event_target_value(&ev))/>
                </label>
                <div class="form-buttons">
                    <button type="submit" data-testid="save-stock">{t(Msg::ProductFormSave)}</button>
                    <button type="button" class="secondary" on:click=move |_| product.set(None)>{t(Msg::ProductFormCancel)}</button>
                </div>
                <Show when=move || error.with(Option::is_some)>
                    <p class="form-error" role="alert" data-testid="stock-error">
                        {move || error.get().map(|text| view! { <ProblemText text/> })}
                    </p>
                </Show>
                <Show when=move || awaiting_approval.with(Option::is_some)>
                    <ManagerApproval driver=driver action=GuardedAction::AdjustStock
                        on_approved=approved on_cancel=move |_| awaiting_approval.set(None)/>
                </Show>
            </form>
        </Show>
    }
}
