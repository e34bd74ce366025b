// The counter end to end, on the real server: a sale rung up by a keyboard-wedge scanner
// (keys a few ms apart, the focus in another field, an AZERTY layout), a repeat scan, an
// unknown code, a weighed item; cash with change; the receipt with its bill number, printed at
// 58 and 80 mm, its QR code decoded to the bill id and scanned to open the bill again, and
// sent to a (fake) Web Serial receipt printer whose ESC/POS bytes are decoded; split payment,
// credit refused over the limit, park and resume; an unknown code added as a product from the
// counter, a UPI payment confirmed after the sale, the tablet's name on the receipt; an offline
// sale, a reload, sync; a second tablet finding the first one's customer and printing its
// shop profile; and two tablets selling offline with distinct bill numbers and exact stock on
// the server (the last two also on Google's Firestore emulator).

import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  ARTIFACTS,
  appUrl,
  launchBrowser,
  listDocuments,
  startEmulator,
  startServer,
  temporaryDirectory,
  waitForBadge,
} from "./harness.mjs";
import {
  decodeEscPos,
  decodeQrInPng,
  ean13,
  fakeSerialPrinter,
  jsQR,
  rasterToRgba,
  scanOnAzerty,
  scanWithKeyboard,
  screenshots,
  seedProducts,
  seededId,
  waitForIdlePage,
  waitForProductCount,
} from "./counter-helpers.mjs";

const SHOP = "kirana-1";
// Five products sold by the piece, one sold by weight (its scale labels: prefix 22).
const CATALOGUE = [
  { id: seededId(1), name: "Parle-G 250g", price: 25_00, barcodes: [ean13("890106301001")], stock: 50 },
  { id: seededId(2), name: "Tata Salt 1kg", price: 28_00, barcodes: [ean13("890172520001")], stock: 40 },
  { id: seededId(3), name: "Amul Butter 100g", price: 56_00, barcodes: [ean13("890126200002")], stock: 30 },
  { id: seededId(4), name: "Maggi 70g", price: 14_00, barcodes: [ean13("890105802001")], stock: 60 },
  { id: seededId(5), name: "Lux Soap", price: 35_00, barcodes: [ean13("890103000001")], stock: 20 },
  { id: seededId(6), name: "Tomatoes", price: 40_00, barcodes: [ean13("220000100000")], unit: "kg", stock: 10_000 },
];
const code = (index) => CATALOGUE[index].barcodes[0];
// A scale label for 1.250 kg of tomatoes: 22 00001 01250 C.
const TOMATO_LABEL = ean13("220000101250");

function counterUrl(server, endpoint, project) {
  return appUrl(server.url, { endpoint, project, shop: SHOP, path: "/counter" });
}

async function openCounter(context, url, products = CATALOGUE.length) {
  const page = await context.newPage();
  await page.goto(url);
  await page.getByLabel("Scan or search").waitFor();
  await waitForProductCount(page, products);
  await waitForIdlePage(page);
  return page;
}

/** Waits until the counter's profile reads exactly `name`; if it does not, the error says
 * where the name is: on the server, in the tablet's IndexedDB, on the screen. */
async function waitForShopName(page, name, { endpoint, project }) {
  const shown = page.getByTestId("profile-shop-name");
  try {
    await shown.filter({ hasText: new RegExp(`^${name}$`) }).waitFor();
  } catch (error) {
    const settings = await listDocuments(endpoint, project, `shops/${SHOP}`, "settings");
    const kept = await page.evaluate(
      () =>
        new Promise((resolve, reject) => {
          const open = indexedDB.open("counterbook");
          open.onerror = () => reject(open.error);
          open.onsuccess = () => {
            const request = open.result.transaction("meta").objectStore("meta").get("shopSettings");
            request.onsuccess = () => resolve(request.result?.shopName ?? null);
            request.onerror = () => reject(request.error);
          };
        }),
    );
    const where = {
      server: settings.map((profile) => profile.fields.shopName?.stringValue),
      indexedDb: kept,
      screen: await shown.allTextContents(),
    };
    throw new Error(`${error.message}\nthe shop's name: ${JSON.stringify(where)}`);
  }
}

