#!/bin/bash
# Stop 54, calls a and b: the deep-ring split kernel (bench/proto/deep_s54.cu: one block an SM, 4 slices of 2048 columns,
# rings of 4-18 loads a warp, per-tile or per-band slice sums) at 16 tokens, against HEAD's split kernel, cuBLAS f16
# and the read ceiling in the same run.
F=/tmp/s54
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
source "$(dirname "$0")/device_lib.sh"
gpu_clocks
for f in ${FORMATS:-w4g128s}; do
  s=$SECONDS; timeout 240 $F/deep $f > $OUT/deep_$f.txt 2>&1; echo "deep $f rc=$? $((SECONDS-s))s" >> $L
done
cat $OUT/gpu.txt $L $OUT/deep_*.txt
