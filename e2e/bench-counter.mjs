// `make bench-counter` (not part of `make test`): the counter over a large catalogue. With
// 50,000 and then 100,000 products on counterbook-server:
//   - first sync into an empty tablet (page opened to every product in IndexedDB);
//   - scan: the keydown of a scan's Enter to the cart line painted, p50/p99;
//   - search: a keystroke in "Scan or search" to the results painted, p50/p99;
//   - complete sale to the receipt painted;
// and beside them, as the floor, the same lookups in raw IndexedDB JavaScript on the same
// database (a barcode index get; a name-prefix range with the same limit), and the ratios.
// "Painted" is the first animation frame after the DOM shows the change.

import { cpus, totalmem } from "node:os";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ARTIFACTS, appUrl, launchBrowser, startServer, temporaryDirectory } from "./harness.mjs";
import { countInStore, ean13, seedProducts, seededId } from "./counter-helpers.mjs";

const SIZES = (process.env.BENCH_COUNTER_SIZES ?? "50000,100000").split(",").map(Number);
const SCANS = 200;
const SEARCHES = 100;
const SALES = 20;
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
    const until = (test) =>
      new Promise((resolve) => {
        if (test()) return resolve();
        const observer = new MutationObserver(() => {
          if (test()) {
            observer.disconnect();
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
    const cartSignature = () =>
      [...document.querySelectorAll("[data-testid=cart-line-quantity]")].map((e) => e.value).join(",");
    window.__benchScans = async (codes) => {
      const times = [];
      for (const [index, code] of codes.entries()) {
        if (index % 20 === 0) {
          press("Escape", "Escape");
          await until(() => document.querySelectorAll("[data-testid=cart-line]").length === 0);
        }
        for (const digit of code) {
          press(digit, `Digit${digit}`);
          await pause(2);
        }
        const before = cartSignature();
        const start = performance.now();
        press("Enter", "Enter");
        await until(() => cartSignature() !== before);
        times.push((await painted()) - start);
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
        times.push((await painted()) - start);
      }
      field.value = "";
      field.dispatchEvent(new Event("input", { bubbles: true }));
      return times;
    };
    window.__benchSales = async (codes) => {
      const times = [];
      for (const code of codes) {
        for (const digit of code) {
          press(digit, `Digit${digit}`);
          await pause(2);
        }
        press("Enter", "Enter");
        await until(() => document.querySelectorAll("[data-testid=cart-line]").length > 0);
        const start = performance.now();
        document.querySelector("[data-testid=complete-sale]").click();
        await until(() => document.querySelector("[data-testid=bill-number]"));
        times.push((await painted()) - start);
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
      for (const prefix of prefixes) {
        const key = prefix.toLowerCase();
        const start = performance.now();
        await request(() =>
          db
            .transaction("products")
            .objectStore("products")
            .index("nameKey")
            .getAll(IDBKeyRange.bound(key, key + "\uffff"), limit),
        );
        ranges.push(performance.now() - start);
      }
      db.close();
      return { gets, ranges };
    };
  });
}

async function run(browser, size) {
  const server = await startServer({ dataDir: temporaryDirectory("counterbook-bench-counter-") });
  try {
    const project = `bench-counter-${size}`;
    const products = catalogue(size);
    const seedStart = Date.now();
    await seedProducts(server.url, project, SHOP, products);
    const seedSeconds = (Date.now() - seedStart) / 1000;

    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const url = appUrl(server.url, { endpoint: server.url, project, shop: SHOP, path: "/counter" });
    const syncStart = Date.now();
    await page.goto(url);
    for (;;) {
      if ((await countInStore(page, "products")) >= size) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const syncSeconds = (Date.now() - syncStart) / 1000;
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
    return {
      products: size,
      seedSeconds,
      firstSyncSeconds: +syncSeconds.toFixed(2),
      scanMs: summary(scans),
      rawBarcodeGetMs: summary(raw.gets),
      searchMs: summary(searches),
      rawNameRangeMs: summary(raw.ranges),
      completeToReceiptMs: summary(sales),
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
console.log("| products | first sync s | scan p50/p99 ms | raw get p50/p99 ms | search p50/p99 ms | raw range p50/p99 ms | complete→receipt p50/p99 ms |");
console.log("|---|---|---|---|---|---|---|");
for (const r of results) {
  console.log(
    `| ${r.products} | ${r.firstSyncSeconds} | ${r.scanMs.p50}/${r.scanMs.p99} | ${r.rawBarcodeGetMs.p50}/${r.rawBarcodeGetMs.p99} | ${r.searchMs.p50}/${r.searchMs.p99} | ${r.rawNameRangeMs.p50}/${r.rawNameRangeMs.p99} | ${r.completeToReceiptMs.p50}/${r.completeToReceiptMs.p99} |`,
  );
}
writeFileSync(join(ARTIFACTS, "bench-counter.json"), JSON.stringify({ machine, results }, null, 2));
