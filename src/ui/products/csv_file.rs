//! CSV import and export of the catalogue, in `counterbook-shop`'s format. An import reads the
//! file, checks its codes against the catalogue, previews the good rows and every bad one, and
//! on confirmation saves the good rows in units of up to 498 writes, with a progress bar.

use crate::i18n::{count_text, t, tn, tr, Msg};
use crate::ui::problems::ProblemText;
use counterbook_shop::csv_import::{
    export_products_csv_header, export_products_csv_rows, import_products_csv, RowError, RowProblem,
};
use counterbook_shop::{GuardedAction, ShopSettings};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::actions;
use crate::model::Product;
use crate::money::minor_digits;
use crate::storage::{ProductPosition, ProductQuery};
use crate::sync::SyncDriver;
use crate::ui::problems::Shown;
use crate::ui::sign_in::ManagerApproval;

/// Bad rows listed in the preview; the rest are counted.
const ERRORS_SHOWN: usize = 200;
/// Products read at once for an export.
const EXPORT_PAGE: u32 = 1_000;

/// Where an import is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ImportState {
    Idle,
    Reading,
    /// The file as read: good rows and bad ones.
    Preview {
        products: Vec<Product>,
        errors: Vec<RowError>,
    },
    Importing {
        saved: usize,
        total: usize,
    },
    Done {
        imported: usize,
    },
    Failed(String),
}

fn shop_settings(driver: &SyncDriver) -> ShopSettings {
    let currency = driver.settings().currency.clone();
    ShopSettings {
        minor_unit_exponent: minor_digits(&currency),
        currency,
        ..ShopSettings::default()
    }
}

async fn read_file(input: &web_sys::HtmlInputElement) -> Result<Option<Vec<u8>>, String> {
    let Some(file) = input.files().and_then(|files| files.get(0)) else {
        return Ok(None);
    };
    let buffer = JsFuture::from(file.array_buffer())
        .await
        .map_err(|_| t(Msg::CsvCannotRead).to_owned())?;
    Ok(Some(js_sys::Uint8Array::new(&buffer).to_vec()))
}

/// Reads the file, then moves rows whose barcode or SKU the catalogue already has to the errors.
async fn preview(driver: &SyncDriver, bytes: &[u8]) -> Result<ImportState, String> {
    let settings = shop_settings(driver);
    let read = import_products_csv(bytes, &settings, &mut crate::ids::new_id)
        .map_err(|e| crate::ui::problems::nested(Msg::CsvCannotImport, &e.shown()))?;
    let barcodes: Vec<String> = read
        .products
        .iter()
        .flat_map(|row| row.product.barcodes.iter().cloned())
        .collect();
    let skus: Vec<String> = read
        .products
        .iter()
        .filter_map(|row| row.product.sku.clone())
        .collect();
    let taken = driver
        .store()
        .taken_codes(&barcodes, &skus)
        .await
        .map_err(|e| e.shown())?;
    let mut errors = read.errors;
    let mut products = Vec::with_capacity(read.products.len());
    for row in read.products {
        let product = row.product;
        let barcode_taken = product
            .barcodes
            .iter()
            .find_map(|code| taken.barcodes.get(code).map(|owner| (code, owner)));
        let sku_taken = product
            .sku
            .as_ref()
            .and_then(|sku| taken.skus.get(sku).map(|owner| (sku, owner)));
        if let Some((code, owner)) = barcode_taken {
            errors.push(RowError {
                row: row.row,
                column: Some("barcode"),
                problem: RowProblem::BarcodeInCatalogue {
                    barcode: code.clone(),
                    owner: owner.clone(),
                },
            });
        } else if let Some((sku, owner)) = sku_taken {
            errors.push(RowError {
                row: row.row,
                column: Some("sku"),
                problem: RowProblem::SkuInCatalogue {
                    sku: sku.clone(),
                    owner: owner.clone(),
                },
            });
        } else {
            products.push(product);
        }
    }
    counterbook_firestore_wire::sort::sort_by(&mut errors, |a, b| a.row.cmp(&b.row));
    Ok(ImportState::Preview { products, errors })
}

