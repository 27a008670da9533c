#!/bin/bash
# Device side of the split kernel's cp.async load ring (stop 35): its test under the sanitizers, then 8192 x 8192 at
# M = 1 and 16 with ring depths 4, 6 (the build's) and 8 beside the register-buffered kernel (v2, 60b5c70 less
# clusters), then the other issue shapes. gpu_carry/v3.tgz (build-gpu's bench/cuda_gemv as cuda_gemv_r6, r4 and r8
# builds of the same bench with the ring constant changed, tests/test_cuda_gemv_split) and gpu_carry/v2.tgz.
# Writes log.txt, tests.txt, san_*.txt, split.txt, shapes.txt under $OUT.
set -u
cd "$(dirname "$0")/../.." && for t in gpu_carry/v2.tgz gpu_carry/v3.tgz; do tar xzf "$t" -C /tmp; done
L=$OUT/log.txt
. "$(dirname "$0")/split_device_checks.sh"
split_checks /tmp/v3
for v in r6 r4 r8 v2 r6; do
  b=/tmp/v3/cuda_gemv_$v; [ $v = v2 ] && b=/tmp/v2/cuda_gemv
  s=$SECONDS; echo "== $v" >> $OUT/split.txt
  timeout 60 $b --split-only --runs 30 --rotate-bytes 1e9 --shapes 8192x8192 --bits 2,3,4,8 --batches 1,16 >> $OUT/split.txt 2>&1
  echo "bench $v rc=$? $((SECONDS-s))s" >> $L; done
s=$SECONDS
timeout 120 /tmp/v3/cuda_gemv_r6 --split-only --runs 30 --rotate-bytes 1e9 --shapes 14336x4096,4096x14336,896x4864,4864x896 --bits 2,4,8 \
  --batches 1,16 > $OUT/shapes.txt 2>&1; echo "shapes rc=$? $((SECONDS-s))s" >> $L
cat $L
