#!/bin/bash
# Stop 36's first device call: every read of a buffer another kernel writes now goes through L2 (ld_produced in
# launch.cuh) in the kernels that run under PDL (the tiled GEMV's x outside shared memory, the dense GEMV, the residual
# add of add_rmsnorm, qkv_rope's q/k/v, silu_mul's gate/up, both argmax kernels). Runs the GPU tests, with the PDL test
# now chaining 6 layers through two ping-pong buffers and covering the split kernel; then the split table (split,
# tiled tensor-core and lane kernels against cuBLAS f16) at M = 1, 2, 4, 8, 12, 16 for the rule by which gemv() takes
# the split kernel, and the M = 1 lane table per call. gpu_carry/s36a.tgz (build-gpu binaries, stripped).
# Writes log.txt, tests.txt, split_<shape>.txt, lanes.txt under $OUT.
source "$(dirname "$0")/device_lib.sh"
nvidia-smi --query-gpu=name,clocks.max.sm,memory.total --format=csv >> $L 2>&1
run_tests test_cuda_gemv_pdl:40 test_cuda_dense_gemv:30 test_cuda_gemv:40 test_cuda_gemv_split:40 test_cuda_forward:60 test_cuda_attention:30 test_cuda_gemv_lanes:60
for S in 8192x8192 14336x4096 4096x14336 896x4864 4864x896; do
  s=$SECONDS
  timeout 50 $F/cuda_gemv --split-only --runs 30 --rotate-bytes 1e9 --shapes $S --bits 2,3,4,8 --batches 1,2,4,8,12,16 \
    --json $OUT/split_$S.json > $OUT/split_$S.txt 2>&1; echo "split $S rc=$? $((SECONDS-s))s" >> $L; done
s=$SECONDS
timeout 60 $F/cuda_gemv --lanes-only --runs 30 --rotate-bytes 1e9 --shapes 8192x8192,4096x14336,896x4864,14336x4096 --batches 1 \
  > $OUT/lanes.txt 2>&1; echo "lanes rc=$? $((SECONDS-s))s" >> $L
cat $L
