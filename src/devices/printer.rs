//! Direct printing to an ESC/POS thermal printer over Web Serial or WebUSB, where the browser
//! has them (Chromium on desktops and Android tablets). The bytes come from `counterbook-shop`'s
//! ESC/POS encoder (tested natively); this module only finds the printer and sends them.
//!
//! The first print asks the cashier to pick a printer (the browser requires a user gesture);
//! the browser then remembers the permission, and this module remembers which of the granted
//! devices was chosen (its USB vendor and product ids, in `localStorage`), so later prints go
//! straight to it. Nothing here panics: every failure is a [`PrinterError`] the counter shows.
//!
//! The bindings are written here rather than taken from `web-sys`, whose Web Serial and WebUSB
//! types sit behind its unstable-API flag.

use js_sys::{Array, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// Where the chosen printer is remembered on this device.
const REMEMBERED_PRINTER_KEY: &str = "counterbook.printer";
/// Most USB-serial thermal printers default to this speed; over USB CDC it is ignored.
const SERIAL_BAUD_RATE: u32 = 9600;
/// The USB interface class of printers.
const USB_PRINTER_CLASS: u8 = 7;
/// Bytes per WebUSB transfer: small enough for every printer's buffer.
const USB_CHUNK_BYTES: usize = 4096;

/// How the browser reaches the printer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrinterTransport {
    Serial,
    Usb,
}

impl PrinterTransport {
    fn key(self) -> &'static str {
        match self {
            PrinterTransport::Serial => "serial",
            PrinterTransport::Usb => "usb",
        }
    }
}

/// Why a receipt did not reach the printer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PrinterError {
    #[error("This browser cannot print to a receipt printer directly; use Print instead.")]
    Unsupported,
    #[error("No printer was chosen.")]
    NotChosen,
    #[error("The printer could not be opened: {0}")]
    Open(String),
    #[error("Sending to the printer failed: {0}")]
    Send(String),
}

#[wasm_bindgen]
extern "C" {
    /// `navigator.serial`.
    type Serial;
    #[wasm_bindgen(method, js_name = requestPort)]
    fn request_port(this: &Serial) -> Promise;
    #[wasm_bindgen(method, js_name = getPorts)]
    fn get_ports(this: &Serial) -> Promise;

    /// A `SerialPort`.
    type SerialPort;
    #[wasm_bindgen(method, js_name = open)]
    fn open_with(this: &SerialPort, options: &JsValue) -> Promise;
    #[wasm_bindgen(method)]
    fn close(this: &SerialPort) -> Promise;
    #[wasm_bindgen(method, js_name = getInfo)]
    fn get_info(this: &SerialPort) -> JsValue;
    #[wasm_bindgen(method, getter)]
    fn writable(this: &SerialPort) -> JsValue;

    /// A `WritableStream`.
    type WritableStream;
    #[wasm_bindgen(method, js_name = getWriter)]
    fn get_writer(this: &WritableStream) -> StreamWriter;

    /// A `WritableStreamDefaultWriter`.
    type StreamWriter;
    #[wasm_bindgen(method)]
    fn write(this: &StreamWriter, chunk: &Uint8Array) -> Promise;
    #[wasm_bindgen(method)]
    fn close(this: &StreamWriter) -> Promise;
    #[wasm_bindgen(method, js_name = releaseLock)]
    fn release_lock(this: &StreamWriter);

    /// `navigator.usb`.
    type Usb;
    #[wasm_bindgen(method, js_name = requestDevice)]
    fn request_device(this: &Usb, options: &JsValue) -> Promise;
    #[wasm_bindgen(method, js_name = getDevices)]
    fn get_devices(this: &Usb) -> Promise;

    /// A `USBDevice`.
    type UsbDevice;
    #[wasm_bindgen(method, getter, js_name = vendorId)]
    fn vendor_id(this: &UsbDevice) -> u16;
    #[wasm_bindgen(method, getter, js_name = productId)]
    fn product_id(this: &UsbDevice) -> u16;
    #[wasm_bindgen(method, getter)]
    fn configuration(this: &UsbDevice) -> JsValue;
    #[wasm_bindgen(method)]
    fn open(this: &UsbDevice) -> Promise;
    #[wasm_bindgen(method)]
    fn close(this: &UsbDevice) -> Promise;
    #[wasm_bindgen(method, js_name = selectConfiguration)]
    fn select_configuration(this: &UsbDevice, value: u8) -> Promise;
    #[wasm_bindgen(method, js_name = claimInterface)]
    fn claim_interface(this: &UsbDevice, number: u8) -> Promise;
    #[wasm_bindgen(method, js_name = releaseInterface)]
    fn release_interface(this: &UsbDevice, number: u8) -> Promise;
    #[wasm_bindgen(method, js_name = transferOut)]
    fn transfer_out(this: &UsbDevice, endpoint: u8, data: &Uint8Array) -> Promise;
}