/// Every product, read a page at a time by cursor, as the parts of a CSV file: the header,
/// then each page's rows as soon as it is read, so that neither the catalogue nor the whole
/// text is ever held in the wasm memory (which never shrinks again): at 100,000 products that
/// was about 40 MB of products and three copies of an 8 MB text at once.
async fn export(driver: &SyncDriver) -> Result<js_sys::Array, String> {
    let query = ProductQuery::default();
    let settings = shop_settings(driver);
    let parts = js_sys::Array::of1(&JsValue::from_str(&export_products_csv_header()));
    let mut after: Option<ProductPosition> = None;
    loop {
        let page = driver
            .store()
            .products_after(&query, after.as_ref(), EXPORT_PAGE)
            .await
            .map_err(|e| e.shown())?;
        parts.push(&JsValue::from_str(&export_products_csv_rows(
            &page, &settings,
        )));
        if page.len() < EXPORT_PAGE as usize {
            break;
        }
        after = page.last().map(ProductPosition::of);
    }
    Ok(parts)
}

/// Hands `text` to the browser as a download called `file_name`, of type `mime`.
pub(crate) fn download(text: &str, file_name: &str, mime: &str) -> Result<(), JsValue> {
    download_parts(
        &js_sys::Array::of1(&JsValue::from_str(text)),
        file_name,
        mime,
    )
}

/// Hands the texts `parts`, one after the other, to the browser as a download called
/// `file_name`, of type `mime`.
fn download_parts(parts: &js_sys::Array, file_name: &str, mime: &str) -> Result<(), JsValue> {
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_str_sequence_and_options(parts, &options)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob)?;
    let document = web_sys::window()
        .and_then(|window| window.document())
        .ok_or_else(|| JsValue::from_str("no document"))?;
    let link: web_sys::HtmlAnchorElement = document.create_element("a")?.unchecked_into();
    link.set_href(&url);
    link.set_download(file_name);
    link.click();
    // Revoked a minute later, not at once: the browser reads the file after the click.
    let revoke = wasm_bindgen::closure::Closure::once_into_js(move || {
        let _ = web_sys::Url::revoke_object_url(&url);
    });
    web_sys::window()
        .ok_or_else(|| JsValue::from_str("no window"))?
        .set_timeout_with_callback_and_timeout_and_arguments_0(revoke.unchecked_ref(), 60_000)?;
    Ok(())
}