/** The cart as the screen shows it: [name, quantity] per line. */
function cartOf(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll("[data-testid=cart-line]")].map((row) => [
      row.querySelector("[data-testid=cart-line-name]").textContent,
      row.querySelector("[data-testid=cart-line-quantity]").value,
    ]),
  );
}

async function waitForCartLines(page, count) {
  try {
    await page.waitForFunction(
      (count) => document.querySelectorAll("[data-testid=cart-line]").length === count,
      count,
      { timeout: 15_000 },
    );
  } catch (error) {
    const cart = JSON.stringify(await cartOf(page));
    const notice = await page.evaluate(() => document.querySelector(".counter-notice")?.textContent);
    const shown = `${cart} ${notice} ` + await page.evaluate(() => [document.activeElement?.outerHTML, ...[...document.querySelectorAll("input")].map((i) => i.dataset.testid + "=" + i.value), document.querySelector("main")?.innerText.slice(0, 80)].join("\n"));
    throw new Error(`the cart did not reach ${count} lines: ${error.message}\n${shown}`);
  }
}

/** What the counter shows, for a failing step's message. */
function screenText(page) {
  return page.evaluate(() =>
    [
      ...[...document.querySelectorAll("main input")].map((i) => `${i.dataset.testid}=${i.value}`),
      document.querySelector("main")?.innerText,
    ].join("\n"),
  );
}

async function completeSale(page) {
  await page.getByRole("button", { name: "Complete sale", exact: true }).click();
  const receipt = page.getByRole("region", { name: "Receipt" });
  await receipt.waitFor({ timeout: 15_000 }).catch(async (error) => {
    throw new Error(`no receipt: ${error.message}\n${await screenText(page)}`);
  });
  return (await receipt.getByTestId("bill-number").textContent()).trim();
}

async function newSale(page) {
  await page.getByRole("button", { name: "New sale", exact: true }).click();
  await page.getByRole("region", { name: "Receipt" }).waitFor({ state: "detached" });
}

/** The PDF's first page width in millimetres (from its MediaBox). */
function pdfPageWidthMm(pdf) {
  const box = pdf.toString("latin1").match(/\/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]/);
  assert.ok(box, "the PDF has a MediaBox");
  return (Number(box[1]) / 72) * 25.4;
}

