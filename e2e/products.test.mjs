// The products page against the real server: adding and editing with clear errors, stock
// moves, search and filters, a 10,000-row CSV import with bad rows (previewed, the good rows
// imported in a few dozen commits, the server ending with exactly them), and the virtualized
// list holding a small DOM over 100,000 products. Screenshots of every page at 800x1280 and
// 1280x800 go to e2e/artifacts/.

import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  ARTIFACTS,
  addProduct,
  appUrl,
  launchBrowser,
  listDocuments,
  openPage,
  startServer,
  temporaryDirectory,
  waitForBadge,
  waitForProducts,
} from "./harness.mjs";

const ROWS = 10_000;

/** EAN-13 with a right check digit for the 12 digits `body`. */
function ean13(body) {
  const sum = [...body].reduce((total, digit, i) => total + Number(digit) * (i % 2 ? 3 : 1), 0);
  return body + ((10 - (sum % 10)) % 10);
}

/**
 * A 10,000-row product CSV (semicolon-separated, with a byte-order mark) where some rows are
 * bad on purpose. Returns the text, the good names, and the numbers of the file's bad lines.
 */
function catalogueCsv() {
  const lines = ["name;sku;barcode;price;stock;tax_rate;unit;category;low_stock"];
  const good = [];
  const badLines = [];
  for (let i = 0; i < ROWS; i++) {
    const line = lines.length + 1;
    const name = `Import ${String(i).padStart(5, "0")}`;
    const barcode = ean13(`89${String(i).padStart(10, "0")}`);
    const category = ["Biscuits", "Dairy", "Rice", "Soap"][i % 4];
    if (i % 500 === 7) {
      lines.push(`${name};SKU-${i};${barcode};twelve;5;18;piece;${category};2`);
      badLines.push(line);
    } else if (i % 500 === 11) {
      lines.push(`;SKU-${i};${barcode};12.50;5;18;piece;${category};2`);
      badLines.push(line);
    } else if (i % 500 === 13) {
      lines.push(`${name};SKU-${i};${barcode};12.50;5;18;box;${category};2`);
      badLines.push(line);
    } else {
      const unit = i % 10 === 0 ? "kg" : "piece";
      const stock = unit === "kg" ? "2.500" : String(i % 40);
      lines.push(`${name};SKU-${i};${barcode};12.50;${stock};18;${unit};${category};3`);
      good.push(name);
    }
  }
  return { text: "\ufeff" + lines.join("\n") + "\n", good, badLines };
}

async function screenshots(page, name) {
  for (const [width, height] of [
    [800, 1280],
    [1280, 800],
  ]) {
    await page.setViewportSize({ width, height });
    await page.screenshot({ path: join(ARTIFACTS, `${name}-${width}x${height}.png`) });
  }
}

