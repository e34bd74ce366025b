//! The conflict inbox: changes that lost to another tablet's, and broken business rules, each
//! with "Use mine" (re-apply) or "OK" (keep the server's result).

use crate::i18n::{field_name, t, tr, unit_quantity, Msg};
use counterbook_shop::QuantityUnit;
use counterbook_sync::{ConflictEntry, ConflictKind};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::sync::SyncDriver;

/// What an entry says, by its kind, in the tablet's language (its `explanation` is the sync
/// engine's English, for logs). A stock is the server's integer in `unit`: a count of pieces,
/// or milli-units of loose goods, shown "1.5 kg"; a balance in minor units of the shop's
/// currency. A field is named as screens name it ("price"), not as it is stored.
fn explanation(entry: &ConflictEntry, currency: &str, unit: QuantityUnit) -> String {
    let server_integer = entry
        .server_value
        .as_ref()
        .and_then(|value| value.as_integer())
        .unwrap_or_default();
    match entry.kind {
        ConflictKind::Field => tr(
            Msg::ConflictField,
            &[(
                "field",
                &field_name(entry.field.as_deref().unwrap_or_default()),
            )],
        ),
        ConflictKind::BillVoided => t(Msg::ConflictBillVoided).into(),
        ConflictKind::FinalBill => t(Msg::ConflictFinalBill).into(),
        ConflictKind::DocumentMissing => t(Msg::ConflictDocumentMissing).into(),
        ConflictKind::Oversold => tr(
            Msg::ConflictOversold,
            &[("stock", &unit_quantity(server_integer, unit))],
        ),
        ConflictKind::CreditLimit => tr(
            Msg::ConflictCreditLimit,
            &[(
                "owed",
                &crate::money::format_price(server_integer, currency),
            )],
        ),
    }
}

/// The conflict inbox: changes that lost to another tablet's, and broken business rules.
#[component]
pub fn ConflictInbox(driver: StoredValue<SyncDriver, LocalStorage>) -> impl IntoView {
    let conflicts = driver.with_value(|d| d.conflicts());
    let currency = StoredValue::new(driver.with_value(|d| d.settings().currency.clone()));
    // Entries name documents by path; people know products by name, and a product's stock is
    // in its unit (one get per entry). `None` until a product's is read.
    let subject = move |path: &str| {
        let name = RwSignal::new(path.to_owned());
        let unit = RwSignal::new(Some(QuantityUnit::Piece));
        if let Some(("products", id)) = path
            .rsplit_once('/')
            .and_then(|(parent, id)| Some((parent.rsplit('/').next()?, id)))
        {
            unit.set(None);
            let id = id.to_owned();
            let driver = driver.get_value();
            spawn_local(async move {
                let product = driver.store().product(&id).await.ok().flatten();
                if let Some(product) = &product {
                    name.try_set(product.name.clone());
                }
                unit.try_set(Some(product.map(|p| p.unit).unwrap_or_default()));
            });
        }
        (name, unit)
    };
    view! {
        <Show when=move || conflicts.with(|c| !c.is_empty())>
            <section class="conflicts" data-testid="conflicts">
                <h2>{t(Msg::ConflictsTitle)}</h2>
                <ul>
                    <For each=move || conflicts.get() key=|entry| entry.id.clone()
                        children=move |entry| {
                            let id = entry.id.clone();
                            let reapply = entry.clone();
                            let can_reapply = entry.local_value.is_some();
                            let (name, unit) = subject(&entry.path);
                            let explained = entry.clone();
                            view! {
                                <li data-testid="conflict" data-kind=format!("{:?}", entry.kind)>
                                    <span>
                                        <strong>{move || name.get()}</strong>
                                        ": "
                                        {move || unit.get().map(|unit| currency.with_value(|currency| explanation(&explained, currency, unit)))}
                                    </span>
                                    {can_reapply.then(|| view! {
                                        <button type="button" data-testid="reapply-conflict"
                                            on:click=move |_| {
                                                let driver = driver.get_value();
                                                let entry = reapply.clone();
                                                spawn_local(async move { driver.reapply_conflict(&entry).await; });
                                            }>{t(Msg::ConflictsUseMine)}</button>
                                    })}
                                    <button type="button" class="secondary" data-testid="dismiss-conflict"
                                        on:click=move |_| {
                                            let driver = driver.get_value();
                                            let id = id.clone();
                                            spawn_local(async move { driver.dismiss_conflict(&id).await; });
                                        }>{t(Msg::ConflictsOk)}</button>
                                </li>
                            }
                        }
                    />
                </ul>
            </section>
        </Show>
    }
}
