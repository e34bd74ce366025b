//! The receipt, shown when a sale completes and whenever a bill is opened again (its QR code
//! scanned at the counter): the shop profile, the bill number, date and time (`Intl`), cashier
//! and device, lines, discounts, the tax summary per rate, rounding, total, payments, change, a
//! credit customer's new balance, the footer, and a QR code of the bill's id.
//!
//! Printing: `window.print()` with the print stylesheet for the paper width chosen on this
//! device (58 or 80 mm, `www/counter.css`), or straight to an ESC/POS printer over Web Serial
//! or WebUSB: the receipt drawn to a canvas, made 1-bit and sent as a raster image with a cut
//! and, if chosen, a drawer kick ([`crate::devices`]). "Send on WhatsApp" where the customer
//! has a phone.

use crate::i18n::{catalogue, format_date_time, t, tr, Msg};
use crate::ui::problems::ProblemText;
use counterbook_shop::escpos::{encode_receipt, PrintOptions};
use counterbook_shop::receipt::{qr_modules, qr_svg, receipt_of, whatsapp_url, Receipt};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;

use super::Counter;
use crate::actions::sale::CompletedBill;
use crate::devices::printer::{self, PrinterTransport};
use crate::devices::receipt_canvas::{dots_across, draw_receipt, ReceiptRow};
use crate::ui::problems::Shown;

const PAPER_WIDTH_KEY: &str = "counterbook.paperWidthMm";
const DRAWER_KICK_KEY: &str = "counterbook.kickDrawer";

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// The receipt paper on this device: 58 or 80 mm (a device setting, remembered).
pub fn paper_width_mm() -> u32 {
    local_storage()
        .and_then(|s| s.get_item(PAPER_WIDTH_KEY).ok().flatten())
        .and_then(|v| v.parse().ok())
        .filter(|width| *width == 58 || *width == 80)
        .unwrap_or(80)
}

pub(crate) fn set_paper_width_mm(width: u32) {
    if let Some(storage) = local_storage() {
        let _ = storage.set_item(PAPER_WIDTH_KEY, &width.to_string());
    }
}

/// Sets the printed page to the paper: `width_mm` wide, no margins (so no browser headers).
///
/// The `@page` rule lives in a constructed style sheet adopted by the document (the CSSOM),
/// not in a `<style>` element: the Content-Security-Policy's `style-src 'self'` refuses inline
/// style elements, and a constructed sheet is no inline style.
fn set_print_page(width_mm: u32) {
    let rule = format!("@page {{ size: {width_mm}mm 297mm; margin: 0; }}");
    PRINT_PAGE_SHEET.with(|slot| {
        let mut slot = slot.borrow_mut();
        if slot.is_none() {
            *slot = adopt_new_style_sheet();
        }
        let replace = slot.as_ref().and_then(|sheet| {
            js_sys::Reflect::get(sheet, &"replaceSync".into())
                .ok()?
                .dyn_into::<js_sys::Function>()
                .ok()
                .map(|replace| (sheet, replace))
        });
        if let Some((sheet, replace)) = replace {
            // A browser without constructed style sheets prints on its default paper.
            let _ = replace.call1(sheet, &rule.into());
        }
    });
}

thread_local! {
    /// The document's constructed style sheet holding the receipt's `@page` rule.
    static PRINT_PAGE_SHEET: std::cell::RefCell<Option<wasm_bindgen::JsValue>> =
        const { std::cell::RefCell::new(None) };
}

/// A new, empty `CSSStyleSheet` added to the document's `adoptedStyleSheets`.
fn adopt_new_style_sheet() -> Option<wasm_bindgen::JsValue> {
    let document = web_sys::window()?.document()?;
    let constructor = js_sys::Reflect::get(&js_sys::global(), &"CSSStyleSheet".into())
        .ok()?
        .dyn_into::<js_sys::Function>()
        .ok()?;
    let sheet = js_sys::Reflect::construct(&constructor, &js_sys::Array::new()).ok()?;
    let adopted = js_sys::Reflect::get(&document, &"adoptedStyleSheets".into()).ok()?;
    let sheets = js_sys::Array::from(&adopted);
    sheets.push(&sheet);
    js_sys::Reflect::set(&document, &"adoptedStyleSheets".into(), &sheets).ok()?;
    Some(sheet)
}

fn kick_drawer() -> bool {
    local_storage()
        .and_then(|s| s.get_item(DRAWER_KICK_KEY).ok().flatten())
        .is_some_and(|v| v == "on")
}

/// Prints the page with the receipt stylesheet (`window.print()`).
pub fn print_now() {
    if let Some(window) = web_sys::window() {
        // Printing is a convenience: a browser that refuses shows the receipt anyway.
        let _ = window.print();
    }
}

