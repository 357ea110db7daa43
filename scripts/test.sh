#!/usr/bin/env bash
# The whole test suite: set up, build with AddressSanitizer and UndefinedBehaviorSanitizer,
# run every suite (unit, numeric, cli). Extra arguments go to `meson test`, e.g.
# `scripts/test.sh --suite unit`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
dir=build-test
if [ ! -f "$dir/build.ninja" ]; then
  log=$(mktemp)
  meson setup "$dir" -Db_sanitize=address,undefined -Db_lundef=false >"$log" 2>&1 ||
    { cat "$log"; rm -f "$log"; exit 1; }
  rm -f "$log"
fi
ninja -C "$dir" --quiet
meson test -C "$dir" --print-errorlogs "$@"
