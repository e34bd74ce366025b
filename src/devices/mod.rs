//! The counter's hardware, through the browser: receipt printers over Web Serial and WebUSB
//! ([`printer`]), receipts drawn to a bitmap for them ([`receipt_canvas`]), and the camera as a
//! barcode scanner ([`camera`]). Each module finds out whether the browser has what it needs
//! and turns every failure into a typed error; none of them panics.

pub mod camera;
pub mod printer;
pub mod receipt_canvas;
