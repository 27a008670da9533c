#!/usr/bin/env bash
# Installs the Debian 12 packages qmr builds with, if any is missing (needs root or sudo).
# Usage: tools/install_deps.sh [extra packages...]
set -euo pipefail
packages=(g++ meson ninja-build pkg-config libxsimd-dev catch2 nlohmann-json3-dev libcli11-dev libbenchmark-dev "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