/// The country calling code WhatsApp needs for a national number, guessed from the currency.
fn calling_code(currency: &str) -> &'static str {
    match currency {
        "INR" => "91",
        "DZD" => "213",
        "EGP" => "20",
        "MAD" => "212",
        "TND" => "216",
        "PKR" => "92",
        "BDT" => "880",
        "NPR" => "977",
        _ => "",
    }
}

fn receipt_for(completed: &CompletedBill) -> Receipt {
    receipt_of(
        &completed.shown_bill(),
        &completed.settings,
        completed.customer.as_ref(),
        &format_date_time(completed.bill.created_at_millis),
        catalogue(),
        &crate::i18n::IntlNumbers,
    )
}

/// The receipt as rows for the printer's canvas.
fn canvas_rows(receipt: &Receipt) -> Vec<ReceiptRow> {
    let mut rows = vec![ReceiptRow {
        large: true,
        centered: true,
        ..ReceiptRow::text(receipt.shop_name.clone())
    }];
    for extra in [
        &receipt.address,
        &receipt.phone,
        &receipt.tax_id,
        &receipt.header,
    ]
    .into_iter()
    .flatten()
    {
        rows.push(ReceiptRow {
            centered: true,
            ..ReceiptRow::text(extra.clone())
        });
    }
    rows.push(ReceiptRow::rule());
    rows.push(ReceiptRow {
        bold: true,
        ..ReceiptRow::pair(
            format!("{} {}", t(Msg::ReceiptBill), receipt.bill_number),
            "",
        )
    });
    rows.push(ReceiptRow::text(receipt.date_time.clone()));
    rows.push(ReceiptRow::text(format!(
        "{}{} {}",
        receipt
            .cashier
            .as_ref()
            .map(|c| format!("{} {c} · ", t(Msg::ReceiptCashier)))
            .unwrap_or_default(),
        t(Msg::ReceiptDevice),
        receipt.device
    )));
    rows.push(ReceiptRow::rule());
    for line in &receipt.lines {
        rows.push(ReceiptRow::pair(line.name.clone(), line.amount.clone()));
        let mut detail = format!("  {} × {}", line.quantity, line.unit_price);
        if !line.discount.is_empty() {
            detail.push_str(&format!("  {}", line.discount));
        }
        rows.push(ReceiptRow::text(detail));
    }
    rows.push(ReceiptRow::rule());
    rows.push(ReceiptRow::pair(
        t(Msg::ReceiptSubtotal),
        receipt.subtotal.clone(),
    ));
    if !receipt.discount.is_empty() {
        rows.push(ReceiptRow::pair(
            t(Msg::ReceiptDiscount),
            receipt.discount.clone(),
        ));
    }
    for tax in &receipt.tax_summary {
        rows.push(ReceiptRow::pair(
            receipt.tax_label(tax, catalogue()),
            tax.tax.clone(),
        ));
    }
    if !receipt.rounding.is_empty() {
        rows.push(ReceiptRow::pair(
            t(Msg::ReceiptRounding),
            receipt.rounding.clone(),
        ));
    }
    rows.push(ReceiptRow {
        large: true,
        ..ReceiptRow::pair(
            format!("{} {}", t(Msg::ReceiptTotal), receipt.currency),
            receipt.total.clone(),
        )
    });
    for payment in &receipt.payments {
        rows.push(ReceiptRow::pair(
            payment.label.clone(),
            payment.amount.clone(),
        ));
    }
    if !receipt.change.is_empty() {
        rows.push(ReceiptRow::pair(
            t(Msg::ReceiptChange),
            receipt.change.clone(),
        ));
    }
    if let (Some(name), Some(balance)) = (&receipt.customer_name, &receipt.customer_balance) {
        rows.push(ReceiptRow::pair(
            tr(Msg::ReceiptOwes, &[("name", name)]),
            balance.clone(),
        ));
    }
    if let Some(footer) = &receipt.footer {
        rows.push(ReceiptRow {
            centered: true,
            ..ReceiptRow::text(footer.clone())
        });
    }
    rows
}

/// Whether the tablet's language is written right to left (Arabic).
fn right_to_left() -> bool {
    crate::i18n::language().direction() == "rtl"
}

