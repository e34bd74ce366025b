// Background Sync: a sale made offline is sent by the service worker after the tab was closed.
// The tablet sells while offline (the tab asks for the "counterbook-outbox/counterbook" sync
// tag), the tab is closed, the network comes back and the `sync` event fires (Chromium fires it
// itself when its connectivity returns; here the DevTools protocol's
// `ServiceWorker.dispatchSyncEvent` fires it, since the machine's own network never went away).
// The worker drains the outbox with the app's wasm; its commit is held on the way, a tab opened
// meanwhile waits instead of taking over (it says so on its console), and once the worker is
// done the tab leads with nothing left to send: the sale is on the server exactly once, in
// exactly one commit. And on counterbook-server with accounts, a cashier's sale made offline is
// sent by the worker with her sign-in from IndexedDB, refreshed there once her ID token expired.

import assert from "node:assert/strict";
import { createServer, request } from "node:http";
import { after, before, describe, test } from "node:test";
import {
  ean13,
  productFields,
  scanWithKeyboard,
  seedProducts,
  seededId,
  waitForProductCount,
} from "./counter-helpers.mjs";
import {
  appUrl,
  launchBrowser,
  listDocuments,
  startAccountsServer,
  startServer,
  temporaryDirectory,
  waitForBadge,
  waitForServiceWorkerControl,
} from "./harness.mjs";
import {
  billsOnServer,
  choosePin,
  sellOne,
  setUpShopOverRest,
  signIn,
  waitForPending,
  waitForPersonAtCounter,
} from "./people-helpers.mjs";

const PROJECT = "e2e-background-sync";
const SYNC_TAG = "counterbook-outbox/counterbook";

/**
 * A pass-through HTTP proxy to `target` that records every `:commit` body and, while
 * `holdCommits` is set, keeps commits waiting until `releaseCommits()`.
 */
