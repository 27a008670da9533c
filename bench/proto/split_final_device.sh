#!/bin/bash
# Device side of the split kernel at the end of stop 35 (gpu_carry/v5.tgz: build-gpu's bench/cuda_gemv and
# tests/test_cuda_gemv_split, scales staged by cp.async) against v4 (gpu_carry/v4.tgz, scales through registers):
# the test under memcheck and racecheck, 8192 x 8192 at M = 1, 4, 8, 16 twice each alternating, then the other
# shapes at M = 1 and 16. Writes log.txt, tests.txt, san_*.txt, split.txt, shapes.txt under $OUT.
set -u
cd "$(dirname "$0")/../.." && for t in gpu_carry/v4.tgz gpu_carry/v5.tgz; do tar xzf "$t" -C /tmp; done
L=$OUT/log.txt
s=$SECONDS; timeout 120 /tmp/v5/test_cuda_gemv_split > $OUT/tests.txt 2>&1; echo "split test rc=$? $((SECONDS-s))s" >> $L
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
for tool in memcheck racecheck; do
  s=$SECONDS
  env QMR_GEMV_TEST_QUICK=1 timeout 60 $SAN --tool $tool --error-exitcode 3 /tmp/v5/test_cuda_gemv_split > $OUT/san_$tool.txt 2>&1
  echo "san $tool rc=$? $((SECONDS-s))s $(tail -1 $OUT/san_$tool.txt)" >> $L; done
for v in v5 v4 v5 v4; do
  s=$SECONDS; echo "== $v" >> $OUT/split.txt
  timeout 70 /tmp/$v/cuda_gemv --split-only --runs 30 --rotate-bytes 1e9 --shapes 8192x8192 --bits 2,3,4,8 --batches 1,4,8,16 >> $OUT/split.txt 2>&1
  echo "bench $v rc=$? $((SECONDS-s))s" >> $L; done
s=$SECONDS
timeout 120 /tmp/v5/cuda_gemv --split-only --runs 30 --rotate-bytes 1e9 --shapes 14336x4096,4096x14336,896x4864,4864x896 --bits 2,3,4,8 \
  --batches 1,16 > $OUT/shapes.txt 2>&1; echo "shapes rc=$? $((SECONDS-s))s" >> $L
cat $L
