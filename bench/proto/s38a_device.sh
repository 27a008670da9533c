#!/bin/bash
# Stop 38, device call 1 (H100): the tiled GEMM with 2, 4 or 8 row groups per k-slice (gemv_args::gemm_warps_rows,
# plan_gemm's choice or forced with --gemm-rows) against HEAD e1bef27's GEMM (cuda_gemv_v0, 2 groups always):
# test_cuda_gemm (every format, each slice height forced and as chosen), compute-sanitizer memcheck and racecheck on its
# quick subsets, then 8192 x 8192, 4096 x 14336 and 14336 x 4096 at 64, 128 and 256 tokens beside cuBLAS f16.
# gpu_carry/s38a.tgz. Writes log.txt, tests.txt, san.txt, gemm.txt, gemm_v0.txt under $OUT.
F=/tmp/s38
source "$(dirname "$0")/device_lib.sh"
run_tests test_cuda_gemm:150
QMR_GEMM_TEST_QUICK=1 sanitize test_cuda_gemm memcheck
QMR_GEMM_TEST_QUICK=2 sanitize test_cuda_gemm racecheck
s=$SECONDS
timeout 100 $F/cuda_gemv_v0 --shapes 8192x8192,4096x14336,14336x4096 --bits 4 --batches 64,128,256 --runs 30 > $OUT/gemm_v0.txt 2>&1
echo "gemm v0 rc=$? $((SECONDS-s))s" >> $L
s=$SECONDS
timeout 240 $F/cuda_gemv --shapes 8192x8192,4096x14336,14336x4096 --bits 2,4,8 --batches 64,128,256 --gemm-rows 2,4,8 --runs 30 \
  --json $OUT/gemm.json > $OUT/gemm.txt 2>&1
echo "gemm rc=$? $((SECONDS-s))s" >> $L
cat $L
