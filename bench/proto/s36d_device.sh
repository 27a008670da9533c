#!/bin/bash
# Stop 36: the dense GEMV (bf16/f16/f32 weights: Qwen's output head, every linear of a bf16 model) with x staged in
# shared memory and 4 weight loads per lane in flight, against HEAD's (aedc5d2, cuda_decode_base): tests, decode tok/s
# of the Qwen2.5-0.5B-shaped model in alternating rounds, ncu durations of the output head's launch.
# gpu_carry/s36d.tgz. Writes log.txt, tests.txt, decode.txt, ncu.txt under $OUT.
set -u
cd "$(dirname "$0")/../.." && for t in gpu_carry/*.tgz; do tar xzf "$t" -C /tmp; done
F=/tmp/s36; L=$OUT/log.txt
export QMR_TEST_DATA=$PWD/tests/data QMR_MODELS_DIR=$PWD/models
for t in test_cuda_dense_gemv:30 test_cuda_forward:60 test_cuda_gemv_split:60; do
  s=$SECONDS; echo "=== ${t%:*}" >> $OUT/tests.txt; timeout ${t#*:} $F/${t%:*} >> $OUT/tests.txt 2>&1; echo "${t%:*} rc=$? $((SECONDS-s))s" >> $L; done
for round in 1 2; do for v in base new; do
  b=$F/cuda_decode; [ $v = base ] && b=$F/cuda_decode_base
  s=$SECONDS; echo "== $v round $round" >> $OUT/decode.txt
  timeout 60 $b --models qwen2.5-0.5b --formats bf16,w4g128 --modes graph --work /tmp/dec >> $OUT/decode.txt 2>&1
  echo "decode $v $round rc=$? $((SECONDS-s))s" >> $L; done; done
for v in base new; do
  b=$F/cuda_decode; [ $v = base ] && b=$F/cuda_decode_base
  s=$SECONDS; echo "== $v" >> $OUT/ncu.txt
  timeout 90 ncu --metrics gpu__time_duration.sum,dram__bytes_read.sum --print-summary per-kernel --kernel-name regex:dense \
    --launch-skip 2 --launch-count 3 $b --models qwen2.5-0.5b --formats w4g128 --modes eager --work /tmp/dec 2>&1 | grep -v "==PROF==" >> $OUT/ncu.txt
  echo "ncu $v rc=$? $((SECONDS-s))s" >> $L; done
cat $L