describe("the products page", () => {
  let server;
  let browser;
  before(async () => {
    [server, browser] = await Promise.all([
      startServer({ dataDir: temporaryDirectory("counterbook-products-") }),
      launchBrowser(),
    ]);
  });
  after(async () => {
    await Promise.all([browser?.close(), server?.stop()]);
  });

  test("add and edit say what is wrong; stock moves need what they need", async () => {
    const tablet = await browser.newContext();
    try {
      const page = await tablet.newPage();
      await page.goto(appUrl(server.url, { endpoint: server.url, project: "e2e-forms", shop: "s1" }));
      await waitForBadge(page, { connection: "Online", pending: 0 });
      const error = () => page.getByTestId("form-error").textContent();

      await page.getByTestId("product-price").fill("10");
      await page.getByTestId("add-product").click();
      await page.getByTestId("form-error").waitFor();
      assert.equal(await error(), "Enter the product's name.");

      await page.getByTestId("product-name").fill("Amul Butter 100g");
      await page.getByTestId("product-price").fill("56.5.0");
      await page.getByTestId("add-product").click();
      await page.waitForFunction(() =>
        document.querySelector("[data-testid=form-error]")?.textContent.includes("is not a number"),
      );

      await page.getByTestId("product-price").fill("56.50");
      await page.getByTestId("product-barcodes").fill("8901262010016 8901262010017");
      await page.getByTestId("add-product").click();
      await page.waitForFunction(() =>
        document.querySelector("[data-testid=form-error]")?.textContent.includes("wrong check digit"),
      );

      await page.getByTestId("product-barcodes").fill("8901262010016");
      await page.getByTestId("product-tax-rate").fill("120");
      await page.getByTestId("add-product").click();
      await page.waitForFunction(() =>
        document.querySelector("[data-testid=form-error]")?.textContent.includes("Tax rate"),
      );

      await page.getByTestId("product-tax-rate").fill("12");
      await page.getByTestId("product-sku").fill("AMUL-100");
      await page.getByTestId("product-category").fill("Dairy");
      await page.getByTestId("product-low-stock").fill("4");
      await page.getByTestId("product-opening-stock").fill("6");
      await page.getByTestId("add-product").click();
      await waitForProducts(page, ["Amul Butter 100g"]);
      const row = page.getByTestId("product-row").first();
      assert.equal(await row.getByTestId("product-stock").textContent(), "6");
      assert.match(await row.getByTestId("product-price-shown").textContent(), /56\.50/);

      // The same barcode on another product is refused, naming the one that has it.
      await page.getByTestId("product-name").fill("Another butter");
      await page.getByTestId("product-price").fill("50");
      await page.getByTestId("product-barcodes").fill("8901262010016");
      await page.getByTestId("add-product").click();
      await page.waitForFunction(() =>
        document
          .querySelector("[data-testid=form-error]")
          ?.textContent.includes("already used by Amul Butter 100g"),
      );
      await page.getByTestId("product-barcodes").fill("");
      await page.getByTestId("product-sku").fill("AMUL-100");
      await page.getByTestId("add-product").click();
      await page.waitForFunction(() =>
        document.querySelector("[data-testid=form-error]")?.textContent.includes("SKU AMUL-100"),
      );

      // Edit: the form fills with the product; a bad value is explained; a good one is saved.
      await row.getByTestId("edit-product").click();
      await page.waitForFunction(
        () => document.querySelector("[data-testid=product-name]").value === "Amul Butter 100g",
      );
      await page.getByTestId("product-low-stock").fill("-1");
      await page.getByTestId("add-product").click();
      await page.waitForFunction(() =>
        document.querySelector("[data-testid=form-error]")?.textContent.includes("Low stock at"),
      );
      await page.getByTestId("product-low-stock").fill("10");
      await page.getByTestId("product-price").fill("58");
      await page.getByTestId("add-product").click();
      await page.waitForFunction(() =>
        /58\.00/.test(document.querySelector("[data-testid=product-price-shown]")?.textContent),
      );
      // Stock 6 is now at or below 10: low.
      await page.getByTestId("low-stock").waitFor();

      // Stock: an adjustment needs a reason; a receipt adds.
      await row.getByTestId("stock-product").click();
      await page.getByTestId("stock-kind").selectOption("adjust");
      await page.getByTestId("stock-quantity").fill("-2");
      await page.getByTestId("save-stock").click();
      await page.waitForFunction(() =>
        document.querySelector("[data-testid=stock-error]")?.textContent.includes("needs a reason"),
      );
      await page.getByTestId("stock-reason").fill("two packs damaged");
      await page.getByTestId("save-stock").click();
      await page.getByTestId("stock-form").waitFor({ state: "detached" });
      await page.waitForFunction(
        () => document.querySelector("[data-testid=product-stock]")?.textContent === "4",
      );
      await row.getByTestId("stock-product").click();
      await page.getByTestId("stock-quantity").fill("20");
      await page.getByTestId("save-stock").click();
      await page.waitForFunction(
        () => document.querySelector("[data-testid=product-stock]")?.textContent === "24",
      );
      await waitForBadge(page, { connection: "Online", pending: 0 });
      // The server has the product's stock and both moves, with the reason.
      const [product] = await listDocuments(server.url, "e2e-forms", "shops/s1", "products");
      assert.equal(product.fields.stock.integerValue, "24");
      assert.equal(product.fields.price.integerValue, "5800");
      const moves = await listDocuments(server.url, "e2e-forms", "shops/s1", "stockMoves");
      assert.equal(moves.length, 3, "opening stock, adjustment, receipt");
      assert.ok(moves.some((move) => move.fields.reason?.stringValue === "two packs damaged"));
    } finally {
      await tablet.close();
    }
  });

  test("a 10,000-row CSV with bad rows: preview, good rows imported in a few dozen commits", async () => {
    const project = "e2e-import";
    const tablet = await browser.newContext();
    try {
      const page = await tablet.newPage();
      let commits = 0;
      page.on("request", (request) => {
        if (request.url().endsWith(":commit")) commits++;
      });
      await page.goto(appUrl(server.url, { endpoint: server.url, project, shop: "s1" }));
      await waitForBadge(page, { connection: "Online", pending: 0 });

      const { text, good, badLines } = catalogueCsv();
      await page.getByLabel("Import CSV").setInputFiles({
        name: "catalogue.csv",
        mimeType: "text/csv",
        buffer: Buffer.from(text, "utf8"),
      });
      await page.getByTestId("import-preview").waitFor({ timeout: 60_000 });
      assert.equal(Number(await page.getByTestId("import-ready-count").textContent()), good.length);
      assert.equal(Number(await page.getByTestId("import-error-count").textContent()), badLines.length);
      const shownRows = await page
        .getByTestId("import-error")
        .evaluateAll((rows) => rows.map((row) => Number(row.cells[0].textContent)));
      assert.deepEqual(shownRows, badLines, "every bad line is listed with its line number");
      assert.match(await page.getByTestId("import-errors").textContent(), /box/);
      await screenshots(page, "products-import-preview");

      await page.getByTestId("import-confirm").click();
      await page.getByTestId("import-progress").waitFor();
      await page.getByTestId("import-done").waitFor({ timeout: 120_000 });
      await page.waitForFunction(
        (count) => document.querySelector("[data-testid=product-count]")?.textContent === String(count),
        good.length,
      );
      await waitForBadge(page, { connection: "Online", pending: 0 }, 240_000);

      const onServer = await listDocuments(server.url, project, "shops/s1", "products");
      assert.deepEqual(
        onServer.map((document) => document.fields.name.stringValue).sort(),
        [...good].sort(),
        "the server has exactly the good rows",
      );
      // At most 498 writes per unit (two per product with opening stock): a few dozen commits.
      assert.ok(commits >= 20 && commits <= 60, `${commits} commits for ${good.length} products`);
      console.log(`import: ${good.length} products in ${commits} commits`);

      // Search: a name prefix narrows the list; a barcode is found by one lookup.
      await page.getByTestId("product-search").fill("import 0999");
      await waitForProducts(
        page,
        Array.from({ length: 10 }, (_, k) => `Import 0999${k}`),
      );
      await page.getByTestId("product-search").fill(ean13("890000001234"));
      await page.getByTestId("code-match").waitFor();
      assert.match(await page.getByTestId("code-match").textContent(), /Import 01234/);
      // Filters: low stock (stock at or below 3) within a category.
      await page.getByTestId("product-search").fill("");
      await page.getByTestId("filter-category").selectOption("Rice");
      await page.getByTestId("filter-low-stock").check();
      await page.waitForFunction(() => {
        const rows = [...document.querySelectorAll("[data-testid=product-row]")];
        return rows.length > 0 && rows.every((row) => row.querySelector("[data-testid=low-stock]"));
      });
      const lowRice = Number(await page.getByTestId("product-count").textContent());
      // Rice is i % 4 == 2; low is stock at or below 3: every 2.5 kg row (i % 10 == 0), and
      // pieces with i % 40 <= 3.
      const expected = good.filter((name) => {
        const i = Number(name.slice(-5));
        return i % 4 === 2 && (i % 10 === 0 || i % 40 <= 3);
      }).length;
      assert.equal(lowRice, expected);
      await screenshots(page, "products-filtered");

      // Export writes the same format back.
      await page.getByTestId("filter-low-stock").uncheck();
      await page.getByTestId("filter-category").selectOption("");
      const download = page.waitForEvent("download");
      await page.getByTestId("export-csv").click();
      const exported = await (await download).createReadStream();
      let csv = "";
      for await (const chunk of exported) csv += chunk;
      const exportedLines = csv.trim().split("\n");
      assert.equal(exportedLines[0].replace("\ufeff", ""), "name,sku,barcode,price,stock,tax_rate,unit,category,low_stock");
      assert.equal(exportedLines.length, good.length + 1);
    } finally {
      await tablet.close();
    }
  });

  test("the list keeps a small DOM over 100,000 products", async () => {
    const tablet = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const page = await tablet.newPage();
      const url = appUrl(server.url, { endpoint: server.url, project: "e2e-large", shop: "s1" });
      await page.goto(url);
      await waitForBadge(page, { connection: "Online", pending: 0 });
      // Seeded straight into this tablet's IndexedDB in the app's record form (no server
      // round trip: what is measured is the screen).
      await page.evaluate(async (count) => {
        const db = await new Promise((resolve, reject) => {
          const request = indexedDB.open("counterbook");
          request.onsuccess = () => resolve(request.result);
          request.onerror = () => reject(request.error);
        });
        await new Promise((resolve, reject) => {
          const transaction = db.transaction("products", "readwrite");
          const store = transaction.objectStore("products");
          for (let n = 0; n < count; n++) {
            const name = `Item ${String(n).padStart(6, "0")}`;
            store.put({
              id: `seed-${n}`,
              name,
              nameKey: name.toLowerCase(),
              priceMinor: 1000 + n,
              currency: "INR",
              barcodes: [],
              unit: "piece",
              taxRateBasisPoints: 0,
              stockOnHand: 10,
            });
          }
          transaction.oncomplete = resolve;
          transaction.onerror = () => reject(transaction.error);
        });
        db.close();
      }, 100_000);
      await page.reload();
      await page.waitForFunction(
        () => document.querySelector("[data-testid=product-count]")?.textContent === "100000",
        null,
        { timeout: 60_000 },
      );
      await page.getByTestId("product-row").first().waitFor();
      const rowsInDom = () => page.locator("[data-testid=product-list] > li").count();
      assert.ok((await rowsInDom()) < 40, `${await rowsInDom()} rows in the DOM`);

      // A jump to the middle shows the rows there, still few in the DOM.
      await page.locator(".product-scroller").evaluate((scroller) => {
        scroller.scrollTop = 50_000 * 64;
      });
      await page.waitForFunction(() =>
        [...document.querySelectorAll("[data-testid=product-row-name]")].some(
          (name) => name.textContent === "Item 050002",
        ),
      );
      assert.ok((await rowsInDom()) < 40, `${await rowsInDom()} rows in the DOM after the jump`);
      await screenshots(page, "products-100000");
      await page.setViewportSize({ width: 1280, height: 800 });

      // The other pages, for the screenshots.
      await openPage(page, "/counter");
      await page.getByTestId("counter-page").waitFor();
      await screenshots(page, "counter");
      await openPage(page, "/sync");
      await page.getByTestId("status-panel").waitFor();
      await screenshots(page, "sync");
      // Back, and the list is there again.
      await page.goBack();
      await page.goBack();
      await page.waitForFunction(() => location.pathname === "/products");
      await page.getByTestId("product-row").first().waitFor();
    } finally {
      await tablet.close();
    }
  });
});
