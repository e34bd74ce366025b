// `make bench-counter` (not part of `make test`): the counter over a large catalogue. With
// 50,000 and then 100,000 products on counterbook-server:
//   - first sync into an empty tablet (page opened to every product in IndexedDB);
//   - scan: the keydown of a scan's Enter to the cart line painted, p50/p99;
//   - search: a keystroke in "Scan or search" to the results painted, p50/p99;
//   - complete sale to the receipt painted, back to back (beside the last sale's sync work) and on a
//     quiet tablet;
// and beside them, as the floor, the same lookups in raw IndexedDB JavaScript on the same
// database (a barcode index get; a name-prefix range with the same limit), and the ratios.
// "Painted" is the first animation frame after the DOM shows the change; "shown" is when the
// DOM shows it (the app's own work, before the wait for the next frame). The raw floor is timed
// both ways too: the lookup alone, and the lookup with its rows put in the DOM and the next frame;
// a scan's floor is a whole raw scan (the same key events, a barcode index get, a line appended
// to a list, timed from its Enter the same way). Beside each scan's painted time goes whether its
// line made the first frame after the Enter (by the frames' animation time stamps): a line that
// makes it is painted anything from 0 to one frame (16.7 ms at 60 Hz) after the Enter, by where
// in its frame the Enter came, so "within one frame" is a line drawn in that first frame.
// The first sync is timed from navigation to every product in IndexedDB; the lookups are measured
// only once the tablet is quiet (no IndexedDB write for a second), so they never queue behind
// sync work. Each phase has a deadline, so a slow build reports how far it got instead of hanging.
//
// BENCH_COUNTER_BASELINE=dir runs another build of the app (a `dist` directory, main's say) side
// by side with this one: for each size, the two in turn (baseline first) BENCH_COUNTER_ROUNDS
// times (2 unless told) on the same seeded server, then each figure's ratio, this build over
// the baseline, from the medians of the rounds (the machine's load drifts between runs).
// BENCH_COUNTER_BASELINE_SERVER=file runs the baseline's rounds on that counterbook-server
// binary (main's, say) instead of this tree's, so that a server change shows in the ratios.
// BENCH_COUNTER_PROFILE=1 records each first sync as a DevTools CPU profile
// (e2e/artifacts/bench-counter-first-sync-<size>-<build>.cpuprofile), and the measured scans
// too (bench-counter-scans-<size>-<build>.cpuprofile), and the sales on a quiet tablet
// (bench-counter-quiet-sales-<size>-<build>.cpuprofile), and prints where the main thread's time
// went (idle, the app's wasm, IndexedDB calls, garbage collection).
// BENCH_COUNTER_SYNC_ONLY=1 measures the first sync alone, and how long the tablet took after
// it to go quiet. Beside its wall time goes the CPU time it cost the browser's processes and
// the server (from /proc), which a loaded machine stretches less.
// Beside the scans' times goes the page's main-thread CPU time per scan (CDP Performance
// metrics in thread time: all of it, script, style and layout), the app's own work, which the
// machine's load stretches little.
// BENCH_COUNTER_TRACE=1 records the measured scans as a Chromium trace
// (e2e/artifacts/bench-counter-scans-<size>-<build>.json, for chrome://tracing or Perfetto;
// each scan a `scan` user timing from its Enter to its paint) and prints, for the slowest
// scans, what the page's main thread ran between the Enter and the frame, and over all of
// them its CPU time per scan by the kind of work.

import { cpus, loadavg, totalmem } from "node:os";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ARTIFACTS, DIST, appUrl, launchBrowser, startServer, temporaryDirectory } from "./harness.mjs";
import { countInStore, ean13, heaviestFunctions, seedProducts, seededId } from "./counter-helpers.mjs";

const SIZES = (process.env.BENCH_COUNTER_SIZES ?? "50000,100000").split(",").map(Number);
const SCANS = 200;
const SEARCHES = 100;
const SALES = 20;
const FIRST_SYNC_DEADLINE_MS = Number(process.env.BENCH_COUNTER_SYNC_DEADLINE_S ?? 300) * 1000;
const SHOP = "bench-shop";
const BASELINE = process.env.BENCH_COUNTER_BASELINE ?? null;
const BASELINE_SERVER = process.env.BENCH_COUNTER_BASELINE_SERVER ?? null;
const ROUNDS = Number(process.env.BENCH_COUNTER_ROUNDS ?? (BASELINE ? 2 : 1));
const PROFILE = process.env.BENCH_COUNTER_PROFILE === "1";
const TRACE = process.env.BENCH_COUNTER_TRACE === "1";
const SYNC_ONLY = process.env.BENCH_COUNTER_SYNC_ONLY === "1";
const WORDS = ["Chai", "Atta", "Dal", "Rice", "Soap", "Oil", "Ghee", "Salt", "Sugar", "Biscuit"];

