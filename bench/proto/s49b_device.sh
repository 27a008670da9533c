#!/bin/bash
# Stop 49, second call: the landed counter change (stop 48's p1 as gemv_split.cuh now has it, built from the working
# tree as /tmp/s49b/*_land) — its split, PDL and forward tests, compute-sanitizer memcheck and racecheck, and two A/B
# rounds against HEAD's kernel before it (a0, gpu_carry/s48.tgz).
# Not run: at stop 49 the session's device time was spent before this call could start.
source "$(dirname "$0")/device_lib.sh"
F=/tmp/s49b
cp /tmp/s48/cuda_gemv_a0 $F/
nvidia-smi --query-gpu=name --format=csv,noheader > $OUT/gpu.txt
run_tests test_cuda_gemv_split_land:120 test_cuda_gemv_pdl_land:60
for tool in memcheck racecheck; do
  s=$SECONDS; echo "=== $tool" >> $OUT/san.txt
  QMR_GEMV_TEST_QUICK=1 timeout 60 compute-sanitizer --tool $tool $F/test_cuda_gemv_split_land >> $OUT/san.txt 2>&1
  echo "san $tool rc=$? $((SECONDS-s))s $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' $OUT/san.txt | tail -1)" >> $L
done
for v in land a0 a0 land; do
  s=$SECONDS; echo "== $v" >> $OUT/bench.txt
  timeout 60 $F/cuda_gemv_$v --split-only --runs 30 --rotate-bytes 1e9 --shapes 8192x8192 --bits 4,2 --batches 1,16 >> $OUT/bench.txt 2>&1
  echo "bench $v rc=$? $((SECONDS-s))s" >> $L
done
run_tests test_cuda_forward_land:90
cat $OUT/gpu.txt $L; grep -E "^== |^\| 8192 x" $OUT/bench.txt | awk -F'|' '/^==/{print; next} {print $2,$3,$4,"split",$5,"graph",$7,"cublasg",$12}'
grep -E '^=== |passed|failed|ok: ' $OUT/tests.txt | tail -8
