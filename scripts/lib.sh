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
  # The notification tests start a private session bus of their own (playwright/support/desktop.js).
  command -v dbus-daemon >/dev/null 2>&1 || apt_install dbus
}

# coturn, the TURN server the call tests and benchmarks start themselves (on a port of their
# own, with a test secret; they do not use a system-wide coturn service).
ensure_coturn() {
  command -v turnserver >/dev/null 2>&1 || apt_install coturn
}

ensure_postgres() {
  if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    say "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
    for _ in $(seq 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
  fi
}

# NATS, the optional wake-up bus of a PostgreSQL cluster (qpq-server --nats-url): the tests
# of that bus use the one on 127.0.0.1:4222, started here when it does not answer (Debian's
# nats-server, installed if missing).
ensure_nats() {
  if ! (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
    if ! command -v nats-server >/dev/null; then
      say "installing nats-server (apt)"
      apt-get install -y -q nats-server >/dev/null
    fi
    say "starting NATS on 127.0.0.1:4222"
    local log
    log=$(mktemp -d -t qpq-nats.XXXXXX)/nats.log
    (setsid nats-server -a 127.0.0.1 -p 4222 -l "$log" >/dev/null 2>&1 </dev/null &)
    for _ in $(seq 30); do (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null && break; sleep 0.5; done
  fi
}

ensure_node_modules() {
  # npm ci records what it installed in node_modules/.package-lock.json: reinstall when the
  # project's lock file is newer (a dependency was added).
  local pw="$ROOT/playwright"
  if [ ! -f "$pw/node_modules/.package-lock.json" ] || [ "$pw/package-lock.json" -nt "$pw/node_modules/.package-lock.json" ]; then
    say "installing the Playwright test project's npm packages (no browser download)"
    (cd "$ROOT/playwright" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
  fi
}

# What the Playwright tests and the browser benchmarks run against: the web client in pkg/,
# debug builds of qpq-server and qpq-gateway (QPQ_BIN_DIR points at them), Chromium and the
# test project's npm packages.
prepare_browser_stack() {
  "$ROOT/scripts/build-web.sh"
  build_binaries
  ensure_chromium
  ensure_coturn
  ensure_node_modules
}

# Debug builds of qpq-server, qpq-gateway and the native client qpq; QPQ_BIN_DIR points at them.
# Every script that needs these binaries builds them with this one command: another package
# selection unifies the dependencies' features differently and builds a second copy of them
# (sqlx, quinn, tokio …), gigabytes of target/ for nothing.
#
# scripts/test.sh sets QPQ_BINARIES_FROM_TESTS=1 once `cargo test --workspace` has passed: that
# build already made all three (each package has an integration test that runs its binary),
# with the test build's dependency features; building them again here would compile tokio,
# sqlx, quinn … a second time with other features.
build_binaries() {
  export QPQ_BIN_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/debug"
  if [ "${QPQ_BINARIES_FROM_TESTS:-}" = 1 ]; then
    say "using qpq-server, qpq-gateway and qpq as \`cargo test --workspace\` built them"
    for b in qpq-server qpq-gateway qpq; do
      [ -x "$QPQ_BIN_DIR/$b" ] || { echo "$QPQ_BIN_DIR/$b is missing" >&2; return 1; }
    done
    return 0
  fi
  say "building qpq-server, qpq-gateway and the native client qpq"
  # One --bin per binary: `--bin` limits the build to the named targets of every selected package.
  (cd "$ROOT" && cargo build -p qpq-server -p qpq-gateway -p qpq-native --bin qpq-server --bin qpq-gateway --bin qpq)
}

# The workspace version (`[workspace.package] version` in Cargo.toml).
workspace_version() {
  awk '/^\[workspace\.package\]/{in_pkg=1; next} /^\[/{in_pkg=0} in_pkg && $1=="version"{gsub(/"/,"",$3); print $3; exit}' "$ROOT/Cargo.toml"
}

# Turns the wasm-bindgen output in $1 into the npm package @quicproquo/web: package.json
# (ES module, types, exports) and the SDK's README (web-client/sdk/README.md).
write_sdk_package() {
  local dir=$1 version
  version=$(workspace_version)
  [ -n "$version" ] || { echo "no [workspace.package] version in Cargo.toml" >&2; return 1; }
  cp "$ROOT/web-client/sdk/README.md" "$dir/README.md"
  cat >"$dir/package.json" <<JSON
{
  "name": "@quicproquo/web",
  "version": "$version",
  "description": "The quicproquo engine for web pages: end-to-end encrypted chat (MLS) in WebAssembly, with IndexedDB storage and WebTransport/WebSocket transports.",
  "license": "AGPL-3.0-or-later",
  "type": "module",
  "main": "./qpq_web.js",
  "module": "./qpq_web.js",
  "types": "./qpq_web.d.ts",
  "exports": {
    ".": {
      "types": "./qpq_web.d.ts",
      "default": "./qpq_web.js"
    },
    "./qpq_web_bg.wasm": "./qpq_web_bg.wasm",
    "./package.json": "./package.json"
  },
  "files": [
    "qpq_web.js",
    "qpq_web.d.ts",
    "qpq_web_bg.wasm",
    "qpq_web_bg.wasm.d.ts",
    "snippets/",
    "README.md"
  ],
  "sideEffects": false
}
JSON
  say "wrote the npm package @quicproquo/web $version in $dir"
}

# Copies the repository's files (tracked and new, not ignored; as they are in the working tree)
# into the directory $1, without git metadata or build output.
copy_repo() {
  mkdir -p "$1"
  (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard --deduplicate |
    tar --null -T - --ignore-failed-read -cf -) | tar -xf - -C "$1"
}
