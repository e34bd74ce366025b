//! Adding and editing a product: name, price, SKU, barcodes, unit, tax rate, low-stock
//! threshold, category, and (when adding) the opening stock. What is typed is read here into a
//! [`Product`], with one clear message for the first thing wrong; the shop's own rules
//! (`Product::validate`) and the catalogue's (a barcode or SKU in use) are checked by the action.

use crate::i18n::{t, tr, Msg};
use crate::ui::problems::ProblemText;
use counterbook_shop::money::{format_decimal, format_decimal_trimmed, parse_decimal};
use counterbook_shop::QuantityUnit;
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::actions;
use crate::model::{name_key, Product, MAX_PRODUCT_NAME_CHARS};
use crate::money::{minor_digits, parse_price};
use crate::sync::SyncDriver;
use crate::ui::problems::Shown;
use crate::ui::sign_in::ManagerApproval;
use counterbook_shop::GuardedAction;

/// What the form's fields hold, as typed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Typed {
    name: String,
    price: String,
    sku: String,
    barcodes: String,
    unit: String,
    tax_rate: String,
    low_stock: String,
    category: String,
    opening_stock: String,
}

impl Typed {
    fn of(product: &Product) -> Typed {
        let digits = minor_digits(&product.currency);
        let decimals = product.unit.quantity_decimals();
        Typed {
            name: product.name.clone(),
            price: format_decimal(product.price_minor, digits),
            sku: product.sku.clone().unwrap_or_default(),
            barcodes: product.barcodes.join(" "),
            unit: product.unit.as_str().to_owned(),
            tax_rate: format_decimal_trimmed(i64::from(product.tax_rate_basis_points), 2),
            low_stock: product
                .low_stock_threshold
                .map(|threshold| format_decimal_trimmed(threshold, decimals))
                .unwrap_or_default(),
            category: product.category.clone().unwrap_or_default(),
            opening_stock: String::new(),
        }
    }

    /// The product these fields describe, on top of `base` (the product edited, or a blank
    /// one), or the first problem, said for a shopkeeper.
    fn read(&self, base: &Product, currency: &str) -> Result<Product, String> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err(t(Msg::ProductFormNameMissing).into());
        }
        if name.chars().count() > MAX_PRODUCT_NAME_CHARS {
            return Err(tr(
                Msg::ProductFormNameTooLong,
                &[("max", &MAX_PRODUCT_NAME_CHARS.to_string())],
            ));
        }
        let price_minor =
            parse_price(&self.price, minor_digits(currency)).map_err(|e| e.shown())?;
        let unit = QuantityUnit::parse(&self.unit)
            .map_err(|e| tr(Msg::ProductFormUnitProblem, &[("problem", &e.shown())]))?;
        let decimals = unit.quantity_decimals();
        let tax_rate = match self.tax_rate.trim() {
            "" => 0,
            text => {
                let basis_points = parse_decimal(text.trim_end_matches('%'), 2)
                    .map_err(|e| tr(Msg::ProductFormTaxRateProblem, &[("problem", &e.shown())]))?;
                u32::try_from(basis_points)
                    .ok()
                    .filter(|bp| *bp <= 10_000)
                    .ok_or(t(Msg::ProductFormTaxRateRange))?
            }
        };
        let low_stock_threshold = match self.low_stock.trim() {
            "" => None,
            text => Some(
                parse_decimal(text, decimals)
                    .map_err(|e| tr(Msg::ProductFormLowStockProblem, &[("problem", &e.shown())]))?,
            ),
        };
        let opening_stock = match self.opening_stock.trim() {
            "" => 0,
            text => parse_decimal(text, decimals).map_err(|e| {
                tr(
                    Msg::ProductFormOpeningStockProblem,
                    &[("problem", &e.shown())],
                )
            })?,
        };
        let barcodes: Vec<String> = self
            .barcodes
            .split(|c: char| c == ',' || c == '|' || c.is_whitespace())
            .filter(|code| !code.is_empty())
            .map(str::to_owned)
            .collect();
        let optional = |text: &str| Some(text.trim().to_owned()).filter(|text| !text.is_empty());
        let mut product = base.clone();
        product.name = name.to_owned();
        product.name_key = name_key(name);
        product.price_minor = price_minor;
        product.sku = optional(&self.sku);
        product.barcodes = barcodes;
        product.unit = unit;
        product.tax_rate_basis_points = tax_rate;
        product.low_stock_threshold = low_stock_threshold;
        product.category = optional(&self.category);
        if base.server_updated_at_millis.is_none() && base.id.is_empty() {
            product.stock_on_hand = opening_stock;
        }
        Ok(product)
    }
}

