#!/bin/bash
# Stop 36: the dense GEMV, second version (the first batch of weight loads issued before pdl_wait and the staging of
# x) as `cuda_decode`, the same capped at 64 registers for 4 blocks an SM (cuda_decode_v3), and HEAD aedc5d2
# (cuda_decode_base): tests, decode tok/s of the Qwen2.5-0.5B-shaped model in alternating rounds, ncu durations of
# the output head's launch. gpu_carry/s36e.tgz. Writes log.txt, tests.txt, decode.txt, ncu.txt under $OUT.
set -u
cd "$(dirname "$0")/../.." && for t in gpu_carry/*.tgz; do tar xzf "$t" -C /tmp; done
F=/tmp/s36; L=$OUT/log.txt
export QMR_TEST_DATA=$PWD/tests/data QMR_MODELS_DIR=$PWD/models
for t in test_cuda_dense_gemv:30 test_cuda_forward:60; do
  s=$SECONDS; echo "=== ${t%:*}" >> $OUT/tests.txt; timeout ${t#*:} $F/${t%:*} >> $OUT/tests.txt 2>&1; echo "${t%:*} rc=$? $((SECONDS-s))s" >> $L; done
for round in 1 2; do for v in base new v3; do
  b=$F/cuda_decode; [ $v = base ] && b=$F/cuda_decode_base; [ $v = v3 ] && b=$F/cuda_decode_v3
  s=$SECONDS; echo "== $v round $round" >> $OUT/decode.txt
  timeout 60 $b --models qwen2.5-0.5b --formats bf16,w4g128 --modes graph --work /tmp/dec >> $OUT/decode.txt 2>&1
  echo "decode $v $round rc=$? $((SECONDS-s))s" >> $L; done; done
for v in new v3; do
  b=$F/cuda_decode; [ $v = v3 ] && b=$F/cuda_decode_v3
  s=$SECONDS; echo "== $v" >> $OUT/ncu.txt
  timeout 90 ncu --metrics gpu__time_duration.sum,dram__bytes_read.sum --print-summary per-kernel --kernel-name regex:dense \
    --launch-skip 2 --launch-count 3 $b --models qwen2.5-0.5b --formats w4g128 --modes eager --work /tmp/dec 2>&1 | grep -v "==PROF==" >> $OUT/ncu.txt
  echo "ncu $v rc=$? $((SECONDS-s))s" >> $L; done
cat $L
