#!/usr/bin/env bash
# Checks the deployment example in deploy/systemd:
#  - the units pass `systemd-analyze verify` (with ExecStart pointed at this build);
#  - every variable in the env files is one qpq-server or qpq-gateway reads (a misspelt one
#    would be ignored silently);
#  - three nodes and two gateways started with exactly those env files — only the database
#    (a scratch one), the data and certificate directories (a scratch area) and the gateways'
#    HTTPS being off are changed — become ready, each gateway reporting three nodes up.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
ensure_postgres

build_binaries
bin=$QPQ_BIN_DIR
scratch=$(mktemp -d)
db="qpq_deploy_$$"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql -h 127.0.0.1 -U postgres -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" postgres >/dev/null 2>&1 || true
  rm -rf "$scratch"
}
trap cleanup EXIT

say "systemd-analyze verify deploy/systemd/*.service"
mkdir -p "$scratch/units"
for u in deploy/systemd/*.service; do
  sed -e "s|/usr/local/bin/|$bin/|" -e "s|^User=.*|User=root|" -e "s|^Group=.*|Group=root|" \
    -e "s|^EnvironmentFile=.*|EnvironmentFile=-$scratch/none.env|" "$u" > "$scratch/units/$(basename "$u")"
done
for u in "$scratch"/units/*@.service; do
  inst="${u%@.service}@1.service"
  cp "$u" "$inst"
  if ! out=$(systemd-analyze verify --man=no "$inst" 2>&1) || [ -n "$out" ]; then
    echo "$out" >&2
    echo "systemd-analyze found problems in $(basename "$u")" >&2
    exit 1
  fi
done

say "every variable in the env files is a flag's variable"
known=$("$bin/qpq-server" --help; "$bin/qpq-gateway" --help)
for f in deploy/systemd/*.env; do
  while IFS='=' read -r key _; do
    case "$key" in ''|'#'*) continue ;; esac
    grep -q "\[env: $key=" <<<"$known" || { echo "$f: $key is not read by qpq-server or qpq-gateway" >&2; exit 1; }
  done < "$f"
done

say "three nodes and two gateways from the env files"
psql -h 127.0.0.1 -U postgres -q -c "CREATE DATABASE $db" postgres
# The env files as written, then the few overrides a scratch run needs.
run_with() {
  local envfile=$1; shift
  (
    set -a
    # shellcheck disable=SC1090
    source "$envfile"
    set +a
    # NAME=value overrides a variable, -NAME removes it.
    for kv in "$@"; do
      if [ "${kv#-}" != "$kv" ]; then unset "${kv#-}"; else export "${kv?}"; fi
    done
    exec "${cmd[@]}"
  ) >"$scratch/$(basename "$envfile").log" 2>&1 &
  pids+=($!)
}
for i in 1 2 3; do
  cmd=("$bin/qpq-server")
  run_with deploy/systemd/node-$i.env "QPQ_DATABASE=postgres://postgres@127.0.0.1:5432/$db" \
    "QPQ_DATA_DIR=$scratch/node-$i"
done
ready() { curl -fsS "http://$1/readyz" >/dev/null 2>&1; }
wait_ready() {
  for _ in $(seq 120); do ready "$1" && return 0; sleep 0.5; done
  echo "$2 at $1 never became ready" >&2
  cat "$scratch"/*.log >&2
  exit 1
}
for i in 1 2 3; do wait_ready "127.0.0.1:946$i" "node $i"; done
certs="$scratch/node-1/cert.der,$scratch/node-2/cert.der,$scratch/node-3/cert.der"
for i in 1 2; do
  cmd=("$bin/qpq-gateway")
  run_with deploy/systemd/gateway-$i.env "QPQ_GATEWAY_NODE_CERTS=$certs" "QPQ_GATEWAY_NO_HTTPS=true" \
    -QPQ_GATEWAY_TLS_CERT -QPQ_GATEWAY_TLS_KEY "QPQ_GATEWAY_WWW=$ROOT/www" "QPQ_GATEWAY_PKG=$ROOT/pkg"
done
for i in 1 2; do
  wait_ready "127.0.0.1:947$i" "gateway $i"
  for _ in $(seq 60); do
    up=$(curl -fsS "http://127.0.0.1:947$i/metrics" | awk '$1=="qpq_gateway_nodes_up"{print $2}')
    [ "$up" = 3 ] && break
    sleep 0.5
  done
  [ "$up" = 3 ] || { echo "gateway $i sees $up of 3 nodes up" >&2; exit 1; }
  curl -fsS "http://127.0.0.1:808$i/healthz" | grep -q '"ok"' || { echo "gateway $i is not healthy" >&2; exit 1; }
done
say "the deployment example runs: 3 nodes ready on one database, 2 gateways each with 3 nodes up"
