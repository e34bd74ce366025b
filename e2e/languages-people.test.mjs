// The screens of people at the counter in Arabic and Hindi (issue 10, Languages), on
// counterbook-server with accounts and 4-second ID tokens: a manager and a cashier sign in on
// one tablet; the cashier's void asks for the manager's approval (photographed), the owner
// ends the cashier's sign-in, and her next sale waits with the banner "Sign in again to send
// 1 sales" (photographed); then the same in Hindi, the approval asked from the bills page.
// Each photograph fails the test if the screen shows English (language-helpers.mjs). The
// screens before the shop (setting up, the sign-in form, the PIN) are not photographed here.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { launchBrowser, openPage, startAccountsServer, temporaryDirectory } from "./harness.mjs";
import { asPerson, choosePin, signIn, waitForPersonAtCounter } from "./people-helpers.mjs";
import { ean13, productFields, scanWithKeyboard, seededId, waitForIdlePage, waitForProductCount } from "./counter-helpers.mjs";
import { photo, waitForCartLines } from "./language-helpers.mjs";

const TEA = { id: seededId(1), name: "Parle-G 250g", price: 25_00, barcodes: [ean13("890106301001")], stock: 50 };
const OWNER = { email: "owner@example.com", password: "owner-secret-1" };
const MANAGER = { email: "manager@example.com", password: "manager-secret-1" };
const CASHIER = { email: "cashier@example.com", password: "cashier-secret-1" };
/** ID tokens of the accounts server live this long: the cashier's ends within the test. */
const TOKEN_SECONDS = 4;
const ACCOUNTS_DATABASE = "projects/counterbook/databases/(default)/documents";

/** A shop on counterbook-server with accounts: its owner, a manager, a cashier, one product. */
async function setUpAccountsShop(server) {
  const claimed = await fetch(`${server.url}/counterbook/v1/setup:claim`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      setupCode: server.setupCode,
      shopName: "Kirana",
      currency: "INR",
      country: "IN",
      locale: "en-IN",
      displayName: "Asha",
      ...OWNER,
    }),
  });
  const body = await claimed.json();
  assert.equal(claimed.status, 200, JSON.stringify(body));
  for (const [person, role] of [[MANAGER, "manager"], [CASHIER, "cashier"]]) {
    await asPerson(server.url, OWNER, "POST", `/counterbook/v1/shops/${body.shopId}/people`, {
      ...person,
      displayName: role,
      role,
    });
  }
  await asPerson(server.url, OWNER, "POST", `/v1/${ACCOUNTS_DATABASE}:commit`, {
    writes: [
      {
        update: {
          name: `${ACCOUNTS_DATABASE}/shops/${body.shopId}/products/${TEA.id}`,
          fields: productFields(TEA),
        },
        updateTransforms: [{ fieldPath: "updatedAt", setToServerValue: "REQUEST_TIME" }],
      },
    ],
  });
  return body.shopId;
}

/** The owner disables and enables `person`: their refresh token on tablets ends. */
async function endSignIn(server, shopId, person) {
  const { people } = await asPerson(server.url, OWNER, "GET", `/counterbook/v1/shops/${shopId}/people`);
  const userId = people.find((listed) => listed.email === person.email).userId;
  for (const disabled of [true, false]) {
    await asPerson(server.url, OWNER, "PATCH", `/counterbook/v1/shops/${shopId}/people/${userId}`, { disabled });
  }
}

/** One tea sold for the exact cash, ending on its receipt. */
async function sellOneTea(page) {
  await scanWithKeyboard(page, TEA.barcodes[0]);
  await waitForCartLines(page, 1);
  await page.getByTestId("pay").click();
  await page.getByTestId("complete-sale").click();
  await page.getByTestId("receipt").waitFor({ timeout: 15_000 });
}

/** "Void bill" on the bill shown, with a reason: a cashier gets the manager's approval. */
async function askToVoid(page) {
  await page.getByTestId("void-bill").click();
  await page.getByTestId("undo-reason").fill("x");
  await page.getByTestId("confirm-void").click();
  await page.getByTestId("manager-approval").waitFor();
}

describe("people at the counter in Arabic and Hindi", () => {
  let accounts;
  let accountsShop;
  let browser;
  before(async () => {
    [accounts, browser] = await Promise.all([
      startAccountsServer({
        dataDir: temporaryDirectory("counterbook-lang-accounts-"),
        tokenLifetimeSeconds: TOKEN_SECONDS,
      }),
      launchBrowser(),
    ]);
    accountsShop = await setUpAccountsShop(accounts);
  });
  after(async () => {
    await Promise.all([browser?.close(), accounts?.stop()]);
  });

  test("a manager's approval and the sign-in-again banner, in Arabic and in Hindi", async () => {
    const context = await browser.newContext({ viewport: { width: 800, height: 1280 } });
    try {
      const page = await context.newPage();
      const counterIn = (language) =>
        `${accounts.url}/counter?lockMinutes=0&shop=${accountsShop}&language=${language}`;
      // The manager signs in on the tablet once, then the cashier, who stays at the counter.
      await page.goto(counterIn("ar"));
      await signIn(page, MANAGER);
      await choosePin(page, "3333");
      await page.locator('nav.pages a[href="/people"]').click();
      await page.getByTestId("add-tablet-person").click();
      await signIn(page, CASHIER);
      await choosePin(page, "2222");
      await waitForPersonAtCounter(page, CASHIER.email);
      await page.locator('nav.pages a[href="/counter"]').click();
      await waitForProductCount(page, 1);
      await waitForIdlePage(page);
      await sellOneTea(page);
      await askToVoid(page);
      await photo(page, "ar-approval");
      await page.getByTestId("cancel-approval").click();
      await page.getByTestId("manager-approval").waitFor({ state: "detached" });
      await page.getByTestId("new-sale").click();

      // The cashier's sign-in ends; once her ID token has expired, her next sale waits.
      await endSignIn(accounts, accountsShop, CASHIER);
      // A clock condition, not a synchronisation: her ID token has expired by then.
      await new Promise((resolve) => setTimeout(resolve, (TOKEN_SECONDS + 1) * 1000));
      await sellOneTea(page);
      await page.getByTestId("new-sale").click();
      const banner = page.getByTestId("sign-in-again");
      await banner.waitFor({ timeout: 30_000 });
      assert.doesNotMatch(await banner.getByTestId("sign-in-again-message").textContent(), /Sign in/);
      await photo(page, "ar-sign-in-again");

      // In Hindi: the banner again, and the approval asked from the bills page.
      await page.goto(counterIn("hi"));
      await page.waitForFunction(() => document.documentElement.lang === "hi");
      await banner.waitFor({ timeout: 30_000 });
      await photo(page, "hi-sign-in-again");
      await openPage(page, "/bills");
      await page.getByTestId("bill-row").first().click();
      await page.getByTestId("bill-detail").waitFor();
      await askToVoid(page);
      await photo(page, "hi-approval");
    } finally {
      await context.close();
    }
  });

});
