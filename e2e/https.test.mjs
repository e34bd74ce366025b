// The app over HTTPS from counterbook-server's own local CA, as a tablet on the shop's network
// gets it: Chromium trusts the generated server certificate (by its key's SPKI hash, as a
// tablet that installed the CA would), the page is a secure context with the service worker,
// Web Locks and persistent storage, the Content-Security-Policy blocks nothing the app does,
// plain http:// redirects to https://, /setup/ca hands out the CA certificate, and the app
// reloads offline from the service worker.

import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  ARTIFACTS,
  addProduct,
  appUrl,
  launchBrowser,
  openPage,
  startServer,
  temporaryDirectory,
  waitForBadge,
  waitForProducts,
} from "./harness.mjs";
import {
  countInStore,
  ean13,
  productFields,
  scanWithKeyboard,
  seededId,
  waitForProductCount,
} from "./counter-helpers.mjs";

/** A plain-HTTP GET by hand; status and headers (redirects are not followed). */
function plainGet(url) {
  return new Promise((resolve, reject) => {
    const outgoing = request(url, (response) => {
      response.resume();
      response.on("end", () => resolve({ status: response.statusCode, headers: response.headers }));
    });
    outgoing.on("error", reject);
    outgoing.end();
  });
}

/** Records every CSP violation of the page from before its first script runs. */
async function recordPolicyViolations(page) {
  await page.addInitScript(() => {
    window.__policyViolations = [];
    document.addEventListener("securitypolicyviolation", (event) => {
      window.__policyViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
    });
  });
}

