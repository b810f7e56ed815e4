#!/usr/bin/env bash
# Checks that nothing reads outside the repository at build or test time:
#  - no tracked file (prose and vector data aside) names the reference folder beside the
#    checkout (".." then "shared") or a path into a home or work directory or /tmp;
#  - every path a manifest (`path = ...`) or Rust source (`#[path]`, `include_str!`,
#    `include_bytes!`) names stays inside the repository;
#  - a copy of the repository in an empty temporary directory, with nothing beside it, resolves
#    its whole workspace and builds and passes the IETF MLS vector suite, which compiles in
#    conformance/vectors.
set -euo pipefail
shopt -s inherit_errexit
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

say "checking that no tracked file names a path outside the repository"
# The folder name is spelled in two parts so that this script does not match its own pattern.
beside='shared'
outside="\\.\\./${beside}|(^|[^A-Za-z0-9_.])/(work|home|root|Users|tmp)/"
if hits=$(git grep -nE "$outside" -- ':!*.md' ':!conformance/vectors' ':!scripts/check-self-contained.sh'); then
  echo "$hits" >&2
  echo "these tracked files name paths outside the repository" >&2
  exit 1
fi

say "checking that manifests and sources name no path that leaves the repository"
git ls-files -z -- '*Cargo.toml' '*.rs' | python3 -c '
import os, re, sys
root = os.getcwd()
bad = []
for f in sys.stdin.read().split("\0"):
    if not f or not os.path.exists(f):
        continue
    text = open(f, encoding="utf-8", errors="replace").read()
    if f.endswith("Cargo.toml"):
        found = re.findall(r"\bpath\s*=\s*\"([^\"]+)\"", text)
    else:
        found = re.findall(r"#\[path\s*=\s*\"([^\"]+)\"\]", text)
        found += re.findall(r"include_(?:str|bytes)!\(\s*(?:concat!\(\s*)?\"([^\"]+)\"", text)
    for p in found:
        target = os.path.normpath(os.path.join(root, os.path.dirname(f), p))
        if os.path.isabs(p) or not (target + os.sep).startswith(root + os.sep):
            bad.append(f"{f}: {p}")
if bad:
    sys.exit("paths that leave the repository:\n" + "\n".join(bad))
'

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
copy_repo "$tmp/repo"
say "checking a copy of the repository with nothing beside it ($tmp/repo)"
cd "$tmp/repo"
cargo metadata --locked --format-version 1 >/dev/null
# The copy's own crates build from the copy; what it shares with the repository's target/ is
# only the compiled crates.io dependencies (keyed by their registry source, not by a path).
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}" cargo test --locked -p qpq-conformance --test vectors
say "the repository is self-contained"
