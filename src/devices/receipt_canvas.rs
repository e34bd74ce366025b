//! Drawing a receipt to a bitmap for a thermal printer: the browser lays the text out on a
//! canvas (so Arabic and Devanagari come out shaped and joined, which an ESC/POS printer's own
//! text mode gets wrong), and the pixels become one bit per dot, black where dark.
//!
//! Printers print 8 dots per millimetre: 384 dots across on 58 mm paper, 576 on 80 mm.

use counterbook_shop::escpos::{threshold_to_bits, MonochromeBitmap, DOTS_58_MM, DOTS_80_MM};
use wasm_bindgen::JsCast;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};

/// One row of a receipt as drawn: text at the start of the line (the left, or the right in a
/// right-to-left language), an optional amount at its end.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceiptRow {
    pub left: String,
    pub right: Option<String>,
    pub bold: bool,
    pub centered: bool,
    /// A larger font (the shop's name, the total).
    pub large: bool,
    /// A thin rule across the paper instead of text.
    pub rule: bool,
}

impl ReceiptRow {
    pub fn text(left: impl Into<String>) -> ReceiptRow {
        ReceiptRow {
            left: left.into(),
            ..ReceiptRow::default()
        }
    }

    pub fn pair(left: impl Into<String>, right: impl Into<String>) -> ReceiptRow {
        ReceiptRow {
            left: left.into(),
            right: Some(right.into()),
            ..ReceiptRow::default()
        }
    }

    pub fn rule() -> ReceiptRow {
        ReceiptRow {
            rule: true,
            ..ReceiptRow::default()
        }
    }
}

/// Why the receipt could not be drawn.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DrawError {
    #[error("this browser cannot draw the receipt: {0}")]
    NoCanvas(String),
}

/// Dots across the printable width of the paper.
pub fn dots_across(paper_width_mm: u32) -> u32 {
    if paper_width_mm >= 80 {
        DOTS_80_MM
    } else {
        DOTS_58_MM
    }
}

const MARGIN_DOTS: f64 = 4.0;

fn font(size: u32, bold: bool) -> String {
    // The system's sans-serif carries Arabic and Devanagari glyphs on Android and desktops.
    format!("{}{size}px sans-serif", if bold { "bold " } else { "" })
}

