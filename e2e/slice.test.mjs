// The walking skeleton end to end: tablet A adds products while offline, comes back online and
// pushes them; tablet B (another browser profile) pulls them. Run against counterbook-server and,
// unchanged, against Google's Firestore emulator.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { after, before, describe, test } from "node:test";
import {
  ARTIFACTS,
  DIST,
  addProduct,
  appUrl,
  countRowsInSqlite,
  launchBrowser,
  listDocuments,
  openPage,
  screenOf,
  startEmulator,
  startServer,
  temporaryDirectory,
  waitForBadge,
  waitForProducts,
} from "./harness.mjs";

const PRODUCTS = [
  ["Parle-G 250g", "10"],
  ["Tata Salt 1kg", "28.00"],
  ["Amul Butter 100g", "56.50"],
];
const NAMES = PRODUCTS.map(([name]) => name);

mkdirSync(ARTIFACTS, { recursive: true });

describe("one product travels from an offline tablet to another tablet", () => {
  let server;
  let emulator;
  let browser;

  before(async () => {
    [server, emulator, browser] = await Promise.all([
      startServer({ dataDir: temporaryDirectory("counterbook-e2e-") }),
      startEmulator(),
      launchBrowser(),
    ]);
  });

  after(async () => {
    await Promise.all([browser?.close(), server?.stop(), emulator?.stop()]);
  });

  for (const backend of ["counterbook-server", "firestore-emulator"]) {
    test(`against ${backend}`, async () => {
      const endpoint = backend === "counterbook-server" ? server.url : emulator.url;
      const project = `e2e-${backend}-${Date.now()}`;
      const shop = "kirana-1";
      // The app is always served by counterbook-server; only the sync endpoint changes.
      const url = appUrl(server.url, { endpoint, project, shop });
      const tabletA = await browser.newContext();
      const tabletB = await browser.newContext();
      try {
        const pageA = await tabletA.newPage();
        await pageA.goto(url);
        await waitForBadge(pageA, { connection: "Online", pending: 0 });

        await tabletA.setOffline(true);
        for (const [name, price] of PRODUCTS) await addProduct(pageA, name, price);
        // Saved locally and shown at once, while nothing can reach the server.
        await waitForBadge(pageA, { connection: "Offline", pending: 3 });
        await waitForProducts(pageA, NAMES);

        const pageB = await tabletB.newPage();
        await pageB.goto(url);
        await waitForBadge(pageB, { connection: "Online", pending: 0 });
        assert.deepEqual((await screenOf(pageB)).products, [], "B sees nothing before A syncs");

        await tabletA.setOffline(false);
        await waitForBadge(pageA, { connection: "Online", pending: 0 });
        await waitForProducts(pageB, NAMES);
        assert.match(await pageB.getByTestId("product-list").textContent(), /56\.50/);

        await pageA.screenshot({ path: join(ARTIFACTS, `${backend}-tablet-a.png`), fullPage: true });
        await pageB.screenshot({ path: join(ARTIFACTS, `${backend}-tablet-b.png`), fullPage: true });

        // Exactly three products, their audit entries and three op markers reached the backend: nothing lost, nothing
        // applied twice; and tablet A's own devices document, which tells listeners what changed.
        if (backend === "counterbook-server") {
          const rows = countRowsInSqlite(server.database, project);
          assert.deepEqual(rows, { products: 3, audit: 3, ops: 3, devices: 1 });
        }
        const products = await listDocuments(endpoint, project, `shops/${shop}`, "products");
        const markers = await listDocuments(endpoint, project, `shops/${shop}`, "ops");
        assert.deepEqual(products.map((d) => d.fields.name.stringValue).sort(), [...NAMES].sort());
        assert.equal(markers.length, 3);
        for (const product of products) {
          assert.ok(product.fields.updatedAt.timestampValue, "updatedAt set by the server");
          assert.ok(product.fields.lastOp.stringValue, "lastOp names the unit");
        }
      } finally {
        await Promise.all([tabletA.close(), tabletB.close()]);
      }
    });
  }
});

describe("the tablet keeps working when the network or the server goes away", () => {
  let browser;
  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
  });

  test("the app reloads offline from the service worker with its products", async () => {
    const server = await startServer({ dataDir: temporaryDirectory("counterbook-e2e-") });
    const tablet = await browser.newContext();
    try {
      const page = await tablet.newPage();
      const url = appUrl(server.url, { endpoint: server.url, project: "e2e-sw", shop: "s1" });
      await page.goto(url);
      await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
      await addProduct(page, "Maggi 70g", "14");
      await waitForBadge(page, { connection: "Online", pending: 0 });

      await tablet.setOffline(true);
      await page.reload();
      await waitForBadge(page, { connection: "Offline", pending: 0 });
      await waitForProducts(page, ["Maggi 70g"]);
      // And it still sells offline after the reload.
      await addProduct(page, "Good Day 100g", "20");
      await waitForBadge(page, { connection: "Offline", pending: 1 });
      await page.screenshot({ path: join(ARTIFACTS, "offline-reload.png"), fullPage: true });
      // Every page of the app is the same shell: the start page loads offline as well.
      await page.goto(`${server.url}/counter`);
      await page.getByTestId("counter-page").waitFor();
      await waitForBadge(page, { connection: "Offline", pending: 1 });
    } finally {
      await tablet.close();
      await server.stop();
    }
  });

  test("a server that vanishes loses nothing and sync resumes when it returns", async () => {
    const dataDir = temporaryDirectory("counterbook-e2e-");
    let server = await startServer({ dataDir });
    const tablet = await browser.newContext();
    try {
      const page = await tablet.newPage();
      const url = appUrl(server.url, { endpoint: server.url, project: "e2e-vanish", shop: "s1" });
      await page.goto(url);
      await waitForBadge(page, { connection: "Online", pending: 0 });
      // The products page is a split part whose module the page fetches from this server: the
      // server vanishes while the page is in use, not before its module came (the top bar's
      // badge is the shell's and says "Online" sooner).
      await page.getByTestId("product-name").waitFor();

      await server.stop();
      await addProduct(page, "Lux Soap", "35");
      await waitForBadge(page, { connection: "Server unreachable", pending: 1 });

      server = await startServer({ dataDir, port: server.port });
      await waitForBadge(page, { connection: "Online", pending: 0 });
      assert.deepEqual(countRowsInSqlite(server.database, "e2e-vanish"), { products: 1, audit: 1, ops: 1, devices: 1 });
    } finally {
      await tablet.close();
      await server.stop();
    }
  });
});