function catalogue(size) {
  return Array.from({ length: size }, (_, index) => ({
    id: seededId(index + 1),
    name: `${WORDS[index % WORDS.length]} ${String(index).padStart(6, "0")}`,
    price: 10_00 + (index % 500) * 10,
    barcodes: [ean13(`89${String(index).padStart(10, "0")}`)],
    sku: `SKU-${index}`,
    stock: 1000,
  }));
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const summary = (values) => ({
  p50: +percentile(values, 50).toFixed(2),
  p99: +percentile(values, 99).toFixed(2),
});

/**
 * The CPU seconds (user and system) used so far by this process's descendants, from /proc:
 * the browser's processes (everything under a `chromium` process) and the rest (the server).
 * The work a first sync costs, which a loaded machine stretches less than its wall time.
 */
function cpuSecondsOfChildren() {
  const ticks = 100; // USER_HZ on Linux
  const processes = new Map();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const type = readFileSync(`/proc/${entry}/cmdline`, "utf8").match(/--type=([a-z-]+)/)?.[1] ?? "main";
      processes.set(Number(entry), { name, type, parent: Number(fields[1]), cpu: (Number(fields[11]) + Number(fields[12])) / ticks });
    } catch {}
  }
  const totals = { browser: 0, other: 0, byType: {} };
  for (const [pid, info] of processes) {
    let inBrowser = false;
    for (let at = pid, hops = 0; at && hops < 50; hops++) {
      if (at === process.pid) {
        totals[inBrowser ? "browser" : "other"] += info.cpu;
        if (inBrowser) totals.byType[info.type] = (totals.byType[info.type] ?? 0) + info.cpu;
        break;
      }
      const here = processes.get(at);
      if (!here) break;
      if (here.name.startsWith("chrom")) inBrowser = true;
      at = here.parent;
    }
  }
  return totals;
}

/**
 * Where a CPU profile's time went, in ms: the main thread idle, the app's wasm, the IndexedDB
 * and JSON calls it makes, garbage collection, and the rest.
 */
function timeByKind(profile) {
  const kinds = {};
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  profile.samples.forEach((id, index) => {
    const frame = byId.get(id).callFrame;
    const url = frame.url ?? "";
    const kind =
      frame.functionName === "(idle)"
        ? "idle"
        : frame.functionName === "(garbage collector)"
          ? "gc"
          : frame.functionName === "(program)"
            ? "browser (program)"
            : url.endsWith(".wasm") || url.startsWith("wasm://")
              ? "wasm"
              : ["put", "get", "getAll", "delete", "count", "transaction", "objectStore"].includes(frame.functionName)
                ? `IndexedDB ${frame.functionName}`
                : frame.functionName === "parse" || frame.functionName === "stringify"
                  ? `JSON.${frame.functionName}`
                  : "other JavaScript";
    kinds[kind] = (kinds[kind] ?? 0) + (profile.timeDeltas[index] ?? 0) / 1000;
  });
  return Object.fromEntries(
    Object.entries(kinds)
      .sort((a, b) => b[1] - a[1])
      .map(([kind, ms]) => [kind, Math.round(ms)]),
  );
}

/** In the page: scans `codes` one by one as a scanner types them, timing Enter to paint. */
function timeScans(codes) {
  return window.__benchScans(codes);
}

/**
 * The `count` slowest scans of a trace (their `scan` user timings), each with the main
 * thread's longest work between its Enter and its frame: the page's tasks and what they
 * spent their time on (script, style, layout, paint, garbage collection, IndexedDB).
 */