fn navigator_member(name: &str) -> Option<JsValue> {
    let navigator = web_sys::window()?.navigator();
    let value = Reflect::get(&navigator, &JsValue::from_str(name)).ok()?;
    (!value.is_undefined() && !value.is_null()).then_some(value)
}

/// The transports this browser offers, Web Serial first.
pub fn available_transports() -> Vec<PrinterTransport> {
    let mut transports = Vec::new();
    if navigator_member("serial").is_some() {
        transports.push(PrinterTransport::Serial);
    }
    if navigator_member("usb").is_some() {
        transports.push(PrinterTransport::Usb);
    }
    transports
}

/// The printer chosen earlier on this device: its transport and USB ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RememberedPrinter {
    pub transport: PrinterTransport,
    pub vendor_id: Option<u16>,
    pub product_id: Option<u16>,
}

impl RememberedPrinter {
    fn encode(&self) -> String {
        let id = |value: Option<u16>| value.map(|v| v.to_string()).unwrap_or_default();
        format!(
            "{}:{}:{}",
            self.transport.key(),
            id(self.vendor_id),
            id(self.product_id)
        )
    }

    fn decode(text: &str) -> Option<RememberedPrinter> {
        let mut parts = text.split(':');
        let transport = match parts.next()? {
            "serial" => PrinterTransport::Serial,
            "usb" => PrinterTransport::Usb,
            _ => return None,
        };
        let id = |part: Option<&str>| part.and_then(|p| p.parse::<u16>().ok());
        Some(RememberedPrinter {
            transport,
            vendor_id: id(parts.next()),
            product_id: id(parts.next()),
        })
    }

    fn matches(&self, vendor_id: Option<u16>, product_id: Option<u16>) -> bool {
        self.vendor_id == vendor_id && self.product_id == product_id
    }
}

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// The printer remembered on this device, if any.
pub fn remembered_printer() -> Option<RememberedPrinter> {
    let text = local_storage()?.get_item(REMEMBERED_PRINTER_KEY).ok()??;
    RememberedPrinter::decode(&text)
}

fn remember(printer: &RememberedPrinter) {
    if let Some(storage) = local_storage() {
        // Not remembering only means the cashier picks the printer again next time.
        let _ = storage.set_item(REMEMBERED_PRINTER_KEY, &printer.encode());
    }
}

/// Forgets the chosen printer (the next print asks again).
pub fn forget_printer() {
    if let Some(storage) = local_storage() {
        let _ = storage.remove_item(REMEMBERED_PRINTER_KEY);
    }
}

fn describe(error: JsValue) -> String {
    if let Some(error) = error.dyn_ref::<js_sys::Error>() {
        return String::from(error.message());
    }
    error.as_string().unwrap_or_else(|| format!("{error:?}"))
}

async fn wait(promise: Promise) -> Result<JsValue, String> {
    JsFuture::from(promise).await.map_err(describe)
}

fn u16_member(object: &JsValue, name: &str) -> Option<u16> {
    Reflect::get(object, &JsValue::from_str(name))
        .ok()?
        .as_f64()
        .map(|value| value as u16)
}

/// Sends `bytes` to the remembered printer, or, when none is remembered or it is gone, asks
/// the cashier to choose one over `transport` (this must run inside a click or key handler)
/// and remembers it.
pub async fn print_bytes(
    transport: PrinterTransport,
    bytes: &[u8],
) -> Result<RememberedPrinter, PrinterError> {
    let remembered = remembered_printer().filter(|printer| printer.transport == transport);
    match transport {
        PrinterTransport::Serial => print_over_serial(remembered, bytes).await,
        PrinterTransport::Usb => print_over_usb(remembered, bytes).await,
    }
}

async fn print_over_serial(
    remembered: Option<RememberedPrinter>,
    bytes: &[u8],
) -> Result<RememberedPrinter, PrinterError> {
    let serial: Serial = navigator_member("serial")
        .ok_or(PrinterError::Unsupported)?
        .unchecked_into();
    let ids_of = |port: &SerialPort| {
        let info = port.get_info();
        (
            u16_member(&info, "usbVendorId"),
            u16_member(&info, "usbProductId"),
        )
    };
    let mut chosen: Option<SerialPort> = None;
    if let Some(remembered) = &remembered {
        let ports = wait(serial.get_ports()).await.map_err(PrinterError::Open)?;
        chosen = Array::from(&ports)
            .iter()
            .map(JsValue::unchecked_into::<SerialPort>)
            .find(|port| {
                let (vendor, product) = ids_of(port);
                remembered.matches(vendor, product)
            });
    }
    let port = match chosen {
        Some(port) => port,
        None => wait(serial.request_port())
            .await
            .map_err(|_| PrinterError::NotChosen)?
            .unchecked_into(),
    };
    let (vendor_id, product_id) = ids_of(&port);
    let options = Object::new();
    Reflect::set(
        &options,
        &JsValue::from_str("baudRate"),
        &JsValue::from(SERIAL_BAUD_RATE),
    )
    .map_err(|e| PrinterError::Open(describe(e)))?;
    wait(port.open_with(&options))
        .await
        .map_err(PrinterError::Open)?;
    let sent = async {
        let writable: WritableStream = port.writable().unchecked_into();
        let writer = writable.get_writer();
        let written = wait(writer.write(&Uint8Array::from(bytes))).await;
        let closed = wait(writer.close()).await;
        written.and(closed)
    }
    .await;
    // Close the port even when the write failed, so the next print can open it again.
    let _ = wait(port.close()).await;
    sent.map_err(PrinterError::Send)?;
    let printer = RememberedPrinter {
        transport: PrinterTransport::Serial,
        vendor_id,
        product_id,
    };
    remember(&printer);
    Ok(printer)
}

