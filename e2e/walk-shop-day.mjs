// `make walk-shop-day` (not a test, not part of `make test`): a shopkeeper's day on a large
// shop, through every screen, on the release build and counterbook-server with accounts. The
// first run sets the shop up and sells once (that bill is the pattern of the seeded ones); then
// WALK_PRODUCTS products (100,000 unless told) and WALK_BILLS bills (3,000) are written over
// REST, and a second tablet signs in and syncs them all. On it: the counter (scan, search by
// name, a weighed item, a customer, cash, card, UPI, credit, split, park and resume, the
// receipt, reprint by its QR code), the products page (scrolled to its end, searched, filtered,
// a product added and edited, stock received and adjusted, a 10,000-row CSV with bad rows
// imported, every product exported), the bills page (scrolled, a bill opened, refunded, another
// voided), people, settings, sync, offline and back.
//
// For each step it prints what it cost: the time until the screen showed it, the DOM's element
// count, the JS heap after a garbage collection, and how many records the page read from
// IndexedDB (every `get`, `getAll` and cursor step is counted in the page), so that a screen
// reading the whole catalogue shows as a number near the catalogue's size. Screenshots of every
// screen at 800×1280 and 1280×800 go to e2e/artifacts/walk-*.png. WALK_DATA=dir keeps the
// seeded server there and reuses it (seeding 100,000 products takes a minute or two).

import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ARTIFACTS, launchBrowser, startAccountsServer, temporaryDirectory } from "./harness.mjs";
import { ean13, heaviestFunctions, scanWithKeyboard, screenshots, waitForIdlePage, waitForStoreCount } from "./counter-helpers.mjs";
import { choosePin, signIn, signInOverRest } from "./people-helpers.mjs";

const PRODUCTS = Number(process.env.WALK_PRODUCTS ?? 100_000);
const BILLS = Number(process.env.WALK_BILLS ?? 3_000);
const IMPORT_ROWS = Number(process.env.WALK_IMPORT_ROWS ?? 10_000);
const PROJECT = "counterbook";
const DATABASE = `projects/${PROJECT}/databases/(default)/documents`;
const OWNER = { email: "owner@example.com", password: "owner-secret-1" };
const WORDS = ["Chai", "Atta", "Dal", "Rice", "Soap", "Oil", "Ghee", "Salt", "Sugar", "Biscuit"];
const CATEGORIES = ["Staples", "Dairy", "Snacks", "Personal care", "Household", "Beverages", "Spices", "Frozen"];
const TOMATO = ean13("220000100000");
const TOMATO_LABEL = ean13("220000101250");
const results = [];

function productId(index) {
  return `00000000-0000-7000-8000-${String(index).padStart(12, "0")}`;
}

/** The fields of the `index`-th seeded product: every tenth low on stock, eight categories. */
function productDocument(index) {
  const low = index % 10 === 3;
  return {
    name: { stringValue: `${WORDS[index % WORDS.length]} ${String(index).padStart(6, "0")}` },
    price: { integerValue: String(10_00 + (index % 500) * 10) },
    currency: { stringValue: "INR" },
    sku: { stringValue: `SKU-${index}` },
    barcodes: { arrayValue: { values: [{ stringValue: ean13(`89${String(index).padStart(10, "0")}`) }] } },
    unit: { stringValue: "piece" },
    category: { stringValue: CATEGORIES[index % CATEGORIES.length] },
    taxRateBp: { integerValue: String([0, 500, 1200, 1800][index % 4]) },
    lowStockThreshold: { integerValue: "5" },
    stock: { integerValue: low ? "2" : "1000" },
    deleted: { booleanValue: false },
  };
}

const barcodeOf = (index) => ean13(`89${String(index).padStart(10, "0")}`);

/** A UUID v7 of `millis` (its 48-bit time), the rest from `serial`. */
function uuidV7(millis, serial) {
  const time = millis.toString(16).padStart(12, "0");
  const tail = serial.toString(16).padStart(12, "0");
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7000-8000-${tail}`;
}

async function rest(server, token, method, path, body) {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text.slice(0, 400)}`);
  return text ? JSON.parse(text) : null;
}

/** How many documents the shop's `collection` holds on the server. */
async function serverCount(server, token, shop, collection) {
  const [{ result }] = await rest(server, token, "POST", `/v1/${DATABASE}/shops/${shop}:runAggregationQuery`, {
    structuredAggregationQuery: {
      structuredQuery: { from: [{ collectionId: collection }] },
      aggregations: [{ alias: "count", count: {} }],
    },
  });
  return Number(result.aggregateFields.count.integerValue);
}

