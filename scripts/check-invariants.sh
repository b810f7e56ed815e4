#!/usr/bin/env bash
# Checks the architecture invariants a command can check (see "Architecture invariants" in
# ARCHITECTURE.md):
#  - every dependency rule ("only X uses Y", "X never uses Y"), from the table RULES below, with
#    `cargo tree -i` (which crates have the dependency in their normal dependency graph), for
#    the host and for wasm32-unknown-unknown (the crates in WASM_CRATES);
#  - generated Cap'n Proto code is included by exactly one file;
#  - no crate's top-level modules import one another in a circle (scripts/import-cycles.py);
#  - the wasm crates build for wasm32-unknown-unknown;
#  - the built browser .wasm imports nothing from "env" and stays within its size budget.
# QPQ_ROOT checks another copy of the workspace (scripts/test-invariants.sh breaks a rule in a
# copy to prove that this script notices); QPQ_SKIP_WASM_ARTIFACT=1 stops after the rules.
set -euo pipefail
shopt -s inherit_errexit
source "$(dirname "$0")/lib.sh"
ROOT=${QPQ_ROOT:-$ROOT}
cd "$ROOT"

# The crates that build for the browser (those of them that exist are checked on wasm32).
WASM_CRATES="qpq-types qpq-core qpq-client qpq-web"

# One rule a line:  kind | crates | dependencies | targets | carriers | what ARCHITECTURE.md says
#  never: none of `crates` has any of `dependencies` in its normal dependency graph;
#  only:  no workspace crate but `crates` has any of them.
#  targets: host and/or wasm. carriers: the only crates through which the dependencies may be
#  reached anyway (pruned from the graph before looking), "-" for none. Dev-dependencies are not
#  counted (`-e normal`): tests may use anything.
RULES='
never | qpq-core qpq-client | tokio async-std smol mio socket2 quinn quinn-proto hyper h3 axum reqwest | host wasm | - | core and client depend on no async runtime or network crate
never | qpq-core qpq-client | sqlx sqlx-core rusqlite libsqlite3-sys postgres tokio-postgres | host wasm | - | core and client depend on no SQL crate
never | qpq-core qpq-client | web-sys rexie | host wasm | - | core and client depend on no browser crate
never | qpq-core qpq-client | wasm-bindgen js-sys | host wasm | getrandom web-time | core and client reach wasm-bindgen and js-sys only through the js features of getrandom and openmls (getrandom, web-time)
only | qpq-web | wasm-bindgen web-sys js-sys rexie | host wasm | getrandom web-time | only web-client uses wasm-bindgen, web-sys, js-sys or rexie
only | qpq-server qpq-gateway qpq-native qpq-quic qpq-load | quinn quinn-proto | host wasm | - | only server, gateway, native, quic and load use quinn
only | qpq-server qpq-load | sqlx sqlx-core sqlx-sqlite sqlx-postgres rusqlite libsqlite3-sys postgres tokio-postgres | host wasm | - | only server (and load, which starts a node and creates its database) uses SQL drivers
only | qpq-gateway | axum | host wasm | qpq-gateway | only gateway uses axum (load reaches it only through the gateway it starts for a benchmark)
only | qpq-core qpq-server qpq-conformance | openmls | host wasm | qpq-core qpq-server | only core, server (to validate commits) and the MLS vector suite use openmls; other crates reach it only through them
never | qpq-gateway | qpq-proto capnp capnp-rpc capnp-futures | host | - | the gateway does not depend on the schema or Cap'"'"'n Proto
never | qpq-core qpq-types | qpq-proto capnp capnp-rpc capnp-futures capnpc | host wasm | - | core and types do not depend on the schema or Cap'"'"'n Proto (core builds without the capnp compiler)
'

trim() { sed 's/^ *//; s/ *$//'; }

MEMBERS=$(cargo metadata --no-deps --format-version 1 |
  python3 -c 'import json,sys; print(" ".join(p["name"] for p in json.load(sys.stdin)["packages"]))')
has() { case " $1 " in *" $2 "*) return 0 ;; esac; return 1; }

