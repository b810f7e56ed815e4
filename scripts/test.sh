#!/usr/bin/env bash
# Sets up (installs what is missing) and runs every test of the project.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
start=$(date +%s)
step() { say "[$(( $(date +%s) - start ))s] $*"; }

ensure_capnp
ensure_postgres
ensure_nats

step "Rust tests: unit, engine scenarios, storage conformance (SQLite and PostgreSQL), end to end over QUIC"
cargo test --workspace --no-fail-fast
# That build made qpq-server, qpq-gateway and qpq too: the browser and deployment tests use them.
export QPQ_BINARIES_FROM_TESTS=1

step "architecture invariants, wasm imports and size budget"
scripts/check-invariants.sh
step "the invariant checker notices a broken rule"
scripts/test-invariants.sh

step "nothing reads outside the repository"
scripts/check-self-contained.sh

step "IETF MLS test vectors in headless Chromium (WASM)"
scripts/conformance-wasm.sh

if [ -x scripts/fuzz.sh ]; then
  step "fuzzing, short run"
  scripts/fuzz.sh short
fi

step "browser tests (Playwright, headless Chromium)"
scripts/test-browser.sh

step "the deployment example (deploy/systemd): units verified, three nodes and two gateways from its env files"
scripts/test-deploy.sh

step "all tests passed"
