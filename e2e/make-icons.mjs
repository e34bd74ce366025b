// Renders the maskable app icon (www/icons/icon-maskable-512.png) from Counterbook's own icon
// drawing (www/icons/icon.svg) with Debian's Chromium: the same receipt on a full-bleed
// background, drawn inside the central 80% circle that every launcher's mask keeps.
// Run by hand after changing the icon: `cd e2e && node make-icons.mjs` (the PNG is committed).

import { join } from "node:path";
import { chromium } from "playwright-core";
import { ROOT } from "./harness.mjs";

const SIZE = 512;
// The receipt of icon.svg (a 64-unit square) scaled to 85% and centred: its corners stay
// inside the 40%-radius safe circle.
const MASKABLE = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="${SIZE}" height="${SIZE}">
  <rect width="64" height="64" fill="#0f5e56"/>
  <g transform="translate(32 32) scale(0.85) translate(-32 -33)">
    <rect x="16" y="14" width="32" height="38" rx="3" fill="#f6f4ee"/>
    <rect x="21" y="22" width="22" height="3" fill="#0f5e56"/>
    <rect x="21" y="30" width="22" height="3" fill="#0f5e56"/>
    <rect x="21" y="38" width="14" height="3" fill="#0f5e56"/>
  </g>
</svg>`;

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
try {
  const page = await browser.newPage({ viewport: { width: SIZE, height: SIZE } });
  await page.setContent(`<body style="margin:0">${MASKABLE}</body>`);
  const output = join(ROOT, "www", "icons", "icon-maskable-512.png");
  await page.locator("svg").screenshot({ path: output });
  console.log(`wrote ${output}`);
} finally {
  await browser.close();
}