/// Draws the receipt and sends it to the receipt printer as ESC/POS.
async fn print_direct(
    completed: &CompletedBill,
    transport: PrinterTransport,
) -> Result<(), String> {
    let receipt = receipt_for(completed);
    let paper = paper_width_mm();
    // A QR code, canvas or raster that cannot be made is a fault of this code or this
    // browser, named in English as it came.
    let for_printer = |detail: String| {
        crate::ui::problems::with_detail(t(Msg::ProblemReceiptForPrinter), &detail)
    };
    let (width, modules) =
        qr_modules(&completed.bill.id).map_err(|e| for_printer(e.to_string()))?;
    let qr_rows: Vec<Vec<bool>> = modules.chunks(width.max(1)).map(<[bool]>::to_vec).collect();
    let bitmap = draw_receipt(
        &canvas_rows(&receipt),
        Some(&qr_rows),
        paper,
        right_to_left(),
    )
    .map_err(|e| for_printer(e.to_string()))?;
    let options = PrintOptions {
        paper_width_dots: dots_across(paper),
        kick_drawer: kick_drawer(),
        ..PrintOptions::default()
    };
    let bytes = encode_receipt(&bitmap, &options).map_err(|e| for_printer(e.to_string()))?;
    printer::print_bytes(transport, &bytes)
        .await
        .map(|_| ())
        .map_err(|e| e.shown())
}

#[component]
pub(super) fn ReceiptOverlay(counter: Counter) -> impl IntoView {
    move || {
        counter
            .receipt
            .get()
            .map(|completed| crate::ui::lazy::receipt(counter, completed))
    }
}

