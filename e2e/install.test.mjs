// An installable app: Chromium parses the manifest without an error, finds nothing stopping an
// install (a profile on disk: an incognito-like context is never offered one), fires its real
// `beforeinstallprompt`, and the app shows its "Install" button. The manifest carries what the
// install dialog and the launcher need.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { chromium } from "playwright-core";
import { appUrl, startServer, temporaryDirectory } from "./harness.mjs";

describe("installing the app", () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer({ dataDir: temporaryDirectory("counterbook-e2e-install-") });
    browser = await chromium.launchPersistentContext(temporaryDirectory("counterbook-e2e-profile-"), {
      executablePath: "/usr/bin/chromium",
      args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    });
  });

  after(async () => {
    await Promise.all([browser?.close(), server?.stop()]);
  });

  test("install-ready manifest, no installability error, and an Install button", async () => {
    const page = await browser.newPage();
    await page.goto(appUrl(server.url, { endpoint: server.url, project: "e2e-install", shop: "s1", path: "/counter" }));
    await page.getByTestId("counter-page").waitFor();
    await page.evaluate(() => navigator.serviceWorker.ready);

    const devtools = await browser.newCDPSession(page);
    const parsed = await devtools.send("Page.getAppManifest");
    assert.equal(parsed.url, `${server.url}/manifest.webmanifest`);
    assert.deepEqual(parsed.errors, []);
    assert.deepEqual((await devtools.send("Page.getInstallabilityErrors")).installabilityErrors, []);

    const manifest = JSON.parse(parsed.data);
    assert.equal(manifest.name, "Counterbook");
    assert.equal(manifest.short_name, "Counterbook");
    assert.equal(manifest.start_url, "/counter");
    assert.equal(manifest.scope, "/");
    assert.equal(manifest.display, "standalone");
    assert.equal(manifest.theme_color, "#0f5e56");
    const icons = manifest.icons.map((icon) => `${icon.sizes} ${icon.purpose}`);
    for (const wanted of ["192x192 any", "512x512 any", "512x512 maskable"]) {
      assert.ok(icons.includes(wanted), `an icon ${wanted}`);
    }
    assert.deepEqual(
      manifest.screenshots.map((shot) => `${shot.sizes} ${shot.form_factor}`),
      ["800x1280 narrow", "1280x800 wide"],
    );
    // Every icon and screenshot is served as the PNG it claims to be, at its size.
    for (const image of [...manifest.icons, ...manifest.screenshots]) {
      if (image.type !== "image/png") continue;
      const bytes = Buffer.from(await (await fetch(`${server.url}${image.src}`)).arrayBuffer());
      assert.equal(bytes.subarray(1, 4).toString(), "PNG", image.src);
      const size = `${bytes.readUInt32BE(16)}x${bytes.readUInt32BE(20)}`;
      assert.equal(size, image.sizes, image.src);
    }

    // Chromium's own beforeinstallprompt: the app offers its button.
    await page.getByTestId("install-app").waitFor({ timeout: 30_000 });
    assert.equal(
      await page.getByTestId("app-notice-message").textContent(),
      "Counterbook can be installed on this tablet",
    );
    await page.getByTestId("install-later").click();
    assert.equal(await page.getByTestId("app-notice").count(), 0);
  });
});
