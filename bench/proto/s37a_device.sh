#!/bin/bash
# Stop 37, device call 1 (H100): the dense GEMV with its first weight loads issued before pdl_wait and x unstaged in
# one-row blocks (cuda_decode, "new") against HEAD 676aa7c's (cuda_decode_v0): tests and compute-sanitizer on the new
# kernel, the Qwen2.5-0.5B-shaped decode (alternating rounds), ncu of every dense launch of a bf16 decode step, and
# the lane GEMV at M = 1 on 8192 x 8192 beside the per-call read ceiling (cuda_gemv --lanes). gpu_carry/s37a.tgz.
# Writes log.txt, tests.txt, san.txt, decode.txt, ncu.txt, gemv.txt under $OUT.
F=/tmp/s37
source "$(dirname "$0")/device_lib.sh"
run_tests test_cuda_dense_gemv:40 test_cuda_forward:60 test_cuda_gemv_pdl:40
sanitize test_cuda_dense_gemv memcheck racecheck
decode_rounds 2 v0 new
ncu_dense_step v0 new
s=$SECONDS
timeout 150 $F/cuda_gemv --lanes-only --shapes 8192x8192 --batches 1 --runs 30 --rotate-bytes 1e9 > $OUT/gemv.txt 2>&1
echo "gemv rc=$? $((SECONDS-s))s" >> $L
cat $L