async function startCommitProxy(target) {
  const proxy = {
    commits: [],
    holdCommits: false,
    held: [],
    commitArrived: null,
    releaseCommits() {
      this.holdCommits = false;
      for (const forward of this.held.splice(0)) forward();
    },
  };
  let commitSeen = () => {};
  proxy.nextCommit = () => new Promise((resolve) => (commitSeen = resolve));
  const server = createServer((incoming, outgoing) => {
    const chunks = [];
    incoming.on("data", (chunk) => chunks.push(chunk));
    incoming.on("end", () => {
      const body = Buffer.concat(chunks);
      const forward = () => {
        const headers = { ...incoming.headers, host: new URL(target).host };
        const onward = request(`${target}${incoming.url}`, { method: incoming.method, headers }, (answer) => {
          outgoing.writeHead(answer.statusCode, answer.headers);
          answer.pipe(outgoing);
        });
        onward.on("error", () => outgoing.destroy());
        onward.end(body);
      };
      if (incoming.method === "POST" && incoming.url.includes(":commit")) {
        proxy.commits.push(body.toString());
        commitSeen(body.toString());
        if (proxy.holdCommits) return proxy.held.push(forward);
      }
      forward();
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  proxy.url = `http://127.0.0.1:${server.address().port}`;
  proxy.stop = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return proxy;
}

/** `promise`, or a failure saying `what` did not happen within `millis`. */
function within(promise, millis, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${millis} ms`)), millis);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Fires the Background Sync event `tag` in the service worker of `origin` (DevTools protocol). */
async function fireSyncEvent(context, origin, tag) {
  const blank = await context.newPage();
  const session = await context.newCDPSession(blank);
  const registrationId = await registrationIdFor(session, `${origin}/`);
  await session.send("ServiceWorker.dispatchSyncEvent", { origin, registrationId, tag, lastChance: false });
  return session;
}

/** The id of the service worker registration for `scope`, as the DevTools protocol names it. */
async function registrationIdFor(session, scope) {
  const registrations = new Map();
  let found;
  const seen = new Promise((resolve) => (found = resolve));
  session.on("ServiceWorker.workerRegistrationUpdated", ({ registrations: updated }) => {
    for (const registration of updated) registrations.set(registration.scopeURL, registration);
    const ours = registrations.get(scope);
    if (ours && !ours.isDeleted) found(ours.registrationId);
  });
  await session.send("ServiceWorker.enable");
  return seen;
}

describe("Background Sync sends a sale made offline after the tab was closed", () => {
  let appServer;
  let dataServer;
  let proxy;
  let browser;

  before(async () => {
    appServer = await startServer({ dataDir: temporaryDirectory("counterbook-e2e-bgsync-app-") });
    dataServer = await startServer({ dataDir: temporaryDirectory("counterbook-e2e-bgsync-data-") });
    proxy = await startCommitProxy(dataServer.url);
    browser = await launchBrowser();
  });

  after(async () => {
    await Promise.all([browser?.close(), proxy?.stop(), appServer?.stop(), dataServer?.stop()]);
  });

  test("the worker drains the outbox once; a tab opened meanwhile waits for it", async () => {
    const tablet = await browser.newContext();
    try {
      const code = ean13("890123400017");
      await seedProducts(dataServer.url, PROJECT, "s1", [
        { id: seededId(1), name: "Parle-G 100g", price: 1000, barcodes: [code], stock: 10 },
      ]);
      const url = appUrl(appServer.url, { endpoint: proxy.url, project: PROJECT, shop: "s1", path: "/counter" });
      const page = await tablet.newPage();
      await page.goto(url);
      await page.getByTestId("counter-page").waitFor();
      await waitForBadge(page, { connection: "Online", pending: 0 });
      await waitForProductCount(page, 1);
      await waitForServiceWorkerControl(page);

      // Offline, a sale waits in the outbox, and the tab asks for a Background Sync.
      await tablet.setOffline(true);
      await page.waitForFunction(() => !navigator.onLine);
      await scanWithKeyboard(page, code);
      await page.getByTestId("cart-line").waitFor();
      await page.getByRole("button", { name: "Complete sale", exact: true }).click();
      const receipt = page.getByRole("region", { name: "Receipt" });
      await receipt.waitFor({ timeout: 15_000 });
      const billNumber = (await receipt.getByTestId("bill-number").textContent()).trim();
      await page.waitForFunction(
        () => document.querySelector("[data-testid=pending-count]")?.textContent === "1",
      );
      await page.waitForFunction(
        async (tag) => (await (await navigator.serviceWorker.ready).sync.getTags()).includes(tag),
        SYNC_TAG,
      );
      await page.close();

      // The network is back with no tab open: the browser fires the sync event.
      await tablet.setOffline(false);
      proxy.holdCommits = true;
      const workerCommit = proxy.nextCommit();
      const session = await fireSyncEvent(tablet, appServer.url, SYNC_TAG);
      const body = await within(workerCommit, 60_000, "the service worker's commit of the sale");
      assert.match(body, /\/bills\//, "the worker's commit carries the bill");

      // A tab opened while the worker's commit is on its way waits for the worker.
      const reopened = await tablet.newPage();
      const waitedForTheWorker = reopened.waitForEvent("console", {
        predicate: (message) => message.text().includes('"event":"leader.background_sync_leads"'),
        timeout: 60_000,
      });
      // Taking the lock over instead would send the sale again: its commit would come next.
      const pushedAgain = proxy.nextCommit();
      await reopened.goto(`${appServer.url}/counter`);
      await reopened.getByTestId("counter-page").waitFor();
      const meanwhile = await Promise.race([
        waitedForTheWorker.then(() => "the tab waited for the worker"),
        pushedAgain.then(() => "the tab took over and sent the sale again"),
      ]);
      // The loser of the race is not awaited.
      waitedForTheWorker.catch(() => {});
      proxy.releaseCommits();
      assert.equal(meanwhile, "the tab waited for the worker");

      // The worker finishes and lets go; the tab leads with nothing left to send.
      await waitForBadge(reopened, { connection: "Online", pending: 0 });
      const bills = await listDocuments(dataServer.url, PROJECT, "shops/s1", "bills");
      assert.deepEqual(
        bills.map((bill) => bill.fields.number.stringValue),
        [billNumber],
        "the sale is on the server exactly once",
      );
      assert.equal(
        proxy.commits.filter((commit) => commit.includes("/bills/")).length,
        1,
        "one commit carried the sale: nothing was pushed twice",
      );
      await session.detach();
    } finally {
      proxy.releaseCommits();
      await tablet.close();
    }
  });
});

describe("Background Sync sends a cashier's offline sale with her own sign-in", () => {
  const SHOP = "kirana-bg";
  const OWNER = { email: "owner@example.com", password: "owner-secret-1" };
  const MEENA = { email: "meena@example.com", password: "meena-secret-1" };
  /** ID tokens live this long: the offline step outlasts one. */
  const TOKEN_SECONDS = 4;
  const TEA = ean13("890100000019");
  let server;
  let browser;

  before(async () => {
    [server, browser] = await Promise.all([
      startAccountsServer({
        dataDir: temporaryDirectory("counterbook-e2e-bgsync-accounts-"),
        tokenLifetimeSeconds: TOKEN_SECONDS,
      }),
      launchBrowser(),
    ]);
    await setUpShopOverRest(server, {
      shop: SHOP,
      shopName: "Kirana BG",
      owner: OWNER,
      ownerName: "Asha",
      people: [{ ...MEENA, displayName: "Meena", role: "cashier" }],
      products: [
        { id: seededId(7), fields: productFields({ name: "Tata Tea", price: 12000, barcodes: [TEA], stock: 50 }) },
      ],
    });
  });

  after(async () => {
    await Promise.all([browser?.close(), server?.stop()]);
  });

  test("the worker refreshes her expired token from IndexedDB and sends the sale once", async () => {
    const tablet = await browser.newContext();
    try {
      const page = await tablet.newPage();
      await page.goto(`${server.url}/counter?lockMinutes=0&shop=${SHOP}`);
      await signIn(page, MEENA);
      await choosePin(page, "3333");
      await waitForPersonAtCounter(page, MEENA.email);
      await waitForProductCount(page, 1);
      await waitForServiceWorkerControl(page);

      await tablet.setOffline(true);
      await page.waitForFunction(() => !navigator.onLine);
      await sellOne(page, TEA);
      await waitForPending(page, 1);
      await page.waitForFunction(
        async (tag) => (await (await navigator.serviceWorker.ready).sync.getTags()).includes(tag),
        SYNC_TAG,
      );
      await page.close();
      // A clock condition, not a synchronisation: her ID token has expired by then, so the
      // worker must refresh it with the refresh token the tablet keeps in IndexedDB.
      await new Promise((resolve) => setTimeout(resolve, (TOKEN_SECONDS + 1) * 1000));
      await tablet.setOffline(false);
      const session = await fireSyncEvent(tablet, server.url, SYNC_TAG);

      const deadline = Date.now() + 30_000;
      let bills = await billsOnServer(server, OWNER, SHOP);
      while (bills.length === 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        bills = await billsOnServer(server, OWNER, SHOP);
      }
      assert.deepEqual(
        bills.map((bill) => bill.cashier),
        [MEENA.email],
        "the sale is on the server once, as Meena's",
      );
      await session.detach();
    } finally {
      await tablet.close();
    }
  });
});