describe("a tablet opens the shop's server over HTTPS", () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer({ dataDir: temporaryDirectory("counterbook-e2e-tls-"), tls: true });
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(server.spki, "the server printed its certificate's SPKI hash");
    browser = await launchBrowser({ trustSpki: [server.spki] });
  });

  after(async () => {
    await Promise.all([browser?.close(), server?.stop()]);
  });

  test("a secure context: service worker, Web Locks and persistent storage, nothing blocked", async () => {
    const tablet = await browser.newContext();
    try {
      const page = await tablet.newPage();
      await recordPolicyViolations(page);
      // Lighthouse counts what the console says: the app starts without errors or warnings.
      const consoleMessages = [];
      page.on("console", (message) => {
        if (["error", "warning"].includes(message.type())) consoleMessages.push(message.text());
      });
      page.on("pageerror", (error) => consoleMessages.push(String(error)));
      const url = appUrl(server.url, { endpoint: server.url, project: "e2e-tls", shop: "s1", path: "/counter" });
      await page.goto(url);
      await page.getByTestId("counter-page").waitFor();
      await waitForBadge(page, { connection: "Online", pending: 0 });
      const context = await page.evaluate(async () => {
        const registration = await navigator.serviceWorker.ready;
        return {
          secure: window.isSecureContext,
          locks: typeof navigator.locks?.request === "function",
          persist: typeof (await navigator.storage.persist()),
          persisted: typeof (await navigator.storage.persisted()),
          worker: registration.active?.scriptURL,
        };
      });
      assert.deepEqual(
        context,
        {
          secure: true,
          locks: true,
          persist: "boolean",
          persisted: "boolean",
          worker: `${server.url}/sw.js`,
        },
      );
      await openPage(page, "/products");
      await page.getByTestId("product-list").waitFor({ state: "attached" });
      // The list places its rows with styles, which the policy allows only through the CSSOM.
      await addProduct(page, "Maggi 70g", "14");
      await waitForProducts(page, ["Maggi 70g"]);
      assert.equal(
        await page.getByTestId("product-row").evaluate((row) => row.style.top),
        "0px",
      );
      await page.screenshot({ path: join(ARTIFACTS, "https-products.png"), fullPage: true });
      await openPage(page, "/sync");
      await page.getByTestId("sync-all-clear").waitFor();
      assert.deepEqual(await page.evaluate(() => window.__policyViolations), []);
      assert.deepEqual(consoleMessages, []);

      // Offline, the service worker serves the shell: the counter reloads and works.
      await page.reload();
      await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
      assert.ok(await page.evaluate(() => navigator.serviceWorker.controller !== null));
      await tablet.setOffline(true);
      await page.goto(`${server.url}/counter`);
      await page.getByTestId("counter-page").waitFor();
      await waitForBadge(page, { connection: "Offline", pending: 0 });
      // Every other page is a split module of the wasm (src/ui/lazy.rs), none of them loaded
      // yet by this page: each comes from the service worker's cache, still offline.
      const splitModules = () =>
        page.evaluate(() =>
          performance
            .getEntriesByType("resource")
            .map((entry) => new URL(entry.name).pathname)
            .filter((path) => /^\/(split|chunk)_.+\.wasm$/.test(path)),
        );
      const loadedWithTheCounter = await splitModules();
      for (const [path, testId] of [
        ["/products", "product-list"],
        ["/bills", "bills-page"],
        ["/sync", "sync-all-clear"],
        ["/people", "tablet-people"],
        ["/settings", "shop-settings"],
      ]) {
        await openPage(page, path);
        await page.getByTestId(testId).waitFor({ state: "attached" });
      }
      assert.equal(await page.getByTestId("part-not-loaded").count(), 0);
      const pagesLoaded = (await splitModules()).filter((path) => !loadedWithTheCounter.includes(path));
      for (const name of ["products_page", "bills_page", "sync_page", "people_page", "settings_page"]) {
        assert.ok(
          pagesLoaded.some((path) => path.startsWith(`/split_${name}-`)),
          `${name}'s module loaded when its page opened: ${JSON.stringify(pagesLoaded)}`,
        );
      }
      assert.deepEqual(await page.evaluate(() => window.__policyViolations), []);
    } finally {
      await tablet.close();
    }
  });

  test("a split module that cannot be had: its part says so and the counter goes on", async () => {
    // No service worker (as on a first visit before it installs), and the products page's
    // module refused by the network, as offline.
    const tablet = await browser.newContext({ serviceWorkers: "block" });
    try {
      const page = await tablet.newPage();
      let refused = 0;
      await page.route(/\/split_products_page-[0-9a-f]{16}\.wasm$/, (route) => {
        refused += 1;
        return route.abort("internetdisconnected");
      });
      const url = appUrl(server.url, { endpoint: server.url, project: "e2e-tls", shop: "s2", path: "/counter" });
      await page.goto(url);
      await page.getByTestId("counter-page").waitFor();
      await openPage(page, "/products");
      await page.getByTestId("part-not-loaded").waitFor();
      assert.ok(refused >= 1, "the products page's module was asked for");
      assert.equal(await page.getByTestId("product-list").count(), 0);
      // The wasm still runs: the other pages open, their modules load.
      await openPage(page, "/sync");
      await page.getByTestId("sync-all-clear").waitFor();
      await openPage(page, "/counter");
      await page.getByTestId("counter-page").waitFor();
      // Tried again on the next visit, and loaded once the network gives it.
      await page.unroute(/\/split_products_page-[0-9a-f]{16}\.wasm$/);
      await openPage(page, "/products");
      await page.getByTestId("product-list").waitFor({ state: "attached" });
    } finally {
      await tablet.close();
    }
  });

  test("completing a sale whose module cannot be had saves nothing, and works once it loads", async () => {
    // Completing a sale is a split module (src/ui/lazy.rs) loaded once the counter is up; no
    // service worker here, and the network refuses that module.
    const tablet = await browser.newContext({ serviceWorkers: "block" });
    const saleModule = /\/split_complete_sale-[0-9a-f]{16}\.wasm$/;
    try {
      const code = ean13("890123400002");
      const page = await tablet.newPage();
      // Node does not trust the server's CA; the page does (the SPKI pin), so it talks to it.
      const database = "projects/e2e-tls/databases/(default)";
      const post = (path, body) =>
        page.evaluate(
          async ({ path, body }) => {
            const response = await fetch(path, {
              method: "POST",
              headers: { "Content-Type": "application/json" },
              body: JSON.stringify(body),
            });
            if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
            return response.json();
          },
          { path, body },
        );
      let refused = 0;
      await page.route(saleModule, (route) => {
        refused += 1;
        return route.abort("internetdisconnected");
      });
      const url = appUrl(server.url, { endpoint: server.url, project: "e2e-tls", shop: "s4", path: "/counter" });
      await page.goto(url);
      await page.getByTestId("counter-page").waitFor();
      // The product reaches the server after the tablet started; it comes to the tablet.
      await post(`/v1/${database}/documents:commit`, {
        writes: [
          {
            update: {
              name: `${database}/documents/shops/s4/products/${seededId(1)}`,
              fields: productFields({ name: "Tata Salt 1kg", price: 2800, barcodes: [code] }),
            },
            updateTransforms: [{ fieldPath: "updatedAt", setToServerValue: "REQUEST_TIME" }],
          },
        ],
      });
      await waitForBadge(page, { connection: "Online", pending: 0 });
      await waitForProductCount(page, 1);
      await scanWithKeyboard(page, code);
      await page.getByTestId("cart-line").waitFor();
      await page.getByRole("button", { name: "Complete sale", exact: true }).click();
      await page.getByTestId("counter-error").waitFor();
      assert.match(await page.getByTestId("counter-error").textContent(), /could not be loaded/);
      assert.ok(refused >= 1, "completing a sale asked for its module");
      // Nothing was saved: the cart is still there, no bill, nothing pending.
      assert.equal(await page.getByTestId("cart-line").count(), 1);
      assert.equal(await countInStore(page, "bills"), 0);
      await waitForBadge(page, { connection: "Online", pending: 0 });

      // The network gives the module: the same cart completes, and the sale reaches the server.
      await page.unroute(saleModule);
      await page.getByRole("button", { name: "Complete sale", exact: true }).click();
      const receipt = page.getByRole("region", { name: "Receipt" });
      await receipt.waitFor({ timeout: 15_000 });
      assert.equal(await countInStore(page, "bills"), 1);
      await waitForBadge(page, { connection: "Online", pending: 0 });
      const bills = (
        await post(`/v1/${database}/documents/shops/s4:runQuery`, {
          structuredQuery: { from: [{ collectionId: "bills" }] },
        })
      ).filter((item) => item.document);
      assert.equal(bills.length, 1);
    } finally {
      await tablet.close();
    }
  });

  test("the sync engine's module cannot be had: sales wait in the outbox, and go once it loads", async () => {
    // No service worker (its precache would answer), and the engine's module (src/sync/engine.rs)
    // refused by the network: the app starts, and what is made waits in the outbox.
    const tablet = await browser.newContext({ serviceWorkers: "block" });
    try {
      const page = await tablet.newPage();
      const engineModule = /\/split_sync_engine-[0-9a-f]{16}\.wasm$/;
      let refused = 0;
      await page.route(engineModule, (route) => {
        refused += 1;
        return route.abort("internetdisconnected");
      });
      const project = "e2e-tls";
      const shop = "s3";
      await page.goto(appUrl(server.url, { endpoint: server.url, project, shop, path: "/products" }));
      await page.getByTestId("product-list").waitFor({ state: "attached" });
      await addProduct(page, "Parle-G 100g", "10");
      await waitForProducts(page, ["Parle-G 100g"]);
      await waitForBadge(page, { connection: "Starting sync", pending: 1 });
      const badge = page.getByTestId("sync-badge");
      assert.equal(await badge.getAttribute("data-leader"), "false");
      assert.equal(await badge.getAttribute("data-state"), "starting");
      await openPage(page, "/sync");
      await page
        .getByTestId("sync-error")
        .filter({ hasText: "The sync engine could not be loaded on this tablet" })
        .waitFor();
      // Tried again on the three-second timer, still refused; nothing reached the server.
      const triesBefore = refused;
      await page.waitForTimeout(3_500);
      assert.ok(triesBefore >= 1 && refused > triesBefore, `the module was asked for again (${triesBefore} then ${refused})`);
      const productsOnServer = () =>
        page.evaluate(async (url) => {
          const response = await fetch(url, {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ structuredQuery: { from: [{ collectionId: "products" }] } }),
          });
          const items = await response.json();
          return items.filter((item) => item.document).map((item) => item.document.fields.name.stringValue);
        }, `${server.url}/v1/projects/${project}/databases/(default)/documents/shops/${shop}:runQuery`);
      assert.deepEqual(await productsOnServer(), []);
      await openPage(page, "/counter");
      await page.getByTestId("counter-page").waitFor();
      assert.equal(await badge.getAttribute("data-leader"), "false");

      // The network gives the module: the next try loads it, the tab leads and sends the unit.
      await page.unroute(engineModule);
      await waitForBadge(page, { connection: "Online", pending: 0 });
      assert.equal(await badge.getAttribute("data-leader"), "true");
      assert.deepEqual(await productsOnServer(), ["Parle-G 100g"]);
      await openPage(page, "/sync");
      await page.getByTestId("sync-all-clear").waitFor();
    } finally {
      await tablet.close();
    }
  });

  test("http:// on the same port redirects to https://", async () => {
    const plain = server.url.replace("https://", "http://");
    const answer = await plainGet(`${plain}/products?shop=s1`);
    assert.equal(answer.status, 308);
    assert.equal(answer.headers.location, `${server.url}/products?shop=s1`);

    const tablet = await browser.newContext();
    try {
      const page = await tablet.newPage();
      await page.goto(`${plain}/counter`);
      assert.equal(page.url(), `${server.url}/counter`);
      await page.getByTestId("counter-page").waitFor();
    } finally {
      await tablet.close();
    }
  });

  test("/setup/ca lets a tablet download the CA certificate", async () => {
    const tablet = await browser.newContext({ acceptDownloads: true });
    try {
      const page = await tablet.newPage();
      // Over plain HTTP: a tablet that does not trust the CA yet opens it without a warning.
      const plain = server.url.replace("https://", "http://");
      await page.goto(`${plain}/setup/ca`);
      const authority = new X509Certificate(readFileSync(server.caCertificate));
      assert.equal(
        await page.getByTestId("ca-fingerprint").textContent(),
        authority.fingerprint256,
      );
      await page.screenshot({ path: join(ARTIFACTS, "setup-ca.png"), fullPage: true });
      const [download] = await Promise.all([
        page.waitForEvent("download"),
        page.getByTestId("download-ca").click(),
      ]);
      assert.equal(download.suggestedFilename(), "counterbook-local-ca.crt");
      const saved = join(temporaryDirectory("counterbook-e2e-download-"), "ca.crt");
      await download.saveAs(saved);
      assert.deepEqual(readFileSync(saved), authority.raw);
      const downloaded = new X509Certificate(readFileSync(saved));
      assert.equal(downloaded.ca, true);
    } finally {
      await tablet.close();
    }
  });
});
