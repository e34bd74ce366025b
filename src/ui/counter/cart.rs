//! The cart: its lines with quantity (+/−, or typed, in kg or g for loose goods), a discount
//! per line, remove and clear; and the totals, tax and rounding lines, always in view. Every
//! figure is `counterbook-shop`'s `bill_totals` and `settle`.

use crate::i18n::{t, tr, Msg};
use crate::ui::problems::Shown;
use counterbook_shop::cart::Cart;
use counterbook_shop::money::{format_decimal_trimmed, parse_decimal};
use counterbook_shop::receipt::ReceiptNumbers;
use counterbook_shop::{LineDiscount, QuantityUnit};
use leptos::prelude::*;

use super::{Counter, Notice};
use crate::money::format_price;

/// `typed` without the name of `unit` at its end, if it ends with one: the unit's code
/// ("kg") or its name in the tablet's language ("किग्रा").
fn without_unit(typed: &str, unit: QuantityUnit) -> Option<&str> {
    let local = crate::i18n::unit_name(unit).to_lowercase();
    typed
        .strip_suffix(unit.as_str())
        .or_else(|| typed.strip_suffix(local.as_str()))
        .or_else(|| match unit {
            QuantityUnit::Piece => typed.strip_suffix("pcs"),
            _ => None,
        })
}

/// Sets a line's quantity from what the cashier typed: in the line's unit ("2", "1.25",
/// "1.25 kg", "1.25 किग्रा"), or for kg and l in grams and millilitres ("750 g", "250 ml").
/// The digits are ASCII (the quantity field shows its number so, to be typed over).
fn set_typed_quantity(cart: &mut Cart, index: usize, text: &str) -> Result<(), String> {
    let unit = cart.lines.get(index).map(|l| l.line.unit).ok_or_else(|| {
        tr(
            Msg::ProblemNoSuchLine,
            &[("line", &crate::i18n::count_text(index + 1))],
        )
    })?;
    let typed = text.trim().to_lowercase();
    let small = match unit {
        QuantityUnit::Kilogram => Some(QuantityUnit::Gram),
        QuantityUnit::Litre => Some(QuantityUnit::Millilitre),
        _ => None,
    };
    // "kg" ends with "g" (and Arabic "كغ" with "غ"): the line's own unit first.
    let in_small_units = small
        .filter(|_| without_unit(&typed, unit).is_none())
        .and_then(|small| without_unit(&typed, small));
    if let Some(number) = in_small_units {
        let milli = parse_decimal(number.trim(), 0).map_err(|e| e.shown())?;
        return cart.set_quantity(index, milli).map_err(|e| e.shown());
    }
    let number = without_unit(&typed, unit).unwrap_or(&typed).trim();
    cart.set_quantity_typed(index, number)
        .map_err(|e| e.shown())
}

/// How a line's quantity reads in its field: "3", or "1.25 kg" (the unit in the tablet's
/// language; the number in ASCII digits, as it is typed back).
pub(crate) fn quantity_text(quantity: i64, unit: QuantityUnit) -> String {
    if unit.is_loose() {
        format!(
            "{} {}",
            format_decimal_trimmed(quantity, unit.quantity_decimals()),
            crate::i18n::unit_name(unit)
        )
    } else {
        quantity.to_string()
    }
}

/// A discount typed for a line: "10%" or an amount ("5", "5.50").
pub(crate) fn parse_discount(text: &str, exponent: u32) -> Result<LineDiscount, String> {
    let typed = text.trim();
    if typed.is_empty() {
        return Ok(LineDiscount::None);
    }
    if let Some(percent) = typed.strip_suffix('%') {
        let basis_points = parse_decimal(percent.trim(), 2).map_err(|e| e.shown())?;
        if basis_points > 10_000 {
            return Err(t(Msg::CartDiscountTooLarge).into());
        }
        return Ok(LineDiscount::Percent {
            basis_points: basis_points as u32,
        });
    }
    let minor = parse_decimal(typed, exponent).map_err(|e| e.shown())?;
    Ok(LineDiscount::Amount { minor })
}

