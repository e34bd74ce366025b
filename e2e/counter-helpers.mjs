// What the counter's end-to-end tests and its benchmark share: products seeded on the backend
// through the REST API, a keyboard-wedge scanner typing codes a few milliseconds a key (as
// Playwright key presses with `code` values, or as events dispatched in the page for a layout
// Playwright does not emulate), reading IndexedDB in the page, ESC/POS bytes decoded back to
// the image they print, and QR codes decoded with jsQR.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { setTimeout as pause } from "node:timers/promises";
import { ARTIFACTS } from "./harness.mjs";

const require = createRequire(import.meta.url);
const JSQR_SOURCE = readFileSync(require.resolve("jsqr/dist/jsQR.js"), "utf8");
export const jsQR = require("jsqr");

/** The EAN-13 check digit of 12 digits. */
export function ean13(twelveDigits) {
  const sum = [...twelveDigits].reduce(
    (total, digit, index) => total + Number(digit) * (index % 2 === 0 ? 1 : 3),
    0,
  );
  return twelveDigits + String((10 - (sum % 10)) % 10);
}

/** A product document's fields as the app writes them. */
export function productFields({ name, price, barcodes = [], sku = null, unit = "piece", stock = 0, taxRateBp = 0 }) {
  const text = (value) => (value === null ? { nullValue: null } : { stringValue: value });
  return {
    name: { stringValue: name },
    price: { integerValue: String(price) },
    currency: { stringValue: "INR" },
    sku: text(sku),
    barcodes: { arrayValue: { values: barcodes.map((code) => ({ stringValue: code })) } },
    unit: { stringValue: unit },
    category: { nullValue: null },
    taxRateBp: { integerValue: String(taxRateBp) },
    lowStockThreshold: { nullValue: null },
    stock: { integerValue: String(stock) },
    deleted: { booleanValue: false },
  };
}

/** Writes products on the backend in commits of up to 400 writes, each with `updatedAt`. */
export async function seedProducts(endpoint, project, shop, products) {
  const database = `projects/${project}/databases/(default)`;
  for (let start = 0; start < products.length; start += 400) {
    const writes = products.slice(start, start + 400).map((product) => ({
      update: {
        name: `${database}/documents/shops/${shop}/products/${product.id}`,
        fields: productFields(product),
      },
      updateTransforms: [{ fieldPath: "updatedAt", setToServerValue: "REQUEST_TIME" }],
    }));
    const response = await fetch(`${endpoint}/v1/${database}/documents:commit`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ writes }),
    });
    if (!response.ok) throw new Error(`seeding: ${response.status} ${await response.text()}`);
  }
}

/** A readable stable id for seeded products (UUID-shaped, so paths and sorting behave). */
export function seededId(index) {
  return `00000000-0000-7000-8000-${String(index).padStart(12, "0")}`;
}

/** The key a US keyboard presses for a character of a code: its `code` and virtual key. */
function usKey(character) {
  if (/[0-9]/.test(character)) return { code: `Digit${character}`, vk: character.charCodeAt(0) };
  if (/[a-z]/i.test(character)) {
    return { code: `Key${character.toUpperCase()}`, vk: character.toUpperCase().charCodeAt(0) };
  }
  if (character === "-") return { code: "Minus", vk: 189 };
  throw new Error(`no key for ${character}`);
}

/** AZERTY's characters on the digit row, unshifted. */
const AZERTY_DIGIT_ROW = { 1: "&", 2: "é", 3: '"', 4: "'", 5: "(", 6: "-", 7: "è", 8: "_", 9: "ç", 0: "à" };

/** Types `code` and Enter as a keyboard-wedge scanner does: real (trusted) key presses
 * through the DevTools protocol, as Playwright's keyboard sends them, each stamped `gapMs`
 * after the previous one. `key` is what the tablet's layout types on that physical key
 * (`layoutKey`; a US layout by default), `code` the physical key the scanner pressed.
 *
 * The presses are all sent at once, not one round trip at a time. A scanner's keys reach the
 * page as fast as it types them; a round trip per press on a loaded machine once left more than
 * the page's 250 ms between two keys of one scan, so the page gave the keys held so far back
 * as typing and read the rest of the code as a scan of its own ("the bill did not open").
 *
 * With `lateAfter`, the page gets the keys late, as a busy tablet does: the first `lateAfter`
 * keys, then (once the page has given them back to the focused field as typing) the rest,
 * stamped as the scanner pressed them. */
