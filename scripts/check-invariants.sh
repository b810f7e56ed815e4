#!/usr/bin/env bash
# Checks the architecture invariants a command can check (see ARCHITECTURE.md):
#  - qpq-core and qpq-client depend on no async runtime, network, SQL or browser crate;
#  - qpq-core does not depend on the schema or Cap'n Proto (it builds without `capnp`);
#  - qpq-core and qpq-client build for wasm32-unknown-unknown;
#  - the built browser .wasm imports nothing from "env" and stays within its size budget.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

FORBIDDEN='^(tokio|quinn|quinn-proto|sqlx|sqlx-core|rusqlite|axum|hyper|h3|mio|socket2|web-sys|js-sys|wasm-bindgen|rexie|reqwest)$'
for crate in qpq-core qpq-client; do
  say "checking that $crate has no I/O dependencies"
  deps=$(cargo tree -p "$crate" -e normal --prefix none --format '{p}' | awk '{print $1}' | sort -u)
  bad=$(echo "$deps" | grep -E "$FORBIDDEN" || true)
  if [ -n "$bad" ]; then
    echo "$crate depends on: $bad" >&2
    exit 1
  fi
done

say "checking that qpq-core does not depend on the schema (no qpq-proto or capnp)"
if cargo tree -p qpq-core -e normal,build --prefix none --format '{p}' | awk '{print $1}' | grep -qE '^(qpq-proto|capnp|capnpc|capnp-rpc)$'; then
  echo "qpq-core depends on the schema or Cap'n Proto; use qpq-types" >&2
  exit 1
fi

say "checking that the gateway does not parse the protocol (no qpq-proto or capnp)"
if cargo tree -p qpq-gateway -e normal --prefix none --format '{p}' | awk '{print $1}' | grep -qE '^(qpq-proto|capnp|capnp-rpc)$'; then
  echo "qpq-gateway depends on the schema or Cap'n Proto" >&2
  exit 1
fi

ensure_wasm_target
say "checking that qpq-core and qpq-client build for wasm32-unknown-unknown"
cargo build -p qpq-core -p qpq-client --target wasm32-unknown-unknown --profile wasm-release

WASM=pkg/qpq_web_bg.wasm
if [ ! -f "$WASM" ]; then
  "$ROOT/scripts/build-web.sh"
fi
say "checking that $WASM imports nothing from \"env\""
python3 - "$WASM" <<'PY'
import sys
data = open(sys.argv[1], 'rb').read()
assert data[:4] == b'\0asm', 'not a wasm module'
pos = 8
def leb(p):
    r = s = 0
    while True:
        b = data[p]; p += 1
        r |= (b & 0x7f) << s; s += 7
        if b < 0x80: return r, p
imports = []
while pos < len(data):
    sid = data[pos]; size, pos = leb(pos + 1); end = pos + size
    if sid == 2:
        n, p = leb(pos)
        for _ in range(n):
            ml, p = leb(p); mod = data[p:p+ml].decode(); p += ml
            fl, p = leb(p); p += fl
            kind = data[p]; p += 1
            if kind == 0: _, p = leb(p)
            elif kind == 1: p += 1; fl2, p = leb(p); _, p = leb(p); p = leb(p)[1] if fl2 & 1 else p
            elif kind == 2: fl2, p = leb(p); _, p = leb(p); p = leb(p)[1] if fl2 & 1 else p
            elif kind == 3: p += 2
            elif kind == 4: p += 1; _, p = leb(p)
            imports.append(mod)
    pos = end
env = [m for m in imports if m == 'env']
print(f'{len(imports)} imports from modules {sorted(set(imports))}')
if env:
    sys.exit(f'{len(env)} imports from "env"')
PY

# Size budget of the download (see BENCHMARKS.md): brotli-compressed wasm.
BUDGET_BROTLI=${QPQ_WASM_BUDGET_BROTLI:-650000}
raw=$(stat -c %s "$WASM")
gz=$(gzip -9 -c "$WASM" | wc -c)
br=$(python3 -c "import brotli,sys; print(len(brotli.compress(open(sys.argv[1],'rb').read(), quality=11)))" "$WASM" 2>/dev/null || echo "")
if [ -z "$br" ]; then
  say "installing the Python brotli module to measure the download size"
  pip install --quiet brotli
  br=$(python3 -c "import brotli,sys; print(len(brotli.compress(open(sys.argv[1],'rb').read(), quality=11)))" "$WASM")
fi
say "wasm size: raw $raw, gzip -9 $gz, brotli 11 $br (budget: brotli <= $BUDGET_BROTLI)"
if [ "$br" -gt "$BUDGET_BROTLI" ]; then
  echo "the wasm download ($br bytes brotli) is over its budget of $BUDGET_BROTLI" >&2
  exit 1
fi
say "invariants hold"
