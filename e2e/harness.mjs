// Starts and stops what the end-to-end tests need: counterbook-server, Google's Firestore
// emulator and Debian's Chromium. Everything binds to 127.0.0.1 and is stopped by the test
// that started it (the emulator and the server run in their own process group, so stopping
// the group also stops the java process the emulator's launcher script starts).

import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before } from "node:test";
import { chromium } from "playwright-core";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const DIST = join(ROOT, "dist");
export const SERVER_BIN = join(ROOT, "target", "release", "counterbook-server");
export const ARTIFACTS = join(ROOT, "e2e", "artifacts");
mkdirSync(ARTIFACTS, { recursive: true });
const EMULATOR =
  "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud_firestore_emulator";
/** The Firebase CLI from npm (`e2e/firebase-tools`, installed by the Makefile). */
const FIREBASE_CLI = join(ROOT, "e2e", "firebase-tools", "node_modules", "firebase-tools", "lib", "bin", "firebase.js");

const temporaryDirectories = [];
// A test file's temporary directories (servers' data, browser profiles) go when its process ends,
// whether its tests passed or failed half-way.
process.on("exit", () => {
  for (const directory of temporaryDirectories) {
    rmSync(directory, { recursive: true, force: true });
  }
});

/** A new empty directory under the system's temporary folder, removed when the test file ends. */
export function temporaryDirectory(prefix) {
  const directory = mkdtempSync(join(tmpdir(), prefix));
  temporaryDirectories.push(directory);
  return directory;
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Spawns `command` in its own process group and resolves once `ready` matches its output.
 * `options` are `spawn`'s (`env`, `cwd`).
 */
function startProcess(command, args, ready, what, timeoutMillis, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const timer = setTimeout(() => {
      stopGroup(child);
      reject(new Error(`${what} did not start within ${timeoutMillis} ms:\n${output}`));
    }, timeoutMillis);
    const onData = (chunk) => {
      output += chunk.toString();
      const match = output.match(ready);
      if (match && timer) {
        clearTimeout(timer);
        resolve({ child, match, output: () => output });
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code} before it was ready:\n${output}`));
    });
  });
}

function stopGroup(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {
      resolve();
    }
    // A process that ignores SIGTERM is killed after five seconds.
    setTimeout(() => {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
    }, 5000).unref();
  });
}

/**
 * counterbook-server in dev mode serving the built app. `port` 0 picks a free one. With `tls`,
 * over HTTPS with the certificate of the local CA it makes in `dataDir/tls` (plain HTTP on the
 * same port redirects); `spki` is then the base64 SHA-256 of the server key for
 * `launchBrowser({ trustSpki })`. `app` is the built app's directory (dist unless told).
 * `args` are passed on; `bin` is the server binary (this tree's release build unless told).
 */
export async function startServer({ dataDir, port = 0, tls = false, app = DIST, args = [], bin = SERVER_BIN }) {
  const started = await startProcess(
    bin,
    [
      "serve",
      "--addr",
      `127.0.0.1:${port}`,
      "--data",
      dataDir,
      "--app",
      app,
      "--dev",
      ...(tls ? ["--tls"] : []),
      ...args,
    ],
    /listening on (https?:\/\/127\.0\.0\.1:(\d+))/,
    "counterbook-server",
    30_000,
  );
  const spki = started.output().match(/\(SPKI sha256 ([A-Za-z0-9+/=]+)\)/)?.[1];
  return {
    url: started.match[1],
    port: Number(started.match[2]),
    database: join(dataDir, "counterbook.sqlite3"),
    caCertificate: join(dataDir, "tls", "ca-certificate.pem"),
    spki,
    stop: () => stopGroup(started.child),
  };
}

/**
 * counterbook-server with accounts (project `counterbook`, ID tokens living
 * `tokenLifetimeSeconds` if given), serving the built app. A server holding no shop prints its
 * one-time setup code, returned as `setupCode`; one started again on a shop already set up
 * (`claimed`) prints none.
 */
export async function startAccountsServer({ dataDir, tokenLifetimeSeconds, args = [], claimed = false }) {
  const lifetime = tokenLifetimeSeconds
    ? ["--token-lifetime-seconds", String(tokenLifetimeSeconds)]
    : [];
  const started = await startProcess(
    SERVER_BIN,
    [
      "serve",
      "--addr",
      "127.0.0.1:0",
      "--data",
      dataDir,
      "--app",
      DIST,
      "--project",
      "counterbook",
      ...lifetime,
      ...args,
    ],
    claimed
      ? /listening on (http:\/\/127\.0\.0\.1:(\d+))/
      : /listening on (http:\/\/127\.0\.0\.1:(\d+))[\s\S]*setup code: ([A-Z0-9-]+)|setup code: ([A-Z0-9-]+)[\s\S]*listening on (http:\/\/127\.0\.0\.1:(\d+))/,
    "counterbook-server with accounts",
    30_000,
  );
  const [, urlA, portA, codeA, codeB, urlB, portB] = started.match;
  return {
    url: urlA ?? urlB,
    port: Number(portA ?? portB),
    setupCode: codeA ?? codeB,
    database: join(dataDir, "counterbook.sqlite3"),
    output: started.output,
    stop: () => stopGroup(started.child),
  };
}

/** Google's Firestore emulator on a free port, enforcing `rulesFile` if given. */
export async function startEmulator({ rulesFile } = {}) {
  const rules = rulesFile ? [`--rules=${rulesFile}`] : [];
  // The port was free a moment ago, but another process on this machine may take it (or the
  // emulator's own WebSocket port) before the emulator binds: try again on a fresh one.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      const started = await startProcess(
        EMULATOR,
        ["start", `--host=127.0.0.1`, `--port=${port}`, ...rules],
        /Dev App Server is now running/,
        "the Firestore emulator",
        120_000,
      );
      return { url: `http://127.0.0.1:${port}`, stop: () => stopGroup(started.child) };
    } catch (error) {
      if (attempt >= 3 || !String(error.message).includes("Address already in use")) throw error;
    }
  }
}

