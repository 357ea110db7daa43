#!/usr/bin/env bash
# The main job: set up, build, then compile the two sample specs and run them on the default
# OpenCL device (PoCL on the CPU), printing each output's summary and its max error against
# the float64 reference interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
[ -f build/build.ninja ] || meson setup build --buildtype=release >/dev/null
ninja -C build >/dev/null
export POCL_CACHE_DIR="${POCL_CACHE_DIR:-$PWD/build/pocl-cache}"

xylem=build/compiler/xylem
"$xylem" devices
for spec in samples/scan1d.json samples/scan_dag.json; do
  echo
  "$xylem" compile "$spec" -o build/packages
  "$xylem" check "$spec" --seed 1
done
