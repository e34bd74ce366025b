// `make bench-realtime`: how long a change takes from one tablet's commit to another tablet's
// screen, over CHANGES changes, as p50/p95/p99 (not a test; not part of `make test`).
//
// - Counterbook on counterbook-server, and Counterbook on Google's Firestore emulator: tablet A
//   adds a product through the app; the clock starts when A's `:commit` reply arrives and stops
//   when tablet B's DOM lists the product (a MutationObserver in B stamps it).
// - The Firebase JS SDK's `onSnapshot` on the same emulator (and on counterbook-server): a page
//   bundled with esbuild listens to the products collection and adds a row per added document;
//   the writer commits through REST, and the clock starts at the commit reply.
// Each change waits for the previous one to show, so latencies do not queue behind each other.
// Everything runs on loopback in one headless Chromium; it stops everything it starts.

import { createServer } from "node:http";
import { build } from "esbuild";
import {
  addProduct,
  appUrl,
  launchBrowser,
  startEmulator,
  startServer,
  temporaryDirectory,
  waitForBadge,
} from "./harness.mjs";

const CHANGES = Number(process.env.CHANGES ?? 200);
const E2E_DIRECTORY = new URL(".", import.meta.url).pathname;
const PATIENCE_MS = 15_000;

/** In a page: stamps the time each text of `selector` first appears, in `window.__seen`. */
function stampArrivals(selector) {
  window.__seen = {};
  const scan = () => {
    for (const element of document.querySelectorAll(selector)) {
      const text = element.textContent;
      if (!(text in window.__seen)) window.__seen[text] = Date.now();
    }
  };
  new MutationObserver(scan).observe(document, {
    childList: true,
    subtree: true,
    characterData: true,
  });
  scan();
}

async function arrivalOf(page, text) {
  const handle = await page.waitForFunction((text) => window.__seen?.[text], text, {
    timeout: PATIENCE_MS,
    polling: 10,
  });
  return handle.jsonValue();
}

function percentile(sorted, fraction) {
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)];
}

/** `samples`: `{ sent, replied, shown }` times of each change. */
function summary(name, samples) {
  const row = { name, changes: samples.length };
  for (const [from, label] of [
    ["sent", "sent→DOM"],
    ["replied", "reply→DOM"],
  ]) {
    const sorted = samples.map((s) => s.shown - s[from]).sort((a, b) => a - b);
    row[`${label} p50`] = percentile(sorted, 0.5);
    row[`${label} p95`] = percentile(sorted, 0.95);
    row[`${label} p99`] = percentile(sorted, 0.99);
  }
  return row;
}

/** Counterbook tablets A and B on `endpoint`: A adds, B shows. */
async function benchCounterbook(browser, appOrigin, endpoint, label) {
  const project = `bench-realtime-${Date.now()}`;
  const url = appUrl(appOrigin, { endpoint, project, shop: "bench-1" });
  const tabletA = await browser.newContext();
  const tabletB = await browser.newContext();
  try {
    const pageA = await tabletA.newPage();
    const pageB = await tabletB.newPage();
    await Promise.all([pageA.goto(url), pageB.goto(url)]);
    await Promise.all([
      waitForBadge(pageA, { connection: "Online", pending: 0 }),
      waitForBadge(pageB, { connection: "Online", pending: 0 }),
    ]);
    const realtime = () =>
      document.querySelector("[data-testid=sync-badge]")?.dataset.realtime === "true";
    await Promise.all([pageA.waitForFunction(realtime), pageB.waitForFunction(realtime)]);
    await pageB.evaluate(stampArrivals, "[data-testid=product-row-name]");
    const samples = [];
    const isCommit = (r) => r.url().includes(":commit");
    for (let i = 0; i < CHANGES; i++) {
      const name = `Bench ${String(i).padStart(4, "0")}`;
      const sent = pageA
        .waitForRequest(isCommit, { timeout: PATIENCE_MS })
        .then(() => Date.now());
      const replied = pageA
        .waitForResponse(isCommit, { timeout: PATIENCE_MS })
        .then(() => Date.now());
      await addProduct(pageA, name, "10");
      samples.push({
        sent: await sent,
        replied: await replied,
        shown: await arrivalOf(pageB, name),
      });
    }
    return summary(label, samples);
  } finally {
    await Promise.all([tabletA.close(), tabletB.close()]);
  }
}

