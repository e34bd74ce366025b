// Trunk's post_build hook (Trunk.toml): finishes a build in TRUNK_STAGING_DIR once every
// pipeline, wasm-opt included, has written its final bytes.
//
// 0. Minifies wasm-bindgen's JavaScript bindings (the file index.html names in
//    `data-counterbook-js`) and www/boot.js with esbuild: Trunk minifies style sheets and HTML
//    (Trunk.toml's `minify`) but not scripts. Property names (those the wasm's imports are
//    looked up by) are kept; only local names, comments and spacing change. sw.js stays as
//    written: its stamped VERSION and ASSETS are read back by the tests.
// 1. Stamps the service worker (sw.js) with the list of files Trunk emitted (the manifest's
//    screenshots aside), the app's JavaScript bindings and wasm (the worker imports them for
//    Background Sync) and a version hashed from their final bytes. Trunk names the wasm by a
//    hash taken before wasm-opt, so file names alone would not tell two builds apart; the
//    version is the first 16 hex digits of the SHA-256 of one "PATH SHA256\n" line per file,
//    sorted by path.
// 2. Writes a brotli (.br) and a gzip (.gz) copy beside every compressible file, which
//    counterbook-server sends to browsers that accept them. Compressed copies are neither
//    precached nor part of the version: the browser decodes them into the same bytes.
//
// Node's own zlib makes the brotli copies. The gzip copies come from Zopfli (Debian's `zopfli`,
// which the Makefile installs): the same gzip format any browser decodes, searched harder for
// the shortest encoding, about 4.6% smaller than `gzip -9` on the wasm (822.5 -> 784.8 KB) for
// about 5 s of CPU. Without zopfli, `gzip -9` (on every Debian machine, about 1% smaller than
// zlib's level 9), and zlib when that is missing too.

import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join, relative, sep } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import { transformSync } from "esbuild";
import { splitWasm } from "./split-wasm.mjs";

const staging = process.env.TRUNK_STAGING_DIR;
if (!staging) {
  console.error("finish-build.mjs runs as Trunk's post_build hook (TRUNK_STAGING_DIR is unset)");
  process.exit(2);
}

const minify = (source) => transformSync(source, { loader: "js", format: "esm", minify: true }).code;

/** Minifies the JavaScript module at `path` in the staging directory (step 0). */
function minifyScript(path) {
  const file = join(staging, path);
  const source = readFileSync(file, "utf8");
  const minified = minify(source);
  writeFileSync(file, minified);
  console.log(`minified ${path}: ${source.length} -> ${minified.length} bytes`);
}

/** The JavaScript bindings index.html names (step 0). */
function bindingsPath() {
  const path = readFileSync(join(staging, "index.html"), "utf8").match(
    /data-counterbook-js=["']?\/?([^"'\s>]+\.js)/,
  )?.[1];
  if (!path) {
    console.error("index.html names no JavaScript bindings in data-counterbook-js");
    process.exit(1);
  }
  return path;
}
/**
 * wasm-opt for the split build, which Trunk's pipeline no longer optimizes (index.html turns
 * its wasm-opt off): the flags index.html gives in `data-counterbook-wasm-opt`, and wasm-opt
 * 132 from tools/node_modules (the one Trunk uses).
 */
function wasmOptOfIndex() {
  const source = readFileSync(process.env.TRUNK_HTML_FILE ?? "index.html", "utf8");
  const flags = source.match(/data-counterbook-wasm-opt="([^"]*)"/)?.[1];
  if (!flags) {
    console.error('index.html names no wasm-opt flags for the split build (data-counterbook-wasm-opt="...")');
    process.exit(1);
  }
  const program = join(process.env.TRUNK_SOURCE_DIR ?? ".", "tools", "node_modules", ".bin", "wasm-opt");
  return { program, args: flags.trim().split(/\s+/) };
}

const split = splitWasm({
  staging,
  bindingsPath: bindingsPath(),
  sourceDirectory: process.env.TRUNK_SOURCE_DIR ?? ".",
  release: process.env.TRUNK_PROFILE === "release",
  wasmOpt: wasmOptOfIndex,
  minify,
});
minifyScript(bindingsPath());
minifyScript("boot.js");

