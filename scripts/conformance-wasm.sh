#!/usr/bin/env bash
# Builds the MLS conformance suite (crate qpq-conformance) for
# wasm32-unknown-unknown and runs it in headless Chromium with
# wasm-bindgen-test-runner. The browser test asserts the same expected
# counts (qpq_conformance::EXPECTED*) as the native `cargo test -p qpq-conformance`.
#
# Installs what is missing: the wasm32 target (rustup), wasm-bindgen-cli at
# the version in Cargo.lock (cargo install), Debian's chromium and
# chromium-driver (apt-get). Honours CARGO_TARGET_DIR.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
say() { printf '==> %s\n' "$*"; }

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    say "adding the wasm32-unknown-unknown target (rustup)"
    rustup target add wasm32-unknown-unknown
fi

wb_version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)"
if [ -z "$wb_version" ]; then
    echo "cannot find wasm-bindgen in Cargo.lock" >&2
    exit 1
fi
if ! wasm-bindgen-test-runner --version 2>/dev/null | grep -q " $wb_version\$"; then
    say "installing wasm-bindgen-cli $wb_version (matches Cargo.lock; takes several minutes)"
    # No --locked: a pinned dependency of its lock file is missing from the registry.
    cargo install wasm-bindgen-cli --version "$wb_version"
fi

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    say "installing Debian's chromium and chromium-driver (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium chromium-driver >/dev/null
fi

export CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver)}"
# Debian chromium, headless (the runner adds --headless), flags in webdriver.json.
export WASM_BINDGEN_TEST_WEBDRIVER_JSON="$repo/conformance/webdriver.json"
# The whole suite is one test; the runner's default limit is 20 s.
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-900}"
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner

say "$(chromium --version 2>/dev/null || echo chromium), $(chromedriver --version | head -n1), wasm-bindgen $wb_version"
say "building and running qpq-conformance in headless Chromium"
start=$(date +%s)
cargo test -p qpq-conformance --target wasm32-unknown-unknown --test browser -- --nocapture
say "browser conformance run finished in $(( $(date +%s) - start )) s (build included)"
