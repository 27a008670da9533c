#!/bin/bash
# Stop 36: dense GEMV variants on the H100, decode tok/s of the Qwen2.5-0.5B-shaped model (bf16, w4g128) in alternating
# rounds and ncu durations of the output head: `cuda_decode` = x staged + 4 loads a lane in flight (the first version,
# 72 registers), v3 = loads issued before pdl_wait + 64-register cap, v4 = the first version + 64-register cap (4 blocks
# an SM), v5 = v4 with 2 loads a lane. gpu_carry/s36f.tgz. Writes log.txt, tests.txt, decode.txt, ncu.txt under $OUT.
set -u
cd "$(dirname "$0")/../.." && for t in gpu_carry/*.tgz; do tar xzf "$t" -C /tmp; done
F=/tmp/s36; L=$OUT/log.txt
export QMR_TEST_DATA=$PWD/tests/data QMR_MODELS_DIR=$PWD/models
for t in test_cuda_dense_gemv:30 test_cuda_forward:60; do
  s=$SECONDS; echo "=== ${t%:*}" >> $OUT/tests.txt; timeout ${t#*:} $F/${t%:*} >> $OUT/tests.txt 2>&1; echo "${t%:*} rc=$? $((SECONDS-s))s" >> $L; done
for round in 1 2; do for v in v1 v3 v4 v5; do
  b=$F/cuda_decode_$v; [ $v = v1 ] && b=$F/cuda_decode
  s=$SECONDS; echo "== $v round $round" >> $OUT/decode.txt
  timeout 60 $b --models qwen2.5-0.5b --formats bf16,w4g128 --modes graph --work /tmp/dec >> $OUT/decode.txt 2>&1
  echo "decode $v $round rc=$? $((SECONDS-s))s" >> $L; done; done
for v in v1 v4 v5; do
  b=$F/cuda_decode_$v; [ $v = v1 ] && b=$F/cuda_decode
  s=$SECONDS; echo "== $v" >> $OUT/ncu.txt
  timeout 90 ncu --metrics gpu__time_duration.sum,dram__bytes_read.sum --print-summary per-kernel --kernel-name regex:dense \
    --launch-skip 2 --launch-count 3 $b --models qwen2.5-0.5b --formats w4g128 --modes eager --work /tmp/dec 2>&1 | grep -v "==PROF==" >> $OUT/ncu.txt
  echo "ncu $v rc=$? $((SECONDS-s))s" >> $L; done
cat $L