/** Writes `documents` (`{ path, fields }`) in commits of 400, each stamped with `updatedAt`. */
async function writeDocuments(server, token, documents) {
  for (let start = 0; start < documents.length; start += 400) {
    await rest(server, token, "POST", `/v1/${DATABASE}:commit`, {
      writes: documents.slice(start, start + 400).map(({ path, fields }) => ({
        update: { name: `${DATABASE}/${path}`, fields },
        updateTransforms: [{ fieldPath: "updatedAt", setToServerValue: "REQUEST_TIME" }],
      })),
    });
  }
}

/** The CSV of the import step: `rows` rows, one in fifty bad (a price, a name, a unit). */
function importCsv(rows, run) {
  const lines = ["name,sku,barcode,price,stock,tax_rate,unit,category,low_stock"];
  let bad = 0;
  for (let i = 0; i < rows; i++) {
    const barcode = ean13(`7${run % 10}${String(i).padStart(10, "0")}`);
    const name = `Imported ${run} ${String(i).padStart(5, "0")}`;
    if (i % 50 === 7) {
      lines.push(`${name},IMP-${run}-${i},${barcode},twelve,5,18,piece,Imported,2`);
      bad++;
    } else if (i % 50 === 19) {
      lines.push(`${name},IMP-${run}-${i},${barcode},12.50,5,18,box,Imported,2`);
      bad++;
    } else if (i % 500 === 23) {
      // A barcode the catalogue already has.
      lines.push(`${name},IMP-${run}-${i},${barcodeOf(i)},12.50,5,18,piece,Imported,2`);
      bad++;
    } else {
      lines.push(`${name},IMP-${run}-${i},${barcode},12.50,${i % 10 === 0 ? "2.500" : "7"},18,${i % 10 === 0 ? "kg" : "piece"},Imported,3`);
    }
  }
  return { text: lines.join("\n") + "\n", bad };
}

/** Counts, in the page, the records IndexedDB hands it: each get, getAll and cursor step. */
function countIndexedDbReads() {
  addEventListener("TrunkApplicationStarted", (event) => (window.__wasmMemory = event.detail.wasm?.memory));
  window.__idbRecords = 0;
  window.__idbBiggest = [];
  window.__idbByStore = {};
  const note = (what, request) =>
    request.addEventListener("success", () => {
      const result = request.result;
      const records = Array.isArray(result) ? result.length : result == null ? 0 : 1;
      window.__idbRecords += records;
      const store = what.replace(/^[a-z]+\.[A-Za-z]+\(|\)$/g, "");
      window.__idbByStore[store] = (window.__idbByStore[store] ?? 0) + records;
      if (records >= 500) window.__idbBiggest.push(`${what} ${records}`);
    });
  for (const prototype of [IDBObjectStore.prototype, IDBIndex.prototype]) {
    const where = prototype === IDBIndex.prototype ? "index" : "store";
    for (const method of ["get", "getAll", "getAllKeys", "openCursor", "openKeyCursor"]) {
      const original = prototype[method];
      prototype[method] = function (...args) {
        const request = original.apply(this, args);
        const storeName = this instanceof IDBIndex ? `${this.objectStore.name}.${this.name}` : this.name;
        note(`${where}.${method}(${storeName})`, request);
        return request;
      };
    }
  }
}

async function heapMegabytes(session) {
  await session.send("HeapProfiler.collectGarbage");
  const { usedSize } = await session.send("Runtime.getHeapUsage");
  return +(usedSize / 2 ** 20).toFixed(1);
}

/** Runs `action`, times it, and records the screen's cost after it under `name`. */
const PROFILED = (process.env.WALK_PROFILE ?? "").split(",").filter(Boolean);

