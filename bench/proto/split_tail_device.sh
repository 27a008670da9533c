#!/bin/bash
# Device side of the split kernel's vectorized tail (stop 35): the band's last block adds the slices as float4 runs of
# 4 rows, 8 slices in flight a thread. gpu_carry/v4.tgz (build-gpu: bench/cuda_gemv, tests/test_cuda_gemv_split, ring 4)
# and gpu_carry/v3.tgz (ring 6 and 4 with the scalar tail). Writes log.txt, tests.txt, san_*.txt, split.txt under $OUT.
set -u
cd "$(dirname "$0")/../.." && for t in gpu_carry/v3.tgz gpu_carry/v4.tgz; do tar xzf "$t" -C /tmp; done
L=$OUT/log.txt
. "$(dirname "$0")/split_device_checks.sh"
split_checks /tmp/v4
for v in v4 r4 v4 r4; do
  b=/tmp/v4/cuda_gemv; [ $v = r4 ] && b=/tmp/v3/cuda_gemv_r4
  s=$SECONDS; echo "== $v" >> $OUT/split.txt
  timeout 60 $b --split-only --runs 30 --rotate-bytes 1e9 --shapes 8192x8192 --bits 2,3,4,8 --batches 1,16 >> $OUT/split.txt 2>&1
  echo "bench $v rc=$? $((SECONDS-s))s" >> $L; done
cat $L