/// The printer interface of a USB device and its bulk OUT endpoint.
fn usb_printer_endpoint(device: &UsbDevice) -> Option<(u8, u8)> {
    let configuration = device.configuration();
    let interfaces = Reflect::get(&configuration, &JsValue::from_str("interfaces")).ok()?;
    for interface in Array::from(&interfaces).iter() {
        let number = u16_member(&interface, "interfaceNumber")? as u8;
        let alternates = Reflect::get(&interface, &JsValue::from_str("alternates")).ok()?;
        for alternate in Array::from(&alternates).iter() {
            if u16_member(&alternate, "interfaceClass") != Some(u16::from(USB_PRINTER_CLASS)) {
                continue;
            }
            let endpoints = Reflect::get(&alternate, &JsValue::from_str("endpoints")).ok()?;
            for endpoint in Array::from(&endpoints).iter() {
                let direction = Reflect::get(&endpoint, &JsValue::from_str("direction"))
                    .ok()
                    .and_then(|d| d.as_string());
                let kind = Reflect::get(&endpoint, &JsValue::from_str("type"))
                    .ok()
                    .and_then(|t| t.as_string());
                if direction.as_deref() == Some("out") && kind.as_deref() == Some("bulk") {
                    let endpoint_number = u16_member(&endpoint, "endpointNumber")? as u8;
                    return Some((number, endpoint_number));
                }
            }
        }
    }
    None
}

async fn print_over_usb(
    remembered: Option<RememberedPrinter>,
    bytes: &[u8],
) -> Result<RememberedPrinter, PrinterError> {
    let usb: Usb = navigator_member("usb")
        .ok_or(PrinterError::Unsupported)?
        .unchecked_into();
    let mut chosen: Option<UsbDevice> = None;
    if let Some(remembered) = &remembered {
        let devices = wait(usb.get_devices()).await.map_err(PrinterError::Open)?;
        chosen = Array::from(&devices)
            .iter()
            .map(JsValue::unchecked_into::<UsbDevice>)
            .find(|device| remembered.matches(Some(device.vendor_id()), Some(device.product_id())));
    }
    let device = match chosen {
        Some(device) => device,
        None => {
            let filter = Object::new();
            Reflect::set(
                &filter,
                &JsValue::from_str("classCode"),
                &JsValue::from(USB_PRINTER_CLASS),
            )
            .map_err(|e| PrinterError::Open(describe(e)))?;
            let options = Object::new();
            Reflect::set(
                &options,
                &JsValue::from_str("filters"),
                &Array::of1(&filter),
            )
            .map_err(|e| PrinterError::Open(describe(e)))?;
            wait(usb.request_device(&options))
                .await
                .map_err(|_| PrinterError::NotChosen)?
                .unchecked_into()
        }
    };
    wait(device.open()).await.map_err(PrinterError::Open)?;
    if device.configuration().is_null() {
        wait(device.select_configuration(1))
            .await
            .map_err(PrinterError::Open)?;
    }
    let Some((interface, endpoint)) = usb_printer_endpoint(&device) else {
        let _ = wait(device.close()).await;
        return Err(PrinterError::Open(
            "the device has no printer interface".into(),
        ));
    };
    let sent = async {
        wait(device.claim_interface(interface)).await?;
        for chunk in bytes.chunks(USB_CHUNK_BYTES) {
            wait(device.transfer_out(endpoint, &Uint8Array::from(chunk))).await?;
        }
        wait(device.release_interface(interface)).await.map(|_| ())
    }
    .await;
    let _ = wait(device.close()).await;
    sent.map_err(PrinterError::Send)?;
    let printer = RememberedPrinter {
        transport: PrinterTransport::Usb,
        vendor_id: Some(device.vendor_id()),
        product_id: Some(device.product_id()),
    };
    remember(&printer);
    Ok(printer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn a_remembered_printer_reads_back_as_written() {
        for printer in [
            RememberedPrinter {
                transport: PrinterTransport::Serial,
                vendor_id: Some(0x0416),
                product_id: Some(0x5011),
            },
            RememberedPrinter {
                transport: PrinterTransport::Usb,
                vendor_id: None,
                product_id: None,
            },
        ] {
            assert_eq!(
                RememberedPrinter::decode(&printer.encode()),
                Some(printer.clone())
            );
        }
        assert_eq!(RememberedPrinter::decode("bluetooth:1:2"), None);
    }
}