/// The "Import CSV" file input and "Export CSV" button, with the import's preview and progress.
#[component]
pub fn CsvImportExport(driver: StoredValue<SyncDriver, LocalStorage>) -> impl IntoView {
    let state = RwSignal::new(ImportState::Idle);
    let input = NodeRef::<leptos::html::Input>::new();
    let exporting = RwSignal::new(false);

    let on_file = move |_| {
        let Some(element) = input.get_untracked() else {
            return;
        };
        let driver = driver.get_value();
        state.set(ImportState::Reading);
        spawn_local(async move {
            let next = match read_file(&element).await {
                Ok(Some(bytes)) => match preview(&driver, &bytes).await {
                    Ok(preview) => preview,
                    Err(problem) => ImportState::Failed(problem),
                },
                Ok(None) => ImportState::Idle,
                Err(problem) => ImportState::Failed(problem),
            };
            // The same file can be chosen again after a fix.
            element.set_value("");
            state.set(next);
        });
    };
    // A cashier's import waits for a manager's PIN (adding products is a manager's).
    let awaiting_approval = RwSignal::new(false);
    let import = move |approval: Option<actions::Approval>| {
        let ImportState::Preview { products, .. } = state.get_untracked() else {
            return;
        };
        let total = products.len();
        let driver = driver.get_value();
        if actions::check_role(&driver, GuardedAction::ChangeProducts, approval.as_ref()).is_err() {
            // Nothing is saved: the preview stays, and a manager is asked.
            awaiting_approval.set(true);
            return;
        }
        state.set(ImportState::Importing { saved: 0, total });
        spawn_local(async move {
            let progress = move |saved: usize, total: usize| {
                state.set(ImportState::Importing { saved, total })
            };
            let next = match actions::products::import_products(
                &driver,
                &products,
                approval.as_ref(),
                progress,
            )
            .await
            {
                Ok(imported) => ImportState::Done { imported },
                Err(problem) => ImportState::Failed(crate::ui::problems::nested(
                    Msg::CsvImportStopped,
                    &problem.shown(),
                )),
            };
            state.set(next);
        });
    };
    let confirm = move |_| import(None);
    let approved = move |approval: actions::Approval| {
        awaiting_approval.set(false);
        import(Some(approval));
    };
    let on_export = move |_| {
        exporting.set(true);
        let driver = driver.get_value();
        spawn_local(async move {
            match export(&driver).await {
                Ok(parts) => {
                    if download_parts(&parts, "products.csv", "text/csv;charset=utf-8").is_err() {
                        state.set(ImportState::Failed(t(Msg::CsvExportNotSaved).into()));
                    }
                }
                Err(problem) => state.set(ImportState::Failed(problem)),
            }
            exporting.set(false);
        });
    };

    let panel = move || {
        match state.get() {
        ImportState::Idle => ().into_any(),
        ImportState::Reading => view! {
            <p class="import-status" data-testid="import-reading">{t(Msg::CsvReading)}</p>
        }
        .into_any(),
        ImportState::Preview { products, errors } => {
            let ready = products.len();
            let bad = errors.len();
            let hidden = bad.saturating_sub(ERRORS_SHOWN);
            let sample: Vec<Product> = products.into_iter().take(5).collect();
            view! {
                <section class="import-preview" data-testid="import-preview">
                    <h2>{t(Msg::CsvPreview)}</h2>
                    <p>
                        <strong data-testid="import-ready-count">{count_text(ready)}</strong>
                        " " {t(Msg::CsvReady)} " "
                        <strong data-testid="import-error-count">{count_text(bad)}</strong>
                        " " {t(Msg::CsvRowsWithErrors)}
                    </p>
                    {(!sample.is_empty()).then(|| view! {
                        <ul class="import-sample">
                            {sample.into_iter().map(|product| view! {
                                <li>{product.name.clone()}</li>
                            }).collect_view()}
                        </ul>
                    })}
                    {(bad > 0).then(|| view! {
                        <table class="import-errors" data-testid="import-errors">
                            <thead><tr><th>{t(Msg::CsvRow)}</th><th>{t(Msg::CsvColumn)}</th><th>{t(Msg::CsvProblem)}</th></tr></thead>
                            <tbody>
                                {errors.into_iter().take(ERRORS_SHOWN).map(|error| view! {
                                    <tr data-testid="import-error">
                                        <td>{count_text(error.row as usize)}</td>
                                        // The column's name in the file's header row, as the
                                        // file must write it (not translated).
                                        <td><code>{error.column.unwrap_or("")}</code></td>
                                        <td>{error.problem.shown()}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                        {(hidden > 0).then(|| view! { <p>{tn(Msg::CsvMoreErrors, hidden, &[])}</p> })}
                    })}
                    <div class="form-buttons">
                        <button type="button" data-testid="import-confirm" disabled=ready == 0
                            on:click=confirm>{tn(Msg::CsvImportCount, ready, &[])}</button>
                        <button type="button" class="secondary" data-testid="import-cancel"
                            on:click=move |_| state.set(ImportState::Idle)>{t(Msg::ProductFormCancel)}</button>
                    </div>
                </section>
            }
            .into_any()
        }
        ImportState::Importing { saved, total } => view! {
            <section class="import-preview">
                <label>
                    {tr(Msg::CsvSaving, &[("saved", &count_text(saved)), ("total", &count_text(total))])}
                    <progress data-testid="import-progress" max=total value=saved></progress>
                </label>
            </section>
        }
        .into_any(),
        ImportState::Done { imported } => view! {
            <p class="import-status" data-testid="import-done" role="status">
                {tn(Msg::CsvImported, imported, &[])}
                <button type="button" class="secondary" on:click=move |_| state.set(ImportState::Idle)>{t(Msg::ConflictsOk)}</button>
            </p>
        }
        .into_any(),
        ImportState::Failed(problem) => view! {
            <p class="form-error" role="alert" data-testid="import-error-message">
                <ProblemText text=problem/>
                <button type="button" class="secondary" on:click=move |_| state.set(ImportState::Idle)>{t(Msg::ConflictsOk)}</button>
            </p>
        }
        .into_any(),
    }
    };

    view! {
        <div class="csv-buttons">
            <label class="file-button" for="import-csv">{t(Msg::CsvImport)}</label>
            <input id="import-csv" class="visually-hidden" type="file" accept=".csv,text/csv"
                data-testid="import-csv" node_ref=input on:change=on_file/>
            <button type="button" class="secondary" data-testid="export-csv"
                disabled=move || exporting.get() on:click=on_export>{t(Msg::CsvExport)}</button>
        </div>
        {panel}
        <Show when=move || awaiting_approval.get()>
            <ManagerApproval driver=driver action=GuardedAction::ChangeProducts
                on_approved=approved on_cancel=move |_| awaiting_approval.set(false)/>
        </Show>
    }
}
