#!/bin/bash
# Stop 37's closing device call (H100), on the final headers (ld_produced = ld.global.ca): every GPU test, the PDL
# chain test 3 more times, compute-sanitizer memcheck on the dense GEMV and forward tests, the decode bench (both
# models, bf16/w4g128/w2g64, graph) and the 8192 x 8192 M = 1 lane table with the per-call read ceiling.
# gpu_carry/s37d.tgz. Writes log.txt, tests.txt, san.txt, decode.txt, gemv.txt under $OUT.
F=/tmp/s37
source "$(dirname "$0")/device_lib.sh"
run_tests test_cuda_gemv_pdl:40 test_cuda_dense_gemv:30 test_cuda_gemv:40 test_cuda_gemv_split:60 test_cuda_forward:60 test_cuda_attention:30 test_cuda_gemm:60 test_cuda_half_dequant:30 test_cuda_gemv_lanes:60 test_cuda_gemv_pdl:40 test_cuda_gemv_pdl:40 test_cuda_gemv_pdl:40
sanitize test_cuda_dense_gemv memcheck
sanitize test_cuda_forward memcheck
s=$SECONDS
timeout 120 $F/cuda_decode --formats bf16,w4g128,w2g64 --modes graph --work /tmp/dec > $OUT/decode.txt 2>&1; echo "decode rc=$? $((SECONDS-s))s" >> $L
s=$SECONDS
timeout 100 $F/cuda_gemv --lanes-only --shapes 8192x8192 --batches 1 --runs 30 --rotate-bytes 1e9 > $OUT/gemv.txt 2>&1; echo "gemv rc=$? $((SECONDS-s))s" >> $L
cat $L