describe("the counter", () => {
  let server;
  let browser;
  before(async () => {
    [server, browser] = await Promise.all([
      startServer({ dataDir: temporaryDirectory("counterbook-counter-") }),
      launchBrowser(),
    ]);
  });
  after(async () => {
    await Promise.all([browser?.close(), server?.stop()]);
  });

  test("a sale rung up by scanner, paid cash, with its receipt printed and scanned", async () => {
    const project = `e2e-counter-${Date.now()}`;
    const unknownCode = ean13("036000291452");
    // A product whose UPC-A is the unknown code's first twelve digits: the counter looks a
    // code up as soon as it is a whole barcode, before the scanner has finished it.
    const decoy = { id: seededId(99), name: "Decoy UPC-A", price: 1_00, barcodes: ["036000291452"], stock: 5 };
    await seedProducts(server.url, project, SHOP, [...CATALOGUE, decoy]);
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await context.addInitScript(fakeSerialPrinter);
    try {
      const page = await openCounter(context, counterUrl(server, server.url, project), CATALOGUE.length + 1);

      // The focus is in another field: the customer search. The scanner types there anyway.
      await page.getByTestId("customer-search").focus();
      await scanWithKeyboard(page, code(0));
      await waitForCartLines(page, 1);
      assert.equal(await page.getByTestId("customer-search").inputValue(), "", "no digit leaked");
      await scanWithKeyboard(page, code(1), 9);
      await scanWithKeyboard(page, code(2), 5);
      // A French AZERTY layout: `key` is "&é\"'(-è_çà", `code` is Digit1..Digit0.
      await scanOnAzerty(page, code(3));
      await scanWithKeyboard(page, code(4));
      await waitForCartLines(page, 5);
      // A repeat scan adds to the quantity; its Enter never adds a second line.
      await scanWithKeyboard(page, code(0));
      await page.waitForFunction(
        () => document.querySelector("[data-testid=cart-line-quantity]").value === "2",
      );
      await waitForCartLines(page, 5);

      // An unknown code says so at once, with a way to add the product; the product found by
      // its first twelve digits while the scanner was still typing is never added.
      await scanWithKeyboard(page, unknownCode);
      const unknown = page.getByTestId("unknown-code");
      await unknown.waitFor();
      assert.match(await unknown.textContent(), new RegExp(`Unknown code ${unknownCode}`));
      assert.equal(await unknown.getByRole("button", { name: "Add product" }).count(), 1);
      assert.equal((await cartOf(page)).length, 5, "nothing added for the unknown code");

      // A scan on AZERTY with the focus nowhere, of a code starting with 6: its first key types
      // "-" (the quantity shortcut) before the scan is recognised; it must not take one off.
      await page.evaluate(() => document.activeElement?.blur());
      const chineseCode = ean13("690000000001");
      await scanOnAzerty(page, chineseCode);
      await page.getByTestId("unknown-code").filter({ hasText: chineseCode }).waitFor();
      assert.equal((await cartOf(page))[0][1], "2", "the scan's first key changed no quantity");

      // A scale label: 1.250 kg of tomatoes, on its own line.
      await scanWithKeyboard(page, TOMATO_LABEL);
      await waitForCartLines(page, 6);
      const cart = await cartOf(page);
      assert.deepEqual(cart, [
        ["Parle-G 250g", "2"],
        ["Tata Salt 1kg", "1"],
        ["Amul Butter 100g", "1"],
        ["Maggi 70g", "1"],
        ["Lux Soap", "1"],
        ["Tomatoes", "1.25 kg"],
      ]);
      // 2 × 25 + 28 + 56 + 14 + 35 + 1.25 × 40 = 233.
      assert.match(await page.getByTestId("total").textContent(), /233\.00/);
      await screenshots(page, "counter-cart");

      // Cash: 500 received, 267 change due.
      await page.keyboard.press("F2");
      await page.getByLabel("Amount received").fill("500");
      await page.getByTestId("change-due").waitFor();
      assert.match(await page.getByTestId("change-due").textContent(), /267\.00/);
      const billNumber = await completeSale(page);
      assert.match(billNumber, /^T[0-9A-Z]{5}-000001$/);
      const receipt = page.getByRole("region", { name: "Receipt" });
      assert.match(await receipt.textContent(), /Change/);
      assert.equal(await receipt.getByTestId("receipt-line").count(), 6);
      const billId = await receipt.getAttribute("data-bill-id");

      await screenshots(page, "receipt");

      // The receipt's QR code, decoded from a screenshot, is the bill id.
      const qrPng = await receipt.getByTestId("receipt-qr").screenshot();
      assert.equal(await decodeQrInPng(page, qrPng), billId);

      // Printed at 58 and 80 mm: pages of the paper's width, no margins.
      for (const width of [58, 80]) {
        await page.getByTestId("paper-width").selectOption(String(width));
        await page.emulateMedia({ media: "print" });
        const pdf = await page.pdf({ preferCSSPageSize: true, printBackground: true });
        // Every line of the printed receipt fits the paper: nothing reaches past its right edge.
        const overflow = await page.evaluate(() => {
          const receipt = document.querySelector("[data-testid=receipt]");
          const right = receipt.getBoundingClientRect().right + 0.5;
          return [...receipt.querySelectorAll("*")]
            .filter((element) => element.getBoundingClientRect().right > right)
            .map((element) => element.textContent.slice(0, 40));
        });
        assert.deepEqual(overflow, [], `lines wider than ${width} mm paper`);
        const printed = await page.getByTestId("receipt").screenshot();
        writeFileSync(join(ARTIFACTS, `receipt-${width}mm-print.png`), printed);
        await page.emulateMedia({ media: "screen" });
        writeFileSync(join(ARTIFACTS, `receipt-${width}mm.pdf`), pdf);
        assert.ok(Math.abs(pdfPageWidthMm(pdf) - width) < 0.5, `${width} mm paper`);
      }

      // Straight to the receipt printer (a fake Web Serial device): ESC/POS raster with a cut.
      await page.getByTestId("print-serial").click();
      await page.getByTestId("print-message").waitFor();
      assert.equal(await page.getByTestId("print-message").textContent(), "Sent to the receipt printer.");
      const printed = decodeEscPos(await page.evaluate(() => window.__printed));
      assert.equal(printed.commands[0], "initialise");
      assert.ok(printed.commands.includes("raster"));
      assert.equal(printed.commands.at(-1), "partial-cut");
      assert.equal(printed.width, 576, "80 mm paper is 576 dots across");
      const printedQr = jsQR(rasterToRgba(printed), printed.width, printed.height);
      assert.equal(printedQr?.data, billId, "the printed QR code is the bill id");

      // Scanning the receipt's QR code at the counter opens the bill again, even with its keys
      // reaching the page late: the first five given back to the scan field as typing after a
      // quarter of a second, then the rest, stamped as one burst. The field keeps none of it.
      await newSale(page);
      await scanWithKeyboard(page, billId, 6, undefined, { lateAfter: 5 });
      await receipt.waitFor({ timeout: 15_000 }).catch(async (error) => {
        throw new Error(`the bill did not open: ${error.message}\n${await screenText(page)}`);
      });
      assert.equal((await receipt.getByTestId("bill-number").textContent()).trim(), billNumber);
      assert.equal(await page.getByTestId("scan-field").inputValue(), "", "no key of the scan left");
      await newSale(page);

      // The bill, its stock moves and the stock reach the server exactly.
      await waitForBadge(page, { connection: "Online", pending: 0 });
      const bills = await listDocuments(server.url, project, `shops/${SHOP}`, "bills");
      assert.deepEqual(bills.map((b) => b.fields.number.stringValue), [billNumber]);
      const moves = await listDocuments(server.url, project, `shops/${SHOP}`, "stockMoves");
      assert.equal(moves.length, 6);
      const products = await listDocuments(server.url, project, `shops/${SHOP}`, "products");
      const stock = Object.fromEntries(
        products.map((p) => [p.fields.name.stringValue, Number(p.fields.stock.integerValue)]),
      );
      assert.deepEqual(stock, {
        "Parle-G 250g": 48,
        "Tata Salt 1kg": 39,
        "Amul Butter 100g": 29,
        "Maggi 70g": 59,
        "Lux Soap": 19,
        Tomatoes: 8_750,
        "Decoy UPC-A": 5,
      });
    } finally {
      await context.close();
    }
  });
  test("split payment, credit refused over the limit, park and resume", async () => {
    const project = `e2e-counter-pay-${Date.now()}`;
    await seedProducts(server.url, project, SHOP, CATALOGUE);
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const page = await openCounter(context, counterUrl(server, server.url, project));
      await page.getByLabel("Scan or search").focus();

      // Park a bill; it survives a reload; resume it.
      await scanWithKeyboard(page, code(4));
      await scanWithKeyboard(page, code(4));
      await waitForCartLines(page, 1);
      await page.keyboard.press("F4");
      await waitForCartLines(page, 0);
      await page.getByTestId("parked-bill").waitFor();
      await screenshots(page, "counter-parked");
      await page.reload();
      await page.getByTestId("resume-bill").click();
      await waitForCartLines(page, 1);
      assert.deepEqual(await cartOf(page), [["Lux Soap", "2"]]);

      // Split: 50 by card, the rest (20) in cash.
      await page.getByRole("button", { name: "Pay", exact: true }).click();
      await page.getByRole("button", { name: "Card", exact: true }).click();
      await page.getByTestId("amount-card").fill("50");
      await page.getByLabel("Amount received").fill("20");
      const split = await completeSale(page);
      const receipt = page.getByRole("region", { name: "Receipt" });
      const paid = await receipt.getByTestId("receipt-payment").allTextContents();
      assert.deepEqual(paid.map((p) => p.trim()).sort(), ["Card", "Cash"].sort());
      await newSale(page);

      // A customer created at the counter with a credit limit of 100; credit of 112 is refused.
      await scanWithKeyboard(page, code(2));
      await scanWithKeyboard(page, code(2));
      await waitForCartLines(page, 1);
      await page.getByTestId("new-customer").click();
      await page.getByTestId("customer-new-name").fill("Ravi Kumar");
      await page.getByTestId("customer-new-phone").fill("98765 43210");
      await page.getByTestId("customer-new-limit").fill("100");
      await screenshots(page, "counter-new-customer");
      await page.getByTestId("add-customer").click();
      await page.getByTestId("customer-chosen").waitFor();
      await page.getByRole("button", { name: "Pay", exact: true }).click();
      await page.getByRole("button", { name: "Credit", exact: true }).click();
      await page.getByTestId("payment-error").waitFor();
      assert.match(await page.getByTestId("payment-error").textContent(), /Credit refused/);
      assert.equal(await page.getByRole("button", { name: "Complete sale", exact: true }).isDisabled(), true);

      // 60 on credit (within the limit) and the rest by UPI, shown as a QR code.
      await page.getByTestId("amount-credit").fill("60");
      await page.getByRole("button", { name: "UPI", exact: true }).click();
      await page.getByTestId("upi-status").waitFor();
      assert.equal(await page.getByTestId("upi-status").textContent(), "UPI, unconfirmed");
      await page.getByTestId("confirm-upi").click();
      await page.waitForFunction(
        () => document.querySelector("[data-testid=upi-status]").textContent === "UPI, confirmed",
      );
      await screenshots(page, "counter-payment");
      const credit = await completeSale(page);
      assert.notEqual(credit, split);
      const balance = await page.getByRole("region", { name: "Receipt" }).getByTestId("receipt-balance").textContent();
      assert.match(balance, /60\.00/);
      assert.equal(await page.getByTestId("send-whatsapp").count(), 1, "a WhatsApp link for a customer with a phone");
      await newSale(page);
      await waitForBadge(page, { connection: "Online", pending: 0 });
      const customers = await listDocuments(server.url, project, `shops/${SHOP}`, "customers");
      assert.equal(customers.length, 1);
      assert.equal(Number(customers[0].fields.creditBalance.integerValue), 60_00);
    } finally {
      await context.close();
    }
  });
});

