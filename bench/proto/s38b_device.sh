#!/bin/bash
# Stop 38, device call 2 (H100): where HEAD's tiled GEMM spends its time at 256 and 64 tokens (8192 x 8192 w4g128):
# ncu's speed-of-light, warp-state, scheduler, compute-pipe and instruction sections of one gemm_kernel launch of
# cuda_gemv_v0 (HEAD e1bef27's bench, from gpu_carry/s38a.tgz). Writes log.txt and ncu_m256.txt, ncu_m64.txt under $OUT.
F=/tmp/s38
source "$(dirname "$0")/device_lib.sh"
for m in 256 64; do
  s=$SECONDS
  timeout 150 ncu --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section ComputeWorkloadAnalysis \
    --section InstructionStats --section Occupancy --section LaunchStats --kernel-name regex:gemm_kernel --launch-skip 3 --launch-count 1 \
    $F/cuda_gemv_v0 --shapes 8192x8192 --bits 4 --batches $m --runs 5 --rotate-bytes 2e8 > $OUT/ncu_m$m.txt 2>&1
  echo "ncu m=$m rc=$? $((SECONDS-s))s" >> $L
done
cat $L