/**
 * The Firebase Auth emulator of firebase-tools (`emulators:start --only auth`) for `project`, on
 * free ports of 127.0.0.1, from a generated `firebase.json` (no Emulator UI). It is plain
 * JavaScript: nothing is downloaded (no jar, unlike the Firestore emulator of firebase-tools),
 * and `CI=1` keeps the CLI from fetching its message of the day. Its configuration store and
 * the emulator hub's locator file go into a directory of its own.
 */
export async function startAuthEmulator({ project }) {
  const directory = temporaryDirectory("counterbook-auth-emulator-");
  for (let attempt = 1; ; attempt++) {
    const [port, hub, logging] = [await freePort(), await freePort(), await freePort()];
    const host = "127.0.0.1";
    writeFileSync(
      join(directory, "firebase.json"),
      JSON.stringify({
        emulators: {
          auth: { host, port },
          hub: { host, port: hub },
          logging: { host, port: logging },
          ui: { enabled: false },
          singleProjectMode: true,
        },
      }),
    );
    try {
      const started = await startProcess(
        process.execPath,
        [FIREBASE_CLI, "emulators:start", "--only", "auth", "--project", project],
        /All emulators ready/,
        "the Firebase Auth emulator",
        120_000,
        {
          cwd: directory,
          env: { ...process.env, CI: "1", XDG_CONFIG_HOME: directory, TMPDIR: directory },
        },
      );
      return { url: `http://${host}:${port}`, stop: () => stopGroup(started.child) };
    } catch (error) {
      if (attempt >= 3 || !/in use|EADDRINUSE/.test(String(error.message))) throw error;
    }
  }
}

/** Debian's Chromium, headless. `trustSpki`: base64 SHA-256 SubjectPublicKeyInfo hashes of
 * certificates to accept as valid (a test server's generated certificate). */
