// A manager's approval at the counter (issue 10), on counterbook-server with accounts: a
// cashier's "Void bill" asks for a manager's PIN on the spot (a wrong PIN refused), and the
// approved void reaches the server with the stock restored exactly and the audit entry naming
// the cashier and the approver; the cashier's own token writing a void over REST is refused; a
// refund of one line; credit over the customer's limit approved by a manager; a product added
// at the counter for an unknown code, a customer with a credit limit and a CSV import,
// approved the same way; the bills page; and another
// tablet's receipt scanned, read from the server when online, from the tablet itself once its
// bills are pulled, and a bill it has not got said to be elsewhere when offline.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { launchBrowser, startAccountsServer, temporaryDirectory } from "./harness.mjs";
import {
  ean13,
  productFields,
  scanWithKeyboard,
  screenshots,
  waitForIdlePage,
  waitForProductCount,
  waitForStoreCount,
} from "./counter-helpers.mjs";
import { rest, shopReads, signIn, signInOverRest, signInTwoPeople, waitForPending } from "./people-helpers.mjs";

const PROJECT = "counterbook";
const DATABASE = `projects/${PROJECT}/databases/(default)/documents`;
const OWNER = { email: "owner@example.com", password: "owner-secret-1" };
const CASHIER = { email: "cashier@example.com", password: "cashier-secret-1" };
const MANAGER = { email: "manager@example.com", password: "manager-secret-1" };
const SOAP = { id: "00000000-0000-7000-8000-000000000001", code: ean13("890100000001") };
const TEA = { id: "00000000-0000-7000-8000-000000000002", code: ean13("890100000002") };
const CUSTOMER_ID = "00000000-0000-7000-8000-0000000000c1";

/** The manager's PIN dialog: a wrong PIN first when asked, then the manager's. */
async function approveAsManager(page, { wrongFirst = false } = {}) {
  const approval = page.getByTestId("manager-approval");
  await approval.waitFor();
  await approval.locator(`[data-testid=approver][data-email="${MANAGER.email}"]`).click();
  if (wrongFirst) {
    await approval.getByTestId("approval-pin").fill("9999");
    await approval.getByTestId("approve").click();
    await approval.getByTestId("approval-error").waitFor();
  }
  await approval.getByTestId("approval-pin").fill("3333");
  await approval.getByTestId("approve").click();
  await approval.waitFor({ state: "detached" });
}

/** Scans `codes` and completes the sale in exact cash; the receipt stays open. */
async function sell(page, codes) {
  for (const code of codes) await scanWithKeyboard(page, code);
  const lines = new Set(codes).size;
  await page.waitForFunction(
    (lines) => document.querySelectorAll("[data-testid=cart-line]").length === lines,
    lines,
  );
  await page.getByRole("button", { name: "Complete sale", exact: true }).click();
  const receipt = page.getByRole("region", { name: "Receipt" });
  await receipt.waitFor({ timeout: 15_000 });
  return receipt.getAttribute("data-bill-id");
}

async function newSale(page) {
  await page.getByRole("button", { name: "New sale", exact: true }).click();
  await page.getByRole("region", { name: "Receipt" }).waitFor({ state: "detached" });
}

