#!/usr/bin/env bash
# Proves that scripts/check-invariants.sh notices a broken rule: in a throwaway copy of the
# workspace it breaks one rule at a time (core gains tokio; core uses js-sys directly on wasm,
# outside the narrow getrandom/openmls exception; the gateway gains the schema), and asserts
# that the checker fails naming that rule; then that it passes on the copy as it is.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
copy=$tmp/repo
copy_repo "$copy"
say "checking the invariant checker against a copy of the workspace in $copy"

check_copy() { CARGO_NET_OFFLINE=true QPQ_ROOT=$copy QPQ_SKIP_WASM_ARTIFACT=1 "$ROOT/scripts/check-invariants.sh" >"$tmp/out" 2>&1; }

# expect_broken NAME MANIFEST TEXT-APPENDED RULE OFFENDING-CRATE
expect_broken() {
  local name=$1 manifest=$copy/$2 addition=$3 rule=$4 crate=$5
  cp "$manifest" "$tmp/manifest.orig"
  printf '\n%s\n' "$addition" >>"$manifest"
  if check_copy; then
    cat "$tmp/out" >&2
    echo "the checker passed although $name" >&2
    exit 1
  fi
  if ! grep -E "^invariant broken \([a-z]+\): " "$tmp/out" | grep -F "$rule; offending: " | grep -qE " $crate( |;|$)"; then
    cat "$tmp/out" >&2
    echo "the checker failed, but not naming $crate and the rule \"$rule\", when $name" >&2
    exit 1
  fi
  say "fails as it should when $name"
  cp "$tmp/manifest.orig" "$manifest"
}

# Target-specific tables go last in a manifest, so appending one adds a dependency.
expect_broken "core depends on tokio" core/Cargo.toml \
  "[target.'cfg(not(target_arch = \"wasm32\"))'.dependencies]
tokio.workspace = true" \
  "core and client depend on no async runtime or network crate" qpq-core
expect_broken "core uses js-sys directly on wasm" core/Cargo.toml \
  "[target.'cfg(target_arch = \"wasm32\")'.dependencies.js-sys]
version = \"0.3\"" \
  "core and client reach wasm-bindgen and js-sys only through the js features of getrandom and openmls (getrandom, web-time)" qpq-core
expect_broken "the gateway depends on the schema" gateway/Cargo.toml \
  "[target.'cfg(not(target_arch = \"wasm32\"))'.dependencies]
qpq-proto.workspace = true" \
  "the gateway does not depend on the schema or Cap'n Proto" qpq-gateway

if ! check_copy; then
  cat "$tmp/out" >&2
  echo "the checker fails on the unbroken copy" >&2
  exit 1
fi
say "passes on the unbroken copy: the invariant checker works"