export async function launchBrowser({ trustSpki = [] } = {}) {
  const trust = trustSpki.length ? [`--ignore-certificate-errors-spki-list=${trustSpki.join(",")}`] : [];
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: [
      ...trust,
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * A counterbook-server in dev mode (its data in a new folder named from `prefix`) and a browser
 * for the tests of the `describe` this is called in: started before them (then `setUp(server)`,
 * which seeds what they share) and stopped after. Returns `{ server, browser }`, filled in
 * once started.
 */
export function serverAndBrowserForTests(prefix, setUp = async () => {}) {
  const started = { server: undefined, browser: undefined };
  before(async () => {
    [started.server, started.browser] = await Promise.all([
      startServer({ dataDir: temporaryDirectory(prefix) }),
      launchBrowser(),
    ]);
    await setUp(started.server);
  });
  after(async () => {
    await Promise.all([started.browser?.close(), started.server?.stop()]);
  });
  return started;
}

/** Runs `runQuery` for a collection under `parentPath` and returns the documents. */
export async function listDocuments(endpoint, project, parentPath, collectionId) {
  const url = `${endpoint}/v1/projects/${project}/databases/(default)/documents/${parentPath}:runQuery`;
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ structuredQuery: { from: [{ collectionId }] } }),
  });
  if (!response.ok) throw new Error(`runQuery ${url}: ${response.status} ${await response.text()}`);
  return (await response.json()).filter((item) => item.document).map((item) => item.document);
}

/** Counts rows per collection id in counterbook-server's SQLite file, for one project. */
export function countRowsInSqlite(databaseFile, project) {
  const script = [
    "import json, sqlite3, sys",
    "db = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)",
    "rows = db.execute('SELECT collection_id, count(*) FROM documents WHERE database = ? GROUP BY collection_id', ('projects/' + sys.argv[2] + '/databases/(default)',)).fetchall()",
    "print(json.dumps(dict(rows)))",
  ].join("\n");
  const result = spawnSync("python3", ["-c", script, databaseFile, project], { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`reading ${databaseFile}: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

/**
 * The app's URL on `appOrigin`, syncing with `endpoint` as `project`/`shop`, on the page at
 * `path` (the products page unless told otherwise; `/counter` is the start page).
 */
export function appUrl(appOrigin, { endpoint, project, shop, path = "/products" }) {
  const query = new URLSearchParams({ endpoint, project, shop });
  return `${appOrigin}${path}?${query}`;
}

/** Waits until the app's service worker is active and controls `page`. */
export async function waitForServiceWorkerControl(page) {
  await page.evaluate(() => navigator.serviceWorker.ready);
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null);
}

/** Goes to another page of the app the way a person does: its link in the top bar. */
export async function openPage(page, path) {
  await page.locator(`nav.pages a[href="${path}"]`).click();
  await page.waitForFunction((path) => location.pathname === path, path);
}

/** What the tablet shows: the badge, the pending count and the product names. */
export async function screenOf(page) {
  return page.evaluate(() => ({
    connection: document.querySelector("[data-testid=connection]")?.textContent,
    pending: document.querySelector("[data-testid=pending-count]")?.textContent,
    products: [...document.querySelectorAll("[data-testid=product-row-name]")].map(
      (e) => e.textContent,
    ),
  }));
}

export async function addProduct(page, name, price) {
  await page.getByTestId("product-name").fill(name);
  await page.getByTestId("product-price").fill(price);
  await page.getByTestId("add-product").click();
  // The form clears once the product is saved locally.
  await page.waitForFunction(
    () => document.querySelector("[data-testid=product-name]").value === "",
  );
}

/** Waits until the page's badge shows `pending` units and `connection`. */
export async function waitForBadge(page, { connection, pending }, timeout = 30_000) {
  await page.waitForFunction(
    ([connection, pending]) =>
      document.querySelector("[data-testid=connection]")?.textContent === connection &&
      document.querySelector("[data-testid=pending-count]")?.textContent === String(pending),
    [connection, pending],
    { timeout },
  );
}

/** Waits until the page lists exactly these product names (in any order). */
export async function waitForProducts(page, names, timeout = 30_000) {
  await page.waitForFunction(
    (expected) => {
      const shown = [...document.querySelectorAll("[data-testid=product-row-name]")]
        .map((e) => e.textContent)
        .sort();
      return JSON.stringify(shown) === JSON.stringify([...expected].sort());
    },
    names,
    { timeout },
  );
}
