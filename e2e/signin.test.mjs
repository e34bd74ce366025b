// People on the tablet (issue 10), on counterbook-server with accounts and short-lived tokens:
// the first run claims the server with the setup code from its log (a wrong code refused); the
// owner adds a cashier; PINs switch people and the idle lock asks for one; a cashier's tablet
// sells offline while its ID token expires and its sign-in is revoked, says "Sign in again to
// send N sales", and after signing in again the server holds exactly those sales.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import {
  launchBrowser,
  startAccountsServer,
  temporaryDirectory,
  countRowsInSqlite,
} from "./harness.mjs";
import {
  countInStore,
  ean13,
  productFields,
  screenshots,
  waitForIdlePage,
  waitForProductCount,
} from "./counter-helpers.mjs";
import {
  asPerson,
  choosePin,
  sellOne,
  signIn,
  signInOverRest,
  unlockAs,
  waitForPersonAtCounter,
} from "./people-helpers.mjs";

const PROJECT = "counterbook";
const OWNER = { email: "owner@example.com", password: "owner-secret-1" };
const CASHIER = { email: "cashier@example.com", password: "cashier-secret-1" };
const MANAGER = { email: "manager@example.com", password: "manager-secret-1" };
/** ID tokens live this long: the offline step outlasts one. */
const TOKEN_SECONDS = 4;
const SOAP = ean13("890100000001");

function asOwner(server, method, path, body) {
  return asPerson(server.url, OWNER, method, path, body);
}

/** One sale of a bar of soap, paid cash with the exact amount. */
function sellSoap(page) {
  return sellOne(page, SOAP);
}

function cashierIdOf(people) {
  return people.find((person) => person.email === CASHIER.email).userId;
}

function billsOnServer(server) {
  return countRowsInSqlite(server.database, PROJECT).bills ?? 0;
}

