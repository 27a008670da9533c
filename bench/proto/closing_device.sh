#!/bin/bash
# Stop 35's last device call: the register-x lane kernel (landed now for long rows and 8-bit codes, 4 units a step) and
# the activations read through L2 (__ldcg) in both lane kernels: the PDL test (which failed in stop 34 and in this
# stop's first call with the kernel's x read through the non-coherent path), the lane, GEMV and forward tests; then
# the M = 1 lane bench of HEAD against ab5db13 (base), and `qmr bench --device cuda --split` (the CLI path of the
# split kernel). gpu_carry/fin.tgz (build-gpu tests and bench, a CUDA build of tools/qmr) and gpu_carry/base.tgz.
# Writes log.txt, tests.txt, lanes.txt, cli.txt, cli.jsonl under $OUT.
set -u
cd "$(dirname "$0")/../.." && for t in gpu_carry/*.tgz; do tar xzf "$t" -C /tmp; done
F=/tmp/fin; L=$OUT/log.txt
export QMR_TEST_DATA=$PWD/tests/data QMR_MODELS_DIR=$PWD/models
for t in test_cuda_gemv_pdl:30 test_cuda_gemv_lanes:90 test_cuda_gemv:40; do
  s=$SECONDS; echo "=== ${t%:*}" >> $OUT/tests.txt; timeout ${t#*:} $F/${t%:*} >> $OUT/tests.txt 2>&1; echo "${t%:*} rc=$? $((SECONDS-s))s" >> $L; done
S=8192x8192,14336x4096,4096x14336,896x4864,4864x896
for v in base head; do
  b=$F/cuda_gemv; [ $v = base ] && b=/tmp/x1/cuda_gemv_base
  s=$SECONDS; echo "== $v" >> $OUT/lanes.txt
  timeout 40 $b --lanes-only --runs 30 --rotate-bytes 1e9 --shapes $S --batches 1 >> $OUT/lanes.txt 2>&1; echo "lanes $v rc=$? $((SECONDS-s))s" >> $L; done
s=$SECONDS
timeout 40 $F/qmr bench --device cuda --kernel gemv --split --quant w4g128s,w2g64s --shape 8192x8192 --batch 1,16 --runs 30 \
  --json $OUT/cli.jsonl > $OUT/cli.txt 2>&1; echo "qmr bench --split rc=$? $((SECONDS-s))s" >> $L
cat $L
