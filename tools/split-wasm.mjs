// The wasm split of a release build (step 0 of tools/finish-build.mjs): the app shell keeps
// what the counter needs, and each lazy part of the app (src/ui/lazy.rs, cargo feature
// `split`) gets a wasm module of its own, fetched on its first use.
//
// The split is made on the linker's output (the `split` feature links with `--emit-relocs`,
// build.rs), before wasm-bindgen and wasm-opt, so index.html turns Trunk's wasm-opt off and
// this step does the rest of the pipeline itself, over Trunk's files in the staging directory:
//
// 1. `wasm-split-cli` (crate wasm_split_cli_support, which the Makefile installs) reads
//    target/wasm32-unknown-unknown/<profile>/counterbook.wasm and writes the main module,
//    one module per split point (`split_<name>.wasm`), one per set of code that only some
//    split points share (`chunk_<n>.wasm`), and the link module `__wasm_split.js`, which
//    fetches and instantiates them (`new URL("./<module>.wasm", import.meta.url)`) with the
//    main module's memory, table and functions.
// 2. wasm-bindgen (the same version Trunk uses, with `--keep-lld-exports`, since the split
//    modules import the linker's exports that it would drop, and `--no-demangle`) makes the
//    JavaScript bindings and the main wasm, under Trunk's file names, replacing Trunk's own.
// 3. wasm-opt -Oz with index.html's flags (`--low-memory-unused`), on the main wasm and on
//    every split module (release builds only, as Trunk does).
// 4. Every split module is named by the SHA-256 of its final bytes (`split_receipt-<16 hex>.wasm`),
//    and so is the link module (`split-<16 hex>.js`): counterbook-server sends them as
//    immutable, and an old page can never be given a new build's module under its old name,
//    nor the other way round. The bindings import the link module by that name, and the link
//    module imports the bindings by Trunk's name, the very URL boot.js and sw.js import, so
//    there is one instance of them (and of the wasm) per page or worker. In a service worker
//    the link module reads each split module from the precache first (`fetchSplitModule`): the
//    Background Sync drain needs the sync engine's module there, and a worker's own `fetch`
//    never goes through its cache.
//
// Nothing happens for a build without the `split` feature (its bindings import no
// `__wasm_split_placeholder__`).

import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The placeholder module a split point's loader is imported from before the split. */
const PLACEHOLDER = "__wasm_split_placeholder__";
/** The link module's name as wasm-split-cli writes it, and as the main wasm imports it. */
const LINK_MODULE = "./__wasm_split.js";

/**
 * How a split module is fetched: in a page, as wasm-split-cli writes it (`fetch`, which the
 * service worker answers from its precache offline); in the service worker (the Background
 * Sync drain loads the sync engine's module there), from the precache first, since a worker's
 * own `fetch` never reaches its cache, then from the network.
 */
const FETCH_SPLIT_MODULE = `
const fetchSplitModule = (url) =>
  typeof ServiceWorkerGlobalScope !== "undefined" && self instanceof ServiceWorkerGlobalScope
    ? caches.match(url).then((cached) => cached ?? fetch(url))
    : fetch(url);
`;

