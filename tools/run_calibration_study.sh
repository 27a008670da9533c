#!/usr/bin/env bash
# The calibrated-quantization study on the bundled model: RTN against GPTQ and AWQ at w3g128 and
# w2g64, calibrated on synthetic math (seed 5, never used for training or evaluation) and on
# generic English prose (data/calibration/generic_text.txt) and on the model's own samples (--calib self:
# no data at all), plus activation quantization
# (W8A8, W4A8, W4A4, with and without SmoothQuant). Every configuration is evaluated on the same
# 550 synthetic problems (seed 1000) and printed as accuracy by level, by type and error kind.
# Calibration: 48 samples x 256 tokens (12,288 tokens; the generic text holds 13,824).
# Results: results/calibration/{synth_calib,text_calib,self_calib,act}.json (+ .csv, + resumable journals), and
# results/calibration/by_level.{txt,csv}: accuracy by level with 95% intervals, and each calibrated
# method paired against RTN of its format (and every run against the stored weights) problem by problem;
# results/calibration/report.{md,html}: the same as qmr report's findings, tables and charts.
# Usage: tools/run_calibration_study.sh [N problems, default 550]
# At w3g128 RTN is within a few problems of bf16, so method-vs-RTN differences per level are a few
# discordant problems: 550 cannot separate them, and even 2750 (550 per level) bounds them only to
# about +-1 to 1.5 points per level (see bench/results/qmr-math_calibration_by_level.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-550}"
bash tools/install_deps.sh
if [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; fi
[ -f build/build.ninja ] || meson setup build --buildtype=release --wrap-mode=nofallback >/dev/null
ninja -C build tools/qmr >/dev/null

out=results/calibration
mkdir -p "$out"
eval_args=(--model models/qmr-math --task synthetic --n "$n" --seed 1000 --threads "$(nproc)" --calib-n 48 --calib-len 256)
build/tools/qmr eval "${eval_args[@]}" --calib synth \
  --quant stored,w3g128,gptq:w3g128,awq:w3g128,w2g64,gptq:w2g64,awq:w2g64 --out "$out/synth_calib.json"
build/tools/qmr eval "${eval_args[@]}" --calib data/calibration/generic_text.txt \
  --quant gptq:w3g128,awq:w3g128,gptq:w2g64,awq:w2g64 --out "$out/text_calib.json"
build/tools/qmr eval "${eval_args[@]}" --calib self \
  --quant gptq:w3g128,awq:w3g128,gptq:w2g64,awq:w2g64 --out "$out/self_calib.json"
build/tools/qmr eval "${eval_args[@]}" --calib synth \
  --quant stored+a8,w8g128+a8,sq:w8g128+a8,w4g128+a8,sq:w4g128+a8,w4g128+a4,stored+a4 --out "$out/act.json"
# python3 is there: meson runs on it.
python3 tools/calibration_tables.py "$out/by_level" synth="$out/synth_calib.json" text="$out/text_calib.json" >/dev/null
echo "accuracy by level with intervals and paired differences: $out/by_level.txt"
# The same runs as one report (the two calibrations' files share their problems): each method against RTN of its
# format by level, with the findings in words, tables and charts: report.md (+ charts/) and report.html.
build/tools/qmr report --eval "$out/synth_calib.json,$out/text_calib.json,$out/self_calib.json,$out/act.json" --out "$out" \
  --title "Calibrated quantization of the bundled model: RTN, GPTQ, AWQ, SmoothQuant"
