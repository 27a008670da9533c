#!/usr/bin/env bash
# The test command: installs what is missing, builds everything (CUDA too when
# /usr/local/cuda exists) into build/, and runs the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
if [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; fi
if [ ! -f build/build.ninja ]; then
  meson setup build --wrap-mode=nofallback
fi
ninja -C build
meson test -C build --print-errorlogs "$@"
