//! A scanned code no product has: said at once, with "Add product" right there. The inline form
//! asks only what a sale needs (name, price, tax rate, unit) with the code as the barcode; the
//! product is added by the same action as on the products page (so a code or SKU in use is
//! refused the same way) and goes straight into the cart.

use counterbook_shop::QuantityUnit;
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::{Counter, Notice};
use crate::ui::products::form::read_new_product_for_code;

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
        saving.set(true);
        spawn_local(async move {
            let driver = counter.driver.get_value();
            match crate::actions::sale::add_product_for_code(&driver, product).await {
                Ok(added) => {
                    // The notice (and this form) goes; the product is on the bill.
                    counter.add_picked(&added);
                    counter
                        .notice
                        .set(Some(Notice::Info(format!("Added {}.", added.name))));
                    counter.focus_scan_field();
                }
                // Nothing was saved (one transaction): the typed values stay for another try.
                Err(problem) => {
                    error.set(Some(problem));
                    saving.set(false);
                }
            }
        });
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
                "Unknown code " <strong>{shown_code}</strong> ". "
                <Show when=move || !adding.get()>
                    <button type="button" class="link" data-testid="add-unknown-product"
                        on:click=open_form>"Add product" <kbd>"F8"</kbd></button>
                </Show>
            </p>
            <Show when=move || adding.get()>
                <form class="new-product" data-testid="new-product-form" aria-label="Add product"
                    on:submit=move |ev| {
                        ev.prevent_default();
                        save();
                    }>
                    <label class="wide">"Name"
                        <input type="text" data-testid="new-product-name" autocomplete="off" node_ref=name_input
                            prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev))/>
                    </label>
                    {text_field("Price", "new-product-price", price)}
                    {text_field("Tax rate %", "new-product-tax-rate", tax_rate)}
                    <label>"Unit"
                        <select data-testid="new-product-unit" prop:value=move || unit.get()
                            on:change=move |ev| unit.set(event_target_value(&ev))>
                            {QuantityUnit::ALL.iter().map(|unit| {
                                let name = unit.as_str();
                                view! { <option value=name>{name}</option> }
                            }).collect_view()}
                        </select>
                    </label>
                    <p class="new-product-code">"Barcode " {code.get_value()}</p>
                    <button type="submit" data-testid="save-new-product" disabled=move || saving.get()>
                        "Add and sell"
                    </button>
                    {move || error.get().map(|e| view! {
                        <p class="form-error" role="alert" data-testid="new-product-error">{e}</p>
                    })}
                </form>
            </Show>
        </div>
    }
}
