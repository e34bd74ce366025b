// Counterbook's service worker: keeps the app shell in the Cache API so that a tablet can
// reload the app with no network. Data never goes through here: it lives in IndexedDB and
// syncs through /v1/..., which this worker leaves alone.
//
// The two placeholders below are replaced after every build by www/stamp-service-worker.sh
// with the built files and a version hashed from their final bytes (Trunk names the wasm by a
// hash taken before wasm-opt, so file names alone would not tell a new build apart).
const VERSION = "__COUNTERBOOK_VERSION__";
const ASSETS = __COUNTERBOOK_ASSETS__;
const CACHE = "counterbook-shell-" + VERSION;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE).then((cache) => cache.addAll(ASSETS)).then(() => self.skipWaiting())
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) =>
        Promise.all(
          names
            .filter((name) => name.startsWith("counterbook-shell-") && name !== CACHE)
            .map((name) => caches.delete(name))
        )
      )
      .then(() => self.clients.claim())
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/v1/")) return; // the sync API: always the network
  if (request.mode === "navigate") {
    // Any page of the app is the one-page app shell.
    event.respondWith(
      caches.match("/index.html", { cacheName: CACHE, ignoreVary: true }).then((cached) => cached || fetch(request))
    );
    return;
  }
  // ignoreVary: the server's CORS layer answers `Vary: Origin`, and the module script and wasm
  // are requested with an Origin header that the install-time requests did not carry.
  event.respondWith(
    caches.match(request, { cacheName: CACHE, ignoreVary: true }).then((cached) => cached || fetch(request))
  );
});
