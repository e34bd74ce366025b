// Counterbook's start-up script, a file so that the Content-Security-Policy can forbid every
// inline script: it registers the service worker, offers its updates, watches for a newer
// schema opened by another tab, and starts the WebAssembly app. Trunk's `pattern_script`
// (Trunk.toml) writes the tag that loads it, naming the hashed JavaScript bindings and wasm
// files in its data attributes.
const tag = document.querySelector("script[data-counterbook-wasm]");

/** How often a tablet left open asks the server for a new version (also when shown again). */
const UPDATE_CHECK_INTERVAL_MS = 30 * 60 * 1000;

/**
 * The one notice this script shows, at the bottom of the page, outside the app's own views:
 * a message and its buttons ({ label, testId, onClick }).
 */
function showNotice(message, buttons) {
  let notice = document.getElementById("counterbook-notice");
  if (!notice) {
    notice = document.createElement("div");
    notice.id = "counterbook-notice";
    notice.className = "app-notice";
    notice.setAttribute("role", "status");
    notice.dataset.testid = "app-notice";
    document.body.append(notice);
  }
  const text = document.createElement("span");
  text.dataset.testid = "app-notice-message";
  text.textContent = message;
  notice.replaceChildren(
    text,
    ...buttons.map(({ label, testId, onClick }) => {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = label;
      button.dataset.testid = testId;
      button.addEventListener("click", onClick);
      return button;
    }),
  );
}

/**
 * A message of the app's catalogue in the tablet's language (the wasm's `counterbookText`,
 * once the app has started), else its English text as written here.
 */
function say(key, english, count) {
  return window.wasmBindings?.counterbookText?.(key, count) ?? english;
}

/** The pending count the app shows in its header ("Online · 3 pending"); 0 when it shows none. */
function pendingOnScreen() {
  const shown = document.querySelector("[data-testid=pending-count]")?.textContent;
  const count = Number.parseInt(shown ?? "0", 10);
  return Number.isFinite(count) ? count : 0;
}

/**
 * "Update available": applies the waiting worker on the person's click, straight away when
 * nothing is pending, else after they confirm with the number of unsent changes in front of
 * them. Pending sales live in IndexedDB, which an update does not touch: they send afterwards.
 */
function offerUpdate(waiting) {
  const apply = () => {
    showNotice(say("boot.updating", "Updating…"), []);
    waiting.postMessage({ type: "apply-update" });
  };
  showNotice(say("boot.update_available", "Update available"), [
    {
      label: say("boot.update", "Update"),
      testId: "apply-update",
      onClick: () => {
        const pending = pendingOnScreen();
        if (pending === 0) return apply();
        const changes = pending === 1 ? "1 change" : `${pending} changes`;
        const question = `${changes} not sent yet (sales included): update anyway?`;
        showNotice(say("boot.changes_not_sent", question, pending), [
          { label: say("boot.update_anyway", "Update anyway"), testId: "apply-update-anyway", onClick: apply },
          { label: say("boot.not_now", "Not now"), testId: "update-later", onClick: () => offerUpdate(waiting) },
        ]);
      },
    },
  ]);
}

function watchForUpdates(registration) {
  const offerWhenInstalled = (worker) => {
    worker.addEventListener("statechange", () => {
      if (worker.state === "installed" && registration.waiting === worker) offerUpdate(worker);
    });
  };
  // A first install has nothing to replace: only a worker waiting behind an active one is an update.
  if (registration.waiting && registration.active) offerUpdate(registration.waiting);
  if (registration.installing && registration.active) offerWhenInstalled(registration.installing);
  registration.addEventListener("updatefound", () => {
    if (registration.active && registration.installing) offerWhenInstalled(registration.installing);
  });
  const check = () => registration.update().catch(() => {});
  setInterval(check, UPDATE_CHECK_INTERVAL_MS);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") check();
  });
}

if ("serviceWorker" in navigator) {
  // After an update takes over, the page reloads once to run the new version (a first install
  // taking control of a page that had no worker is not an update: no reload).
  let controller = navigator.serviceWorker.controller;
  let reloading = false;
  navigator.serviceWorker.addEventListener("controllerchange", () => {
    const replaced = controller !== null;
    controller = navigator.serviceWorker.controller;
    if (replaced && !reloading) {
      reloading = true;
      location.reload();
    }
  });
  // A module worker: it imports the app's bindings to run the wasm for Background Sync.
  navigator.serviceWorker
    .register("/sw.js", { type: "module" })
    .then(watchForUpdates)
    .catch((error) => {
      console.warn("Counterbook works without offline reloads: " + error);
    });
}

// Where the browser offers to install the app (`beforeinstallprompt`, Chromium-based browsers
// on a secure origin), an "Install" button: the browser's own prompt on the person's click.
// An update or reload notice, when shown, comes first.
addEventListener("beforeinstallprompt", (offer) => {
  offer.preventDefault();
  if (document.getElementById("counterbook-notice")) return;
  showNotice(say("boot.installable", "Counterbook can be installed on this tablet"), [
    {
      label: say("boot.install", "Install"),
      testId: "install-app",
      onClick: async () => {
        document.getElementById("counterbook-notice")?.remove();
        await offer.prompt();
      },
    },
    {
      label: say("boot.not_now", "Not now"),
      testId: "install-later",
      onClick: () => document.getElementById("counterbook-notice")?.remove(),
    },
  ]);
});
addEventListener("appinstalled", () => {
  if (document.querySelector("[data-testid=install-app]")) {
    document.getElementById("counterbook-notice")?.remove();
  }
});

// A newer version of the app opened in another tab upgrades the IndexedDB schema: this tab's
// connection would block it, and this tab's code does not know the new schema. Every database
// this page opens closes itself on `versionchange` and the page asks to be reloaded. Committed
// writes, pending sales included, are on disk and the upgrade keeps them; a write this tab
// tries after the close fails with an error on screen instead of blocking the newer tab.
// This listener is added when the open request succeeds, before the idb crate (under rexie)
// sets its own `onversionchange`, and it stops the event there: the crate's handler, which
// would panic inside the wasm (an `.expect` on the event's database) instead of reporting an
// error, never runs.
const openDatabase = IDBFactory.prototype.open;
IDBFactory.prototype.open = function openClosingOnVersionChange(...args) {
  const request = openDatabase.apply(this, args);
  request.addEventListener("success", () => {
    const database = request.result;
    database.addEventListener("versionchange", (event) => {
      event.stopImmediatePropagation();
      database.close();
      showNotice(say("boot.newer_tab", "A newer Counterbook is open in another tab: reload this one to go on"), [
        { label: say("boot.reload", "Reload"), testId: "reload-app", onClick: () => location.reload() },
      ]);
    });
  });
  return request;
};

const bindings = await import(tag.dataset.counterbookJs);
const wasm = await bindings.default({ module_or_path: tag.dataset.counterbookWasm });
window.wasmBindings = bindings;
dispatchEvent(new CustomEvent("TrunkApplicationStarted", { detail: { wasm } }));