/// Draws `rows` (and then `qr_modules`, a square QR code's dark modules, centred below them)
/// and turns the result into a 1-bit bitmap `dots_across(paper_width_mm)` dots wide. In a
/// `right_to_left` receipt (Arabic) each row's text starts at the right edge and its amount
/// sits at the left, as the language reads.
pub fn draw_receipt(
    rows: &[ReceiptRow],
    qr_modules: Option<&[Vec<bool>]>,
    paper_width_mm: u32,
    right_to_left: bool,
) -> Result<MonochromeBitmap, DrawError> {
    let width = dots_across(paper_width_mm);
    let base_size = if width >= 576 { 24 } else { 20 };
    let line_height = |row: &ReceiptRow| -> f64 {
        if row.rule {
            10.0
        } else if row.large {
            f64::from(base_size) * 1.6
        } else {
            f64::from(base_size) * 1.3
        }
    };
    let qr_scale = qr_modules
        .map(|modules| {
            (f64::from(width) * 0.5 / modules.len().max(1) as f64)
                .floor()
                .max(1.0)
        })
        .unwrap_or(0.0);
    let qr_height = qr_modules
        .map(|modules| modules.len() as f64 * qr_scale + 16.0)
        .unwrap_or(0.0);
    let text_height: f64 = rows.iter().map(line_height).sum();
    // A little paper below the last line, so the cut does not touch it.
    let height = (MARGIN_DOTS * 2.0 + text_height + qr_height + 24.0).ceil() as u32;

    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or_else(|| DrawError::NoCanvas("no document".into()))?;
    let canvas: HtmlCanvasElement = document
        .create_element("canvas")
        .map_err(|e| DrawError::NoCanvas(format!("{e:?}")))?
        .unchecked_into();
    canvas.set_width(width);
    canvas.set_height(height);
    let context: CanvasRenderingContext2d = canvas
        .get_context("2d")
        .ok()
        .flatten()
        .ok_or_else(|| DrawError::NoCanvas("no 2d context".into()))?
        .unchecked_into();
    context.set_fill_style_str("#fff");
    context.fill_rect(0.0, 0.0, f64::from(width), f64::from(height));
    context.set_fill_style_str("#000");
    context.set_text_baseline("top");
    // The text's own direction for the bidirectional algorithm (numbers inside Arabic words);
    // `direction` is set by name, as web-sys gates its setter behind a feature of its own.
    let direction = if right_to_left { "rtl" } else { "ltr" };
    let _ = js_sys::Reflect::set(&context, &"direction".into(), &direction.into());
    let (start_align, start_x, end_align) = if right_to_left {
        ("right", f64::from(width) - MARGIN_DOTS, "left")
    } else {
        ("left", MARGIN_DOTS, "right")
    };

    let right_edge = f64::from(width) - MARGIN_DOTS;
    let mut y = MARGIN_DOTS;
    for row in rows {
        let height = line_height(row);
        if row.rule {
            context.fill_rect(
                MARGIN_DOTS,
                y + height / 2.0 - 1.0,
                right_edge - MARGIN_DOTS,
                2.0,
            );
            y += height;
            continue;
        }
        let size = if row.large {
            base_size * 8 / 5
        } else {
            base_size
        };
        context.set_font(&font(size, row.bold || row.large));
        let mut left_room = right_edge - MARGIN_DOTS;
        if let Some(right) = &row.right {
            context.set_text_align(end_align);
            let end_x = if right_to_left {
                MARGIN_DOTS
            } else {
                right_edge
            };
            let _ = context.fill_text(right, end_x, y);
            let measured = context
                .measure_text(right)
                .map(|m| m.width())
                .unwrap_or(0.0);
            left_room -= measured + f64::from(base_size);
        }
        if row.centered {
            context.set_text_align("center");
            let _ = context.fill_text_with_max_width(
                &row.left,
                f64::from(width) / 2.0,
                y,
                right_edge - MARGIN_DOTS,
            );
        } else {
            context.set_text_align(start_align);
            let _ = context.fill_text_with_max_width(&row.left, start_x, y, left_room.max(1.0));
        }
        y += height;
    }
    if let Some(modules) = qr_modules {
        let size = modules.len() as f64 * qr_scale;
        let left = ((f64::from(width) - size) / 2.0).floor();
        let top = (y + 8.0).floor();
        for (row_index, row) in modules.iter().enumerate() {
            for (column_index, dark) in row.iter().enumerate() {
                if *dark {
                    context.fill_rect(
                        left + column_index as f64 * qr_scale,
                        top + row_index as f64 * qr_scale,
                        qr_scale,
                        qr_scale,
                    );
                }
            }
        }
    }

    let pixels = context
        .get_image_data(0.0, 0.0, f64::from(width), f64::from(height))
        .map_err(|e| DrawError::NoCanvas(format!("{e:?}")))?
        .data();
    Ok(threshold_to_bits(&pixels, width, height))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn a_drawn_receipt_is_as_wide_as_the_paper_and_has_ink() {
        let rows = vec![
            ReceiptRow {
                large: true,
                centered: true,
                ..ReceiptRow::text("متجر الأمل")
            },
            ReceiptRow::pair("चाय 250g", "₹ 120.00"),
            ReceiptRow::rule(),
        ];
        for (paper, dots) in [(58, 384), (80, 576)] {
            let bitmap = draw_receipt(
                &rows,
                Some(&[vec![true, false], vec![false, true]]),
                paper,
                paper == 58,
            )
            .expect("drawn");
            assert_eq!(bitmap.width_dots, dots);
            assert_eq!(
                bitmap.bits.len() as u32,
                bitmap.width_dots / 8 * bitmap.height_dots
            );
            assert!(
                bitmap.bits.iter().any(|byte| *byte != 0),
                "no ink at {paper} mm"
            );
        }
    }

    /// The columns that have ink in `bitmap`.
    fn inked_columns(bitmap: &MonochromeBitmap) -> (u32, u32) {
        let bytes_across = bitmap.width_dots / 8;
        let mut first = u32::MAX;
        let mut last = 0;
        for (index, byte) in bitmap.bits.iter().enumerate() {
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0 {
                    let column = (index as u32 % bytes_across) * 8 + bit;
                    first = first.min(column);
                    last = last.max(column);
                }
            }
        }
        (first, last)
    }

    /// Regression guard: an Arabic receipt's text starts at the right edge of the paper and
    /// its amount sits at the left; an English one the other way round.
    #[wasm_bindgen_test]
    fn a_right_to_left_receipt_starts_its_lines_at_the_right() {
        let label = vec![ReceiptRow::text("المجموع")];
        let (first, last) = inked_columns(&draw_receipt(&label, None, 80, true).expect("drawn"));
        assert!(first > 576 / 2, "Arabic text from column {first} to {last}");
        let (first, last) = inked_columns(&draw_receipt(&label, None, 80, false).expect("drawn"));
        assert!(
            last < 576 / 2,
            "left-to-right text from column {first} to {last}"
        );
        let amount = vec![ReceiptRow::pair("", "231.00")];
        let (first, last) = inked_columns(&draw_receipt(&amount, None, 80, true).expect("drawn"));
        assert!(last < 576 / 2, "the amount from column {first} to {last}");
    }
}