function slowScansInTrace(buffer, count) {
  const { traceEvents } = JSON.parse(buffer.toString("utf8"));
  const threadNames = new Map(
    traceEvents
      .filter((e) => e.ph === "M" && e.name === "thread_name")
      .map((e) => [`${e.pid}:${e.tid}`, e.args.name]),
  );
  const scans = [];
  const begins = new Map();
  for (const e of traceEvents) {
    if (e.cat !== "blink.user_timing" || e.name !== "scan") continue;
    const key = `${e.pid}:${e.id ?? e.id2?.local}`;
    if (e.ph === "b") begins.set(key, e);
    if (e.ph === "e" && begins.has(key)) {
      const begin = begins.get(key);
      scans.push({ pid: begin.pid, start: begin.ts, end: e.ts, ms: (e.ts - begin.ts) / 1000 });
      begins.delete(key);
    }
  }
  // The main thread's CPU time per scan over all the traced scans, by the kind of work (the
  // trace's thread durations of the renderer's top-level work: the Enter's task, IndexedDB's
  // replies, the frame's style, layout and paint...), to compare builds on what they do
  // rather than on when a loaded machine lets them do it.
  const first = Math.min(...scans.map((scan) => scan.start));
  const last = Math.max(...scans.map((scan) => scan.end));
  const cpuByKind = {};
  for (const e of traceEvents) {
    if (e.ph !== "X" || e.ts < first || e.ts > last || threadNames.get(`${e.pid}:${e.tid}`) !== "CrRendererMain") continue;
    if (!["TimerFire", "Receive mojo reply", "EventDispatch", "FireAnimationFrame", "UpdateLayoutTree", "Layout", "PrePaint", "Paint", "Layerize", "MajorGC", "MinorGC"].includes(e.name)) continue;
    cpuByKind[e.name] = (cpuByKind[e.name] ?? 0) + (e.tdur ?? e.dur) / 1000;
  }
  const perScan = Object.fromEntries(
    Object.entries(cpuByKind)
      .sort((a, b) => b[1] - a[1])
      .map(([kind, ms]) => [kind, +(ms / scans.length).toFixed(3)]),
  );
  // Whether each scan's IndexedDB answer was there at its Enter (no IndexedDB reply between
  // the Enter and the frame) or came after it, and the main thread's CPU time of the task that
  // put the line on the bill: the Enter's (answer ready) or the reply's (answer late).
  const mainTasks = traceEvents
    .filter((e) => e.ph === "X" && threadNames.get(`${e.pid}:${e.tid}`) === "CrRendererMain")
    .filter((e) => e.name === "TimerFire" || (e.name === "Receive mojo reply" && e.args?.chrome_mojo_event_info?.mojo_interface_tag === "blink.mojom.IDBDatabase"));
  const ready = [];
  const late = [];
  for (const scan of scans) {
    const reply = mainTasks.find((e) => e.name !== "TimerFire" && e.ts >= scan.start && e.ts < scan.end);
    const enter = mainTasks.find((e) => e.name === "TimerFire" && e.ts <= scan.start && e.ts + e.dur >= scan.start);
    if (reply) late.push(((reply.tdur ?? reply.dur) / 1000));
    else if (enter) ready.push(((enter.tdur ?? enter.dur) / 1000));
  }
  const middle = (values) => (values.length ? +percentile(values, 50).toFixed(2) : null);
  const lookahead = {
    readyAtEnter: ready.length,
    lateAfterEnter: late.length,
    lineTaskCpuMsP50WhenReady: middle(ready),
    lineTaskCpuMsP50WhenLate: middle(late),
  };
  scans.sort((a, b) => b.ms - a.ms);
  const slowest = scans.slice(0, count).map((scan) => {
    const work = traceEvents
      .filter(
        (e) =>
          e.ph === "X" &&
          e.pid === scan.pid &&
          e.dur >= 300 &&
          e.ts < scan.end &&
          e.ts + e.dur > scan.start &&
          e.name !== "ThreadControllerImpl::RunTask" &&
          threadNames.get(`${e.pid}:${e.tid}`) === "CrRendererMain",
      )
      .sort((a, b) => a.ts - b.ts)
      .slice(0, 25)
      .map((e) => `${((e.ts - scan.start) / 1000).toFixed(1)}+${(e.dur / 1000).toFixed(1)} ${e.name}`);
    return { ms: +scan.ms.toFixed(1), work };
  });
  return { mainThreadCpuMsPerScan: perScan, lookahead, slowest };
}

