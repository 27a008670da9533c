#!/usr/bin/env bash
# The main job. Until qmr bundles its default model, this is the end-to-end demo:
# build, write a random-weight Llama-shaped checkpoint, quantize it to several
# formats, inspect the results, and print the RTN error table by bits x group size.
# Results land in results/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh
if [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; fi
[ -f build/build.ninja ] || meson setup build --wrap-mode=nofallback >/dev/null
ninja -C build >/dev/null

out=results/demo
rm -rf "$out" && mkdir -p "$out"
qmr=build/tools/qmr
echo "== a random-weight Llama-shaped checkpoint (4 layers, hidden 512, t(4)-distributed weights)"
build/examples/random_checkpoint "$out/model" --layers 4 --hidden 512 --intermediate 1408 --heads 8 --kv-heads 4 \
  --vocab 8192 --shards 2
"$qmr" inspect "$out/model" | tail -n 1
for spec in w8g128 w4g128 w4g128s w3g64 w2g64; do
  echo "== quantize to $spec (round to nearest, clip search)"
  "$qmr" quantize --model "$out/model" --out "$out/$spec" --format "$spec" --clip --quiet
  "$qmr" inspect "$out/$spec" | tail -n 1
done
echo "== one quantized checkpoint, tensor by tensor"
"$qmr" inspect "$out/w3g64" | head -n 14
echo "== RTN error by bits x group size (also in $out/rtn_error.csv)"
build/bench/quant_error --rows 256 --cols 4096 --csv "$out/rtn_error.csv"
