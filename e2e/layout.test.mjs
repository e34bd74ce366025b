// What a shopkeeper's walk through the screens at 800×1280 and 1280×800 showed cut or covered
// (e2e/walk-shop-day.mjs photographs every screen; these are the defects it found, checked in
// the page's own geometry rather than by eye):
//   - a weighed line's quantity is readable whole in its field, in every language ("1.25 kg",
//     "123.456 लीटर"; the field was a fixed width, and an earlier review saw "1.25 k");
//   - the top bar stays above the page when it scrolls (the scan box, a positioned element later
//     in the page, was painted over it, hiding the page links);
//   - "Complete sale", kept in view at the bottom while paying, hides nothing behind it when it
//     is disabled (it was translucent, and the fields it floats over showed through its label).

import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ARTIFACTS, appUrl, launchBrowser, startServer, temporaryDirectory } from "./harness.mjs";
import { ean13, scanWithKeyboard, seedProducts, seededId, waitForIdlePage, waitForProductCount } from "./counter-helpers.mjs";

const SHOP = "kirana-layout";
const PROJECT = "layout";
const CATALOGUE = [
  { id: seededId(1), name: "Parle-G 250g", price: 25_00, barcodes: [ean13("890106301001")], stock: 50 },
  { id: seededId(2), name: "Tata Salt 1kg", price: 28_00, barcodes: [ean13("890172520001")], stock: 40 },
  { id: seededId(3), name: "Amul Butter 100g", price: 56_00, barcodes: [ean13("890126200002")], stock: 30 },
  { id: seededId(4), name: "Tomatoes", price: 40_00, barcodes: [ean13("220000100000")], unit: "kg", stock: 100_000 },
  { id: seededId(5), name: "Mustard oil (loose)", price: 180_00, barcodes: [ean13("890126200019")], unit: "l", stock: 1_000_000 },
];
const code = (index) => CATALOGUE[index].barcodes[0];
// A scale label: 1.250 kg of tomatoes.
const TOMATO_LABEL = ean13("220000101250");
const SIZES = [
  [800, 1280],
  [1280, 800],
];

/** The quantity fields whose text does not fit them, with what they show. */
function cutQuantities(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll("[data-testid=cart-line-quantity]")]
      .filter((field) => field.scrollWidth > field.clientWidth)
      .map((field) => `"${field.value}" needs ${field.scrollWidth}px, has ${field.clientWidth}px`),
  );
}

async function waitForCartLines(page, count) {
  await page.waitForFunction((count) => document.querySelectorAll("[data-testid=cart-line]").length === count, count);
}

describe("the screens' layout at a tablet's sizes", () => {
  let server;
  let browser;
  before(async () => {
    [server, browser] = await Promise.all([startServer({ dataDir: temporaryDirectory("counterbook-layout-") }), launchBrowser()]);
    await seedProducts(server.url, PROJECT, SHOP, CATALOGUE);
  });
  after(async () => {
    await Promise.all([browser?.close(), server?.stop()]);
  });

  for (const language of ["en", "hi", "fr", "ar"]) {
    test(`weighed quantities are shown whole in the cart (${language})`, async () => {
      const context = await browser.newContext({ viewport: { width: 800, height: 1280 } });
      try {
        const page = await context.newPage();
        const url = appUrl(server.url, { endpoint: server.url, project: PROJECT, shop: SHOP, path: "/counter" });
        await page.goto(`${url}&language=${language}`);
        await page.getByTestId("scan-field").waitFor();
        await waitForProductCount(page, CATALOGUE.length);
        await waitForIdlePage(page);
        await page.getByTestId("scan-field").focus();
        for (const index of [0, 1, 2]) await scanWithKeyboard(page, code(index));
        await scanWithKeyboard(page, TOMATO_LABEL);
        await scanWithKeyboard(page, code(4));
        await waitForCartLines(page, 5);
        // A long loose quantity typed: 123.456 litres ("123.456 लीटर" in Hindi).
        const fields = page.getByTestId("cart-line-quantity");
        await fields.nth(4).fill("123.456");
        await fields.nth(4).evaluate((field) => field.blur());
        await page.waitForFunction(() => document.querySelectorAll("[data-testid=cart-line-quantity]")[4].value.startsWith("123.456 "));
        const shown = await fields.evaluateAll((inputs) => inputs.map((input) => input.value));
        assert.match(shown[3], /^1\.25 \S+$/, "the scale label's weight, with its unit");
        for (const [width, height] of SIZES) {
          await page.setViewportSize({ width, height });
          await page.screenshot({ path: join(ARTIFACTS, `layout-cart-${language}-${width}x${height}.png`) });
          assert.deepEqual(await cutQuantities(page), [], `quantity fields cut at ${width}×${height} in ${language}`);
        }
      } finally {
        await context.close();
      }
    });
  }

  test("the top bar stays above a scrolled page, and Complete sale hides nothing when disabled", async () => {
    const context = await browser.newContext({ viewport: { width: 800, height: 1280 } });
    try {
      const page = await context.newPage();
      await page.goto(appUrl(server.url, { endpoint: server.url, project: PROJECT, shop: SHOP, path: "/counter" }));
      await page.getByTestId("scan-field").waitFor();
      await waitForProductCount(page, CATALOGUE.length);
      await waitForIdlePage(page);
      await page.getByTestId("scan-field").focus();
      for (const index of [0, 1, 2, 0, 1]) await scanWithKeyboard(page, code(index));
      await scanWithKeyboard(page, TOMATO_LABEL);
      await waitForCartLines(page, 4);
      // Paid in two parts, card for more than the total: Complete sale is disabled, floating
      // at the bottom of the screen over the payment's fields.
      await page.getByTestId("pay").click();
      await page.getByRole("button", { name: "Card", exact: true }).click();
      await page.getByTestId("amount-card").fill("100000");
      // A longer bill than five lines makes the page taller than the screen; the same room
      // below it lets this one scroll as far.
      await page.evaluate(() => (document.body.style.paddingBottom = "1500px"));
      for (const [width, height] of SIZES) {
        await page.setViewportSize({ width, height });
        // The scan box (a positioned element) scrolled up to where the top bar is.
        await page.evaluate(() => window.scrollTo(0, document.querySelector(".scan-box").getBoundingClientRect().top + window.scrollY - 10));
        await page.waitForFunction(() => document.querySelector(".scan-box").getBoundingClientRect().top < 20);
        // What is at the middle of each page link is the link itself.
        const covered = await page.evaluate(() =>
          [...document.querySelectorAll("nav.pages a")]
            .filter((link) => {
              const box = link.getBoundingClientRect();
              const top = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
              return !link.contains(top);
            })
            .map((link) => link.textContent),
        );
        assert.deepEqual(covered, [], `page links covered at ${width}×${height}`);
        const complete = page.getByTestId("complete-sale");
        assert.equal(await complete.isDisabled(), true);
        const look = await complete.evaluate((button) => {
          const style = getComputedStyle(button);
          return { opacity: style.opacity, background: style.backgroundColor };
        });
        assert.equal(look.opacity, "1", `disabled Complete sale is opaque at ${width}×${height}`);
        assert.match(look.background, /^rgb\(/, `disabled Complete sale has a solid background: ${look.background}`);
      }
    } finally {
      await context.close();
    }
  });
});
