#!/usr/bin/env bash
# The main job: a quantization study on the bundled model (models/qmr-math). Builds qmr, then
#  1. evaluates the model on synthetic math problems (all 11 operation types x levels 1-5, from a
#     seed never used in training) as stored (bf16) and after round-to-nearest quantization to
#     w8g128, w4g128, w3g128 and w2g64, and prints accuracy by level, by operation type and the
#     error kinds of the wrong answers;
#  2. measures which layers and components break first: each linear, layer and component
#     quantized alone to w2g64 and to w4g128 (KL to the unquantized model on 64 problems' reference
#     answers), and from it a mixed-precision plan of 2.75 bits per weight;
#  3. prints activation statistics per layer (outlier channels, kurtosis, int8/int4 error);
#  4. evaluates that plan beside uniform w2g64 and w4g128 on problems the plan never saw;
#  5. writes the report: the findings in words (what breaks first, with paired tests), tables and
#     SVG charts, as report.md (+ charts/) and one self-contained report.html.
# Results: results/study/sweep.json, sensitivity.json (+ .csv, + .svg heatmaps), plan_2.75.txt,
# stats.json, plan.json, report.md, report.html; the evaluations journal every item and the
# sensitivity every unit, so an interrupted run resumes where it stopped.
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
echo
echo "== Which layers and components break first (each quantized alone; KL to the unquantized model)"
build/tools/qmr sensitivity --model models/qmr-math --quant w2g64,w4g128 --n 64 --seed 1000 --threads "$(nproc)" \
  --plan-bits 2.75 --plan-out "$out/plan_2.75.txt" --out "$out/sensitivity.json"
echo
echo "== Where the activations are hard to quantize (per layer: outlier channels, kurtosis, int8/int4 error)"
build/tools/qmr stats --model models/qmr-math --n 32 --seed 1000 --threads "$(nproc)" --out "$out/stats.json"
echo
echo "== The sensitivity plan (2.75 bits per weight) beside uniform formats, on problems it was not fit on"
build/tools/qmr eval --model models/qmr-math --task synthetic --n "$n" --seed 2000 \
  --quant w2g64,@"$out/plan_2.75.txt",w4g128 --threads "$(nproc)" --out "$out/plan.json"
echo
echo "== Findings (the whole report: $out/report.md, $out/report.html)"
build/tools/qmr report --dir "$out" --title "Quantization study of the bundled model (qmr-math)"