describe("people on the tablet", () => {
  let server;
  let browser;
  before(async () => {
    [server, browser] = await Promise.all([
      startAccountsServer({
        dataDir: temporaryDirectory("counterbook-signin-"),
        tokenLifetimeSeconds: TOKEN_SECONDS,
      }),
      launchBrowser(),
    ]);
    assert.match(server.setupCode, /^[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}$/);
  });
  after(async () => {
    await Promise.all([browser?.close(), server?.stop()]);
  });

  test("first run, PINs and the lock, and a cashier's offline sales after their sign-in ended", async () => {
    const owner = await browser.newContext({ viewport: { width: 800, height: 1280 } });
    const tablet = await browser.newContext({ viewport: { width: 800, height: 1280 } });
    try {
      // First run: the server holds no shop; a wrong code is refused, the right one claims it.
      const page = await owner.newPage();
      await page.goto(`${server.url}/counter?lockMinutes=0`);
      const setup = page.getByTestId("setup-form");
      await setup.waitFor();
      await screenshots(page, "setup-your-shop");
      await setup.getByTestId("setup-shop-name").fill("Kirana One");
      await setup.getByTestId("setup-display-name").fill("Asha");
      await setup.getByTestId("setup-email").fill(OWNER.email);
      await setup.getByTestId("setup-password").fill(OWNER.password);
      await setup.getByTestId("setup-code").fill("AAAA-BBBB-CCCC");
      await setup.getByTestId("setup-submit").click();
      await page.getByTestId("setup-error").waitFor();
      assert.match(await page.getByTestId("setup-error").textContent(), /setup code is wrong/);
      await setup.getByTestId("setup-code").fill(server.setupCode.toLowerCase().replaceAll("-", " "));
      await setup.getByTestId("setup-submit").click();
      // The app starts again on the new shop, with the owner at the counter.
      await waitForPersonAtCounter(page, OWNER.email);
      const { shop } = await signInOverRest(server.url, OWNER);
      assert.ok(shop, "the owner's token names the shop");
      await page.getByTestId("choose-pin-form").waitFor();
      await screenshots(page, "choose-pin");
      await choosePin(page, "1111");

      // The owner adds a cashier on the people page, and a product over the API.
      await page.locator('nav.pages a[href="/people"]').click();
      const shopPeople = page.getByTestId("add-shop-person");
      await shopPeople.getByTestId("new-person-email").fill(CASHIER.email);
      await shopPeople.getByTestId("new-person-password").fill(CASHIER.password);
      await shopPeople.getByTestId("new-person-name").fill("Ravi");
      await shopPeople.getByTestId("new-person-add").click();
      await page.locator(`[data-testid=shop-person][data-email="${CASHIER.email}"]`).waitFor();
      await asOwner(server, "POST", `/v1/projects/${PROJECT}/databases/(default)/documents:commit`, {
        writes: [
          {
            update: {
              name: `projects/${PROJECT}/databases/(default)/documents/shops/${shop}/products/00000000-0000-7000-8000-000000000001`,
              fields: productFields({ name: "Lux Soap", price: 3500, barcodes: [SOAP], stock: 50 }),
            },
            updateTransforms: [{ fieldPath: "updatedAt", setToServerValue: "REQUEST_TIME" }],
          },
        ],
      });

      // A second person on the same tablet: the cashier signs in once and chooses a PIN.
      await page.getByTestId("add-tablet-person").click();
      await signIn(page, CASHIER);
      await page.getByTestId("choose-pin-form").waitFor();
      await choosePin(page, "2222");
      await waitForPersonAtCounter(page, CASHIER.email);
      await screenshots(page, "people-page");
      await page.locator('nav.pages a[href="/settings"]').click();
      await page.getByTestId("device-settings").waitFor();
      await screenshots(page, "settings-page", { fullPage: true });
      // Device settings stay on the tablet and survive the restart saving makes.
      await page.getByTestId("settings-device-name").fill("Counter 1");
      await page.getByTestId("settings-paper").selectOption("58");
      await page.getByTestId("save-device-settings").click();
      await page.waitForURL(`${server.url}/settings`);
      await page.getByTestId("device-settings").waitFor();
      assert.equal(await page.getByTestId("settings-device-name").inputValue(), "Counter 1");
      assert.equal(await page.getByTestId("settings-paper").inputValue(), "58");

      // Switch: a wrong PIN is refused, the owner's own PIN switches to the owner.
      await page.getByTestId("switch-person").click();
      await page.getByTestId("lock-screen").waitFor();
      await unlockAs(page, OWNER.email, "9999");
      await page.getByTestId("lock-error").waitFor();
      await screenshots(page, "lock-screen");
      await unlockAs(page, OWNER.email, "1111");
      await page.getByTestId("lock-screen").waitFor({ state: "detached" });
      await waitForPersonAtCounter(page, OWNER.email);

      // Opened again with a lock time of 3 s: it starts locked, and locks again when idle.
      await page.close();
      const relocked = await owner.newPage();
      await relocked.goto(`${server.url}/counter?lockMinutes=0.05`);
      await relocked.getByTestId("lock-screen").waitFor();
      await unlockAs(relocked, CASHIER.email, "2222");
      await waitForPersonAtCounter(relocked, CASHIER.email);
      await relocked.getByTestId("lock-screen").waitFor({ state: "detached" });
      await relocked.getByTestId("lock-screen").waitFor({ timeout: 15_000 });
      await relocked.close();

      // A cashier's price change asks for a manager's PIN on the spot. The manager signed in
      // on this tablet once; the change is sent with the manager's own token, and its audit
      // entry names the cashier who asked and the manager who approved.
      const { userId: managerId } = await asOwner(server, "POST", `/counterbook/v1/shops/${shop}/people`, {
        ...MANAGER,
        displayName: "Meena",
        role: "manager",
      });
      const shopPage = await owner.newPage();
      await shopPage.goto(`${server.url}/people?lockMinutes=0`);
      await shopPage.getByTestId("add-tablet-person").click();
      await signIn(shopPage, MANAGER);
      await choosePin(shopPage, "3333");
      await shopPage.getByTestId("switch-person").click();
      await unlockAs(shopPage, CASHIER.email, "2222");
      await waitForPersonAtCounter(shopPage, CASHIER.email);
      await shopPage.locator('nav.pages a[href="/products"]').click();
      const row = shopPage.getByTestId("product-row").first();
      await row.getByTestId("edit-product").click();
      await shopPage.waitForFunction(
        () => document.querySelector("[data-testid=product-name]").value === "Lux Soap",
      );
      await shopPage.getByTestId("product-price").fill("38");
      await shopPage.getByTestId("add-product").click();
      const approval = shopPage.getByTestId("manager-approval");
      await approval.waitFor();
      await screenshots(shopPage, "manager-approval");
      await approval.locator(`[data-testid=approver][data-email="${MANAGER.email}"]`).click();
      await approval.getByTestId("approval-pin").fill("3333");
      await approval.getByTestId("approve").click();
      await approval.waitFor({ state: "detached" });
      await shopPage.waitForFunction(
        () => document.querySelector("[data-testid=pending-count]")?.textContent === "0",
        null,
        { timeout: 30_000 },
      );
      // A stock adjustment by the cashier: approved the same way.
      await row.getByTestId("stock-product").click();
      await shopPage.getByTestId("stock-kind").selectOption("adjust");
      await shopPage.getByTestId("stock-quantity").fill("-2");
      await shopPage.getByTestId("stock-reason").fill("damaged");
      await shopPage.getByTestId("save-stock").click();
      await approval.waitFor();
      await approval.locator(`[data-testid=approver][data-email="${MANAGER.email}"]`).click();
      await approval.getByTestId("approval-pin").fill("3333");
      await approval.getByTestId("approve").click();
      await approval.waitFor({ state: "detached" });
      await shopPage.waitForFunction(
        () => document.querySelector("[data-testid=pending-count]")?.textContent === "0",
        null,
        { timeout: 30_000 },
      );
      const database = `projects/${PROJECT}/databases/(default)/documents`;
      const soap = await asOwner(server, "GET", `/v1/${database}/shops/${shop}/products/00000000-0000-7000-8000-000000000001`);
      assert.equal(soap.fields.price.integerValue, "3800", "the approved price is on the server");
      const audits = await asOwner(server, "POST", `/v1/${database}/shops/${shop}:runQuery`, {
        structuredQuery: { from: [{ collectionId: "audit" }] },
      });
      const approved = audits
        .map((item) => item.document?.fields)
        .filter((fields) => fields?.approvedBy);
      assert.deepEqual(
        approved.map((fields) => fields.action.stringValue).sort(),
        ["product.edit", "stock.adjust"],
        "the price change and the adjustment, each approved",
      );
      const { people: listed } = await asOwner(server, "GET", `/counterbook/v1/shops/${shop}/people`);
      for (const fields of approved) {
        assert.equal(fields.approvedBy.stringValue, managerId);
        assert.equal(fields.requestedBy.stringValue, cashierIdOf(listed));
        assert.equal(fields.cashier.stringValue, CASHIER.email);
      }
      await shopPage.close();

      // Another tablet with only the cashier signed in sells once online...
      const counter = await tablet.newPage();
      await counter.goto(`${server.url}/counter?lockMinutes=0`);
      await signIn(counter, CASHIER);
      await counter.getByTestId("skip-pin").click();
      await counter.getByLabel("Scan or search").waitFor();
      await waitForProductCount(counter, 1);
      await waitForIdlePage(counter);
      await sellSoap(counter);
      await counter.waitForFunction(() => document.querySelector("[data-testid=pending-count]")?.textContent === "0");
      const before = billsOnServer(server);
      assert.equal(before, 1);

      // ...then offline: three sales while its ID token expires, and meanwhile the owner
      // disables and enables the cashier, which ends their refresh token.
      await tablet.setOffline(true);
      for (let i = 0; i < 3; i++) await sellSoap(counter);
      // Signing out now is refused until confirmed, and offers the waiting units as a file.
      await counter.locator('nav.pages a[href="/people"]').click();
      await counter.getByTestId("sign-out").first().click();
      await counter.getByTestId("confirm-leaving").waitFor();
      assert.match(await counter.getByTestId("pending-warning").textContent(), /^3 changes/);
      const [download] = await Promise.all([
        counter.waitForEvent("download"),
        counter.getByTestId("export-pending").click(),
      ]);
      const exported = JSON.parse(readFileSync(await download.path(), "utf8"));
      assert.equal(exported.length, 3, "the three sales waiting");
      for (const unit of exported) {
        assert.equal(unit.label.action, "sale", JSON.stringify(unit.label));
        assert.match(unit.label.bill, /^T/);
      }
      await screenshots(counter, "sign-out-with-pending");
      await counter.getByTestId("cancel-leaving").click();
      await counter.locator(`[data-testid=tablet-person][data-email="${CASHIER.email}"]`).waitFor();
      await counter.locator('nav.pages a[href="/counter"]').click();
      const { people } = await asOwner(server, "GET", `/counterbook/v1/shops/${shop}/people`);
      const cashierId = cashierIdOf(people);
      for (const disabled of [true, false]) {
        await asOwner(server, "PATCH", `/counterbook/v1/shops/${shop}/people/${cashierId}`, { disabled });
      }
      // A clock condition, not a synchronisation: the tablet's ID token has expired by then.
      await new Promise((resolve) => setTimeout(resolve, (TOKEN_SECONDS + 1) * 1000));
      await tablet.setOffline(false);
      await counter.getByTestId("sign-in-again").waitFor({ timeout: 30_000 });
      assert.equal(
        await counter.getByTestId("sign-in-again-message").textContent(),
        "Sign in again to send 3 sales",
      );
      assert.equal(billsOnServer(server), 1, "nothing was sent with the ended sign-in");
      await screenshots(counter, "sign-in-again");

      // Signing in again sends them: exactly three more bills, none twice.
      const again = counter.getByTestId("sign-in-again");
      await again.getByTestId("sign-in-password").fill(CASHIER.password);
      await again.getByTestId("sign-in-submit").click();
      await counter.getByTestId("sign-in-again").waitFor({ state: "detached", timeout: 30_000 });
      await counter.waitForFunction(
        () => document.querySelector("[data-testid=pending-count]")?.textContent === "0",
        null,
        { timeout: 30_000 },
      );
      assert.equal(billsOnServer(server), 4);

      // "Sign out and clear this tablet": nothing waits, so it clears at once; the tablet
      // starts again empty, asking for a sign-in.
      await counter.locator('nav.pages a[href="/people"]').click();
      await counter.getByTestId("clear-tablet").click();
      await counter.getByTestId("sign-in-form").waitFor();
      assert.equal(await countInStore(counter, "bills"), 0, "the tablet holds no bills");
    } finally {
      await Promise.all([owner.close(), tablet.close()]);
    }
  });
});