/** The link module's text with every split module fetched by `fetchSplitModule`. */
function readModulesFromPrecacheInWorker(link) {
  const fetches = /\bfetch\(new URL\(/g;
  if (!fetches.test(link)) throw new Error("the link module fetches no split module");
  return FETCH_SPLIT_MODULE + link.replace(fetches, "fetchSplitModule(new URL(");
}

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

/**
 * Runs `program`, its output passed on but for wasm-opt's warning about the split modules'
 * name sections (wasm-split-cli writes a subsection wasm-opt 132 does not know; the names are
 * dropped from the output either way).
 */
function run(program, args) {
  const command = spawnSync(program, args, { stdio: ["ignore", "inherit", "pipe"], encoding: "utf8" });
  if (command.error) throw new Error(`${program}: ${command.error.message}`);
  const said = command.stderr
    .split("\n")
    .filter((line) => line && !/^warning: unknown name subsection with id \d+ at \d+$/.test(line));
  if (said.length > 0) console.error(said.join("\n"));
  if (command.status !== 0) throw new Error(`${program} ${args.join(" ")} exited with ${command.status}`);
}

/**
 * Splits the wasm of the build in `staging`, whose bindings are `bindingsPath` (relative to
 * `staging`, "counterbook-<hash>.js"); `wasmOpt()` gives { program, args } and `minify` turns a
 * JavaScript module's text into its minified text. Returns the split modules' file names and
 * the link module's, or null when the build has no split points.
 */
export function splitWasm({ staging, bindingsPath, sourceDirectory, release, wasmOpt, minify }) {
  const bindingsFile = join(staging, bindingsPath);
  if (!readFileSync(bindingsFile, "utf8").includes(PLACEHOLDER)) return null;

  const stem = bindingsPath.replace(/\.js$/, "");
  const targetDirectory = process.env.CARGO_TARGET_DIR ?? join(sourceDirectory, "target");
  const linked = join(targetDirectory, "wasm32-unknown-unknown", release ? "release" : "debug", "counterbook.wasm");
  const work = mkdtempSync(join(tmpdir(), "counterbook-split-"));
  try {
    // 1. The split.
    const splitDirectory = join(work, "split");
    run("wasm-split-cli", ["--out-name", stem, linked, splitDirectory]);

    // 2. The bindings and the main wasm, in place of Trunk's.
    const bindgenDirectory = join(work, "bindgen");
    run("wasm-bindgen", [
      "--target=web",
      `--out-dir=${bindgenDirectory}`,
      `--out-name=${stem}`,
      "--no-typescript",
      "--keep-lld-exports",
      "--no-demangle",
      join(splitDirectory, `${stem}.wasm`),
    ]);

    // 3. wasm-opt, as index.html asks of Trunk's pipeline.
    const { program, args } = wasmOpt();
    const optimize = (input, output) => {
      if (release) run(program, [...args, input, "-o", output]);
      else copyFileSync(input, output);
    };
    optimize(join(bindgenDirectory, `${stem}_bg.wasm`), join(staging, `${stem}_bg.wasm`));

    // 4. The split modules, named by their final bytes, and the link module naming them.
    let link = readFileSync(join(splitDirectory, "__wasm_split.js"), "utf8");
    const modules = [];
    for (const name of readdirSync(splitDirectory).sort()) {
      const split = name.match(/^((?:split|chunk)_.+)\.wasm$/);
      if (!split) continue;
      const optimized = join(work, name);
      optimize(join(splitDirectory, name), optimized);
      const final = `${split[1]}-${sha256(readFileSync(optimized)).slice(0, 16)}.wasm`;
      renameSync(optimized, join(staging, final));
      const reference = JSON.stringify(`./${name}`);
      if (!link.includes(reference)) throw new Error(`the link module never names ${name}`);
      link = link.replaceAll(reference, JSON.stringify(`./${final}`));
      modules.push(final);
    }
    link = readModulesFromPrecacheInWorker(link);
    link = minify(link);
    const linkName = `split-${sha256(link).slice(0, 16)}.js`;
    writeFileSync(join(staging, linkName), link);

    // The bindings import the link module by its new name; the wasm's own import module
    // (the key of the imports object) stays "./__wasm_split.js".
    let bindings = readFileSync(join(bindgenDirectory, `${stem}.js`), "utf8");
    const importPattern = /(from\s*)(["'])\.\/__wasm_split\.js\2/g;
    if (!importPattern.test(bindings)) throw new Error(`the bindings never import ${LINK_MODULE}`);
    bindings = bindings.replace(importPattern, `$1"./${linkName}"`);
    writeFileSync(bindingsFile, bindings);
    console.log(`wasm split: ${modules.length} modules beside the shell, linked by ${linkName}`);
    return { modules, linkName };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
