// Several tabs of one browser profile: exactly one leads (runs push and pull); the others
// follow over a BroadcastChannel; a closed or frozen leader is replaced within seconds.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  addProduct,
  appUrl,
  countRowsInSqlite,
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
    startServer({ dataDir: temporaryDirectory("counterbook-tabs-") }),
    launchBrowser(),
  ]);
});
after(async () => {
  await Promise.all([browser?.close(), server?.stop()]);
});

const isLeader = (page) =>
  page.getByTestId("sync-badge").getAttribute("data-leader").then((v) => v === "true");

async function waitForLeadership(page, leader, timeout = 10_000) {
  await page.waitForFunction(
    (expected) =>
      document.querySelector("[data-testid=sync-badge]")?.getAttribute("data-leader") ===
      String(expected),
    leader,
    { timeout },
  );
}

test("one tab leads; a follower's sale is pushed by the leader; a closed or frozen leader is replaced", async () => {
  const project = "e2e-tabs";
  const url = appUrl(server.url, { endpoint: server.url, project, shop: "s1" });
  const profile = await browser.newContext();
  try {
    const first = await profile.newPage();
    await first.goto(url);
    await waitForLeadership(first, true);
    const second = await profile.newPage();
    await second.goto(url);
    await second.getByTestId("add-product-form").waitFor();
    await waitForLeadership(second, false);

    // The follower writes to the shared IndexedDB; the leader pushes; both show the product.
    await addProduct(second, "Tab two tea", "12");
    await waitForProducts(first, ["Tab two tea"]);
    await waitForBadge(second, { connection: "Online", pending: 0 });
    await waitForBadge(first, { connection: "Online", pending: 0 });
    assert.deepEqual(countRowsInSqlite(server.database, project), { products: 1, audit: 1, ops: 1, devices: 1 });

    // The leader closes: the follower takes over within seconds and pushes its own sales.
    await first.close();
    await waitForLeadership(second, true);
    await addProduct(second, "After the leader left", "5");
    await waitForBadge(second, { connection: "Online", pending: 0 });
    assert.deepEqual(countRowsInSqlite(server.database, project), { products: 2, audit: 2, ops: 2, devices: 1 });

    // A frozen leader is replaced: its JavaScript is stopped (the debugger pauses it, as a hung
    // or frozen tab would be), so its heartbeat stops and the next tab steals the lock.
    const third = await profile.newPage();
    await third.goto(url);
    await third.getByTestId("add-product-form").waitFor();
    assert.equal(await isLeader(third), false);
    const devtools = await profile.newCDPSession(second);
    await devtools.send("Debugger.enable");
    await devtools.send("Debugger.pause");
    await waitForLeadership(third, true, 20_000);
    await addProduct(third, "While the other tab sleeps", "7");
    await waitForBadge(third, { connection: "Online", pending: 0 });
    assert.deepEqual(countRowsInSqlite(server.database, project), { products: 3, audit: 3, ops: 3, devices: 1 });
    await devtools.send("Debugger.resume");
    await waitForProducts(second, ["After the leader left", "Tab two tea", "While the other tab sleeps"]);
    await waitForLeadership(second, false);
  } finally {
    await profile.close();
  }
});
