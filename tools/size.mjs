// `make size`: the app shell's bytes on the wire, gzip and brotli, against the budget of
// 500 KB (500,000 bytes) gzip for the whole shell. Reads the release build in dist/ and the
// .gz and .br copies tools/finish-build.mjs wrote beside each file; exits 1 over budget.
//
// The shell is what a tablet must download before the app starts: index.html, boot.js, the
// JavaScript bindings and the wasm split's link module, the main wasm, the style sheets, the
// service worker and the manifest (icons are fetched later and are not counted). The split
// modules of the app's lazy parts (tools/split-wasm.mjs: `split_<name>-<hash>.wasm`,
// `chunk_<n>-<hash>.wasm`), fetched when a part is first used, are listed after it, with
// their own total, outside the budget.

import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const BUDGET_GZIP_BYTES = 500_000;
const dist = process.argv[2] ?? "dist";
const SHELL = /^(index\.html|boot\.js|sw\.js|manifest\.webmanifest|.+\.(js|wasm|css))$/;

const SPLIT_MODULE = /^(split|chunk)_.+-[0-9a-f]{16}\.wasm$/;

const sizeOf = (path) => (existsSync(path) ? statSync(path).size : NaN);
const names = readdirSync(dist)
  .filter((name) => SHELL.test(name) && statSync(join(dist, name)).isFile())
  .sort();
const files = names.filter((name) => !SPLIT_MODULE.test(name));
const splitModules = names.filter((name) => SPLIT_MODULE.test(name));
if (files.length === 0) {
  console.error(`no app shell in ${dist}: run make dist first`);
  process.exit(2);
}

const rowsOf = (names) =>
  names.map((name) => {
    const path = join(dist, name);
    return { name, raw: sizeOf(path), gzip: sizeOf(path + ".gz"), brotli: sizeOf(path + ".br") };
  });
const rows = rowsOf(files);
const splitRows = rowsOf(splitModules);
const missing = [...rows, ...splitRows].filter((row) => Number.isNaN(row.gzip) || Number.isNaN(row.brotli));
if (missing.length > 0) {
  console.error(`no .gz or .br copy of ${missing.map((row) => row.name).join(", ")}`);
  process.exit(2);
}
const sum = (rows) =>
  rows.reduce(
    (sum, row) => ({ raw: sum.raw + row.raw, gzip: sum.gzip + row.gzip, brotli: sum.brotli + row.brotli }),
    { raw: 0, gzip: 0, brotli: 0 },
  );
const total = sum(rows);

const kb = (bytes) => (bytes / 1000).toFixed(1).padStart(9);
const width = Math.max(...[...rows, ...splitRows].map((row) => row.name.length), 24);
const print = (rows) => {
  for (const row of rows) {
    console.log(`${row.name.padEnd(width)}  ${kb(row.raw)} ${kb(row.gzip)}  ${kb(row.brotli)}`);
  }
};
console.log(`${"app shell".padEnd(width)}       raw KB   gzip KB  brotli KB`);
print([...rows, { name: "total", ...total }]);
if (splitRows.length > 0) {
  console.log(`\n${"split modules (on first use)".padEnd(width)}       raw KB   gzip KB  brotli KB`);
  print([...splitRows, { name: "total", ...sum(splitRows) }]);
  console.log("");
}
const verdict = total.gzip <= BUDGET_GZIP_BYTES ? "within" : "OVER";
console.log(
  `app shell: ${kb(total.gzip).trim()} KB gzip, ${kb(total.brotli).trim()} KB brotli; ` +
    `${verdict} the budget of ${BUDGET_GZIP_BYTES / 1000} KB gzip`,
);
process.exit(total.gzip <= BUDGET_GZIP_BYTES ? 0 : 1);