fn discount_text(discount: LineDiscount, exponent: u32) -> String {
    match discount {
        LineDiscount::None => String::new(),
        LineDiscount::Amount { minor } => format_decimal_trimmed(minor, exponent),
        LineDiscount::Percent { basis_points } => {
            format!("{}%", format_decimal_trimmed(i64::from(basis_points), 2))
        }
    }
}

pub(super) fn remove_selected(counter: &Counter) {
    let Some(index) = counter.selected.get_untracked() else {
        return;
    };
    remove_line(counter, index);
}

fn remove_line(counter: &Counter, index: usize) {
    counter.lines.update(|cart| {
        let _ = cart.remove(index);
    });
    let remaining = counter.lines.with_untracked(|cart| cart.lines.len());
    counter
        .selected
        .set((remaining > 0).then(|| index.min(remaining - 1)));
}

pub(super) fn change_selected_quantity(counter: &Counter, direction: i64) {
    let Some(index) = counter.selected.get_untracked() else {
        return;
    };
    step_quantity(counter, index, direction);
}

fn step_quantity(counter: &Counter, index: usize, direction: i64) {
    counter.lines.update(|cart| {
        let _ = cart.step_quantity(index, direction > 0);
    });
}

fn line_indexes(counter: Counter) -> Vec<usize> {
    (0..counter.lines.with(|cart| cart.lines.len())).collect()
}

#[component]
pub(super) fn CartView(counter: Counter) -> impl IntoView {
    let totals = counter.totals;
    view! {
        <section class="cart" data-testid="cart" aria-label=t(Msg::CartLabel)>
            <Show when=move || counter.lines.with(|cart| !cart.is_empty())
                fallback=|| view! { <p class="empty cart-empty">{t(Msg::CartEmpty)}</p> }>
                <table class="cart-lines">
                    <thead><tr>
                        <th class="name">{t(Msg::CartItem)}</th><th class="qty">{t(Msg::CartQty)}</th>
                        <th class="discount">{t(Msg::CartDiscount)}</th><th class="amount">{t(Msg::CartAmount)}</th><th></th>
                    </tr></thead>
                    <tbody>
                        <For each=move || line_indexes(counter)
                            key=|index| *index
                            children=move |index| view! { <CartLine counter=counter index=index totals=totals/> }/>
                    </tbody>
                </table>
            </Show>
        </section>
    }
}

/// What a cart row shows that changes only when another line takes its place (a line before
/// it removed): its product, name, unit and price. The row is built again only then; a scan,
/// a quantity or a discount changes its own cells, never the other rows.
#[derive(Clone, Debug, PartialEq)]
struct LineIdentity {
    product_id: String,
    name: String,
    unit: QuantityUnit,
    unit_price_minor: i64,
}