#[component]
pub(crate) fn ReceiptView(counter: Counter, completed: CompletedBill) -> impl IntoView {
    let receipt = receipt_for(&completed);
    let paper = RwSignal::new(paper_width_mm());
    Effect::new(move |_| set_print_page(paper.get()));
    let print_message = RwSignal::new(None::<String>);
    let qr = qr_svg(&completed.bill.id, 120).unwrap_or_default();
    let whatsapp = completed
        .customer
        .as_ref()
        .and_then(|c| c.phone.clone())
        .and_then(|phone| {
            whatsapp_url(
                &phone,
                calling_code(&completed.settings.currency),
                &receipt.to_text(counterbook_shop::receipt::TEXT_WIDTH_58_MM, catalogue()),
            )
            .ok()
        });
    let transports = printer::available_transports();
    let printing = RwSignal::new(false);
    let completed_for_print = StoredValue::new(completed.clone());
    let print_to = move |transport: PrinterTransport| {
        printing.set(true);
        spawn_local(async move {
            let completed = completed_for_print.get_value();
            let outcome = print_direct(&completed, transport).await;
            print_message.set(Some(match outcome {
                Ok(()) => t(Msg::ReceiptSentToPrinter).into(),
                Err(problem) => problem,
            }));
            printing.set(false);
        });
    };
    let close = move |_| {
        counter.receipt.set(None);
        counter.focus_scan_field();
    };
    // A UPI payment stays "UPI, unconfirmed" on the bill until the cashier confirms it, also
    // after the sale: here, or on the bill opened again by its QR code.
    let upi_waiting = completed.unconfirmed_upi().is_some();
    // A problem belongs to the receipt it happened on.
    counter.receipt_problem.set(None);
    let r = receipt.clone();
    view! {
        <div class="receipt-overlay">
            <section class=move || format!("receipt paper-{}", paper.get()) role="region" aria-label=t(Msg::ReceiptLabel)
                data-testid="receipt" data-bill-id=completed.bill.id.clone()>
                <header class="receipt-shop">
                    <h2>{r.shop_name.clone()}</h2>
                    {r.address.clone().map(|a| view! { <p>{a}</p> })}
                    {r.phone.clone().map(|p| view! { <p>{t(Msg::ReceiptPhone)} " " {p}</p> })}
                    {r.tax_id.clone().map(|id| view! { <p>{t(Msg::ReceiptTaxId)} " " {id}</p> })}
                    {r.header.clone().map(|h| view! { <p class="receipt-header" data-testid="receipt-header">{h}</p> })}
                </header>
                <p class="receipt-number">{t(Msg::ReceiptBill)} " " <strong data-testid="bill-number">{r.bill_number.clone()}</strong></p>
                {(completed.bill.status == counterbook_shop::BillStatus::Void).then(|| view! {
                    <p class="receipt-void" data-testid="receipt-void">{t(Msg::UndoVoidStamp)}</p>
                })}
                <p class="receipt-meta" data-testid="receipt-date">{r.date_time.clone()}</p>
                <p class="receipt-meta">
                    {r.cashier.clone().map(|c| format!("{} {c} · ", t(Msg::ReceiptCashier)))}
                    {t(Msg::ReceiptDevice)} " " {r.device.clone()}
                </p>
                <table class="receipt-lines">
                    <tbody>
                        {r.lines.iter().map(|line| view! {
                            <tr data-testid="receipt-line">
                                <td class="name">
                                    {line.name.clone()}
                                    <span class="detail">{format!("{} × {}", line.quantity, line.unit_price)}
                                        {(!line.discount.is_empty()).then(|| format!(" {}", line.discount))}</span>
                                </td>
                                <td class="amount">{line.amount.clone()}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
                <dl class="receipt-totals">
                    <dt>{t(Msg::ReceiptSubtotal)}</dt><dd>{r.subtotal.clone()}</dd>
                    {(!r.discount.is_empty()).then(|| view! { <dt>{t(Msg::ReceiptDiscount)}</dt><dd>{r.discount.clone()}</dd> })}
                    {r.tax_summary.iter().map(|tax| view! {
                        <dt>{r.tax_label(tax, catalogue())}</dt><dd>{tax.tax.clone()}</dd>
                    }).collect_view()}
                    {(!r.rounding.is_empty()).then(|| view! { <dt>{t(Msg::ReceiptRounding)}</dt><dd data-testid="receipt-rounding">{r.rounding.clone()}</dd> })}
                    <dt class="total">{t(Msg::ReceiptTotal)} " " {r.currency.clone()}</dt>
                    <dd class="total" data-testid="receipt-total">{r.total.clone()}</dd>
                    {r.payments.iter().map(|payment| view! {
                        <dt data-testid="receipt-payment">{payment.label.clone()}</dt><dd>{payment.amount.clone()}</dd>
                    }).collect_view()}
                    {(!r.change.is_empty()).then(|| view! { <dt>{t(Msg::ReceiptChange)}</dt><dd data-testid="receipt-change">{r.change.clone()}</dd> })}
                    {r.customer_name.clone().zip(r.customer_balance.clone()).map(|(name, balance)| view! {
                        <dt>{tr(Msg::ReceiptOwes, &[("name", &name)])}</dt><dd data-testid="receipt-balance">{balance}</dd>
                    })}
                </dl>
                {r.footer.clone().map(|f| view! { <p class="receipt-footer">{f}</p> })}
                <div class="receipt-qr" data-testid="receipt-qr" role="img"
                    aria-label=tr(Msg::ReceiptQrOfBill, &[("number", &r.bill_number)]) inner_html=qr></div>
            </section>
            <div class="receipt-actions">
                {upi_waiting.then(|| view! {
                    <div class="upi-later" data-testid="receipt-upi">
                        <p class="upi-status" data-testid="receipt-upi-status">{t(Msg::PaymentUpiUnconfirmed)}</p>
                        <button type="button" data-testid="confirm-upi-later"
                            disabled=move || counter.confirming_upi.get()
                            on:click=move |_| counter.confirm_receipt_upi()>
                            {t(Msg::PaymentConfirmUpi)} <kbd>"F8"</kbd>
                        </button>
                        {move || counter.receipt_problem.get().map(|problem| view! {
                            <p class="form-error" role="alert"><ProblemText text=problem/></p>
                        })}
                    </div>
                })}
                <button type="button" data-testid="print-receipt" aria-label=t(Msg::ReceiptPrint) on:click=move |_| print_now()>
                    {t(Msg::ReceiptPrint)} <kbd>"F10"</kbd>
                </button>
                {transports.into_iter().map(|transport| {
                    let label = match transport {
                        PrinterTransport::Serial => t(Msg::ReceiptPrintSerial),
                        PrinterTransport::Usb => t(Msg::ReceiptPrintUsb),
                    };
                    let testid = match transport {
                        PrinterTransport::Serial => "print-serial",
                        PrinterTransport::Usb => "print-usb",
                    };
                    view! {
                        <button type="button" class="secondary" data-testid=testid
                            disabled=move || printing.get()
                            on:click=move |_| print_to(transport)>{label}</button>
                    }
                }).collect_view()}
                {whatsapp.map(|href| view! {
                    <a class="button secondary" href=href target="_blank" rel="noopener"
                        data-testid="send-whatsapp">{t(Msg::ReceiptSendWhatsapp)}</a>
                })}
                <label class="paper">
                    {t(Msg::ReceiptPaper)}
                    <select data-testid="paper-width" on:change=move |ev| {
                        let width = event_target_value(&ev).parse().unwrap_or(80);
                        set_paper_width_mm(width);
                        paper.set(width);
                    }>
                        <option value="58" selected=move || paper.get() == 58>{t(Msg::SettingsPaper58)}</option>
                        <option value="80" selected=move || paper.get() == 80>{t(Msg::SettingsPaper80)}</option>
                    </select>
                </label>
                <crate::ui::bills::undo::BillUndo driver=counter.driver completed=completed.clone()
                    on_changed=move |after: CompletedBill| counter.receipt.set(Some(after))/>
                <button type="button" class="secondary" data-testid="new-sale" aria-label=t(Msg::ReceiptNewSale) on:click=close>
                    {t(Msg::ReceiptNewSale)} <kbd>{t(Msg::KeyEscape)}</kbd>
                </button>
                {move || print_message.get().map(|m| view! { <p class="print-message" role="status" data-testid="print-message">{m}</p> })}
            </div>
        </div>
    }
}
