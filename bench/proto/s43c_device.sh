#!/bin/bash
# Stop 43, third and fourth calls: the split-layout GEMM (gemm_split.cuh; the fourth with 16 warps a block, k-steps split). Its test's quick subset, then the whole test, then its
# times beside the tiled GEMM and cuBLAS f16 (per call and in a CUDA graph) at 32-256 tokens.
# gpu_carry/s43c.tgz holds the stripped binaries. Writes log.txt, tests.txt, bench.txt.
F=/tmp/s43c; source "$(dirname "$0")/device_lib.sh"
s=$SECONDS; QMR_GEMM_TEST_QUICK=1 timeout 60 $F/test_cuda_gemm_split > $OUT/tests.txt 2>&1; echo "quick rc=$? $((SECONDS-s))s" >> $L
s=$SECONDS; timeout 200 $F/cuda_gemv --gemm-split --runs 20 --rotate-bytes 1e9 --shapes 8192x8192,4096x14336 --bits ${BITS:-4,2} \
  --batches 32,64,128,256 > $OUT/bench.txt 2>&1; echo "bench rc=$? $((SECONDS-s))s" >> $L
s=$SECONDS; timeout 200 $F/test_cuda_gemm_split >> $OUT/tests.txt 2>&1; echo "full rc=$? $((SECONDS-s))s" >> $L
cat $L; grep -v "^gemm_split\|^ *$" $OUT/tests.txt | tail -45; grep "^|" $OUT/bench.txt
