#!/bin/bash
# Stop 42's first device call: the split GEMV with one 16-warp block per SM (QMR_SPLIT_BPS=1: half the slices, so half
# the workspace traffic and slice sums at 16 tokens) and rings of 4, 6 and 8 loads, against HEAD (BASE).
# gpu_carry/s42a.tgz: cuda_gemv_BASE, cuda_gemv_b1r4, cuda_gemv_b1r6, cuda_gemv_b1r8 (bench/cuda_gemv built with
# bench/proto/split_one_block_s42.patch and -DQMR_SPLIT_BPS=1 -DQMR_SPLIT_RING=R; BASE: no macros = HEAD's kernel).
# Builds alternate, two rounds. Writes log.txt, gpu.txt, bench.txt under $OUT.
F=/tmp/s42a; source "$(dirname "$0")/device_lib.sh"
nvidia-smi --query-gpu=name,memory.total --format=csv > $OUT/gpu.txt 2>&1
for round in 1 2; do for v in BASE b1r4 b1r6 b1r8; do
  s=$SECONDS; echo "== $v round $round" >> $OUT/bench.txt
  timeout 100 $F/cuda_gemv_$v --split-only --runs 30 --rotate-bytes 1e9 --shapes 8192x8192,14336x4096,4096x14336 --bits 2,4,8 \
    --batches 1,8,16 >> $OUT/bench.txt 2>&1
  echo "bench $v $round rc=$? $((SECONDS-s))s" >> $L
done; done
cat $L