export async function scanWithKeyboard(page, code, gapMs = 6, layoutKey = (character) => character, { lateAfter } = {}) {
  const session = await page.context().newCDPSession(page);
  try {
    let at = Date.now() / 1000;
    const presses = [];
    const press = (type, key, keyCode, vk, text) =>
      presses.push({ type, key, code: keyCode, windowsVirtualKeyCode: vk, text, unmodifiedText: text, timestamp: at });
    for (const character of code) {
      const { code: keyCode, vk } = usKey(character);
      const typed = layoutKey(character);
      press("keyDown", typed, keyCode, vk, typed);
      at += 0.002;
      press("keyUp", typed, keyCode, vk);
      at += (gapMs - 2) / 1000;
    }
    press("keyDown", "Enter", "Enter", 13, "\r");
    at += 0.002;
    press("keyUp", "Enter", "Enter", 13);
    const send = (batch) => Promise.all(batch.map((params) => session.send("Input.dispatchKeyEvent", params)));
    if (lateAfter) {
      await send(presses.slice(0, 2 * lateAfter));
      const early = [...code.slice(0, lateAfter)].map(layoutKey).join("");
      await page.waitForFunction((early) => document.activeElement?.value?.endsWith(early), early);
      await send(presses.slice(2 * lateAfter));
    } else {
      await send(presses);
    }
  } finally {
    await session.detach();
  }
}

/** A scanner on a tablet with a French AZERTY layout: `key` says "&é\"'", `code` says Digit1. */
export function scanOnAzerty(page, code, gapMs = 7) {
  return scanWithKeyboard(page, code, gapMs, (character) => AZERTY_DIGIT_ROW[character] ?? character);
}

/** Screenshots of the page at a portrait and a landscape counter tablet's size, 800×1280 and
 * 1280×800 (`{name}-800x1280.png`, …), the viewport put back as it was after. */
export async function screenshots(page, name, { fullPage = false } = {}) {
  const was = page.viewportSize();
  for (const [width, height] of [
    [800, 1280],
    [1280, 800],
  ]) {
    await page.setViewportSize({ width, height });
    await page.screenshot({ path: join(ARTIFACTS, `${name}-${width}x${height}.png`), fullPage });
  }
  if (was) await page.setViewportSize(was);
}

/** How many records an object store of the app's IndexedDB holds. */
export function countInStore(page, storeName) {
  return page.evaluate(
    (storeName) =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open("counterbook");
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const db = open.result;
          if (!db.objectStoreNames.contains(storeName)) return resolve(0), db.close();
          const request = db.transaction(storeName).objectStore(storeName).count();
          request.onsuccess = () => {
            resolve(request.result);
            db.close();
          };
          request.onerror = () => reject(request.error);
        };
      }),
    storeName,
  );
}

/** The functions with the most self time in a DevTools CPU profile (`Profiler.stop`'s). */
export function heaviestFunctions(profile, count) {
  const selfMicros = new Map();
  const intervals = profile.timeDeltas;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  profile.samples.forEach((id, index) => {
    const node = byId.get(id);
    const frame = node.callFrame;
    const name = `${frame.functionName || "(anonymous)"} ${frame.url.split("/").pop()}:${frame.lineNumber}`;
    selfMicros.set(name, (selfMicros.get(name) ?? 0) + (intervals[index] ?? 0));
  });
  return [...selfMicros.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, micros]) => ({ name, ms: +(micros / 1000).toFixed(1) }));
}

/** Waits until the tablet holds `count` products. */
export async function waitForProductCount(page, count, timeout = 60_000) {
  return waitForStoreCount(page, "products", count, timeout);
}

/** Waits until the tablet's store `storeName` holds `count` records (bills, refunds, ...). */
export async function waitForStoreCount(page, storeName, count, timeout = 60_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const held = await countInStore(page, storeName);
    if (held >= count) return held;
    if (Date.now() > deadline) throw new Error(`the tablet has ${held} of ${count} ${storeName}`);
    await pause(100);
  }
}

/** Waits until the page's main thread has had nothing to do for a moment (the sync's first
 * pull applied), so that key presses reach it as fast as they are sent. */