# Sets GRAPH to the packages (name@version) in the normal dependency graph of the given roots
# for a target.
declare -A PRESENT
present() {
  local target=$1; shift
  local key="$target $*" args=()
  if [ -z "${PRESENT[$key]+x}" ]; then
    [ "$target" = wasm ] && args+=(--target wasm32-unknown-unknown)
    for r in "$@"; do args+=(-p "$r"); done
    PRESENT[$key]=$(cargo tree -e normal "${args[@]}" --prefix none --format '{p}' |
      awk 'NF {sub(/^v/, "", $2); print $1 "@" $2}' | sort -u)
  fi
  GRAPH=${PRESENT[$key]}
}

# Specs in `present` whose name is one of `names`.
matching() {
  local names=$1 present=$2
  [ -z "$names" ] && return 0
  for s in $present; do has "$names" "${s%@*}" && echo "$s"; done
  return 0
}

failed=0
checked=0
while IFS='|' read -r kind crates deps targets carriers what; do
  kind=$(echo "$kind" | trim)
  [ -z "$kind" ] && continue
  crates=$(echo "$crates" | trim); deps=$(echo "$deps" | trim); targets=$(echo "$targets" | trim)
  carriers=$(echo "$carriers" | trim); what=$(echo "$what" | trim)
  [ "$carriers" = - ] && carriers=
  for target in $targets; do
    roots=()
    if [ "$kind" = never ]; then candidates=$crates; else candidates=$MEMBERS; fi
    for c in $candidates; do
      has "$MEMBERS" "$c" || continue
      [ "$target" = wasm ] && ! has "$WASM_CRATES" "$c" && continue
      roots+=("$c")
    done
    [ ${#roots[@]} -eq 0 ] && continue
    checked=$((checked + 1))
    present "$target" "${roots[@]}"
    specs=$(matching "$deps" "$GRAPH")
    [ -z "$specs" ] && continue
    args=(-e normal)
    [ "$target" = wasm ] && args+=(--target wasm32-unknown-unknown)
    for r in "${roots[@]}"; do args+=(-p "$r"); done
    for s in $specs; do args+=(-i "$s"); done
    for s in $(matching "$carriers" "$GRAPH"); do args+=(--prune "$s"); done
    users=$(cargo tree "${args[@]}" --prefix none --format '{p}' | awk '{print $1}' | sort -u)
    bad=()
    for u in $users; do
      has "$MEMBERS" "$u" || continue
      if [ "$kind" = never ]; then has "$crates" "$u" && bad+=("$u"); else has "$crates" "$u" || bad+=("$u"); fi
    done
    if [ ${#bad[@]} -gt 0 ]; then
      echo "invariant broken ($target): $what; offending: ${bad[*]}; the paths:" >&2
      cargo tree "${args[@]}" --format '{p}' >&2
      failed=1
    fi
  done
done <<<"$RULES"
[ "$failed" -eq 0 ] || exit 1
say "$checked dependency rule checks hold (host and wasm32)"

say "checking that generated Cap'n Proto code is included by exactly one file"
generated=$(grep -rlE --include='*.rs' --exclude-dir=target --exclude-dir=node_modules --exclude-dir=.git \
  'include!\(concat!\(env!\("OUT_DIR"\), "/[a-z_]+_capnp\.rs"\)\)' . || true)
if [ "$(echo "$generated" | grep -c .)" -ne 1 ]; then
  echo "invariant broken: generated Cap'n Proto code is included by: ${generated:-no file}" >&2
  exit 1
fi

say "checking that no crate's modules import one another in a circle"
for src in */src; do
  [ -f "${src%/src}/Cargo.toml" ] && python3 "$ROOT/scripts/import-cycles.py" "$src"
done

[ "${QPQ_SKIP_WASM_ARTIFACT:-}" = 1 ] && exit 0

ensure_wasm_target
wasm_build=() wasm_names=()
for c in $WASM_CRATES; do
  has "$MEMBERS" "$c" && [ "$c" != qpq-web ] && wasm_build+=(-p "$c") && wasm_names+=("$c")
done
say "checking that ${wasm_names[*]} build for wasm32-unknown-unknown (qpq-web: below)"
cargo build "${wasm_build[@]}" --target wasm32-unknown-unknown --profile wasm-release

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
BUDGET_BROTLI=${QPQ_WASM_BUDGET_BROTLI:-725000}
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
