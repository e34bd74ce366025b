// `make audit`, not a test (not part of `make test`): Lighthouse 12.2.3 (tools/audit) on the
// counter served by counterbook-server over HTTPS from its local CA, with Debian's Chromium
// trusting the server key by its SPKI hash; then Chromium's own installability check
// (Page.getInstallabilityErrors over the DevTools protocol: Lighthouse 12 dropped its PWA
// category) and the manifest Chromium parsed. Prints the scores and every failed audit with a
// weight, writes the report to e2e/artifacts/lighthouse-counter.json, and fails when
// accessibility or best practices score under 95 or the app is not installable.

import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { ARTIFACTS, ROOT, appUrl, startServer, temporaryDirectory } from "./harness.mjs";

const LIGHTHOUSE = join(ROOT, "tools", "audit", "node_modules", ".bin", "lighthouse");
const MINIMUM = { accessibility: 95, "best-practices": 95 };

mkdirSync(ARTIFACTS, { recursive: true });
const server = await startServer({ dataDir: temporaryDirectory("counterbook-audit-"), tls: true });
let failed = false;
try {
  const url = appUrl(server.url, {
    endpoint: server.url,
    project: "audit",
    shop: "s1",
    path: "/counter",
  });
  const reportFile = join(ARTIFACTS, "lighthouse-counter.json");
  const chromeFlags = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    `--ignore-certificate-errors-spki-list=${server.spki}`,
  ].join(" ");
  const run = spawnSync(
    LIGHTHOUSE,
    [
      url,
      "--quiet",
      "--output=json",
      `--output-path=${reportFile}`,
      `--chrome-flags=${chromeFlags}`,
      "--only-categories=performance,accessibility,best-practices",
    ],
    { env: { ...process.env, CHROME_PATH: "/usr/bin/chromium" }, stdio: "inherit" },
  );
  if (run.status !== 0) throw new Error(`lighthouse exited with ${run.status}`);
  const report = JSON.parse(readFileSync(reportFile, "utf8"));
  console.log(`Lighthouse ${report.lighthouseVersion} on ${report.finalDisplayedUrl}`);
  for (const [id, category] of Object.entries(report.categories)) {
    const score = Math.round(category.score * 100);
    console.log(`  ${category.title}: ${score}`);
    if (MINIMUM[id] !== undefined && score < MINIMUM[id]) failed = true;
    for (const reference of category.auditRefs) {
      const audit = report.audits[reference.id];
      if (reference.weight > 0 && audit.score !== null && audit.score < 1) {
        console.log(`    - ${audit.title} (${audit.displayValue ?? audit.score})`);
      }
    }
  }
  const metrics = ["first-contentful-paint", "largest-contentful-paint", "total-blocking-time", "cumulative-layout-shift"];
  console.log(
    "  metrics: " + metrics.map((id) => `${id} ${report.audits[id].displayValue}`).join(", "),
  );

  // A profile on disk: Chromium offers no install in an incognito-like context.
  const browser = await chromium.launchPersistentContext(temporaryDirectory("counterbook-audit-profile-"), {
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", `--ignore-certificate-errors-spki-list=${server.spki}`],
  });
  try {
    const page = await browser.newPage();
    await page.goto(url);
    await page.getByTestId("counter-page").waitFor();
    await page.evaluate(() => navigator.serviceWorker.ready);
    const devtools = await browser.newCDPSession(page);
    const { installabilityErrors } = await devtools.send("Page.getInstallabilityErrors");
    const { errors: manifestErrors } = await devtools.send("Page.getAppManifest");
    console.log(
      `  installable: ${installabilityErrors.length === 0 ? "yes" : "no"}` +
        installabilityErrors.map((error) => ` [${error.errorId}]`).join("") +
        `; manifest errors: ${manifestErrors.length}` +
        manifestErrors.map((error) => ` [${error.message}]`).join(""),
    );
    if (installabilityErrors.length > 0 || manifestErrors.length > 0) failed = true;
  } finally {
    await browser.close();
  }
} finally {
  await server.stop();
}
if (failed) {
  console.error("audit: under the bar (accessibility and best practices 95, installable)");
  process.exit(1);
}
