// Real-time listening (issue 5): tablet B shows tablet A's new product through its WebChannel
// Listen stream, well before its three-second fallback poll could, and without any `:runQuery`
// meanwhile; a hidden tab holds no listen connection and reopens one within a second of
// becoming visible. Against counterbook-server and Google's Firestore emulator alike. With
// `?realtime=off` the tablet opens no listen channel and falls back to the periodic pull.

import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  ARTIFACTS,
  addProduct,
  appUrl,
  launchBrowser,
  startEmulator,
  startServer,
  temporaryDirectory,
  waitForBadge,
  waitForProducts,
} from "./harness.mjs";

/** B must show A's change within this long of A's commit reply (the poll runs every 3 s). */
const DEADLINE_MILLIS = 1_500;

const isBackChannel = (request) =>
  request.url().includes("/Listen/channel?") && request.url().includes("RID=rpc");

/** Tracks a page's listen back channels (open now) and its `:runQuery` requests (times, and
 * the collections they pulled). */
function watchRequests(page) {
  const seen = { openBackChannels: new Set(), runQueries: [], pulledCollections: new Set() };
  page.on("request", (request) => {
    if (isBackChannel(request)) seen.openBackChannels.add(request);
    if (request.url().includes(":runQuery")) {
      seen.runQueries.push(Date.now());
      const collection = JSON.parse(request.postData() ?? "{}").structuredQuery?.from?.[0]?.collectionId;
      if (collection) seen.pulledCollections.add(collection);
    }
  });
  const ended = (request) => seen.openBackChannels.delete(request);
  page.on("requestfinished", ended);
  page.on("requestfailed", ended);
  return seen;
}

async function waitForRealtime(page, timeout = 20_000) {
  await page.waitForFunction(
    () => document.querySelector("[data-testid=sync-badge]")?.dataset.realtime === "true",
    null,
    { timeout },
  );
}

/** Sets what `document.visibilityState` says and tells the page, as a tab switch does. */
async function setVisibility(page, state) {
  await page.evaluate((state) => {
    Object.defineProperty(document, "visibilityState", { value: state, configurable: true });
    Object.defineProperty(document, "hidden", { value: state === "hidden", configurable: true });
    document.dispatchEvent(new Event("visibilitychange"));
  }, state);
}