/// A new product from the few fields the counter asks for when a scanned code is unknown
/// (name, price, tax rate, unit), with that code as its barcode; read by the same rules as
/// this form, or the first problem, said for a shopkeeper.
pub fn read_new_product_for_code(
    name: &str,
    price: &str,
    tax_rate: &str,
    unit: &str,
    code: &str,
    currency: &str,
) -> Result<Product, String> {
    let typed = Typed {
        name: name.to_owned(),
        price: price.to_owned(),
        tax_rate: tax_rate.to_owned(),
        unit: unit.to_owned(),
        barcodes: code.to_owned(),
        ..Typed::default()
    };
    typed.read(&Product::new(String::new(), "", 0, currency), currency)
}

/// The add form, or with `editing` set, the edit form of that product.
#[component]
pub fn ProductForm(
    driver: StoredValue<SyncDriver, LocalStorage>,
    editing: RwSignal<Option<Product>>,
) -> impl IntoView {
    let currency = driver.with_value(|d| d.settings().currency.clone());
    // The shop's tax rates (settings), offered as the rate is typed.
    let shop_tax_rates = RwSignal::new(Vec::<u32>::new());
    spawn_local(async move {
        let driver = driver.get_value();
        if let Ok(Some(settings)) = driver.store().shop_settings().await {
            shop_tax_rates.set(settings.tax_rates_basis_points);
        }
    });
    let typed = RwSignal::new(Typed {
        unit: "piece".into(),
        ..Typed::default()
    });
    let error = RwSignal::new(None::<String>);
    let saving = RwSignal::new(false);
    let name_input = NodeRef::<leptos::html::Input>::new();

    // Opening a product for editing fills the form with it.
    Effect::new(move |_| {
        let fields = match editing.get() {
            Some(product) => Typed::of(&product),
            None => Typed {
                unit: "piece".into(),
                ..Typed::default()
            },
        };
        typed.set(fields);
        error.set(None);
    });

    // A cashier's change waits here for a manager's PIN: what was typed, and what it edits.
    let awaiting_approval = RwSignal::new(None::<(Option<Product>, Product)>);
    let save = move |before: Option<Product>,
                     product: Product,
                     approval: Option<actions::Approval>| {
        let driver_handle = driver.get_value();
        saving.set(true);
        spawn_local(async move {
            let driver = driver_handle;
            let outcome = match &before {
                Some(before) => {
                    actions::products::edit_product(
                        &driver,
                        before,
                        product.clone(),
                        approval.as_ref(),
                    )
                    .await
                }
                None => actions::products::add_product(&driver, product.clone(), approval.as_ref())
                    .await
                    .map(|_| ()),
            };
            match outcome {
                Ok(()) => {
                    error.set(None);
                    editing.set(None);
                    typed.set(Typed {
                        unit: "piece".into(),
                        ..Typed::default()
                    });
                    if let Some(input) = name_input.get_untracked() {
                        let _ = input.focus();
                    }
                }
                Err(actions::products::ProductActionError::NeedsApproval(_)) => {
                    awaiting_approval.set(Some((before, product)));
                }
                // Nothing was saved (one transaction); the typed values stay for another try.
                Err(problem) => error.set(Some(problem.shown())),
            }
            saving.set(false);
        });
    };
    let approved = move |approval: actions::Approval| {
        if let Some((before, product)) = awaiting_approval.get_untracked() {
            awaiting_approval.set(None);
            save(before, product, Some(approval));
        }
    };

    let form_currency = currency.clone();
    let on_submit = move |event: SubmitEvent| {
        event.prevent_default();
        if saving.get_untracked() {
            return;
        }
        let before = editing.get_untracked();
        let base = before
            .clone()
            .unwrap_or_else(|| Product::new(String::new(), "", 0, &form_currency));
        let product = match typed.with_untracked(|typed| typed.read(&base, &form_currency)) {
            Ok(product) => product,
            Err(problem) => return error.set(Some(problem)),
        };
        save(before, product, None);
    };

    let field = move |read: fn(&Typed) -> String| move || typed.with(read);
    macro_rules! setter {
        ($field:ident) => {
            move |event| typed.update(|typed| typed.$field = event_target_value(&event))
        };
    }

    view! {
        <form class="product-form" on:submit=on_submit data-testid="add-product-form"
            data-mode=move || if editing.with(Option::is_some) { "edit" } else { "add" }>
            <h2>{move || editing.with(|p| match p {
                Some(product) => tr(Msg::ProductFormEditTitle, &[("name", &product.name)]),
                None => t(Msg::ProductFormAddTitle).to_owned(),
            })}</h2>
            <label class="wide">
                {t(Msg::ProductFormName)}
                <input type="text" node_ref=name_input data-testid="product-name" autocomplete="off"
                    prop:value=field(|t| t.name.clone()) on:input=setter!(name)/>
            </label>
            <label>
                {tr(Msg::ProductFormPrice, &[("currency", &currency)])}
                <input type="text" inputmode="decimal" data-testid="product-price" autocomplete="off"
                    prop:value=field(|t| t.price.clone()) on:input=setter!(price)/>
            </label>
            <label>
                {t(Msg::ProductFormUnit)}
                <select data-testid="product-unit" prop:value=field(|t| t.unit.clone())
                    on:change=setter!(unit)>
                    {QuantityUnit::ALL.iter().map(|unit| {
                        let code = unit.as_str();
                        view! { <option value=code>{crate::i18n::unit_name(*unit)}</option> }
                    }).collect_view()}
                </select>
            </label>
            <label>
                {t(Msg::ProductFormSku)}
                <input type="text" data-testid="product-sku" autocomplete="off"
                    prop:value=field(|t| t.sku.clone()) on:input=setter!(sku)/>
            </label>
            <label class="wide">
                {t(Msg::ProductFormBarcodes)}
                <input type="text" inputmode="numeric" data-testid="product-barcodes" autocomplete="off"
                    prop:value=field(|t| t.barcodes.clone()) on:input=setter!(barcodes)/>
            </label>
            <label>
                {t(Msg::ProductFormTaxRate)}
                <input type="text" inputmode="decimal" data-testid="product-tax-rate" autocomplete="off"
                    list="shop-tax-rates"
                    prop:value=field(|t| t.tax_rate.clone()) on:input=setter!(tax_rate)/>
                <datalist id="shop-tax-rates">
                    {move || shop_tax_rates.get().into_iter().map(|rate| view! {
                        <option value=format_decimal_trimmed(i64::from(rate), 2)></option>
                    }).collect_view()}
                </datalist>
            </label>
            <label>
                {t(Msg::ProductFormLowStock)}
                <input type="text" inputmode="decimal" data-testid="product-low-stock" autocomplete="off"
                    prop:value=field(|t| t.low_stock.clone()) on:input=setter!(low_stock)/>
            </label>
            <label>
                {t(Msg::ProductFormCategory)}
                <input type="text" data-testid="product-category" autocomplete="off"
                    prop:value=field(|t| t.category.clone()) on:input=setter!(category)/>
            </label>
            <Show when=move || editing.with(Option::is_none)>
                <label>
                    {t(Msg::ProductFormOpeningStock)}
                    <input type="text" inputmode="decimal" data-testid="product-opening-stock" autocomplete="off"
                        prop:value=field(|t| t.opening_stock.clone()) on:input=setter!(opening_stock)/>
                </label>
            </Show>
            <div class="form-buttons">
                <button type="submit" data-testid="add-product" disabled=move || saving.get()>
                    {move || if editing.with(Option::is_some) { t(Msg::ProductFormSave) } else { t(Msg::ProductFormAdd) }}
                </button>
                <Show when=move || editing.with(Option::is_some)>
                    <button type="button" class="secondary" data-testid="cancel-edit"
                        on:click=move |_| editing.set(None)>{t(Msg::ProductFormCancel)}</button>
                </Show>
            </div>
            <Show when=move || error.with(Option::is_some)>
                <p class="form-error" role="alert" data-testid="form-error">
                    {move || error.get().map(|text| view! { <ProblemText text/> })}
                </p>
            </Show>
            <Show when=move || awaiting_approval.with(Option::is_some)>
                <ManagerApproval driver=driver action=GuardedAction::ChangeProducts
                    on_approved=approved on_cancel=move |_| awaiting_approval.set(None)/>
            </Show>
        </form>
    }
}
