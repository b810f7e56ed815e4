#!/usr/bin/env bash
# Runs the benchmarks whose figures are recorded in BENCHMARKS.md (not tests: they print
# rates and ratios, they do not pass or fail on speed). Installs what is missing, like the
# other scripts. Run on a quiet machine; each figure that compares two things measures both
# in the same run.
#
#   scripts/bench.sh            all of them
#   scripts/bench.sh mls        only the named ones (mls, throughput, link, backup, load, load-matrix, pg-notify, large-group, idle-sessions, browser-mls, transports, files, push, calls, widget)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
ensure_capnp

all=(mls throughput link backup load load-matrix pg-notify large-group idle-sessions browser-mls transports files push calls widget)
if [ "$#" -gt 0 ]; then wanted=("$@"); else wanted=("${all[@]}"); fi

browser_setup_done=
browser_setup() {
  [ -n "$browser_setup_done" ] && return
  prepare_browser_stack
  browser_setup_done=1
}

for b in "${wanted[@]}"; do
  case "$b" in
    mls)
      say "MLS encrypt/decrypt in qpq-core, natively (2 and 100 members)"
      cargo bench -p qpq-core --bench mls
      ;;
    throughput)
      say "messages per second through one node over QUIC vs a raw quinn echo"
      cargo bench -p qpq-native --bench throughput
      ;;
    backup)
      say "backup and restore of an account with 1,000 and 10,000 messages: file size, seconds"
      cargo bench -p qpq-native --bench backup
      ;;
    link)
      say "linking a device: request to history in, with 1,000 and 10,000 messages of history"
      cargo bench -p qpq-native --bench link
      ;;
    load)
      ensure_postgres
      cargo build --release -p qpq-load
      for storage in sqlite postgres; do
        for config in "--senders 4 --in-flight 1" "--groups 4 --group-size 4 --senders 16 --in-flight 8"; do
          say "qpq-load on $storage, $config: node accepts vs a raw quinn echo of the same concurrency"
          # shellcheck disable=SC2086  # the configuration is a list of flags
          cargo run --release -q -p qpq-load -- --storage "$storage" $config
        done
      done
      ;;
    load-matrix)
      ensure_postgres
      cargo build --release -p qpq-load
      for storage in sqlite postgres; do
        for text in 32 1000; do
          # (groups, senders, pool): every sender in a group of 4; a smaller pool at 512 keeps
          # the setup's encryption short.
          for shape in "4 4 256" "16 64 256" "128 512 64"; do
            read -r groups senders pool <<<"$shape"
            say "qpq-load on $storage, $senders senders, $text-byte texts: node accepts vs a raw quinn echo"
            cargo run --release -q -p qpq-load -- --storage "$storage" --groups "$groups" --group-size 4 \
              --senders "$senders" --in-flight 1 --text-bytes "$text" --pool "$pool" --duration 10
          done
        done
      done
      ;;
    pg-notify)
      ensure_postgres
      ensure_nats
      cargo build --release -p qpq-load --bin qpq-pg-notify --bin qpq-load
      say "PostgreSQL commits of an enqueue's shape with and without the nodes' NOTIFY"
      cargo run --release -q -p qpq-load --bin qpq-pg-notify
      for storage in postgres postgres-nats postgres postgres-nats; do
        say "qpq-load on $storage (wake-ups by NOTIFY or by NATS), 16 senders x 8 in flight"
        cargo run --release -q -p qpq-load -- --storage "$storage" --groups 4 --group-size 4 --senders 16 --in-flight 8
      done
      ;;
    large-group)
      ensure_postgres
      cargo build --release -p qpq-load --bin qpq-large-group
      for storage in sqlite postgres; do
        say "a 1,000-member group on one node ($storage): made in batches of 100, one more added, one message fanned out, memory"
        cargo run --release -q -p qpq-load --bin qpq-large-group -- --members 1000 --batch 100 --storage "$storage"
      done
      ;;
    idle-sessions)
      cargo build --release -p qpq-load --bin qpq-idle-sessions
      for via in quic websocket webtransport; do
        say "10,000 idle sessions over $via (through a gateway but for quic): memory per session and idle CPU at 1,000 and 10,000"
        cargo run --release -q -p qpq-load --bin qpq-idle-sessions -- --via "$via" --sessions 10000 --idle-secs 10
      done
      ;;
    browser-mls)
      browser_setup
      say "MLS and Argon2id in headless Chromium (wasm) vs natively, alternating rounds"
      (cd playwright && node bench/mls.mjs)
      ;;
    transports)
      browser_setup
      ensure_postgres
      say "browser round trip and messages per second: WebTransport vs WebSocket vs raw echo"
      (cd playwright && node bench/transports.mjs)
      ;;
    files)
      browser_setup
      say "file upload and download through gateway and node vs a raw transfer on /echo"
      (cd playwright && node bench/files.mjs)
      ;;
    push)
      browser_setup
      say "Web Push: message queued -> notification shown by the service worker, warm and cold"
      (cd playwright && node bench/push.mjs)
      ;;
    calls)
      browser_setup
      say "calls: Call -> first remote video frame, direct and through coturn; CPU of an established call"
      (cd playwright && node bench/calls.mjs)
      ;;
    widget)
      browser_setup
      say "embeddable widget vs full app: first paint, engine on open, chat ready, first message delivered"
      (cd playwright && node bench/widget.mjs)
      ;;
    *)
      echo "unknown benchmark '$b' (known: ${all[*]})" >&2
      exit 2
      ;;
  esac
done
