# Shared helpers of the project scripts: each `ensure_*` installs what is missing and says so.
# shellcheck shell=bash

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

ensure_capnp() {
  command -v capnp >/dev/null 2>&1 || apt_install capnproto
}

ensure_wasm_target() {
  if ! rustup target list --installed | grep -q '^wasm32-unknown-unknown$'; then
    say "adding the Rust target wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
  fi
}

# wasm-bindgen-cli must match the wasm-bindgen version in Cargo.lock exactly.
ensure_wasm_bindgen() {
  local want
  want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/"/,"",$3); print $3; exit}' "$ROOT/Cargo.lock")
  if ! command -v wasm-bindgen >/dev/null 2>&1 || [ "$(wasm-bindgen --version | awk '{print $2}')" != "$want" ]; then
    say "installing wasm-bindgen-cli $want (compiles from source, several minutes)"
    cargo install wasm-bindgen-cli --version "$want"
  fi
}

ensure_chromium() {
  command -v chromium >/dev/null 2>&1 || apt_install chromium
}

ensure_postgres() {
  if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    say "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
    for _ in $(seq 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
  fi
}

ensure_node_modules() {
  if [ ! -d "$ROOT/playwright/node_modules" ]; then
    say "installing the Playwright test project's npm packages (no browser download)"
    (cd "$ROOT/playwright" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
  fi
}

# What the Playwright tests and the browser benchmarks run against: the web client in pkg/,
# debug builds of qpq-server and qpq-gateway (QPQ_BIN_DIR points at them), Chromium and the
# test project's npm packages.
prepare_browser_stack() {
  "$ROOT/scripts/build-web.sh"
  say "building qpq-server and qpq-gateway"
  (cd "$ROOT" && cargo build -p qpq-server -p qpq-gateway)
  export QPQ_BIN_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/debug"
  ensure_chromium
  ensure_node_modules
}

# Copies the repository's files (tracked and new, not ignored; as they are in the working tree)
# into the directory $1, without git metadata or build output.
copy_repo() {
  mkdir -p "$1"
  (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard --deduplicate |
    tar --null -T - --ignore-failed-read -cf -) | tar -xf - -C "$1"
}
