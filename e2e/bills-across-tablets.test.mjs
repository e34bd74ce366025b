// Bills and refunds across tablets (issue 10), on counterbook-server with accounts: a bill sold on
// tablet A shows on tablet B's bills page (bills are pulled); A refunds a line while B is
// offline; B, not knowing, voids the bill; back online, the server refuses B's void inside its
// commit (the bill has a refund), and B undoes its void, says why, shows A's refund and offers
// only a refund of what is left. Then A, offline, refunds what B refunded meanwhile on the
// receipt still open at its counter: the server refuses it (more than was sold), and A marks
// its refund refused, giving nothing back, on that receipt and on its bills page. On the
// server, stock and money come out exact throughout.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { launchBrowser, startAccountsServer, temporaryDirectory } from "./harness.mjs";
import { ean13, productFields, scanWithKeyboard, screenshots, waitForIdlePage, waitForProductCount } from "./counter-helpers.mjs";
import { rest, shopReads, signIn, waitForPending } from "./people-helpers.mjs";

const PROJECT = "counterbook";
const DATABASE = `projects/${PROJECT}/databases/(default)/documents`;
const OWNER = { email: "owner@example.com", password: "owner-secret-1" };
const MANAGER_A = { email: "manager.a@example.com", password: "manager-secret-1" };
const MANAGER_B = { email: "manager.b@example.com", password: "manager-secret-2" };
const SOAP = { id: "00000000-0000-7000-8000-000000000001", code: ean13("890100000001") };
const TEA = { id: "00000000-0000-7000-8000-000000000002", code: ean13("890100000002") };

/** A manager signed in on a new tablet, at the counter with both products synced. */
async function tablet(browser, server, person) {
  const context = await browser.newContext({ viewport: { width: 900, height: 1100 } });
  const page = await context.newPage();
  await page.goto(`${server.url}/counter?lockMinutes=0`);
  await signIn(page, person);
  await page.getByTestId("skip-pin").click();
  await page.getByLabel("Scan or search").waitFor();
  await waitForProductCount(page, 2);
  await waitForIdlePage(page);
  return { context, page };
}

/** Opens bill `number` on the bills page, waiting for it to arrive there. */
async function openBill(page, number) {
  await page.locator('nav.pages a[href="/bills"]').click();
  await page.getByTestId("bills-page").waitFor();
  const row = page.locator(`[data-testid=bill-row][data-number="${number}"]`);
  await row.waitFor({ timeout: 30_000 });
  await row.click();
  await page.getByTestId("bill-detail").waitFor();
}

/** Refunds `quantities` (one per bill line, as typed) of the opened bill or receipt. */
async function refund(page, quantities, reason) {
  await page.getByTestId("refund-bill").click();
  const lines = page.getByTestId("refund-line");
  for (const [index, quantity] of quantities.entries()) {
    await lines.nth(index).getByTestId("refund-quantity").fill(quantity);
  }
  await page.getByTestId("undo-reason").fill(reason);
  await page.getByTestId("confirm-refund").click();
}

