#!/bin/bash
# Stop 43: ncu on one launch of the split-layout GEMM (bench/proto/gemm_split_layout_s43.patch + the chunk rotation)
# at 64 tokens on 8192 x 8192 w4g128s: where its ~1.4 us a chunk goes. gpu_carry/s43c.tgz. Writes log.txt, ncu.txt.
F=/tmp/s43c; source "$(dirname "$0")/device_lib.sh"
s=$SECONDS
timeout 150 ncu --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section MemoryWorkloadAnalysis \
  --section LaunchStats --section Occupancy --section InstructionStats --section SourceCounters --kernel-name regex:gemm_split \
  --launch-skip 3 --launch-count 1 $F/cuda_gemv --gemm-split --runs 3 --rotate-bytes 2e8 --shapes 8192x8192 --bits 4 \
  --batches 64 > $OUT/ncu.txt 2>&1
echo "ncu rc=$? $((SECONDS-s))s" >> $L
cat $L; grep -v "^    ---\|^ *$\|^|" $OUT/ncu.txt | grep -A300 "gemm_split_kernel" | grep -v "OPT\|^          " | head -150