describe("the counter adds what it does not know", () => {
  let server;
  let browser;
  before(async () => {
    [server, browser] = await Promise.all([
      startServer({ dataDir: temporaryDirectory("counterbook-counter-add-") }),
      launchBrowser(),
    ]);
  });
  after(async () => {
    await Promise.all([browser?.close(), server?.stop()]);
  });

  test("an unknown code added as a product and sold, its UPI payment confirmed after the sale, the tablet named on the receipt", async () => {
    const project = `e2e-counter-add-${Date.now()}`;
    await seedProducts(server.url, project, SHOP, CATALOGUE);
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const page = await openCounter(context, counterUrl(server, server.url, project));

      // The tablet's name (a device setting) and the shop's UPI id.
      await page.getByTestId("shop-profile").locator("summary").click();
      await page.getByTestId("profile-upi-id").fill("sharma@okbank");
      await page.getByTestId("profile-device-name").fill("Counter 2");
      await page.getByTestId("save-profile").click();
      await page.getByTestId("profile-message").filter({ hasText: "Saved." }).waitFor();
      await page.getByTestId("shop-profile").locator("summary").click();

      // An unknown code: added from the counter with the code filled in, and on the bill.
      await page.getByLabel("Scan or search").focus();
      const newCode = ean13("890123456789");
      await scanWithKeyboard(page, newCode);
      const unknown = page.getByTestId("unknown-code");
      await unknown.getByRole("button", { name: "Add product" }).waitFor();
      // Its key, F8, opens the form with the focus on the name.
      await page.keyboard.press("F8");
      await page.waitForFunction(() => document.activeElement?.dataset.testid === "new-product-name");
      await page.getByTestId("new-product-name").fill("Haldi 100g");
      await page.getByTestId("new-product-price").fill("abc");
      await page.getByRole("button", { name: "Add and sell" }).click();
      await page.getByTestId("new-product-error").waitFor();
      assert.match(await page.getByTestId("new-product-error").textContent(), /"abc" is not a number/, "bad input gets a clear error");
      await page.getByTestId("new-product-price").fill("32.50");
      await page.getByTestId("new-product-tax-rate").fill("5");
      await screenshots(page, "counter-add-product");
      await page.getByRole("button", { name: "Add and sell" }).click();
      await waitForCartLines(page, 1);
      assert.deepEqual(await cartOf(page), [["Haldi 100g", "1"]]);
      // Scanned again, it is a known product now: the quantity goes up.
      await scanWithKeyboard(page, newCode);
      await page.waitForFunction(
        () => document.querySelector("[data-testid=cart-line-quantity]").value === "2",
      );

      // Paid by UPI and not confirmed yet: the bill says so, and so does the receipt.
      await page.getByRole("button", { name: "UPI", exact: true }).click();
      await page.getByTestId("upi-qr").waitFor();
      await page.waitForFunction(() =>
        /&tn=T/.test(document.querySelector("[data-testid=upi-qr]").dataset.upiUrl),
      );
      const upiUrl = await page.getByTestId("upi-qr").getAttribute("data-upi-url");
      assert.match(upiUrl, /^upi:\/\/pay\?pa=sharma@okbank&pn=My%20shop&am=65\.00&tn=/);
      assert.equal(await page.getByTestId("upi-status").textContent(), "UPI, unconfirmed");
      const billNumber = await completeSale(page);
      assert.match(upiUrl, new RegExp(`&tn=${billNumber}&`), "the UPI note is the bill number");
      const receipt = page.getByRole("region", { name: "Receipt" });
      assert.deepEqual(
        (await receipt.getByTestId("receipt-payment").allTextContents()).map((p) => p.trim()),
        ["UPI (unconfirmed)"],
      );
      assert.match(await receipt.textContent(), /Device Counter 2/);
      assert.equal(await page.getByTestId("receipt-upi-status").textContent(), "UPI, unconfirmed");
      const billId = await receipt.getAttribute("data-bill-id");
      await screenshots(page, "receipt-upi-unconfirmed");
      await newSale(page);

      // Later the money shows on the shop's phone: the bill opened again by its QR code, and
      // its UPI payment confirmed there.
      await scanWithKeyboard(page, billId);
      await receipt.waitFor();
      assert.equal((await receipt.getByTestId("bill-number").textContent()).trim(), billNumber);
      assert.equal(await page.getByRole("button", { name: "Confirm UPI received" }).count(), 1);
      await page.keyboard.press("F8");
      await page.getByTestId("receipt-upi-status").waitFor({ state: "detached" });
      assert.deepEqual(
        (await receipt.getByTestId("receipt-payment").allTextContents()).map((p) => p.trim()),
        ["UPI"],
      );
      await newSale(page);

      // On the server: the product with its barcode, sold twice; the bill with the tablet's
      // name; the UPI payment confirmed.
      await waitForBadge(page, { connection: "Online", pending: 0 });
      const products = await listDocuments(server.url, project, `shops/${SHOP}`, "products");
      const haldi = products.find((p) => p.fields.name.stringValue === "Haldi 100g");
      assert.deepEqual(haldi.fields.barcodes.arrayValue.values.map((v) => v.stringValue), [newCode]);
      assert.equal(haldi.fields.price.integerValue, "3250");
      assert.equal(haldi.fields.taxRateBp.integerValue, "500");
      assert.equal(Number(haldi.fields.stock.integerValue), -2);
      const bills = await listDocuments(server.url, project, `shops/${SHOP}`, "bills");
      assert.equal(bills.length, 1);
      assert.equal(bills[0].fields.deviceName.stringValue, "Counter 2");
      const payments = await listDocuments(server.url, project, `shops/${SHOP}`, "payments");
      assert.deepEqual(
        payments.map((p) => [p.fields.method.stringValue, p.fields.confirmed.booleanValue]),
        [["upi", true]],
      );
    } finally {
      await context.close();
    }
  });
});

