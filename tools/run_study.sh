#!/usr/bin/env bash
# The main job: a quantization study on the bundled model (models/qmr-math). Builds qmr, then
# evaluates the model on synthetic math problems (all 11 operation types x levels 1-5, from a
# seed never used in training) as stored (bf16) and after round-to-nearest quantization to
# w8g128, w4g128, w3g128 and w2g64, and prints accuracy by level, by operation type and the error
# kinds of the wrong answers. Results: results/study/sweep.json (+ .csv, + the per-item journal,
# so that an interrupted run resumes where it stopped).
# Usage: tools/run_study.sh [N problems per precision, default 550]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-550}"
bash tools/install_deps.sh
if [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; fi
[ -f build/build.ninja ] || meson setup build --buildtype=release --wrap-mode=nofallback >/dev/null
ninja -C build tools/qmr >/dev/null

out=results/study
mkdir -p "$out"
build/tools/qmr inspect models/qmr-math | tail -n 1
build/tools/qmr eval --model models/qmr-math --task synthetic --n "$n" --seed 1000 \
  --quant stored,w8g128,w4g128,w3g128,w2g64 --threads "$(nproc)" --out "$out/sweep.json"
