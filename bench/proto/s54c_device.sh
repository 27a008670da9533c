#!/bin/bash
# Stop 54, call c: the split kernel's 16-token configuration "wide" (split_wide in gemv_split.cuh: one block an SM,
# slices of up to 2048 columns, x staged by plain loads; the split_wide patch, landed in stop 55), in order of need
# within little device time (not run in stop 54: no machine came, then no device time was left):
# the split GPU test (every format and shape against the float64 reference), `cuda_gemv --split-only` at 16 tokens on
# issue 7's three large shapes and the three others whose slicing the patch changes for the build before (old) and after (new), the PDL chain test, compute-sanitizer
# memcheck and racecheck over the quick split test, and the gemv dispatch test.
F=/tmp/s54
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
source "$(dirname "$0")/device_lib.sh"
gpu_clocks
run_tests test_cuda_gemv_split:100
for v in new old; do
  s=$SECONDS; echo "== $v" >> $OUT/bench.txt
  timeout 60 $F/cuda_gemv_$v --split-only --runs 20 --batches 16 --bits 4,2,8 \
    --shapes 8192x8192,4096x14336,14336x4096,4096x4096,1536x8960,8960x1536 >> $OUT/bench.txt 2>&1
  echo "bench $v rc=$? $((SECONDS-s))s" >> $L
done
run_tests test_cuda_gemv_pdl:40
export QMR_GEMV_TEST_QUICK=1
sanitize test_cuda_gemv_split memcheck racecheck
unset QMR_GEMV_TEST_QUICK
run_tests test_cuda_gemv:90
cat $OUT/gpu.txt $L; grep -E "FAIL|ok  |passed|failed" $OUT/tests.txt | head -60; tail -5 $OUT/san.txt; cat $OUT/bench.txt
