// `make bench-counter` (not part of `make test`): the counter over a large catalogue. With
// 50,000 and then 100,000 products on counterbook-server:
//   - first sync into an empty tablet (page opened to every product in IndexedDB);
//   - scan: the keydown of a scan's Enter to the cart line painted, p50/p99;
//   - search: a keystroke in "Scan or search" to the results painted, p50/p99;
//   - complete sale to the receipt painted;
// and beside them, as the floor, the same lookups in raw IndexedDB JavaScript on the same
// database (a barcode index get; a name-prefix range with the same limit), and the ratios.
// "Painted" is the first animation frame after the DOM shows the change; "shown" is when the
// DOM shows it (the app's own work, before the wait for the next frame). The raw floor is timed
// both ways too: the lookup alone, and the lookup with its rows put in the DOM and the next frame.
// The first sync is timed from navigation to every product in IndexedDB; the lookups are measured
// only once the tablet is quiet (no IndexedDB write for a second), so they never queue behind
// sync work. Each phase has a deadline, so a slow build reports how far it got instead of hanging.

import { cpus, totalmem } from "node:os";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ARTIFACTS, appUrl, launchBrowser, startServer, temporaryDirectory } from "./harness.mjs";
import { countInStore, ean13, seedProducts, seededId } from "./counter-helpers.mjs";

const SIZES = (process.env.BENCH_COUNTER_SIZES ?? "50000,100000").split(",").map(Number);
const SCANS = 200;
const SEARCHES = 100;
const SALES = 20;
const FIRST_SYNC_DEADLINE_MS = Number(process.env.BENCH_COUNTER_SYNC_DEADLINE_S ?? 300) * 1000;
const SHOP = "bench-shop";
const WORDS = ["Chai", "Atta", "Dal", "Rice", "Soap", "Oil", "Ghee", "Salt", "Sugar", "Biscuit"];

