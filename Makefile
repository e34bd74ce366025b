# Counterbook's two commands:
#   make run   builds the PWA (release) and serves it from counterbook-server on
#              http://127.0.0.1:8080 with accounts (sign-in), its SQLite file under ./data; while
#              no shop is set up it prints a one-time setup code for "Set up your shop";
#   make demo  the same without accounts (--dev, like the Firestore emulator) and with a demo
#              catalogue and customers in shop demo-shop, data in ./demo-data;
#   make test  runs every test: formatting and lints, native tests, browser tests on the real
#              IndexedDB in headless Chromium, and the end-to-end tests.
# Both install whatever is missing on a fresh Debian machine and skip what is already present at
# the right version (the Rust tools install once into ~/.cargo/bin; trunk takes ~16 minutes).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

WASM_BINDGEN_VERSION := 0.2.130
TRUNK_VERSION := 0.21.14
# apt waits up to ten minutes for another apt (a second make, the machine's own updates) to let
# go of dpkg's lock instead of failing at once.
APT_GET := apt-get -o DPkg::Lock::Timeout=600
# The wasm split of the release app (tools/split-wasm.mjs); its split points use the helpers
# crate of the same project (wasm_split_helpers, through Leptos).
WASM_SPLIT_VERSION := 0.2.4
ADDR ?= 127.0.0.1:8080
DATA ?= $(CURDIR)/data
DEMO_DATA ?= $(CURDIR)/demo-data
# The app's default project id.
PROJECT ?= counterbook
# More flags for `make run` and `make demo`, e.g. SERVE_FLAGS=--tls (HTTPS from a local CA, README.md).
SERVE_FLAGS ?=

export PATH := $(CURDIR)/tools/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)
# wasm-bindgen-test-runner drives Debian's Chromium through chromedriver (options in webdriver.json).
export CHROMEDRIVER := /usr/bin/chromedriver
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER := wasm-bindgen-test-runner
export WASM_BINDGEN_TEST_TIMEOUT := 120

.PHONY: run demo test build dist server lint test-native test-browser test-e2e \
	tools wasm-target wasm-bindgen-cli wasm-split-cli trunk chromium zopfli bench-server bench-realtime soak-server \
	bench-counter bench-cold-start walk-shop-day size audit

run: build
	@echo "Counterbook on http://$(ADDR) (data in $(DATA)); the setup code, if any, is printed below"
	./target/release/counterbook-server serve --addr $(ADDR) --data $(DATA) --app dist --project $(PROJECT) $(SERVE_FLAGS)

demo: build
	@echo "Counterbook demo on http://$(ADDR) without accounts (data in $(DEMO_DATA))"
	./target/release/counterbook-server serve --addr $(ADDR) --data $(DEMO_DATA) --app dist --dev --demo-data $(SERVE_FLAGS)

test: lint test-native test-browser test-e2e

build: dist server

dist: wasm-target wasm-bindgen-cli wasm-split-cli trunk zopfli tools/node_modules/.installed
	trunk build --release

server:
	cargo build --release -p counterbook-server

lint: wasm-target
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p counterbook --target wasm32-unknown-unknown --all-targets -- -D warnings

test-native:
	cargo test --workspace

test-browser: wasm-target wasm-bindgen-cli chromium
	cargo test -p counterbook --target wasm32-unknown-unknown

test-e2e: build chromium e2e/node_modules/.installed e2e/firebase-tools/node_modules/.installed
	cd e2e && npm test

# A benchmark, not a test (about two minutes; not part of `make test`): commits/s and p50/p99
# latency of counterbook-server and Google's Firestore emulator side by side, and the SQLite
# ceiling. Release builds only; loopback only; it stops everything it starts.
bench-server:
	cargo build --release -p counterbook-server --bin counterbook-server --example bench_server
	./target/release/examples/bench_server

# A soak, not a test (about three minutes; not part of `make test`): the mixed hostile load of
# crates/server/tests/bounds.rs against the release server, sampling its resident memory to
# show it flat while an honest shop is served. Loopback only; it stops the server it starts.
soak-server:
	cargo build --release -p counterbook-server --bin counterbook-server --example soak_server
	./target/release/examples/soak_server --seconds 180

# A benchmark, not a test (a few minutes; not part of `make test`): p50/p95/p99 from a commit to
# the other tablet's screen over 200 changes, Counterbook listening on counterbook-server and on
# Google's emulator, side by side with the Firebase JS SDK's onSnapshot on both.
bench-realtime: build chromium e2e/node_modules/.installed
	cd e2e && node bench-realtime.mjs

# A benchmark, not a test (several minutes; not part of `make test`): the counter with 50,000
# and 100,000 products on counterbook-server: first sync into an empty tablet, scan to cart line
# painted, search keystroke to results painted, complete sale to receipt painted, beside the
# same lookups in raw IndexedDB JavaScript.
bench-counter: build chromium e2e/node_modules/.installed
	cd e2e && node bench-counter.mjs

