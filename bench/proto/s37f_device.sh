#!/bin/bash
# Stop 37, device call 7 (H100): the dense GEMV without its shared-memory staging of x (final headers): its tests,
# compute-sanitizer, the PDL chain, the decode bench (both models, graph) twice and ncu of a bf16 decode step's dense
# launches. gpu_carry/s37f.tgz. Writes log.txt, tests.txt, san.txt, decode.txt, ncu.txt under $OUT.
F=/tmp/s37
source "$(dirname "$0")/device_lib.sh"
run_tests test_cuda_dense_gemv:30 test_cuda_forward:60 test_cuda_gemv_pdl:40
sanitize test_cuda_dense_gemv memcheck racecheck
for round in 1 2; do
  s=$SECONDS; echo "== round $round" >> $OUT/decode.txt
  timeout 90 $F/cuda_decode --formats bf16,w4g128,w2g64 --modes graph --work /tmp/dec >> $OUT/decode.txt 2>&1; echo "decode $round rc=$? $((SECONDS-s))s" >> $L
done
ncu_dense_step new
cat $L
