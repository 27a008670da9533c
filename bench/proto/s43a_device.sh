#!/bin/bash
# Stop 43, first call: the row-streaming GEMV (gemv_stream.cuh). Its correctness first (test_cuda_gemv_split's quick
# subset, which runs the stream kernel with clusters of 1, 2 and 4 beside the split kernel; then the whole test), then
# its times beside the split kernel and cuBLAS f16 on 8192 x 8192 (every bit width) at 1, 8 and 16 tokens.
# gpu_carry/s43a.tgz holds the stripped binaries. Writes log.txt, tests.txt, bench.txt.
F=/tmp/s43a; source "$(dirname "$0")/device_lib.sh"
s=$SECONDS; QMR_GEMV_TEST_QUICK=1 timeout 60 $F/test_cuda_gemv_split > $OUT/tests.txt 2>&1; echo "quick rc=$? $((SECONDS-s))s" >> $L
s=$SECONDS; timeout 100 $F/cuda_gemv --split-only --stream 1,2,4 --runs 30 --rotate-bytes 1e9 --shapes 8192x8192 --bits 4,2 \
  --batches 1,8,16 > $OUT/bench.txt 2>&1; echo "bench rc=$? $((SECONDS-s))s" >> $L
s=$SECONDS; timeout 150 $F/test_cuda_gemv_split >> $OUT/tests.txt 2>&1; echo "full rc=$? $((SECONDS-s))s" >> $L
cat $L; tail -5 $OUT/tests.txt; grep "stream\|^| 8192" $OUT/bench.txt | head -40
