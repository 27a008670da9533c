#!/bin/bash
# Device side of the split kernel's rework (stop 35: cp.async x staging, per-warp scale pairs, cluster slice sums on
# sm_90), with gpu_carry/v2.tgz (bench/cuda_gemv and tests/test_cuda_gemv_split of build-gpu) and gpu_carry/x1.tgz
# (bench/proto/lanes_x1_build.sh: the register-x lane patch's tests, the HEAD bench as "base").
# Writes log.txt, tests.txt, san_*.txt, split.txt, split_base.txt, lanes.txt under $OUT.
set -u
cd "$(dirname "$0")/../.." && for t in gpu_carry/*.tgz; do tar xzf "$t" -C /tmp; done
L=$OUT/log.txt
export QMR_TEST_DATA=$PWD/tests/data QMR_MODELS_DIR=$PWD/models
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv >> $L
s=$SECONDS
timeout 150 /tmp/v2/test_cuda_gemv_split > $OUT/tests.txt 2>&1; echo "split test rc=$? $((SECONDS-s))s" >> $L
B=/tmp/v2/cuda_gemv
s=$SECONDS
timeout 120 $B --split-only --runs 30 --rotate-bytes 1e9 --shapes 8192x8192 --bits 2,3,4,8 --batches 1,4,16 > $OUT/split.txt 2>&1
echo "split bench rc=$? $((SECONDS-s))s" >> $L
s=$SECONDS
timeout 45 /tmp/x1/cuda_gemv_base --split-only --runs 30 --rotate-bytes 1e9 --shapes 8192x8192 --bits 4 --batches 1,16 > $OUT/split_base.txt 2>&1
echo "base split bench rc=$? $((SECONDS-s))s" >> $L
for t in test_cuda_gemv_pdl; do
  s=$SECONDS; echo "=== x1 $t" >> $OUT/tests.txt; timeout 60 /tmp/x1/$t >> $OUT/tests.txt 2>&1; echo "x1 $t rc=$? $((SECONDS-s))s" >> $L; done
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
for tool in memcheck racecheck; do
  s=$SECONDS
  env QMR_GEMV_TEST_QUICK=1 timeout 60 $SAN --tool $tool --error-exitcode 3 /tmp/v2/test_cuda_gemv_split > $OUT/san_$tool.txt 2>&1
  echo "san $tool rc=$? $((SECONDS-s))s $(tail -1 $OUT/san_$tool.txt)" >> $L; done
s=$SECONDS
timeout 60 $B --split-only --runs 30 --rotate-bytes 1e9 --shapes 14336x4096,4096x14336 --bits 2,4,8 --batches 1,16 >> $OUT/split.txt 2>&1
echo "split bench 2 rc=$? $((SECONDS-s))s" >> $L
cat $L
