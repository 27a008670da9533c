#!/bin/bash
# Stop 41's second device call: the split GEMV summing a band's slices in a thread-block cluster (DSMEM) from 9 tokens
# (split_sum::automatic), against HEAD's workspace sums. gpu_carry/s41b.tgz: build-gpu's bench/cuda_gemv and CUDA tests
# with the change, and cuda_gemv_BASE (HEAD 95357e7's bench). Tests, the split test's quick subset under
# compute-sanitizer, then 8192 x 8192 and 14336 x 4096 at 1, 8, 12, 16 tokens, the two builds alternating (two rounds),
# and the cluster sums forced at 1, 4 and 8 tokens. Writes log.txt, tests.txt, san.txt, bench.txt under $OUT.
F=/tmp/s41b; source "$(dirname "$0")/device_lib.sh"
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
  timeout 120 $b --split-only --runs 30 --rotate-bytes 1e9 --shapes 8192x8192,14336x4096 --bits 2,3,4,8 --batches 1,8,12,16 >> $OUT/bench.txt 2>&1
  echo "bench $v $round rc=$? $((SECONDS-s))s" >> $L
done; done
for sum in cluster workspace; do
  s=$SECONDS; echo "== new --split-sum $sum" >> $OUT/bench.txt
  timeout 60 $F/cuda_gemv --split-only --split-sum $sum --runs 30 --rotate-bytes 1e9 --shapes 8192x8192 --bits 4 --batches 1,4,8,16 >> $OUT/bench.txt 2>&1
  echo "bench $sum rc=$? $((SECONDS-s))s" >> $L
done
cat $L