function catalogue(size) {
  return Array.from({ length: size }, (_, index) => ({
    id: seededId(index + 1),
    name: `${WORDS[index % WORDS.length]} ${String(index).padStart(6, "0")}`,
    price: 10_00 + (index % 500) * 10,
    barcodes: [ean13(`89${String(index).padStart(10, "0")}`)],
    sku: `SKU-${index}`,
    stock: 1000,
  }));
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const summary = (values) => ({
  p50: +percentile(values, 50).toFixed(2),
  p99: +percentile(values, 99).toFixed(2),
});

/** In the page: scans `codes` one by one as a scanner types them, timing Enter to paint. */
function timeScans(codes) {
  return window.__benchScans(codes);
}

async function installProbes(page) {
  await page.evaluate(() => {
    const painted = () => new Promise((resolve) => requestAnimationFrame(() => resolve(performance.now())));
    // Waits for the DOM to pass `test`; a step that never does fails the run after 20 s rather
    // than hanging it.
    const until = (test, what = String(test)) =>
      new Promise((resolve, reject) => {
        if (test()) return resolve();
        const timer = setTimeout(() => {
          observer.disconnect();
          const notice = document.querySelector(".counter-notice")?.textContent ?? "no notice";
          const field = document.querySelector("[data-testid=scan-field]")?.value ?? "";
          reject(new Error(`bench-counter: not within 20 s: ${what} (notice: ${notice}; scan field: "${field}")`));
        }, 20_000);
        const observer = new MutationObserver(() => {
          if (test()) {
            observer.disconnect();
            clearTimeout(timer);
            resolve();
          }
        });
        observer.observe(document.body, { childList: true, subtree: true, characterData: true, attributes: true });
      });
    const press = (key, code) =>
      (document.activeElement ?? document.body).dispatchEvent(
        new KeyboardEvent("keydown", { key, code, bubbles: true, cancelable: true }),
      );
    const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
    // Every IndexedDB write transaction the page opens, to tell when sync work has stopped.
    const cartSignature = () =>
      [...document.querySelectorAll("[data-testid=cart-line-quantity]")].map((e) => e.value).join(",");
    window.__benchScans = async (codes) => {
      const times = [];
      for (const [index, code] of codes.entries()) {
        if (index % 20 === 0) {
          press("Escape", "Escape");
          await until(() => document.querySelectorAll("[data-testid=cart-line]").length === 0);
        }
        // The digits back to back (a loaded machine can stretch a 2 ms timer past the
        // scanner's 40 ms gap and split the code); the timing starts at Enter anyway.
        for (const digit of code) press(digit, `Digit${digit}`);
        await pause(2);
        const before = cartSignature();
        const start = performance.now();
        press("Enter", "Enter");
        await until(() => cartSignature() !== before);
        const shown = performance.now() - start;
        times.push({ shown, painted: (await painted()) - start });
      }
      return times;
    };
    window.__benchSearches = async (prefixes) => {
      const field = document.querySelector("[data-testid=scan-field]");
      const times = [];
      for (const prefix of prefixes) {
        field.value = "";
        field.dispatchEvent(new Event("input", { bubbles: true }));
        await until(() => !document.querySelector("[data-testid=search-results]"));
        const start = performance.now();
        field.value = prefix;
        field.dispatchEvent(new Event("input", { bubbles: true }));
        await until(() => document.querySelectorAll("[data-testid=search-result]").length > 0);
        const shown = performance.now() - start;
        times.push({ shown, painted: (await painted()) - start });
      }
      field.value = "";
      field.dispatchEvent(new Event("input", { bubbles: true }));
      return times;
    };
    window.__benchSales = async (codes) => {
      const times = [];
      for (const code of codes) {
        // The digits back to back (a loaded machine can stretch a 2 ms timer past the
        // scanner's 40 ms gap and split the code); the timing starts at Enter anyway.
        for (const digit of code) press(digit, `Digit${digit}`);
        await pause(2);
        press("Enter", "Enter");
        await until(() => document.querySelectorAll("[data-testid=cart-line]").length > 0);
        const start = performance.now();
        document.querySelector("[data-testid=complete-sale]").click();
        await until(() => document.querySelector("[data-testid=bill-number]"));
        const shown = performance.now() - start;
        times.push({ shown, painted: (await painted()) - start });
        document.querySelector("[data-testid=new-sale]").click();
        await until(() => !document.querySelector("[data-testid=receipt]"));
      }
      return times;
    };
    window.__rawLookups = async (codes, prefixes, limit) => {
      const db = await new Promise((resolve, reject) => {
        const open = indexedDB.open("counterbook");
        open.onsuccess = () => resolve(open.result);
        open.onerror = () => reject(open.error);
      });
      const request = (make) =>
        new Promise((resolve, reject) => {
          const r = make();
          r.onsuccess = () => resolve(r.result);
          r.onerror = () => reject(r.error);
        });
      const gets = [];
      for (const code of codes) {
        const start = performance.now();
        await request(() => db.transaction("products").objectStore("products").index("barcode").get(code));
        gets.push(performance.now() - start);
      }
      const ranges = [];
      const rangesPainted = [];
      const list = document.createElement("ul");
      document.body.append(list);
      for (const prefix of prefixes) {
        const key = prefix.toLowerCase();
        const start = performance.now();
        const found = await request(() =>
          db
            .transaction("products")
            .objectStore("products")
            .index("nameKey")
            .getAll(IDBKeyRange.bound(key, key + "\uffff"), limit),
        );
        ranges.push(performance.now() - start);
        list.replaceChildren(
          ...found.map((product) => {
            const item = document.createElement("li");
            item.textContent = `${product.name} ${product.sku ?? ""} ${product.price}`;
            return item;
          }),
        );
        rangesPainted.push((await painted()) - start);
      }
      list.remove();
      db.close();
      return { gets, ranges, rangesPainted };
    };
  });
}

async function run(browser, size) {
  // BENCH_COUNTER_DATA=dir keeps each size's seeded server in dir/<size> and reuses it on the
  // next run (seeding 100,000 products takes a minute); earlier runs' sales stay in it.
  const kept = process.env.BENCH_COUNTER_DATA ? join(process.env.BENCH_COUNTER_DATA, String(size)) : null;
  const reused = kept !== null && existsSync(join(kept, "seeded"));
  if (kept) mkdirSync(kept, { recursive: true });
  const server = await startServer({ dataDir: kept ?? temporaryDirectory("counterbook-bench-counter-") });
  try {
    const project = `bench-counter-${size}`;
    const products = catalogue(size);
    const seedStart = Date.now();
    if (!reused) await seedProducts(server.url, project, SHOP, products);
    if (kept) writeFileSync(join(kept, "seeded"), "");
    const seedSeconds = reused ? null : (Date.now() - seedStart) / 1000;

    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const url = appUrl(server.url, { endpoint: server.url, project, shop: SHOP, path: "/counter" });
    await page.addInitScript(() => {
      window.__lastWriteAt = performance.now();
      window.__writesOpen = 0;
      const transaction = IDBDatabase.prototype.transaction;
      IDBDatabase.prototype.transaction = function (stores, mode, ...rest) {
        const opened = transaction.call(this, stores, mode, ...rest);
        if (mode === "readwrite") {
          window.__writesOpen++;
          const done = () => {
            window.__writesOpen--;
            window.__lastWriteAt = performance.now();
          };
          opened.addEventListener("complete", done);
          opened.addEventListener("abort", done);
        }
        return opened;
      };
    });
    const syncStart = Date.now();
    await page.goto(url);
    let held = 0;
    for (;;) {
      held = await countInStore(page, "products");
      if (held >= size || Date.now() - syncStart > FIRST_SYNC_DEADLINE_MS) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const syncSeconds = (Date.now() - syncStart) / 1000;
    if (held < size) {
      await context.close();
      return { products: size, seedSeconds, firstSyncSeconds: null, heldAtDeadline: held, deadlineSeconds: syncSeconds };
    }
    // Quiet: no write transaction open, and none finished in the last second.
    const quietStart = Date.now();
    const quiet = await page
      .waitForFunction(
        () => window.__writesOpen === 0 && performance.now() - window.__lastWriteAt > 1000,
        null,
        { timeout: FIRST_SYNC_DEADLINE_MS, polling: 100 },
      )
      .then(() => true, () => false);
    // `null`: still writing at the deadline; the lookups are then measured beside sync work.
    const quietAfterSyncSeconds = quiet ? (Date.now() - quietStart) / 1000 : null;
    await page.getByTestId("scan-field").focus();
    await installProbes(page);

    const pick = (count) =>
      Array.from({ length: count }, (_, i) => products[Math.floor(((i * 7919) % size))]);
    const scanCodes = pick(SCANS).map((p) => p.barcodes[0]);
    const prefixes = pick(SEARCHES).map((p) => p.name.slice(0, 7));
    // Warm up once (first wasm paths, IndexedDB caches), then measure.
    await page.evaluate(timeScans, scanCodes.slice(0, 10));
    const scans = await page.evaluate(timeScans, scanCodes);
    const searches = await page.evaluate((p) => window.__benchSearches(p), prefixes);
    const sales = await page.evaluate((c) => window.__benchSales(c), scanCodes.slice(0, SALES));
    const raw = await page.evaluate(
      ([codes, prefixes]) => window.__rawLookups(codes, prefixes, 8),
      [scanCodes, prefixes],
    );
    await context.close();
    const shown = (timings) => summary(timings.map((t) => t.shown));
    const paint = (timings) => summary(timings.map((t) => t.painted));
    return {
      products: size,
      seedSeconds,
      firstSyncSeconds: +syncSeconds.toFixed(2),
      quietAfterSyncSeconds,
      scanShownMs: shown(scans),
      scanMs: paint(scans),
      rawBarcodeGetMs: summary(raw.gets),
      searchShownMs: shown(searches),
      searchMs: paint(searches),
      rawNameRangeMs: summary(raw.ranges),
      rawNameRangePaintedMs: summary(raw.rangesPainted),
      completeToReceiptShownMs: shown(sales),
      completeToReceiptMs: paint(sales),
    };
  } finally {
    await server.stop();
  }
}

const browser = await launchBrowser();
const results = [];
try {
  for (const size of SIZES) {
    const result = await run(browser, size);
    results.push(result);
    console.log(JSON.stringify(result));
  }
} finally {
  await browser.close();
}
const machine = `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB`;
console.log(`\nmachine: ${machine}`);
const pair = (s) => (s ? `${s.p50}/${s.p99}` : "-");
const ratio = (a, b) => (a && b ? `${(a.p50 / b.p50).toFixed(2)}×/${(a.p99 / b.p99).toFixed(2)}×` : "-");
console.log("All times p50/p99 in ms; shown = the DOM shows it, painted = the next animation frame after.");
console.log("| products | first sync s | scan shown | scan painted | raw get | search shown | search painted | raw range | raw range painted | search painted ÷ raw painted | complete→receipt shown | complete→receipt painted |");
console.log("|---|---|---|---|---|---|---|---|---|---|---|---|");
for (const r of results) {
  if (r.firstSyncSeconds === null) {
    console.log(`| ${r.products} | not done: ${r.heldAtDeadline} products after ${r.deadlineSeconds} s |`);
    continue;
  }
  console.log(
    `| ${r.products} | ${r.firstSyncSeconds} | ${pair(r.scanShownMs)} | ${pair(r.scanMs)} | ${pair(r.rawBarcodeGetMs)} | ${pair(r.searchShownMs)} | ${pair(r.searchMs)} | ${pair(r.rawNameRangeMs)} | ${pair(r.rawNameRangePaintedMs)} | ${ratio(r.searchMs, r.rawNameRangePaintedMs)} | ${pair(r.completeToReceiptShownMs)} | ${pair(r.completeToReceiptMs)} |`,
  );
}
writeFileSync(join(ARTIFACTS, "bench-counter.json"), JSON.stringify({ machine, results }, null, 2));
