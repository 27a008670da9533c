#!/bin/bash
# Stop 55, call a: stop 54's call c (bench/proto/s54c_device.sh: the split_wide patch's GPU tests and old against new
# `cuda_gemv --split-only` at 16 tokens on six shapes), with stop 55's probe of x's staging in the wide configuration
# (bench/proto/wide_s55.cu) after the benchmark, in order of need.
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
s=$SECONDS; timeout 150 $F/wide w4g128s > $OUT/wide.txt 2>&1; echo "wide rc=$? $((SECONDS-s))s" >> $L
run_tests test_cuda_gemv_pdl:40
export QMR_GEMV_TEST_QUICK=1
sanitize test_cuda_gemv_split memcheck racecheck
unset QMR_GEMV_TEST_QUICK
run_tests test_cuda_gemv:90
cat $OUT/gpu.txt $L; grep -E "FAIL|ok  |passed|failed" $OUT/tests.txt | head -60; tail -5 $OUT/san.txt; cat $OUT/bench.txt $OUT/wide.txt
