// Three tablets edit the same products and sell the same stock while going offline and online
// at random; afterwards all three and the backend agree, and every stock counter is exact.
// Against counterbook-server and, unchanged, against Google's Firestore emulator.
// The runs are seeded: two fixed seeds by default, so CI is repeatable; E2E_SEED=n runs seed n
// instead (to replay a failure or explore new interleavings).

import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import {
  ARTIFACTS,
  addProduct,
  appUrl,
  launchBrowser,
  listDocuments,
  startEmulator,
  startServer,
  temporaryDirectory,
  waitForBadge,
  waitForProducts,
} from "./harness.mjs";

const SEEDS = process.env.E2E_SEED ? [Number(process.env.E2E_SEED)] : [11, 23];
const STEPS = 30;

/** mulberry32: a tiny seeded generator, so a failing run can be replayed. */
function generator(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** How many audit entries the tablet's IndexedDB holds: one per user action, never removed. */
function auditCount(page) {
  return page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const request = indexedDB.open("counterbook");
        request.onsuccess = () => {
          const db = request.result;
          const count = db.transaction("audit").objectStore("audit").count();
          count.onsuccess = () => {
            resolve(count.result);
            db.close();
          };
          count.onerror = () => reject(count.error);
        };
        request.onerror = () => reject(request.error);
      }),
  );
}

/** Runs `action` on the page and waits until its unit is durable in IndexedDB. */
async function act(page, action) {
  const before = await auditCount(page);
  await action();
  await page.waitForFunction(
    async (expected) =>
      new Promise((resolve) => {
        const request = indexedDB.open("counterbook");
        request.onsuccess = () => {
          const db = request.result;
          const count = db.transaction("audit").objectStore("audit").count();
          count.onsuccess = () => {
            resolve(count.result >= expected);
            db.close();
          };
        };
      }),
    before + 1,
  );
}

/** Receives or adjusts `name`'s stock through its stock form. */
async function moveStock(page, name, kind, quantity, reason) {
  await row(page, name).getByTestId("stock-product").click();
  await page.getByTestId("stock-kind").selectOption(kind);
  await page.getByTestId("stock-quantity").fill(quantity);
  await page.getByTestId("stock-reason").fill(reason);
  await page.getByTestId("save-stock").click();
  await page.getByTestId("stock-form").waitFor({ state: "detached" });
}

function row(page, name) {
  return page.getByTestId("product-row").filter({
    has: page.getByTestId("product-row-name").getByText(name, { exact: true }),
  });
}

/** What a tablet shows for each product: name -> [price text, stock]. */
function shown(page) {
  return page.evaluate(() =>
    Object.fromEntries(
      [...document.querySelectorAll("[data-testid=product-row]")].map((li) => [
        li.querySelector("[data-testid=product-row-name]").textContent,
        [
          li.querySelector("[data-testid=product-price-shown]").textContent,
          Number(li.querySelector("[data-testid=product-stock]").textContent),
        ],
      ]),
    ),
  );
}

// Against the emulator this test once left a tablet stale (issue 8): an older version of a
// product, read back after a unit landed, replaced the newer one a listen snapshot had just
// stored, and the emulator stamps `updatedAt` before its commits become visible, so strict
// pulls could skip a commit. The store now refuses older versions and pulls re-read an overlap
// window. E2E_CONVERGENCE_BACKENDS narrows the run to one backend when exploring seeds.
const BACKENDS = (
  process.env.E2E_CONVERGENCE_BACKENDS ?? "counterbook-server,firestore-emulator"
).split(",");

let server;
let emulator;
let browser;
before(async () => {
  [server, emulator, browser] = await Promise.all([
    startServer({ dataDir: temporaryDirectory("counterbook-converge-") }),
    BACKENDS.includes("firestore-emulator") ? startEmulator() : null,
    launchBrowser(),
  ]);
});
after(async () => {
  await Promise.all([browser?.close(), server?.stop(), emulator?.stop()]);
});

