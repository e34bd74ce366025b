// The shop settings page (issue 10, Settings): the tax rates, the receipt header and the
// barcode rules for weighed and priced items are set there, what is typed wrong is named and
// nothing is saved until it is right, and what is saved is used: the header is on the next
// receipt, the rates are offered in the product form, a new weight rule reads its scale labels
// at the counter, and everything survives a reload (it is stored and synced as the shop's
// profile, on the real server).

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { appUrl, listDocuments, openPage, serverAndBrowserForTests } from "./harness.mjs";
import { ean13, scanWithKeyboard, screenshots, seedProducts, seededId, waitForProductCount } from "./counter-helpers.mjs";

const SHOP = "kirana-settings";
const PROJECT = "settings-project";
const CATALOGUE = [
  { id: seededId(1), name: "Parle-G 250g", price: 25_00, barcodes: [ean13("890106301001")], stock: 50 },
  // Sold loose; its scale prints labels with prefix 26, which no default rule knows.
  { id: seededId(2), name: "Onions", price: 30_00, barcodes: [ean13("260000200000")], unit: "kg", stock: 10_000 },
];
// A scale label for 0.750 kg of onions: 26 00002 00750 C.
const ONION_LABEL = ean13("260000200750");
const HEADER = "Open 8 am to 10 pm, closed Tuesdays";

async function waitForMessage(page, expected) {
  await page.waitForFunction(
    (expected) => document.querySelector("[data-testid=shop-settings] .form-message")?.textContent === expected,
    expected,
    { timeout: 15_000 },
  );
}

async function fill(page, testId, value) {
  await page.getByTestId(testId).fill(value);
}

describe("shop settings", () => {
  const started = serverAndBrowserForTests("counterbook-settings-", (server) =>
    seedProducts(server.url, PROJECT, SHOP, CATALOGUE),
  );

  test("tax rates, receipt header and barcode rules: bad input named, good input saved and used", async () => {
    const { server, browser } = started;
    const context = await browser.newContext({ viewport: { width: 800, height: 1280 } });
    try {
      const page = await context.newPage();
      await page.goto(appUrl(server.url, { endpoint: server.url, project: PROJECT, shop: SHOP, path: "/counter" }));
      await waitForProductCount(page, CATALOGUE.length);

      // Before the rule exists, the onion label is an unknown code.
      await scanWithKeyboard(page, ONION_LABEL);
      await page.getByTestId("unknown-code").waitFor({ timeout: 15_000 });

      await openPage(page, "/settings");
      const settings = page.getByTestId("shop-settings");
      await settings.waitFor();
      await page.waitForFunction(
        () => document.querySelector("[data-testid=settings-tax-rates]")?.value === "0, 5, 12, 18, 28",
        null,
        { timeout: 15_000 },
      );
      assert.equal(
        await page.getByTestId("settings-barcode-rules").inputValue(),
        "21 5 price 2\n22 5 weight 3\n23 5 weight 3",
      );

      // Each mistake is named; nothing is saved while one remains.
      await fill(page, "settings-rounding", "a rupee");
      await page.getByTestId("save-shop-settings").click();
      await waitForMessage(page, "Cash rounding is a whole number of minor units, such as 100.");
      await fill(page, "settings-rounding", "100");
      await fill(page, "settings-tax-rates", "0, 9, 190");
      await page.getByTestId("save-shop-settings").click();
      await waitForMessage(page, 'The tax rate "190" is not a percentage from 0 to 100 with at most 2 decimals.');
      await fill(page, "settings-tax-rates", "0, 9, 19.5");
      await fill(page, "settings-barcode-rules", "21 5 price 2\n36 5 weight 3");
      await page.getByTestId("save-shop-settings").click();
      await waitForMessage(
        page,
        'The barcode rule "36" cannot be used: write prefix (starting with 2), item digits, price or weight, decimals, such as 21 5 price 2.',
      );
      await screenshots(page, "settings-bad-barcode-rule");
      const profiles = async () =>
        (await listDocuments(server.url, PROJECT, `shops/${SHOP}`, "settings")).filter((document) =>
          document.name.endsWith("/settings/profile"),
        );
      assert.deepEqual(await profiles(), [], "nothing was saved while a field was wrong");

      await fill(page, "settings-barcode-rules", "21 5 price 2\n22 5 weight 3\n26 5 weight 3");
      await fill(page, "settings-header", HEADER);
      await page.getByTestId("save-shop-settings").click();
      await waitForMessage(page, "Saved.");
      await screenshots(page, "settings-saved");

      // On the server, as the shop's profile.
      let profile;
      for (let attempt = 0; attempt < 150 && !profile; attempt++) {
        [profile] = await profiles();
        if (!profile) await page.waitForTimeout(100);
      }
      assert.ok(profile, "the profile reached the server");
      assert.equal(profile.fields.receiptHeader.stringValue, HEADER);
      assert.deepEqual(
        profile.fields.taxRates.arrayValue.values.map((value) => Number(value.integerValue)),
        [0, 900, 1950],
      );

      // After a reload the page shows what was saved.
      await page.reload();
      await page.getByTestId("shop-settings").waitFor();
      await page.waitForFunction(
        (header) => document.querySelector("[data-testid=settings-header]")?.value === header,
        HEADER,
        { timeout: 15_000 },
      );
      assert.equal(await page.getByTestId("settings-tax-rates").inputValue(), "0, 9, 19.5");

      // The product form offers the shop's rates.
      await openPage(page, "/products");
      await page.waitForFunction(
        () => [...document.querySelectorAll("#shop-tax-rates option")].map((option) => option.value).join(" ") === "0 9 19.5",
        null,
        { timeout: 15_000 },
      );
      assert.equal(await page.getByTestId("product-tax-rate").getAttribute("list"), "shop-tax-rates");

      // The counter reads the new rule: 0.750 kg of onions; the receipt carries the header.
      await openPage(page, "/counter");
      await scanWithKeyboard(page, ONION_LABEL);
      const line = page.getByTestId("cart-line");
      await line.waitFor({ timeout: 15_000 });
      assert.equal(await line.getByTestId("cart-line-name").textContent(), "Onions");
      assert.equal(await line.getByTestId("cart-line-amount").textContent(), "₹22.50", "0.750 kg at ₹30.00");
      await page.getByTestId("pay").click();
      await page.getByTestId("amount-received").fill("25");
      await page.getByTestId("complete-sale").click();
      const receipt = page.getByTestId("receipt");
      await receipt.waitFor({ timeout: 15_000 });
      assert.equal(await receipt.getByTestId("receipt-header").textContent(), HEADER);
      await screenshots(page, "settings-receipt-header");
    } finally {
      await context.close();
    }
  });
});
