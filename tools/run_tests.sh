#!/usr/bin/env bash
# The test command: installs what is missing, builds everything (CUDA too when
# /usr/local/cuda exists) into build/, and runs the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
if [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; fi
setup_args=()
if command -v nvcc >/dev/null && ! nvidia-smi -L >/dev/null 2>&1; then
  # No GPU here, so the GPU tests can only skip: the CUDA code is compile-checked for one
  # architecture (sm_90, which also compiles the Hopper-only launch path) instead of the
  # default two. Device code is most of nvcc's time (gemv_f16.cu: cicc + ptxas 60 s per
  # architecture, the host side 5 s), and CI runs this on 2 cores without a GPU.
  echo "no GPU found: compiling the CUDA code for sm_90 only (-Dgpu_arch=90)"
  setup_args+=(-Dgpu_arch=90)
fi
if [ ! -f build/build.ninja ]; then
  meson setup build --wrap-mode=nofallback "${setup_args[@]}"
fi
ninja -C build
meson test -C build --print-errorlogs "$@"
