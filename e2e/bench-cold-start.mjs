// `make bench-cold-start` (not part of `make test`): an installed tablet's offline cold start.
// A tablet (a Chromium profile on disk) syncs 10,000 products from counterbook-server, its
// service worker active; then the network goes (Playwright's offline emulation) and, run after
// run, `/counter` loads from the service worker, two ways: a fresh page in the running browser
// (the app closed and opened again), and a fresh page in a browser started again on the same
// profile (the browser was killed too: service worker, caches and IndexedDB from disk). Each
// run is timed in the page from navigation start:
//   - shell: the app shell (index.html) answered from the service worker (responseEnd);
//   - wasm: boot.js has started the wasm (Trunk's `TrunkApplicationStarted`);
//   - focused: the counter's "Scan or search" field has the focus;
//   - interactive: a scan, typed the moment the field has the focus (a keyboard-wedge
//     scanner's key events, back to back, as bench-counter types them), has put its product on
//     the bill (the cart line is in the DOM): the counter is interactive when it is focused
//     AND a scan adds a line.
// p50/p99 over the runs, at 10,000 products and, as the baseline side by side, at 10 (the
// catalogue's size should cost nothing at start: the ratio says). The first page load after
// the sync is a warm-up (Chromium compiles and caches the wasm on first use), reported apart.
// With BENCH_COLD_START_PROFILE=1, one more run at 10,000 is recorded as a CPU profile
// (DevTools protocol) in e2e/artifacts/cold-start.cpuprofile, and its heaviest functions by
// self time are printed.

import { cpus, totalmem } from "node:os";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { ARTIFACTS, appUrl, startServer, temporaryDirectory } from "./harness.mjs";
import { ean13, heaviestFunctions, seedProducts, seededId, waitForProductCount } from "./counter-helpers.mjs";

