#!/usr/bin/env bash
# Builds the browser client: the web-client crate for wasm32 (profile wasm-release) and its
# JavaScript bindings into pkg/, then the service worker's precache list (pkg/precache.js).
# pkg/ is also the npm package @quicproquo/web (a package.json with the workspace version and
# the SDK README from web-client/sdk/ are written beside them).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
ensure_capnp
ensure_wasm_target
ensure_wasm_bindgen
PROFILE=${QPQ_WASM_PROFILE:-wasm-release}
say "building qpq-web for wasm32 (profile $PROFILE)"
cargo build -p qpq-web --target wasm32-unknown-unknown --profile "$PROFILE"
say "generating JavaScript bindings into pkg/"
rm -rf pkg
wasm-bindgen --target web --remove-name-section --out-dir pkg \
  "${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/$PROFILE/qpq_web.wasm"
ls -l pkg/*.wasm >&2
say "listing the files the service worker precaches (pkg/precache.js)"
python3 scripts/web-precache.py www pkg
write_sdk_package pkg
