#!/bin/bash
# Stop 41's fourth device call: the split GEMV staging x in two parts for symmetric formats (the second while the warps
# stream the first half of their loads, counted by an mbarrier), on top of the per-tile slice sums. gpu_carry/s41d.tgz:
# build-gpu's bench/cuda_gemv and CUDA tests with the change, and cuda_gemv_BASE (the per-tile build of call 3, d432368).
# Tests, the split test's quick subset under compute-sanitizer, then 8192 x 8192, 14336 x 4096 and 4096 x 14336 at 1, 8
# and 16 tokens, the two builds alternating (two rounds). Writes log.txt, tests.txt, san.txt, bench.txt under $OUT.
F=/tmp/s41d; source "$(dirname "$0")/device_lib.sh"
nvidia-smi --query-gpu=name,memory.total --format=csv > $OUT/gpu.txt 2>&1
run_tests test_cuda_gemv_split_layout:30 test_cuda_gemv_split:150 test_cuda_gemv_pdl:60 test_cuda_gemv:90 test_cuda_forward:90
for tool in memcheck racecheck; do
  s=$SECONDS; echo "=== $tool" >> $OUT/san.txt
  QMR_GEMV_TEST_QUICK=1 timeout 90 compute-sanitizer --tool $tool $F/test_cuda_gemv_split >> $OUT/san.txt 2>&1
  echo "san $tool rc=$? $((SECONDS-s))s $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' $OUT/san.txt | tail -1)" >> $L
done
for round in 1 2; do for v in BASE new; do
  b=$F/cuda_gemv; [ $v = BASE ] && b=$F/cuda_gemv_BASE
  s=$SECONDS; echo "== $v round $round" >> $OUT/bench.txt
  timeout 120 $b --split-only --runs 30 --rotate-bytes 1e9 --shapes 8192x8192,14336x4096,4096x14336 --bits 2,3,4,8 --batches 1,8,16 >> $OUT/bench.txt 2>&1
  echo "bench $v $round rc=$? $((SECONDS-s))s" >> $L
done; done
cat $L
