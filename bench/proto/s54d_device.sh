#!/bin/bash
# Stop 54, call d (not run: no device time was left): the split_wide patch (landed in stop 55)'s split GPU test (every format
# and shape against the float64 reference, both 16-token configurations), then `cuda_gemv --split-only` on 8192 x 8192
# w4g128s at 16 tokens with the patch applied. Binaries as call c's (gpu_carry/s54.tgz).
F=/tmp/s54
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
source "$(dirname "$0")/device_lib.sh"
gpu_clocks
run_tests test_cuda_gemv_split:80
s=$SECONDS; timeout 25 $F/cuda_gemv_new --split-only --runs 20 --batches 16 --bits 4 --shapes 8192x8192 > $OUT/bench.txt 2>&1
echo "bench new rc=$? $((SECONDS-s))s" >> $L
cat $OUT/gpu.txt $L $OUT/tests.txt $OUT/bench.txt
