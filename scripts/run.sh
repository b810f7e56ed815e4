#!/usr/bin/env bash
# Builds everything and runs quicproquo on this machine: one server node on the embedded
# SQLite default (data and its generated certificate in .qpq/server/) and the gateway serving
# the browser app, then prints the URL to open. Ctrl-C stops both.
#
# Installs what is missing first and says so (capnproto, the wasm32 target, wasm-bindgen-cli
# at Cargo.lock's version). Environment: QPQ_PROFILE=release|dev (default release: the first
# build takes several minutes), QPQ_DATA_DIR (default .qpq/server), and the servers' own QPQ_*
# variables (see `qpq-server --help` and `qpq-gateway --help`). Calls: QPQ_TURN_URL and
# QPQ_TURN_SECRET point the node at a TURN server (coturn with use-auth-secret and the same
# static-auth-secret), QPQ_STUN_URL at a STUN server; without them calls connect only directly.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

profile=${QPQ_PROFILE:-release}
case "$profile" in
  release) cargo_profile=(--release); bin_dir="${CARGO_TARGET_DIR:-$ROOT/target}/release" ;;
  dev) cargo_profile=(); bin_dir="${CARGO_TARGET_DIR:-$ROOT/target}/debug" ;;
  *) echo "QPQ_PROFILE must be release or dev, not '$profile'" >&2; exit 2 ;;
esac
data_dir=${QPQ_DATA_DIR:-.qpq/server}

scripts/build-web.sh

say "building qpq-server and qpq-gateway ($profile)"
cargo build "${cargo_profile[@]}" -p qpq-server -p qpq-gateway

pids=()
stop() {
  trap - INT TERM EXIT
  if [ ${#pids[@]} -gt 0 ]; then
    say "stopping"
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
}
trap stop INT TERM EXIT

mkdir -p "$data_dir"
say "starting the server node on 127.0.0.1:7443 (SQLite in $data_dir)"
if [ -n "${QPQ_TURN_URL:-}" ]; then say "calls relay through $QPQ_TURN_URL"; else say "calls: no TURN server (set QPQ_TURN_URL and QPQ_TURN_SECRET)"; fi
"$bin_dir/qpq-server" --data-dir "$data_dir" &
pids+=("$!")

# The gateway pins the node's certificate, which the node writes on its first start.
for _ in $(seq 100); do
  [ -s "$data_dir/cert.der" ] && break
  kill -0 "${pids[0]}" 2>/dev/null || { echo "the server node did not start (see its log above)" >&2; exit 1; }
  sleep 0.1
done

say "starting the gateway"
"$bin_dir/qpq-gateway" --node-cert "$data_dir/cert.der" &
pids+=("$!")

for _ in $(seq 100); do
  curl -fsS http://127.0.0.1:8080/healthz >/dev/null 2>&1 && break
  kill -0 "${pids[1]}" 2>/dev/null || { echo "the gateway did not start (see its log above)" >&2; exit 1; }
  sleep 0.1
done
say "quicproquo is running. Open http://127.0.0.1:8080 (Ctrl-C stops it)"
wait -n "${pids[@]}"
echo "a process exited; stopping the other" >&2
