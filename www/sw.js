// Counterbook's service worker: keeps the app shell in the Cache API so that a tablet can
// reload the app with no network. Data never goes through here: it lives in IndexedDB and
// syncs through /v1/..., sign-in and the Listen and Write channels, which this worker never
// intercepts: it answers only navigations and the precached files, and everything else goes
// to the network as if there were no worker.
//
//
// It is a module worker (boot.js registers it with `type: "module"`) because it also runs the
// app's own wasm: on a Background Sync `sync` event it drains the outbox with the app's sync
// engine, with no tab open (below).
//
// The placeholders below are replaced after every build by tools/finish-build.mjs with the
// files Trunk emitted, the app's JavaScript bindings and wasm, and a version hashed from their
// final bytes (Trunk names the wasm by a hash taken before wasm-opt, so file names alone would
// not tell a new build apart).
import startWasm, {
  background_sync_lock_names as backgroundSyncLockNames,
  drain_outbox_in_background as drainOutboxInBackground,
} from "__COUNTERBOOK_BINDINGS__";

const VERSION = "__COUNTERBOOK_VERSION__";
const ASSETS = __COUNTERBOOK_ASSETS__;
const WASM = "__COUNTERBOOK_WASM__";
const CACHE = "counterbook-shell-" + VERSION;

// A new version installs beside the running one and then waits: the page (boot.js) shows
// "Update available" and, on the person's click, tells the waiting worker to take over.
// Never skipWaiting() on install: an update must not swap the app under a cashier mid-sale.
self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(ASSETS)));
});

self.addEventListener("message", (event) => {
  if (event.data?.type === "apply-update") self.skipWaiting();
});

// On activation, the caches of every older version go, and the worker takes over the open
// tabs (each reloads once, boot.js).
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

// Paths the server answers itself, also when a person opens them: the Firestore API,
// Counterbook's own API (first-run setup, people), sign-in, the WebChannel streams and the
// certificate setup page are never answered with the app shell.
const NETWORK_ONLY_PREFIXES = [
  "/v1/",
  "/counterbook/",
  "/identitytoolkit.googleapis.com/",
  "/securetoken.googleapis.com/",
  "/google.firestore.v1.Firestore/",
  "/setup/",
];
const PRECACHED = new Set(ASSETS);

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (NETWORK_ONLY_PREFIXES.some((prefix) => url.pathname.startsWith(prefix))) return;
  // ignoreVary: the server answers `Vary: Origin, Accept-Encoding`, and the module script and
  // wasm are requested with an Origin header that the install-time requests did not carry.
  if (request.mode === "navigate") {
    // Any page of the app is the one-page app shell.
    event.respondWith(
      caches
        .match("/index.html", { cacheName: CACHE, ignoreVary: true })
        .then((cached) => cached || fetch(request))
    );
    return;
  }
  if (!PRECACHED.has(url.pathname)) return;
  event.respondWith(
    caches
      .match(url.pathname, { cacheName: CACHE, ignoreVary: true })
      .then((cached) => cached || fetch(request))
  );
});

// Background Sync (Chromium-based browsers): a tab asks for the tag
// "counterbook-outbox/DATABASE" when a sale or another change waits while the network or the
// server is gone; the browser fires `sync` once it is online, also after every tab was closed.
// The worker starts the app's wasm (from the cache: it may be offline until just now), takes
// the lock that tells tabs a worker leads and then the tabs' own leader lock, both only if
// free, and drains the outbox with the app's sync engine. A tab that leads keeps its lock: the
// worker sends nothing then. A rejected promise makes the browser try again later.
const OUTBOX_TAG_PREFIX = "counterbook-outbox/";
let wasmStarted;

function startWasmOnce() {
  wasmStarted ??= startWasm({
    module_or_path: caches
      .match(WASM, { cacheName: CACHE, ignoreVary: true })
      .then((cached) => cached || fetch(WASM)),
  }).catch((error) => {
    wasmStarted = undefined;
    throw error;
  });
  return wasmStarted;
}

async function drainOutbox(database) {
  await startWasmOnce();
  const [workerLock, leaderLock] = backgroundSyncLockNames(database);
  return navigator.locks.request(workerLock, { ifAvailable: true }, (workerHeld) => {
    // Another drain of this database runs already (an earlier event of this worker).
    if (!workerHeld) return "another drain is running";
    return navigator.locks.request(leaderLock, { ifAvailable: true }, (leaderHeld) =>
      drainOutboxInBackground(database, leaderHeld !== null),
    );
  });
}

self.addEventListener("sync", (event) => {
  if (!event.tag.startsWith(OUTBOX_TAG_PREFIX)) return;
  event.waitUntil(drainOutbox(event.tag.slice(OUTBOX_TAG_PREFIX.length)));
});