#[component]
fn CartLine(
    counter: Counter,
    index: usize,
    totals: Memo<Result<counterbook_shop::BillTotals, counterbook_shop::BillError>>,
) -> impl IntoView {
    let identity = Memo::new(move |_| {
        counter.lines.with(|cart| {
            cart.lines.get(index).map(|l| LineIdentity {
                product_id: l.line.product_id.clone(),
                name: l.line.name.clone(),
                unit: l.line.unit,
                unit_price_minor: l.line.unit_price_minor,
            })
        })
    });
    let quantity = Memo::new(move |_| {
        counter.lines.with(|cart| {
            cart.lines
                .get(index)
                .map(|l| (l.line.quantity, l.line.unit))
        })
    });
    let discount = Memo::new(move |_| {
        counter
            .lines
            .with(|cart| cart.lines.get(index).map(|l| l.line.discount))
    });
    // The line's amount: formatted again only when it changes, not whenever the bill does.
    let amount_minor = Memo::new(move |_| {
        totals.with(|totals| {
            totals
                .as_ref()
                .ok()
                .and_then(|t| t.lines.get(index))
                .map(|l| l.total_minor)
        })
    });
    let exponent = move || counter.settings.with(|s| s.minor_unit_exponent);
    let currency = move || counter.settings.with(|s| s.currency.clone());
    let amount = move || {
        amount_minor
            .get()
            .map(|minor| format_price(minor, &currency()))
            .unwrap_or_default()
    };
    let quantity_shown = move || {
        quantity
            .get()
            .map(|(quantity, unit)| quantity_text(quantity, unit))
            .unwrap_or_default()
    };
    let discount_shown = move || {
        discount
            .get()
            .map(|discount| discount_text(discount, exponent()))
            .unwrap_or_default()
    };
    let set_quantity = move |text: String| {
        let mut outcome = Ok(());
        counter
            .lines
            .update(|cart| outcome = set_typed_quantity(cart, index, &text));
        if let Err(problem) = outcome {
            counter.notice.set(Some(Notice::Error(problem)));
        }
    };
    let set_discount = move |text: String| {
        let outcome = parse_discount(&text, exponent()).and_then(|discount| {
            let mut changed = Ok(());
            counter
                .lines
                .update(|cart| changed = cart.set_discount(index, discount).map_err(|e| e.shown()));
            changed
        });
        if let Err(problem) = outcome {
            counter.notice.set(Some(Notice::Error(problem)));
        }
    };
    move || {
        identity.get().map(|current| {
            let name = current.name.clone();
            let unit = current.unit;
            let unit_price = format_price(current.unit_price_minor, &currency());
            let per = if unit.is_loose() {
                format!("{unit_price} / {}", crate::i18n::unit_name(unit))
            } else {
                unit_price
            };
            view! {
                <tr data-testid="cart-line" data-product-id=current.product_id.clone()
                    class:selected=move || counter.selected.get() == Some(index)
                    on:click=move |_| counter.selected.set(Some(index))>
                    <td class="name">
                        <span data-testid="cart-line-name">{name.clone()}</span>
                        <span class="unit-price">{per}</span>
                    </td>
                    <td class="qty">
                        <button type="button" class="step" aria-label=tr(Msg::CartOneLess, &[("name", &name)])
                            data-testid="quantity-down" on:click=move |_| step_quantity(&counter, index, -1)>"−"</button>
                        <input type="text" inputmode="decimal" class="quantity" data-testid="cart-line-quantity"
                            aria-label=tr(Msg::CartQuantityOf, &[("name", &name)])
                            prop:value=quantity_shown
                            on:change=move |ev| set_quantity(event_target_value(&ev))/>
                        <button type="button" class="step" aria-label=tr(Msg::CartOneMore, &[("name", &name)])
                            data-testid="quantity-up" on:click=move |_| step_quantity(&counter, index, 1)>"+"</button>
                    </td>
                    <td class="discount">
                        <input type="text" inputmode="decimal" data-testid="cart-line-discount"
                            aria-label=tr(Msg::CartDiscountOn, &[("name", &name)]) placeholder=t(Msg::CartDiscountPlaceholder)
                            prop:value=discount_shown
                            on:change=move |ev| set_discount(event_target_value(&ev))/>
                    </td>
                    <td class="amount" data-testid="cart-line-amount">{amount}</td>
                    <td>
                        <button type="button" class="remove" aria-label=tr(Msg::CartRemove, &[("name", &name)])
                            data-testid="remove-line" on:click=move |ev| {
                                ev.stop_propagation();
                                remove_line(&counter, index);
                            }>"×"</button>
                    </td>
                </tr>
            }
        })
    }
}

