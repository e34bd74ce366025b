//! A scanned code no product has: said at once, with "Add product" right there. The inline form
//! asks only what a sale needs (name, price, tax rate, unit) with the code as the barcode; the
//! product is added by the same action as on the products page (so a code or SKU in use is
//! refused the same way) and goes straight into the cart. Adding a product is a manager's
//! action: a cashier's asks for a manager's PIN on the spot, as on the products page.

use crate::i18n::{t, tr, Msg};
use crate::ui::problems::ProblemText;
use counterbook_shop::{GuardedAction, QuantityUnit};
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::{Counter, Notice};
use crate::actions::products::ProductActionError;
use crate::ui::problems::Shown;
use crate::ui::products::form::read_new_product_for_code;
use crate::ui::sign_in::ManagerApproval;

#[component]
pub(super) fn UnknownCode(counter: Counter, code: String) -> impl IntoView {
    let adding = counter.adding_product;
    // A new unknown code starts with the form closed.
    adding.set(false);
    let name = RwSignal::new(String::new());
    let price = RwSignal::new(String::new());
    let tax_rate = RwSignal::new(String::new());
    let unit = RwSignal::new(QuantityUnit::Piece.as_str().to_owned());
    let error = RwSignal::new(None::<String>);
    let saving = RwSignal::new(false);
    let name_input = NodeRef::<leptos::html::Input>::new();
    let shown_code = code.clone();
    let code = StoredValue::new(code);
    // Opened by its button or by F8: the name field takes the focus.
    Effect::new(move |_| {
        if adding.get() {
            request_animation_frame(move || {
                if let Some(input) = name_input.get_untracked() {
                    let _ = input.focus();
                }
            });
        }
    });
    let open_form = move |_| adding.set(true);
    // A cashier's new product waits here for a manager's PIN (adding products is a manager's).
    let awaiting_approval = RwSignal::new(None::<counterbook_shop::Product>);
    let save_product = move |product: counterbook_shop::Product,
                             approval: Option<crate::actions::Approval>| {
        saving.set(true);
        spawn_local(async move {
            let driver = counter.driver.get_value();
            match crate::actions::sale::add_product_for_code(
                &driver,
                product.clone(),
                approval.as_ref(),
            )
            .await
            {
                Ok(added) => {
                    // The notice (and this form) goes; the product is on the bill.
                    counter.add_picked(&added);
                    counter.notice.set(Some(Notice::Info(tr(
                        Msg::NewProductAdded,
                        &[("name", &added.name)],
                    ))));
                    counter.focus_scan_field();
                }
                Err(ProductActionError::NeedsApproval(_)) => {
                    awaiting_approval.set(Some(product));
                    saving.set(false);
                }
                // Nothing was saved (one transaction): the typed values stay for another try.
                Err(problem) => {
                    error.set(Some(problem.shown()));
                    saving.set(false);
                }
            }
        });
    };
    let approved = move |approval: crate::actions::Approval| {
        if let Some(product) = awaiting_approval.get_untracked() {
            awaiting_approval.set(None);
            save_product(product, Some(approval));
        }
    };
    let save = move || {
        if saving.get_untracked() {
            return;
        }
        let product = match read_new_product_for_code(
            &name.get_untracked(),
            &price.get_untracked(),
            &tax_rate.get_untracked(),
            &unit.get_untracked(),
            &code.get_value(),
            &counter.currency(),
        ) {
            Ok(product) => product,
            Err(problem) => return error.set(Some(problem)),
        };
        error.set(None);
        save_product(product, None);
    };
    let text_field = |label: &'static str, testid: &'static str, value: RwSignal<String>| {
        view! {
            <label>{label}
                <input type="text" data-testid=testid autocomplete="off"
                    prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev))/>
            </label>
        }
    };
    view! {
        <div class="counter-notice error unknown-code" role="alert" data-testid="unknown-code">
            <p>
                {t(Msg::NewProductUnknownCode)} " " <strong>{shown_code}</strong> ". "
                <Show when=move || !adding.get()>
                    <button type="button" class="link" data-testid="add-unknown-product"
                        on:click=open_form>{t(Msg::NewProductAdd)} <kbd>"F8"</kbd></button>
                </Show>
            </p>
            <Show when=move || adding.get()>
                <form class="new-product" data-testid="new-product-form" aria-label=t(Msg::NewProductAdd)
                    on:submit=move |ev| {
                        ev.prevent_default();
                        save();
                    }>
                    <label class="wide">{t(Msg::NewProductName)}
                        <input type="text" data-testid="new-product-name" autocomplete="off" node_ref=name_input
                            prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev))/>
                    </label>
                    {text_field(t(Msg::NewProductPrice), "new-product-price", price)}
                    {text_field(t(Msg::NewProductTaxRate), "new-product-tax-rate", tax_rate)}
                    <label>{t(Msg::NewProductUnit)}
                        <select data-testid="new-product-unit" prop:value=move || unit.get()
                            on:change=move |ev| unit.set(event_target_value(&ev))>
                            {QuantityUnit::ALL.iter().map(|unit| {
                                let code = unit.as_str();
                                view! { <option value=code>{crate::i18n::unit_name(*unit)}</option> }
                            }).collect_view()}
                        </select>
                    </label>
                    <p class="new-product-code">{t(Msg::NewProductBarcode)} " " {code.get_value()}</p>
                    <button type="submit" data-testid="save-new-product" disabled=move || saving.get()>
                        {t(Msg::NewProductAddAndSell)}
                    </button>
                    {move || error.get().map(|e| view! {
                        <p class="form-error" role="alert" data-testid="new-product-error"><ProblemText text=e/></p>
                    })}
                </form>
            </Show>
            <Show when=move || awaiting_approval.with(Option::is_some)>
                <ManagerApproval driver=counter.driver action=GuardedAction::ChangeProducts
                    on_approved=approved on_cancel=move |_| awaiting_approval.set(None)/>
            </Show>
        </div>
    }
}
