#!/bin/bash
# Stop 42's second device call: stop 36's split-vs-tiled grid again (bench/results/cuda_gemv_split_dispatch_h100_20261205_s36.md)
# with HEAD's split kernel (its slices now summed per row tile, stop 41), to re-draw split_takes. gpu_carry/s42a.tgz:
# cuda_gemv_BASE = HEAD's bench/cuda_gemv. Nine shapes, 2/3/4/8-bit codes, M = 1, 2, 4, 8, 12, 16; writes
# split.txt (every shape's table) and log.txt under $OUT.
F=/tmp/s42a; source "$(dirname "$0")/device_lib.sh"
nvidia-smi --query-gpu=name,memory.total --format=csv > $OUT/gpu.txt 2>&1
for S in 8192x8192 14336x4096 4096x14336 4096x4096 2048x2048 1536x8960 8960x1536 896x4864 4864x896; do
  s=$SECONDS
  timeout 70 $F/cuda_gemv_BASE --split-only --runs 30 --rotate-bytes 1e9 --shapes $S --bits 2,3,4,8 --batches 1,2,4,8,12,16 \
    >> $OUT/split.txt 2>&1; echo "split $S rc=$? $((SECONDS-s))s" >> $L; done
cat $L
