// A unit goes with the sign-in of the person who made it (issue 10). Two cashiers share one
// tablet on counterbook-server with 4-second ID tokens; offline, Ravi sells twice and Meena
// once, while the owner disables and enables Ravi (which ends his refresh token). Back online,
// Meena's sale is sent with her own token, Ravi's wait with "Sign in again to send 2 sales"
// naming him, and are never sent with Meena's token; once he signs in again they reach the
// server exactly once.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { countRowsInSqlite, launchBrowser, startAccountsServer, temporaryDirectory } from "./harness.mjs";
import { ean13, productFields, screenshots, waitForIdlePage, waitForProductCount } from "./counter-helpers.mjs";
import {
  asPerson,
  billsOnServer,
  sellOne,
  setUpShopOverRest,
  signInTwoPeople,
  switchTo,
  waitForPending,
} from "./people-helpers.mjs";

const PROJECT = "counterbook";
const SHOP = "kirana-2";
const OWNER = { email: "owner@example.com", password: "owner-secret-1" };
const RAVI = { email: "ravi@example.com", password: "ravi-secret-1" };
const MEENA = { email: "meena@example.com", password: "meena-secret-1" };
/** ID tokens live this long: the offline step outlasts one. */
const TOKEN_SECONDS = 4;
const TEA = ean13("890100000002");

function cashiersOf(bills) {
  return bills.map((bill) => bill.cashier).sort();
}

/**
 * Every commit the page sends carrying a bill: whose token it carries (the email claim of its
 * bearer token) and who sold the bill, refused commits included.
 */
function recordBillCommits(page) {
  const sent = [];
  page.on("request", (request) => {
    if (!request.url().endsWith(":commit")) return;
    const token = request.headers().authorization?.replace(/^Bearer /, "");
    const claims = token ? JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString()) : {};
    for (const write of JSON.parse(request.postData()).writes) {
      if (write.update?.name.includes("/bills/")) {
        sent.push({ tokenOf: claims.email, soldBy: write.update.fields.cashier?.stringValue });
      }
    }
  });
  return sent;
}

describe("each unit goes with its own person's sign-in", () => {
  let server;
  let browser;
  before(async () => {
    [server, browser] = await Promise.all([
      startAccountsServer({
        dataDir: temporaryDirectory("counterbook-senders-"),
        tokenLifetimeSeconds: TOKEN_SECONDS,
      }),
      launchBrowser(),
    ]);
    await setUpShopOverRest(server, {
      shop: SHOP,
      shopName: "Kirana Two",
      owner: OWNER,
      ownerName: "Asha",
      people: [
        { ...RAVI, displayName: "Ravi", role: "cashier" },
        { ...MEENA, displayName: "Meena", role: "cashier" },
      ],
      products: [
        {
          id: "00000000-0000-7000-8000-000000000002",
          fields: productFields({ name: "Tata Tea", price: 12000, barcodes: [TEA], stock: 50 }),
        },
      ],
    });
  });

  after(async () => {
    await Promise.all([browser?.close(), server?.stop()]);
  });

  test("one cashier's ended sign-in holds back only their own sales", async () => {
    const tablet = await browser.newContext({ viewport: { width: 800, height: 1280 } });
    try {
      const page = await tablet.newPage();
      const billCommits = recordBillCommits(page);
      await page.goto(`${server.url}/counter?lockMinutes=0&shop=${SHOP}`);
      await signInTwoPeople(page, [RAVI, "2222"], [MEENA, "3333"]);
      await page.getByLabel("Scan or search").waitFor();
      await waitForProductCount(page, 1);
      await waitForIdlePage(page);

      // Offline: Ravi sells twice, Meena once; meanwhile the owner ends Ravi's refresh token.
      await tablet.setOffline(true);
      await switchTo(page, RAVI.email, "2222");
      await sellOne(page, TEA);
      await sellOne(page, TEA);
      await switchTo(page, MEENA.email, "3333");
      await sellOne(page, TEA);
      await waitForPending(page, 3);
      const { people } = await asPerson(server.url, OWNER, "GET", `/counterbook/v1/shops/${SHOP}/people`);
      const raviId = people.find((person) => person.email === RAVI.email).userId;
      for (const disabled of [true, false]) {
        await asPerson(server.url, OWNER, "PATCH", `/counterbook/v1/shops/${SHOP}/people/${raviId}`, {
          disabled,
        });
      }
      // A clock condition, not a synchronisation: both ID tokens have expired by then.
      await new Promise((resolve) => setTimeout(resolve, (TOKEN_SECONDS + 1) * 1000));
      await tablet.setOffline(false);

      // Meena's sale goes with her own (refreshed) token; Ravi's two wait, naming him.
      const banner = page.locator(`[data-testid=sign-in-again][data-email="${RAVI.email}"]`);
      await banner.waitFor({ timeout: 30_000 });
      await waitForPending(page, 2);
      assert.equal(
        await banner.getByTestId("sign-in-again-message").textContent(),
        "Sign in again to send 2 sales",
      );
      assert.match(await banner.getByTestId("sign-in-again-who").textContent(), /ravi@example\.com/);
      assert.equal(await page.getByTestId("sign-in-again").count(), 1, "Meena needs no sign-in");
      assert.deepEqual(cashiersOf(await billsOnServer(server, OWNER, SHOP)), [MEENA.email]);
      await screenshots(page, "sign-in-again-one-person");

      // Ravi signs in again: his two sales reach the server, exactly once each.
      await banner.getByTestId("sign-in-password").fill(RAVI.password);
      await banner.getByTestId("sign-in-submit").click();
      await banner.waitFor({ state: "detached", timeout: 30_000 });
      await waitForPending(page, 0);
      const bills = await billsOnServer(server, OWNER, SHOP);
      assert.deepEqual(cashiersOf(bills), [MEENA.email, RAVI.email, RAVI.email]);
      assert.equal(new Set(bills.map((bill) => bill.number)).size, 3, "three distinct bills");
      assert.equal(countRowsInSqlite(server.database, PROJECT).bills, 3, "none sent twice");
      // No bill ever left with another person's token, not even one the server refused.
      assert.ok(billCommits.length >= 3, JSON.stringify(billCommits));
      for (const commit of billCommits) assert.equal(commit.tokenOf, commit.soldBy, JSON.stringify(billCommits));
    } finally {
      await tablet.close();
    }
  });
});