export async function waitForIdlePage(page) {
  // Each wait is capped at 2 s: with a button focused (the one just clicked to open a form),
  // headless Chromium delivered no idle callback for 5 s on a page that ran 6 ms of tasks in
  // 2 s (CDP Performance metrics), so a 10 s cap cost 30 s per photograph of such a form and
  // ran the Arabic/Hindi file past node's 300 s limit; blurring the button let it fire at once.
  for (let i = 0; i < 3; i++) {
    await page.evaluate(
      () => new Promise((resolve) => requestIdleCallback(() => resolve(), { timeout: 2_000 })),
    );
  }
}

/** Decodes a QR code in a PNG (a screenshot) with jsQR, in a blank page of the same browser
 * context (which decodes PNGs; the app's own page forbids inline scripts by its CSP). */
export async function decodeQrInPng(page, png) {
  const scratch = await page.context().newPage();
  try {
    return await decodeQrInBlankPage(scratch, png);
  } finally {
    await scratch.close();
  }
}

async function decodeQrInBlankPage(page, png) {
  await page.addScriptTag({ content: JSQR_SOURCE });
  return page.evaluate(async (base64) => {
    const image = new Image();
    image.src = `data:image/png;base64,${base64}`;
    await image.decode();
    const canvas = document.createElement("canvas");
    canvas.width = image.width;
    canvas.height = image.height;
    const context = canvas.getContext("2d");
    context.drawImage(image, 0, 0);
    const pixels = context.getImageData(0, 0, image.width, image.height);
    return window.jsQR(pixels.data, image.width, image.height)?.data ?? null;
  }, png.toString("base64"));
}

/** Reads an ESC/POS byte stream: its commands, and the raster image its `GS v 0` bands print. */
export function decodeEscPos(bytes) {
  const commands = [];
  const bands = [];
  let at = 0;
  while (at < bytes.length) {
    const [b0, b1, b2] = [bytes[at], bytes[at + 1], bytes[at + 2]];
    if (b0 === 0x1b && b1 === 0x40) {
      commands.push("initialise");
      at += 2;
    } else if (b0 === 0x1b && b1 === 0x70) {
      commands.push("drawer-kick");
      at += 5;
    } else if (b0 === 0x1b && b1 === 0x64) {
      commands.push(`feed ${b2}`);
      at += 3;
    } else if (b0 === 0x1d && b1 === 0x56) {
      commands.push(b2 === 0 ? "cut" : "partial-cut");
      at += 3;
    } else if (b0 === 0x1d && b1 === 0x76 && b2 === 0x30) {
      const bytesPerRow = bytes[at + 4] | (bytes[at + 5] << 8);
      const rows = bytes[at + 6] | (bytes[at + 7] << 8);
      const data = bytes.slice(at + 8, at + 8 + bytesPerRow * rows);
      if (data.length !== bytesPerRow * rows) throw new Error("a raster band is cut short");
      bands.push({ bytesPerRow, rows, data });
      commands.push("raster");
      at += 8 + bytesPerRow * rows;
    } else {
      throw new Error(`unknown ESC/POS byte 0x${b0.toString(16)} at ${at}`);
    }
  }
  const bytesPerRow = bands[0]?.bytesPerRow ?? 0;
  if (bands.some((band) => band.bytesPerRow !== bytesPerRow)) throw new Error("bands differ in width");
  const height = bands.reduce((sum, band) => sum + band.rows, 0);
  const bits = new Uint8Array(bands.flatMap((band) => [...band.data]));
  return { commands, width: bytesPerRow * 8, height, bits };
}

/** A decoded raster image as RGBA pixels (black dots on white), for jsQR. */
export function rasterToRgba({ width, height, bits }) {
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const black = bits[y * (width / 8) + (x >> 3)] & (0x80 >> (x & 7));
      const at = (y * width + x) * 4;
      rgba[at] = rgba[at + 1] = rgba[at + 2] = black ? 0 : 255;
      rgba[at + 3] = 255;
    }
  }
  return rgba;
}

/** A fake Web Serial printer in the page: what is written to it lands in `window.__printed`. */
export function fakeSerialPrinter() {
  window.__printed = [];
  window.__printerRequests = 0;
  const port = {
    getInfo: () => ({ usbVendorId: 0x0416, usbProductId: 0x5011 }),
    open: async () => {},
    close: async () => {},
    get writable() {
      return new WritableStream({
        write(chunk) {
          window.__printed.push(...chunk);
        },
      });
    },
  };
  let granted = false;
  Object.defineProperty(navigator, "serial", {
    value: {
      requestPort: async () => {
        window.__printerRequests += 1;
        granted = true;
        return port;
      },
      getPorts: async () => (granted ? [port] : []),
    },
  });
}
