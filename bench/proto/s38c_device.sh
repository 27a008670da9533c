#!/bin/bash
# Stop 38, device call 3 (H100): the tiled GEMM with 8 row groups per k-slice and the K split over a thread-block
# cluster (sm_90; plan_gemm's choice), its 2-group slices (the path without clusters) forced, against HEAD's GEMM
# (cuda_gemv_v0 from call 1): test_cuda_gemm (every format, as planned and each slice height forced), test_cuda_forward
# (80-token prefill through the GEMM under PDL), test_cuda_gemv_pdl, compute-sanitizer memcheck and racecheck on
# test_cuda_gemm's quick subsets, then 64-256 tokens on the three big shapes beside cuBLAS f16. gpu_carry/s38a.tgz
# (v0) and gpu_carry/s38c.tgz. Writes log.txt, tests.txt, san.txt, gemm.txt, gemm.json, gemm_v0.txt under $OUT.
F=/tmp/s38
source "$(dirname "$0")/device_lib.sh"
run_tests test_cuda_gemm:200 test_cuda_forward:120 test_cuda_gemv_pdl:60
QMR_GEMM_TEST_QUICK=1 sanitize test_cuda_gemm memcheck
s=$SECONDS
timeout 100 $F/cuda_gemv_v0 --shapes 8192x8192,4096x14336,14336x4096 --bits 4 --batches 64,128,256 --runs 30 > $OUT/gemm_v0.txt 2>&1
echo "gemm v0 rc=$? $((SECONDS-s))s" >> $L
s=$SECONDS
timeout 200 $F/cuda_gemv --shapes 8192x8192,4096x14336,14336x4096 --bits 2,4,8 --batches 64,128,256 --gemm-rows 2 --runs 30 \
  --json $OUT/gemm.json > $OUT/gemm.txt 2>&1
echo "gemm rc=$? $((SECONDS-s))s" >> $L
s=$SECONDS; echo "=== racecheck test_cuda_gemm (quick 2)" >> $OUT/san.txt
QMR_GEMM_TEST_QUICK=2 timeout 100 compute-sanitizer --tool racecheck $F/test_cuda_gemm >> $OUT/san.txt 2>&1
echo "san racecheck test_cuda_gemm rc=$? $((SECONDS-s))s $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' $OUT/san.txt | tail -1)" >> $L
cat $L
