// The device's storage fills up: a sale must fail with a clear message and leave nothing
// half-written, and work again once space is freed. Real IndexedDB, real quota (lowered for the
// origin through the DevTools protocol).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { join } from "node:path";
import {
  ARTIFACTS,
  appUrl,
  launchBrowser,
  startServer,
  temporaryDirectory,
  waitForBadge,
  waitForProducts,
} from "./harness.mjs";

let server;
let browser;
before(async () => {
  [server, browser] = await Promise.all([
    startServer({ dataDir: temporaryDirectory("counterbook-quota-") }),
    launchBrowser(),
  ]);
});
after(async () => {
  await Promise.all([browser?.close(), server?.stop()]);
});

/** Writes ever smaller records into another database of the origin until the quota refuses. */
function fillStorage(page) {
  return page.evaluate(async () => {
    const db = await new Promise((resolve, reject) => {
      const request = indexedDB.open("filler", 1);
      request.onupgradeneeded = () => request.result.createObjectStore("blobs");
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    let size = 65536;
    let key = 0;
    let refusal = null;
    while (size >= 64) {
      try {
        await new Promise((resolve, reject) => {
          const transaction = db.transaction("blobs", "readwrite");
          transaction.objectStore("blobs").put("x".repeat(size) + Math.random(), key++);
          transaction.oncomplete = resolve;
          transaction.onabort = () => reject(transaction.error);
        });
      } catch (error) {
        refusal = error.name;
        size = Math.floor(size / 2);
      }
    }
    db.close();
    return refusal;
  });
}

test("a full disk refuses a product with a clear message and keeps nothing half-written", async () => {
  const tablet = await browser.newContext();
  try {
    const page = await tablet.newPage();
    await page.goto(appUrl(server.url, { endpoint: server.url, project: "e2e-quota", shop: "s1" }));
    await waitForBadge(page, { connection: "Online", pending: 0 });
    const { usage } = await page.evaluate(() => navigator.storage.estimate());
    const devtools = await tablet.newCDPSession(page);
    await devtools.send("Storage.overrideQuotaForOrigin", {
      origin: server.url,
      quotaSize: usage + 200_000,
    });
    assert.equal(await fillStorage(page), "QuotaExceededError");

    await page.getByTestId("product-name").fill("Rin Detergent 1kg");
    await page.getByTestId("product-price").fill("85");
    await page.getByTestId("add-product").click();
    await page.getByTestId("form-error").waitFor();
    assert.equal(
      await page.getByTestId("form-error").textContent(),
      "This device's storage is full (or failing), so nothing was saved. Free some space and try again.",
    );
    assert.equal(await page.getByTestId("product-count").textContent(), "0");
    assert.equal(await page.getByTestId("pending-count").textContent(), "0");
    assert.equal(await page.getByTestId("product-name").inputValue(), "Rin Detergent 1kg");
    await page.screenshot({ path: join(ARTIFACTS, "storage-full.png"), fullPage: true });

    // Space comes back: the same form, untouched, saves on the next press.
    await page.evaluate(
      () =>
        new Promise((resolve, reject) => {
          const request = indexedDB.deleteDatabase("filler");
          request.onsuccess = resolve;
          request.onerror = () => reject(request.error);
        }),
    );
    await devtools.send("Storage.overrideQuotaForOrigin", { origin: server.url });
    await page.getByTestId("add-product").click();
    await waitForProducts(page, ["Rin Detergent 1kg"]);
    await waitForBadge(page, { connection: "Online", pending: 0 });
  } finally {
    await tablet.close();
  }
});