async function installProbes(page) {
  await page.evaluate(() => {
    const painted = () => new Promise((resolve) => requestAnimationFrame(() => resolve(performance.now())));
    // The frame a change is drawn in, by its animation frame's time stamp (the same for every
    // callback of one frame): `firstFrame()` at the Enter, `paintedFrame()` once the DOM shows
    // the change. Equal stamps: the change made the first frame after the Enter.
    const frameStamp = () => new Promise((resolve) => requestAnimationFrame((stamp) => resolve(stamp)));
    const paintedFrame = () =>
      new Promise((resolve) => requestAnimationFrame((stamp) => resolve({ at: performance.now(), stamp })));
    // Frames between the first one after the Enter and the one the change was drawn in.
    const framesLate = (first, drawn) => Math.max(0, Math.round((drawn - first) / (1000 / 60)));
    // Waits for the DOM to pass `test`; a step that never does fails the run after 20 s rather
    // than hanging it.
    const until = (test, what = String(test)) =>
      new Promise((resolve, reject) => {
        if (test()) return resolve();
        const timer = setTimeout(() => {
          observer.disconnect();
          const notice = document.querySelector(".counter-notice")?.textContent ?? "no notice";
          const field = document.querySelector("[data-testid=scan-field]")?.value ?? "";
          reject(new Error(`bench-counter: not within 20 s: ${what} (notice: ${notice}; scan field: "${field}")`));
        }, 20_000);
        const observer = new MutationObserver(() => {
          if (test()) {
            observer.disconnect();
            clearTimeout(timer);
            resolve();
          }
        });
        observer.observe(document.body, { childList: true, subtree: true, characterData: true, attributes: true });
      });
    const keyDown = (key, code) => new KeyboardEvent("keydown", { key, code, bubbles: true, cancelable: true });
    const dispatch = (event) => (document.activeElement ?? document.body).dispatchEvent(event);
    const press = (key, code) => dispatch(keyDown(key, code));
    // A scan as a scanner sends it: the digits back to back, then its Enter (returned, for the
    // caller to dispatch a moment later). Every event is made at once, so their time stamps,
    // which the scanner detector reads as when the keys were pressed, stay a scanner's few
    // milliseconds apart even when a loaded machine stretches the pause before the Enter past
    // the detector's 100 ms (at a load of 12 it did, and the code went to the field as typing).
    const typeCode = (code) => {
      const keys = [...code].map((digit) => keyDown(digit, `Digit${digit}`));
      const enter = keyDown("Enter", "Enter");
      keys.forEach(dispatch);
      return enter;
    };
    const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
    // Every IndexedDB write transaction the page opens, to tell when sync work has stopped.
    const cartSignature = () =>
      [...document.querySelectorAll("[data-testid=cart-line-quantity]")].map((e) => e.value).join(",");
    window.__benchScans = async (codes) => {
      const times = [];
      for (const [index, code] of codes.entries()) {
        if (index % 20 === 0) {
          press("Escape", "Escape");
          await until(() => document.querySelectorAll("[data-testid=cart-line]").length === 0);
        }
        // The timing starts when the Enter is dispatched, 2 ms after the digits.
        const enter = typeCode(code);
        await pause(2);
        const before = cartSignature();
        const start = performance.now();
        const first = frameStamp();
        dispatch(enter);
        await until(() => cartSignature() !== before);
        const shown = performance.now() - start;
        const drawn = await paintedFrame();
        performance.measure("scan", { start, end: drawn.at, detail: { index } });
        times.push({ shown, painted: drawn.at - start, framesLate: framesLate(await first, drawn.stamp) });
      }
      return times;
    };
    // The floor of a scan: the same key events made the same way, the Enter 2 ms after the
    // digits, timed the same way, to a listener that reads the code by `KeyboardEvent.code`,
    // gets the product by the barcode index on its own open connection and appends a line
    // (name, quantity field, price) to a list in the page: raw IndexedDB and DOM calls, no
    // framework, no bill. The keys go to an element outside the document, so the app's own
    // scanner (on window) never sees them.
    window.__rawScans = async (codes) => {
      const db = await new Promise((resolve, reject) => {
        const open = indexedDB.open("counterbook");
        open.onsuccess = () => resolve(open.result);
        open.onerror = () => reject(open.error);
      });
      const list = document.createElement("ul");
      document.body.append(list);
      let digits = "";
      const onKey = (event) => {
        if (event.code.startsWith("Digit")) {
          digits += event.code.slice(5);
          return;
        }
        if (event.code !== "Enter") return;
        const code = digits;
        digits = "";
        const get = db.transaction("products").objectStore("products").index("barcode").get(code);
        get.onsuccess = () => {
          const product = get.result;
          const line = document.createElement("li");
          const name = document.createElement("span");
          name.textContent = product?.name ?? code;
          const quantity = document.createElement("input");
          quantity.value = "1";
          const amount = document.createElement("span");
          amount.textContent = String(product?.price ?? "");
          line.append(name, quantity, amount);
          list.append(line);
        };
      };
      const keys = document.createElement("div");
      keys.addEventListener("keydown", onKey);
      const times = [];
      try {
        for (const code of codes) {
          [...code].forEach((digit) => keys.dispatchEvent(keyDown(digit, `Digit${digit}`)));
          const enter = keyDown("Enter", "Enter");
          await pause(2);
          const before = list.childElementCount;
          const start = performance.now();
          const first = frameStamp();
          keys.dispatchEvent(enter);
          await until(() => list.childElementCount !== before);
          const shown = performance.now() - start;
          const drawn = await paintedFrame();
          times.push({ shown, painted: drawn.at - start, framesLate: framesLate(await first, drawn.stamp) });
        }
      } finally {
        list.remove();
        db.close();
      }
      return times;
    };
    window.__benchSearches = async (prefixes) => {
      const field = document.querySelector("[data-testid=scan-field]");
      const times = [];
      for (const prefix of prefixes) {
        field.value = "";
        field.dispatchEvent(new Event("input", { bubbles: true }));
        await until(() => !document.querySelector("[data-testid=search-results]"));
        const start = performance.now();
        field.value = prefix;
        field.dispatchEvent(new Event("input", { bubbles: true }));
        await until(() => document.querySelectorAll("[data-testid=search-result]").length > 0);
        const shown = performance.now() - start;
        times.push({ shown, painted: (await painted()) - start });
      }
      field.value = "";
      field.dispatchEvent(new Event("input", { bubbles: true }));
      return times;
    };
    // Sales back to back (`quiet` false: the next one rung up as soon as the receipt of the
    // last is closed, while the tablet still pushes it and stores the server's echo), or each
    // on a quiet tablet (no IndexedDB write for 300 ms before its Complete sale). With each, the
    // write transactions open when Complete sale was clicked: a sale's transaction waits for
    // those that overlap its stores.
    const quietFor = (ms) =>
      new Promise((resolve) => {
        const check = () =>
          window.__writesOpen === 0 && performance.now() - window.__lastWriteAt > ms ? resolve() : setTimeout(check, 20);
        check();
      });
    window.__benchSales = async (codes, quiet) => {
      const times = [];
      for (const code of codes) {
        const enter = typeCode(code);
        await pause(2);
        dispatch(enter);
        await until(() => document.querySelectorAll("[data-testid=cart-line]").length > 0);
        if (quiet) await quietFor(300);
        const writesOpen = window.__writesOpen;
        const start = performance.now();
        document.querySelector("[data-testid=complete-sale]").click();
        await until(() => document.querySelector("[data-testid=bill-number]"));
        const shown = performance.now() - start;
        times.push({ shown, painted: (await painted()) - start, writesOpen });
        document.querySelector("[data-testid=new-sale]").click();
        await until(() => !document.querySelector("[data-testid=receipt]"));
      }
      return times;
    };
    window.__rawLookups = async (codes, prefixes, limit) => {
      const db = await new Promise((resolve, reject) => {
        const open = indexedDB.open("counterbook");
        open.onsuccess = () => resolve(open.result);
        open.onerror = () => reject(open.error);
      });
      const request = (make) =>
        new Promise((resolve, reject) => {
          const r = make();
          r.onsuccess = () => resolve(r.result);
          r.onerror = () => reject(r.error);
        });
      const gets = [];
      for (const code of codes) {
        const start = performance.now();
        await request(() => db.transaction("products").objectStore("products").index("barcode").get(code));
        gets.push(performance.now() - start);
      }
      const ranges = [];
      const rangesPainted = [];
      const list = document.createElement("ul");
      document.body.append(list);
      for (const prefix of prefixes) {
        const key = prefix.toLowerCase();
        const start = performance.now();
        // The app's name search reads the same index: `byName`, keys `[nameKey, id]`.
        const found = await request(() =>
          db
            .transaction("products")
            .objectStore("products")
            .index("byName")
            .getAll(IDBKeyRange.bound([key], [key + "\uffff"]), limit),
        );
        ranges.push(performance.now() - start);
        list.replaceChildren(
          ...found.map((product) => {
            const item = document.createElement("li");
            item.textContent = `${product.name} ${product.sku ?? ""} ${product.price}`;
            return item;
          }),
        );
        rangesPainted.push((await painted()) - start);
      }
      list.remove();
      db.close();
      return { gets, ranges, rangesPainted };
    };
  });
}