for (const BACKEND of BACKENDS) for (const SEED of SEEDS) test(`three tablets converge with exact stock against ${BACKEND} (seed ${SEED})`, async () => {
  // The app is always served by counterbook-server; only the sync endpoint changes.
  const endpoint = BACKEND === "counterbook-server" ? server.url : emulator.url;
  console.log(`convergence seed: ${SEED} (replay with E2E_SEED=${SEED})`);
  const random = generator(SEED);
  const pick = (items) => items[Math.floor(random() * items.length)];
  const project = `e2e-converge-${BACKEND}-${SEED}`;
  const url = appUrl(server.url, { endpoint, project, shop: "s1" });
  const names = ["Chai 250g", "Sugar 1kg", "Atta 5kg"];
  const expectedStock = Object.fromEntries(names.map((n) => [n, 0]));

  const contexts = await Promise.all([0, 1, 2].map(() => browser.newContext()));
  try {
    const tablets = await Promise.all(contexts.map((c) => c.newPage()));
    await Promise.all(tablets.map((p) => p.goto(url)));
    await Promise.all(tablets.map((p) => waitForBadge(p, { connection: "Online", pending: 0 })));
    for (const name of names) await addProduct(tablets[0], name, "10");
    await Promise.all(tablets.map((p) => waitForProducts(p, names)));

    const offline = [false, false, false];
    for (let step = 0; step < STEPS; step++) {
      const index = Math.floor(random() * 3);
      const page = tablets[index];
      const choice = random();
      if (choice < 0.2) {
        offline[index] = !offline[index];
        await contexts[index].setOffline(offline[index]);
        continue;
      }
      const name = pick(names);
      if (choice < 0.55) {
        // A sale is rung up at the counter; here it is an adjustment of -1 with its reason.
        await act(page, () => moveStock(page, name, "adjust", "-1", "sold one"));
        expectedStock[name] -= 1;
      } else if (choice < 0.8) {
        await act(page, () => moveStock(page, name, "receive", "10", ""));
        expectedStock[name] += 10;
      } else {
        const price = String(10 + Math.floor(random() * 90));
        const current = await row(page, name).getByTestId("product-price-shown").textContent();
        // An edit that changes nothing saves nothing (and leaves no audit entry to wait for).
        if (current.replace(/[^0-9.]/g, "") === `${price}.00`) continue;
        await act(page, async () => {
          await row(page, name).getByTestId("edit-product").click();
          await page.waitForFunction(
            (name) => document.querySelector("[data-testid=product-name]").value === name,
            name,
          );
          await page.getByTestId("product-price").fill(price);
          await page.getByTestId("add-product").click();
        });
      }
    }

    // Everyone back online: every unit drains, every tablet pulls to the end.
    await Promise.all(contexts.map((c) => c.setOffline(false)));
    await Promise.all(
      tablets.map((p) => waitForBadge(p, { connection: "Online", pending: 0 }, 60_000)),
    );
    const documents = await listDocuments(endpoint, project, "shops/s1", "products");
    if (process.env.E2E_DEBUG) console.log(JSON.stringify(documents, null, 1));
    const truth = Object.fromEntries(
      documents.map((d) => [
        d.fields.name.stringValue,
        [Number(d.fields.price.integerValue), Number(d.fields.stock?.integerValue ?? 0)],
      ]),
    );
    for (const name of names) {
      assert.equal(truth[name][1], expectedStock[name], `server stock of ${name}`);
    }
    // Every tablet shows exactly the server's prices and stock.
    for (const [index, page] of tablets.entries()) {
      await page.waitForFunction(
        (truth) =>
          [...document.querySelectorAll("[data-testid=product-row]")].every((li) => {
            const name = li.querySelector("[data-testid=product-row-name]").textContent;
            const stock = Number(li.querySelector("[data-testid=product-stock]").textContent);
            const price = li.querySelector("[data-testid=product-price-shown]").textContent;
            const [minor, expectedStock] = truth[name] ?? [];
            return stock === expectedStock && price.includes((minor / 100).toFixed(2));
          }),
        truth,
        { timeout: 30_000 },
      ).catch(async (error) => {
        throw new Error(
          `tablet ${index} shows ${JSON.stringify(await shown(page))}, server has ${JSON.stringify(truth)}: ${error.message}`,
        );
      });
      await page.screenshot({
        path: join(ARTIFACTS, `converged-${BACKEND}-tablet-${index}.png`),
        fullPage: true,
      });
    }
    const views = await Promise.all(tablets.map(shown));
    assert.deepEqual(views[1], views[0]);
    assert.deepEqual(views[2], views[0]);
  } finally {
    await Promise.all(contexts.map((c) => c.close()));
  }
});
