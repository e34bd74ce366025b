// Renders the web manifest's screenshots (www/screenshots/, shown by the browser's install
// dialog) from the real app: counterbook-server's demo shop, two items scanned into the bill,
// the counter at 800×1280 (narrow) and 1280×800 (wide). Run by hand after a visible change to
// the counter: `make build && cd e2e && node make-screenshots.mjs` (the PNGs are committed).

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { scanWithKeyboard } from "./counter-helpers.mjs";
import {
  ROOT,
  appUrl,
  launchBrowser,
  startServer,
  temporaryDirectory,
  waitForBadge,
} from "./harness.mjs";

const output = join(ROOT, "www", "screenshots");
mkdirSync(output, { recursive: true });
const server = await startServer({
  dataDir: temporaryDirectory("counterbook-screenshots-"),
  args: ["--demo-data"],
});
const browser = await launchBrowser();
try {
  const page = await browser.newPage({ viewport: { width: 800, height: 1280 } });
  await page.goto(
    appUrl(server.url, { endpoint: server.url, project: "counterbook", shop: "demo-shop", path: "/counter" }),
  );
  await page.getByTestId("counter-page").waitFor();
  await waitForBadge(page, { connection: "Online", pending: 0 });
  for (const code of ["8901058000016", "8901234000021", "8901234000021"]) {
    const lines = await page.getByTestId("cart-line").count();
    await scanWithKeyboard(page, code);
    await page.waitForFunction(
      (lines) => document.querySelectorAll("[data-testid=cart-line]").length >= lines,
      lines,
    );
  }
  for (const [width, height] of [
    [800, 1280],
    [1280, 800],
  ]) {
    await page.setViewportSize({ width, height });
    const file = join(output, `counter-${width}x${height}.png`);
    await page.screenshot({ path: file });
    console.log(`wrote ${file}`);
  }
} finally {
  await Promise.all([browser.close(), server.stop()]);
}
