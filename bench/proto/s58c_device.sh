#!/bin/bash
# Stop 57's device call c (call a: HEAD's GPU tests; call b: the timeline and the burst rings):
#   1. the timeline probe (bench/proto/timeline_s57.cu) with rings kept deeper during the loop: 6, 8 or 12 loads in
#      flight once x is staged, 3 before the wait; traces of rings 4, 6 and 8 (tail) and 8 (no tail) to $OUT/tl/;
#   2. the same change in the library's kernel (an experiment build, not committed: gemv_split_traits::ring 6 or 8,
#      3 loads before the wait and the rest once x is staged), `cuda_gemv --split-only` at 16 tokens against HEAD's,
#      alternating, two rounds: cuda_gemv_old (4c5e230), cuda_gemv_r6, cuda_gemv_r8.
F=/tmp/s58
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
source "$(dirname "$0")/device_lib.sh"
gpu_clocks
timeline_s57
for round in 1 2; do for v in old r6 r8; do bench_split $v "round $round" 8192x8192,4096x14336,4096x4096 4,2,8 16; done; done
cat $OUT/gpu.txt $L $OUT/timeline.txt
grep -E "^== |^\| (8192 x|4096 x)" $OUT/bench.txt | awk -F'|' '/^==/{print; next} {print $2,$3,$4,"split",$5,"graph",$7,"cublasg",$12}'
