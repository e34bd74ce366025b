// Updating an installed app without losing a sale: a tablet runs one build; a new build is
// deployed into the directory counterbook-server serves while a sale is still unsent; the
// tablet, left open, finds the new service worker when it is shown again; "Update available"
// asks before replacing a version with pending changes; after the update the page runs the
// new version (only its cache is left) and the pending sale syncs. And a newer IndexedDB
// schema opened by another tab closes the old tab's connection instead of being blocked, the
// old tab asks to reload, and the pending change is still in the outbox.

import assert from "node:assert/strict";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, gzipSync } from "node:zlib";
import { after, before, describe, test } from "node:test";
import { ean13, scanWithKeyboard, seedProducts, seededId, waitForProductCount } from "./counter-helpers.mjs";
import {
  DIST,
  addProduct,
  appUrl,
  freePort,
  launchBrowser,
  listDocuments,
  startServer,
  temporaryDirectory,
  waitForBadge,
  waitForServiceWorkerControl,
} from "./harness.mjs";

const PROJECT = "e2e-update";

/** The version sw.js was stamped with by tools/finish-build.mjs. */
function stampedVersion(workerSource) {
  const found = workerSource.match(/const VERSION = "([^"]+)";/);
  assert.ok(found, "sw.js carries its stamped version");
  return found[1];
}

/**
 * Deploys "a new build" into `appDirectory`: the same files with a service worker stamped with
 * another version (the bytes of sw.js change, as they do whenever any built file changes), and
 * its precompressed copies rewritten to match. Returns the new version.
 */
function deployNewVersion(appDirectory) {
  const workerFile = join(appDirectory, "sw.js");
  const source = readFileSync(workerFile, "utf8");
  const oldVersion = stampedVersion(source);
  const newVersion = `${oldVersion}-next`;
  const updated = source.replace(`"${oldVersion}"`, `"${newVersion}"`);
  writeFileSync(workerFile, updated);
  writeFileSync(`${workerFile}.br`, brotliCompressSync(Buffer.from(updated)));
  writeFileSync(`${workerFile}.gz`, gzipSync(Buffer.from(updated)));
  return newVersion;
}

/** The app's caches in the page. */
const cacheNames = (page) => page.evaluate(() => caches.keys());

const noticeText = (page) => page.getByTestId("app-notice-message").textContent();

