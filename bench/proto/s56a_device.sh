#!/bin/bash
# For the next stop's first device call (written in stop 55, not run: no device time was left): the two probes of the
# wide split kernel's tail on 8192 x 8192 w4g128s at 16 tokens, twice each, against HEAD's split kernel, cuBLAS f16 and
# the read ceiling in the same run:
#   bench/proto/pair_s55.cu: two column quarters a block, the band's 2 blocks a cluster of 2, slice sums through DSMEM
#     (no workspace, counter or fence) or the block's quarters added in shared memory then a 2-slice workspace;
#   bench/proto/wide_s55.cu: the cluster-4 DSMEM tail with 18- and 20-warp blocks (29 and 26 clusters: one wave).
# Binaries in /tmp/s55 (pair, wide), built on the CPU machine and packed as gpu_carry/s55.tgz by bench/proto/s56_build.sh.
F=/tmp/s55
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
source "$(dirname "$0")/device_lib.sh"
gpu_clocks
for r in 1 2; do
  for p in pair wide; do
    s=$SECONDS; echo "== $p round $r" >> $OUT/probe.txt; timeout 120 $F/$p w4g128s >> $OUT/probe.txt 2>&1
    echo "$p $r rc=$? $((SECONDS-s))s" >> $L
  done
done
cat $OUT/gpu.txt $L $OUT/probe.txt
