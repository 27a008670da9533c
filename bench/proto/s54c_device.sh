#!/bin/bash
# Stop 54, call c: the split kernel's 16-token configuration "wide" (split_wide in gemv_split.cuh: one block an SM,
# slices of up to 2048 columns, x staged by plain loads) as landed: its GPU tests (test_cuda_gemv_split,
# test_cuda_gemv_pdl, test_cuda_gemv), compute-sanitizer memcheck and racecheck over the quick split test, and
# `cuda_gemv --split-only` at 16 tokens on issue 7's shapes and Qwen2.5-0.5B's, the build before (old) and after
# (new) alternating twice.
F=/tmp/s54
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
source "$(dirname "$0")/device_lib.sh"
gpu_clocks
run_tests test_cuda_gemv_split:150 test_cuda_gemv_pdl:60 test_cuda_gemv:120
export QMR_GEMV_TEST_QUICK=1
sanitize test_cuda_gemv_split memcheck racecheck
unset QMR_GEMV_TEST_QUICK
for round in 1 2; do for v in old new; do
  s=$SECONDS; echo "== $v round $round" >> $OUT/bench.txt
  timeout 120 $F/cuda_gemv_$v --split-only --runs 30 --batches 16 --bits 2,3,4,8 \
    --shapes 8192x8192,4096x14336,14336x4096,896x4864,4864x896 >> $OUT/bench.txt 2>&1
  echo "bench $v $round rc=$? $((SECONDS-s))s" >> $L
done; done
cat $OUT/gpu.txt $L; grep -E "FAIL|ok  |passed|failed" $OUT/tests.txt | head -60; tail -5 $OUT/san.txt; cat $OUT/bench.txt