const SDK_PAGE_SCRIPT = `
import { initializeApp } from "@firebase/app";
import { collection, connectFirestoreEmulator, getFirestore, onSnapshot } from "@firebase/firestore";

const parameters = new URLSearchParams(location.search);
const app = initializeApp({ projectId: parameters.get("project"), apiKey: "fake-key" });
const db = getFirestore(app);
connectFirestoreEmulator(db, "127.0.0.1", Number(parameters.get("port")));
const list = document.getElementById("rows");
onSnapshot(collection(db, "shops/bench-1/products"), (snapshot) => {
  if (snapshot.metadata.fromCache) return;
  for (const change of snapshot.docChanges()) {
    if (change.type !== "added") continue;
    const row = document.createElement("li");
    row.className = "row";
    row.textContent = change.doc.id;
    list.appendChild(row);
  }
  document.body.dataset.ready = "true";
});
`;

async function serveSdkPage() {
  const bundle = await build({
    stdin: { contents: SDK_PAGE_SCRIPT, resolveDir: E2E_DIRECTORY, loader: "js" },
    bundle: true,
    format: "esm",
    platform: "browser",
    write: false,
    logLevel: "silent",
  });
  const script = bundle.outputFiles[0].contents;
  const html = `<!doctype html><meta charset="utf-8"><title>bench</title>
<ol id="rows"></ol><script type="module" src="/page.js"></script>`;
  const server = createServer((request, response) => {
    const isScript = request.url.startsWith("/page.js");
    response.writeHead(200, {
      "Content-Type": isScript ? "text/javascript" : "text/html; charset=utf-8",
    });
    response.end(isScript ? script : html);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** The SDK page listens on `endpoint`; this process commits through REST. */
async function benchSdk(browser, pageUrl, endpoint, label) {
  const project = `bench-sdk-${Date.now()}`;
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const port = new URL(endpoint).port;
    await page.goto(`${pageUrl}?project=${project}&port=${port}`);
    await page.waitForFunction(() => document.body.dataset.ready === "true", null, {
      timeout: PATIENCE_MS,
    });
    await page.evaluate(stampArrivals, "li.row");
    const root = `projects/${project}/databases/(default)/documents`;
    const samples = [];
    for (let i = 0; i < CHANGES; i++) {
      const id = `bench${String(i).padStart(4, "0")}`;
      const sentAt = Date.now();
      const response = await fetch(`${endpoint}/v1/${root}:commit`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          writes: [
            {
              update: {
                name: `${root}/shops/bench-1/products/${id}`,
                fields: { name: { stringValue: id } },
              },
            },
          ],
        }),
      });
      const repliedAt = Date.now();
      if (!response.ok) throw new Error(`commit: ${response.status} ${await response.text()}`);
      samples.push({ sent: sentAt, replied: repliedAt, shown: await arrivalOf(page, id) });
    }
    return summary(label, samples);
  } finally {
    await context.close();
  }
}

const [server, emulator, browser, sdkPage] = await Promise.all([
  startServer({ dataDir: temporaryDirectory("counterbook-bench-realtime-") }),
  startEmulator(),
  launchBrowser(),
  serveSdkPage(),
]);
try {
  console.log(
    `a commit (sent, and replied) → the other tablet's DOM, ${CHANGES} changes each, milliseconds`,
  );
  const rows = [
    await benchCounterbook(browser, server.url, server.url, "counterbook on counterbook-server"),
    await benchCounterbook(browser, server.url, emulator.url, "counterbook on firestore-emulator"),
    await benchSdk(browser, sdkPage.url, emulator.url, "firebase-js-sdk onSnapshot on emulator"),
    await benchSdk(browser, sdkPage.url, server.url, "firebase-js-sdk onSnapshot on server"),
  ];
  console.table(rows);
} finally {
  await Promise.all([browser.close(), server.stop(), emulator.stop(), sdkPage.close()]);
}