test("a change the backend refuses is kept on the tablet as a dead letter", async () => {
  // The real emulator with rules that refuse every write: the commit gets PERMISSION_DENIED.
  const rulesFile = join(temporaryDirectory("counterbook-rules-"), "deny-writes.rules");
  writeFileSync(
    rulesFile,
    `rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /{document=**} {
      allow read: if true;
      allow write: if false;
    }
  }
}
`,
  );
  const [server, emulator, browser] = await Promise.all([
    startServer({ dataDir: temporaryDirectory("counterbook-e2e-") }),
    startEmulator({ rulesFile }),
    launchBrowser(),
  ]);
  try {
    const page = await browser.newPage();
    await page.goto(appUrl(server.url, { endpoint: emulator.url, project: "e2e-deny", shop: "s1" }));
    await addProduct(page, "Surf Excel 500g", "99");
    // The top bar counts the refused change; the sync page lists it.
    await page.getByTestId("sync-problem-count").waitFor();
    await openPage(page, "/sync");
    await page.getByTestId("dead-letter").waitFor();
    assert.match(
      await page.getByTestId("dead-letter-reason").textContent(),
      /the server refused it \(permission denied\)/,
    );
    await waitForBadge(page, { connection: "Online", pending: 0 });
    await page.screenshot({ path: join(ARTIFACTS, "dead-letter.png"), fullPage: true });
    // Nothing is lost: the product stays on the tablet, the unit stays in the outbox.
    await openPage(page, "/products");
    await waitForProducts(page, ["Surf Excel 500g"]);
    await openPage(page, "/sync");

    // Retrying sends it again (and it is refused again); discarding removes it.
    const refusedAgain = page.waitForResponse((response) => response.url().includes(":commit"));
    await page.getByTestId("retry-dead-letter").click();
    assert.equal((await refusedAgain).status(), 403);
    await page.getByTestId("dead-letter").waitFor();
    await page.getByTestId("discard-dead-letter").click();
    await page.getByTestId("dead-letters").waitFor({ state: "detached" });
    await page.reload();
    await page.getByTestId("sync-all-clear").waitFor();
    assert.equal(await page.getByTestId("dead-letter").count(), 0, "discarded for good");
    await openPage(page, "/products");
    await waitForProducts(page, ["Surf Excel 500g"]);
  } finally {
    await Promise.all([browser.close(), server.stop(), emulator.stop()]);
  }
});

test("the service worker's version is a hash of the final built files", () => {
  // Trunk names the wasm by a hash taken before wasm-opt; the service worker must be stamped
  // after wasm-opt, from the bytes that are actually served. The build's .br and .gz copies
  // are other encodings of the same files, neither precached nor versioned; the manifest's
  // screenshots are for the install dialog only, neither precached nor versioned either.
  const files = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name !== "sw.js" && !/\.(br|gz)$/.test(name)) files.push("/" + relative(DIST, path));
    }
  };
  walk(DIST);
  assert.ok(files.some((f) => f.startsWith("/screenshots/")), "the build has the screenshots");
  files.splice(0, files.length, ...files.filter((f) => !f.startsWith("/screenshots/")).sort());
  const listing = files
    .map((f) => `${f} ${createHash("sha256").update(readFileSync(join(DIST, f))).digest("hex")}\n`)
    .join("");
  const expected = createHash("sha256").update(listing).digest("hex").slice(0, 16);
  const worker = readFileSync(join(DIST, "sw.js"), "utf8");
  assert.match(worker, new RegExp(`const VERSION = "${expected}";`));
  // Exactly what Trunk emitted, and the shell at "/".
  const precached = JSON.parse(worker.match(/const ASSETS = (\[.*\]);/)[1]);
  assert.deepEqual(precached, ["/", ...files]);
  for (const file of files.filter((f) => /\.(html|js|wasm|css|webmanifest|svg)$/.test(f))) {
    const bytes = readFileSync(join(DIST, file));
    assert.deepEqual(brotliDecompressSync(readFileSync(join(DIST, file + ".br"))), bytes, file);
    assert.deepEqual(gunzipSync(readFileSync(join(DIST, file + ".gz"))), bytes, file);
  }
});