describe("updating the app and its database while sales are pending", () => {
  let appServer;
  let browser;

  before(async () => {
    const appDirectory = temporaryDirectory("counterbook-e2e-update-app-");
    cpSync(DIST, appDirectory, { recursive: true });
    appServer = await startServer({
      dataDir: temporaryDirectory("counterbook-e2e-update-"),
      app: appDirectory,
    });
    appServer.directory = appDirectory;
    browser = await launchBrowser();
  });

  after(async () => {
    await Promise.all([browser?.close(), appServer?.stop()]);
  });

  test("a new version waits, asks about the pending sale, applies, and the sale syncs", async () => {
    // The shop's data lives on a second server, which the test stops to keep a change pending
    // and starts again (same port and data) for it to sync.
    const dataDirectory = temporaryDirectory("counterbook-e2e-update-data-");
    const dataPort = await freePort();
    let dataServer = await startServer({ dataDir: dataDirectory, port: dataPort });
    const tablet = await browser.newContext();
    try {
      const code = ean13("890123400001");
      await seedProducts(dataServer.url, PROJECT, "s1", [
        { id: seededId(1), name: "Parle-G 100g", price: 1000, barcodes: [code] },
      ]);
      const page = await tablet.newPage();
      const url = appUrl(appServer.url, {
        endpoint: dataServer.url,
        project: PROJECT,
        shop: "s1",
        path: "/counter",
      });
      await page.goto(url);
      await page.getByTestId("counter-page").waitFor();
      await waitForBadge(page, { connection: "Online", pending: 0 });
      await waitForProductCount(page, 1);
      await waitForServiceWorkerControl(page);
      const firstVersion = stampedVersion(readFileSync(join(appServer.directory, "sw.js"), "utf8"));
      assert.deepEqual(await cacheNames(page), [`counterbook-shell-${firstVersion}`]);

      // The shop's server goes away; a sale is made and waits in the outbox.
      await dataServer.stop();
      await scanWithKeyboard(page, code);
      await page.getByTestId("cart-line").waitFor();
      await page.getByRole("button", { name: "Complete sale", exact: true }).click();
      const receipt = page.getByRole("region", { name: "Receipt" });
      await receipt.waitFor({ timeout: 15_000 });
      const billNumber = (await receipt.getByTestId("bill-number").textContent()).trim();
      await page.waitForFunction(
        () => Number(document.querySelector("[data-testid=pending-count]")?.textContent) > 0,
      );
      const pending = await page.getByTestId("pending-count").textContent();

      // A new build is deployed; the tablet, left open, checks when it is shown again.
      const newVersion = deployNewVersion(appServer.directory);
      await page.evaluate(() => document.dispatchEvent(new Event("visibilitychange")));
      await page.getByTestId("apply-update").waitFor({ timeout: 30_000 });
      assert.equal(await noticeText(page), "Update available");
      // It waits: the old version still controls the page and its cache is still there.
      assert.equal(await page.evaluate(() => navigator.serviceWorker.controller.state), "activated");
      assert.ok((await cacheNames(page)).includes(`counterbook-shell-${firstVersion}`));

      // With the sale pending, the update asks first, with the count in front of the person.
      await page.getByTestId("apply-update").click();
      const changes = pending === "1" ? "1 change" : `${pending} changes`;
      assert.equal(await noticeText(page), `${changes} not sent yet (sales included): update anyway?`);
      await page.getByTestId("update-later").click();
      assert.equal(await noticeText(page), "Update available");
      await page.getByTestId("apply-update").click();
      const reloaded = page.waitForEvent("load");
      await page.getByTestId("apply-update-anyway").click();
      await reloaded;

      // The new version runs, the old cache is gone, the pending sale is still there.
      await page.getByTestId("counter-page").waitFor();
      await page.waitForFunction(
        (pending) => document.querySelector("[data-testid=pending-count]")?.textContent === pending,
        pending,
      );
      assert.deepEqual(await cacheNames(page), [`counterbook-shell-${newVersion}`]);
      assert.equal(await page.getByTestId("app-notice").count(), 0);

      // The shop's server is back: the sale syncs, with its bill number.
      dataServer = await startServer({ dataDir: dataDirectory, port: dataPort });
      await waitForBadge(page, { connection: "Online", pending: 0 }, 60_000);
      const bills = await listDocuments(dataServer.url, PROJECT, "shops/s1", "bills");
      assert.deepEqual(
        bills.map((bill) => bill.fields.number.stringValue),
        [billNumber],
      );
    } finally {
      await tablet.close();
      await dataServer.stop();
    }
  });

  test("a newer schema in another tab: the old tab closes its database and asks to reload", async () => {
    const tablet = await browser.newContext();
    try {
      const page = await tablet.newPage();
      await page.goto(
        appUrl(appServer.url, { endpoint: appServer.url, project: PROJECT, shop: "s2" }),
      );
      await page.getByTestId("product-list").waitFor({ state: "attached" });
      await waitForBadge(page, { connection: "Online", pending: 0 });
      // A second tab: a page of the same origin that the app does not run in (the server's
      // answer to an unknown API path), from which the test upgrades the database.
      const newerTab = await tablet.newPage();
      await newerTab.goto(`${appServer.url}/counterbook/no-such-page`);
      await tablet.setOffline(true);
      await addProduct(page, "Good Day 75g", "20");
      await waitForBadge(page, { connection: "Offline", pending: 1 });

      // It opens the database at the next version, as a newer release of the app would.
      const upgrade = await page.evaluate(async () => {
        const [database] = await indexedDB.databases();
        return database;
      });
      assert.ok(upgrade?.name, "the app has a database");
      const outcome = await newerTab.evaluate(
        ({ name, version }) =>
          new Promise((resolve, reject) => {
            const opening = indexedDB.open(name, version + 1);
            opening.onblocked = () => resolve({ blocked: true });
            opening.onerror = () => reject(opening.error);
            opening.onsuccess = () => {
              const database = opening.result;
              const counting = database.transaction("outbox").objectStore("outbox").count();
              counting.onsuccess = () => {
                database.close();
                resolve({ blocked: false, version: database.version, outbox: counting.result });
              };
              counting.onerror = () => reject(counting.error);
            };
          }),
        upgrade,
      );
      assert.deepEqual(outcome, { blocked: false, version: upgrade.version + 1, outbox: 1 });
      await page.getByTestId("reload-app").waitFor();
      assert.equal(
        await noticeText(page),
        "A newer Counterbook is open in another tab: reload this one to go on",
      );
    } finally {
      await tablet.close();
    }
  });
});