describe("selling offline", () => {
  let server;
  let emulator;
  let browser;
  before(async () => {
    [server, emulator, browser] = await Promise.all([
      startServer({ dataDir: temporaryDirectory("counterbook-counter-offline-") }),
      startEmulator(),
      launchBrowser(),
    ]);
  });
  after(async () => {
    await Promise.all([browser?.close(), server?.stop(), emulator?.stop()]);
  });

  for (const backend of ["counterbook-server", "firestore-emulator"]) {
    test(`a second tablet finds the first one's customer and prints its shop profile (${backend})`, async () => {
      const endpoint = backend === "counterbook-server" ? server.url : emulator.url;
      const project = `e2e-counter-second-${Date.now()}`;
      await seedProducts(endpoint, project, SHOP, CATALOGUE);
      const url = counterUrl(server, endpoint, project);
      const tablets = [await browser.newContext(), await browser.newContext()];
      try {
        const first = await openCounter(tablets[0], url);
        await first.getByTestId("shop-profile").locator("summary").click();
        const profile = {
          "profile-name": "Sharma General Store",
          "profile-address": "12 MG Road, Pune",
          "profile-phone": "020 2612 3456",
          "profile-tax-id": "27AAPFU0939F1ZV",
          "profile-footer": "Thank you! Visit again.",
        };
        for (const [testid, value] of Object.entries(profile)) await first.getByTestId(testid).fill(value);
        if (backend === "counterbook-server") await screenshots(first, "counter-profile");
        await first.getByTestId("save-profile").click();
        await first.getByTestId("profile-message").filter({ hasText: "Saved." }).waitFor();
        // Exactly what was typed (once the form's opening overwrote it: "My shop", or "My shop"
        // and the name typed after it).
        await first.getByTestId("profile-shop-name").filter({ hasText: /^Sharma General Store$/ }).waitFor();
        await first.getByTestId("new-customer").click();
        await first.getByTestId("customer-new-name").fill("Meena Iyer");
        await first.getByTestId("customer-new-phone").fill("91234 56789");
        await first.getByTestId("add-customer").click();
        await first.getByTestId("customer-chosen").waitFor();
        await waitForBadge(first, { connection: "Online", pending: 0 });

        // The second tablet starts after: it pulls them, and sells to her with the profile.
        const second = await openCounter(tablets[1], url);
        await waitForShopName(second, "Sharma General Store", { endpoint, project });
        await second.getByTestId("customer-search").fill("meena");
        await second.getByTestId("customer-result").filter({ hasText: "Meena Iyer" }).click();
        await second.getByLabel("Scan or search").focus();
        await scanWithKeyboard(second, code(0));
        await waitForCartLines(second, 1);
        await second.keyboard.press("F2");
        await completeSale(second);
        const receipt = await second.getByRole("region", { name: "Receipt" }).textContent();
        for (const value of Object.values(profile)) assert.ok(receipt.includes(value), `the receipt shows ${value}`);
        if (backend === "counterbook-server") await screenshots(second, "receipt-profile");
        assert.equal(await second.getByTestId("send-whatsapp").count(), 1, "her phone came along");
        await newSale(second);
        await waitForBadge(second, { connection: "Online", pending: 0 });
        const bills = await listDocuments(endpoint, project, `shops/${SHOP}`, "bills");
        const customers = await listDocuments(endpoint, project, `shops/${SHOP}`, "customers");
        assert.equal(customers.length, 1);
        assert.equal(bills[0].fields.customerId.stringValue, customers[0].name.split("/").at(-1));
      } finally {
        await Promise.all(tablets.map((tablet) => tablet.close()));
      }
    });

    test(`a customer added on one tablet joins the other's search as it is shown (${backend})`, async () => {
      const endpoint = backend === "counterbook-server" ? server.url : emulator.url;
      const project = `e2e-counter-search-${Date.now()}`;
      await seedProducts(endpoint, project, SHOP, CATALOGUE);
      const url = counterUrl(server, endpoint, project);
      const tablets = [await browser.newContext(), await browser.newContext()];
      try {
        const [first, second] = [await openCounter(tablets[0], url), await openCounter(tablets[1], url)];
        // The second tablet's cashier searches before she is on any tablet: nothing yet.
        await second.getByTestId("customer-search").fill("meena");
        await waitForBadge(second, { connection: "Online", pending: 0 });
        assert.equal(await second.getByTestId("customer-result").count(), 0);
        await first.getByTestId("new-customer").click();
        await first.getByTestId("customer-new-name").fill("Meena Iyer");
        await first.getByTestId("customer-new-phone").fill("91234 56789");
        await first.getByTestId("add-customer").click();
        await first.getByTestId("customer-chosen").waitFor();
        await waitForBadge(first, { connection: "Online", pending: 0 });
        // She arrives on the second tablet by sync, and the search shown finds her.
        await second.getByTestId("customer-result").filter({ hasText: "Meena Iyer" }).waitFor({ timeout: 30_000 });
        assert.equal(await second.getByTestId("customer-search").inputValue(), "meena");
      } finally {
        await Promise.all(tablets.map((tablet) => tablet.close()));
      }
    });

    test(`two tablets sell offline, reload, and sync exactly (${backend})`, async () => {
      const endpoint = backend === "counterbook-server" ? server.url : emulator.url;
      const project = `e2e-counter-offline-${Date.now()}`;
      await seedProducts(endpoint, project, SHOP, CATALOGUE);
      const url = counterUrl(server, endpoint, project);
      const tablets = [await browser.newContext(), await browser.newContext()];
      try {
        const pages = [];
        for (const tablet of tablets) {
          const page = await openCounter(tablet, url);
          await page.evaluate(() => navigator.serviceWorker.ready.then(() => true));
          pages.push(page);
        }
        const numbers = [];
        for (const [index, tablet] of tablets.entries()) {
          await tablet.setOffline(true);
          const page = pages[index];
          await page.getByLabel("Scan or search").focus();
          // Each tablet sells two bills offline: 3 + 1 Parle-G, 1 Lux Soap.
          for (const scans of [[0, 0, 0], [0, 4]]) {
            for (const item of scans) await scanWithKeyboard(page, code(item));
            await page.keyboard.press("F2");
            numbers.push(await completeSale(page));
            await newSale(page);
          }
          // A reload while offline: the bills and the series stay.
          await page.reload();
          await page.getByLabel("Scan or search").waitFor();
          await waitForBadge(page, { connection: "Offline", pending: 2 });
        }
        assert.equal(new Set(numbers).size, 4, `distinct bill numbers: ${numbers}`);
        assert.notEqual(numbers[0].split("-")[0], numbers[2].split("-")[0], "one series per tablet");
        for (const tablet of tablets) await tablet.setOffline(false);
        for (const page of pages) await waitForBadge(page, { connection: "Online", pending: 0 }, 60_000);

        const bills = await listDocuments(endpoint, project, `shops/${SHOP}`, "bills");
        assert.deepEqual(bills.map((b) => b.fields.number.stringValue).sort(), [...numbers].sort());
        const moves = await listDocuments(endpoint, project, `shops/${SHOP}`, "stockMoves");
        assert.equal(moves.length, 6, "one move per product per bill");
        const products = await listDocuments(endpoint, project, `shops/${SHOP}`, "products");
        const stock = (name) =>
          Number(products.find((p) => p.fields.name.stringValue === name).fields.stock.integerValue);
        assert.equal(stock("Parle-G 250g"), 50 - 2 * 4);
        assert.equal(stock("Lux Soap"), 20 - 2);
        await pages[0].screenshot({ path: join(ARTIFACTS, `counter-offline-${backend}.png`) });
      } finally {
        await Promise.all(tablets.map((tablet) => tablet.close()));
      }
    });
  }
});
