#!/usr/bin/env bash
# Browser end-to-end tests: builds the web client, qpq-server and qpq-gateway, installs what is
# missing (Debian's Chromium, coturn, the Playwright npm packages, a running PostgreSQL), then
# runs the Playwright suite in playwright/ against real processes on 127.0.0.1, two test files
# at a time (QPQ_TEST_WORKERS): the first worker's gateway on :18080 (HTTPS :18443), nodes
# :17443 and :17444 and the call tests' TURN server :18478; the second's 200 above each.
# Extra arguments go to `playwright test` (e.g. a file or -g NAME).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

say "building the web client (pkg/), qpq-server and qpq-gateway"
# The tests start exactly these binaries (QPQ_BIN_DIR).
prepare_browser_stack
ensure_postgres

say "running the browser tests (Chromium at /usr/bin/chromium)"
cd "$ROOT/playwright"
exec npx playwright test --reporter=list "$@"
