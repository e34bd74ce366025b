// Counterbook's start-up script, a file so that the Content-Security-Policy can forbid every
// inline script: it registers the service worker and starts the WebAssembly app. Trunk's
// `pattern_script` (Trunk.toml) writes the tag that loads it, naming the hashed JavaScript
// bindings and wasm files in its data attributes.
const tag = document.querySelector("script[data-counterbook-wasm]");

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js").catch((error) => {
    console.warn("Counterbook works without offline reloads: " + error);
  });
}

const bindings = await import(tag.dataset.counterbookJs);
const wasm = await bindings.default({ module_or_path: tag.dataset.counterbookWasm });
window.wasmBindings = bindings;
dispatchEvent(new CustomEvent("TrunkApplicationStarted", { detail: { wasm } }));
