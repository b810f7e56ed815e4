#!/usr/bin/env bash
# Fuzzes everything that parses bytes from the network, with cargo-fuzz (libFuzzer).
#
#   scripts/fuzz.sh short   each target for a bounded time (default 20 s; part of the tests)
#   scripts/fuzz.sh long    each target for 1,000,000 executions (-runs=1000000)
#   scripts/fuzz.sh build   build the targets only
#   scripts/fuzz.sh short app_message engine_intake   only the named targets
#
# Targets (fuzz/fuzz_targets/): app_message, group_meta, proto_wire, engine_intake,
# server_rpc. See fuzz/README.md for what each checks.
#
# Only the stable toolchain is installed here. cargo-fuzz passes flags that rustc accepts only
# on nightly (-Zsanitizer=…, -Zunstable-options), so the build runs with RUSTC_BOOTSTRAP=1,
# which lets the stable compiler accept them. The default build has no sanitizer (the code is
# safe Rust; on two cores the 2–3× throughput matters more); QPQ_FUZZ_SANITIZER=address adds
# AddressSanitizer, which works the same way (its runtime ships with the stable rust-std).
# Either way the build is `--release` with debug assertions and overflow checks (opt-level 1
# for `short` and `build`, 3 for `long`; CARGO_PROFILE_RELEASE_OPT_LEVEL overrides). Installs
# cargo-fuzz from crates.io when it is missing.
#
# Environment: QPQ_FUZZ_SECONDS (short mode, per target, default 20), QPQ_FUZZ_RUNS (long
# mode, default 1000000), QPQ_FUZZ_MAX_SECONDS (long mode: also stop each target after this
# many seconds; the summary then shows how many runs it did), QPQ_FUZZ_JOBS (targets fuzzed at
# once, default 2: one per core), QPQ_FUZZ_SANITIZER (none | address, default none).
#
# Each target's corpus grows in fuzz/corpus/<target> (not committed); its seed inputs are
# written there by the target itself on start (QPQ_FUZZ_SEEDS). A crash leaves its input in
# fuzz/artifacts/<target>/ and makes this script fail; logs are in fuzz/logs/.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib.sh
source "$repo/scripts/lib.sh"
cd "$repo/fuzz"

mode="${1:-short}"
shift || true
all_targets=(app_message group_meta proto_wire engine_intake server_rpc)
if [ "$#" -gt 0 ]; then targets=("$@"); else targets=("${all_targets[@]}"); fi

case "$mode" in
    short)
        limit=(-max_total_time="${QPQ_FUZZ_SECONDS:-20}")
        jobs="${QPQ_FUZZ_JOBS:-2}"
        ;;
    long)
        limit=(-runs="${QPQ_FUZZ_RUNS:-1000000}")
        # Optional cap on each target's time (libFuzzer stops at whichever comes first).
        if [ -n "${QPQ_FUZZ_MAX_SECONDS:-}" ]; then limit+=(-max_total_time="$QPQ_FUZZ_MAX_SECONDS"); fi
        jobs="${QPQ_FUZZ_JOBS:-2}"
        ;;
    build) ;;
    *)
        echo "usage: scripts/fuzz.sh short|long|build [target…]" >&2
        exit 2
        ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz from crates.io (cargo install cargo-fuzz)"
    cargo install cargo-fuzz --locked
fi

ensure_capnp  # qpq-proto compiles its schema with it
export RUSTC_BOOTSTRAP=1
# The short run (part of the tests) is bounded by time, so its build matters more than its
# speed: opt-level 1 compiles faster, and the targets still run hundreds to a million inputs
# each in 20 s. The long run, bounded by inputs, is built at opt-level 3. The two builds do
# not share artifacts: switching modes rebuilds.
if [ "$mode" = long ]; then default_opt=3; else default_opt=1; fi
export CARGO_PROFILE_RELEASE_OPT_LEVEL="${CARGO_PROFILE_RELEASE_OPT_LEVEL:-$default_opt}"
sanitizer="${QPQ_FUZZ_SANITIZER:-none}"
say "building the fuzz targets ($(cargo fuzz --version), stable rustc with RUSTC_BOOTSTRAP=1, sanitizer $sanitizer, opt-level $CARGO_PROFILE_RELEASE_OPT_LEVEL)"
start=$(date +%s)
cargo fuzz build --sanitizer "$sanitizer"
say "built in $(( $(date +%s) - start )) s"
[ "$mode" = build ] && exit 0

mkdir -p logs tmp
# The server target keeps its SQLite database under TMPDIR; keep it inside fuzz/ and clean it.
export TMPDIR="$repo/fuzz/tmp"
trap 'rm -rf "$repo/fuzz/tmp"' EXIT

run_one() {
    local t="$1"
    local corpus="corpus/$t"
    local log="logs/$t.log"
    mkdir -p "$corpus" "artifacts/$t"
    local t0
    t0=$(date +%s)
    # -timeout: one input may take at most 60 s; -rss_limit_mb: the server target runs a
    # whole node. The server keeps state across inputs and runs threads, so leak checking
    # (which attributes every allocation of those threads to the input) is off for it.
    local extra=()
    [ "$t" = server_rpc ] && extra=(-detect_leaks=0)
    local status
    if QPQ_FUZZ_SEEDS="$corpus" cargo fuzz run --sanitizer "$sanitizer" "$t" "$corpus" -- \
        "${limit[@]}" -timeout=60 -rss_limit_mb=4096 -print_final_stats=1 "${extra[@]}" >"$log" 2>&1; then
        status=ok
    else
        status=FAILED
    fi
    local runs secs
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n1)
    secs=$(( $(date +%s) - t0 ))
    printf '%-14s %-7s runs=%-9s time=%ss corpus=%s crashes=%s\n' "$t" "$status" "${runs:-?}" "$secs" \
        "$(find "$corpus" -type f | wc -l)" "$(find "artifacts/$t" -type f | wc -l)"
    [ "$status" = ok ]
}
say "fuzzing (${mode}: ${limit[*]}) ${targets[*]}, $jobs at a time; logs in fuzz/logs/"
summary="$repo/fuzz/logs/summary-$mode.txt"
: >"$summary"
failed=0
if [ "$jobs" -le 1 ]; then
    for t in "${targets[@]}"; do
        run_one "$t" | tee -a "$summary" || failed=1
    done
else
    # Simple job pool: at most $jobs targets at once.
    pids=()
    for t in "${targets[@]}"; do
        while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
        (run_one "$t" | tee -a "$summary") &
        pids+=("$!")
    done
    for p in "${pids[@]}"; do wait "$p" || failed=1; done
fi
if grep -q FAILED "$summary"; then failed=1; fi
if [ "$failed" -ne 0 ]; then
    say "a target failed: see fuzz/logs/<target>.log and the inputs in fuzz/artifacts/"
    exit 1
fi
say "no crashes ($(wc -l <"$summary") targets)"