async function until(condition, timeout, what) {
  const deadline = Date.now() + timeout;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeout} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("a change on one tablet shows on another in real time", () => {
  let server;
  let emulator;
  let browser;

  before(async () => {
    [server, emulator, browser] = await Promise.all([
      startServer({ dataDir: temporaryDirectory("counterbook-realtime-") }),
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
      const project = `e2e-realtime-${backend}-${Date.now()}`;
      const url = appUrl(server.url, { endpoint, project, shop: "kirana-1" });
      const tabletA = await browser.newContext();
      const tabletB = await browser.newContext();
      try {
        const pageA = await tabletA.newPage();
        const pageB = await tabletB.newPage();
        const seenByB = watchRequests(pageB);
        await Promise.all([pageA.goto(url), pageB.goto(url)]);
        await Promise.all([
          waitForBadge(pageA, { connection: "Online", pending: 0 }),
          waitForBadge(pageB, { connection: "Online", pending: 0 }),
        ]);
        await Promise.all([waitForRealtime(pageA), waitForRealtime(pageB)]);

        for (const [round, name] of ["Chai 250g", "Rusk 200g", "Poha 500g"].entries()) {
          const isCommit = (r) => r.url().includes(":commit");
          const commitSent = pageA.waitForRequest(isCommit).then(() => Date.now());
          const commitReplied = pageA.waitForResponse(isCommit).then(() => Date.now());
          await addProduct(pageA, name, "40");
          const [sentAt, repliedAt] = await Promise.all([commitSent, commitReplied]);
          const expected = ["Chai 250g", "Rusk 200g", "Poha 500g"].slice(0, round + 1);
          await waitForProducts(pageB, expected, DEADLINE_MILLIS - (Date.now() - repliedAt));
          const shownAt = Date.now();
          const polls = seenByB.runQueries.filter((at) => at >= sentAt - 50 && at <= shownAt);
          assert.deepEqual(polls, [], "B pulled nothing: the listener delivered the change");
          console.log(
            `${backend}: ${name} on B ${shownAt - repliedAt} ms after A's commit reply`,
          );
        }
        // B again, with the catalogue on it: it pulls what it missed, then listens only to what
        // was stamped after its pull (`updatedAt` after the checkpoint, so the first snapshot is
        // not the whole collection), and a change still arrives by the listener alone.
        // The target follows B's pull of what it missed, so it may be sent after the channel is
        // already open (with the devices target) and the badge says real time.
        const listenBodies = [];
        let sawUpdatedAtTarget;
        const updatedAtTarget = new Promise((resolve) => (sawUpdatedAtTarget = resolve));
        pageB.on("request", (request) => {
          if (request.url().includes("/Listen/channel") && request.postData()) {
            const body = decodeURIComponent(request.postData().replace(/\+/g, " "));
            listenBodies.push(body);
            if (/"fieldPath":\s*"updatedAt"/.test(body)) sawUpdatedAtTarget();
          }
        });
        await pageB.reload();
        await waitForBadge(pageB, { connection: "Online", pending: 0 });
        await waitForRealtime(pageB);
        let targetDeadline;
        const named = await Promise.race([
          updatedAtTarget.then(() => true),
          new Promise((resolve) => (targetDeadline = setTimeout(() => resolve(false), 10_000))),
        ]);
        clearTimeout(targetDeadline);
        assert.ok(named, `B's products target names updatedAt; B sent: ${listenBodies.join("\n")}`);
        const commitSent = pageA.waitForRequest((r) => r.url().includes(":commit")).then(() => Date.now());
        await addProduct(pageA, "Jeera 100g", "55");
        const sentAt = await commitSent;
        await waitForProducts(pageB, ["Chai 250g", "Rusk 200g", "Poha 500g", "Jeera 100g"], DEADLINE_MILLIS);
        const shownAt = Date.now();
        const polls = seenByB.runQueries.filter((at) => at >= sentAt - 50 && at <= shownAt);
        assert.deepEqual(polls, [], "B pulled nothing after the reload: the listener delivered it");
        await pageB.screenshot({ path: join(ARTIFACTS, `realtime-${backend}-b.png`) });
      } finally {
        await Promise.all([tabletA.close(), tabletB.close()]);
      }
    });
  }

  test("with real time off a tablet opens no listen channel and still gets changes by polling", async () => {
    const base = appUrl(server.url, {
      endpoint: server.url,
      project: "e2e-realtime-off",
      shop: "s1",
    });
    const tabletA = await browser.newContext();
    const tabletB = await browser.newContext();
    try {
      const pageA = await tabletA.newPage();
      const pageB = await tabletB.newPage();
      const seenByB = watchRequests(pageB);
      let listenRequests = 0;
      pageB.on("request", (request) => {
        if (request.url().includes("/Listen/channel")) listenRequests += 1;
      });
      await Promise.all([pageA.goto(base), pageB.goto(`${base}&realtime=off`)]);
      await waitForBadge(pageB, { connection: "Online", pending: 0 });
      await addProduct(pageA, "Polled tea", "30");
      await waitForProducts(pageB, ["Polled tea"], 10_000);
      assert.ok(seenByB.runQueries.length > 0, "B pulled");
      assert.equal(listenRequests, 0, "B never opened a listen channel");
      assert.equal(
        await pageB.getByTestId("sync-badge").getAttribute("data-realtime"),
        "false",
      );
    } finally {
      await Promise.all([tabletA.close(), tabletB.close()]);
    }
  });

  test("battery saver opens no listen channel and pulls only on its slow timer or when shown", async () => {
    const base = appUrl(server.url, { endpoint: server.url, project: "e2e-saver", shop: "s1" });
    const tablet = await browser.newContext();
    try {
      const page = await tablet.newPage();
      const seen = watchRequests(page);
      let listenRequests = 0;
      page.on("request", (request) => {
        if (request.url().includes("/Listen/channel")) listenRequests += 1;
      });
      await page.goto(`${base}&batterySaver=on&batterySaverMinutes=5`);
      await waitForBadge(page, { connection: "Online", pending: 0 });
      // The first pull: the products, the customers and the shop profile.
      await until(() => seen.pulledCollections.size >= 3, 5_000, "the first pull");
      const first = seen.runQueries.length;
      // Three ticks of the ordinary 3-second poll would pull three more times.
      const watchedFrom = Date.now();
      await until(() => Date.now() - watchedFrom > 9_500, 10_000, "watching the timer");
      assert.equal(seen.runQueries.length, first, "no pull before five minutes");
      await setVisibility(page, "hidden");
      await setVisibility(page, "visible");
      await until(() => seen.runQueries.length > first, 2_000, "a catch-up pull when shown");
      assert.equal(listenRequests, 0, "battery saver never listens");
    } finally {
      await tablet.close();
    }
  });

  test("a hidden tab holds no listen connection and reopens one within a second of showing", async () => {
    const url = appUrl(server.url, { endpoint: server.url, project: "e2e-hidden", shop: "s1" });
    const tablet = await browser.newContext();
    try {
      const page = await tablet.newPage();
      const seen = watchRequests(page);
      await page.goto(url);
      await waitForRealtime(page);
      assert.ok(seen.openBackChannels.size >= 1, "a visible leader listens");

      await setVisibility(page, "hidden");
      // Closed after the grace period (2 s), and nothing reopens while hidden.
      await until(() => seen.openBackChannels.size === 0, 5_000, "the back channel closes");
      const closedAt = Date.now();
      await until(() => Date.now() - closedAt > 3_000, 4_000, "waiting while hidden");
      assert.equal(seen.openBackChannels.size, 0, "no listen connection while hidden");

      await setVisibility(page, "visible");
      const shownAt = Date.now();
      await until(() => seen.openBackChannels.size >= 1, 1_000, "a back channel reopens");
      console.log(`back channel reopened ${Date.now() - shownAt} ms after becoming visible`);
      await waitForRealtime(page, 5_000);
    } finally {
      await tablet.close();
    }
  });
});

test("the listener comes back after the server restarts and delivers in real time again", async () => {
  const dataDir = temporaryDirectory("counterbook-relisten-");
  let server = await startServer({ dataDir });
  const browser = await launchBrowser();
  try {
    const url = appUrl(server.url, { endpoint: server.url, project: "e2e-relisten", shop: "s1" });
    const pageA = await (await browser.newContext()).newPage();
    const pageB = await (await browser.newContext()).newPage();
    const seenByB = watchRequests(pageB);
    await Promise.all([pageA.goto(url), pageB.goto(url)]);
    await Promise.all([waitForRealtime(pageA), waitForRealtime(pageB)]);
    // The products page (a split part, its module fetched from this server) is up on both
    // before the server goes.
    await Promise.all([pageA.getByTestId("product-name").waitFor(), pageB.getByTestId("product-name").waitFor()]);

    // The server goes away (its listen sessions with it) and comes back on the same address.
    await server.stop();
    await pageB.waitForFunction(
      () => document.querySelector("[data-testid=sync-badge]")?.dataset.realtime === "false",
      null,
      { timeout: 20_000 },
    );
    server = await startServer({ dataDir, port: server.port });
    await Promise.all([waitForRealtime(pageA, 60_000), waitForRealtime(pageB, 60_000)]);

    const commitReplied = pageA
      .waitForResponse((r) => r.url().includes(":commit"))
      .then(() => Date.now());
    await addProduct(pageA, "After the restart", "12");
    const repliedAt = await commitReplied;
    const sentFrom = Date.now();
    await waitForProducts(pageB, ["After the restart"], DEADLINE_MILLIS);
    const polls = seenByB.runQueries.filter((at) => at >= repliedAt - 50 && at <= Date.now());
    assert.deepEqual(polls, [], "delivered by the reopened listener, not by a poll");
    console.log(`after a restart: on B ${Date.now() - sentFrom} ms after A's commit reply`);
  } finally {
    await browser.close();
    await server.stop();
  }
});
