//! The Counterbook PWA entry point: install the panic hook and mount the app.

#[cfg(target_arch = "wasm32")]
fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(counterbook::ui::App);
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("Counterbook runs in the browser: `make run` builds it and serves it.");
    std::process::exit(2);
}
