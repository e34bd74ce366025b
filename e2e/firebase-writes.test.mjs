// The full Firebase JS SDK's writes (`@firebase/firestore` over the WebChannel Write stream) in
// headless Chromium, against counterbook-server and against Google's Firestore emulator, with
// the memory cache and with `persistentLocalCache` (IndexedDB). A tiny page, bundled here with
// esbuild and served from its own origin, runs one scenario: setDoc with serverTimestamp,
// updateDoc with increment and arrayUnion, a writeBatch, a runTransaction, a deleteDoc, one
// refused write (updateDoc of a missing document: `not-found`), a document over 1 MiB
// (`invalid-argument`, a Write request larger than a Listen form may be), a write after them (the SDK opens
// a new Write stream), while an onSnapshot listener follows the collection. Every awaited write
// must resolve (against a backend without the Write stream they retry forever), and the four
// runs must give the same outcome: the same results, the same refusal code, the same final
// snapshot, and the same documents read back over REST.

import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, describe, test } from "node:test";
import { build } from "esbuild";
import { launchBrowser, startEmulator, startServer, temporaryDirectory } from "./harness.mjs";

const PROJECT = "demo-sdk-writes";
const E2E_DIRECTORY = new URL(".", import.meta.url).pathname;
/** How long the whole scenario may take in the page. */
const SCENARIO_TIMEOUT_MS = 60_000;

const PAGE_SCRIPT = `
import { initializeApp } from "@firebase/app";
import {
  arrayUnion, collection, connectFirestoreEmulator, deleteDoc, doc, getDocFromServer,
  increment, initializeFirestore, memoryLocalCache, onSnapshot, orderBy, persistentLocalCache,
  query, runTransaction, serverTimestamp, setDoc, Timestamp, updateDoc, writeBatch,
} from "@firebase/firestore";

const parameters = new URLSearchParams(location.search);
const app = initializeApp({ projectId: parameters.get("project"), apiKey: "fake-key" });
const localCache = parameters.get("cache") === "persistent" ? persistentLocalCache() : memoryLocalCache();
const db = initializeFirestore(app, { localCache });
connectFirestoreEmulator(db, "127.0.0.1", Number(parameters.get("port")));
const shop = parameters.get("shop");
const products = collection(db, shop + "/products");
const product = (id) => doc(db, shop + "/products/" + id);

/** A product as the outcome records it: server timestamps as their type only. */
function describe(data) {
  if (data === undefined) return null;
  const described = {};
  for (const key of Object.keys(data).sort()) {
    const value = data[key];
    described[key] = value instanceof Timestamp ? "timestamp" : value;
  }
  return described;
}

/** Server-confirmed snapshots of the listener, as "id:price:stock" lists. */
const snapshots = [];
let listenError = null;
/** Called after every new snapshot. */
const snapshotWaiters = new Set();
/** Resolves once the last server-confirmed snapshot is "expected". */
function snapshotReached(expected) {
  return new Promise((resolve) => {
    const check = () => {
      if (snapshots[snapshots.length - 1] !== expected) return;
      snapshotWaiters.delete(check);
      resolve(expected);
    };
    snapshotWaiters.add(check);
    check();
  });
}
onSnapshot(
  query(products, orderBy("price")),
  { includeMetadataChanges: true },
  (snapshot) => {
    if (snapshot.metadata.fromCache || snapshot.metadata.hasPendingWrites) return;
    const text = snapshot.docs
      .map((document) => document.id + ":" + document.get("price") + ":" + document.get("stock"))
      .join(",");
    if (snapshots[snapshots.length - 1] !== text) snapshots.push(text);
    for (const waiter of [...snapshotWaiters]) waiter();
  },
  (error) => { listenError = error.code; },
);

/** Awaits \`promise\`, naming the step if it never settles. */
async function step(name, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error("step " + name + " did not settle")), 20000);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

window.runScenario = async () => {
  const outcome = {};
  await step("setDoc a", setDoc(product("a"), { name: "Tea", price: 150, stock: 3, at: serverTimestamp() }));
  await step("updateDoc a", updateDoc(product("a"), { stock: increment(2), tags: arrayUnion("loose", "black") }));
  outcome.afterUpdate = describe((await step("read a", getDocFromServer(product("a")))).data());

  const batch = writeBatch(db);
  batch.set(product("b"), { name: "Sugar", price: 40, stock: 10 });
  batch.set(product("c"), { name: "Salt", price: 20, stock: 5 });
  batch.update(product("a"), { price: 160, tags: arrayUnion("black", "assam") });
  await step("writeBatch", batch.commit());

  outcome.transaction = await step("runTransaction", runTransaction(db, async (transaction) => {
    const a = await transaction.get(product("a"));
    const stock = a.get("stock");
    transaction.update(product("a"), { stock: stock - 1 });
    transaction.set(product("d"), { name: "Rice", price: 90, stock: stock });
    return stock;
  }));

  await step("deleteDoc c", deleteDoc(product("c")));

  try {
    await step("refused updateDoc", updateDoc(product("missing"), { price: 1 }));
    outcome.refused = "resolved";
  } catch (error) {
    outcome.refused = error.code;
  }
  // A document over Firestore's 1 MiB limit: refused by the backend (a large Write request).
  try {
    await step("refused large setDoc", setDoc(product("huge"), { name: "x".repeat(1100000) }));
    outcome.refusedLarge = "resolved";
  } catch (error) {
    outcome.refusedLarge = error.code;
  }
  // After a refused write the SDK opens a new Write stream; the next write goes through.
  await step("setDoc e", setDoc(product("e"), { name: "Oil", price: 200, stock: increment(7) }));

  outcome.documents = {};
  for (const id of ["a", "b", "c", "d", "e", "missing", "huge"]) {
    const snapshot = await step("read " + id, getDocFromServer(product(id)));
    outcome.documents[id] = describe(snapshot.data());
  }
  const expected = "b:40:10,d:90:5,a:160:4,e:200:7";
  await step("the listener shows " + expected, snapshotReached(expected)).catch((error) => {
    throw new Error(error.message + "; snapshots: " + JSON.stringify(snapshots));
  });
  outcome.lastSnapshot = snapshots[snapshots.length - 1];
  outcome.listenError = listenError;
  return outcome;
};
document.getElementById("ready").textContent = "ready";
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
  const html = `<!doctype html><meta charset="utf-8"><title>SDK writes</title>
