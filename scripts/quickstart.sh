#!/usr/bin/env bash
# The main job: set up, build, then compile the sample specs (a 1D scan, a batch of DAGs and
# the full pLSTM layer on a 16x16 grid of patches) and run them on the default OpenCL device
# (PoCL on the CPU), printing each output's summary and its max error against the float64
# reference interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
if [ ! -f build/build.ninja ]; then
  log=$(mktemp)
  meson setup build --buildtype=release >"$log" 2>&1 || { cat "$log"; rm -f "$log"; exit 1; }
  rm -f "$log"
fi
ninja -C build --quiet
export POCL_CACHE_DIR="${POCL_CACHE_DIR:-$PWD/build/pocl-cache}"

xylem=build/compiler/xylem
"$xylem" devices
for spec in samples/scan1d.json samples/scan_dag.json; do
  echo
  "$xylem" compile "$spec" -o build/packages
  "$xylem" check "$spec" --seed 1
done

# A whole layer with weights from a safetensors file (random here; a trained model's file
# with the reference's tensor names works the same way).
echo
"$xylem" weights samples/plstm2d_p.json -o build/plstm2d_p.safetensors --seed 1
"$xylem" compile samples/plstm2d_p.json -o build/packages
"$xylem" check samples/plstm2d_p.json --weights build/plstm2d_p.safetensors --seed 1

# Real molecules (atoms and bonds from samples/molecules.graph.json) through the paper's
# 2-layer graph model: P on the DAG, then D on the reversed DAG.
echo
"$xylem" weights samples/molecules.json -o build/molecules.safetensors --seed 1
"$xylem" compile samples/molecules.json -o build/packages
"$xylem" check samples/molecules.json --weights build/molecules.safetensors --seed 1