async function step(page, session, name, action, { shots = true } = {}) {
  const profiled = PROFILED.includes(name);
  if (profiled) {
    await session.send("Profiler.enable");
    await session.send("Profiler.setSamplingInterval", { interval: 500 });
    await session.send("Profiler.start");
  }
  await page.evaluate(() => {
    window.__idbRecords = 0;
    window.__idbBiggest = [];
    window.__idbByStore = {};
  });
  const start = Date.now();
  let error = null;
  try {
    await action();
  } catch (caught) {
    error = caught.message.split("\n")[0];
  }
  const ms = Date.now() - start;
  if (profiled) {
    const { profile } = await session.send("Profiler.stop");
    writeFileSync(join(ARTIFACTS, `walk-${name}.cpuprofile`), JSON.stringify(profile));
    console.log(JSON.stringify({ profile: name, heaviest: heaviestFunctions(profile, 25) }));
  }
  const { nodes, records, biggest, wasmMb, byStore } = await page.evaluate(() => ({
    byStore: Object.fromEntries(Object.entries(window.__idbByStore).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]).slice(0, 4)),
    nodes: document.getElementsByTagName("*").length,
    wasmMb: window.__wasmMemory ? +(window.__wasmMemory.buffer.byteLength / 2 ** 20).toFixed(1) : null,
    records: window.__idbRecords,
    biggest: window.__idbBiggest.slice(0, 5),
  }));
  const heap = await heapMegabytes(session);
  const result = { step: name, ms, nodes, heapMb: heap, wasmMb, idbRecords: records, byStore, ...(biggest.length ? { biggest } : {}), ...(error ? { error } : {}) };
  results.push(result);
  console.log(JSON.stringify(result));
  if (shots) {
    await screenshots(page, `walk-${name}`);
  }
  return result;
}

const cartLines = (page, count) =>
  page.waitForFunction((count) => document.querySelectorAll("[data-testid=cart-line]").length === count, count);

async function completeSale(page) {
  await page.getByRole("button", { name: "Complete sale", exact: true }).click();
  await page.getByTestId("bill-number").waitFor({ timeout: 20_000 });
  return (await page.getByTestId("bill-number").textContent()).trim();
}

async function newSale(page) {
  await page.getByTestId("new-sale").click();
  await page.getByTestId("receipt").waitFor({ state: "detached" });
}

async function openPageByLink(page, path, ready) {
  await page.locator(`nav.pages a[href="${path}"]`).click();
  await page.waitForFunction((path) => location.pathname === path, path);
  await ready();
}