/** A DevTools CPU profiler recording `page`, sampling every `intervalMicros`. */
async function startProfiler(context, page, intervalMicros) {
  const session = await context.newCDPSession(page);
  await session.send("Profiler.enable");
  await session.send("Profiler.setSamplingInterval", { interval: intervalMicros });
  await session.send("Profiler.start");
  return session;
}

/** One tablet's run on `size` products with the app built in `app`, named `build`. */
async function run(browser, size, app, build, serverBin) {
  // BENCH_COUNTER_DATA=dir keeps each size's seeded server in dir/<size> and reuses it on the
  // next run (seeding 100,000 products takes a minute); earlier runs' sales stay in it.
  const kept = process.env.BENCH_COUNTER_DATA ? join(process.env.BENCH_COUNTER_DATA, String(size)) : null;
  const reused = kept !== null && existsSync(join(kept, "seeded"));
  if (kept) mkdirSync(kept, { recursive: true });
  const server = await startServer({
    dataDir: kept ?? temporaryDirectory("counterbook-bench-counter-"),
    app,
    ...(serverBin ? { bin: serverBin } : {}),
  });
  try {
    const project = `bench-counter-${size}`;
    const products = catalogue(size);
    const seedStart = Date.now();
    if (!reused) await seedProducts(server.url, project, SHOP, products);
    if (kept) writeFileSync(join(kept, "seeded"), "");
    const seedSeconds = reused ? null : (Date.now() - seedStart) / 1000;

    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const url = appUrl(server.url, { endpoint: server.url, project, shop: SHOP, path: "/counter" });
    await page.addInitScript(() => {
      window.__lastWriteAt = performance.now();
      window.__writesOpen = 0;
      const transaction = IDBDatabase.prototype.transaction;
      IDBDatabase.prototype.transaction = function (stores, mode, ...rest) {
        const opened = transaction.call(this, stores, mode, ...rest);
        if (mode === "readwrite") {
          window.__writesOpen++;
          const done = () => {
            window.__writesOpen--;
            window.__lastWriteAt = performance.now();
          };
          opened.addEventListener("complete", done);
          opened.addEventListener("abort", done);
        }
        return opened;
      };
    });
    let profiler = null;
    if (PROFILE) {
      profiler = await startProfiler(context, page, 1000);
    }
    const cpuBefore = cpuSecondsOfChildren();
    const syncStart = Date.now();
    await page.goto(url);
    let held = 0;
    for (;;) {
      held = await countInStore(page, "products");
      if (held >= size || Date.now() - syncStart > FIRST_SYNC_DEADLINE_MS) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const syncSeconds = (Date.now() - syncStart) / 1000;
    const cpuAfter = cpuSecondsOfChildren();
    const firstSyncCpuSeconds = {
      browser: +(cpuAfter.browser - cpuBefore.browser).toFixed(2),
      server: +(cpuAfter.other - cpuBefore.other).toFixed(2),
      // The browser's by process type: main (where IndexedDB's backend runs), renderer, gpu, utility.
      browserByType: Object.fromEntries(
        Object.entries(cpuAfter.byType).map(([type, cpu]) => [type, +(cpu - (cpuBefore.byType[type] ?? 0)).toFixed(2)]),
      ),
    };
    let firstSyncProfile;
    if (profiler) {
      const { profile } = await profiler.send("Profiler.stop");
      writeFileSync(join(ARTIFACTS, `bench-counter-first-sync-${size}-${build.replace(/ /g, "-")}.cpuprofile`), JSON.stringify(profile));
      firstSyncProfile = { msByKind: timeByKind(profile), heaviest: heaviestFunctions(profile, 12) };
      await profiler.detach();
    }
    if (held < size) {
      await context.close();
      return { build, products: size, seedSeconds, firstSyncSeconds: null, heldAtDeadline: held, deadlineSeconds: syncSeconds };
    }
    // Quiet: no write transaction open, and none finished in the last second.
    const quietStart = Date.now();
    const quiet = await page
      .waitForFunction(
        () => window.__writesOpen === 0 && performance.now() - window.__lastWriteAt > 1000,
        null,
        { timeout: FIRST_SYNC_DEADLINE_MS, polling: 100 },
      )
      .then(() => true, () => false);
    // `null`: still writing at the deadline; the lookups are then measured beside sync work.
    const quietAfterSyncSeconds = quiet ? (Date.now() - quietStart) / 1000 : null;
    const synced = {
      build,
      products: size,
      seedSeconds,
      firstSyncSeconds: +syncSeconds.toFixed(2),
      firstSyncCpuSeconds,
      firstSyncProfile,
      quietAfterSyncSeconds,
    };
    if (SYNC_ONLY) {
      await context.close();
      return synced;
    }
    await page.getByTestId("scan-field").focus();
    await installProbes(page);

    const pick = (count) =>
      Array.from({ length: count }, (_, i) => products[Math.floor(((i * 7919) % size))]);
    const scanCodes = pick(SCANS).map((p) => p.barcodes[0]);
    const prefixes = pick(SEARCHES).map((p) => p.name.slice(0, 7));
    // Warm up once (first wasm paths, IndexedDB caches), then measure.
    await page.evaluate(timeScans, scanCodes.slice(0, 10));
    const tracePath = join(ARTIFACTS, `bench-counter-scans-${size}-${build.replace(/ /g, "-")}.json`);
    if (TRACE) {
      await browser.startTracing(page, {
        path: tracePath,
        // What DevTools' Performance panel records; more categories slow the page enough to
        // stretch a scan's keys past the scanner's gap.
        categories: ["devtools.timeline", "disabled-by-default-devtools.timeline.frame", "blink.user_timing", "toplevel"],
      });
    }
    if (TRACE) {
      // Tracing's start holds the page up a moment; the scans come after, on a quiet page.
      await page.waitForTimeout(1000);
      await page.evaluate(timeScans, scanCodes.slice(0, 10));
    }
    let scanProfiler = null;
    if (PROFILE) {
      scanProfiler = await startProfiler(context, page, 100);
    }
    // The page's main thread's CPU time over the measured scans (CDP Performance metrics,
    // durations in thread time): the app's own work per scan, which a loaded machine's
    // descheduling stretches far less than the wall time between an Enter and its frame.
    const metricsSession = await context.newCDPSession(page);
    await metricsSession.send("Performance.enable", { timeDomain: "threadTicks" });
    const mainThread = async () =>
      Object.fromEntries((await metricsSession.send("Performance.getMetrics")).metrics.map((m) => [m.name, m.value]));
    const threadBefore = await mainThread();
    const scans = await page.evaluate(timeScans, scanCodes);
    const threadAfter = await mainThread();
    await metricsSession.detach();
    const perScan = (...names) =>
      +((names.reduce((sum, name) => sum + threadAfter[name] - threadBefore[name], 0) * 1000) / scanCodes.length).toFixed(2);
    const scanMainThreadCpuMs = {
      thread: perScan("ThreadTime"),
      script: perScan("ScriptDuration"),
      styleAndLayout: perScan("RecalcStyleDuration", "LayoutDuration"),
    };
    let scanProfile;
    if (scanProfiler) {
      const { profile } = await scanProfiler.send("Profiler.stop");
      writeFileSync(join(ARTIFACTS, `bench-counter-scans-${size}-${build.replace(/ /g, "-")}.cpuprofile`), JSON.stringify(profile));
      scanProfile = { msByKind: timeByKind(profile), heaviest: heaviestFunctions(profile, 12) };
      await scanProfiler.detach();
    }
    const scanTrace = TRACE ? slowScansInTrace(await browser.stopTracing(), 5) : undefined;
    const searches = await page.evaluate((p) => window.__benchSearches(p), prefixes);
    const sales = await page.evaluate((c) => window.__benchSales(c, false), scanCodes.slice(0, SALES));
    let salesProfiler = null;
    if (PROFILE) {
      salesProfiler = await startProfiler(context, page, 100);
    }
    const quietSales = await page.evaluate((c) => window.__benchSales(c, true), scanCodes.slice(SALES, 2 * SALES));
    let quietSalesProfile;
    if (salesProfiler) {
      const { profile } = await salesProfiler.send("Profiler.stop");
      writeFileSync(join(ARTIFACTS, `bench-counter-quiet-sales-${size}-${build.replace(/ /g, "-")}.cpuprofile`), JSON.stringify(profile));
      quietSalesProfile = { msByKind: timeByKind(profile), heaviest: heaviestFunctions(profile, 15) };
      await salesProfiler.detach();
    }
    const raw = await page.evaluate(
      ([codes, prefixes]) => window.__rawLookups(codes, prefixes, 8),
      [scanCodes, prefixes],
    );
    await page.evaluate((codes) => window.__rawScans(codes), scanCodes.slice(0, 10));
    const rawScans = await page.evaluate((codes) => window.__rawScans(codes), scanCodes);
    await context.close();
    const shown = (timings) => summary(timings.map((t) => t.shown));
    const paint = (timings) => summary(timings.map((t) => t.painted));
    // The share of scans whose line was drawn in the first frame after the Enter.
    const inFirstFrame = (timings) => +(timings.filter((t) => t.framesLate === 0).length / timings.length).toFixed(3);
    return {
      ...synced,
      scanShownMs: shown(scans),
      scanMainThreadCpuMs,
      scanProfile,
      scanTrace,
      scanMs: paint(scans),
      scanInFirstFrame: inFirstFrame(scans),
      rawScanShownMs: shown(rawScans),
      rawScanMs: paint(rawScans),
      rawScanInFirstFrame: inFirstFrame(rawScans),
      rawBarcodeGetMs: summary(raw.gets),
      searchShownMs: shown(searches),
      searchMs: paint(searches),
      rawNameRangeMs: summary(raw.ranges),
      rawNameRangePaintedMs: summary(raw.rangesPainted),
      completeToReceiptShownMs: shown(sales),
      completeToReceiptMs: paint(sales),
      // How many of the back-to-back sales found write transactions open at their click.
      salesBehindWrites: sales.filter((t) => t.writesOpen > 0).length,
      quietCompleteToReceiptShownMs: shown(quietSales),
      quietCompleteToReceiptMs: paint(quietSales),
      quietSalesProfile,
    };
  } finally {
    await server.stop();
  }
}

const builds = [...(BASELINE ? [["baseline", BASELINE, BASELINE_SERVER]] : []), ["this build", DIST, null]];
const browser = await launchBrowser();
const results = [];
try {
  for (const size of SIZES) {
    for (let round = 0; round < ROUNDS; round++) {
      for (const [build, app, serverBin] of builds) {
        const result = { ...(await run(browser, size, app, build, serverBin)), round, loadAverage: loadavg().map((l) => +l.toFixed(1)) };
        results.push(result);
        console.log(JSON.stringify(result));
      }
    }
  }
} finally {
  await browser.close();
}
const machine = `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB`;
console.log(`\nmachine: ${machine}`);
const pair = (s) => (s ? `${s.p50}/${s.p99}` : "-");
const ratio = (a, b) => (a && b ? `${(a.p50 / b.p50).toFixed(2)}×/${(a.p99 / b.p99).toFixed(2)}×` : "-");
console.log("All times p50/p99 in ms; shown = the DOM shows it, painted = the next animation frame after.");
console.log("| build | products | first sync s | scan shown | scan painted | scan main-thread CPU ms (script, style+layout) | raw get | search shown | search painted | raw range | raw range painted | search painted ÷ raw painted | complete→receipt shown | complete→receipt painted | load average |");
console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
for (const r of results) {
  if (r.firstSyncSeconds === null) {
    console.log(`| ${r.build} | ${r.products} | not done: ${r.heldAtDeadline} products after ${r.deadlineSeconds} s |`);
    continue;
  }
  if (!r.scanMs) {
    console.log(`| ${r.build} | ${r.products} | ${r.firstSyncSeconds} (CPU: browser ${r.firstSyncCpuSeconds.browser} s, server ${r.firstSyncCpuSeconds.server} s; quiet ${r.quietAfterSyncSeconds} s after) | | | | | | | | | | | | ${r.loadAverage.join(" ")} |`);
    continue;
  }
  console.log(
    `| ${r.build} | ${r.products} | ${r.firstSyncSeconds} | ${pair(r.scanShownMs)} | ${pair(r.scanMs)} | ${r.scanMainThreadCpuMs ? `${r.scanMainThreadCpuMs.thread} (${r.scanMainThreadCpuMs.script}, ${r.scanMainThreadCpuMs.styleAndLayout})` : "-"} | ${pair(r.rawBarcodeGetMs)} | ${pair(r.searchShownMs)} | ${pair(r.searchMs)} | ${pair(r.rawNameRangeMs)} | ${pair(r.rawNameRangePaintedMs)} | ${ratio(r.searchMs, r.rawNameRangePaintedMs)} | ${pair(r.completeToReceiptShownMs)} | ${pair(r.completeToReceiptMs)} | ${r.loadAverage.join(" ")} |`,
  );
}
// A scan beside its floor, timed the same way (see __rawScans), and how often each made the
// first frame after the Enter: the painted time of a change that makes that frame is the wait
// for it, anything from 0 to a frame (16.7 ms at 60 Hz) by where in its frame the Enter came.
console.log("\n| build | products | scan shown | scan painted | scan in the first frame | raw scan shown | raw scan painted | raw scan in the first frame | scan painted ÷ raw painted | load average |");
console.log("|---|---|---|---|---|---|---|---|---|---|");
const percent = (share) => (share == null ? "-" : `${(share * 100).toFixed(1)}%`);
for (const r of results.filter((r) => r.rawScanMs)) {
  console.log(
    `| ${r.build} | ${r.products} | ${pair(r.scanShownMs)} | ${pair(r.scanMs)} | ${percent(r.scanInFirstFrame)} | ${pair(r.rawScanShownMs)} | ${pair(r.rawScanMs)} | ${percent(r.rawScanInFirstFrame)} | ${ratio(r.scanMs, r.rawScanMs)} | ${r.loadAverage.join(" ")} |`,
  );
}
// Complete sale to the receipt, back to back (each sale rung up as soon as the last one's
// receipt is closed, beside the sync work of the sale before) and each on a quiet tablet.
console.log("\n| build | products | back to back shown | back to back painted | of which behind open writes | quiet shown | quiet painted | load average |");
console.log("|---|---|---|---|---|---|---|---|");
for (const r of results.filter((r) => r.completeToReceiptMs)) {
  console.log(
    `| ${r.build} | ${r.products} | ${pair(r.completeToReceiptShownMs)} | ${pair(r.completeToReceiptMs)} | ${r.salesBehindWrites} of ${SALES} | ${pair(r.quietCompleteToReceiptShownMs)} | ${pair(r.quietCompleteToReceiptMs)} | ${r.loadAverage.join(" ")} |`,
  );
}
if (BASELINE) {
  // This build over the baseline, per size, from the medians of the rounds.
  const median = (values) => {
    const sorted = values.filter((v) => v != null).sort((a, b) => a - b);
    if (!sorted.length) return null;
    const middle = Math.floor(sorted.length / 2);
    return +(sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2).toFixed(2);
  };
  const figures = {
    "first sync": (r) => r.firstSyncSeconds,
    "first sync browser CPU s": (r) => r.firstSyncCpuSeconds?.browser,
    "first sync server CPU s": (r) => r.firstSyncCpuSeconds?.server,
    "quiet after first sync s": (r) => r.quietAfterSyncSeconds,
    "scan shown p50": (r) => r.scanShownMs?.p50,
    "scan shown p99": (r) => r.scanShownMs?.p99,
    "scan painted p50": (r) => r.scanMs?.p50,
    "scan painted p99": (r) => r.scanMs?.p99,
    "scan in the first frame": (r) => r.scanInFirstFrame,
    "scan main-thread CPU ms": (r) => r.scanMainThreadCpuMs?.thread,
    "scan script ms": (r) => r.scanMainThreadCpuMs?.script,
    "scan style+layout ms": (r) => r.scanMainThreadCpuMs?.styleAndLayout,
    "search painted p99": (r) => r.searchMs?.p99,
    "complete→receipt painted p99": (r) => r.completeToReceiptMs?.p99,
    "quiet complete→receipt painted p99": (r) => r.quietCompleteToReceiptMs?.p99,
  };
  console.log("\nThis build ÷ baseline (medians of the rounds):");
  for (const size of SIZES) {
    const of = (build) => results.filter((r) => r.products === size && r.build === build);
    const ratios = Object.entries(figures).flatMap(([name, figure]) => {
      const [mine, theirs] = [median(of("this build").map(figure)), median(of("baseline").map(figure))];
      return mine && theirs ? [`${name} ${mine} ÷ ${theirs} = ${(mine / theirs).toFixed(2)}`] : [];
    });
    console.log(`${size}: ${ratios.join("; ")}`);
  }
}
writeFileSync(join(ARTIFACTS, "bench-counter.json"), JSON.stringify({ machine, results }, null, 2));
