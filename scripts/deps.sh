#!/usr/bin/env bash
# Installs the Debian 12 packages xylem needs to build, run and test, when any is missing.
# Idempotent: with everything installed it does nothing (and needs no network).
set -euo pipefail

packages=(
  build-essential pkg-config meson ninja-build
  libjansson-dev libcmocka-dev
  ocl-icd-opencl-dev opencl-c-headers pocl-opencl-icd clinfo
  clang-14 libclang-14-dev libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "xylem: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