const SIZES = (process.env.BENCH_COLD_START_SIZES ?? "10,10000").split(",").map(Number);
const RUNS = Number(process.env.BENCH_COLD_START_RUNS ?? 20);
const BROWSER_RUNS = Number(process.env.BENCH_COLD_START_BROWSER_RUNS ?? 10);
const PROFILE = process.env.BENCH_COLD_START_PROFILE === "1";
const PROJECT = "bench-cold-start";
const SHOP = "bench-shop";
const TARGET_MS = 1000;
const PROFILE_SIZE = SIZES[SIZES.length - 1];

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** In every page of the context, before the app's scripts: the probe of one cold start. */
function coldStartProbe(code) {
  if (location.pathname !== "/counter") return;
  const times = {};
  window.__coldStart = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not interactive within 20 s: ${JSON.stringify(times)}`)), 20_000);
    addEventListener("TrunkApplicationStarted", () => (times.wasm = performance.now()));
    const press = (key, keyCode) =>
      (document.activeElement ?? document.body).dispatchEvent(
        new KeyboardEvent("keydown", { key, code: keyCode, bubbles: true, cancelable: true }),
      );
    const scan = () => {
      for (const digit of code) press(digit, `Digit${digit}`);
      press("Enter", "Enter");
    };
    const check = () => {
      const field = document.querySelector("[data-testid=scan-field]");
      if (times.focused === undefined && field && document.activeElement === field) {
        times.focused = performance.now();
        scan();
      }
      if (times.focused !== undefined && document.querySelector("[data-testid=cart-line]")) {
        times.interactive = performance.now();
        const navigation = performance.getEntriesByType("navigation")[0];
        times.shell = navigation?.responseEnd;
        times.fromServiceWorker = navigation?.workerStart > 0;
        clearTimeout(timer);
        observer.disconnect();
        resolve(times);
      }
    };
    const observer = new MutationObserver(check);
    const watch = () => observer.observe(document.documentElement, { childList: true, subtree: true });
    document.addEventListener("focusin", check, true);
    if (document.documentElement) watch();
    else document.addEventListener("readystatechange", watch, { once: true });
  });
}

async function coldStart(context, url, profile) {
  const page = await context.newPage();
  try {
    let session;
    if (profile) {
      session = await context.newCDPSession(page);
      await session.send("Profiler.enable");
      await session.send("Profiler.setSamplingInterval", { interval: 200 });
      await session.send("Profiler.start");
    }
    await page.goto(url);
    const times = await page.evaluate(() => window.__coldStart);
    if (!times.fromServiceWorker) throw new Error("the page did not come from the service worker");
    if (session) {
      const { profile: recorded } = await session.send("Profiler.stop");
      writeFileSync(join(ARTIFACTS, "cold-start.cpuprofile"), JSON.stringify(recorded));
      times.heaviest = heaviestFunctions(recorded, 15);
    }
    return times;
  } finally {
    await page.close();
  }
}

/** Debian's Chromium on the tablet's profile, as harness.mjs launches it, 1280×800. */
function openProfile(profile) {
  return chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    viewport: { width: 1280, height: 800 },
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

const summaryOf = (runs, key) => ({
  p50: +percentile(runs.map((r) => r[key]), 50).toFixed(1),
  p99: +percentile(runs.map((r) => r[key]), 99).toFixed(1),
});
const KEYS = ["shell", "wasm", "focused", "interactive"];

async function measure(size) {
  const server = await startServer({ dataDir: temporaryDirectory("counterbook-bench-cold-start-") });
  const profile = temporaryDirectory("counterbook-bench-cold-start-profile-");
  try {
    const products = Array.from({ length: size }, (_, index) => ({
      id: seededId(index + 1),
      name: `Product ${String(index).padStart(6, "0")}`,
      price: 10_00 + (index % 500) * 10,
      barcodes: [ean13(`89${String(index).padStart(10, "0")}`)],
      stock: 1000,
    }));
    await seedProducts(server.url, PROJECT, SHOP, products);
    let context = await openProfile(profile);
    const first = await context.newPage();
    await first.goto(appUrl(server.url, { endpoint: server.url, project: PROJECT, shop: SHOP, path: "/counter" }));
    await first.getByTestId("counter-page").waitFor();
    await waitForProductCount(first, size, 300_000);
    await first.evaluate(() => navigator.serviceWorker.ready);
    await first.waitForFunction(() => navigator.serviceWorker.controller !== null);
    await first.close();

    await context.setOffline(true);
    await context.addInitScript(coldStartProbe, products[Math.floor(size / 2)].barcodes[0]);
    const url = `${server.url}/counter`;
    const warmUp = await coldStart(context, url, false);
    const runs = [];
    for (let run = 0; run < RUNS; run++) runs.push(await coldStart(context, url, false));
    const profiled = PROFILE && size === PROFILE_SIZE ? await coldStart(context, url, true) : null;
    await context.close();

    // The browser started again each time on the same profile, offline from the start.
    const browserRuns = [];
    for (let run = 0; run < BROWSER_RUNS; run++) {
      context = await openProfile(profile);
      try {
        await context.setOffline(true);
        await context.addInitScript(coldStartProbe, products[Math.floor(size / 2)].barcodes[0]);
        browserRuns.push(await coldStart(context, url, false));
      } finally {
        await context.close();
      }
    }

    const summary = (key) => summaryOf(runs, key);
    const report = {
      machine: `${cpus().length} × ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
      products: size,
      runs: RUNS,
      warmUpMs: Object.fromEntries(
        KEYS.map((key) => [key, +warmUp[key].toFixed(1)]),
      ),
      shellMs: summary("shell"),
      wasmMs: summary("wasm"),
      focusedMs: summary("focused"),
      interactiveMs: summary("interactive"),
      browserRestarted: {
        runs: BROWSER_RUNS,
        ...Object.fromEntries(KEYS.map((key) => [`${key}Ms`, summaryOf(browserRuns, key)])),
      },
      targetMs: TARGET_MS,
      met:
        percentile(runs.map((r) => r.interactive), 99) < TARGET_MS &&
        percentile(browserRuns.map((r) => r.interactive), 99) < TARGET_MS,
      ...(profiled ? { profiledRunMs: +profiled.interactive.toFixed(1), heaviest: profiled.heaviest } : {}),
    };
    writeFileSync(
      join(ARTIFACTS, `bench-cold-start-${size}.json`),
      JSON.stringify({ report, runs, browserRuns }, null, 2),
    );
    return report;
  } finally {
    await server.stop();
  }
}

const reports = [];
for (const size of SIZES) reports.push(await measure(size));
const [baseline, largest] = [reports[0], reports[reports.length - 1]];
console.log(JSON.stringify(reports, null, 2));
console.log(
  `interactive p50 at ${largest.products} products / at ${baseline.products}: ` +
    `${(largest.interactiveMs.p50 / baseline.interactiveMs.p50).toFixed(2)} (page reopened), ` +
    `${(largest.browserRestarted.interactiveMs.p50 / baseline.browserRestarted.interactiveMs.p50).toFixed(2)} (browser restarted); ` +
    `target ${TARGET_MS} ms at p99: ${largest.met ? "met" : "NOT met"}`,
);