/// Subtotal, discounts, the tax per rate, rounding and the total: always in view.
#[component]
pub(super) fn Totals(counter: Counter) -> impl IntoView {
    let totals = counter.totals;
    let settlement = counter.settlement;
    let currency = move || counter.settings.with(|s| s.currency.clone());
    // Each figure is formatted again only when it changes (a scan changes the subtotal and
    // the total; the discount and rounding lines mostly stay as they are).
    let figure = move |pick: fn(&counterbook_shop::BillTotals) -> i64| {
        let minor = Memo::new(move |_| totals.with(|t| t.as_ref().map(pick).unwrap_or(0)));
        move || format_price(minor.get(), &currency())
    };
    let rounding =
        Memo::new(move |_| settlement.with(|s| s.as_ref().map(|s| s.rounding_minor).unwrap_or(0)));
    let payable = Memo::new(move |_| {
        settlement.with(|s| match s {
            Ok(s) => s.payable_minor,
            Err(_) => totals.with(|t| t.as_ref().map(|t| t.total_minor).unwrap_or(0)),
        })
    });
    // The tax lines by rate: a row is made when its rate first appears, and only its amount
    // changes after.
    let tax_rates = Memo::new(move |_| {
        totals.with(|t| {
            t.as_ref()
                .map(|t| {
                    t.tax_summary
                        .iter()
                        .map(|row| row.tax_rate_basis_points)
                        .collect()
                })
                .unwrap_or_else(|_| Vec::<u32>::new())
        })
    });
    let tax_at = move |rate: u32| {
        let minor = Memo::new(move |_| {
            totals.with(|t| {
                t.as_ref()
                    .ok()
                    .and_then(|t| {
                        t.tax_summary
                            .iter()
                            .find(|row| row.tax_rate_basis_points == rate)
                    })
                    .map(|row| row.tax_minor)
                    .unwrap_or(0)
            })
        });
        move || format_price(minor.get(), &currency())
    };
    view! {
        <section class="totals" data-testid="totals" aria-label=t(Msg::CartTotals)>
            <dl>
                <dt>{t(Msg::CartSubtotal)}</dt><dd data-testid="subtotal">{figure(|t| t.subtotal_minor)}</dd>
                <dt>{t(Msg::CartDiscount)}</dt><dd data-testid="discount-total">{figure(|t| -t.discount_minor)}</dd>
                <For each=move || tax_rates.get() key=|rate| *rate
                    children=move |rate| view! {
                        <dt>{tr(Msg::CartTaxAtRate, &[("rate", &crate::i18n::IntlNumbers.decimal(i64::from(rate), 2, 0))])}</dt>
                        <dd data-testid="tax-line">{tax_at(rate)}</dd>
                    }/>
                <dt>{t(Msg::CartRounding)}</dt><dd data-testid="rounding">{move || format_price(rounding.get(), &currency())}</dd>
                <dt class="total" id="total-label">{t(Msg::CartTotal)}</dt>
                <dd class="total" data-testid="total" aria-labelledby="total-label">{move || format_price(payable.get(), &currency())}</dd>
            </dl>
            {move || totals.with(|t| t.as_ref().err().map(|e| view! {
                <p class="form-error" role="alert">{e.shown()}</p>
            }))}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn quantities_are_typed_in_the_unit_or_its_thousandth() {
        let mut product = counterbook_shop::Product::new("p".into(), "Rice", 6000, "INR");
        product.unit = QuantityUnit::Kilogram;
        let mut cart = Cart::default();
        cart.add_product(&product, 1000).unwrap();
        let quantity = |cart: &Cart| cart.lines[0].line.quantity;
        for (typed, expected) in [("1.25", 1250), ("1.5 kg", 1500), ("750g", 750), ("2", 2000)] {
            set_typed_quantity(&mut cart, 0, typed).unwrap();
            assert_eq!(quantity(&cart), expected, "{typed}");
        }
        assert!(set_typed_quantity(&mut cart, 0, "0").is_err());
        assert_eq!(quantity_text(1250, QuantityUnit::Kilogram), "1.25 kg");
    }

    #[wasm_bindgen_test]
    fn discounts_are_amounts_or_percentages() {
        assert_eq!(
            parse_discount("10%", 2),
            Ok(LineDiscount::Percent { basis_points: 1000 })
        );
        assert_eq!(
            parse_discount("5.50", 2),
            Ok(LineDiscount::Amount { minor: 550 })
        );
        assert_eq!(parse_discount("", 2), Ok(LineDiscount::None));
        assert!(parse_discount("120%", 2).is_err());
    }
}