/** Extensions of the files worth compressing (images such as PNG are compressed already). */
const COMPRESSIBLE = /\.(html|js|mjs|wasm|css|webmanifest|json|svg|txt)$/;
const COMPRESSED_COPY = /\.(br|gz)$/;

function builtFiles(directory) {
  const files = [];
  for (const name of readdirSync(directory)) {
    const path = join(directory, name);
    if (statSync(path).isDirectory()) files.push(...builtFiles(path));
    else if (!COMPRESSED_COPY.test(name)) files.push(path);
  }
  return files;
}

/** The URL path of a file in the staging directory ("/icons/icon-192.png"). */
const urlPath = (file) => "/" + relative(staging, file).split(sep).join("/");
const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

const workerFile = join(staging, "sw.js");
const files = builtFiles(staging).filter((file) => file !== workerFile);
// The manifest's screenshots are for the browser's install dialog, fetched online: a tablet
// needs them neither offline nor in every update's download.
const precached = files
  .map(urlPath)
  .filter((path) => !path.startsWith("/screenshots/"))
  .sort();
const listing = precached
  .map((path) => `${path} ${sha256(readFileSync(join(staging, path)))}\n`)
  .join("");
const version = sha256(listing).slice(0, 16);

/** The one precached path matching `pattern` (the app's bindings, its wasm). */
function theOne(pattern, what) {
  const matching = precached.filter((path) => pattern.test(path));
  if (matching.length !== 1) {
    console.error(`expected one ${what} among the built files, found ${JSON.stringify(matching)}`);
    process.exit(1);
  }
  return matching[0];
}
// Trunk writes its 64-bit hash in hex without leading zeros: 16 digits or fewer.
const bindings = theOne(/^\/counterbook-[0-9a-f]{1,16}\.js$/, "JavaScript bindings file");
const wasm = theOne(/^\/counterbook-[0-9a-f]{1,16}_bg\.wasm$/, "wasm file");

const worker = readFileSync(workerFile, "utf8");
const placeholders = [
  "__COUNTERBOOK_VERSION__",
  "__COUNTERBOOK_ASSETS__",
  "__COUNTERBOOK_BINDINGS__",
  "__COUNTERBOOK_WASM__",
];
const missing = placeholders.filter((placeholder) => !worker.includes(placeholder));
if (missing.length > 0) {
  console.error(`sw.js has no ${missing.join(", ")} placeholder`);
  process.exit(1);
}
writeFileSync(
  workerFile,
  worker
    .replace('"__COUNTERBOOK_VERSION__"', JSON.stringify(version))
    .replace("__COUNTERBOOK_ASSETS__", JSON.stringify(["/", ...precached]))
    .replace('"__COUNTERBOOK_BINDINGS__"', JSON.stringify(bindings))
    .replace('"__COUNTERBOOK_WASM__"', JSON.stringify(wasm)),
);
console.log(`service worker stamped: version ${version}, ${precached.length + 1} URLs precached`);

/** The gzip bytes of `file` (whose contents are `bytes`), with no name or time stamp in them. */
function gzip(file, bytes) {
  // Zopfli's gzip header names no file and carries no time stamp.
  for (const [program, args] of [
    ["zopfli", ["-c", file]],
    ["gzip", ["-9", "-n", "-c", file]],
  ]) {
    const command = spawnSync(program, args, { maxBuffer: 1 << 30 });
    if (command.status === 0) return command.stdout;
  }
  return gzipSync(bytes, { level: constants.Z_BEST_COMPRESSION });
}

let compressed = 0;
for (const file of [...files, workerFile]) {
  if (!COMPRESSIBLE.test(file)) continue;
  const bytes = readFileSync(file);
  const brotli = brotliCompressSync(bytes, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
      [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
    },
  });
  writeFileSync(file + ".br", brotli);
  writeFileSync(file + ".gz", gzip(file, bytes));
  compressed++;
}
console.log(`precompressed ${compressed} files (.br and .gz beside each)`);
