#!/bin/bash
# Stop 37, device call 7 (H100): the dense GEMV without its shared-memory staging of x (final headers): its tests,
# compute-sanitizer, the PDL chain, the decode bench (both models, graph) twice and ncu of a bf16 decode step's dense
# launches. gpu_carry/s37f.tgz. Writes log.txt, tests.txt, san.txt, decode.txt, ncu.txt under $OUT.
F=/tmp/s37
source "$(dirname "$0")/device_lib.sh"
run_tests test_cuda_dense_gemv:30 test_cuda_forward:60 test_cuda_gemv_pdl:40
for tool in memcheck racecheck; do
  s=$SECONDS; echo "=== $tool" >> $OUT/san.txt
  timeout 60 compute-sanitizer --tool $tool $F/test_cuda_dense_gemv >> $OUT/san.txt 2>&1; echo "san $tool rc=$? $((SECONDS-s))s $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' $OUT/san.txt | tail -1)" >> $L; done
for round in 1 2; do
  s=$SECONDS; echo "== round $round" >> $OUT/decode.txt
  timeout 90 $F/cuda_decode --formats bf16,w4g128,w2g64 --modes graph --work /tmp/dec >> $OUT/decode.txt 2>&1; echo "decode $round rc=$? $((SECONDS-s))s" >> $L
done
s=$SECONDS
timeout 120 ncu --metrics gpu__time_duration.sum --print-summary per-kernel --kernel-name regex:dense --launch-skip 300 \
  --launch-count 169 $F/cuda_decode --models qwen2.5-0.5b --formats bf16 --modes eager --work /tmp/dec 2>&1 | grep -v "==PROF==" > $OUT/ncu.txt
echo "ncu rc=$? $((SECONDS-s))s" >> $L
cat $L
