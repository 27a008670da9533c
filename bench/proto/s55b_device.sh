#!/bin/bash
# Stop 55, calls b and c: bench/proto/wide_s55.cu (call b: every variant padded to one block an SM, and the cluster-4 DSMEM tail;
# call c: that tail with 18- and 20-warp blocks, whose 29 and 26 clusters fit one wave),
# against HEAD's split kernel (the wide configuration since stop 55), cuBLAS f16 and the read ceiling in the same run.
F=/tmp/s55
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
source "$(dirname "$0")/device_lib.sh"
gpu_clocks
for r in 1 2; do
  s=$SECONDS; echo "== round $r" >> $OUT/wide.txt; timeout 120 $F/wide w4g128s >> $OUT/wide.txt 2>&1; echo "wide $r rc=$? $((SECONDS-s))s" >> $L
done
cat $OUT/gpu.txt $L $OUT/wide.txt