describe("a manager's approval at the counter", () => {
  let server;
  let browser;
  let shop;
  let ownerToken;
  before(async () => {
    [server, browser] = await Promise.all([
      startAccountsServer({ dataDir: temporaryDirectory("counterbook-approvals-") }),
      launchBrowser(),
    ]);
    const claimed = await rest(server, "POST", "/counterbook/v1/setup:claim", {
      body: {
        setupCode: server.setupCode,
        shopName: "Kirana One",
        currency: "INR",
        country: "IN",
        locale: "en-IN",
        ...OWNER,
        displayName: "Asha",
      },
    });
    assert.equal(claimed.status, 200, JSON.stringify(claimed.body));
    shop = claimed.body.shopId;
    ownerToken = claimed.body.idToken;
    for (const [person, role] of [
      [MANAGER, "manager"],
      [CASHIER, "cashier"],
    ]) {
      const added = await rest(server, "POST", `/counterbook/v1/shops/${shop}/people`, {
        token: ownerToken,
        body: { ...person, displayName: role, role },
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
          update(`customers/${CUSTOMER_ID}`, {
            name: { stringValue: "Ravi Kumar" },
            phone: { stringValue: "98765 43210" },
            phoneDigits: { stringValue: "9876543210" },
            creditBalance: { integerValue: "0" },
            creditLimit: { integerValue: "10000" },
            deleted: { booleanValue: false },
          }),
        ],
      },
    });
    assert.equal(seeded.status, 200, JSON.stringify(seeded.body));
  });
  after(async () => {
    await Promise.all([browser?.close(), server?.stop()]);
  });

  test("a cashier's void, refund, credit override and new product, each approved by a manager's PIN", async () => {
    const context = await browser.newContext({ viewport: { width: 800, height: 1280 } });
    try {
      const { getDocument, query, stockOf } = shopReads(server, shop, ownerToken);
      // The manager signs in on the tablet once, then the cashier, who stays at the counter.
      const page = await context.newPage();
      await page.goto(`${server.url}/counter?lockMinutes=0`);
      await signInTwoPeople(page, [MANAGER, "3333"], [CASHIER, "2222"]);
      await page.getByLabel("Scan or search").waitFor();
      await waitForProductCount(page, 2);
      await waitForIdlePage(page);
      const { userId: managerId } = await signInOverRest(server.url, MANAGER);
      const { userId: cashierId, idToken: cashierToken } = await signInOverRest(server.url, CASHIER);

      // A sale: 2 soaps and a tea.
      const voided = await sell(page, [SOAP.code, SOAP.code, TEA.code]);
      await waitForPending(page, 0);
      assert.equal(await stockOf(SOAP), 48);
      assert.equal(await stockOf(TEA), 19);

      // "Void bill": the cashier gets the manager's PIN dialog; a wrong PIN is refused, and
      // until the manager approves nothing is written.
      await page.getByRole("button", { name: "Void bill", exact: true }).click();
      await page.getByTestId("undo-reason").fill("wrong customer");
      await screenshots(page, "void-bill");
      await page.getByTestId("confirm-void").click();
      await page.getByTestId("manager-approval").waitFor();
      assert.equal(await page.getByTestId("pending-count").textContent(), "0", "nothing written before the approval");
      await approveAsManager(page, { wrongFirst: true });
      await page.getByTestId("bill-void").waitFor();
      await screenshots(page, "bill-voided");
      await waitForPending(page, 0);

      // On the server: the bill void, the stock restored exactly, stock moves of the void,
      // the payment refunded, and the audit entry naming the cashier and the approver.
      const bill = await getDocument(`bills/${voided}`);
      assert.equal(bill.status.stringValue, "void");
      assert.equal(await stockOf(SOAP), 50);
      assert.equal(await stockOf(TEA), 20);
      const voidMoves = (await query("stockMoves")).filter((m) => m.kind.stringValue === "void");
      assert.deepEqual(voidMoves.map((m) => Number(m.quantity.integerValue)).sort(), [1, 2]);
      const payments = (await query("payments")).filter((p) => p.billId?.stringValue === voided);
      assert.equal(payments.reduce((sum, p) => sum + Number(p.amount.integerValue), 0), 0);
      const voidAudit = (await query("audit")).find((a) => a.action.stringValue === "bill.void");
      assert.equal(voidAudit.approvedBy.stringValue, managerId);
      assert.equal(voidAudit.requestedBy.stringValue, cashierId);
      assert.equal(voidAudit.cashier.stringValue, CASHIER.email);
      await newSale(page);

      // A second sale, refunded by one line (the tea), approved the same way.
      const refunded = await sell(page, [SOAP.code, TEA.code]);
      await page.getByRole("button", { name: "Refund", exact: true }).click();
      const lines = page.getByTestId("refund-line");
      await lines.nth(0).getByTestId("refund-quantity").fill("0");
      await page.getByTestId("undo-reason").fill("stale");
      await screenshots(page, "refund");
      await page.getByTestId("confirm-refund").click();
      await approveAsManager(page);
      await page.getByTestId("refunded-line").waitFor();
      await waitForPending(page, 0);
      const refunds = await query("refunds");
      assert.equal(refunds.length, 1);
      assert.equal(refunds[0].billId.stringValue, refunded);
      assert.equal(refunds[0].total.integerValue, "12000");
      assert.equal(refunds[0].lines.arrayValue.values.length, 1);
      assert.equal(await stockOf(SOAP), 49, "the soap stays sold");
      assert.equal(await stockOf(TEA), 20, "the tea is back");
      const back = (await query("payments")).filter(
        (p) => p.billId?.stringValue === refunded && Number(p.amount.integerValue) < 0,
      );
      assert.deepEqual(back.map((p) => p.amount.integerValue), ["-12000"]);

      // The cashier's own token writing a void over REST is refused.
      const forged = await rest(server, "POST", `/v1/${DATABASE}:commit`, {
        token: cashierToken,
        body: {
          writes: [
            {
              update: { name: `${DATABASE}/shops/${shop}/bills/${refunded}`, fields: { status: { stringValue: "void" } } },
              updateMask: { fieldPaths: ["status"] },
            },
          ],
        },
      });
      assert.equal(forged.status, 403, JSON.stringify(forged.body));
      assert.equal(forged.body.error.status, "PERMISSION_DENIED");
      assert.equal((await getDocument(`bills/${refunded}`)).status.stringValue, "final");
      await newSale(page);

      // Credit over the customer's limit (100.00, a tea is 120.00): "Manager approval".
      await scanWithKeyboard(page, TEA.code);
      await page.waitForFunction(() => document.querySelectorAll("[data-testid=cart-line]").length === 1);
      await page.getByTestId("customer-search").fill("Ravi");
      await page.getByTestId("customer-result").first().click();
      await page.getByTestId("customer-chosen").waitFor();
      await page.getByRole("button", { name: "Pay", exact: true }).click();
      await page.getByRole("button", { name: "Credit", exact: true }).click();
      await page.getByTestId("payment-error").waitFor();
      await screenshots(page, "credit-over-limit");
      await page.getByRole("button", { name: "Manager approval", exact: true }).click();
      await approveAsManager(page);
      await page.getByRole("region", { name: "Receipt" }).waitFor({ timeout: 15_000 });
      await waitForPending(page, 0);
      assert.equal((await getDocument(`customers/${CUSTOMER_ID}`)).creditBalance.integerValue, "12000");
      const overridden = (await query("audit")).find(
        (a) => a.action.stringValue === "bill.finalize" && a.approvedBy,
      );
      assert.equal(overridden.approvedBy.stringValue, managerId);
      assert.equal(overridden.requestedBy.stringValue, cashierId);
      await newSale(page);

      // An unknown code added as a product at the counter: a manager's PIN first.
      const unknown = ean13("890100000099");
      await scanWithKeyboard(page, unknown);
      await page.getByTestId("unknown-code").waitFor();
      await page.keyboard.press("F8");
      await page.getByTestId("new-product-name").fill("Rusk");
      await page.getByTestId("new-product-price").fill("30");
      await page.getByTestId("save-new-product").click();
      await approveAsManager(page);
      await page.waitForFunction(() => document.querySelectorAll("[data-testid=cart-line]").length === 1);
      await waitForPending(page, 0);
      const created = (await query("audit")).find((a) => a.action.stringValue === "product.create");
      assert.equal(created.approvedBy.stringValue, managerId);
      await page.getByRole("button", { name: "Clear", exact: true }).click();

      // A customer created at the counter with a credit limit: a manager's to set.
      await page.getByTestId("new-customer").click();
      await page.getByTestId("customer-new-name").fill("Meena Devi");
      await page.getByTestId("customer-new-phone").fill("91234 56789");
      await page.getByTestId("customer-new-limit").fill("500");
      await page.getByTestId("add-customer").click();
      await approveAsManager(page);
      await page.getByTestId("customer-chosen").waitFor();
      await waitForPending(page, 0);
      const limited = (await query("customers")).find((c) => c.name.stringValue === "Meena Devi");
      assert.equal(limited.creditLimit.integerValue, "50000");
      await page.getByTestId("remove-customer").click();

      // A cashier's CSV import on the products page: a manager's PIN first, nothing before.
      await page.locator('nav.pages a[href="/products"]').click();
      await page.getByLabel("Import CSV").setInputFiles({
        name: "more.csv",
        mimeType: "text/csv",
        buffer: Buffer.from("name,sku,barcode,price,stock,tax_rate,unit,category,low_stock\nGhee 500ml,GHEE5,,320,4,12,piece,,\n", "utf8"),
      });
      await page.getByTestId("import-preview").waitFor();
      await page.getByTestId("import-confirm").click();
      await approveAsManager(page);
      await page.getByTestId("import-done").waitFor();
      await waitForPending(page, 0);
      const imported = (await query("audit")).find((a) => a.action.stringValue === "product.import");
      assert.equal(imported.approvedBy.stringValue, managerId);
      await page.locator('nav.pages a[href="/counter"]').click();

      // The bills page: the three bills, newest first, found by number.
      await page.locator('nav.pages a[href="/bills"]').click();
      await page.getByTestId("bills-page").waitFor();
      await page.waitForFunction(() => document.querySelectorAll("[data-testid=bill-row]").length === 3);
      const numbers = await page.getByTestId("bill-row").evaluateAll((rows) => rows.map((r) => r.dataset.number));
      assert.deepEqual([...numbers].sort().reverse(), numbers, "newest first");
      await screenshots(page, "bills-page");
      await page.getByTestId("find-bill").fill(numbers[2]);
      await page.waitForFunction(() => document.querySelectorAll("[data-testid=bill-row]").length === 1);
      await page.getByTestId("bill-row").click();
      await page.getByTestId("bill-detail").waitFor();
      await page.getByTestId("bill-void").waitFor();
      await screenshots(page, "bill-detail");

      // Another tablet scans this tablet's receipt: read from the server when online...
      const other = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      try {
        const second = await other.newPage();
        await second.goto(`${server.url}/counter?lockMinutes=0`);
        await signIn(second, MANAGER);
        await second.getByTestId("skip-pin").click();
        await second.getByLabel("Scan or search").waitFor();
        await waitForProductCount(second, 2);
        await waitForIdlePage(second);
        await scanWithKeyboard(second, refunded);
        const receipt = second.getByRole("region", { name: "Receipt" });
        await receipt.waitFor({ timeout: 15_000 });
        assert.equal(await receipt.getAttribute("data-bill-id"), refunded);
        await newSale(second);
        // ...and, once pulled (bills are), from the tablet itself when offline; a bill it has
        // not got is said to be elsewhere.
        await waitForStoreCount(second, "bills", 3);
        await other.setOffline(true);
        await scanWithKeyboard(second, voided);
        await receipt.waitFor({ timeout: 15_000 });
        assert.equal(await receipt.getAttribute("data-bill-id"), voided);
        await newSale(second);
        await scanWithKeyboard(second, "0193a0b0-0000-7000-8000-00000000beef");
        await second.getByTestId("counter-error").waitFor();
        assert.match(await second.getByTestId("counter-error").textContent(), /not on this tablet, and the tablet is offline/);
      } finally {
        await other.close();
      }
    } finally {
      await context.close();
    }
  });
});