<p id="ready"></p><script type="module" src="/page.js"></script>`;
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

/** The fields of one document read over REST (null when missing), values as the wire has them. */
async function restDocument(endpoint, path) {
  const url = `${endpoint}/v1/projects/${PROJECT}/databases/(default)/documents/${path}`;
  const response = await fetch(url);
  if (response.status === 404) return null;
  if (!response.ok) throw new Error(`GET ${url}: ${response.status} ${await response.text()}`);
  const { fields } = await response.json();
  const plain = {};
  for (const key of Object.keys(fields).sort()) {
    const value = fields[key];
    if ("timestampValue" in value) plain[key] = "timestamp";
    else if ("integerValue" in value) plain[key] = Number(value.integerValue);
    else if ("stringValue" in value) plain[key] = value.stringValue;
    else if ("arrayValue" in value)
      plain[key] = (value.arrayValue.values ?? []).map((element) => element.stringValue);
    else plain[key] = value;
  }
  return plain;
}

/** Runs the scenario in a fresh browser context; returns its outcome and the REST read-back. */
async function runScenario(browser, pageUrl, endpoint, cache) {
  const port = Number(new URL(endpoint).port);
  const shop = `shops/${cache}`;
  const context = await browser.newContext();
  const page = await context.newPage();
  const consoleErrors = [];
  let writeChannelRequests = 0;
  page.on("request", (request) => {
    if (request.url().includes("/google.firestore.v1.Firestore/Write/channel")) {
      writeChannelRequests += 1;
    }
  });
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push(message.text());
  });
  try {
    await page.goto(`${pageUrl}?project=${PROJECT}&port=${port}&shop=${shop}&cache=${cache}`);
    await page.waitForFunction(() => document.getElementById("ready").textContent === "ready");
    const outcome = await page
      .evaluate(() => window.runScenario(), undefined, { timeout: SCENARIO_TIMEOUT_MS })
      .catch((error) => {
        throw new Error(`${error.message}\nconsole errors: ${consoleErrors.join("\n")}`);
      });
    const rest = {};
    for (const id of ["a", "b", "c", "d", "e"]) {
      rest[id] = await restDocument(endpoint, `${shop}/products/${id}`);
    }
    return { outcome, rest, writeChannelRequests };
  } finally {
    await context.close();
  }
}

const EXPECTED_DOCUMENTS = {
  a: { at: "timestamp", name: "Tea", price: 160, stock: 4, tags: ["loose", "black", "assam"] },
  b: { name: "Sugar", price: 40, stock: 10 },
  c: null,
  d: { name: "Rice", price: 90, stock: 5 },
  e: { name: "Oil", price: 200, stock: 7 },
};

describe("writes of the full Firebase JS SDK against both backends", () => {
  let browser;
  let pageServer;
  const backends = {};
  const results = {};

  before(async () => {
    pageServer = await servePage();
    browser = await launchBrowser();
    backends["counterbook-server"] = await startServer({
      dataDir: temporaryDirectory("sdk-writes-"),
    });
    backends["firestore-emulator"] = await startEmulator();
  });

  after(async () => {
    await browser?.close();
    await pageServer?.close();
    for (const backend of Object.values(backends)) await backend.stop();
  });

  for (const name of ["counterbook-server", "firestore-emulator"]) {
    for (const cache of ["memory", "persistent"]) {
      test(`setDoc, updateDoc, writeBatch, runTransaction, deleteDoc, a refused write: ${name}, ${cache} cache`, { timeout: 120_000 }, async () => {
        const { outcome, rest, writeChannelRequests } = await runScenario(
          browser,
          pageServer.url,
          backends[name].url,
          cache,
        );
        results[`${name} ${cache}`] = { outcome, rest };
        // The writes went over the WebChannel Write stream (the transaction goes over REST).
        assert.ok(writeChannelRequests > 0, "the SDK used the Write channel");
        assert.deepEqual(outcome.afterUpdate, {
          at: "timestamp",
          name: "Tea",
          price: 150,
          stock: 5,
          tags: ["loose", "black"],
        });
        assert.equal(outcome.transaction, 5);
        assert.equal(outcome.refused, "not-found");
        assert.equal(outcome.refusedLarge, "invalid-argument");
        assert.deepEqual(outcome.documents, { ...EXPECTED_DOCUMENTS, missing: null, huge: null });
        assert.equal(outcome.lastSnapshot, "b:40:10,d:90:5,a:160:4,e:200:7");
        assert.equal(outcome.listenError, null);
        assert.deepEqual(rest, EXPECTED_DOCUMENTS);
      });
    }
  }

  test("every backend and cache gave the same outcome", () => {
    const [first, ...others] = Object.values(results);
    assert.equal(Object.keys(results).length, 4, "all four runs finished");
    for (const other of others) assert.deepEqual(other, first);
  });
});