const kept = process.env.WALK_DATA ? join(process.env.WALK_DATA, `${PRODUCTS}-${BILLS}`) : null;
const reused = kept !== null && existsSync(join(kept, "seeded.json"));
// Each run on a kept server refunds and voids bills of its own and imports codes of its own.
const RUN = reused ? JSON.parse(readFileSync(join(kept, "seeded.json"), "utf8")).runs ?? 1 : 0;
if (kept) mkdirSync(kept, { recursive: true });
const dataDir = kept ?? temporaryDirectory("counterbook-walk-");
const browser = await launchBrowser();
let server = await startAccountsServer({ dataDir, claimed: reused });
try {
  let shop;
  let patternBill;
  if (reused) {
    ({ shop } = JSON.parse(readFileSync(join(kept, "seeded.json"), "utf8")));
    writeFileSync(join(kept, "seeded.json"), JSON.stringify({ shop, runs: RUN + 1 }));
  } else {
    // First run: the shop set up on its first tablet, a few products, one sale.
    const first = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await first.newPage();
    await page.goto(`${server.url}/counter?lockMinutes=0`);
    const setup = page.getByTestId("setup-form");
    await setup.waitFor();
    await screenshots(page, "walk-setup");
    await setup.getByTestId("setup-shop-name").fill("Kirana Hundred Thousand");
    await setup.getByTestId("setup-display-name").fill("Asha");
    await setup.getByTestId("setup-email").fill(OWNER.email);
    await setup.getByTestId("setup-password").fill(OWNER.password);
    await setup.getByTestId("setup-code").fill(server.setupCode);
    await setup.getByTestId("setup-submit").click();
    await page.getByTestId("choose-pin-form").waitFor({ timeout: 30_000 });
    await screenshots(page, "walk-choose-pin");
    await choosePin(page, "1111");
    ({ shop } = await signInOverRest(server.url, OWNER));
    const { idToken } = await signInOverRest(server.url, OWNER);
    await writeDocuments(server, idToken, [
      ...[1, 2, 3].map((index) => ({ path: `shops/${shop}/products/${productId(index)}`, fields: productDocument(index) })),
      {
        path: `shops/${shop}/products/00000000-0000-7000-9000-000000000001`,
        fields: { ...productDocument(0), name: { stringValue: "Tomatoes" }, sku: { stringValue: "TOMATO" }, barcodes: { arrayValue: { values: [{ stringValue: TOMATO }] } }, unit: { stringValue: "kg" }, price: { integerValue: "4000" }, stock: { integerValue: "50000" } },
      },
    ]);
    await waitForStoreCount(page, "products", 4);
    await waitForIdlePage(page);
    await page.getByTestId("scan-field").focus();
    await scanWithKeyboard(page, barcodeOf(1));
    await cartLines(page, 1);
    await completeSale(page);
    await newSale(page);
    await page.waitForFunction(() => document.querySelector("[data-testid=pending-count]")?.textContent === "0", null, { timeout: 30_000 });
    await first.close();
    const bills = await rest(server, idToken, "POST", `/v1/${DATABASE}/shops/${shop}:runQuery`, {
      structuredQuery: { from: [{ collectionId: "bills" }] },
    });
    patternBill = bills.find((item) => item.document).document;

    // The shop's catalogue and its past bills, over REST.
    const seedStart = Date.now();
    const catalogue = [];
    for (let index = 4; index < PRODUCTS; index++) {
      catalogue.push({ path: `shops/${shop}/products/${productId(index)}`, fields: productDocument(index) });
    }
    await writeDocuments(server, (await signInOverRest(server.url, OWNER)).idToken, catalogue);
    const dayMillis = 86_400_000;
    const now = Date.now();
    const pastBills = Array.from({ length: BILLS }, (_, serial) => {
      const at = now - dayMillis * 30 + Math.floor((serial * dayMillis * 30) / BILLS);
      const id = uuidV7(at, serial + 1);
      const fields = structuredClone(patternBill.fields);
      fields.number = { stringValue: `TSEED0-${String(serial + 1).padStart(6, "0")}` };
      fields.createdAtMillis = { integerValue: String(at) };
      delete fields.updatedAt;
      return { path: `shops/${shop}/bills/${id}`, fields };
    });
    for (let start = 0; start < pastBills.length; start += 4000) {
      await writeDocuments(server, (await signInOverRest(server.url, OWNER)).idToken, pastBills.slice(start, start + 4000));
    }
    console.log(JSON.stringify({ seeded: { products: PRODUCTS, bills: BILLS, seconds: (Date.now() - seedStart) / 1000 } }));
    if (kept) writeFileSync(join(kept, "seeded.json"), JSON.stringify({ shop, runs: 1 }));
  }

  // The second tablet: signs in and syncs the whole shop.
  const tablet = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await tablet.addInitScript(countIndexedDbReads);
  const page = await tablet.newPage();
  const session = await tablet.newCDPSession(page);
  await step(page, session, "sign-in", async () => {
    await page.goto(`${server.url}/counter?lockMinutes=0`);
    await page.getByTestId("sign-in-form").waitFor();
  });
  await step(page, session, "first-sync", async () => {
    await signIn(page, OWNER);
    await page.getByTestId("skip-pin").click();
    await page.getByLabel("Scan or search").waitFor();
    const { idToken } = await signInOverRest(server.url, OWNER);
    await waitForStoreCount(page, "products", await serverCount(server, idToken, shop, "products"), 600_000);
    await waitForStoreCount(page, "bills", await serverCount(server, idToken, shop, "bills"), 600_000);
    await waitForIdlePage(page);
  });
  await page.getByTestId("scan-field").focus();

  // The counter.
  await step(page, session, "counter-scan", async () => {
    for (const index of [1, 2, 3, Math.floor(PRODUCTS / 2), PRODUCTS - 1]) {
      await scanWithKeyboard(page, barcodeOf(index));
    }
    await cartLines(page, 5);
  });
  await step(page, session, "counter-search", async () => {
    const target = Math.floor(PRODUCTS / 20) * 10 + 6;
    await page.getByTestId("scan-field").fill(`Ghee ${String(target).padStart(6, "0").slice(0, 5)}`);
    await page.getByTestId("search-result").first().waitFor();
  });
  await page.getByTestId("search-result").first().click();
  await cartLines(page, 6);
  await step(page, session, "counter-weighed", async () => {
    await page.getByTestId("scan-field").focus();
    await scanWithKeyboard(page, TOMATO_LABEL);
    await cartLines(page, 7);
    await page.waitForFunction(() =>
      [...document.querySelectorAll("[data-testid=cart-line-quantity]")].some((input) => input.value === "1.25 kg"),
    );
  });
  // The weighed line's quantity must be readable whole at both sizes.
  for (const [width, height] of [[800, 1280], [1280, 800]]) {
    await page.setViewportSize({ width, height });
    const cut = await page.evaluate(() =>
      [...document.querySelectorAll("[data-testid=cart-line-quantity]")]
        .filter((input) => input.scrollWidth > input.clientWidth)
        .map((input) => `${input.value}: ${input.scrollWidth} > ${input.clientWidth}`),
    );
    console.log(JSON.stringify({ check: `quantity fields cut at ${width}x${height}`, cut }));
  }
  await page.setViewportSize({ width: 1280, height: 800 });
  await step(page, session, "counter-customer", async () => {
    await page.getByTestId("new-customer").click();
    await page.getByTestId("customer-new-name").fill("Ravi Kumar");
    await page.getByTestId("customer-new-phone").fill("98765 43210");
    await page.getByTestId("customer-new-limit").fill("100000");
    await page.getByTestId("add-customer").click();
    await page.getByTestId("customer-chosen").waitFor();
  });
  await step(page, session, "counter-park", async () => {
    await page.keyboard.press("F4");
    await cartLines(page, 0);
    await page.getByTestId("parked-bill").waitFor();
  });
  await step(page, session, "counter-resume", async () => {
    await page.getByTestId("resume-bill").click();
    await cartLines(page, 7);
  });
  await step(page, session, "counter-split-pay", async () => {
    await page.getByRole("button", { name: "Pay", exact: true }).click();
    await page.getByRole("button", { name: "Card", exact: true }).click();
    await page.getByTestId("amount-card").fill("20");
    await page.getByRole("button", { name: "UPI", exact: true }).click();
    await page.getByTestId("amount-upi").fill("20");
    await page.getByRole("button", { name: "Credit", exact: true }).click();
    await page.getByTestId("amount-credit").fill("20");
    await page.getByTestId("confirm-upi").click();
    await page.getByLabel("Amount received").fill("5000");
  });
  let billId;
  await step(page, session, "counter-receipt", async () => {
    await completeSale(page);
    billId = await page.getByTestId("receipt").getAttribute("data-bill-id");
  });
  await newSale(page);
  await step(page, session, "counter-reprint-by-qr", async () => {
    await page.getByTestId("scan-field").focus();
    await scanWithKeyboard(page, billId);
    await page.getByTestId("receipt").waitFor({ timeout: 15_000 });
  });
  await newSale(page);
  await step(page, session, "counter-cash-sale", async () => {
    await page.getByTestId("scan-field").focus();
    await scanWithKeyboard(page, barcodeOf(7));
    await cartLines(page, 1);
    await page.keyboard.press("F2");
    await page.getByLabel("Amount received").fill("500");
    await completeSale(page);
  }, { shots: false });
  await newSale(page);

  // The products page.
  await step(page, session, "products", () =>
    openPageByLink(page, "/products", () => page.getByTestId("product-row").first().waitFor()),
  );
  await step(page, session, "products-scroll-middle", async () => {
    await page.evaluate(() => {
      const scroller = document.querySelector(".product-scroller");
      scroller.scrollTop = scroller.scrollHeight / 2;
    });
    await page.waitForFunction(() => {
      const scroller = document.querySelector(".product-scroller");
      const top = scroller.scrollTop;
      return [...document.querySelectorAll("[data-testid=product-row]")].some((row) => Math.abs(row.offsetTop - top) < 200);
    });
  });
  await step(page, session, "products-scroll-end", async () => {
    await page.evaluate(() => {
      const scroller = document.querySelector(".product-scroller");
      scroller.scrollTop = scroller.scrollHeight;
    });
    await page.waitForFunction(() => {
      const scroller = document.querySelector(".product-scroller");
      const bottom = scroller.scrollTop + scroller.clientHeight;
      return [...document.querySelectorAll("[data-testid=product-row]")].some((row) => row.offsetTop + row.offsetHeight >= bottom - 70);
    });
  });
  await step(page, session, "products-scroll-by-wheel", async () => {
    await page.evaluate(() => (document.querySelector(".product-scroller").scrollTop = 0));
    await page.locator(".product-scroller").hover();
    for (let i = 0; i < 40; i++) await page.mouse.wheel(0, 1500);
    await page.waitForFunction(() => !document.querySelector(".product-scroller li.loading"));
  }, { shots: false });
  await step(page, session, "products-search", async () => {
    const prefix = `Sugar ${String(Math.floor(PRODUCTS / 20) * 10 + 8).padStart(6, "0").slice(0, 4)}`;
    await page.getByTestId("product-search").fill(prefix);
    await page.waitForFunction((prefix) => document.querySelectorAll("[data-testid=product-row-name]").length > 0 && [...document.querySelectorAll("[data-testid=product-row-name]")].every((e) => e.textContent.startsWith(prefix)), prefix);
  });
  await step(page, session, "products-search-barcode", async () => {
    await page.getByTestId("product-search").fill(barcodeOf(Math.min(4242, PRODUCTS - 1)));
    await page.getByTestId("code-match").waitFor();
  });
  await page.getByTestId("product-search").fill("");
  await step(page, session, "products-low-stock", async () => {
    await page.getByTestId("filter-low-stock").check();
    await page.waitForFunction(() => [...document.querySelectorAll("[data-testid=product-row]")].length > 0 && [...document.querySelectorAll("[data-testid=product-row]")].every((row) => row.querySelector("[data-testid=low-stock]")));
  });
  await page.getByTestId("filter-low-stock").uncheck();
  await step(page, session, "products-category", async () => {
    await page.getByTestId("filter-category").selectOption("Spices");
    await page.waitForFunction(() => [...document.querySelectorAll("[data-testid=product-row]")].length > 0 && [...document.querySelectorAll(".product-rows .category")].every((e) => e.textContent === "Spices"));
  });
  await page.getByTestId("filter-category").selectOption("");
  await step(page, session, "products-add", async () => {
    await page.getByTestId("product-name").fill(`Aaa First Product ${RUN}`);
    await page.getByTestId("product-price").fill("12.50");
    await page.getByTestId("product-barcodes").fill(ean13(`556${String(RUN).padStart(9, "0")}`));
    await page.getByTestId("product-category").fill("Staples");
    await page.getByTestId("product-opening-stock").fill("10");
    await page.getByTestId("add-product").click();
    await page.waitForFunction(() => document.querySelector("[data-testid=product-name]").value === "");
    await page.getByTestId("product-row-name").filter({ hasText: `Aaa First Product ${RUN}` }).waitFor();
  });
  const firstRow = page.getByTestId("product-row").filter({ hasText: `Aaa First Product ${RUN}` });
  await step(page, session, "products-edit", async () => {
    await firstRow.getByTestId("edit-product").click();
    await page.waitForFunction((name) => document.querySelector("[data-testid=product-name]").value === name, `Aaa First Product ${RUN}`);
    await page.getByTestId("product-price").fill("13");
    await page.getByTestId("add-product").click();
    await firstRow.getByTestId("product-price-shown").filter({ hasText: "13.00" }).waitFor();
  });
  await step(page, session, "products-receive", async () => {
    await firstRow.getByTestId("stock-product").click();
    await page.getByTestId("stock-quantity").fill("20");
    await page.getByTestId("save-stock").click();
    await firstRow.getByTestId("product-stock").filter({ hasText: /^30$/ }).waitFor();
  });
  await step(page, session, "products-adjust", async () => {
    await firstRow.getByTestId("stock-product").click();
    await page.getByTestId("stock-kind").selectOption("adjust");
    await page.getByTestId("stock-quantity").fill("-3");
    await page.getByTestId("stock-reason").fill("broken");
    await page.getByTestId("save-stock").click();
    await firstRow.getByTestId("product-stock").filter({ hasText: /^27$/ }).waitFor();
  });
  const csv = importCsv(IMPORT_ROWS, RUN);
  const csvPath = join(temporaryDirectory("counterbook-walk-csv-"), "catalogue.csv");
  writeFileSync(csvPath, csv.text);
  await step(page, session, "products-import-preview", async () => {
    await page.getByTestId("import-csv").setInputFiles(csvPath);
    await page.getByTestId("import-preview").waitFor({ timeout: 120_000 });
  });
  console.log(JSON.stringify({ check: "import preview", ready: await page.getByTestId("import-ready-count").textContent(), errors: await page.getByTestId("import-error-count").textContent(), expectedErrors: csv.bad }));
  await step(page, session, "products-import", async () => {
    await page.getByTestId("import-confirm").click();
    await page.getByTestId("import-done").waitFor({ timeout: 300_000 });
  });
  await step(page, session, "products-export", async () => {
    const [download] = await Promise.all([page.waitForEvent("download", { timeout: 300_000 }), page.getByTestId("export-csv").click()]);
    const saved = join(temporaryDirectory("counterbook-walk-export-"), "products.csv");
    await download.saveAs(saved);
    const lines = readFileSync(saved, "utf8").split("\n").filter(Boolean).length;
    console.log(JSON.stringify({ check: "export lines (header included)", lines }));
  }, { shots: false });

  // The bills page.
  await step(page, session, "bills", () =>
    openPageByLink(page, "/bills", () => page.getByTestId("bill-row").first().waitFor()),
  );
  const refunded = `TSEED0-${String(2 * RUN + 1).padStart(6, "0")}`;
  const voided = `TSEED0-${String(2 * RUN + 2).padStart(6, "0")}`;
  await step(page, session, "bills-scroll-end", async () => {
    await page.evaluate(() => {
      const scroller = document.querySelector("[data-testid=bill-scroller]");
      scroller.scrollTop = scroller.scrollHeight;
    });
    await page.locator('[data-testid=bill-row][data-number="TSEED0-000001"]').waitFor({ timeout: 30_000 });
  });
  await page.getByTestId("find-bill").fill(refunded);
  await step(page, session, "bills-open", async () => {
    await page.locator(`[data-testid=bill-row][data-number="${refunded}"]`).click();
    await page.getByTestId("bill-detail").waitFor();
  });
  await step(page, session, "bills-refund", async () => {
    await page.getByTestId("refund-bill").click();
    await page.getByTestId("refund-line").first().getByTestId("refund-quantity").fill("1");
    await page.getByTestId("undo-reason").fill("returned");
    await page.getByTestId("confirm-refund").click();
    await page.getByTestId("refunded-line").first().waitFor();
  });
  await page.getByTestId("close-bill").click();
  await step(page, session, "bills-void", async () => {
    await page.getByTestId("find-bill").fill(voided);
    await page.locator(`[data-testid=bill-row][data-number="${voided}"]`).click();
    await page.getByTestId("void-bill").click();
    await page.getByTestId("undo-reason").fill("wrong bill");
    await page.getByTestId("confirm-void").click();
    await page.getByTestId("bill-void").waitFor();
  });
  await page.getByTestId("close-bill").click();
  await page.getByTestId("find-bill").fill("");

  // People, settings, sync.
  await step(page, session, "people", () => openPageByLink(page, "/people", () => page.getByTestId("tablet-people").waitFor()));
  await step(page, session, "settings", () => openPageByLink(page, "/settings", () => page.getByTestId("device-settings").waitFor()));
  await step(page, session, "sync", () => openPageByLink(page, "/sync", () => page.getByTestId("status-panel").waitFor()));

  // Offline and back.
  await openPageByLink(page, "/counter", () => page.getByLabel("Scan or search").waitFor());
  await page.waitForFunction(() => document.querySelector("[data-testid=pending-count]")?.textContent === "0", null, { timeout: 120_000 });
  await step(page, session, "offline-sale", async () => {
    await tablet.setOffline(true);
    await page.getByTestId("connection").filter({ hasText: "Offline" }).waitFor();
    await page.getByTestId("scan-field").focus();
    await scanWithKeyboard(page, barcodeOf(9));
    await cartLines(page, 1);
    await completeSale(page);
    await newSale(page);
  });
  await step(page, session, "offline-reload", async () => {
    await page.reload();
    await page.getByLabel("Scan or search").waitFor();
  });
  await step(page, session, "back-online", async () => {
    await tablet.setOffline(false);
    await page.waitForFunction(() => document.querySelector("[data-testid=pending-count]")?.textContent === "0", null, { timeout: 120_000 });
  });
  await tablet.close();
} finally {
  await browser.close();
  await server.stop();
}
console.log("\n| step | ms | DOM elements | JS heap MB | wasm memory MB | IndexedDB records read |");
console.log("|---|---|---|---|---|---|");
for (const r of results) {
  console.log(`| ${r.step} | ${r.ms} | ${r.nodes} | ${r.heapMb} | ${r.wasmMb} | ${r.idbRecords} ${JSON.stringify(r.byStore)}${r.biggest ? ` (${r.biggest.join("; ")})` : ""}${r.error ? ` ERROR ${r.error}` : ""} |`);
}
writeFileSync(join(ARTIFACTS, `walk-shop-day-${PRODUCTS}.json`), JSON.stringify(results, null, 2));
