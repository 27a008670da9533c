#!/bin/bash
# Device side of the split kernel at the end of stop 35. gpu_carry/v5.tgz: build-gpu's bench/cuda_gemv and
# tests/test_cuda_gemv_split (16-warp blocks, 2 an SM, ring 4, scales by cp.async); v4.tgz: the same with scales through
# registers; var.tgz: bench and test builds with 32-warp blocks, 1 an SM, rings 4 and 6 (traits changed, nothing else).
# Tests (v5 under memcheck and racecheck), 8192 x 8192 at M = 1 and 16 alternating, then the other shapes.
# Writes log.txt, tests.txt, san_*.txt, split.txt, shapes.txt under $OUT.
set -u
cd "$(dirname "$0")/../.." && for t in gpu_carry/*.tgz; do tar xzf "$t" -C /tmp; done
L=$OUT/log.txt
. "$(dirname "$0")/split_device_checks.sh"
split_checks /tmp/v5
for v in w32r4 w32r6; do
  s=$SECONDS; echo "=== $v" >> $OUT/tests.txt; timeout 60 /tmp/var/test_split_$v >> $OUT/tests.txt 2>&1; echo "split test $v rc=$? $((SECONDS-s))s" >> $L; done
for v in v5 v4 w32r4 w32r6 v5 w32r4; do
  b=/tmp/$v/cuda_gemv; case $v in w32*) b=/tmp/var/cuda_gemv_$v;; esac
  s=$SECONDS; echo "== $v" >> $OUT/split.txt
  timeout 45 $b --split-only --runs 30 --rotate-bytes 1e9 --shapes 8192x8192 --bits 2,3,4,8 --batches 1,16 >> $OUT/split.txt 2>&1
  echo "bench $v rc=$? $((SECONDS-s))s" >> $L; done
for v in v5 w32r4; do
  b=/tmp/v5/cuda_gemv; [ $v = w32r4 ] && b=/tmp/var/cuda_gemv_w32r4
  s=$SECONDS; echo "== $v" >> $OUT/shapes.txt
  timeout 70 $b --split-only --runs 30 --rotate-bytes 1e9 --shapes 14336x4096,4096x14336,896x4864,4864x896 --bits 2,3,4,8 \
    --batches 1,16 >> $OUT/shapes.txt 2>&1; echo "shapes $v rc=$? $((SECONDS-s))s" >> $L; done
cat $L