describe("bills and refunds across tablets", () => {
  let server;
  let browser;
  let shop;
  let ownerToken;
  before(async () => {
    [server, browser] = await Promise.all([
      startAccountsServer({ dataDir: temporaryDirectory("counterbook-bills-") }),
      launchBrowser(),
    ]);
    const claimed = await rest(server, "POST", "/counterbook/v1/setup:claim", {
      body: { setupCode: server.setupCode, shopName: "Kirana One", currency: "INR", country: "IN", locale: "en-IN", ...OWNER, displayName: "Asha" },
    });
    assert.equal(claimed.status, 200, JSON.stringify(claimed.body));
    shop = claimed.body.shopId;
    ownerToken = claimed.body.idToken;
    for (const [person, name] of [[MANAGER_A, "Meera"], [MANAGER_B, "Vikram"]]) {
      const added = await rest(server, "POST", `/counterbook/v1/shops/${shop}/people`, {
        token: ownerToken,
        body: { ...person, displayName: name, role: "manager" },
      });
      assert.equal(added.status, 200, JSON.stringify(added.body));
    }
    const update = (path, fields) => ({
      update: { name: `${DATABASE}/shops/${shop}/${path}`, fields },
      updateTransforms: [{ fieldPath: "updatedAt", setToServerValue: "REQUEST_TIME" }],
    });
    const seeded = await rest(server, "POST", `/v1/${DATABASE}:commit`, {
      token: ownerToken,
      body: {
        writes: [
          update(`products/${SOAP.id}`, productFields({ name: "Lux Soap", price: 3500, barcodes: [SOAP.code], stock: 50 })),
          update(`products/${TEA.id}`, productFields({ name: "Tea 250g", price: 12000, barcodes: [TEA.code], stock: 20 })),
        ],
      },
    });
    assert.equal(seeded.status, 200, JSON.stringify(seeded.body));
  });
  after(async () => {
    await Promise.all([browser?.close(), server?.stop()]);
  });

  test("a refund on one tablet refuses a void and a second refund of it on another, which say why", async () => {
    const { getDocument, query, stockOf } = shopReads(server, shop, ownerToken);
    const a = await tablet(browser, server, MANAGER_A);
    const b = await tablet(browser, server, MANAGER_B);
    try {
      // A sells 2 soaps and a tea.
      for (const code of [SOAP.code, SOAP.code, TEA.code]) await scanWithKeyboard(a.page, code);
      await a.page.waitForFunction(() => document.querySelectorAll("[data-testid=cart-line]").length === 2);
      await a.page.getByRole("button", { name: "Complete sale", exact: true }).click();
      const receipt = a.page.getByRole("region", { name: "Receipt" });
      await receipt.waitFor({ timeout: 15_000 });
      const billId = await receipt.getAttribute("data-bill-id");
      await waitForPending(a.page, 0);
      const number = (await getDocument(`bills/${billId}`)).number.stringValue;

      // B's bills page shows A's bill, pulled from the server; then B goes offline.
      await openBill(b.page, number);
      await b.page.getByTestId("void-bill").waitFor();
      await b.context.setOffline(true);

      // A refunds the tea.
      await refund(a.page, ["0", "1"], "stale");
      await a.page.getByTestId("refunded-line").waitFor();
      await waitForPending(a.page, 0);
      assert.equal(await stockOf(TEA), 20, "the tea is back");

      // B, offline and not knowing, voids the bill: on the tablet it is void at once.
      await b.page.getByTestId("void-bill").click();
      await b.page.getByTestId("undo-reason").fill("wrong customer");
      await b.page.getByTestId("confirm-void").click();
      await b.page.getByTestId("bill-void").waitFor();

      // Back online, the server refuses it: B's void is undone, B says why, shows A's refund
      // and offers only a refund of the soaps.
      await b.context.setOffline(false);
      // The bill opened, with its void and refund controls.
      const detail = b.page.locator(".receipt-overlay");
      await detail.getByTestId("void-refused").waitFor({ timeout: 30_000 });
      await detail.getByTestId("refunded-line").waitFor({ timeout: 30_000 });
      assert.equal(await detail.getByTestId("bill-void").count(), 0, "the bill is not void on B");
      assert.equal(await detail.getByTestId("void-bill").count(), 0, "no void is offered");
      assert.match(await detail.getByTestId("void-refused").textContent(), /The server refused this void/);
      assert.match(await detail.getByTestId("refunded-line").textContent(), /Refunded 1 × Tea 250g/);
      await screenshots(b.page, "void-refused");
      await b.page.waitForFunction(() => document.querySelector("[data-testid=pending-count]")?.textContent === "0");
      const bill = await getDocument(`bills/${billId}`);
      assert.equal(bill.status.stringValue, "final", "the server kept the bill");
      assert.equal(await stockOf(SOAP), 48, "the soaps stay sold: the refused void gave nothing back");
      assert.equal(await stockOf(TEA), 20);
      assert.equal((await query("stockMoves")).filter((m) => m.kind.stringValue === "void").length, 0);

      // A goes offline; B refunds the 2 soaps; A, not knowing, refunds them too.
      await a.context.setOffline(true);
      await refund(b.page, ["2"], "damaged");
      await detail.getByTestId("refunded-line").nth(1).waitFor();
      await waitForPending(b.page, 0);
      assert.equal(await stockOf(SOAP), 50);
      await refund(a.page, ["2"], "damaged too");
      await a.page.getByTestId("refunded-line").nth(1).waitFor();
      // Back online, the server refuses it: the receipt still open on A's counter says so
      // (read again as its refund changes), and so does the bill on A's bills page.
      await a.context.setOffline(false);
      const refusedOnReceipt = a.page.getByTestId("counter-page").getByTestId("refund-refused");
      await refusedOnReceipt.waitFor({ timeout: 30_000 });
      assert.match(await refusedOnReceipt.textContent(), /Refund refused by the server, nothing given back: 2 × Lux Soap/);
      await a.page.getByRole("button", { name: "New sale", exact: true }).click();
      await openBill(a.page, number);
      const refused = a.page.getByTestId("refund-refused");
      await refused.waitFor({ timeout: 30_000 });
      assert.match(await refused.textContent(), /Refund refused by the server, nothing given back: 2 × Lux Soap/);
      await screenshots(a.page, "refund-refused");
      // On the server: two refunds of the bill, exactly what was sold, and the stock exact.
      const refunds = (await query("refunds")).filter((r) => r.billId.stringValue === billId);
      assert.equal(refunds.length, 2);
      assert.equal(await stockOf(SOAP), 50, "the refused refund returned nothing");
      const moneyBack = (await query("payments"))
        .filter((p) => p.billId?.stringValue === billId && Number(p.amount.integerValue) < 0)
        .reduce((sum, p) => sum + Number(p.amount.integerValue), 0);
      assert.equal(moneyBack, -(12000 + 2 * 3500), "money back is what was sold, once");
    } finally {
      await Promise.all([a.context.close(), b.context.close()]);
    }
  });
});
