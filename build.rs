//! With the `split` feature (the release app, `index.html`), the linker keeps the relocations
//! in the wasm it writes (`--emit-relocs`): the wasm-split step of `tools/finish-build.mjs`
//! reads them to move each lazy part's code and data into a module of its own.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let split = std::env::var_os("CARGO_FEATURE_SPLIT").is_some();
    let wasm = std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|arch| arch == "wasm32");
    if split && wasm {
        println!("cargo::rustc-link-arg-bins=--emit-relocs");
    }
}