# A benchmark, not a test (a few minutes; not part of `make test`): an installed tablet with
# 10,000 products synced goes offline, and fresh page loads of /counter from the service worker
# are timed from navigation to the scan field focused and a scan's line on the bill, p50/p99
# (BENCH_COLD_START_PROFILE=1 also records a CPU profile of one run).
bench-cold-start: build chromium e2e/node_modules/.installed
	cd e2e && node bench-cold-start.mjs

# Not a test (about fifteen minutes; not part of `make test`): a shopkeeper's day on 100,000
# products and 3,000 bills on counterbook-server with accounts, through every screen, each
# step's time, DOM elements, JS heap, wasm memory and IndexedDB records read printed, and
# every screen photographed at 800x1280 and 1280x800 (e2e/artifacts/walk-*.png).
walk-shop-day: build chromium e2e/node_modules/.installed
	cd e2e && node walk-shop-day.mjs

# Not a test (not part of `make test`): the gzip and brotli bytes of the app shell (wasm, js,
# html, css, service worker, manifest) from the release build's precompressed copies, and the
# total against the 500 KB gzip budget; fails when over it.
size: dist
	node tools/size.mjs dist

# Not a test (about a minute; not part of `make test`): Lighthouse 12.2.3 (installed into
# tools/audit) on the counter over HTTPS from the server's local CA, and Chromium's own
# installability check; prints the scores and what failed, fails under 95 for accessibility or
# best practices or when the app is not installable. Report in e2e/artifacts/.
audit: build chromium e2e/node_modules/.installed tools/audit/node_modules/.installed
	cd e2e && node audit.mjs

# --- tools -------------------------------------------------------------------------------------

tools: wasm-target wasm-bindgen-cli wasm-split-cli trunk chromium zopfli tools/node_modules/.installed e2e/node_modules/.installed \
	e2e/firebase-tools/node_modules/.installed

wasm-target:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown \
		|| rustup target add wasm32-unknown-unknown

# Must match the wasm-bindgen crate pinned in Cargo.toml. Not --locked: a locked dependency is
# missing from the registry mirror here.
wasm-bindgen-cli:
	@[ "$$(wasm-bindgen --version 2>/dev/null)" = "wasm-bindgen $(WASM_BINDGEN_VERSION)" ] \
		|| cargo install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION) --force

# The CLI has no --version: cargo's list of installed crates says which is there.
wasm-split-cli:
	@cargo install --list | grep -qx 'wasm_split_cli_support v$(WASM_SPLIT_VERSION):' \
		|| cargo install wasm_split_cli_support --version $(WASM_SPLIT_VERSION) --features build-binary --locked --force

# 0.21: 0.22 needs a newer rustc than this machine's.
trunk:
	@[ "$$(trunk --version 2>/dev/null)" = "trunk $(TRUNK_VERSION)" ] \
		|| cargo install trunk --version $(TRUNK_VERSION) --locked --force

# A Devanagari font too (Debian's Chromium has none of its own): the Hindi screens and receipts
# are photographed and drawn on a canvas in the tests (Arabic is in DejaVu Sans, always there).
chromium:
	@[ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] \
		&& [ -e /usr/share/fonts/truetype/lohit-devanagari/Lohit-Devanagari.ttf ] \
		|| { $(APT_GET) update && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y chromium chromium-driver fonts-lohit-deva; }

# Debian's zopfli makes the build's .gz copies (tools/finish-build.mjs): the same gzip format,
# about 4.6% smaller than gzip -9 on the wasm.
zopfli:
	@command -v zopfli >/dev/null \
		|| { $(APT_GET) update && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y zopfli; }

# wasm-opt 132 from npm (Debian's binaryen 108 silently produces a wasm that fails to load).
tools/node_modules/.installed: tools/package.json tools/package-lock.json
	cd tools && npm ci --no-audit --no-fund
	touch $@

tools/audit/node_modules/.installed: tools/audit/package.json tools/audit/package-lock.json
	cd tools/audit && npm ci --no-audit --no-fund
	touch $@

# playwright-core drives Debian's Chromium; it never downloads a browser.
e2e/node_modules/.installed: e2e/package.json e2e/package-lock.json
	cd e2e && npm ci --no-audit --no-fund
	touch $@

# firebase-tools 15.34.2 for its Firebase Auth emulator (e2e/firebase-auth.test.mjs), in a folder
# of its own (624 packages, 242 MB; about 40 s from an empty npm cache here). Install scripts are
# off: the only ones are re2's, which would download a prebuilt binary (the Auth emulator runs
# without re2), and two that compile or print; the Auth emulator is plain JavaScript and needs no jar.
e2e/firebase-tools/node_modules/.installed: e2e/firebase-tools/package.json e2e/firebase-tools/package-lock.json
	cd e2e/firebase-tools && npm ci --no-audit --no-fund --ignore-scripts
	touch $@
