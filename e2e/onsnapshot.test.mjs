// The full Firebase JS SDK's `onSnapshot` (`@firebase/firestore` over WebChannel, connected with
// `connectFirestoreEmulator`) in headless Chromium, against counterbook-server and against
// Google's Firestore emulator. A tiny page, bundled here with esbuild and served from its own
// origin (so CORS with credentials is exercised too), listens to a query and writes every
// snapshot into the DOM; the test writes through REST and waits for each expected snapshot in
// the DOM. Both backends must produce the same sequence of snapshots: the emulator answers each
// change with RESET and the whole result set, counterbook-server incrementally, and the SDK must
// show the same thing either way.

import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, describe, test } from "node:test";
import { build } from "esbuild";
import { launchBrowser, startEmulator, startServer, temporaryDirectory } from "./harness.mjs";

const PROJECT = "demo-onsnapshot";
const SHOP = "shops/live-1";
const E2E_DIRECTORY = new URL(".", import.meta.url).pathname;
/** How long one expected snapshot may take to show. */
const PATIENCE_MS = 15_000;

const PAGE_SCRIPT = `
import { initializeApp } from "@firebase/app";
import {
  collection, connectFirestoreEmulator, getFirestore, onSnapshot, orderBy, query, where,
} from "@firebase/firestore";

const parameters = new URLSearchParams(location.search);
const app = initializeApp({ projectId: parameters.get("project"), apiKey: "fake-key" });
const db = getFirestore(app);
connectFirestoreEmulator(db, "127.0.0.1", Number(parameters.get("port")));
const list = document.getElementById("snapshots");
const products = query(
  collection(db, parameters.get("shop") + "/products"),
  where("price", ">=", 100),
  orderBy("price"),
);
onSnapshot(
  products,
  (snapshot) => {
    // Snapshots from the local cache say nothing about the backend; only server ones count.
    if (snapshot.metadata.fromCache) return;
    const item = document.createElement("li");
    item.textContent = snapshot.docs
      .map((document) => document.id + ":" + document.get("price"))
      .join(",");
    list.appendChild(item);
  },
  (error) => {
    document.getElementById("error").textContent = error.code + " " + error.message;
  },
);
`;

/** Bundles the page and serves it on 127.0.0.1; resolves to `{ url, close }`. */
async function servePage() {
  const bundle = await build({
    stdin: { contents: PAGE_SCRIPT, resolveDir: E2E_DIRECTORY, loader: "js" },
    bundle: true,
    format: "esm",
    platform: "browser",
    write: false,
    logLevel: "silent",
  });
  const script = bundle.outputFiles[0].contents;
  const html = `<!doctype html><meta charset="utf-8"><title>onSnapshot</title>
<ol id="snapshots"></ol><p id="error"></p><script type="module" src="/page.js"></script>`;
  const server = createServer((request, response) => {
    if (request.url.startsWith("/page.js")) {
      response.writeHead(200, { "Content-Type": "text/javascript" });
      response.end(script);
    } else {
      response.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
      response.end(html);
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** Commits `writes` through the REST API of `endpoint`. */
async function commit(endpoint, writes) {
  const url = `${endpoint}/v1/projects/${PROJECT}/databases/(default)/documents:commit`;
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ writes }),
  });
  if (!response.ok) throw new Error(`commit: ${response.status} ${await response.text()}`);
}

function product(id, price) {
  return {
    update: {
      name: `projects/${PROJECT}/databases/(default)/documents/${SHOP}/products/${id}`,
      fields: { price: { integerValue: String(price) } },
    },
  };
}

function remove(id) {
  return { delete: `projects/${PROJECT}/databases/(default)/documents/${SHOP}/products/${id}` };
}

/** The steps: writes, and the snapshot each must lead to (`id:price` in query order). */
const STEPS = [
  { writes: [product("a", 150), product("b", 50)], expected: "a:150" },
  { writes: [product("c", 120)], expected: "c:120,a:150" },
  { writes: [product("a", 10)], expected: "c:120" },
  { writes: [remove("c")], expected: "" },
  { writes: [product("b", 500), product("d", 300)], expected: "d:300,b:500" },
  { writes: [product("d", 900)], expected: "b:500,d:900" },
];

/** Runs the steps against one backend in a fresh page; returns the snapshots the DOM showed. */
async function observeSnapshots(browser, page_url, endpoint) {
  const port = Number(new URL(endpoint).port);
  const context = await browser.newContext();
  const page = await context.newPage();
  try {
    // The first step's documents exist before the listener starts, the rest arrive live.
    await commit(endpoint, STEPS[0].writes);
    await page.goto(`${page_url}?project=${PROJECT}&port=${port}&shop=${SHOP}`);
    for (const [index, step] of STEPS.entries()) {
      if (index > 0) await commit(endpoint, step.writes);
      await page
        .waitForFunction(
          (expected) => {
            const items = document.querySelectorAll("#snapshots li");
            return items.length > 0 && items[items.length - 1].textContent === expected;
          },
          step.expected,
          { timeout: PATIENCE_MS },
        )
        .catch(async (error) => {
          const shown = await page.$$eval("#snapshots li", (items) =>
            items.map((item) => item.textContent),
          );
          const pageError = await page.textContent("#error");
          throw new Error(
            `step ${index} wanted ${JSON.stringify(step.expected)}; the page showed ` +
              `${JSON.stringify(shown)} ${pageError}: ${error.message}`,
          );
        });
    }
    return await page.$$eval("#snapshots li", (items) => items.map((item) => item.textContent));
  } finally {
    await context.close();
  }
}

describe("onSnapshot of the full Firebase JS SDK against both backends", () => {
  let browser;
  let pageServer;
  const backends = {};
  const observed = {};

  before(async () => {
    pageServer = await servePage();
    browser = await launchBrowser();
    backends["counterbook-server"] = await startServer({
      dataDir: temporaryDirectory("onsnapshot-"),
    });
    backends["firestore-emulator"] = await startEmulator();
  });

  after(async () => {
    await browser?.close();
    await pageServer?.close();
    for (const backend of Object.values(backends)) await backend.stop();
  });

  for (const name of ["counterbook-server", "firestore-emulator"]) {
    test(`every REST commit shows as a snapshot: ${name}`, { timeout: 120_000 }, async () => {
      observed[name] = await observeSnapshots(browser, pageServer.url, backends[name].url);
      // Each expected snapshot showed, in order (a backend may add intermediate ones only if
      // they are among the expected states).
      const distinct = observed[name].filter((text, i, all) => i === 0 || all[i - 1] !== text);
      assert.deepEqual(distinct, STEPS.map((step) => step.expected));
    });
  }

  test("both backends showed the same snapshots", () => {
    assert.deepEqual(observed["counterbook-server"], observed["firestore-emulator"]);
  });
});
